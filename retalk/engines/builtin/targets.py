"""Stage 2, targets: the speech's mouth track mapped into this speaker's own lip openings and widths.

The mouth track (:class:`retalk.speech.mouth.MouthTrack`) says 0 = closed … 1 = wide and -1 … 1 for
narrow … wide. Here those become inner-lip openings and mouth widths in face units (inter-ocular
distance = 1) within the speaker's own range. For a speaker who moves their mouth (:func:`rank_matched`):

1. the track is smoothed (closures pinned) just enough that, after step 2, it changes frame to frame as
   much as the speaker's own lips;
2. its open frames take, by rank, the speaker's whole distribution of open-mouth openings, their widest
   included (mapping after smoothing: smoothing after it would sink the peaks towards the closures);
3. pauses rest at the speaker's own rest opening (5th percentile, :func:`resting`), closures touch;
4. when the speech closes the lips on more frames than the footage shows closed, the open frames are
   drawn towards the rest opening until the openings spread at most :data:`SPREAD_ALLOWANCE` times as
   widely as the speaker's own (:func:`match_spread`).

A photo (or a speaker who barely moves) gets a typical human range, mapped linearly. Closures always
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
FEW_SHAPES_RANGE = 0.2  # ... and the range of openings this wide above it: a wide-open vowel reaches 0.26, about
# 16 mm on an adult face (inter-ocular ~63 mm); 0.17 kept a photo's open vowels near a parted smile's own opening
MIN_WIDTH_HALF = 0.06  # half the range of widths is at least this fraction of the mid width
SOURCE_OPEN_FLOOR = 0.1  # the openings quantile-mapped onto: those above this fraction of the range
MIN_MAPPED_FRAMES = 5  # quantile mapping needs at least this many open speech frames and source openings
CLOSED_OPENING = 0.005  # face units: a closure's opening is at most this (the lips touch)
SCALED_MARGIN = 0.5  # a scaled opening is at most the widest source opening plus this fraction of the range
SPREAD_ALLOWANCE = 1.2  # the dub's openings may spread this much more than the speaker's own, no more (the issue
# allows 1.25: the rendered dub measures up to ~0.03 above its targets' ratio)
STEP_ALLOWANCE = 1.1  # ... and change frame to frame at most this much more (where ranks alone cannot match)
CLOSURE_APPROACH = 0.5  # the frame before a closure keeps this share of its opening above the closed one
PAUSE_REST_S = 0.2  # seconds: a closed stretch without speech this long is a pause, where the mouth rests ...
PAUSE_EDGE_S = 0.08  # ... except this long next to speech, where the lips close (a stop's closure before it)


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
    # a closure always brings the lips together, even for a speaker whose rest pose is parted (a smile)
    closed_opening = min(o_lo, float(descriptors[:, 0].min()), CLOSED_OPENING)
    t_open = np.where(m.closed, closed_opening, t_open)
    rest = resting(m) if varied else np.zeros(len(m), bool)
    # in a pause the mouth rests at the speaker's own rest opening, as theirs does: closing it fully in every
    # pause would spread the openings wider than the speaker's own whenever their lips rest parted
    t_open = np.where(rest, o_lo, t_open)
    ranked = False  # openings mapped by rank (the track's amplitude cancelled: applied again below)
    if varied:
        open_frames = ~m.closed & (m.opening > 0)
        src = np.sort(descriptors[:, 0][descriptors[:, 0] > o_lo + SOURCE_OPEN_FLOOR * (o_hi - o_lo)])
        step = mean_step(descriptors[:, 0], frames)
        if open_frames.sum() >= MIN_MAPPED_FRAMES and len(src) >= MIN_MAPPED_FRAMES:
            # the speech's openings take this speaker's whole distribution of openings (their widest
            # included), moving as smoothly frame to frame as their own lips
            t_open = rank_matched(m.opening, open_frames, m.closed, src, t_open, step)
            spread = SPREAD_ALLOWANCE * float(np.std(descriptors[:, 0]))
            t_open = match_spread(t_open, open_frames, float(o_lo), spread)
            t_open = approach_closures(t_open, m.closed, closed_opening)
            ranked = True
        else:
            # move like this speaker moves: as smooth frame to frame as their own lips, closures kept shut
            t_open = match_smoothness(t_open, m.closed, step)
    if ranked and m.amplitude != 1.0:
        top = float(descriptors[:, 0].max()) + SCALED_MARGIN * (o_hi - o_lo)
        t_open = scale_openings(t_open, m.closed & ~rest, m.amplitude, float(o_lo), closed_opening, top)
    t_width = w_mid + m.width * w_half
    return Targets(t_open, t_width, m.closed, o_lo, o_hi, w_half, bool(varied))


def match_spread(opening: np.ndarray, open_frames: np.ndarray, rest: float, spread: float) -> np.ndarray:
    """``opening`` (n,) face units with the open frames' distance from ``rest`` shrunk by the one factor that
    brings the standard deviation over all frames down to ``spread`` (unchanged when already within it).

    The speech may close the lips on more of its frames than the speaker's footage shows closed (every
    p, b, m and most stops, where the footage has few); those closures alone would spread the dub's
    openings wider than the speaker's own, and the mouth would change more frame to frame than theirs.
    """
    if float(np.std(opening)) <= spread or not open_frames.any():
        return opening

    def shrunk(k: float) -> np.ndarray:
        out = opening.copy()
        out[open_frames] = rest + k * (opening[open_frames] - rest)
        return out

    lo, hi = 0.0, 1.0
    for _ in range(20):  # bisection: the spread grows with k
        mid = 0.5 * (lo + hi)
        if float(np.std(shrunk(mid))) > spread:
            hi = mid
        else:
            lo = mid
    return shrunk(lo)


def approach_closures(opening: np.ndarray, closed: np.ndarray, closed_opening: float) -> np.ndarray:
    """The frame before a closure halfway between its own opening and the closed one: after the mapping
    by rank a closure would otherwise be a one-frame dip between open mouths, which the lips (and the face
    mesh that checks them) do not follow. ``opening``: (n,) face units; ``closed``: bool (n,)."""
    near = np.zeros_like(closed)
    near[:-1] = closed[1:] & ~closed[:-1]  # the frame before: lips close gradually, and open at once (the release)
    out = opening.copy()
    out[near] = closed_opening + CLOSURE_APPROACH * (opening[near] - closed_opening)
    return out


def resting(mouth: MouthTrack) -> np.ndarray:
    """Bool (n,): frames of pauses (closed, no speech, at least :data:`PAUSE_REST_S` long) further than
    :data:`PAUSE_EDGE_S` from speech; a clip's start and end count as far from speech."""
    from retalk.dsp import runs

    quiet = mouth.closed & ~mouth.speech
    out = np.zeros(len(quiet), bool)
    n_min = max(1, int(round(PAUSE_REST_S * mouth.fps)))
    edge = int(round(PAUSE_EDGE_S * mouth.fps))
    for a, b in runs(quiet):
        if b - a >= n_min:
            out[a + (edge if a > 0 else 0): b - (edge if b < len(quiet) else 0)] = True
    return out


