"""Landmark metrics for MediaPipe Face Mesh landmarks (weight-free).

Landmarks are arrays of shape (T, 478, D) or (478, D) — the 468 mesh points
plus 10 iris points — in pixels (or any consistent unit); only x and y (the
first two coordinates) are used.  Distances are normalised by the
inter-ocular distance (IOD): the distance between the outer eye corners,
points 33 and 263, so the scores do not depend on picture size.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

N_POINTS = 478
"""MediaPipe Face Mesh with iris refinement."""
LEFT_EYE_OUTER = 263
RIGHT_EYE_OUTER = 33
UPPER_LIP_INNER = 13
LOWER_LIP_INNER = 14

LIP_INDICES: tuple[int, ...] = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
    185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)
"""The 40 points of MediaPipe's ``FACEMESH_LIPS`` connections (outer and inner lip contours)."""

__all__ = [
    "LIP_INDICES",
    "MouthStats",
    "inter_ocular",
    "landmark_jitter",
    "lmd",
    "lmd_face",
    "lmd_mouth",
    "mouth_opening",
    "mouth_opening_stats",
]


def _as_seq(landmarks: np.ndarray) -> np.ndarray:
    """(T, P, 2) float64 view of the x, y coordinates."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim == 2:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[2] < 2:
        raise ValueError(f"expected landmarks of shape (T, P, D>=2) or (P, D>=2), got {np.shape(landmarks)}")
    return lm[:, :, :2]


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Inter-ocular distance per frame, (T,), in the landmarks' unit (outer eye corners 33–263)."""
    lm = _as_seq(landmarks)
    return np.linalg.norm(lm[:, LEFT_EYE_OUTER] - lm[:, RIGHT_EYE_OUTER], axis=1)


def lmd(pred: np.ndarray, ref: np.ndarray, indices: tuple[int, ...] | np.ndarray | None = None,
        normalize: bool = False) -> float:
    """Landmark distance: mean Euclidean distance between matching points over frames.

    ``pred``/``ref`` are (T, P, D) or (P, D).  ``indices`` selects points
    (default all).  Unit: the landmarks' unit (pixels), or, with
    ``normalize=True``, a fraction of the reference frame's inter-ocular
    distance.  Frames are compared in place (no alignment), as in the LMD of
    the lip-sync literature.
    """
    p, r = _as_seq(pred), _as_seq(ref)
    if p.shape != r.shape:
        raise ValueError(f"landmark arrays differ in shape: {p.shape} vs {r.shape}")
    idx = np.arange(p.shape[1]) if indices is None else np.asarray(indices, dtype=np.int64)
    dist = np.linalg.norm(p[:, idx] - r[:, idx], axis=2)  # (T, K)
    if normalize:
        iod = inter_ocular(r)
        if np.any(iod <= 0):
            raise ValueError("reference landmarks have a zero inter-ocular distance")
        dist = dist / iod[:, None]
    return float(dist.mean())


def lmd_mouth(pred: np.ndarray, ref: np.ndarray, normalize: bool = False) -> float:
    """:func:`lmd` over the 40 lip points (:data:`LIP_INDICES`)."""
    return lmd(pred, ref, LIP_INDICES, normalize)


def lmd_face(pred: np.ndarray, ref: np.ndarray, normalize: bool = False) -> float:
    """:func:`lmd` over every point."""
    return lmd(pred, ref, None, normalize)


def landmark_jitter(landmarks: np.ndarray, indices: tuple[int, ...] | np.ndarray | None = None) -> float:
    """Temporal instability: mean norm of the second difference of each point.

    ``mean_t,k ‖x[t+1,k] − 2·x[t,k] + x[t−1,k]‖ / IOD[t]``.  Unit: fraction of
    the inter-ocular distance per frame² (smooth or uniform motion scores 0;
    frame-to-frame trembling scores high).  Needs at least 3 frames.
    """
    lm = _as_seq(landmarks)
    if lm.shape[0] < 3:
        raise ValueError("landmark jitter needs at least 3 frames")
    idx = np.arange(lm.shape[1]) if indices is None else np.asarray(indices, dtype=np.int64)
    acc = lm[2:, idx] - 2.0 * lm[1:-1, idx] + lm[:-2, idx]
    iod = inter_ocular(lm)[1:-1]
    if np.any(iod <= 0):
        raise ValueError("landmarks have a zero inter-ocular distance")
    return float((np.linalg.norm(acc, axis=2) / iod[:, None]).mean())


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mouth-opening series (T,): inner-lip gap 13–14 over inter-ocular distance 33–263 (unitless)."""
    lm = _as_seq(landmarks)
    gap = np.linalg.norm(lm[:, UPPER_LIP_INNER] - lm[:, LOWER_LIP_INNER], axis=1)
    iod = inter_ocular(lm)
    return gap / np.where(iod > 0, iod, np.nan)


@dataclass(frozen=True)
class MouthStats:
    """Statistics of a mouth-opening series (units: fraction of inter-ocular distance; per frame for speed)."""

    mean: float
    std: float
    p5: float
    p95: float
    range: float
    """p95 − p5: how far the mouth moves, robust to outliers."""
    mean_speed: float
    """Mean absolute frame-to-frame change."""
    open_fraction: float
    """Fraction of frames whose opening exceeds ``p5 + 0.25·range`` (0 when the range is 0)."""


def mouth_opening_stats(series: np.ndarray) -> MouthStats:
    """Summary of a mouth-opening series from :func:`mouth_opening` (NaN frames ignored)."""
    s = np.asarray(series, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("mouth-opening series has no finite values")
    p5, p95 = (float(v) for v in np.percentile(s, [5, 95]))
    rng = p95 - p5
    speed = float(np.abs(np.diff(s)).mean()) if s.size > 1 else 0.0
    open_frac = float(np.mean(s > p5 + 0.25 * rng)) if rng > 0 else 0.0
    return MouthStats(mean=float(s.mean()), std=float(s.std()), p5=p5, p95=p95, range=rng,
                      mean_speed=speed, open_fraction=open_frac)
