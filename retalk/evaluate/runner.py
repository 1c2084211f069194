"""``retalk eval``: run an engine over a dataset, score every clip, write tables and plots.

For each job of the protocol (see :mod:`retalk.evaluate.dataset`) :func:`run_clip` renders
``out_dir/videos/<id>.mp4`` with :func:`retalk.pipeline.sync` and scores it:

* weight-free, always: CPBD sharpness (whole frame and face box), audio-visual offset and
  confidence of the tracked mouth opening against the output's sound, mouth-opening
  statistics, landmark jitter; for ``paired`` also the reconstruction metrics against the
  source video (LMD of mouth and face, PSNR, SSIM, PSNR outside the face);
* LSE-D / LSE-C / SyncNet offset when ``syncnet_v2.model`` loads;
* FID / KID over the whole run (rendered frames against source frames) when the FID
  Inception weights load.

Missing weights never stop a run: those columns read ``unavailable`` and the reason is
recorded once in ``summary.json``.  A clip that fails gets ``status=error`` and a one-line
error; the run goes on.  Finished clips are skipped when the run is repeated.

Clips run one after another (``workers=1``), in a local process pool (``workers=N``, spawn
context: mediapipe is not fork-safe) or as Ray tasks (``ray="local"`` starts a Ray runtime on
this machine, ``ray="auto"`` or an address joins an existing cluster).  All three produce the
same rows (sorted by clip id); only the timing columns ``render_s`` and ``score_s`` differ.

Outputs in ``out_dir``: ``results.csv``, ``summary.json``, ``report.md``, ``plots/per_clip.png``,
``plots/sync_offset_hist.png`` and ``videos/``.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retalk.dsp import runs
from retalk.errors import CheckpointError, InputError, MissingDependencyError, RetalkError
from retalk.evaluate.dataset import PROTOCOLS, Pair, load_dataset, pair_clips
from retalk.face.landmarks import opening_series

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
"""Cell value of a metric whose weights could not be loaded (the reason is in ``summary.json``)."""

RESULTS_CSV = "results.csv"
SUMMARY_JSON = "summary.json"
REPORT_MD = "report.md"
VIDEOS_DIR = "videos"
PLOTS_DIR = "plots"

FACE_MARGIN = 0.10
"""PSNR outside the face excludes the source's landmark box grown by this fraction of its size on each side."""
SYNCNET_FPS = 25.0
"""SyncNet scores 25 fps video; other rates are resampled (nearest frame) for LSE."""
SYNCNET_BOX_SMOOTH = 13
"""Median filter (frames) over the SyncNet crop's size and centre, as syncnet_python's pipeline."""


@dataclass(frozen=True)
class Metric:
    """A result column: ``name``, metric ``group``, ``unit``, which way is ``better`` and a description."""

    name: str
    group: str
    unit: str
    better: str
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("cpbd", "sharpness", "0..1", "higher", "CPBD sharpness of the whole frame, mean over frames"),
    Metric("cpbd_face", "sharpness", "0..1", "higher",
           "CPBD sharpness of the tracked face box (at least 64×64 px), mean over frames"),
    Metric("av_offset", "sync", "frames", "0", "mouth-opening vs speech-loudness offset (SyncNet sign: -audio delay)"),
    Metric("av_confidence", "sync", "correlation", "higher",
           "peak minus median correlation of mouth opening and speech loudness over ±15 frame lags"),
    Metric("mouth_open_mean", "mouth", "IOD", "", "mean inner-lip opening (inter-ocular distances)"),
    Metric("mouth_open_std", "mouth", "IOD", "", "standard deviation of the inner-lip opening"),
    Metric("mouth_open_range", "mouth", "IOD", "", "p95 − p5 of the inner-lip opening: how far the mouth moves"),
    Metric("mouth_speed", "mouth", "IOD/frame", "", "mean absolute frame-to-frame change of the opening"),
    Metric("landmark_jitter", "jitter", "IOD/frame²", "lower",
           "mean second difference of the 478 tracked points (temporal trembling)"),
    Metric("lmd_mouth", "reference", "IOD", "lower", "landmark distance over the 40 lip points vs the source video"),
    Metric("lmd_face", "reference", "IOD", "lower", "landmark distance over all 478 points vs the source video"),
    Metric("psnr", "reference", "dB", "higher", "PSNR vs the source frame, mean over frames"),
    Metric("ssim", "reference", "≤1", "higher", "SSIM vs the source frame (7×7 window), mean over frames"),
    Metric("psnr_outside", "reference", "dB", "higher",
           "PSNR outside the source's face box (grown 10% per side): is the rest of the picture untouched?"),
    Metric("lse_d", "lse", "distance", "lower", "SyncNet LSE-D: mean embedding distance at the best offset"),
    Metric("lse_c", "lse", "distance", "higher", "SyncNet LSE-C: median minus minimum distance over offsets"),
    Metric("lse_offset", "lse", "frames", "0", "SyncNet AV offset (positive: audio early)"),
)
"""Per-clip metrics, in column order."""

