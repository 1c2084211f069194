"""Landmarks over time: smoothing that never lags a fast-moving face, and frames whose tracking is unsure.

Savitzky–Golay smoothing removes the face mesh's jitter, but where the head (or the camera) speeds up or
stops within a few frames, a smoothed point trails the real one: in a whip pan the lips were drawn about
45 px from the mouth. So the smoothing is **motion-adaptive**: per frame, the smoothed face's offset from
the raw one (mean over the stable points, in inter-ocular distances) is measured; up to
:data:`LAG_KEEP` it is jitter being removed and the smoothed points are kept, from :data:`LAG_RAW` on it is
lag and the raw points are taken, in between the two are mixed linearly. The smoothed face therefore never
sits more than about 0.02 inter-ocular distances from the measured one.

**Unsure frames** (:func:`unsure_frames`): a frame whose landmarks jump away from both neighbours while the
neighbours agree with each other (a one-frame glitch of the mesh: a shape or scale spike that no head moves
like) is not trusted; the pipeline passes it through rather than draw a mouth where the face is not.

Nothing crosses a cut: every run of valid frames is also split at shot boundaries.
"""
from __future__ import annotations

import numpy as np

from retalk.dsp import runs, savgol
from retalk.face import landmarks as L

LAG_KEEP = 0.02  # inter-ocular distances: a smoothed face this close to the raw one keeps its smoothing ...
LAG_RAW = 0.05  # ... and from this far on the raw landmarks are taken (mixed linearly in between)
SHAPE_SPIKE = 0.06  # inter-ocular distances (RMS, after the best similarity): a jump this large from both ...
SCALE_SPIKE = 0.12  # ... neighbours, or a change of size (log ratio) this large, while the neighbours agree
AGREE_SHARE = 0.5  # "the neighbours agree": their own jump is under this share of the threshold


def mobile_points() -> np.ndarray:
    """bool (478,): the lips, jaw and lower face (smoothed with a short window), the rest is rigid."""
    mobile = np.zeros(L.N_POINTS, bool)
    mobile[L.LIPS] = True
    mobile[L.JAW] = True
    mobile[L.LOWER_FACE_INNER] = True
    return mobile


def shot_runs(valid: np.ndarray, shot: np.ndarray | None) -> list[tuple[int, int]]:
    """``(start, stop)`` runs of valid frames, split where the shot changes (``shot``: int (n,) or None)."""
    out: list[tuple[int, int]] = []
    for a, b in runs(valid):
        if shot is None:
            out.append((a, b))
            continue
        bounds = [a, *(int(k) for k in np.flatnonzero(shot[a + 1:b] != shot[a:b - 1]) + a + 1), b]
        out += [(bounds[j], bounds[j + 1]) for j in range(len(bounds) - 1)]
    return out


def smooth_landmarks(lms: np.ndarray, valid: np.ndarray, rigid_window: int = 9, lip_window: int = 5,
                     shot: np.ndarray | None = None, adaptive: bool = True) -> np.ndarray:
    """Savitzky–Golay smoothing over time within each run of valid frames of one shot.

    ``lms``: (n, 478, 3) pixels; ``valid``: bool (n,); ``shot``: int (n,) shot numbers (None: one shot).
    The face outline, eyes and nose get a wide window (``rigid_window`` frames, order 2) to remove jitter;
    the lips and jaw a short one (``lip_window``, order 3), which passes a mouth closing within one frame
    almost unchanged. With ``adaptive``, frames where the smoothing would move the face away from where it
    was measured (lag under fast motion) take the raw landmarks (see the module docstring).
    """
    out = lms.copy()
    mobile = mobile_points()
    for a, b in shot_runs(valid, shot):
        m = b - a
        for sel, win, order in ((~mobile, rigid_window, 2), (mobile, lip_window, 3)):
            w = min(win, m if m % 2 else m - 1)
            if w <= order:
                continue
            out[a:b, sel] = savgol(lms[a:b, sel], w, order)
    if adaptive:
        idx = np.flatnonzero(valid)
        if len(idx):
            raw, sm = lms[idx], out[idx]
            iod = np.maximum(L.interocular(raw), 1e-3)
            lag = np.linalg.norm((sm[:, L.STABLE, :2] - raw[:, L.STABLE, :2]).mean(1), axis=-1) / iod
            a = np.clip((lag - LAG_KEEP) / (LAG_RAW - LAG_KEEP), 0.0, 1.0).astype(np.float32)
            moved = a > 0
            out[idx[moved]] = sm[moved] + a[moved, None, None] * (raw[moved] - sm[moved])
    return out


def _rigid_residual(a: np.ndarray, b: np.ndarray, pts: np.ndarray) -> float:
    """RMS distance (pixels) of ``b``'s points ``pts`` from ``a``'s moved onto them by the best similarity."""
    m = L.similarity_transform(a[pts, :2].astype(np.float64), b[pts, :2].astype(np.float64))
    d = L.apply_affine(m, a[pts, :2].astype(np.float64)) - b[pts, :2]
    return float(np.sqrt((d**2).sum(1).mean()))


def unsure_frames(lms: np.ndarray, valid: np.ndarray, shot: np.ndarray | None = None) -> np.ndarray:
    """Frames (bool (n,)) whose raw landmarks ``lms`` (n, 478, >=2) jump away from both neighbours of the same
    shot, in shape (RMS after the best similarity over the rigid points, over :data:`SHAPE_SPIKE`
    inter-ocular distances) or size (:data:`SCALE_SPIKE`), while those neighbours agree with each other."""
    n = len(valid)
    out = np.zeros(n, bool)
    rigid = np.flatnonzero(~mobile_points())
    for a, b in shot_runs(valid, shot):
        for k in range(a + 1, b - 1):
            p, c, q = lms[k - 1], lms[k], lms[k + 1]
            iod = max(float(L.interocular(c)), 1e-3)
            scale = np.log(np.maximum(L.interocular(np.stack([p, c, q])), 1e-3))
            if abs(scale[1] - scale[0]) > SCALE_SPIKE and abs(scale[1] - scale[2]) > SCALE_SPIKE \
                    and abs(scale[2] - scale[0]) < AGREE_SHARE * SCALE_SPIKE:
                out[k] = True
                continue
            t = SHAPE_SPIKE * iod
            if _rigid_residual(p, c, rigid) > t and _rigid_residual(c, q, rigid) > t \
                    and _rigid_residual(p, q, rigid) < AGREE_SHARE * t:
                out[k] = True
    return out
