"""Hard cuts between shots, found while the analysis pass decodes (one cheap measure per frame).

A cut changes the whole picture at once: the colour histogram of a small thumbnail of the frame jumps
far above its usual frame-to-frame change. A pan or a moving head keeps the colours (a histogram does not
see where things are), a cut to another shot does not. Two rules, both relative to the shot's own recent
changes (an adaptive threshold), both online (each frame is decided before it is tracked, so the tracker
can start afresh on the first frame of a new shot):

* the histogram distance is at least :data:`CUT_DISTANCE` and :data:`CUT_RATIO` times the mean of the
  last :data:`HISTORY` frames' distances in this shot;
* or a smaller histogram jump (:data:`FACE_CUT_DISTANCE`, same ratio) while the picture inside the previous
  frame's face box changed completely (:data:`FACE_CUT_GREY` grey levels of mean absolute difference): a cut
  to another person filmed in the same room.

Neither counts while the picture around the face only moved: where the phase correlation of the region around
the previous face with the same region of this frame (:mod:`retalk.face.drift`) peaks at
:data:`COHERENT_RESPONSE` or more, the content is the same, shifted (a whip pan from a still shot changes the
histogram by up to 0.17 and everything inside the old face box; its correlation peaks at 0.5-0.9, a cut's
under 0.1).

Units: histogram distances are total-variation distances between normalised histograms (0 = same
colours, 1 = no colour in common); grey changes are mean absolute differences of 0-255 grey levels.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

THUMB_SIDE = 64  # colours are counted on a grid of about this many pixels along the frame's shorter side
BINS = 8  # histogram levels per colour channel (8 × 8 × 8 joint RGB bins)
CUT_DISTANCE = 0.3  # a cut changes at least this much of the colour histogram ...
CUT_RATIO = 4.0  # ... and this many times the shot's recent mean change
FACE_CUT_DISTANCE = 0.12  # a smaller histogram jump is a cut when the face's picture changed completely too
FACE_CUT_GREY = 25.0  # grey levels: mean absolute change inside the previous face box that means "another picture"
COHERENT_RESPONSE = 0.3  # a phase-correlation peak this strong around the face: the picture moved, no cut
HISTORY = 12  # frames of this shot whose changes set the adaptive threshold
MIN_MEAN = 0.02  # the recent mean change is taken as at least this (a still shot's noise)


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    """Normalised joint RGB histogram (``BINS``³ float32, sums to 1) of an RGB uint8 frame (h, w, 3).

    Counted on every ``step``-th pixel of every ``step``-th row (a view, no copy, no resize), about
    ``THUMB_SIDE`` samples along the shorter side: about 0.1 ms for a 1080p frame.
    """
    h, w = frame.shape[:2]
    step = max(1, min(h, w) // THUMB_SIDE)
    q = (frame[::step, ::step] >> (8 - int(np.log2(BINS)))).astype(np.int32)
    idx = (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]
    hist = np.bincount(idx.ravel(), minlength=BINS**3).astype(np.float32)
    return hist / hist.sum()


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between two normalised histograms: 0 (same) … 1 (disjoint)."""
    return 0.5 * float(np.abs(a - b).sum())


class CutDetector:
    """Decides, frame by frame, whether a frame starts a new shot (see the module docstring)."""

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._recent: deque[float] = deque(maxlen=HISTORY)
        self.last_distance = 0.0

    def update(self, frame: np.ndarray, face_change: float | None = None,
               face_response: float | Callable[[], float] | None = None) -> bool:
        """Is RGB ``frame`` the first of a new shot? ``face_change``: mean absolute grey change inside the
        previous frame's face box; ``face_response``: the phase correlation's peak between the regions around it
        in the previous frame and this one, or a function that measures it (called only where a histogram rule
        found a cut: it vetoes nothing else, and most frames are spared the correlation); both None: no face
        there. The first frame of the stream is not a cut."""
        hist = colour_histogram(frame)
        prev, self._prev = self._prev, hist
        if prev is None:
            return False
        d = histogram_distance(hist, prev)
        self.last_distance = d
        recent = max(float(np.mean(self._recent)) if self._recent else MIN_MEAN, MIN_MEAN)
        cut = d >= max(CUT_DISTANCE, CUT_RATIO * recent)
        if not cut and face_change is not None and face_change >= FACE_CUT_GREY:
            cut = d >= max(FACE_CUT_DISTANCE, CUT_RATIO * recent)
        if cut and face_response is not None:
            response = face_response() if callable(face_response) else face_response
            if response >= COHERENT_RESPONSE:
                cut = False  # the picture around the face moved as a whole: a pan, not a cut
        if cut:
            self._recent.clear()
        else:
            self._recent.append(d)
        return cut


def shot_index(cuts: np.ndarray) -> np.ndarray:
    """Shot number (int32 (n,), from 0) of each frame, from ``cuts`` (bool (n,): the frame starts a new shot)."""
    c = np.asarray(cuts, bool).copy()
    if len(c):
        c[0] = False
    return np.cumsum(c).astype(np.int32)


def near_cut(shot: np.ndarray, margin: int) -> np.ndarray:
    """Frames (bool (n,)) within ``margin`` frames of a cut on either side (not the clip's own start and end).

    ``shot``: int (n,), the shot number of each frame. With ``margin`` 2 the two last frames before a cut and
    the two first after it are marked.
    """
    s = np.asarray(shot)
    n = len(s)
    out = np.zeros(n, bool)
    for k in np.flatnonzero(s[1:] != s[:-1]) + 1:  # frame k starts a shot
        out[max(0, k - margin):min(n, k + margin)] = True
    return out
