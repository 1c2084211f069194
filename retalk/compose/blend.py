"""Blending a patch into a frame: feathered masks, Laplacian pyramids, colour matching.

Images are float32 or uint8 arrays (h, w, 3); masks float32 in [0, 1], (h, w).
"""
from __future__ import annotations

import cv2
import numpy as np


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Soften a binary mask with a Gaussian of ``sigma`` pixels (result in [0, 1]).

    A wide Gaussian (``sigma`` ≥ 6) is applied on a copy shrunk by a whole factor of
    about ``sigma``/3 and enlarged again: within 0.01 of the full-size blur for
    ``sigma`` up to 12 px (a large face's lower-face mask) and 3–5 times faster.
    """
    m = mask.astype(np.float32)
    if sigma <= 0:
        return m
    f = int(sigma // 3) if sigma >= 6 else 1
    if f == 1:
        k = int(2 * round(3 * sigma) + 1)
        return np.clip(cv2.GaussianBlur(m, (k, k), sigma), 0.0, 1.0)
    # mirror a margin of 3 sigma first (as the full-size blur's border does), rounded up to whole cells
    h, w = m.shape[:2]
    pad = -(-int(np.ceil(3 * sigma)) // f) * f
    hp, wp = -(-(h + 2 * pad) // f) * f, -(-(w + 2 * pad) // f) * f
    big = cv2.copyMakeBorder(m, pad, hp - h - pad, pad, wp - w - pad, cv2.BORDER_REFLECT_101)
    small = cv2.resize(big, (wp // f, hp // f), interpolation=cv2.INTER_AREA)  # a whole factor: box average
    s = sigma / f
    k = int(2 * round(3 * s) + 1)
    small = cv2.GaussianBlur(small, (k, k), s)
    out = cv2.resize(small, (wp, hp), interpolation=cv2.INTER_LINEAR)[pad:pad + h, pad:pad + w]
    return np.clip(out, 0.0, 1.0)


def padded_box(points: np.ndarray, margin: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the pixel box around ``points`` (n, 2) (x, y) grown by ``margin`` pixels on each
    side and clipped to an image of ``shape`` (h, w); ``x1``/``y1`` are exclusive. May be empty."""
    h, w = shape
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + margin + 1, (w, h))
    return int(x0), int(y0), int(x1), int(y1)


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

    The blend is linear in the images, so it is computed as ``bg`` plus the
    blended pyramid of the difference ``fg - bg``: one image pyramid instead of
    two, and ``bg`` comes back exactly wherever the mask is 0 at every level.
    """
    bg = np.asarray(bg, np.float32)
    diff = np.asarray(fg, np.float32) - bg
    m = np.asarray(mask, np.float32)
    n = _levels(m.shape, levels)
    gd, gm = [diff], [m]
    for _ in range(n):
        gd.append(cv2.pyrDown(gd[-1]))
        gm.append(cv2.pyrDown(gm[-1]))
    acc = gd[n] * gm[n][..., None]
    for i in range(n - 1, -1, -1):
        size = (gd[i].shape[1], gd[i].shape[0])
        detail = gd[i] - cv2.pyrUp(gd[i + 1], dstsize=size)
        acc = cv2.pyrUp(acc, dstsize=size) + detail * gm[i][..., None]
    return bg + acc


def match_mean_colour(src: np.ndarray, ref: np.ndarray, region: np.ndarray, max_shift: float = 40.0) -> np.ndarray:
    """Shift ``src``'s mean colour over ``region`` (bool) to ``ref``'s; returns float32.

    Corrects slow lighting changes between the frame a mouth came from and the frame it goes into.
    """
    src = src.astype(np.float32)
    mask = region.astype(np.uint8)
    if cv2.countNonZero(mask) < 16:
        return src
    channels = src.shape[2]
    d = np.subtract(cv2.mean(ref, mask)[:channels], cv2.mean(src, mask)[:channels])
    return src + np.clip(d, -max_shift, max_shift).astype(np.float32)


def paste(frame: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    """Write ``patch`` (float or uint8) into ``frame`` at (x0, y0), in place, rounding and clipping to uint8."""
    h, w = patch.shape[:2]
    frame[y0:y0 + h, x0:x0 + w] = np.clip(patch + 0.5 if patch.dtype != np.uint8 else patch, 0, 255).astype(np.uint8)
