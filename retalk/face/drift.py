"""Do the landmarks move with the picture? A check of the face mesh against the frame's own motion.

Under fast motion (a whip pan, a quick head turn) the face mesh can trail the face: it looks for the face where
it was in the previous frame and fits one there (measured on a generated whip pan: 18 px behind, a fifth of
the eye distance, at 60 px a frame). The picture says where the face went. Two pictures are compared by phase
correlation, each cut around the face as the landmarks place it (:func:`aligned_picture`: :data:`FACE_CONTEXT`
times the landmark box, shrunk to :data:`SIDE` pixels): the previous frame's at its landmarks, this frame's at
its own. Where the landmarks follow the face the two show it at the same place; the shift that is left is how
much further the landmarks are off than in the previous frame. Summed over consecutive frames
(:func:`accumulated_drift`: a mesh a frame late shows as a step away and, when it catches up, a step back),
forgetting a share :data:`FORGET` each frame so that noise does not add up, it estimates how far off they are.
Over :data:`DRIFT_LIMIT` inter-ocular distances the tracking is unsure and the frame is passed through
(:meth:`retalk.face.tracker.FaceTracker.finish`).

The same comparison on a wider region around the previous face, unaligned (:data:`WIDE_CONTEXT`), says whether
the picture only moved (a strong correlation peak: a pan) or changed (a cut); :mod:`retalk.face.shots` uses it.

Units: pixels of the frame; drift in inter-ocular distances.
"""
from __future__ import annotations

import cv2
import numpy as np

from retalk.face import landmarks as L

SIDE = 96  # pictures are compared at this many pixels square
FACE_CONTEXT = 1.3  # the aligned picture: the landmark box grown to this many times its size, about its centre
WIDE_CONTEXT = 2.0  # the picture for "moved or changed": this many times the previous face's box
DRIFT_LIMIT = 0.15  # inter-ocular distances: landmarks estimated this far off the face are unsure
FORGET = 0.05  # each frame the sum of drift steps loses this share of itself
MIN_RESPONSE = 0.08  # a phase correlation peak weaker than this measures nothing (picture changed too much)


def aligned_picture(frame: np.ndarray, box: np.ndarray, context: float) -> np.ndarray:
    """The grey picture of the region ``context`` times the box (x0, y0, x1, y1) about its centre, as ``SIDE``²
    float32 (edges beyond the frame repeat its border, so the region stays centred on the box)."""
    c = 0.5 * (box[:2] + box[2:])
    size = context * np.maximum(box[2:] - box[:2], 1.0)
    sx, sy = SIDE / size
    m = np.array([[sx, 0.0, SIDE / 2 - sx * c[0]], [0.0, sy, SIDE / 2 - sy * c[1]]])
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    return cv2.warpAffine(grey, m, (SIDE, SIDE), flags=cv2.INTER_AREA if min(sx, sy) < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def picture_shift(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray | None, float]:
    """How far (dx, dy, in pixels of the ``SIDE``² pictures) the content moved from ``before`` to ``after``
    (None where the correlation is too weak to say, under :data:`MIN_RESPONSE`), and the correlation's peak
    (0 … 1: how much of the picture is the same, shifted)."""
    (dx, dy), response = cv2.phaseCorrelate(before.astype(np.float64), after.astype(np.float64),
                                            cv2.createHanningWindow((SIDE, SIDE), cv2.CV_64F))
    return (None if response < MIN_RESPONSE else np.array([dx, dy])), float(response)


def drift_step(before: np.ndarray, after: np.ndarray, box: np.ndarray, lm: np.ndarray) -> np.ndarray | None:
    """How much further (dx, dy inter-ocular distances) the landmarks ``lm`` (478, >=2) are off the face than the
    previous frame's: ``before`` is the previous frame's :func:`aligned_picture` at its landmarks, ``after`` this
    frame's at ``box`` (``lm``'s box); None where the pictures do not correlate."""
    shift, _ = picture_shift(before, after)
    if shift is None:
        return None
    px = shift * FACE_CONTEXT * np.maximum(box[2:] - box[:2], 1.0) / SIDE
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
