"""Index sets of mediapipe's 478-point face mesh and geometry computed from them.

All coordinates are pixels in the upright frame, x to the right, y down.
"Left"/"right" are in image space (the subject's right eye is image-left).
"""
from __future__ import annotations

import numpy as np

N_POINTS = 478

# Outer and inner lip contours, each a closed loop starting at the image-left corner.
LIPS_OUTER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185])
LIPS_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191])
UPPER_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
LOWER_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
UPPER_OUTER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291])
LOWER_OUTER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291])
LIPS = np.unique(np.concatenate([LIPS_OUTER, LIPS_INNER]))

# The middle five of the eleven inner-lip point pairs (``UPPER_INNER[j]`` facing ``LOWER_INNER[j]``, corner to
# corner): the lip gap measured there is the mouth's opening.
MID_LIP_PAIRS = slice(3, 8)

# Face silhouette, clockwise from the top of the forehead.
FACE_OVAL = np.array([
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
])
# The lower part of the silhouette (jaw line), image-left cheek → chin → image-right cheek.
JAW = np.array([234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454])
CHIN = 152
# The face's edges at cheekbone height (image-left, image-right): the silhouette's widest points.
CHEEK_EDGE_LEFT, CHEEK_EDGE_RIGHT = 234, 454
# The jaw line's two ends on either side (beside the ears): they stay put when the jaw drops.
JAW_ENDS = np.array([234, 93, 454, 323])
# The jaw line without those ends and the next point on either side: lower cheeks, jaw and chin.
LOWER_JAW = JAW[3:-3]
# Points on the lower face between the lips and the jaw line that move with the jaw.
LOWER_FACE_INNER = np.array([
    57, 43, 106, 182, 83, 18, 313, 406, 335, 273, 287, 204, 194, 201, 200, 421, 418, 424, 32, 262, 140, 171, 175, 396, 369,
    169, 170, 211, 210, 202, 212, 214, 135, 138, 215, 177, 147, 187, 192, 213, 432, 436, 434, 416, 433, 411, 427, 430, 394,
    395, 431, 367, 364, 397, 422, 199, 208, 428,
])
# Points that do not move when the mouth opens: eyes, brows, nose bridge and tip, upper cheeks.
STABLE = np.array([
    33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 129, 358, 70, 300, 105, 334,
    116, 345, 117, 346, 118, 347, 50, 280, 205, 425, 36, 266, 101, 330, 234, 454, 127, 356,
])
# Under the nose, the top boundary of the region the mouth animation may change.
NOSE_BASE = np.array([203, 98, 97, 2, 326, 327, 423])
# Points around the mouth that stay put when it moves: cheek points between the eyes, the nose and the jaw
# line, in image-left/right pairs (205, 425; 50, 280; 36, 266; 187, 411; 147, 376), the nose wings
# (129, 358) and two points on the nose's ridge just above its tip (4, 5).
MOUTH_SURROUND = np.array([205, 425, 50, 280, 36, 266, 129, 358, 187, 411, 147, 376, 4, 5])
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
NOSE_TIP = 1
UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID = 13, 14
UPPER_LIP_OUTER_MID, LOWER_LIP_OUTER_MID = 0, 17
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
IRIS_RIGHT, IRIS_LEFT = 468, 473


def interocular(lm: np.ndarray) -> np.ndarray:
    """Distance in pixels between the outer eye corners; ``lm`` (..., 478, >=2)."""
    return np.linalg.norm(lm[..., LEFT_EYE_OUTER, :2] - lm[..., RIGHT_EYE_OUTER, :2], axis=-1)