def _by_rank(x: np.ndarray, sel: np.ndarray, src_sorted: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``base`` with the frames ``sel`` replaced by the quantiles of ``src_sorted`` at ``x[sel]``'s ranks."""
    out = base.astype(np.float64).copy()
    o = x[sel]
    ranks = (np.argsort(np.argsort(o, kind="stable"), kind="stable") + 0.5) / len(o)
    out[sel] = np.quantile(src_sorted, ranks)
    return out


def rank_matched(opening: np.ndarray, open_frames: np.ndarray, closed: np.ndarray, src_sorted: np.ndarray,
                 base: np.ndarray, target_step: float) -> np.ndarray:
    """Openings (n,) in face units whose open frames follow ``opening``'s ranks and take the distribution
    of ``src_sorted`` (the speaker's own open-mouth openings, sorted), smoothed first just enough that,
    after that mapping, the mean change between consecutive unpinned frames is ``target_step``.

    ``opening``: the mouth track's openings (n,); ``open_frames``/``closed``: bool (n,); ``base``: the value of
    every frame that is not open (closures shut, rest elsewhere). Smoothing after the mapping would shrink the
    spread (the peaks sink towards the pinned closures); mapping after smoothing restores it, so the dub's
    openings spread like the speaker's own and change frame to frame as much.
    """
    x = opening.astype(np.float64)
    free = ~closed[1:] & ~closed[:-1]

    def mapped(weight: float) -> np.ndarray:
        y = smooth_pinned(x, closed, weight) if weight > 0 else x
        return _by_rank(y, open_frames, src_sorted, base)

    def step(y: np.ndarray) -> float:
        return float(np.abs(np.diff(y))[free].mean()) if free.any() else 0.0

    if target_step <= 0 or len(x) < 3 or step(mapped(0.0)) <= target_step:
        return mapped(0.0)
    lo, hi = 0.0, 1.0
    while step(mapped(hi)) > target_step and hi < 256:
        lo, hi = hi, hi * 2
    for _ in range(12):  # bisection on the weight
        mid = 0.5 * (lo + hi)
        if step(mapped(mid)) > target_step:
            lo = mid
        else:
            hi = mid
    # the mapping re-spreads whatever the smoothing flattened; where ranks alone still change faster than the
    # speaker's lips (speech faster than their own), the excess over STEP_ALLOWANCE is smoothed after the
    # mapping, at some cost in spread
    return match_smoothness(mapped(hi), closed, STEP_ALLOWANCE * target_step)


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
