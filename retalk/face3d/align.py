"""Deep3DFaceRecon's alignment: 5 landmarks → POS scale/translation → a 224×224 crop for the 3DMM network.

This is the preprocessing VideoReTalking (Step 2) and SadTalker (``src/utils/preprocess.py``) run before the
face3d ResNet-50. Landmark convention of this module (as the reference's): 68 or 5 points in pixels with the
**y axis pointing up**, ``y' = H − 1 − y`` (:func:`flip_y` converts). The standard 3-D landmarks come from
``similarity_Lm3D_all.mat`` (68×3, reduced to 5 points), which retalk does not ship.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retalk.errors import CheckpointError

log = logging.getLogger(__name__)

LM3D_FILE = "similarity_Lm3D_all.mat"
LM3D_SOURCE = ("VideoReTalking's release (BFM.zip, unpacked to <checkpoints>/BFM/) or SadTalker's repository "
               "(src/config/similarity_Lm3D_all.mat)")
TARGET_SIZE = 224
RESCALE = 102.0


def _search_folders(checkpoints: str | os.PathLike[str] | None) -> list[Path]:
    from retalk.checkpoints import default_checkpoints_dir

    root = default_checkpoints_dir(checkpoints)
    return [root / "BFM", root]


def find_support_file(name: str, checkpoints: str | os.PathLike[str] | None, source: str) -> Path:
    """``<checkpoints>/BFM/<name>`` or ``<checkpoints>/<name>``; missing → a one-line :class:`CheckpointError`."""
    folders = _search_folders(checkpoints)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{name} not found (looked in {', '.join(str(f) for f in folders)}); "
                          f"it comes from {source}")


def reduce_to_5(lm: np.ndarray) -> np.ndarray:
    """5 points from 68 (``extract_5p``): [left-eye centre, right-eye centre, nose tip, mouth left, mouth right].

    Eye centres are the means of the corner pairs (36, 39) and (42, 45). ``lm``: (68, 2|3) → (5, 2|3) float64.
    """
    lm = np.asarray(lm, np.float64)
    return np.stack([lm[[36, 39]].mean(0), lm[[42, 45]].mean(0), lm[30], lm[48], lm[54]])


def load_lm3d(checkpoints: str | os.PathLike[str] | None = None) -> np.ndarray:
    """The 5 standard 3-D landmarks (5, 3) float64 from ``similarity_Lm3D_all.mat['lm']``.

    Looked for in ``<checkpoints>/BFM/`` then ``<checkpoints>/`` (``checkpoints``: explicit folder, else
    ``$RETALK_CHECKPOINTS``, else ``./checkpoints``).
    """
    from scipy.io import loadmat

    path = find_support_file(LM3D_FILE, checkpoints, LM3D_SOURCE)
    try:
        lm = np.asarray(loadmat(str(path))["lm"], np.float64)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's
        raise CheckpointError(f"{path}: not a readable {LM3D_FILE} ({type(exc).__name__}: {exc})") from None
    if lm.shape != (68, 3):
        raise CheckpointError(f"{path}: 'lm' has shape {lm.shape}, expected (68, 3)")
    return reduce_to_5(lm)


def flip_y(lm: np.ndarray, height: int) -> np.ndarray:
    """Pixel landmarks (y down) ↔ the reference's y-up convention: ``y' = height − 1 − y`` (float64 copy)."""
    out = np.array(lm, np.float64)
    out[..., 1] = height - 1 - out[..., 1]
    return out


def standard_points(lm3d: np.ndarray, width: int, height: int) -> np.ndarray:
    """The no-landmark fallback: the 5 standard points placed as ``((xy + 1) / 2) · (W, H)`` (5, 2), not flipped."""
    xy = (np.asarray(lm3d, np.float64)[:, :2] + 1.0) / 2.0
    return np.concatenate([xy[:, :1] * width, xy[:, 1:2] * height], 1)


def pos(xp: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Weak-perspective fit of image points to 3-D points (``POS``): translation (2,) and scale.

    ``xp``: (2, n) image points; ``x``: (3, n) model points. Solves the 8-unknown linear least squares
    ``xp ≈ [R1·X + tx, R2·X + ty]``; scale = (|R1| + |R2|) / 2.
    """
    n = xp.shape[1]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = x.T
    a[0::2, 3] = 1.0
    a[1::2, 4:7] = x.T
    a[1::2, 7] = 1.0
    b = xp.T.reshape(2 * n)
    k = np.linalg.lstsq(a, b, rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2.0
    return np.array([k[3], k[7]]), float(s)


@dataclass(frozen=True)
class Aligned:
    """One aligned face: ``image`` (224, 224, 3) uint8 and ``trans_params`` (5,) float32 = [W0, H0, s, tx, ty]."""

    image: np.ndarray
    trans_params: np.ndarray


def align_img(image: np.ndarray, lm: np.ndarray, lm3d: np.ndarray, target_size: int = TARGET_SIZE,
              rescale_factor: float = RESCALE) -> Aligned:
    """Deep3DFaceRecon's ``align_img``: rescale the image so the face matches the standard landmarks, crop 224.

    ``image``: (H0, W0, 3) uint8 RGB; ``lm``: (68, 2) or (5, 2) y-up pixels (:func:`flip_y`); ``lm3d``: (5, 3)
    from :func:`load_lm3d`. The image is resized by ``s = rescale_factor / POS scale`` to ``(int(W0·s),
    int(H0·s))`` with PIL bicubic and cropped at ``left = int(w/2 − 112 + (tx − W0/2)·s)``, ``up = int(h/2 −
    112 + (H0/2 − ty)·s)`` (outside the image: black).
    """
    from PIL import Image

    h0, w0 = image.shape[:2]
    lm = np.asarray(lm, np.float64)
    lm5 = lm if lm.shape[0] == 5 else reduce_to_5(lm)
    t, s = pos(lm5[:, :2].T, np.asarray(lm3d, np.float64).T)
    s = rescale_factor / s
    w, h = int(np.int32(w0 * s)), int(np.int32(h0 * s))
    left = int(np.int32(w / 2 - target_size / 2 + float((t[0] - w0 / 2) * s)))
    up = int(np.int32(h / 2 - target_size / 2 + float((h0 / 2 - t[1]) * s)))
    img = Image.fromarray(np.ascontiguousarray(image)).resize((w, h), resample=Image.Resampling.BICUBIC)
    img = img.crop((left, up, left + target_size, up + target_size))
    params = np.array([w0, h0, s, t[0], t[1]], np.float32)
    return Aligned(image=np.asarray(img), trans_params=params)
