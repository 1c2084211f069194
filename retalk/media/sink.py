"""Streaming video output with PyAV: H.264 + AAC into an mp4/mov/mkv, written atomically.

:class:`VideoSink` takes RGB ``uint8`` frames of shape (height, width, 3) on a
constant-rate timeline (frame *k* shown at ``k / fps`` seconds), encodes them
in a worker thread and muxes an audio track re-encoded to AAC beside them.
:func:`check_output` validates an output path before any work is done.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from retalk.errors import InputError

log = logging.getLogger(__name__)

_END = object()
"""Sentinel that stops the encoder thread."""


def even_size(width: int, height: int) -> bool:
    """Whether a frame of ``width`` x ``height`` pixels can be encoded as yuv420p (both sides even)."""
    return width % 2 == 0 and height % 2 == 0


OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def check_output(path: str | Path) -> str:
    """Validate an output path before any work is done; returns the container format name."""
    p = Path(path)
    fmt = OUTPUT_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{p}: output must end in .mp4, .m4v, .mov or .mkv (the video is H.264 with AAC sound)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{parent}: output folder does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{parent}: output folder is not writable")
    if p.is_dir():
        raise InputError(f"{p}: is a folder")
    return fmt


def check_not_an_input(output: str | Path, inputs: dict[str, str | Path | None]) -> None:
    """Refuse an output path that names one of the inputs (the finished file would replace the source).

    ``inputs`` maps each input's flag as the user typed it (``--face``) to its path (None: not given).
    Raises :class:`InputError` naming the flag.
    """
    out = Path(output)
    for flag, given in inputs.items():
        if given is None:
            continue
        src = Path(given)
        try:
            same = src.exists() and out.exists() and os.path.samefile(src, out)
        except OSError:
            same = False
        if same or src.resolve() == out.resolve():
            raise InputError(f"{out}: is also the {flag} input and would be overwritten; choose another --outfile")


def _umask() -> int:
    """The process's file-creation mask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)  # elsewhere: set and restore (a file another thread creates meanwhile gets 0600 at most)
    os.umask(umask)
    return umask


_PRESET_EXTRAS = {"superfast": {"x264-params": "rc-lookahead=10:mbtree=1"}}
"""x264 options added to a preset (see :class:`VideoSink`)."""


