"""``retalk eval``: run an engine over a dataset, score every clip, write tables and plots.

For each job of the protocol (see :mod:`retalk.evaluate.dataset`) :func:`~retalk.evaluate.clip.run_clip`
renders ``out_dir/videos/<id>.mp4`` with :func:`retalk.pipeline.sync` and scores it:

* weight-free, always: CPBD sharpness (whole frame and face box), audio-visual offset and
  confidence of the tracked mouth opening against the output's sound, mouth-opening
  statistics, landmark jitter; for ``paired`` also the reconstruction metrics against the
  source video (LMD of mouth and face, PSNR, SSIM, PSNR outside the face);
* LSE-D / LSE-C / SyncNet offset when ``syncnet_v2.model`` loads;
* FID / KID over the whole run (rendered frames against source frames) when the FID
  Inception weights load.

Missing weights never stop a run: those columns read ``unavailable`` and the reason is
recorded once in ``summary.json``.  A clip whose input is bad (a :class:`RetalkError`) gets
``status=error`` and a one-line error; the run goes on.  Any other exception is a bug and stops
the run with its traceback, keeping the rows finished so far.  Finished clips are skipped when
the run is repeated.

Clips run one after another (``workers=1``), in a local process pool (``workers=N``, spawn
context: mediapipe is not fork-safe) or as Ray tasks (``ray="local"`` starts a Ray runtime on
this machine, ``ray="auto"`` or an address joins an existing cluster).  All three produce the
same rows (sorted by clip id); only the timing columns ``render_s`` and ``score_s`` differ.

Outputs in ``out_dir``: ``results.csv``, ``summary.json``, ``report.md``, ``plots/per_clip.png``,
``plots/sync_offset_hist.png`` and ``videos/``.

This module is the orchestration only; the jobs live in :mod:`.dataset` and :mod:`.layouts` (what to
run), :mod:`.progress` (the bar, each warning once), :mod:`.columns` (schema), :mod:`.clip`
(one clip), :mod:`.backends` (serial, pool, Ray), :mod:`.results` (files), :mod:`.weights`
(optional networks), :mod:`.set_metrics` (FID/KID) and :mod:`.report` (summary, report, plots).
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from retalk.errors import InputError, RetalkError
from retalk.evaluate.backends import import_ray, ray_session, run_local, run_ray
from retalk.evaluate.clip import CHECKPOINT_OPTION, ClipTask, run_clip, score_clip
from retalk.evaluate.columns import (
    COLUMNS,
    GROUPS,
    INFO_COLUMNS,
    METRICS,
    PLOTS_DIR,
    REPORT_MD,
    RESULTS_CSV,
    SET_METRICS,
    SUMMARY_JSON,
    TIMING_COLUMNS,
    UNAVAILABLE,
    VIDEOS_DIR,
    Metric,
    one_line,
    select_groups,
)
from retalk.evaluate.dataset import PROTOCOLS, UNPAIRED_NOTE, Dataset, Pair, open_dataset, pair_clips
from retalk.evaluate.progress import RunProgress, frame_count, warn_once
from retalk.evaluate.report import Summary, metric_stats, write_plots, write_report, write_summary_json
from retalk.evaluate.results import ResultsAppender, read_results, write_results
from retalk.evaluate.set_metrics import fid_kid
from retalk.evaluate.weights import load_inception, load_syncnet

__all__ = [  # re-exported: the names other modules and tests import from here
    "COLUMNS", "GROUPS", "INFO_COLUMNS", "METRICS", "PLOTS_DIR", "REPORT_MD", "RESULTS_CSV", "SET_METRICS",
    "SUMMARY_JSON", "TIMING_COLUMNS", "UNAVAILABLE", "VIDEOS_DIR", "ClipTask", "Metric", "Summary", "evaluate",
    "read_results", "run_clip", "score_clip",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Run:
    """The options of one :func:`evaluate` call, validated."""

    dataset: str
    layout: str
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
    device: str | None = None
    subset: int | None = None
    n_dataset: int = 0


def evaluate(dataset: str | Path, engine: str, out_dir: str | Path, *, protocol: str = "paired", workers: int = 1,
             ray: str | None = None, seed: int = 0, checkpoints: str | Path | None = None,
             metrics: Sequence[str] | str = ("default",), progress: bool = True, frame_step: int = 1,
             device: str | None = None, subset: int | None = None) -> Summary:
    """Run ``engine`` over ``dataset`` under ``protocol``, score every clip, write the report to ``out_dir``.

    Args:
        dataset: ``LAYOUT:PATH`` (``lrs2:``, ``hdtf:``, ``folder:``, ``csv:``, ``jsonl:``) or a path: a
            folder of videos (with optional same-name audio files) or a .csv/.jsonl manifest
            (see :mod:`retalk.evaluate.dataset` and :mod:`retalk.evaluate.layouts`).
        engine: lip-sync engine name (``builtin``, ``wav2lip``, ``passthrough``).
        out_dir: output folder (created); a repeated run into it skips finished clips.
        protocol: ``paired`` (own speech, reconstruction) or ``unpaired`` (another clip's speech).
        workers: clips rendered at once: 1 = in this process, N = a spawn process pool
            (with ``ray="local"``: the CPUs given to the local Ray runtime).
        ray: None (no Ray), ``"local"`` (start a Ray runtime on this machine), ``"auto"`` or an
            address (join an existing cluster; dataset and ``out_dir`` must be on storage every node sees).
        seed: seed of the unpaired derangement and of the ``subset`` draw.
        checkpoints: folder with ``syncnet_v2.model``, the FID Inception weights and the engine's
            weights (default ``$RETALK_CHECKPOINTS`` or ``./checkpoints``).
        metrics: metric groups (see :data:`GROUPS`), ``"default"`` for all.
        progress: show a progress bar (frames and clips, with an ETA).
        frame_step: per-frame picture metrics (CPBD, PSNR, SSIM, FID/KID) use every N-th frame.
        device: torch device of a neural engine (``cpu``, ``cuda``, ``cuda:N``; None: automatic).
            The metric networks run on the CPU.
        subset: run on this many clips of the dataset only, drawn with ``seed`` (None: all).

    Raises :class:`RetalkError` (one line) for a bad dataset, engine, protocol or output folder,
    and :class:`MissingDependencyError` when ``ray`` is given and Ray is not installed: the run
    could not start.  Each clip's own problem (a missing or unreadable file, no face, an engine
    error raised as a :class:`RetalkError`) is a failed row, and the run goes on.  An exception
    of another type raised while a clip is scored is a bug in retalk and propagates.
    """
    t_start = time.perf_counter()
    # 1. check the options, the dataset and the output folder before any work
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if frame_step < 1:
        raise InputError(f"--frame-step must be at least 1, got {frame_step}")
    groups = select_groups(metrics)
    from retalk.engines import ENGINES
    from retalk.runtime.device import check_device_name

    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose from {', '.join(sorted(ENGINES))}")
    device = check_device_name(device)
    if ray is not None:
        import_ray()
    ds: Dataset = open_dataset(dataset, subset, seed)
    pairs = pair_clips(ds.clips, protocol, seed)
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    previous = {r["id"]: r for r in read_results(out / RESULTS_CSV)}
    for r in previous.values():
        if r["engine"] and (r["engine"], r["protocol"]) != (engine, protocol):
            raise InputError(f"{out} holds results of engine {r['engine']!r} ({r['protocol']}); "
                             f"use another --out for engine {engine!r} ({protocol})")
    ck = str(Path(checkpoints).expanduser().absolute()) if checkpoints else None
    run = _Run(dataset=str(ds.path), layout=ds.layout, subset=subset, n_dataset=ds.n_total, engine=engine, out=out,
               protocol=protocol, workers=workers, ray=ray, seed=seed, groups=groups, frame_step=frame_step,
               progress=progress, checkpoints=ck, device=device)
    with contextlib.ExitStack() as stack:
        stack.enter_context(warn_once())
        ray_api = stack.enter_context(ray_session(ray, workers)) if ray is not None else None
        return _execute(run, pairs, previous, ray_api, t_start)


def _execute(run: _Run, pairs: Sequence[Pair], previous: Mapping[str, Mapping[str, str]], ray_api: Any,
             t_start: float) -> Summary:
    """Steps 2–7 of :func:`evaluate`, once the options are checked (and Ray, if asked for, is connected)."""
    stages: dict[str, float] = {}
    syncnet, inception, unavailable = _load_networks(run)  # 2. the engine must load before any clip is tried
    _make_folders(run.out)  # 3. the output folders (none left behind when the engine cannot load)
    kept, tasks = _plan(run, pairs, previous, lse_ok="lse" in run.groups and syncnet is not None)  # 4. resume
    stages["setup"] = time.perf_counter() - t_start

    t = time.perf_counter()
    rows = _run_clips(run, tasks, kept, syncnet, ray_api)  # 5. render and score the clips
    ordered = [rows[p.clip.id] for p in sorted(pairs, key=lambda p: p.clip.id)]
    write_results(run.out / RESULTS_CSV, ordered)
    stages["clips"] = time.perf_counter() - t

    t = time.perf_counter()
    set_metrics = _score_set(run, pairs, rows, inception, unavailable)  # 6. FID/KID over the run
    stages["set_metrics"] = time.perf_counter() - t

    summary = _report(run, ordered, set_metrics, unavailable, len(kept), t_start, stages)  # 7. summary, report, plots
    log.info("eval done: %d ok, %d failed, %.1f s; results in %s", summary.n_ok, summary.n_error,
             summary.elapsed_s, run.out)
    return summary


def _make_folders(out: Path) -> None:
    try:
        (out / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
        (out / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None


def _load_networks(run: _Run) -> tuple[Any, Any, dict[str, str]]:
    """Load the engine once (then close it), SyncNet and the FID Inception; → (syncnet, inception, unavailable)."""
    from retalk.engines import create_engine

    ck = run.checkpoints
    options: dict[str, Any] = {CHECKPOINT_OPTION[run.engine]: ck} if ck and run.engine in CHECKPOINT_OPTION else {}
    if run.device is not None:  # on Ray the GPUs are the workers': this process checks the engine loads on its CPU
        options["device"] = run.device if run.ray is None else "cpu"
    create_engine(run.engine, **options).close()

    unavailable: dict[str, str] = {}
    syncnet = inception = None
    if "lse" in run.groups:
        syncnet, reason = load_syncnet(ck)
        if reason:
            unavailable["lse"] = reason
            log.warning("LSE-D/LSE-C unavailable: %s", reason)
    if "fid" in run.groups:
        inception, reason = load_inception(ck)
        if reason:
            unavailable["fid"] = reason
            log.warning("FID/KID unavailable: %s", reason)
    return syncnet, inception, unavailable


def _plan(run: _Run, pairs: Sequence[Pair], previous: Mapping[str, Mapping[str, str]],
          lse_ok: bool) -> tuple[dict[str, dict[str, str]], list[ClipTask]]:
    """Rows kept from an earlier run (→ ``results.csv`` now) and the tasks still to run."""
    kept: dict[str, dict[str, str]] = {}
    tasks: list[ClipTask] = []
    for p in pairs:
        video_out = run.out / VIDEOS_DIR / f"{p.clip.id}.mp4"
        task = ClipTask(clip_id=p.clip.id, video=str(p.clip.video), audio=str(p.audio), audio_id=p.audio_id,
                        output=str(video_out), engine=run.engine, protocol=run.protocol, groups=run.groups,
                        lse=lse_ok, checkpoints=run.checkpoints, frame_step=run.frame_step, device=run.device)
        old = previous.get(p.clip.id)
        if (old is not None and old["status"] == "ok" and old["video"] == task.video and old["audio"] == task.audio
                and video_out.is_file()):
            if lse_ok and old["lse_d"] == UNAVAILABLE:
                tasks.append(replace(task, render=False))  # weights arrived: score again
            else:
                kept[p.clip.id] = dict(old)
        else:
            tasks.append(task)
    if kept:
        log.info("%d of %d clip(s) already done in %s; skipped", len(kept), len(pairs), run.out)
    write_results(run.out / RESULTS_CSV, sorted(kept.values(), key=lambda r: r["id"]))
    return kept, tasks


def _run_clips(run: _Run, tasks: Sequence[ClipTask], kept: Mapping[str, dict[str, str]], syncnet: Any,
               ray_api: Any) -> dict[str, dict[str, str]]:
    """Run ``tasks`` on the chosen backend, appending each row to ``results.csv`` as it finishes; → rows by id."""
    rows = dict(kept)
    if not tasks:
        return rows
    # the bar's unit is the frame (read from the headers only when a bar is shown); its postfix counts clips
    ids = [t.clip_id for t in tasks] + list(kept)
    videos = {t.clip_id: t.video for t in tasks} | {i: r["video"] for i, r in kept.items()}
    frames = {i: frame_count(videos[i]) if run.progress else 1 for i in ids}
    backend: Iterator[dict[str, str]] = (run_ray(ray_api, tasks) if ray_api is not None
                                         else run_local(tasks, run.workers, syncnet))
    with RunProgress(frames, list(kept), f"eval {run.engine}", run.progress) as bar, \
            ResultsAppender(run.out / RESULTS_CSV) as append:
        for row in backend:
            rows[row["id"]] = row
            append(row)
            bar.finished(row["id"], row["status"] == "ok")
    return rows


def _score_set(run: _Run, pairs: Sequence[Pair], rows: Mapping[str, Mapping[str, str]], inception: Any,
               unavailable: dict[str, str]) -> dict[str, float | str | None]:
    """FID/KID when asked for: ``unavailable`` without weights; None (reason added to ``unavailable``) on bad input."""
    if "fid" not in run.groups:
        return {}
    if inception is None:
        return {m.name: UNAVAILABLE for m in SET_METRICS}
    try:
        return dict(fid_kid(pairs, rows, run.out, inception, run.frame_step, run.progress))
    except RetalkError as exc:
        log.warning("FID/KID failed: %s", one_line(exc))
        unavailable["fid"] = f"failed: {one_line(exc)}"
        return {m.name: None for m in SET_METRICS}


def _report(run: _Run, ordered: Sequence[dict[str, str]], set_metrics: dict[str, float | str | None],
            unavailable: Mapping[str, str], n_resumed: int, t_start: float, stages: dict[str, float]) -> Summary:
    """Write the plots, ``summary.json`` and ``report.md``; return the :class:`Summary`."""
    t = time.perf_counter()
    stats = metric_stats(ordered, set(run.groups), unavailable)
    errors = {r["id"]: r["error"] for r in ordered if r["status"] != "ok"}
    n_ok = sum(r["status"] == "ok" for r in ordered)
    plots_note = None
    try:
        write_plots(run.out / PLOTS_DIR, ordered)
    except ImportError as exc:
        plots_note = f"matplotlib is not installed ({exc})"
        log.warning("plots not drawn: %s", plots_note)
    stages["report"] = time.perf_counter() - t  # the JSON and Markdown below take milliseconds
    summary = Summary(out_dir=run.out, engine=run.engine, protocol=run.protocol, seed=run.seed,
                      n_clips=len(ordered), n_ok=n_ok, n_error=len(ordered) - n_ok, n_resumed=n_resumed,
                      means={k: v["mean"] for k, v in stats.items()}, set_metrics=set_metrics,
                      unavailable=dict(unavailable), errors=errors, rows=tuple(ordered),
                      elapsed_s=time.perf_counter() - t_start, stages_s=dict(stages))

    backend = f"ray:{run.ray}" if run.ray is not None else ("local" if run.workers <= 1
                                                             else f"process-pool:{run.workers}")
    write_summary_json(run.out / SUMMARY_JSON, summary, stats, dataset=run.dataset, groups=run.groups,
                       frame_step=run.frame_step, backend=backend, plots_note=plots_note, ray_used=run.ray is not None,
                       extra=_dataset_record(run))
    write_report(run.out / REPORT_MD, summary, stats, run.dataset, plots_note, notes=_dataset_notes(run))
    return summary


def _dataset_record(run: _Run) -> dict[str, Any]:
    """``summary.json``'s record of the dataset's layout, the subset drawn and how the protocol paired clips."""
    return {"dataset_layout": run.layout, "dataset_clips": run.n_dataset,
            "subset": None if run.subset is None else {"clips": run.subset, "seed": run.seed},
            "pairing": UNPAIRED_NOTE if run.protocol == "unpaired" else "each video is driven by its own speech"}


def _dataset_notes(run: _Run) -> list[str]:
    """The same record as :func:`_dataset_record`, as sentences for ``report.md``."""
    notes = [f"Layout `{run.layout}`, {run.n_dataset} clip(s) in the dataset"
             + (f"; a subset of {run.subset} drawn with seed {run.seed}." if run.subset is not None else ".")]
    if run.protocol == "unpaired":
        notes.append(f"Pairing: {UNPAIRED_NOTE}; seed {run.seed}. Each row's `audio_id` names the clip whose "
                     "speech drove it.")
    return notes
