"""Source frames in any schedule order (the ping-pong of a long dub) with no spool on disk.

When the speech is longer than the video, the pipeline plays the source back and forth
(:func:`retalk.pipeline.ping_pong`): 0…N−1, N−2…0, 1…N−1, … Only the first forward run is a plain
decode; every later frame is a frame seen before.

Design: **re-decode, verified** (no temporary files at all). The alternatives were a raw spool
(frame size × N on disk: about 1.5 GB per 10 s of 1080p, left behind when killed) and a losslessly
compressed spool (still unbounded: natural 1080p footage typically compresses 2–3× losslessly, far
from the ~45× that 60 s in 200 MB would need, and it adds an encoder beside the decoder). The source
file *is* the compressed copy of every frame, so the later runs decode it again:

* The first forward run decodes from frame 0 with :func:`retalk.media.video.iter_frames` (the reference
  decode) and records a CRC-32 of every frame it yields (4 bytes per source frame).
* A backward run is served in **windows** of ``C`` consecutive frames, highest window first: the
  window [lo…hi] is decoded forward with ``iter_frames(info, start=lo)`` (which seeks to the keyframe
  before ``lo``), held in memory, and handed out in reverse. A later forward run uses one seeking
  decoder from its first frame.
* Every frame decoded after a seek is checked against the CRC that the reference decode recorded for
  its slot. A seek can land a frame off the grid (odd timestamps, variable frame rate, containers
  that seek imprecisely); on any mismatch that request is decoded again from frame 0, which is the
  reference decode itself. So the frames are bit-identical to ``list(iter_frames(info))[k]`` in every
  case, and usually come from the cheap path.

Bounds: disk 0 bytes. Memory: one window of ``C = window_bytes // frame_bytes`` frames (at least 2;
default 256 MiB, 43 frames at 1080p) plus the decoder's own two frames and PyAV's frame threads.
Cost: a backward run decodes each window from its keyframe, so it reads about
``N × (1 + G / (2C))`` frames for a GOP of ``G`` frames (x264's default G = 250 at 25 fps, 1080p, C = 43:
about 4× the frames of one forward decode); seeks that fail the check cost a decode from frame 0.

Measured on the 2-core development machine (shared, so ±20 %), frames only, a 10 s 1080p clip with
25 s of speech (625 frames: forward, backward, forward): the raw spool 4.7–5.9 s, peak RSS 174 MiB
plus 1.5 GB of temp folder; re-decoding 7.3–7.5 s with one keyframe per 10 s and 3.5–4.7 s with one
per 2 s (no disk writes), peak RSS 420 MiB, no temp folder. Windows of 128 MiB: 9.5 s and 5.7 s at
290 MiB; 512 MiB: 3.9 s and 3.2 s at 670 MiB.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from retalk.errors import InputError
from retalk.media import video
from retalk.media.video import VideoInfo

log = logging.getLogger(__name__)

WINDOW_BYTES = 256 * 1024 * 1024
"""Default memory for one backward window of decoded frames (bytes)."""


def frame_crc(frame: np.ndarray) -> int:
    """CRC-32 of a frame's bytes (about 1 ms for 1080p RGB)."""
    return zlib.crc32(memoryview(np.ascontiguousarray(frame)).cast("B"))


@dataclass
class DecodeStats:
    """What a :class:`ScheduledFrames` iteration read: frames taken from decoders (not those a decoder skips
    after its seek), seeks, seeks that failed the CRC check (re-decoded from frame 0), the largest window
    (frames) and each backward window (first slot, last slot)."""

    frames_read: int = 0
    seeks: int = 0
    mismatches: int = 0
    max_window: int = 0
    windows: list[tuple[int, int]] = field(default_factory=list)


class _Mismatch(Exception):
    """A frame decoded after a seek differs from the reference decode's frame for that slot."""


class _Cursor:
    """A forward decoder positioned at slot ``pos`` (the next frame it yields)."""

    def __init__(self, frames: Iterator[np.ndarray], pos: int, stats: DecodeStats) -> None:
        self.frames, self.pos, self.stats = frames, pos, stats
        self.last: np.ndarray | None = None

    def next(self) -> np.ndarray | None:
        """The frame of slot ``pos`` (None when the decode has ended); advances ``pos``."""
        f = next(self.frames, None)
        if f is not None:
            self.stats.frames_read += 1
            self.last = f
            self.pos += 1
        return f

    def close(self) -> None:
        close = getattr(self.frames, "close", None)
        if close is not None:
            close()


