"""One clip of ``retalk eval``: render it, score it, return its ``results.csv`` row.

:class:`ClipTask` and :func:`run_clip` are module-level so that spawn pool workers and Ray tasks
pickle them by reference; every backend runs exactly this code.

Errors (issue 15): only a :class:`~retalk.errors.RetalkError` is a clip's bad input — an
unreadable video, no sound, no face, a clip too short for a metric. :func:`run_clip` records it
as ``status=error`` with its one-line message; a metric that cannot be computed for the clip
(:class:`Unscorable`, or any other ``RetalkError`` it raises) adds a note and leaves its cell
empty. Any other exception (``ValueError``, ``IndexError``, …) is a bug in retalk: it is not
caught here, so it stops the run with its traceback (the rows finished before it stay in
``results.csv``, and the next run resumes from them).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retalk.dsp import runs
from retalk.errors import InputError, RetalkError
from retalk.evaluate.columns import COLUMNS, UNAVAILABLE, fmt, one_line
from retalk.evaluate.frame_metrics import FrameMetrics, Unscorable
from retalk.evaluate.frame_metrics import attempt as _attempt
from retalk.evaluate.frame_metrics import cpbd_sized as _cpbd_sized  # noqa: F401 - kept under its old name
from retalk.evaluate.frame_metrics import leaves_pixels as _leaves_pixels  # noqa: F401 - kept under its old name
from retalk.face.landmarks import opening_series

log = logging.getLogger(__name__)

AV_MIN_OVERLAP = 10
"""Frames of both mouth opening and sound that the AV offset needs."""
KEEP_FRAMES_BYTES = 512 * 2**20
"""Decoded frames of the rendered video kept for LSE's crops (bytes); a longer clip is decoded a second time."""
CHECKPOINT_OPTION = {"wav2lip": "checkpoint"}
"""Engines that take a checkpoint (file or folder) option, and its keyword."""


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
    device: str | None = None


