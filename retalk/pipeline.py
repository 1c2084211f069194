"""Dubbing: a talking-head video (or photo) + speech → the same video with lips in sync.

Two streaming passes over the source:

1. **Analysis**: decode, track the face, let the engine collect what it needs
   (bounded), keep only landmarks per frame.
2. **Rendering**: decode again in output order, render, encode and mux the
   speech, writing to a temporary file renamed on success.

Output length follows the audio: output frame *i* shows source frame
``schedule[i]`` at time ``i / fps``. A longer audio plays the source back and
forth (ping-pong), never jumping; frames for the backward runs come from a raw
spool file on disk written during the first forward run, so memory stays flat.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retalk.engines import create_engine
from retalk.engines.base import Engine, Plan, RenderItem, render_in_order
from retalk.errors import InputError
from retalk.face.tracker import FaceTracker
from retalk.media import VideoInfo, VideoSink, check_not_silent, iter_frames, load_audio, probe_video
from retalk.media.video import check_output, prefetch
from retalk.speech.mouth import mouth_track, timed_phones
from retalk.speech.types import Phone

log = logging.getLogger(__name__)


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
    languages still get motion from the acoustic aperture). ``expression_scale``: mouth amplitude.
    ``crf``/``preset``: H.264 quality (17 ≈ visually lossless) and speed.
    ``hold_repeats``: where the source repeats a frame (a frame-rate conversion's duplicate, e.g.
    24 fps footage at 30), repeat the output frame too, so the mouth moves in step with the picture
    (see :func:`hold_frames`).
    ``enhancer``: a face-restoration network applied to the face of every rendered frame (e.g. "gfpgan";
    needs the neural extra and its checkpoint).
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
    progress: bool = True
    device: str | None = None


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync` wrote: path, frame count, rate (fps), duration (s), and the fraction of frames with a face."""

    path: Path
    frames: int
    fps: float
    duration: float
    face_fraction: float


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


class _ScheduledFrames:
    """Yields source frames in schedule order, streaming; backward runs read a raw spool on disk."""

    def __init__(self, info: VideoInfo, schedule: np.ndarray, n_source: int) -> None:
        self.info, self.schedule, self.n = info, schedule, n_source

    def __iter__(self) -> Iterator[np.ndarray]:
        needs_spool = len(self.schedule) > self.n and not self.info.is_image
        frames = iter_frames(self.info)
        if self.info.is_image:
            img = next(frames)
            for _ in self.schedule:
                yield img.copy()
            return
        if not needs_spool:
            for _, f in zip(self.schedule, frames):
                yield f.copy()
            return
        fd, spool_path = tempfile.mkstemp(prefix="retalk-spool-", suffix=".raw")
        try:
            shape = (self.info.height, self.info.width, 3)
            size = int(np.prod(shape))
            with os.fdopen(fd, "w+b") as spool:
                written = 0
                last = None
                for src in self.schedule:
                    if src >= written:
                        while written <= src:
                            f = next(frames, None)
                            if f is None:  # the decode gave fewer frames than analysis counted
                                f = last
                            spool.write(np.ascontiguousarray(f).tobytes())
                            last = f
                            written += 1
                        yield last.copy()
                    else:
                        spool.seek(int(src) * size)
                        yield np.frombuffer(spool.read(size), np.uint8).reshape(shape).copy()
                        spool.seek(0, os.SEEK_END)
        finally:
            Path(spool_path).unlink(missing_ok=True)