SET_METRICS: tuple[Metric, ...] = (
    Metric("fid", "fid", "feature units²", "lower", "FID of rendered frames vs source frames (Inception pool3)"),
    Metric("kid", "fid", "feature units²", "lower", "KID (unbiased MMD², cubic kernel) of rendered vs source frames"),
    Metric("kid_std", "fid", "feature units²", "", "standard deviation of KID over 100 subsets"),
)
"""Set-level metrics over the whole run (in ``summary.json``)."""

GROUPS: tuple[str, ...] = ("sharpness", "sync", "mouth", "jitter", "reference", "lse", "fid")
"""Metric groups; ``metrics=("default",)`` selects all (``reference`` applies to ``paired`` only)."""

INFO_COLUMNS: tuple[str, ...] = ("id", "video", "audio", "audio_id", "engine", "protocol", "status", "error",
                                 "frames", "fps", "duration_s", "face_fraction")
TIMING_COLUMNS: tuple[str, ...] = ("render_s", "score_s")
COLUMNS: tuple[str, ...] = INFO_COLUMNS + tuple(m.name for m in METRICS) + TIMING_COLUMNS + ("notes",)
"""Columns of ``results.csv``, in order."""

_METRIC_BY_NAME = {m.name: m for m in METRICS + SET_METRICS}
_CHECKPOINT_OPTION = {"wav2lip": "checkpoint"}
"""Engines that take a checkpoint (file or folder) option, and its keyword."""


# ----------------------------------------------------------------------------- per-clip work
@dataclass(frozen=True)
class ClipTask:
    """Everything :func:`run_clip` needs (picklable: it travels to pool workers and Ray tasks)."""

    clip_id: str
    video: str
    audio: str
    audio_id: str
    output: str
    engine: str
    protocol: str
    groups: tuple[str, ...]
    lse: bool
    checkpoints: str | None = None
    render: bool = True
    frame_step: int = 1


