"""Do the landmarks move with the picture? A check of the face mesh against the frame's own motion.

Under fast motion (a whip pan, a quick head turn) the face mesh can trail the face: it looks for the face where
it was in the previous frame and fits one there (measured on a generated whip pan: 18 px behind, a fifth of
the eye distance, at 60 px a frame). The picture says where the face went. Two pictures are compared by phase
correlation, each cut around the face as the landmarks place it (:func:`aligned_picture`: :data:`CONTEXT`
times the landmark box, shrunk to :data:`SIDE` pixels): the previous frame's at its landmarks, this frame's at
its own. Where the landmarks follow the face the two show it at the same place; the shift that is left is how
much further the landmarks are off than in the previous frame. Summed over consecutive frames
(:func:`accumulated_drift`: a mesh a frame late shows as a step away and, when it catches up, a step back),
forgetting a share :data:`FORGET` each frame so that noise does not add up, it estimates how far off they are.
Over :data:`DRIFT_LIMIT` inter-ocular distances the tracking is unsure and the frame is passed through
(:meth:`retalk.face.tracker.FaceTracker.finish`).

The previous frame's picture compared with this frame's at the same place (the previous face's box, before
this frame is tracked) says whether the picture only moved (a strong correlation peak: a pan, a head moving
in front of a still background) or changed (a cut); :mod:`retalk.face.shots` uses it.

Units: pixels of the frame; drift in inter-ocular distances.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from retalk.face import landmarks as L

SIDE = 96  # pictures are compared at this many pixels square
CONTEXT = 1.6  # the pictures: the landmark box grown to this many times its size, about its centre
DRIFT_LIMIT = 0.15  # inter-ocular distances: landmarks estimated this far off the face are unsure
FORGET = 0.05  # each frame the sum of drift steps loses this share of itself
MIN_RESPONSE = 0.08  # a phase correlation peak weaker than this measures nothing (picture changed too much)


def aligned_picture(frame: np.ndarray, box: np.ndarray, context: float = CONTEXT) -> np.ndarray:
    """The grey picture of the region ``context`` times the box (x0, y0, x1, y1) about its centre, as ``SIDE``²
    float32 (edges beyond the frame repeat its border, so the region stays centred on the box).

    The region is read every ``step`` pixels (a view; at most about twice ``SIDE`` samples a side) before it
    is shrunk: about 0.2 ms for a 1080p face."""
    c = 0.5 * (box[:2] + box[2:])
    w, h = (int(np.ceil(v)) for v in context * np.maximum(box[2:] - box[:2], 2.0))
    step = max(1, min(w, h) // (2 * SIDE))
    x0, y0 = int(round(c[0] - w / 2)), int(round(c[1] - h / 2))
    x1, y1 = x0 + w, y0 + h
    fh, fw = frame.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, fw), min(y1, fh)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((SIDE, SIDE), np.float32)
    patch = np.ascontiguousarray(frame[cy0:cy1:step, cx0:cx1:step])
    pads = [-(-(cy0 - y0) // step), -(-(y1 - cy1) // step), -(-(cx0 - x0) // step), -(-(x1 - cx1) // step)]
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, cv2.BORDER_REPLICATE)
    small = cv2.resize(patch, (SIDE, SIDE),
                       interpolation=cv2.INTER_AREA if min(patch.shape[:2]) > SIDE else cv2.INTER_LINEAR)
    return (cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small).astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """The Hann window (``SIDE``², float64) the pictures are correlated under (made once, never changed)."""
    w = cv2.createHanningWindow((SIDE, SIDE), cv2.CV_64F)
    w.flags.writeable = False
    return w


def picture_shift(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray | None, float]:
    """How far (dx, dy, in pixels of the ``SIDE``² pictures) the content moved from ``before`` to ``after``
    (None where the correlation is too weak to say, under :data:`MIN_RESPONSE`), and the correlation's peak
    (0 … 1: how much of the picture is the same, shifted)."""
    (dx, dy), response = cv2.phaseCorrelate(before.astype(np.float64), after.astype(np.float64), _window())
    return (None if response < MIN_RESPONSE else np.array([dx, dy])), float(response)


def drift_step(before: np.ndarray, after: np.ndarray, box: np.ndarray, lm: np.ndarray) -> np.ndarray | None:
    """How much further (dx, dy inter-ocular distances) the landmarks ``lm`` (478, >=2) are off the face than the
    previous frame's: ``before`` is the previous frame's :func:`aligned_picture` at its landmarks, ``after`` this
    frame's at ``box`` (``lm``'s box); None where the pictures do not correlate."""
    shift, _ = picture_shift(before, after)
    if shift is None:
        return None
    px = shift * CONTEXT * np.maximum(box[2:] - box[:2], 1.0) / SIDE
    return -px / max(float(L.interocular(lm)), 1e-3)  # the face sits further along than the landmarks


def accumulated_drift(steps: np.ndarray, valid: np.ndarray, shot: np.ndarray) -> np.ndarray:
    """How far (inter-ocular distances, float (n,)) the landmarks are estimated to be off the face, from the
    per-frame ``steps`` (n, 2) of :func:`drift_step` (NaN: not measured): their sum over consecutive valid
    frames of one shot (``valid`` bool (n,), ``shot`` int (n,)), a share :data:`FORGET` forgotten each frame."""
    n = len(valid)
    out = np.zeros(n)
    acc = np.zeros(2)
    for k in range(n):
        if not valid[k] or (k and (shot[k] != shot[k - 1] or not valid[k - 1])):
            acc[:] = 0.0
        if valid[k]:
            step = steps[k]
            acc = (1.0 - FORGET) * acc + (0.0 if np.isnan(step).any() else step)
            out[k] = float(np.hypot(*acc))
    return out
