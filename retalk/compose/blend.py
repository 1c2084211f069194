"""Blending a patch into a frame: feathered masks, Laplacian pyramids, colour matching.

Images are float32 or uint8 arrays (h, w, 3); masks float32 in [0, 1], (h, w).
"""
from __future__ import annotations

import cv2
import numpy as np


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Soften a binary mask with a Gaussian of ``sigma`` pixels (result in [0, 1])."""
    m = mask.astype(np.float32)
    if sigma <= 0:
        return m
    k = int(2 * round(3 * sigma) + 1)
    return np.clip(cv2.GaussianBlur(m, (k, k), sigma), 0.0, 1.0)


def polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """A uint8 mask (255 inside) of ``polygon`` (n, 2) pixels, sub-pixel accurate."""
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(polygon) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    return m


def _levels(shape: tuple[int, int], want: int) -> int:
    n = 0
    h, w = shape
    while n < want and min(h, w) >= 16:
        h, w = (h + 1) // 2, (w + 1) // 2
        n += 1
    return n


def laplacian_blend(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray, levels: int = 4) -> np.ndarray:
    """Multi-band blend (Burt & Adelson 1983) of ``fg`` over ``bg`` with ``mask`` (1 = fg).

    Low frequencies mix over wide transitions and fine detail over narrow ones,
    which hides seams without ghosting. Returns float32.
    """
    fg = fg.astype(np.float32)
    bg = bg.astype(np.float32)
    m = mask.astype(np.float32)
    n = _levels(m.shape, levels)
    gf, gb, gm = [fg], [bg], [m]
    for _ in range(n):
        gf.append(cv2.pyrDown(gf[-1]))
        gb.append(cv2.pyrDown(gb[-1]))
        gm.append(cv2.pyrDown(gm[-1]))
    out = gf[n] * gm[n][..., None] + gb[n] * (1 - gm[n][..., None])
    for i in range(n - 1, -1, -1):
        size = (gf[i].shape[1], gf[i].shape[0])
        lf = gf[i] - cv2.pyrUp(gf[i + 1], dstsize=size)
        lb = gb[i] - cv2.pyrUp(gb[i + 1], dstsize=size)
        out = cv2.pyrUp(out, dstsize=size) + lf * gm[i][..., None] + lb * (1 - gm[i][..., None])
    return out


def match_mean_colour(src: np.ndarray, ref: np.ndarray, region: np.ndarray, max_shift: float = 40.0) -> np.ndarray:
    """Shift ``src``'s mean colour over ``region`` (bool) to ``ref``'s; returns float32.

    Corrects slow lighting changes between the frame a mouth came from and the frame it goes into.
    """
    src = src.astype(np.float32)
    if region.sum() < 16:
        return src
    d = ref[region].astype(np.float32).mean(0) - src[region].mean(0)
    return src + np.clip(d, -max_shift, max_shift)


def paste(frame: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    """Write ``patch`` (float or uint8) into ``frame`` at (x0, y0), in place, rounding and clipping to uint8."""
    h, w = patch.shape[:2]
    frame[y0:y0 + h, x0:x0 + w] = np.clip(patch + 0.5 if patch.dtype != np.uint8 else patch, 0, 255).astype(np.uint8)