def run_clip(task: ClipTask, syncnet: Any = None) -> dict[str, str]:
    """Render (unless ``task.render`` is False) and score one clip; return its ``results.csv`` row.

    Never raises for a bad clip: the row then has ``status=error`` and the one-line ``error``.
    ``syncnet``: a loaded SyncNet to reuse; loaded here from ``task.checkpoints`` when
    ``task.lse`` is set and none is given.
    """
    row = _base_row(task)
    out = Path(task.output)
    t0 = time.perf_counter()
    try:
        if task.render:
            from retalk.pipeline import SyncOptions, sync

            options = {}
            if task.checkpoints and task.engine in _CHECKPOINT_OPTION:
                options[_CHECKPOINT_OPTION[task.engine]] = task.checkpoints
            sync(task.video, task.audio, out, SyncOptions(engine=task.engine, progress=False, engine_options=options))
            row["render_s"] = _fmt(time.perf_counter() - t0)
        elif not out.is_file():
            raise InputError(f"{out}: rendered video is missing")
        t1 = time.perf_counter()
        if task.lse and syncnet is None:
            from retalk import checkpoints

            syncnet = checkpoints.load("syncnet", task.checkpoints)
        values, notes = score_clip(task, syncnet)
        row.update({k: _fmt(v) for k, v in values.items()})
        row["notes"] = "; ".join(notes)
        row["score_s"] = _fmt(time.perf_counter() - t1)
        row["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - one failed clip must not stop the run
        row["status"] = "error"
        row["error"] = _one_line(exc)
        log.warning("clip %s failed: %s", task.clip_id, row["error"])
        log.debug("clip %s", task.clip_id, exc_info=True)
    return row


def score_clip(task: ClipTask, syncnet: Any = None) -> tuple[dict[str, float | int | str | None], list[str]]:
    """Metrics of the rendered ``task.output`` (see :data:`METRICS`) and notes on those that could not be computed.

    One decoding pass tracks every frame of the rendered video (and, for ``paired``, of the
    source, whose frame *i* the output's frame *i* shows); per-frame picture metrics use every
    ``task.frame_step``-th frame.  LSE needs a second pass for the SyncNet crops.
    """
    from retalk.face.tracker import FaceTracker
    from retalk.media import iter_frames, load_audio, probe_video
    from retalk.media.video import prefetch
    from retalk.metrics import cpbd, cpbd_face, psnr, psnr_outside, ssim

    groups = set(task.groups)
    notes: list[str] = []
    values: dict[str, float | int | str | None] = {}
    rendered = Path(task.output)
    info = probe_video(rendered)
    fps = float(info.fps)
    reference = task.protocol == "paired" and "reference" in groups
    step = max(1, int(task.frame_step))

    gen_tracker = FaceTracker()
    src_tracker = FaceTracker() if reference else None
    src_frames = iter_frames(probe_video(task.video)) if reference else None
    sharp: list[float] = []
    sharp_face: list[float] = []
    pic: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_outside": []}
    src_lms: list[np.ndarray | None] = []
    n = 0
    try:
        for i, frame in enumerate(prefetch(iter_frames(info))):
            n += 1
            lm = gen_tracker.update(frame)
            src = next(src_frames, None) if src_frames is not None else None
            if src is not None and src_tracker is not None:
                src_lms.append(src_tracker.update(src))
            if i % step:
                continue
            if "sharpness" in groups:
                _attempt(notes, "cpbd", lambda f=frame: sharp.append(cpbd(f)))
                if lm is not None:
                    face = _face_block(_bbox(lm), frame.shape)
                    _attempt(notes, "cpbd_face", lambda f=frame, b=face: sharp_face.append(cpbd_face(f, b)))
            if src is not None and src.shape == frame.shape:
                pic["psnr"].append(psnr(frame, src))
                pic["ssim"].append(ssim(frame, src))
                if src_lms[-1] is not None:
                    face = _grow(_bbox(src_lms[-1]), FACE_MARGIN)
                    _attempt(notes, "psnr_outside",
                             lambda f=frame, s=src, b=face: pic["psnr_outside"].append(psnr_outside(f, s, b)))
    finally:
        gen_track = gen_tracker.finish(smooth=False)
        if src_tracker is not None:
            src_tracker.finish(smooth=False)
        if src_frames is not None:
            src_frames.close()
    if n == 0:
        raise InputError(f"{rendered}: no frames could be decoded")
    values.update(frames=n, fps=fps, duration_s=n / fps, face_fraction=float(gen_track.valid.mean()))
    if not gen_track.valid.any():
        notes.append("no face found in the rendered video")

    if "sharpness" in groups:
        values["cpbd"] = _mean(sharp)
        values["cpbd_face"] = _mean(sharp_face)

    lms, valid = gen_track.landmarks, gen_track.valid
    opening = opening_series(lms, valid)
    audio = None
    if "sync" in groups or "lse" in groups:
        audio = load_audio(rendered)
    if "sync" in groups and audio is not None:
        from retalk.metrics import av_offset

        def sync_scores() -> None:
            res = av_offset(opening, audio.samples, audio.sample_rate, fps)
            values["av_offset"] = res.offset
            values["av_confidence"] = res.confidence

        _attempt(notes, "av_offset", sync_scores)
    if "mouth" in groups:
        from retalk.metrics import mouth_opening_stats

        def mouth_scores() -> None:
            st = mouth_opening_stats(opening)
            values.update(mouth_open_mean=st.mean, mouth_open_std=st.std, mouth_open_range=st.range,
                          mouth_speed=st.mean_speed)

        _attempt(notes, "mouth", mouth_scores)
    if "jitter" in groups:
        _attempt(notes, "landmark_jitter", lambda: values.__setitem__("landmark_jitter", _jitter(lms, valid)))
    if reference:
        from retalk.metrics import lmd_face, lmd_mouth

        k = np.array([i for i, s in enumerate(src_lms[:n]) if s is not None and valid[i]], dtype=np.int64)
        if k.size:
            ref = np.stack([src_lms[i] for i in k])
            values["lmd_mouth"] = lmd_mouth(lms[k], ref, normalize=True)
            values["lmd_face"] = lmd_face(lms[k], ref, normalize=True)
        else:
            notes.append("lmd: no frame with a face in both the source and the rendered video")
        for name, vals in pic.items():
            values[name] = _mean(vals)
    if "lse" in groups:
        if not task.lse:
            values.update(lse_d=UNAVAILABLE, lse_c=UNAVAILABLE, lse_offset=UNAVAILABLE)
        elif audio is not None:
            def lse() -> None:
                res = _lse(info, gen_track, audio.samples, syncnet)
                values.update(lse_d=res.lse_d, lse_c=res.lse_c, lse_offset=res.offset)

            _attempt(notes, "lse", lse)
    return values, notes


def _attempt(notes: list[str], name: str, fn: Any) -> None:
    """Run ``fn``; a metric that cannot be computed (ValueError, InputError) adds a note instead of failing the clip.

    Only the first failure of each metric is noted (per-frame metrics may fail on many frames).
    """
    try:
        fn()
    except (ValueError, InputError) as exc:
        if not any(n.startswith(f"{name}: ") for n in notes):
            notes.append(f"{name}: {_one_line(exc)}")


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _bbox(lm: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) pixel box of landmarks (478, >=2)."""
    return np.concatenate([lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)]).astype(np.float64)


def _face_block(box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``box`` widened about its centre to at least one CPBD block (64×64 px) and shifted inside the frame."""
    from retalk.metrics.cpbd import BLOCK

    h, w = shape[:2]
    out = box.astype(np.float64).copy()
    for lo, hi, size in ((0, 2, w), (1, 3, h)):
        side = max(out[hi] - out[lo], float(min(BLOCK, size)))
        centre = (out[lo] + out[hi]) / 2.0
        a = min(max(0.0, centre - side / 2.0), size - side)
        out[lo], out[hi] = a, a + side
    return out


def _grow(box: np.ndarray, margin: float) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return box + np.array([-margin * w, -margin * h, margin * w, margin * h])


def _jitter(lms: np.ndarray, valid: np.ndarray) -> float:
    """Landmark jitter averaged over runs of ≥ 3 consecutive frames with a face (weighted by their length)."""
    from retalk.metrics import landmark_jitter

    total, weight = 0.0, 0
    for a, b in runs(valid):
        if b - a >= 3:
            total += landmark_jitter(lms[a:b]) * (b - a - 2)
            weight += b - a - 2
    if weight == 0:
        raise ValueError("needs 3 consecutive frames with a face")
    return total / weight


def _lse(info: Any, track: Any, audio16k: np.ndarray, model: Any) -> Any:
    """SyncNet scores of the rendered video: crops as syncnet_python makes them, at 25 fps."""
    from scipy.signal import medfilt

    from retalk.media import iter_frames
    from retalk.metrics import crop_faces_syncnet, lse_scores

    valid = track.valid
    if not valid.any():
        raise ValueError("no face in the rendered video")
    n = len(valid)
    fps = float(info.fps)
    # frames shown at k / 25 s (nearest frame), as ffmpeg's fps filter resamples for syncnet_python
    n25 = n if abs(fps - SYNCNET_FPS) < 1e-6 else max(1, int(math.floor(n * SYNCNET_FPS / fps + 1e-9)))
    src_idx = np.minimum(np.floor(np.arange(n25) * fps / SYNCNET_FPS + 0.5).astype(np.int64), n - 1)
    # boxes of frames without a face: the nearest frame with one
    have = np.flatnonzero(valid)
    nearest = have[np.clip(np.searchsorted(have, np.arange(n)), 0, len(have) - 1)]
    prev = have[np.clip(np.searchsorted(have, np.arange(n)) - 1, 0, len(have) - 1)]
    nearest = np.where(np.abs(prev - np.arange(n)) < np.abs(nearest - np.arange(n)), prev, nearest)
    b = track.boxes[nearest][src_idx].astype(np.float64)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2.0
    cy, cx = (b[:, 1] + b[:, 3]) / 2.0, (b[:, 0] + b[:, 2]) / 2.0
    s, cy, cx = (medfilt(v, kernel_size=SYNCNET_BOX_SMOOTH) for v in (s, cy, cx))
    boxes = np.stack([cx - s, cy - s, cx + s, cy + s], axis=1)  # squares: the crop sees the same s, cy, cx
    crops = np.empty((n25, 224, 224, 3), np.uint8)
    k = 0
    for j, frame in enumerate(iter_frames(info)):
        while k < n25 and src_idx[k] == j:
            crops[k] = crop_faces_syncnet(frame[None], boxes[k:k + 1], smooth=1)[0]
            k += 1
        if k >= n25:
            break
    if k < n25:
        crops = crops[:k]
    return lse_scores(crops, audio16k, model)


# ----------------------------------------------------------------------------- rows and formatting
def _base_row(task: ClipTask) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(id=task.clip_id, video=task.video, audio=task.audio, audio_id=task.audio_id, engine=task.engine,
               protocol=task.protocol, status="error")
    return row


def _error_row(task: ClipTask, exc: BaseException) -> dict[str, str]:
    row = _base_row(task)
    row["error"] = _one_line(exc)
    return row


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    if isinstance(exc, RetalkError):
        msg = first or type(exc).__name__
    else:
        msg = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return msg[:500]


def _fmt(v: Any) -> str:
    """A cell: '' for missing/NaN, 'inf' for infinities, 6 significant digits for floats."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    x = float(v)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def _number(cell: str | None) -> float | None:
    """A cell as a float, or None when it is empty, ``unavailable`` or text."""
    if cell in (None, "", UNAVAILABLE):
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


# ----------------------------------------------------------------------------- results files
def read_results(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``results.csv`` (missing columns read as '')."""
    p = Path(path)
    if not p.is_file():
        return []
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            return [{c: (r.get(c) or "") for c in COLUMNS} for r in csv.DictReader(fh)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{p}: cannot read the previous results ({exc}); remove it or use another --out") from None


def _write_results(path: Path, rows: Iterable[Mapping[str, str]]) -> None:
    """Write ``results.csv`` atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class Summary:
    """What :func:`evaluate` did and wrote.

    ``means``: per-clip metric → mean over the clips that have it (``"unavailable"`` when its
    weights did not load, None when no clip has it, ``inf`` possible for PSNR of identical
    pictures).  ``set_metrics``: FID/KID (or ``"unavailable"``).  ``unavailable``: metric group →
    reason.  ``errors``: clip id → one-line error.  ``rows``: the ``results.csv`` rows, by id.
    """

    out_dir: Path
    engine: str
    protocol: str
    seed: int
    n_clips: int
    n_ok: int
    n_error: int
    n_resumed: int
    means: dict[str, float | str | None]
    set_metrics: dict[str, float | str | None]
    unavailable: dict[str, str]
    errors: dict[str, str]
    rows: tuple[dict[str, str], ...] = field(repr=False)
    elapsed_s: float = 0.0

    @property
    def results_csv(self) -> Path:
        return self.out_dir / RESULTS_CSV

    @property
    def summary_json(self) -> Path:
        return self.out_dir / SUMMARY_JSON

    @property
    def report_md(self) -> Path:
        return self.out_dir / REPORT_MD

    @property
    def plots(self) -> tuple[Path, Path]:
        return self.out_dir / PLOTS_DIR / "per_clip.png", self.out_dir / PLOTS_DIR / "sync_offset_hist.png"


def _metric_stats(rows: Sequence[Mapping[str, str]], groups: set[str],
                  unavailable: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}
    ok = [r for r in rows if r["status"] == "ok"]
    for m in METRICS:
        if m.group not in groups:
            continue
        entry: dict[str, Any] = {"unit": m.unit, "better": m.better, "description": m.description}
        if m.group in unavailable:
            entry.update(mean=UNAVAILABLE, std=None, n=0)
        else:
            vals = [x for x in (_number(r.get(m.name)) for r in ok) if x is not None]
            arr = np.asarray(vals, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                entry.update(mean=float(arr.mean()) if arr.size else None,
                             std=float(arr.std()) if arr.size > 1 and np.isfinite(arr).all() else None, n=len(vals))
        stats[m.name] = entry
    return stats


def _versions(ray_used: bool) -> dict[str, str]:
    from importlib import metadata

    from retalk import __version__

    out = {"retalk": __version__, "python": platform.python_version()}
    names = ["numpy", "scipy", "scikit-image", "opencv-contrib-python", "mediapipe", "av", "torch"]
    if ray_used:
        names.append("ray")
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _write_report(path: Path, summary: Summary, stats: Mapping[str, Mapping[str, Any]], dataset: str,
                  plots_note: str | None) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return _fmt(v)
        return str(v).replace("|", "\\|")

    lines = [f"# retalk eval: `{summary.engine}` engine, {summary.protocol} protocol", "",
             f"Dataset `{dataset}`: {summary.n_clips} clip(s), {summary.n_ok} ok, {summary.n_error} failed, "
             f"{summary.n_resumed} reused from an earlier run. Seed {summary.seed}.", "",
             "## Summary (mean over clips)", "", "| metric | mean | std | clips | unit | better |",
             "|---|---:|---:|---:|---|---|"]
    for name, st in stats.items():
        if st["n"] == 0 and st["mean"] is None:
            continue
        lines.append(f"| {name} | {cell(st['mean'])} | {cell(st['std'])} | {st['n']} | {st['unit']} | "
                     f"{st['better'] or '–'} |")
    if summary.set_metrics:
        lines += ["", "| set metric | value | unit | better |", "|---|---:|---|---|"]
        for name, v in summary.set_metrics.items():
            m = _METRIC_BY_NAME[name]
            lines.append(f"| {name} | {cell(v)} | {m.unit} | {m.better or '–'} |")
    if summary.unavailable:
        lines += ["", "## Unavailable", ""]
        for group, reason in summary.unavailable.items():
            lines.append(f"- **{group}**: {reason}")
    shown = [m.name for m in METRICS if any(_number(r.get(m.name)) is not None for r in summary.rows)]
    lines += ["", "## Per clip", "", "| id | driven by | status | " + " | ".join(shown) + " |",
              "|---|---|---|" + "---:|" * len(shown)]
    for r in summary.rows:
        lines.append(f"| {cell(r['id'])} | {cell(r['audio_id'])} | {r['status']} | "
                     + " | ".join(cell(r.get(c) or "–") for c in shown) + " |")
    if summary.errors:
        lines += ["", "## Errors", ""]
        for cid, err in summary.errors.items():
            lines.append(f"- `{cid}`: {err}")
    lines += ["", "## Plots", ""]
    if plots_note:
        lines.append(f"Not drawn: {plots_note}")
    else:
        lines += [f"![per-clip metrics]({PLOTS_DIR}/per_clip.png)", "",
                  f"![sync offsets]({PLOTS_DIR}/sync_offset_hist.png)"]
    _write_text(path, "\n".join(lines) + "\n")


def _write_plots(plot_dir: Path, rows: Sequence[Mapping[str, str]]) -> None:
    """``per_clip.png`` (one bar chart per metric) and ``sync_offset_hist.png``; Agg canvas, no pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = [r for r in rows if r["status"] == "ok"]
    ids = [r["id"] for r in ok]
    shown = [m for m in METRICS if any(_number(r.get(m.name)) is not None for r in ok)]
    ncols = 4
    nrows = max(1, math.ceil(len(shown) / ncols))
    width = min(40.0, max(12.0, 0.25 * len(ids) * ncols))
    fig = Figure(figsize=(width, 2.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    if not shown:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no clip was scored", ha="center", va="center")
        ax.set_axis_off()
    for k, m in enumerate(shown):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        vals = np.array([np.nan if (x := _number(r.get(m.name))) is None else x for r in ok], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        top = float(finite.max()) if finite.size else 1.0
        heights = np.where(np.isinf(vals), top, np.nan_to_num(vals, nan=0.0))  # inf (identical frames): at the top
        bars = ax.bar(np.arange(len(ids)), heights, color="tab:blue")
        for bar, v in zip(bars, vals):
            if np.isinf(v):
                bar.set_hatch("//")
                ax.annotate("inf", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", fontsize=7)
        arrow = {"higher": " ↑", "lower": " ↓"}.get(m.better, "")
        ax.set_title(f"{m.name} [{m.unit}]{arrow}", fontsize=9)
        ax.set_xticks(np.arange(len(ids)))
        ax.set_xticklabels(ids if len(ids) <= 40 else [""] * len(ids), rotation=90, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.savefig(plot_dir / "per_clip.png", dpi=100)

    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.arange(-15.5, 16.5, 1.0)
    drawn = False
    for name, label in (("av_offset", "mouth opening vs loudness"), ("lse_offset", "SyncNet")):
        vals = [x for x in (_number(r.get(name)) for r in ok) if x is not None]
        if vals:
            ax.hist(np.clip(vals, -15, 15), bins=bins, alpha=0.6, label=f"{label} ({len(vals)} clips)")
            drawn = True
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("AV offset (frames; 0 = in sync)")
    ax.set_ylabel("clips")
    ax.set_title("Sync offset per clip")
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no offsets measured", ha="center", va="center", transform=ax.transAxes)
    fig.savefig(plot_dir / "sync_offset_hist.png", dpi=100)


# ----------------------------------------------------------------------------- set metrics
def _set_metrics(pairs: Sequence[Pair], rows: Mapping[str, Mapping[str, str]], out_dir: Path, model: Any,
                 frame_step: int, progress: bool) -> dict[str, float | None]:
    """FID and KID of every ``frame_step``-th rendered frame (clips with status ok) against the source frames."""
    from retalk.media import iter_frames, probe_video
    from retalk.metrics import fid, inception_features, kid

    ok = [p for p in pairs if rows.get(p.clip.id, {}).get("status") == "ok"]

    def frames(paths: Iterable[Path], desc: str) -> Iterator[np.ndarray]:
        for path in tqdm(list(paths), desc=desc, unit="clip", disable=not progress, leave=False):
            for i, f in enumerate(iter_frames(probe_video(path))):
                if i % frame_step == 0:
                    yield f

    gen = inception_features(frames((out_dir / VIDEOS_DIR / f"{p.clip.id}.mp4" for p in ok), "FID rendered"), model)
    src = inception_features(frames((p.clip.video for p in ok), "FID source"), model)
    if min(len(gen), len(src)) < 2:
        log.warning("FID/KID need at least 2 frames in each set; got %d and %d", len(gen), len(src))
        return {"fid": None, "kid": None, "kid_std": None}
    k = kid(gen, src)
    return {"fid": fid(gen, src), "kid": k.mean, "kid_std": k.std}


# ----------------------------------------------------------------------------- execution backends
def _run_local(tasks: Sequence[ClipTask], workers: int, syncnet: Any) -> Iterator[dict[str, str]]:
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield run_clip(t, syncnet)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ex = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {ex.submit(run_clip, t): t for t in tasks}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker died (e.g. out of memory): record and go on
                yield _error_row(futures[fut], exc)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--ray needs Ray, an optional extra: pip install 'retalk[ray]'") from None
    return ray


@contextlib.contextmanager
def _ray_session(address: str, workers: int) -> Iterator[Any]:
    """Connect to Ray (``local``: start a runtime here; ``auto``/an address: join a cluster); disconnect after.

    A Ray connection the caller already made is used as it is and left open.
    """
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": log.isEnabledFor(logging.INFO)}
    if address == "local":
        ray.init(num_cpus=workers if workers > 1 else None, **kwargs)
    else:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"--ray {address}: cannot connect to a Ray cluster ({first[:200]}); start one with "
                             "`ray start --head` or use --ray local") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _run_ray(ray: Any, tasks: Sequence[ClipTask]) -> Iterator[dict[str, str]]:
    """Run :func:`run_clip` as Ray tasks of one CPU each; rows in the order they finish."""
    remote = ray.remote(num_cpus=1, max_retries=0)(run_clip)
    refs = {remote.remote(t): t for t in tasks}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                yield ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - the task or its worker died: record and go on
                yield _error_row(refs[ref], exc)


# ----------------------------------------------------------------------------- entry point
def _groups(metrics: Sequence[str] | str) -> tuple[str, ...]:
    items = [metrics] if isinstance(metrics, str) else list(metrics)
    names: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name in ("default", "all"):
                names.extend(GROUPS)
            elif name in GROUPS:
                names.append(name)
            else:
                raise InputError(f"unknown metric group {name!r}; choose from default, {', '.join(GROUPS)}")
    if not names:
        raise InputError("no metrics selected")
    return tuple(g for g in GROUPS if g in names)


def _load_weights(loader: Any, file: str) -> tuple[Any, str | None]:
    """``loader()`` → (network, None), or (None, one-line reason) when the weights or PyTorch are missing."""
    try:
        return loader(), None
    except CheckpointError as exc:
        return None, _one_line(exc)
    except (MissingDependencyError, ImportError) as exc:
        return None, f"PyTorch is not installed ({_one_line(exc)}); then {file} is needed too"


def _load_syncnet(checkpoints: str | None) -> tuple[Any, str | None]:
    from retalk import checkpoints as ck

    return _load_weights(lambda: ck.load("syncnet", checkpoints), "syncnet_v2.model")


def _load_inception(checkpoints: str | None) -> tuple[Any, str | None]:
    from retalk.metrics import FID_WEIGHTS_FILE, load_fid_inception

    path = Path(checkpoints) / FID_WEIGHTS_FILE if checkpoints else None
    return _load_weights(lambda: load_fid_inception(path), FID_WEIGHTS_FILE)


def evaluate(dataset: str | Path, engine: str, out_dir: str | Path, protocol: str = "paired", workers: int = 1,
             ray: str | None = None, seed: int = 0, checkpoints: str | Path | None = None,
             metrics: Sequence[str] | str = ("default",), progress: bool = True, frame_step: int = 1) -> Summary:
    """Run ``engine`` over ``dataset`` under ``protocol``, score every clip, write the report to ``out_dir``.

    Args:
        dataset: a folder of videos (with optional same-name audio files) or a .csv/.jsonl manifest.
        engine: lip-sync engine name (``builtin``, ``wav2lip``, ``passthrough``).
        out_dir: output folder (created); a repeated run into it skips finished clips.
        protocol: ``paired`` (own speech, reconstruction) or ``unpaired`` (another clip's speech).
        workers: clips rendered at once: 1 = in this process, N = a spawn process pool
            (with ``ray="local"``: the CPUs given to the local Ray runtime).
        ray: None (no Ray), ``"local"`` (start a Ray runtime on this machine), ``"auto"`` or an
            address (join an existing cluster; dataset and ``out_dir`` must be on storage every node sees).
        seed: seed of the unpaired derangement.
        checkpoints: folder with ``syncnet_v2.model``, the FID Inception weights and the engine's
            weights (default ``$RETALK_CHECKPOINTS`` or ``./checkpoints``).
        metrics: metric groups (see :data:`GROUPS`), ``"default"`` for all.
        progress: show a progress bar over clips.
        frame_step: per-frame picture metrics (CPBD, PSNR, SSIM, FID/KID) use every N-th frame.

    Raises :class:`RetalkError` (one line) for a bad dataset, engine, protocol or output folder,
    and :class:`MissingDependencyError` when ``ray`` is given and Ray is not installed.
    """
    t_start = time.perf_counter()
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if frame_step < 1:
        raise InputError(f"--frame-step must be at least 1, got {frame_step}")
    groups = _groups(metrics)
    from retalk.engines.base import ENGINES

    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose from {', '.join(sorted(ENGINES))}")
    if ray is not None:
        _import_ray()
    pairs = pair_clips(load_dataset(dataset), protocol, seed)
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    previous = {r["id"]: r for r in read_results(out / RESULTS_CSV)}
    for r in previous.values():
        if r["engine"] and (r["engine"], r["protocol"]) != (engine, protocol):
            raise InputError(f"{out} holds results of engine {r['engine']!r} ({r['protocol']}); "
                             f"use another --out for engine {engine!r} ({protocol})")
    ck = str(Path(checkpoints).expanduser().absolute()) if checkpoints else None
    run = _Run(dataset=str(Path(dataset).expanduser().absolute()), engine=engine, out=out, protocol=protocol,
               workers=workers, ray=ray, seed=seed, groups=groups, frame_step=frame_step, progress=progress,
               checkpoints=ck)
    with contextlib.ExitStack() as stack:
        ray_api = stack.enter_context(_ray_session(ray, workers)) if ray is not None else None
        return _execute(run, pairs, previous, ray_api, t_start)


@dataclass(frozen=True)
class _Run:
    """The options of one :func:`evaluate` call, validated."""

    dataset: str
    engine: str
    out: Path
    protocol: str
    workers: int
    ray: str | None
    seed: int
    groups: tuple[str, ...]
    frame_step: int
    progress: bool
    checkpoints: str | None


def _execute(run: _Run, pairs: Sequence[Pair], previous: Mapping[str, Mapping[str, str]], ray_api: Any,
             t_start: float) -> Summary:
    """The body of :func:`evaluate` once the options are checked (and Ray, if asked for, is connected)."""
    from retalk.engines.base import create_engine

    engine, protocol, groups, ck, out = run.engine, run.protocol, run.groups, run.checkpoints, run.out
    frame_step, progress, ray, workers, seed = run.frame_step, run.progress, run.ray, run.workers, run.seed
    try:
        (out / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
        (out / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None

    # the engine must load (e.g. its weights) before any clip is tried
    options = {_CHECKPOINT_OPTION[engine]: ck} if ck and engine in _CHECKPOINT_OPTION else {}
    create_engine(engine, **options).close()

    unavailable: dict[str, str] = {}
    syncnet = inception = None
    if "lse" in groups:
        syncnet, reason = _load_syncnet(ck)
        if reason:
            unavailable["lse"] = reason
            log.warning("LSE-D/LSE-C unavailable: %s", reason)
    if "fid" in groups:
        inception, reason = _load_inception(ck)
        if reason:
            unavailable["fid"] = reason
            log.warning("FID/KID unavailable: %s", reason)
    lse_ok = "lse" in groups and syncnet is not None

    results_path = out / RESULTS_CSV
    kept: dict[str, dict[str, str]] = {}
    tasks: list[ClipTask] = []
    for p in pairs:
        video_out = out / VIDEOS_DIR / f"{p.clip.id}.mp4"
        task = ClipTask(clip_id=p.clip.id, video=str(p.clip.video), audio=str(p.audio), audio_id=p.audio_id,
                        output=str(video_out), engine=engine, protocol=protocol, groups=groups, lse=lse_ok,
                        checkpoints=ck, frame_step=frame_step)
        old = previous.get(p.clip.id)
        if (old is not None and old["status"] == "ok" and old["video"] == task.video and old["audio"] == task.audio
                and video_out.is_file()):
            if lse_ok and old["lse_d"] == UNAVAILABLE:
                tasks.append(replace(task, render=False))  # weights arrived: score again
            else:
                kept[p.clip.id] = dict(old)
        else:
            tasks.append(task)
    n_resumed = len(kept)
    if n_resumed:
        log.info("%d of %d clip(s) already done in %s; skipped", n_resumed, len(pairs), out)
    _write_results(results_path, sorted(kept.values(), key=lambda r: r["id"]))

    rows = dict(kept)
    if tasks:
        if ray_api is not None:
            backend = _run_ray(ray_api, tasks)
        else:
            backend = _run_local(tasks, workers, syncnet)
        bar = tqdm(total=len(pairs), initial=n_resumed, desc=f"eval {engine}", unit="clip", disable=not progress)
        with results_path.open("a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
            for row in backend:
                rows[row["id"]] = row
                writer.writerow(row)
                fh.flush()
                bar.update(1)
                if row["status"] != "ok":
                    bar.set_postfix_str(f"{sum(r['status'] != 'ok' for r in rows.values())} failed")
        bar.close()
    ordered = [rows[p.clip.id] for p in sorted(pairs, key=lambda p: p.clip.id)]
    _write_results(results_path, ordered)

    set_metrics: dict[str, float | str | None] = {}
    if "fid" in groups:
        if inception is None:
            set_metrics = {m.name: UNAVAILABLE for m in SET_METRICS}
        else:
            try:
                set_metrics = dict(_set_metrics(pairs, rows, out, inception, frame_step, progress))
            except (ValueError, RetalkError) as exc:
                log.warning("FID/KID failed: %s", _one_line(exc))
                set_metrics = {m.name: None for m in SET_METRICS}
                unavailable["fid"] = f"failed: {_one_line(exc)}"

    stats = _metric_stats(ordered, set(groups), unavailable)
    errors = {r["id"]: r["error"] for r in ordered if r["status"] != "ok"}
    n_ok = sum(r["status"] == "ok" for r in ordered)
    summary = Summary(out_dir=out, engine=engine, protocol=protocol, seed=seed, n_clips=len(ordered), n_ok=n_ok,
                      n_error=len(ordered) - n_ok, n_resumed=n_resumed,
                      means={k: v["mean"] for k, v in stats.items()}, set_metrics=set_metrics,
                      unavailable=dict(unavailable), errors=errors, rows=tuple(ordered),
                      elapsed_s=time.perf_counter() - t_start)

    plots_note = None
    try:
        _write_plots(out / PLOTS_DIR, ordered)
    except ImportError as exc:
        plots_note = f"matplotlib is not installed ({exc})"
        log.warning("plots not drawn: %s", plots_note)

    unavailable_json = {g: {"metrics": [m.name for m in METRICS + SET_METRICS if m.group == g], "reason": why}
                        for g, why in unavailable.items()}
    doc = {
        "engine": engine, "protocol": protocol, "seed": seed, "dataset": run.dataset,
        "out_dir": str(out), "metric_groups": list(groups), "frame_step": frame_step,
        "backend": f"ray:{ray}" if ray is not None else ("local" if workers <= 1 else f"process-pool:{workers}"),
        "counts": {"clips": summary.n_clips, "ok": n_ok, "error": summary.n_error, "resumed": n_resumed},
        "means": summary.means, "metrics": stats, "set_metrics": set_metrics, "unavailable": unavailable_json,
        "errors": errors, "plots": plots_note or "ok", "versions": _versions(ray is not None),
        "elapsed_s": round(summary.elapsed_s, 3),
    }
    _write_text(out / SUMMARY_JSON, json.dumps(_json_value(doc), indent=2, ensure_ascii=False) + "\n")
    _write_report(out / REPORT_MD, summary, stats, doc["dataset"], plots_note)
    log.info("eval done: %d ok, %d failed, %.1f s; results in %s", n_ok, summary.n_error, summary.elapsed_s, out)
    return summary
