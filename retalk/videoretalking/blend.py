"""Laplacian-pyramid blending with a mask, as VideoReTalking's ``Laplacian_Pyramid_Blending_with_mask``.

Used twice per output frame by VideoReTalking (Step 7): the GFPGAN mouth into the synthesised frame
(10 levels) and the synthesised face into the original frame (6 levels), both at 512×512.
"""
from __future__ import annotations

import cv2
import numpy as np


def _up(img: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cv2.pyrUp(img, dstsize=(like.shape[1], like.shape[0]))


def laplacian_blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray, levels: int = 6) -> np.ndarray:
    """Blend ``a`` (where ``mask`` = 1) with ``b`` (where it is 0) band by band.

    ``a``, ``b``: (H, W, 3) images (uint8 as the reference passes them: their Gaussian pyramids are built by
    ``cv2.pyrDown`` **in the input dtype**, so each uint8 level is rounded before it is stored as float32;
    level 0 stays the input itself); ``mask``: (H, W) float in [0, 1], its pyramid in float32. ``levels``: the
    number of pyramid levels used (``levels`` downsamplings are computed, the coarsest used is ``levels − 1``).
    Laplacian level i = G_i − pyrUp(G_{i+1}); blended ``la·m + lb·(1 − m)``; rebuilt by pyrUp and add.
    Returns the (H, W, 3) float32 result, **not** clipped (callers clip to [0, 255]).
    """
    if levels < 1:
        raise ValueError("laplacian_blend needs at least one level")
    ga, gb, gm = [a.copy()], [b.copy()], [np.asarray(mask).copy()]
    xa, xb, xm = a.copy(), b.copy(), np.asarray(mask).copy()
    for _ in range(levels):
        xa, xb, xm = cv2.pyrDown(xa), cv2.pyrDown(xb), cv2.pyrDown(xm)
        ga.append(np.float32(xa))
        gb.append(np.float32(xb))
        gm.append(np.float32(xm))
    top = levels - 1
    bands = []
    # Coarsest first: the Gaussian level itself, then the Laplacian bands up to full size.
    for i in range(top, -1, -1):
        if i == top:
            la, lb = ga[top], gb[top]
        else:
            la = np.subtract(ga[i], _up(ga[i + 1], ga[i]))
            lb = np.subtract(gb[i], _up(gb[i + 1], gb[i]))
        m = gm[i][:, :, None]
        bands.append(la * m + lb * (1.0 - m))
    out = bands[0]
    for band in bands[1:]:
        out = cv2.add(_up(out, band), band)
    return out
