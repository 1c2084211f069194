"""Per-frame picture metrics of one clip for :func:`~retalk.evaluate.clip.score_clip`, on a small thread pool.

CPBD of the frame and of its face, PSNR, SSIM and PSNR outside the source's face depend on one
frame (and its source frame) alone, so :class:`FrameMetrics` runs them on worker threads while
``score_clip`` decodes and tracks the next frames (OpenCV, numpy, scipy.ndimage and
scikit-image's compiled non-maximum suppression, which CPBD's Canny uses, release the GIL).
Values and notes are gathered in frame order, so they equal those of a sequential run to the bit.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from retalk.errors import InputError, RetalkError
from retalk.evaluate.columns import one_line

FACE_MARGIN = 0.10
"""PSNR outside the face excludes the source's landmark box grown by this fraction of its size on each side."""
THREADS = 2
"""Worker threads for the per-frame metrics (at most the machine's CPUs)."""
MAX_PENDING = 6
"""Frames submitted but not yet gathered (bounds the frames held in memory)."""


class Unscorable(InputError):
    """A metric cannot be computed for this clip (too short, no face, a picture too small): a note, not a failure."""


def attempt(notes: list[str], name: str, fn: Callable[[], None]) -> None:
    """Run ``fn``; a metric the clip cannot give (a :class:`RetalkError`) adds a note instead of failing the clip.

    Only the first failure of each metric is noted (per-frame metrics may fail on many frames).
    Other exceptions are bugs and propagate.
    """
    try:
        fn()
    except RetalkError as exc:
        add_note(notes, name, one_line(exc))


def add_note(notes: list[str], name: str, message: str) -> None:
    """Append ``"name: message"`` unless ``notes`` already hold a note of ``name``."""
    if not any(n.startswith(f"{name}: ") for n in notes):
        notes.append(f"{name}: {message}")


@dataclass(frozen=True)
class FrameScores:
    """The picture metrics of one frame (None: not computed) and its failures as (metric, one-line message)."""

    cpbd: float | None = None
    cpbd_face: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    psnr_outside: float | None = None
    failures: tuple[tuple[str, str], ...] = ()


def score_frame(frame: np.ndarray, lm: np.ndarray | None, src: np.ndarray | None, src_lm: np.ndarray | None,
                sharpness: bool) -> FrameScores:
    """Picture metrics of one rendered ``frame`` (H, W, 3) uint8 RGB with landmarks ``lm`` (478, ≥2) px or None.

    ``sharpness``: CPBD of the frame and (with ``lm``) of its face block (as :func:`~retalk.metrics.cpbd_face`,
    from one grey picture).  ``src``: the source frame it shows, same shape, for PSNR and SSIM, and
    with ``src_lm`` PSNR outside the source's grown face box; None skips them.
    """
    from retalk.metrics import psnr_and_outside, ssim
    from retalk.metrics.cpbd import cpbd_gray, face_window, gray8

    out: dict[str, float | None] = {}
    failures: list[tuple[str, str]] = []

    def run(name: str, fn: Callable[[], float]) -> None:
        try:
            out[name] = fn()
        except RetalkError as exc:
            failures.append((name, one_line(exc)))

    if sharpness:
        gray = gray8(frame)  # uint8 grey levels: cpbd_gray's quicker route, the same values as to_gray255's
        run("cpbd", lambda: cpbd_gray(cpbd_sized(gray)))
        if lm is not None:
            rows, cols = face_window(frame.shape, face_block(bbox(lm), frame.shape))
            run("cpbd_face", lambda: cpbd_gray(cpbd_sized(gray)[rows, cols]))
    if src is not None:
        box = None
        if src_lm is not None:
            grown = grow(bbox(src_lm), FACE_MARGIN)
            try:
                box = leaves_pixels(grown, frame.shape)
            except RetalkError as exc:
                failures.append(("psnr_outside", one_line(exc)))
        out["psnr"], out["psnr_outside"] = psnr_and_outside(frame, src, box)
        out["ssim"] = ssim(frame, src)
    return FrameScores(failures=tuple(failures), **out)


class FrameMetrics:
    """Runs :func:`score_frame` on worker threads and gathers the values in frame order.

    ``submit`` each frame in order, then ``gather`` once: lists of values per metric (frames
    where a metric was not computed are left out) and the notes, in the order a sequential run
    would write them.  Use as a context manager (the threads stop on exit).
    """

    def __init__(self, sharpness: bool, threads: int = THREADS) -> None:
        self.sharpness = sharpness
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(threads, os.cpu_count() or 1)),
                                        thread_name_prefix="frame-metrics")
        self._pending: deque[Future[FrameScores]] = deque()
        self._done: list[FrameScores] = []

    def __enter__(self) -> FrameMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._pending:
            f.cancel()
        self._pool.shutdown(wait=True)

    def submit(self, frame: np.ndarray, lm: np.ndarray | None, src: np.ndarray | None,
               src_lm: np.ndarray | None) -> None:
        """Queue one frame (see :func:`score_frame`); waits for the oldest when :data:`MAX_PENDING` are queued."""
        while len(self._pending) >= MAX_PENDING:
            self._done.append(self._pending.popleft().result())
        self._pending.append(self._pool.submit(score_frame, frame, lm, src, src_lm, self.sharpness))

    def gather(self, notes: list[str]) -> dict[str, list[float]]:
        """Wait for every frame; add their notes to ``notes``; return the values per metric, in frame order."""
        while self._pending:
            self._done.append(self._pending.popleft().result())
        values: dict[str, list[float]] = {k: [] for k in ("cpbd", "cpbd_face", "psnr", "ssim", "psnr_outside")}
        for scores in self._done:
            for name, message in scores.failures:
                add_note(notes, name, message)
            for name, lst in values.items():
                v = getattr(scores, name)
                if v is not None:
                    lst.append(v)
        return values


def cpbd_sized(picture: np.ndarray) -> np.ndarray:
    """``picture`` itself, after checking that it holds one CPBD block (64×64 px); :class:`Unscorable` if not."""
    from retalk.metrics.cpbd import BLOCK

    h, w = picture.shape[:2]
    if h < BLOCK or w < BLOCK:
        raise Unscorable(f"CPBD needs at least one {BLOCK}x{BLOCK} block; picture is {h}x{w}")
    return picture


def leaves_pixels(box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``box`` itself, after checking that it leaves pixels of a ``shape`` picture outside (as ``box_mask`` rounds)."""
    h, w = shape[:2]
    if (np.floor(box[0]) <= 0 and np.floor(box[1]) <= 0 and np.ceil(box[2]) >= w
            and np.ceil(box[3]) >= h):
        raise Unscorable("the face covers the whole picture: no pixels outside it")
    return box


def bbox(lm: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) pixel box of landmarks (478, >=2)."""
    return np.concatenate([lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)]).astype(np.float64)


def face_block(box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
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


def grow(box: np.ndarray, margin: float) -> np.ndarray:
    """``box`` (x1, y1, x2, y2) grown by ``margin`` of its width and height on each side."""
    w, h = box[2] - box[0], box[3] - box[1]
    return box + np.array([-margin * w, -margin * h, margin * w, margin * h])
