"""Stage 3, selection: which library mouth each output frame shows (dynamic programming, Viterbi).

Unary cost, per output frame and entry: the entry's opening and width against the frame's target
and its head pose against the background frame's, plus a penalty for an open mouth at a closure.
Transition cost: nothing for the source's own next frame, a little to hold, otherwise a jump price
plus the shape jump plus how unlike the mouth that would have come next the new one looks (small
aligned grey patches, in units of the speaker's own frame-to-frame change), so the selection plays
real consecutive frames and jumps between look-alikes: no stutter, no flicker.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from retalk.engines.builtin.library import Library, mouth_patches, pairwise_rms
from retalk.engines.builtin.targets import Targets

log = logging.getLogger(__name__)

WIDTH_TOLERANCE = 0.5  # a width error of this fraction of the speaker's half range of widths costs 1 ...
WIDTH_WEIGHT = 0.5  # ... times this
POSE_TOLERANCE_DEG = 8.0  # a yaw or pitch difference of this many degrees costs 1
CLOSURE_OPEN_FRACTION = 0.12  # at a closure, an entry opened wider than this fraction of the range ...
CLOSURE_PENALTY = 20.0  # ... costs this much more
MAX_UNARY = 200.0  # unary costs are capped (one bad frame must not decide a whole path)
SHAPE_JUMP_SCALE = 0.2  # a jump between openings this fraction of the range apart costs 1 more
HOLD_COST = 0.8  # showing the same entry again
MIN_NATURAL_CHANGE = 1e-3  # floor of the speaker's median frame-to-frame patch change (grey levels)


@dataclass(frozen=True)
class Selection:
    """``entry``: int32 (n,), the library entry (index into :attr:`Library.entries`) each output frame shows;
    ``jumps``: how many times it leaves the source's own order (for logs)."""

    entry: np.ndarray
    jumps: int


def select(library: Library, targets: Targets, landmarks: np.ndarray, pose: np.ndarray, schedule: np.ndarray, *,
           shape_tolerance: float, jump_cost: float, appearance_weight: float) -> Selection:
    """Viterbi over ``library`` for every output frame of ``targets``.

    ``landmarks`` (n_src, 478, >=2) pixels and ``pose`` (n_src, 3) degrees: the face track; ``schedule``: int (n,),
    the background source frame of each output frame. ``shape_tolerance``: an opening error of this fraction of
    the speaker's range costs 1; ``jump_cost``: the price of leaving the source's own frame order;
    ``appearance_weight``: what a jump costs per unit of visual difference (in the speaker's own frame-to-frame
    change) between the mouth jumped to and the one that would have come next.
    """
    lib = library.descriptors
    k = len(lib)
    t_open, t_width, closed = targets.opening, targets.width, targets.closed
    o_range = targets.open_range
    idx = library.frames
    pose_lib = pose[idx][:, :2]
    pose_bg = pose[schedule][:, :2]
    d_open = (lib[None, :, 0] - t_open[:, None]) / (shape_tolerance * o_range)
    d_width = (lib[None, :, 1] - t_width[:, None]) / (WIDTH_TOLERANCE * targets.width_half)
    d_pose = (pose_lib[None, :, :] - pose_bg[:, None, :]) / POSE_TOLERANCE_DEG
    unary = d_open**2 + WIDTH_WEIGHT * d_width**2 + (d_pose**2).sum(-1)
    open_frac = (lib[:, 0] - float(targets.open_lo)) / o_range
    unary += np.where(closed[:, None] & (open_frac[None, :] > CLOSURE_OPEN_FRACTION), CLOSURE_PENALTY, 0.0)
    unary = np.minimum(unary, MAX_UNARY)
    dd = (lib[:, None, 0] - lib[None, :, 0]) / (SHAPE_JUMP_SCALE * o_range)
    trans = jump_cost + dd**2
    succ = np.flatnonzero(idx[1:] - idx[:-1] == library.stride)
    if appearance_weight > 0 and len(succ):
        # A jump from a to b shows b where a's successor would have come: the jump costs in
        # proportion to how different those two mouths look, in units of the speaker's own
        # change from one frame to the next, so the selection jumps between look-alikes.
        look = pairwise_rms(mouth_patches(library.entries, landmarks))
        natural = float(np.median(look[succ, succ + 1]))
        nxt = np.arange(k)
        nxt[succ] = succ + 1
        trans += appearance_weight * look[nxt] / max(natural, MIN_NATURAL_CHANGE)
    np.fill_diagonal(trans, HOLD_COST)
    trans[succ, succ + 1] = 0.0
    sel = viterbi(unary, trans)
    jumps = int(np.sum((np.diff(sel) != 0) & (trans[sel[:-1], sel[1:]] > 0)))
    log.debug("selection: %d jumps over %d frames", jumps, len(sel))
    return Selection(sel, jumps)


def viterbi(unary: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """The state path of least total cost: ``unary`` (n, k) per step and state, ``trans`` (k, k) from state a
    (row) to b (column). Returns int32 (n,)."""
    n, k = unary.shape
    back = np.zeros((n, k), np.int32)
    cost = unary[0].copy()
    for i in range(1, n):
        tot = cost[:, None] + trans
        back[i] = np.argmin(tot, axis=0)
        cost = tot[back[i], np.arange(k)] + unary[i]
    sel = np.zeros(n, np.int32)
    sel[-1] = int(np.argmin(cost))
    for i in range(n - 1, 0, -1):
        sel[i - 1] = back[i, sel[i]]
    return sel