class VideoSink:
    """Encode RGB frames to H.264 and mux an audio track into an mp4, atomically.

    Frames are written to a temporary file beside ``path``; :meth:`close` renames
    it into place, :meth:`abort` (or an exception inside ``with``) deletes it, so
    a failed run never leaves a half-written output.

    ``audio_path`` is decoded and re-encoded to AAC as the video advances
    (interleaved, bounded memory) and cut at ``duration`` seconds.
    ``crf`` 17 is visually near-lossless for H.264; odd sizes are encoded as
    yuv444p (exact size; some players only accept even sizes in yuv420p).
    ``preset`` is an x264 speed preset. The default, ``superfast``, runs with
    x264's macroblock tree switched back on over a 10-frame lookahead (as in
    ``veryfast``): on a detailed 720p clip that costs 37% less encoder time than
    ``veryfast`` for files 10% larger at the same quality, where plain
    ``superfast`` files are 2.5 times larger (measured in docs/architecture.md).
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        audio_path: str | Path | None = None,
        duration: float | None = None,
        crf: int = 17,
        preset: str = "superfast",
    ) -> None:
        self.path = Path(path)
        fmt = check_output(self.path)
        suffix = self.path.suffix.lower()
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".partial" + suffix, dir=self.path.parent or ".")
        os.close(fd)
        self._tmp = Path(tmp)
        self._container: av.container.OutputContainer | None = None
        try:
            self._start(fmt, width, height, fps, audio_path, duration, crf, preset)
        except BaseException:  # an error or Ctrl-C while opening: leave no temporary file
            if self._container is not None:
                with contextlib.suppress(Exception):
                    self._container.close()
            self._tmp.unlink(missing_ok=True)
            raise

    def _start(self, fmt: str, width: int, height: int, fps: Fraction, audio_path: str | Path | None,
               duration: float | None, crf: int, preset: str) -> None:
        """Open the container and the encoders, start the encoding thread (the rest of ``__init__``)."""
        self._done = False
        self.fps = fps
        self.duration = duration
        self.width, self.height = int(width), int(height)
        self._container = av.open(str(self._tmp), mode="w", format=fmt)
        self._v = self._container.add_stream("libx264", rate=fps)
        self._v.width, self._v.height = self.width, self.height
        self._v.pix_fmt = "yuv420p" if even_size(width, height) else "yuv444p"
        if not even_size(width, height):
            log.warning("odd frame size %dx%d: writing 4:4:4 H.264 (yuv444p) to keep the exact size; many players "
                        "(web browsers, QuickTime, phones) only play 4:2:0 at even sizes: crop the input by a pixel "
                        "if the result will not play", width, height)
        self._v.options = {"crf": str(crf), "preset": preset, **_PRESET_EXTRAS.get(preset, {})}
        self._v.codec_context.time_base = Fraction(1) / fps
        self._n = 0
        self._audio = None
        if audio_path is not None:
            self._audio = _AudioTranscoder(Path(audio_path), self._container, duration)
        # encoding runs in a worker thread, a few frames behind the caller
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self.busy_s = 0.0  # seconds the encoder thread spent encoding and muxing (for the stage profile)
        self._worker = threading.Thread(target=self._encode_loop, name="retalk-encoder", daemon=True)
        self._worker.start()

    def _encode_one(self, frame: np.ndarray, index: int) -> None:
        if self._v.pix_fmt == "yuv420p":
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        else:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = index
        vf.time_base = self._v.codec_context.time_base
        for pkt in self._v.encode(vf):
            self._container.mux(pkt)
        if self._audio is not None:
            self._audio.pump((index + 1) / float(self.fps))

    def _encode_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is not None:
                continue
            t = time.perf_counter()
            try:
                self._encode_one(*item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc
            self.busy_s += time.perf_counter() - t

    def _finish_worker(self) -> None:
        if self._worker.is_alive():
            self._queue.put(_END)
            self._worker.join()
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    @property
    def frames_written(self) -> int:
        return self._n

    def write(self, frame: np.ndarray) -> None:
        """Encode one RGB uint8 frame of the sink's size."""
        if frame.shape[0] != self.height or frame.shape[1] != self.width:
            raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} != sink {self.width}x{self.height}")
        if self._error is not None:
            self._finish_worker()
        self._queue.put((frame, self._n))
        self._n += 1

    def close(self) -> Path:
        """Flush encoders, finish the file and move it into place. Returns the output path."""
        if self._done:
            return self.path
        try:
            self._finish_worker()
            for pkt in self._v.encode(None):
                self._container.mux(pkt)
            if self._audio is not None:
                self._audio.pump(None)
            self._container.close()
            os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the user's umask decides, as for any file
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.path

    def abort(self) -> None:
        """Discard the partial output."""
        if self._done:
            return
        self._done = True
        try:
            self._finish_worker()
        except BaseException:  # noqa: BLE001 - the first error is already being raised
            pass
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing a broken container must not mask the first error
            pass
        if self._audio is not None:
            self._audio.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _AudioTranscoder:
    """Decode an audio file and encode AAC into an open container, up to a time, on demand."""

    def __init__(self, path: Path, out: av.container.OutputContainer, duration: float | None) -> None:
        self._in = av.open(str(path), mode="r")
        if not self._in.streams.audio:
            self._in.close()
            raise InputError(f"{path}: has no audio stream")
        src = self._in.streams.audio[0]
        rate = src.codec_context.sample_rate or 48000
        if rate not in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000):
            rate = 48000
        layout = "stereo" if (src.codec_context.channels or 1) >= 2 else "mono"
        self._out = out
        self._stream = out.add_stream("aac", rate=rate, layout=layout)
        self._stream.bit_rate = 160_000 if layout == "stereo" else 96_000
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self._rate = rate
        self._frames = self._in.decode(src)
        self._written = 0  # samples
        self._limit = int(round(duration * rate)) if duration is not None else None
        self._finished = False

    def _emit(self, frame: av.AudioFrame | None) -> None:
        for pkt in self._stream.encode(frame):
            self._out.mux(pkt)

    def pump(self, until: float | None) -> None:
        """Encode audio up to ``until`` seconds (``None``: to the end, then flush)."""
        if self._finished:
            return
        target = None if until is None else int(until * self._rate)
        while target is None or self._written < target:
            if self._limit is not None and self._written >= self._limit:
                break
            try:
                frame = next(self._frames)
            except StopIteration:
                break
            for out in self._resampler.resample(frame):
                self._push(out)
        if until is None:
            for out in self._resampler.resample(None):
                self._push(out)
            self._emit(None)
            self._finished = True
            self._in.close()

    def _push(self, frame: av.AudioFrame) -> None:
        n = frame.samples
        if self._limit is not None:
            n = min(n, self._limit - self._written)
            if n <= 0:
                return
            if n < frame.samples:
                arr = frame.to_ndarray()[:, :n]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format="fltp", layout=frame.layout.name)
                frame.sample_rate = self._rate
        frame.pts = self._written
        frame.time_base = Fraction(1, self._rate)
        self._written += n
        self._emit(frame)

    def close(self) -> None:
        if not self._finished:
            self._finished = True
            self._in.close()
