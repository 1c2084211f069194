"""Dubbing: a talking-head video (or photo) + speech → the same video with lips in sync.

Two streaming passes over the source:

1. **Analysis**: decode, track the face, let the engine collect what it needs
   (bounded), keep only landmarks per frame.
2. **Rendering**: decode again in output order, render, encode and mux the
   speech, writing to a temporary file renamed on success.

Output length follows the audio: output frame *i* shows source frame
``schedule[i]`` at time ``i / fps``. A longer audio plays the source back and
forth (ping-pong), never jumping; the frames for the later runs are decoded again
from the source in bounded windows (:mod:`retalk.media.backward`), with no
temporary files.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retalk.engines import ENGINES, create_engine
from retalk.engines.base import Engine, Plan, render_slots
from retalk.errors import InputError
from retalk.face.tracker import FaceTrack, FaceTracker
from retalk.media import VideoInfo, VideoSink, check_not_silent, iter_frames, load_audio, probe_video
from retalk.media.audio import Audio
from retalk.media.backward import ScheduledFrames
from retalk.media.sink import check_output
from retalk.runtime.aside import Aside
from retalk.runtime.profile import StageClock, Timings
from retalk.runtime.stages import BatchOp, Prefetcher, Slot, run_ops, run_ops_sequential
from retalk.speech.mouth import mouth_track, timed_phones
from retalk.speech.types import Phone

log = logging.getLogger(__name__)

ASIDE_MIN_SECONDS = 4.0
"""Speech at least this long is phone-recognized in a child process during the analysis pass (shorter: the
child's start-up, about 0.2 s of CPU, costs more than the overlap gains) ..."""
ASIDE_MIN_CORES = 4
"""... on a machine with at least this many cores. The analysis pass keeps about 1.3-1.5 cores busy; on 2 cores
shared with other work the child only competed with it (measured, 10 s 720p clip at load 2.8-3.8: analysis pass
+0.4-0.6 s, planning -0.35-0.4 s, the whole run 0.2-0.4 s slower), so there the recognizer runs in-process."""

EXPRESSION_SCALE_RANGE = (0.0, 3.0)
"""Allowed ``expression_scale`` (mouth amplitude), inclusive: the same as ``animate``'s."""


@dataclass(frozen=True)
class SyncOptions:
    """Options of :func:`sync`.

    ``engine``: an engine name (see :data:`retalk.engines.ENGINES`; ``engine_options`` go to its
    constructor) or an :class:`Engine` instance, used for this one call and not closed by it.
    ``device``: where neural engines and the enhancer run ("cpu", "cuda", "cuda:N"; None: CUDA if
    available); CPU-only engines ignore it.
    ``fps``: frame rate when the face is a still image (default 25); a video keeps its own rate, and
    giving ``fps`` with a video is an :class:`InputError` (no resampling). ``face_index``/``box``: which face is the speaker.
    ``phones``: exact phone timings of the speech (from the synthesizer), skipping recognition;
    ``phone_notation``: their notation ("espeak" for :mod:`retalk.speech.tts`, "arpabet", "ipa").
    ``recognize``: run the phone recognizer on natural speech (English acoustic model; other
    languages still get motion from the acoustic aperture). ``expression_scale``: mouth amplitude (1 = natural,
    0 = the mouth rests between closures), within :data:`EXPRESSION_SCALE_RANGE`.
    ``crf``/``preset``: H.264 quality (17 ≈ visually lossless) and speed.
    ``hold_repeats``: where the source repeats a frame (a frame-rate conversion's duplicate, e.g.
    24 fps footage at 30), repeat the output frame too, so the mouth moves in step with the picture
    (see :func:`hold_frames`).
    ``enhancer``: a face-restoration network applied to the face of every rendered frame (e.g. "gfpgan";
    needs the neural extra and its checkpoint). ``device``: torch device for neural engines and the
    enhancer (``cpu``, ``cuda``, ``cuda:N``; None: CUDA when available; the built-in engine ignores it).
    ``concurrent``: overlap the rendering pass's stages in threads (:func:`retalk.runtime.run_ops`);
    False runs the same steps one after another (same output, frame for frame).
    ``analysis_workers``: processes that track the face in consecutive parts of a video
    (:mod:`retalk.face.parallel`); only for engines that do not watch the analysis pass (neural
    ones, passthrough) and an automatically chosen speaker. None: one per core but one, at most 8,
    from 4 cores up (1 below); 1: one process.
    """

    engine: str | Engine = "builtin"
    fps: float | None = None
    face_index: int | None = None
    box: tuple[float, float, float, float] | None = None
    phones: Sequence[Phone] | None = None
    phone_notation: str | None = "espeak"
    recognize: bool = True
    expression_scale: float = 1.0
    crf: int = 17
    preset: str = "superfast"
    hold_repeats: bool = True
    engine_options: dict = field(default_factory=dict)
    enhancer: str | None = None
    device: str | None = None
    concurrent: bool = True
    analysis_workers: int | None = None
    progress: bool = True


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync` wrote: path, frame count, rate (fps), duration (s), the fraction of frames with a face,
    and the time each stage worked (:class:`retalk.runtime.Timings`)."""

    path: Path
    frames: int
    fps: float
    duration: float
    face_fraction: float
    timings: Timings = field(default_factory=Timings)


def ping_pong(n_source: int, n_out: int) -> np.ndarray:
    """Source frame index for each output frame: 0…N−1, N−2…0, 1… (cut when ``n_out <= n_source``)."""
    i = np.arange(n_out)
    if n_source <= 1:
        return np.zeros(n_out, np.int64)
    p = i % (2 * n_source - 2)
    return np.where(p < n_source, p, 2 * n_source - 2 - p).astype(np.int64)


def hold_frames(schedule: np.ndarray, repeat: np.ndarray, closed: np.ndarray | None = None) -> np.ndarray:
    """Which output frames repeat the previous output frame because the source repeats its picture there.

    ``repeat[k]``: source frame *k* shows the same face as frame *k*−1 (:attr:`FaceTrack.repeat`).
    Only an isolated repeat is cadence (a rate conversion's duplicate, e.g. every fifth frame
    of 24 fps footage at 30); a run of repeats is a frozen picture, during which the mouth keeps
    following the speech. Output frame *i* is held when it and frame *i*−1 show such a pair
    (in either direction of a ping-pong), never twice in a row, and not where the lips close or
    open (``closed[i] != closed[i-1]``), so no closure is lost.
    """
    r = np.asarray(repeat, bool)
    isolated = r.copy()
    isolated[1:] &= ~r[:-1]
    isolated[:-1] &= ~r[1:]
    s = np.asarray(schedule, np.int64)
    hold = np.zeros(len(s), bool)
    if len(s) < 2 or not isolated.any():
        return hold
    a, b = s[:-1], s[1:]
    cand = (np.abs(b - a) == 1) & isolated[np.maximum(a, b)]
    if closed is not None:
        c = np.asarray(closed, bool)
        cand &= c[1:] == c[:-1]
    for i in np.flatnonzero(cand) + 1:
        hold[i] = not hold[i - 1]
    return hold


def _start_engine(opt: SyncOptions, pool: ThreadPoolExecutor) -> tuple[Engine | None, Future | None]:
    """The engine, or a future of it when it can be built while the analysis pass runs.

    An injected instance is used as it is. An engine that watches the analysis pass
    (:meth:`Engine.observe`, the built-in engine) is built at once; one that does not (a neural
    engine) is built in the background (importing torch, reading its checkpoint, starting CUDA),
    so its start-up overlaps the analysis pass. ``opt.device`` is passed to the engine.
    """
    if isinstance(opt.engine, Engine):
        return opt.engine, None
    options = dict(opt.engine_options)
    if opt.device is not None:
        options.setdefault("device", opt.device)
    spec = ENGINES.get(opt.engine)
    if spec is None or spec.observes:  # an unknown name fails here, listing the choices
        return create_engine(opt.engine, **options), None
    return None, pool.submit(create_engine, opt.engine, **options)


def _start_recognizer(opt: SyncOptions, engine: Engine | None, speech: Audio) -> Aside | None:
    """Phone recognition started in a child process (:mod:`retalk.runtime.aside`), to run beside the analysis
    pass, where :func:`timed_phones` would recognize (no phones given, recognition on, an engine that uses
    phones) and a core is likely free (:data:`ASIDE_MIN_CORES`); None otherwise. Pocketsphinx holds the GIL, so
    a thread would only take turns with the tracker."""
    if opt.phones is not None or not opt.recognize or engine is None or not engine.needs_phones \
            or speech.duration < ASIDE_MIN_SECONDS or (os.cpu_count() or 1) < ASIDE_MIN_CORES:
        return None
    from retalk.speech import phones as phones_mod

    return Aside(phones_mod.recognize_phones, speech.samples, speech.sample_rate)


def _analysis_workers(opt: SyncOptions, info: VideoInfo, engine: Engine | None) -> int:
    """Processes for the analysis pass: several only for a video whose engine does not watch the pass,
    with the speaker chosen automatically; by default one per core but one (at most 8) from 4 cores up."""
    if engine is not None or info.is_image or opt.face_index is not None or opt.box is not None:
        return 1
    if opt.analysis_workers is not None:
        return max(1, int(opt.analysis_workers))
    cores = os.cpu_count() or 1
    return min(8, cores - 1) if cores >= 4 else 1


def _analyse(face: str | Path, info: VideoInfo, opt: SyncOptions, engine: Engine | None, pending: Future | None,
             clock: StageClock) -> tuple[FaceTrack, int]:
    """Pass 1: decode every source frame, track the face, let the engine observe. Returns (track, frames)."""
    workers = _analysis_workers(opt, info, engine)
    if workers > 1:
        from retalk.face.parallel import track_in_parts

        with clock.wall("analysis"):
            parted = track_in_parts(info, workers)
        if parted is not None:
            track, n_src, busy = parted
            for k, seconds in enumerate(busy):  # one "thread" per process
                clock.add("analysis.track", seconds, items=n_src if k == 0 else 0, thread=-2 - k)
            return track, n_src
    tracker = FaceTracker(face_index=opt.face_index, box=opt.box, static=info.is_image)
    n_src = 0
    bar = tqdm(total=info.n_frames, desc="analysing", unit="frame", disable=not opt.progress, leave=False)
    with clock.wall("analysis"):
        for k, frame in enumerate(Prefetcher(iter_frames(info), clock, "analysis.decode")):
            with clock.time("analysis.track"):
                lm = tracker.update(frame)
            if engine is not None:
                engine.observe(k, frame, lm)
            elif pending is not None and pending.done() and pending.exception() is not None:
                raise pending.exception()  # a missing or broken checkpoint: stop now, not after the pass
            n_src += 1
            bar.update(1)
        bar.close()
        if n_src == 0:
            raise InputError(f"{face}: no frames could be decoded")
        track = tracker.finish()
    return track, n_src


def sync(face: str | Path, audio: str | Path, outfile: str | Path, options: SyncOptions | None = None) -> SyncResult:
    """Re-render ``face`` (video or photo) so its lips follow ``audio``; write ``outfile`` (mp4).

    Raises :class:`retalk.errors.RetalkError` subclasses for bad input. Never
    leaves a partial ``outfile``.
    """
    # 1. Check inputs before any work
    opt = options or SyncOptions()
    lo, hi = EXPRESSION_SCALE_RANGE
    if not lo <= float(opt.expression_scale) <= hi:  # NaN fails too
        raise InputError(f"--expression-scale {opt.expression_scale}: choose between {lo:g} and {hi:g}")
    check_output(outfile)
    info = probe_video(face, image_fps=opt.fps or 25.0)
    if opt.fps is not None and not info.is_image:
        raise InputError(f"--fps applies to a still image; {face} is a video and keeps its own rate "
                         f"({float(info.fps):.3f} fps)")
    speech = load_audio(audio)
    check_not_silent(speech)
    fps = float(info.fps)
    n_out = max(1, int(round(speech.duration * fps)))
    clock = StageClock()
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retalk-start")
    injected = isinstance(opt.engine, Engine)  # the caller's engine: the caller closes it
    engine: Engine | None = None
    pending: Future | None = None
    restorer = None
    aside: Aside | None = None
    face_fraction = 0.0
    try:
        # 2. Build the engine (neural ones in the background) and the enhancer
        with clock.wall("start-up"):
            engine, pending = _start_engine(opt, background)
            if opt.enhancer:
                from retalk.enhance import create_restorer

                restorer = create_restorer(opt.enhancer, device=opt.device)
        # 3. Analysis pass (phone recognition beside it, in a child process)
        aside = _start_recognizer(opt, engine, speech)
        track, n_src = _analyse(face, info, opt, engine, pending, clock)
        with clock.wall("engine start-up (after analysis)"):
            if pending is not None:
                engine = pending.result()
                pending = None
        assert engine is not None
        face_fraction = float(track.valid.mean())
        if face_fraction == 0.0:
            log.warning("%s: no face found in any frame; the video is passed through with the new audio", face)
            if not injected:
                engine.close()
            engine, injected = create_engine("passthrough"), False
        # 4. Speech and the plan
        with clock.wall("planning"):
            phones, exact, notation = timed_phones(speech.samples, speech.sample_rate, opt.phones, opt.phone_notation,
                                                   opt.recognize and engine.needs_phones,
                                                   aside.result if aside is not None else None)
            mouth = mouth_track(speech.samples, speech.sample_rate, fps, n_out, phones, exact, opt.expression_scale,
                                notation)
            schedule = ping_pong(n_src, n_out)
            hold = np.zeros(n_out, bool)
            if opt.hold_repeats and track.repeat is not None:
                hold = hold_frames(schedule, track.repeat, mouth.closed)
                if hold.any():
                    log.info("the source repeats frames: %d output frames (%.0f%%) repeat the previous one in step",
                             int(hold.sum()), 100 * hold.mean())
            plan = Plan(track=track, mouth=mouth, schedule=schedule, fps=fps, audio=speech.samples,
                        sample_rate=speech.sample_rate, still=info.is_image, source=str(face), clock=clock,
                        progress=opt.progress)
            engine.prepare(plan)
        # 5. Rendering pass: decode → engine → enhancer → encode, overlapped
        out_path = Path(outfile)
        with clock.wall("rendering"), VideoSink(out_path, info.width, info.height, info.fps, audio_path=audio,
                                                 duration=speech.duration, crf=opt.crf, preset=opt.preset) as sink:
            frames = Prefetcher(ScheduledFrames(info, schedule, n_src), clock, "render.decode")
            slots: Iterator[Slot] = (Slot(i, int(schedule[i]), None if hold[i] else frame,
                                          bool(track.valid[schedule[i]]))
                                     for i, frame in enumerate(frames))
            ops: list[BatchOp] = []
            if isinstance(engine, BatchOp):
                ops.append(engine)
            elif callable(getattr(engine, "batch_ops", None)):  # several networks, one op each
                ops.extend(engine.batch_ops())
            else:
                slots = render_slots(engine, slots, clock)
            if restorer is not None:
                from retalk.enhance.op import RestoreOp

                ops.append(RestoreOp(restorer, lambda s: track.landmarks[s.src_index, :, :2]))
            bar = tqdm(total=n_out, desc="rendering", unit="frame", disable=not opt.progress, leave=False)
            last: np.ndarray | None = None
            run = run_ops if opt.concurrent else run_ops_sequential
            for slot in run(slots, ops, clock=clock):
                last = slot.frame if slot.frame is not None else last  # a held frame: the previous output again
                sink.write(last)
                bar.update(1)
            bar.close()
            if sink.frames_written != n_out:
                raise InputError(f"{face}: expected {n_out} frames, rendered {sink.frames_written}")
            encode_busy = sink.busy_s
        clock.add("encode", encode_busy, items=n_out, thread=-1)
    finally:
        if aside is not None:
            aside.close()
        if pending is not None:
            pending.cancel()
            try:  # an engine built in the background while the analysis failed: free it
                pending.result().close()
            except BaseException:  # noqa: BLE001 - the first error is the one to report
                pass
        background.shutdown(wait=False)
        if engine is not None and not injected:
            engine.close()
    timings = clock.timings()
    log.info("%s", timings.report())
    log.info("wrote %s: %d frames at %.3f fps (%.2f s), face in %.0f%% of source frames",
             out_path, n_out, fps, n_out / fps, 100 * face_fraction)
    return SyncResult(out_path, n_out, fps, n_out / fps, face_fraction, timings)