def base_row(task: ClipTask) -> dict[str, str]:
    """A ``results.csv`` row of ``task`` with its identity filled in, every other cell empty and ``status=error``."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(id=task.clip_id, video=task.video, audio=task.audio, audio_id=task.audio_id, engine=task.engine,
               protocol=task.protocol, status="error")
    return row


def error_row(task: ClipTask, exc: BaseException) -> dict[str, str]:
    """The row of a clip that failed with ``exc`` (one-line ``error``)."""
    row = base_row(task)
    row["error"] = one_line(exc)
    return row


def run_clip(task: ClipTask, syncnet: Any = None) -> dict[str, str]:
    """Render (unless ``task.render`` is False) and score one clip; return its ``results.csv`` row.

    A clip whose input is bad (a :class:`RetalkError`) gets ``status=error`` and the one-line
    ``error``; any other exception propagates (a bug: see the module docstring).
    ``syncnet``: a loaded SyncNet to reuse; loaded here from ``task.checkpoints`` when
    ``task.lse`` is set and none is given.
    """
    row = base_row(task)
    out = Path(task.output)
    t0 = time.perf_counter()
    try:
        if task.render:
            from retalk.media.probe import check_file
            from retalk.pipeline import SyncOptions, sync

            check_file(task.video, "video")  # a file missing from a manifest or a list: this row fails
            check_file(task.audio, "audio")

            options = {}
            if task.checkpoints and task.engine in CHECKPOINT_OPTION:
                options[CHECKPOINT_OPTION[task.engine]] = task.checkpoints
            sync(task.video, task.audio, out, SyncOptions(engine=task.engine, progress=False, engine_options=options,
                                                          device=task.device))
            row["render_s"] = fmt(time.perf_counter() - t0)
        elif not out.is_file():
            raise InputError(f"{out}: rendered video is missing")
        t1 = time.perf_counter()
        if task.lse and syncnet is None:
            from retalk import checkpoints

            syncnet = checkpoints.load("syncnet", task.checkpoints)
        values, notes = score_clip(task, syncnet)
        row.update({k: fmt(v) for k, v in values.items()})
        row["notes"] = "; ".join(notes)
        row["score_s"] = fmt(time.perf_counter() - t1)
        row["status"] = "ok"
    except RetalkError as exc:  # the clip's input is bad: record it, the run goes on
        row["status"] = "error"
        row["error"] = one_line(exc)
        log.warning("clip %s failed: %s", task.clip_id, row["error"])
        log.debug("clip %s", task.clip_id, exc_info=True)
    return row


def score_clip(task: ClipTask, syncnet: Any = None) -> tuple[dict[str, float | int | str | None], list[str]]:
    """Metrics of the rendered ``task.output`` (see :data:`~retalk.evaluate.columns.METRICS`) and notes on
    those that could not be computed.

    One decoding pass tracks every frame of the rendered video (and, for ``paired``, of the
    source, whose frame *i* the output's frame *i* shows) once; every metric shares those frames
    and landmarks.  Per-frame picture metrics use every ``task.frame_step``-th frame.  LSE's
    SyncNet crops come from the decoded frames, kept in memory up to :data:`KEEP_FRAMES_BYTES`
    (a longer clip is decoded a second time).
    """
    from retalk.face.tracker import FaceTracker
    from retalk.media import iter_frames, load_audio, probe_video
    from retalk.media.video import prefetch

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
    src_lms: list[np.ndarray | None] = []
    kept: list[np.ndarray] | None = [] if "lse" in groups and task.lse else None  # SyncNet's crops come from these
    n = 0
    try:
        with FrameMetrics(sharpness="sharpness" in groups) as per_frame:
            for i, frame in enumerate(prefetch(iter_frames(info))):
                n += 1
                if kept is not None:
                    kept.append(frame)
                    if len(kept) * frame.nbytes > KEEP_FRAMES_BYTES:
                        kept = None  # a long clip: LSE decodes it again instead
                lm = gen_tracker.update(frame)
                src = next(src_frames, None) if src_frames is not None else None
                if src is not None and src_tracker is not None:
                    src_lms.append(src_tracker.update(src))
                if i % step:
                    continue
                paired = src is not None and src.shape == frame.shape
                if "sharpness" in groups or paired:
                    per_frame.submit(frame, lm, src if paired else None, src_lms[-1] if paired else None)
            pic = per_frame.gather(notes)
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
        values["cpbd"] = _mean(pic["cpbd"])
        values["cpbd_face"] = _mean(pic["cpbd_face"])

    lms, valid = gen_track.landmarks, gen_track.valid
    opening = opening_series(lms, valid)
    audio = None
    if "sync" in groups or "lse" in groups:
        audio = load_audio(rendered)
    if "sync" in groups and audio is not None:
        from retalk.metrics import av_offset

        def sync_scores() -> None:
            n_sound = int(np.floor(np.size(audio.samples) / (audio.sample_rate / float(fps))))  # frames of sound
            if min(len(opening), n_sound) < AV_MIN_OVERLAP:
                raise Unscorable(f"need at least {AV_MIN_OVERLAP} frames of both video and audio, "
                                 f"got {min(len(opening), n_sound)}")
            res = av_offset(opening, audio.samples, audio.sample_rate, fps, min_overlap=AV_MIN_OVERLAP)
            values["av_offset"] = res.offset
            values["av_confidence"] = res.confidence

        _attempt(notes, "av_offset", sync_scores)
    if "mouth" in groups:
        from retalk.metrics import mouth_opening_stats

        def mouth_scores() -> None:
            if not np.isfinite(opening).any():
                raise Unscorable("mouth-opening series has no finite values")
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
        for name in ("psnr", "ssim", "psnr_outside"):
            values[name] = _mean(pic[name])
    if "lse" in groups:
        if not task.lse:
            values.update(lse_d=UNAVAILABLE, lse_c=UNAVAILABLE, lse_offset=UNAVAILABLE)
        elif audio is not None:
            def lse() -> None:
                from retalk.metrics.lse import lse_of_video

                frames = iter(kept) if kept is not None else iter_frames(info)
                res = lse_of_video(frames, gen_track.boxes, valid, fps, audio.samples, syncnet)
                values.update(lse_d=res.lse_d, lse_c=res.lse_c, lse_offset=res.offset)

            _attempt(notes, "lse", lse)
    return values, notes


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _jitter(lms: np.ndarray, valid: np.ndarray) -> float:
    """Landmark jitter averaged over runs of ≥ 3 consecutive frames with a face (weighted by their length)."""
    from retalk.metrics import landmark_jitter

    total, weight = 0.0, 0
    for a, b in runs(valid):
        if b - a >= 3:
            total += landmark_jitter(lms[a:b]) * (b - a - 2)
            weight += b - a - 2
    if weight == 0:
        raise Unscorable("needs 3 consecutive frames with a face")
    return total / weight