def sync(face: str | Path, audio: str | Path, outfile: str | Path, options: SyncOptions | None = None) -> SyncResult:
    """Re-render ``face`` (video or photo) so its lips follow ``audio``; write ``outfile`` (mp4).

    Raises :class:`retalk.errors.RetalkError` subclasses for bad input. Never
    leaves a partial ``outfile``.
    """
    opt = options or SyncOptions()
    check_output(outfile)
    info = probe_video(face, image_fps=opt.fps or 25.0)
    if opt.fps is not None and not info.is_image:
        raise InputError(f"--fps applies to a still image; {face} is a video and keeps its own rate "
                         f"({float(info.fps):.3f} fps)")
    speech = load_audio(audio)
    check_not_silent(speech)
    fps = float(info.fps)
    n_out = max(1, int(round(speech.duration * fps)))
    injected = isinstance(opt.engine, Engine)
    engine_options = dict(opt.engine_options)
    if opt.device is not None and not injected:
        engine_options["device"] = opt.device
    engine = create_engine(opt.engine, **engine_options)
    restorer = None
    try:
        if opt.enhancer:
            from retalk.enhance import create_restorer

            restorer = create_restorer(opt.enhancer, device=opt.device)
    except BaseException:
        if not injected:
            engine.close()
        raise
    try:
        tracker = FaceTracker(face_index=opt.face_index, box=opt.box, static=info.is_image)
        n_src = 0
        t0 = time.perf_counter()
        bar = tqdm(total=info.n_frames, desc="analysing", unit="frame", disable=not opt.progress, leave=False)
        for k, frame in enumerate(prefetch(iter_frames(info))):
            lm = tracker.update(frame)
            engine.observe(k, frame, lm)
            n_src += 1
            bar.update(1)
        bar.close()
        if n_src == 0:
            raise InputError(f"{face}: no frames could be decoded")
        track = tracker.finish()
        t1 = time.perf_counter()
        log.info("analysis: %d source frames in %.1f s (%.1f fps)", n_src, t1 - t0, n_src / max(t1 - t0, 1e-9))
        face_fraction = float(track.valid.mean())
        if face_fraction == 0.0:
            log.warning("%s: no face found in any frame; the video is passed through with the new audio", face)
            if not injected:
                engine.close()
            engine, injected = create_engine("passthrough"), False
        phones, exact, notation = timed_phones(speech.samples, speech.sample_rate, opt.phones, opt.phone_notation,
                                               opt.recognize and engine.needs_phones)
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
                    sample_rate=speech.sample_rate, still=info.is_image)
        engine.prepare(plan)
        out_path = Path(outfile)
        with VideoSink(out_path, info.width, info.height, info.fps, audio_path=audio,
                       duration=speech.duration, crf=opt.crf, preset=opt.preset) as sink:
            bar = tqdm(total=n_out, desc="rendering", unit="frame", disable=not opt.progress, leave=False)

            last: list[np.ndarray] = []

            def emit(item: RenderItem | None, frame: np.ndarray | None) -> None:
                if frame is None:  # a held frame: the previous output again
                    frame = last[0]
                elif item is not None and restorer is not None:
                    frame = restorer.restore(frame, track.landmarks[item.src_index, :, :2])
                sink.write(frame)
                last[:] = [frame]
                bar.update(1)

            def stream() -> Iterator[RenderItem | np.ndarray | None]:
                for i, frame in enumerate(prefetch(_ScheduledFrames(info, schedule, n_src))):
                    src = int(schedule[i])
                    if hold[i]:
                        yield None
                    else:
                        yield RenderItem(i, src, frame) if track.valid[src] else frame

            t2 = time.perf_counter()
            render_in_order(engine, stream(), emit)
            bar.close()
            if sink.frames_written != n_out:
                raise InputError(f"{face}: expected {n_out} frames, rendered {sink.frames_written}")
        t3 = time.perf_counter()
        log.info("speech analysis and planning %.1f s; rendering + encoding: %d frames in %.1f s (%.1f fps)",
                 t2 - t1, n_out, t3 - t2, n_out / max(t3 - t2, 1e-9))
    finally:
        if not injected:
            engine.close()
    log.info("wrote %s: %d frames at %.3f fps (%.2f s), face in %.0f%% of source frames",
             out_path, n_out, fps, n_out / fps, 100 * face_fraction)
    return SyncResult(out_path, n_out, fps, n_out / fps, face_fraction)
