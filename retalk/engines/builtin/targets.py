"""Stage 2, targets: the speech's mouth track mapped into this speaker's own lip openings and widths.

The mouth track (:class:`retalk.speech.mouth.MouthTrack`) says 0 = closed … 1 = wide and -1 … 1 for
narrow … wide. Here those become inner-lip openings and mouth widths in face units (inter-ocular
distance = 1) within the speaker's own range (5th to 95th percentile over the clip). A speaker who
moves their mouth gets the speech's openings in their own distribution of openings and their own
smoothness; a photo (or a speaker who barely moves) gets a typical human range. Closures always
bring the lips together.

The expression scale (``MouthTrack.amplitude``): where openings are mapped linearly (a photo, or too few
open frames to map by rank) it already acts through the track's openings. The mapping by rank cancels it
(ranks, and each opening's ratio to the median, do not change when every opening is multiplied by the same
number), so there it is applied after the mapping and the smoothness matching (:func:`scale_openings`): each
open frame's deviation from the speaker's rest opening (``open_lo``) is multiplied by it, then kept between
the closed opening and the widest the library shows plus half the speaker's range (:data:`SCALED_MARGIN`);
closures stay closed. At scale 1 nothing is changed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retalk.speech.mouth import MouthTrack

RANGE_QUANTILES = (0.05, 0.95)  # the speaker's range of openings and widths: these quantiles over the clip
MIN_VARIED_RANGE = 0.08  # face units: a narrower range of openings is "few shapes" (a photo, a still mouth)
FEW_SHAPES_REST = 0.06  # face units: with few shapes, the rest opening is at most this ...
FEW_SHAPES_RANGE = 0.17  # ... and the range of openings this wide above it (a typical human range)
MIN_WIDTH_HALF = 0.06  # half the range of widths is at least this fraction of the mid width
SOURCE_OPEN_FLOOR = 0.1  # the openings quantile-mapped onto: those above this fraction of the range
MIN_MAPPED_FRAMES = 5  # quantile mapping needs at least this many open speech frames and source openings
QUIET_EXPONENT = 0.25  # soft syllables (below the median opening) shrink by (opening / median) ** this
CLOSED_OPENING = 0.005  # face units: a closure's opening is at most this (the lips touch)
SCALED_MARGIN = 0.5  # a scaled opening is at most the widest source opening plus this fraction of the range


@dataclass(frozen=True)
class Targets:
    """Mouth shape to show on each output frame, in face units (inter-ocular distance = 1).

    ``opening``: (n,), inner-lip gap at the middle of the lips. ``width``: (n,), corner-to-corner width.
    ``closed``: bool (n,), the lips touch. ``open_lo``/``open_hi``: the speaker's range of openings and
    ``width_half`` half their range of widths. ``varied``: the clip shows a varied range of openings (not a photo).

    Precision: every value is kept as computed (``opening`` is float32 or float64 and the scalars are
    Python or NumPy floats, depending on the branch taken), because the selection's arithmetic depends
    on it and the rendered frames are pinned (``tests/test_builtin_checksum.py``); the geometry stage
    rounds ``opening`` and ``width`` to float32.
    """

    opening: np.ndarray
    width: np.ndarray
    closed: np.ndarray
    open_lo: float
    open_hi: float
    width_half: float
    varied: bool

    @property
    def open_range(self) -> float:
        """``open_hi - open_lo``, face units."""
        return self.open_hi - self.open_lo


def speaker_targets(mouth: MouthTrack, descriptors: np.ndarray, frames: np.ndarray) -> Targets:
    """Map ``mouth`` into the speaker's range.

    ``descriptors``: float32 (m, 5), :func:`retalk.face.landmarks.mouth_descriptor` of every source frame
    with a face (opening and width first, face units); ``frames``: int (m,), those frames' indices.
    """
    o_lo, o_hi = np.quantile(descriptors[:, 0], RANGE_QUANTILES)
    w_lo, w_hi = np.quantile(descriptors[:, 1], RANGE_QUANTILES)
    # a clip that barely moves its mouth (or a photo) gets a typical human range instead
    varied = o_hi - o_lo >= MIN_VARIED_RANGE
    if not varied:
        # one mouth shape (a photo): rest nearly closed even if the picture's mouth is open
        o_lo = min(o_lo, FEW_SHAPES_REST)
        o_hi = o_lo + FEW_SHAPES_RANGE
    w_mid = 0.5 * (w_lo + w_hi)
    w_half = max(0.5 * (w_hi - w_lo), MIN_WIDTH_HALF * w_mid)
    m = mouth
    t_open = o_lo + m.opening * (o_hi - o_lo)
    ranked = False  # openings mapped by rank (the track's amplitude cancelled: applied again below)
    if varied:
        # quantile mapping: the speech's openings take this speaker's own distribution of openings
        open_frames = ~m.closed & (m.opening > 0)
        src = descriptors[:, 0][descriptors[:, 0] > o_lo + SOURCE_OPEN_FLOOR * (o_hi - o_lo)]
        if open_frames.sum() >= MIN_MAPPED_FRAMES and len(src) >= MIN_MAPPED_FRAMES:
            o = m.opening[open_frames]
            ranks = (np.argsort(np.argsort(o)) + 0.5) / len(o)
            quiet = np.clip(o / max(float(np.median(o)), 1e-6), 0.0, 1.0) ** QUIET_EXPONENT  # soft syllables small
            t_open[open_frames] = np.quantile(src, ranks) * quiet
            ranked = True
    # a closure always brings the lips together, even for a speaker whose rest pose is parted (a smile)
    closed_opening = min(o_lo, float(descriptors[:, 0].min()), CLOSED_OPENING)
    t_open = np.where(m.closed, closed_opening, t_open)
    if varied:
        # move like this speaker moves: as smooth frame to frame as their own lips, closures kept shut
        t_open = match_smoothness(t_open, m.closed, mean_step(descriptors[:, 0], frames))
    if ranked and m.amplitude != 1.0:
        top = float(descriptors[:, 0].max()) + SCALED_MARGIN * (o_hi - o_lo)
        t_open = scale_openings(t_open, m.closed, m.amplitude, float(o_lo), closed_opening, top)
    t_width = w_mid + m.width * w_half
    return Targets(t_open, t_width, m.closed, o_lo, o_hi, w_half, bool(varied))


def scale_openings(opening: np.ndarray, closed: np.ndarray, scale: float, rest: float, lo: float,
                   hi: float) -> np.ndarray:
    """``rest + scale * (opening - rest)`` clipped to ``[lo, hi]``, with ``closed`` frames at ``lo``.

    ``opening``: (n,) face units; ``closed``: bool (n,); ``rest``: the speaker's rest opening, ``lo`` the closed
    opening and ``hi`` the widest allowed (face units). Scale 0 holds the mouth at rest between closures; the
    result keeps ``opening``'s dtype.
    """
    scaled = np.clip(rest + scale * (opening - rest), lo, max(hi, lo))
    return np.where(closed, lo, scaled).astype(opening.dtype)


def mean_step(series: np.ndarray, frames: np.ndarray) -> float:
    """Mean absolute change between consecutive source frames (only pairs that are both valid)."""
    consecutive = np.diff(frames) == 1
    return float(np.abs(np.diff(series))[consecutive].mean()) if consecutive.any() else 0.0


def smooth_pinned(x: np.ndarray, pinned: np.ndarray, weight: float) -> np.ndarray:
    """Minimise sum (y - x)^2 + weight * sum (y[i+1] - y[i])^2 with y = x at ``pinned`` frames.

    A tridiagonal solve; pinned frames (closures) keep their value exactly and the
    frames around them approach it smoothly.
    """
    n = len(x)
    if n < 3 or weight <= 0:
        return x.copy()
    from scipy.linalg import solve_banded

    # banded storage: ab[0, j] = A[j-1, j], ab[1, j] = A[j, j], ab[2, j] = A[j+1, j]
    ab = np.zeros((3, n))
    ab[1] = 1.0 + 2 * weight
    ab[1, 0] = ab[1, -1] = 1.0 + weight
    ab[0, 1:] = -weight
    ab[2, :-1] = -weight
    rhs = x.astype(np.float64).copy()
    for i in np.flatnonzero(pinned):  # a pinned row reads y_i = x_i
        ab[1, i] = 1.0
        if i + 1 < n:
            ab[0, i + 1] = 0.0
        if i > 0:
            ab[2, i - 1] = 0.0
    return solve_banded((1, 1), ab, rhs)


def match_smoothness(x: np.ndarray, pinned: np.ndarray, target_step: float) -> np.ndarray:
    """Smooth ``x`` (pinned frames fixed) just enough that its mean frame-to-frame change between
    unpinned frames is ``target_step`` (closing and opening around a closure stay as sharp as they are)."""
    free = ~pinned[1:] & ~pinned[:-1]
    if target_step <= 0 or len(x) < 3 or not free.any():
        return x

    def step(y: np.ndarray) -> float:
        return float(np.abs(np.diff(y))[free].mean())

    if step(x) <= target_step:
        return x
    lo, hi = 0.0, 1.0
    while step(smooth_pinned(x, pinned, hi)) > target_step and hi < 256:
        lo, hi = hi, hi * 2
    for _ in range(12):  # bisection on the weight: the change falls monotonically as it grows
        mid = 0.5 * (lo + hi)
        if step(smooth_pinned(x, pinned, mid)) > target_step:
            lo = mid
        else:
            hi = mid
    return smooth_pinned(x, pinned, hi).astype(x.dtype)