def face_frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A face-attached 2-D frame: (origin at the eye midpoint, unit x along the eyes, unit y down the face).

    Returns ``(origin (2,), ex (2,), ey (2,))``; dividing offsets by :func:`interocular` makes them scale-free.
    """
    a, b = lm[RIGHT_EYE_OUTER, :2], lm[LEFT_EYE_OUTER, :2]
    ex = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    ey = np.array([-ex[1], ex[0]])
    return (a + b) / 2.0, ex, ey


def to_face_coords(lm: np.ndarray) -> np.ndarray:
    """Landmarks (478, >=2) in face units: origin eye midpoint, x along the eye line, 1 = inter-ocular distance."""
    o, ex, ey = face_frame(lm)
    d = lm[:, :2] - o
    iod = max(float(interocular(lm)), 1e-6)
    return np.stack([d @ ex, d @ ey], axis=1) / iod


def mouth_descriptor(lm: np.ndarray) -> np.ndarray:
    """Pose-normalised mouth shape in face units (inter-ocular distance = 1).

    Returns ``[opening, width, upper_lip, lower_lip, chin]``: the inner-lip gap
    (mid-lip points 13→14), the corner-to-corner width, the vertical position of
    the upper and lower outer lip midpoints and of the chin below the eyes.
    """
    f = to_face_coords(lm)
    inner_gap = np.maximum(f[LOWER_INNER, 1] - f[UPPER_INNER, 1], 0.0)
    opening = float(inner_gap[MID_LIP_PAIRS].mean())
    width = float(np.linalg.norm(f[MOUTH_RIGHT] - f[MOUTH_LEFT]))
    return np.array([opening, width, f[UPPER_LIP_OUTER_MID, 1], f[LOWER_LIP_OUTER_MID, 1], f[CHIN, 1]], np.float32)


def opening_series(landmarks: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Inner-lip opening per frame (:func:`mouth_descriptor`'s first value, face units); NaN where not ``valid``.

    ``landmarks``: (n, 478, >=2); ``valid``: (n,) bool.
    """
    out = np.full(len(valid), np.nan)
    for i in np.flatnonzero(valid):
        out[i] = mouth_descriptor(landmarks[i])[0]
    return out


def head_pose(lm3: np.ndarray) -> np.ndarray:
    """Rough head pose (yaw, pitch, roll) in degrees from 3-D mesh points (478, 3) in pixels.

    Roll is the eye line's angle; yaw and pitch come from the rotation that best
    maps a frontal reference built from this face's own symmetric points, which
    is enough to compare poses within one clip (it is not a calibrated estimate).
    """
    o, ex, ey = face_frame(lm3)
    roll = float(np.degrees(np.arctan2(ex[1], ex[0])))
    f = to_face_coords(lm3)
    # yaw: nose tip offset between the two cheek edges; pitch: nose tip height between eyes and chin.
    left, right = f[CHEEK_EDGE_LEFT, 0], f[CHEEK_EDGE_RIGHT, 0]
    mid = (left + right) / 2.0
    half = max((right - left) / 2.0, 1e-6)
    yaw = float(np.degrees(np.arcsin(np.clip((f[NOSE_TIP, 0] - mid) / half, -1, 1))))
    chin = max(f[CHIN, 1], 1e-6)
    pitch = float(np.degrees(np.arcsin(np.clip((f[NOSE_TIP, 1] / chin - 0.45) / 0.45, -1, 1))))
    return np.array([yaw, pitch, roll], np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2-D similarity (rotation, uniform scale, translation) mapping ``src`` → ``dst``.

    ``src``, ``dst``: (n, 2). Returns a 2×3 matrix for ``cv2.warpAffine``.
    """
    s_mean, d_mean = src.mean(0), dst.mean(0)
    s, d = src - s_mean, dst - d_mean
    var = (s**2).sum()
    if var < 1e-12:
        return np.array([[1, 0, d_mean[0] - s_mean[0]], [0, 1, d_mean[1] - s_mean[1]]], np.float64)
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = d_mean - m[:, :2] @ s_mean
    return m


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine matrix to points (n, 2)."""
    return pts @ m[:, :2].T + m[:, 2]