class ScheduledFrames:
    """Iterable of source frames (RGB uint8, (height, width, 3), each a fresh copy) in ``schedule`` order.

    ``schedule[i]``: the source frame for output frame *i* (any order; ping-pong in practice).
    ``n_source``: the frame count of the analysis pass; where the decode yields fewer frames, the
    missing slots show the last frame decoded. ``window_bytes``: memory for one backward window.
    ``stats``: what the latest iteration decoded (:class:`DecodeStats`).
    """

    def __init__(self, info: VideoInfo, schedule: np.ndarray, n_source: int,
                 window_bytes: int = WINDOW_BYTES) -> None:
        self.info, self.schedule, self.n = info, np.asarray(schedule, np.int64), int(n_source)
        frame_bytes = max(1, info.width * info.height * 3)
        self.window = max(2, int(window_bytes) // frame_bytes)
        self.stats = DecodeStats()

    def __iter__(self) -> Iterator[np.ndarray]:
        self.stats = DecodeStats()
        if self.info.is_image:
            img = next(video.iter_frames(self.info))
            for _ in self.schedule:
                yield img.copy()
            return
        if len(self.schedule) == 0:
            return
        if np.all(np.diff(self.schedule) == 1) and self.schedule[0] == 0:  # one forward run: a plain decode
            for _, f in zip(self.schedule, video.iter_frames(self.info)):
                yield f.copy()
            return
        yield from self._scheduled()

    # -- the general case ----------------------------------------------------------------------------

    def _scheduled(self) -> Iterator[np.ndarray]:
        self._crc: list[int] = []  # CRC of each slot the reference decode has yielded
        self._n_real: int | None = None  # frames the decode really has, once known (≤ n)
        ref = _Cursor(video.iter_frames(self.info), 0, self.stats)  # the reference decode, from frame 0
        cursor: _Cursor | None = None  # a later forward run's decoder
        lo, frames = 0, []  # the current backward window: slots lo … lo + len(frames) − 1
        sched, n_out = self.schedule, len(self.schedule)
        prev_src, prev = -1, None  # the frame given last (a repeated slot is not decoded again)
        try:
            for i in range(n_out):
                src = min(max(int(sched[i]), 0), self.n - 1)
                if ref is not None and src >= ref.pos:  # still ahead of the reference decode
                    prev_src, prev = src, self._advance_ref(ref, src)
                    if self._n_real is not None:
                        ref.close()
                        ref = None
                    yield prev.copy()
                    continue
                src = self._real(src)
                if src == prev_src and prev is not None:
                    yield prev.copy()
                    continue
                prev_src = src
                if frames and lo <= src < lo + len(frames):
                    prev = frames[src - lo]
                    yield prev.copy()
                    continue
                if cursor is not None and cursor.pos <= src < cursor.pos + self.window:
                    prev = self._advance(cursor, src)
                    yield prev.copy()
                    continue
                frames = []  # free the old window before decoding the next
                if cursor is not None:
                    cursor.close()
                    cursor = None
                going_up = i + 1 < n_out and self._real(min(int(sched[i + 1]), self.n - 1)) > src
                prev = None
                if going_up:
                    cursor = self._open(src)
                    prev = self._advance(cursor, src)
                else:
                    lo = max(0, src - self.window + 1)
                    frames = self._load_window(lo, src)
                    prev = frames[src - lo]
                yield prev.copy()
        finally:
            for c in (ref, cursor):
                if c is not None:
                    c.close()

    def _real(self, src: int) -> int:
        """The slot whose frame ``src`` shows (slots past the decode's end show its last frame)."""
        return src if self._n_real is None else min(src, self._n_real - 1)

    def _advance_ref(self, ref: _Cursor, src: int) -> np.ndarray:
        """Advance the reference decode to slot ``src``, recording CRCs (and padding past its end)."""
        while ref.pos <= src:
            f = ref.next()
            if f is None:  # the decode gave fewer frames than the analysis counted
                if ref.last is None:
                    raise InputError(f"{self.info.path}: no frames could be decoded")
                self._n_real = ref.pos
                return ref.last
            self._crc.append(frame_crc(f))
            if ref.pos == self.n:
                self._n_real = self.n
        assert ref.last is not None
        return ref.last

    def _open(self, start: int) -> _Cursor:
        """A decoder at slot ``start`` (≥ 1: after a seek, checked as it goes)."""
        if start > 0:
            self.stats.seeks += 1
        return _Cursor(video.iter_frames(self.info, start), start, self.stats)

    def _advance(self, cursor: _Cursor, src: int) -> np.ndarray:
        """Advance a later run's decoder to slot ``src`` (checked; from frame 0 again on a mismatch)."""
        try:
            return self._step(cursor, src)
        except _Mismatch:
            self._log_mismatch(cursor.pos)
            fresh = _Cursor(video.iter_frames(self.info), 0, self.stats)
            cursor.close()
            cursor.frames, cursor.pos, cursor.last = fresh.frames, 0, None
            return self._step(cursor, src, check=False)

    def _step(self, cursor: _Cursor, src: int, check: bool = True) -> np.ndarray:
        while cursor.pos <= src:
            slot = cursor.pos
            f = cursor.next()
            if f is None or (check and frame_crc(f) != self._crc[slot]):
                if f is None and not check:
                    raise InputError(f"{self.info.path}: the decode ended before frame {slot}")
                raise _Mismatch
        assert cursor.last is not None
        return cursor.last

    def _load_window(self, lo: int, hi: int) -> list[np.ndarray]:
        """Frames of slots ``lo``…``hi`` (decoded after a seek to ``lo``, checked; from 0 on a mismatch)."""
        self.stats.windows.append((lo, hi))
        self.stats.max_window = max(self.stats.max_window, hi - lo + 1)
        cursor = self._open(lo)
        try:
            try:
                return self._collect(cursor, lo, hi, check=lo > 0)
            except _Mismatch:
                self._log_mismatch(cursor.pos)
            cursor.close()
            cursor = _Cursor(video.iter_frames(self.info), 0, self.stats)
            return self._collect(cursor, lo, hi, check=False)
        finally:
            cursor.close()

    def _collect(self, cursor: _Cursor, lo: int, hi: int, check: bool) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for slot in range(lo, hi + 1):
            f = self._step(cursor, slot, check)
            out.append(f)
        return out

    def _log_mismatch(self, slot: int) -> None:
        self.stats.mismatches += 1
        log.debug("%s: a seek missed frame %d; decoding again from the start", self.info.path, slot)
