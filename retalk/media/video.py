"""Streaming video input with PyAV (the writer, :class:`VideoSink`, is in :mod:`retalk.media.sink`).

Frames cross this module as RGB ``uint8`` arrays of shape (height, width, 3),
upright (rotation metadata applied) and on a constant-rate timeline: source
frame *k* is the picture on screen at time ``(k + 0.5) / fps`` seconds after
the first frame. Variable-frame-rate input is resampled to that grid, so
frame *k* always belongs at time ``k / fps`` in the output.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from retalk.errors import InputError
from retalk.media.probe import check_file, is_image, open_container

# The writer moved to retalk.media.sink; these names stay importable from here for existing callers.
from retalk.media.sink import OUTPUT_FORMATS, VideoSink, _umask, check_output, even_size  # noqa: F401

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about a face input before decoding it.

    ``width``/``height`` are the displayed size (after rotation); ``fps`` the
    constant output rate; ``n_frames`` an estimate (exact after a full decode);
    ``is_image`` marks a still photo used as a one-frame video.
    """

    path: str
    width: int
    height: int
    fps: Fraction
    n_frames: int
    rotation: int = 0
    is_image: bool = False


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counter-clockwise, multiple of 90)."""
    k = (int(round(rotation / 90.0))) % 4
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img


def read_image(path: str | Path) -> np.ndarray:
    """Read a still image as upright RGB uint8 (EXIF orientation applied, alpha over white)."""
    p = check_file(path, "image")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{p}: not a readable image")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(img.max())))
    if img.shape[2] == 4:
        # composite on white in integers, row blocks at a time: a 6000x4000 picture stays ~100 MB
        rgb = np.empty(img.shape[:2] + (3,), np.uint8)
        for y in range(0, img.shape[0], 512):
            blk = img[y:y + 512]
            a = blk[:, :, 3:4].astype(np.uint16)
            rgb[y:y + 512] = ((blk[:, :, :3].astype(np.uint16) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
        img = rgb
        # cv2 does not apply EXIF orientation in IMREAD_UNCHANGED; PNGs with alpha rarely carry it.
    else:
        oriented = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if oriented is not None:
            img = oriented
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def probe_video(path: str | Path, image_fps: float = 25.0) -> VideoInfo:
    """Describe a face input (video or still image) without decoding it all."""
    p = check_file(path, "face video")
    if is_image(p):
        img = read_image(p)
        return VideoInfo(str(p), img.shape[1], img.shape[0], Fraction(image_fps).limit_denominator(1001), 1, 0, True)
    with open_container(p) as c:
        if not c.streams.video:
            raise InputError(f"{p}: has no video stream")
        s = c.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        if not rate or float(rate) <= 0 or float(rate) > 240:
            rate = Fraction(25)
        rate = Fraction(rate).limit_denominator(1001)
        rotation = 0
        w, h = s.codec_context.width, s.codec_context.height
        try:
            first = next(c.decode(s))
            rotation = int(getattr(first, "rotation", 0) or 0)
            w, h = first.width, first.height
        except StopIteration:
            raise InputError(f"{p}: the video stream has no frames") from None
        except av.error.FFmpegError as exc:
            raise InputError(f"{p}: cannot decode video ({exc.strerror or exc})") from None
        if rotation % 180:
            w, h = h, w
        if s.frames:
            n = int(s.frames)
        elif s.duration and s.time_base:
            n = int(round(float(s.duration * s.time_base) * rate))
        elif c.duration:
            n = int(round(c.duration / 1e6 * float(rate)))
        else:
            n = 0
    return VideoInfo(str(p), int(w), int(h), rate, max(n, 1), rotation, False)


def iter_frames(info: VideoInfo, start: int = 0) -> Iterator[np.ndarray]:
    """Yield upright RGB frames on the constant-rate grid of ``info.fps``, from frame ``start``.

    Memory is one or two frames whatever the length. A still image yields one frame.

    Decoding is single-threaded: the callers decode in a thread of their own beside their work, and
    FFmpeg's frame threads cost far more CPU than they save there (H.264, measured on 2 cores: 1.6 ms a
    720p frame, RGB conversion included, against 2.6-3.1 ms with frame threads; 1080p 2.6 against 2.9-4.6 ms;
    the same pixels).
    """
    if info.is_image:
        if start == 0:
            yield read_image(info.path)
        return
    fps = float(info.fps)
    with open_container(info.path) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        tb = float(s.time_base) if s.time_base else 1.0 / fps
        if start > 0:
            target = (start / fps) + (float(s.start_time * s.time_base) if s.start_time is not None else 0.0)
            c.seek(int(max(0.0, target - 1.0 / fps) / tb), stream=s, backward=True, any_frame=False)
        t0 = float(s.start_time) * tb if s.start_time is not None else None
        k = 0 if start == 0 else None
        prev: np.ndarray | None = None
        prev_end = 0.0
        n_decoded = 0
        try:
            for frame in c.decode(s):
                t = frame.time if frame.pts is not None else n_decoded / fps
                n_decoded += 1
                if t0 is None:
                    t0 = t
                t -= t0
                img = _rotate(frame.to_ndarray(format="rgb24"), info.rotation)
                if k is None:  # after a seek: find our slot on the grid
                    k = max(0, int(np.floor(t * fps + 0.5)))
                    if k > start:
                        k = start
                if prev is not None:
                    while (k + 0.5) / fps < t:
                        if k >= start:
                            yield prev
                        k += 1
                prev = img
                dur = float(frame.duration * s.time_base) if frame.duration else 1.0 / fps
                prev_end = t + dur
        except av.error.FFmpegError as exc:
            if prev is None:
                raise InputError(f"{info.path}: cannot decode video ({exc.strerror or exc})") from None
            log.warning("%s: decoding stopped early (%s); using the frames read so far", info.path, exc)
        if prev is not None and k is not None:
            emitted = False
            while (k + 0.5) / fps < prev_end or not emitted:
                if k >= start:
                    yield prev
                emitted = True
                k += 1


_END = object()


def prefetch(items: Iterable, depth: int = 4) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (decoding overlaps processing).

    PyAV and OpenCV release the GIL while they work, so on two cores decoding
    runs beside the caller. Exceptions are re-raised in the caller's thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for it in items:
                while not stop.is_set():
                    try:
                        q.put(it, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    t = threading.Thread(target=work, name="retalk-prefetch", daemon=True)
    t.start()
    try:
        while True:
            it = q.get()
            if it is _END:
                return
            if isinstance(it, BaseException):
                raise it
            yield it
    finally:
        stop.set()
        t.join(timeout=5)
