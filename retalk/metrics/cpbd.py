"""CPBD: cumulative probability of blur detection (no-reference sharpness).

Narvekar & Karam, "A no-reference perceptual image sharpness metric based on a
cumulative probability of blur detection", QoMEX 2009.  The recipe, as used by
the talking-head literature through the Python ``cpbd`` package:

1. The picture is taken as 8-bit grey levels (0..255, float).
2. Canny edges (scikit-image defaults: sigma 1) decide which 64×64 blocks are
   *edge blocks*: more than 0.2 % (threshold 0.002) of the block's pixels are
   Canny edges.  Only whole blocks are used; a ragged right/bottom margin is
   ignored.
3. A Sobel detector for vertical edges (horizontal gradient, Octave ``edge``
   style: squared response, threshold ``2·sqrt(mean)``, one-pixel thinning)
   gives the edge pixels whose width is measured.
4. The width of an edge pixel (Marziliano et al.) is the distance between the
   intensity extrema on either side of it along its row, counted in pixels, for
   edges whose gradient direction rounds to 0° or 180° (other directions are
   skipped).  Each side counts at most 100 pixels.
5. Per edge block the just-noticeable width is 5 px when the block contrast
   ``int(max − min)`` is at most 50 grey levels, else 3 px; the probability of
   blur detection of an edge of width ``w`` is ``1 − exp(−(w / w_JNB)^3.6)``.
6. CPBD is the fraction of all measured edges whose probability, rounded to
   whole percent, is at most 63 %.  Higher means sharper; range 0..1.

Two details of that implementation are kept so numbers compare one to one:
a pixel whose horizontal gradient is exactly 0 gets direction 0°, and a picture
in which every gradient direction is 0° yields no widths (CPBD 0).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

BLOCK = 64
"""Block side in pixels."""
EDGE_BLOCK_FRACTION = 0.002
"""A block is an edge block when more than this fraction of its pixels are Canny edges."""
BETA = 3.6
"""Slope of the psychometric function."""
JNB_LOW_CONTRAST = 5.0
"""Just-noticeable blur width (pixels) for blocks of contrast <= 50 grey levels."""
JNB_HIGH_CONTRAST = 3.0
"""Just-noticeable blur width (pixels) for blocks of contrast > 50 grey levels."""
CONTRAST_SPLIT = 50
"""Block contrast (grey levels, truncated to an integer) at or below which the low-contrast width applies."""
P_BLUR_MAX_PERCENT = 63
"""Edges whose blur-detection probability rounds to at most this percentage count as sharp."""
MAX_SIDE = 100
"""Most pixels counted on one side of an edge."""

__all__ = ["cpbd", "cpbd_face", "edge_widths", "sobel_vertical_edges", "to_gray255"]


def to_gray255(frame: np.ndarray, data_range: float | None = None) -> np.ndarray:
    """Return ``frame`` as float64 grey levels on the 0..255 scale.

    ``frame`` is (H, W) grey or (H, W, 3) **RGB** (the project's frame
    convention).  ``data_range`` is the value of white in the input: by default
    255 for integer arrays and 1.0 for float arrays.  Colour is reduced with the
    ITU-R BT.601 weights (0.299, 0.587, 0.114); 8-bit colour input is reduced
    to 8-bit grey (rounded), as a decoder's grey mode does.
    """
    img = np.asarray(frame)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        if img.shape[2] != 3:
            raise ValueError(f"expected (H, W) or (H, W, 3) frame, got shape {img.shape}")
        if img.dtype == np.uint8 and data_range in (None, 255, 255.0):
            import cv2

            return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float64)
        weights = np.array([0.299, 0.587, 0.114])
        img = img.astype(np.float64) @ weights
    elif img.ndim != 2:
        raise ValueError(f"expected (H, W) or (H, W, 3) frame, got shape {img.shape}")
    if data_range is None:
        data_range = 255.0 if np.issubdtype(np.asarray(frame).dtype, np.integer) else 1.0
    out = img.astype(np.float64)
    if data_range != 255.0:
        out = out * (255.0 / float(data_range))
    return out


def sobel_vertical_edges(gray: np.ndarray) -> np.ndarray:
    """Thinned Sobel edge map for vertical edges (horizontal gradient), bool (H, W).

    Octave ``edge(…, 'sobel', 'vertical')`` style: the kernel is normalised by
    the sum of its absolute weights (8), the squared response is kept where it
    exceeds ``2·sqrt(mean(response²))``, and a pixel is an edge when its
    response is a strict local maximum horizontally or vertically (zero outside
    the picture).
    """
    from scipy.ndimage import convolve

    kernel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 8.0
    strength = np.square(convolve(gray, kernel))
    strength[strength <= 2.0 * np.sqrt(np.mean(strength))] = 0.0
    pad = np.pad(strength, 1, mode="constant")
    centre = pad[1:-1, 1:-1]
    horiz = (centre > pad[1:-1, :-2]) & (centre > pad[1:-1, 2:])
    vert = (centre > pad[:-2, 1:-1]) & (centre > pad[2:, 1:-1])
    return horiz | vert


def _runs_ending_at(cond: np.ndarray) -> np.ndarray:
    """For each position, the number of consecutive True values ending there (leftwards)."""
    out = np.zeros(cond.shape, dtype=np.int64)
    run = np.zeros(cond.shape[0], dtype=np.int64)
    for c in range(cond.shape[1]):
        run = np.where(cond[:, c], run + 1, 0)
        out[:, c] = run
    return out


def _runs_starting_at(cond: np.ndarray) -> np.ndarray:
    """For each position, the number of consecutive True values starting there (rightwards)."""
    return _runs_ending_at(cond[:, ::-1])[:, ::-1]


def edge_widths(gray: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Marziliano edge widths (pixels) at ``edges``; 0 where no width is measured.

    ``gray`` is the float picture, ``edges`` a bool map of edge pixels.  Only
    interior pixels whose gradient direction (``np.gradient``) rounds to 0° or
    ±180° get a width: the number of pixels to the intensity extremum on the
    left plus the right, each side counting the edge's neighbour and at most
    :data:`MAX_SIDE` further steps of strictly monotone intensity.
    """
    h, w = gray.shape
    widths = np.zeros((h, w), dtype=np.float64)
    if h < 3 or w < 3:
        return widths
    grad_y, grad_x = np.gradient(gray)
    angle = np.where(grad_x != 0, np.arctan2(grad_y, grad_x) * (180.0 / np.pi), 0.0)
    if not np.any(angle):
        return widths
    quant = 45.0 * np.round(angle / 45.0)

    step = np.diff(gray, axis=1)  # step[:, c] = gray[:, c + 1] - gray[:, c]
    rise_left = _runs_ending_at(step > 0)
    rise_right = _runs_starting_at(step > 0)
    fall_left = _runs_ending_at(step < 0)
    fall_right = _runs_starting_at(step < 0)

    rows, cols = np.nonzero(edges[1:-1, 1:-1])
    rows += 1
    cols += 1
    q = quant[rows, cols]
    rising = q == 0
    falling = (q == 180) | (q == -180)

    left_idx = cols - 2  # first step looked at on the left: gray[c-2] -> gray[c-1]
    right_idx = cols + 1  # first step on the right: gray[c+1] -> gray[c+2]
    has_left = left_idx >= 0
    has_right = right_idx <= w - 2
    li = np.clip(left_idx, 0, w - 2)
    ri = np.clip(right_idx, 0, w - 2)

    n_left = np.where(rising, rise_left[rows, li], fall_left[rows, li]) * has_left
    n_right = np.where(rising, rise_right[rows, ri], fall_right[rows, ri]) * has_right
    width = np.minimum(n_left, MAX_SIDE) + 1 + np.minimum(n_right, MAX_SIDE) + 1
    keep = rising | falling
    widths[rows[keep], cols[keep]] = width[keep]
    return widths


def _cpbd_gray(gray: np.ndarray) -> float:
    """CPBD of a float64 0..255 grey picture."""
    from skimage.feature import canny

    h, w = gray.shape
    nby, nbx = h // BLOCK, w // BLOCK
    if nby == 0 or nbx == 0:
        raise ValueError(f"CPBD needs at least one {BLOCK}x{BLOCK} block; picture is {h}x{w}")
    canny_map = canny(gray)
    widths = edge_widths(gray, sobel_vertical_edges(gray))

    hc, wc = nby * BLOCK, nbx * BLOCK

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:hc, :wc].reshape(nby, BLOCK, nbx, BLOCK).swapaxes(1, 2).reshape(nby * nbx, BLOCK * BLOCK)

    canny_b = blocks(canny_map)
    width_b = blocks(widths)
    gray_b = blocks(gray)
    is_edge_block = np.count_nonzero(canny_b, axis=1) > BLOCK * BLOCK * EDGE_BLOCK_FRACTION
    contrast = (gray_b.max(axis=1) - gray_b.min(axis=1)).astype(np.int64)
    jnb = np.where(contrast <= CONTRAST_SPLIT, JNB_LOW_CONTRAST, JNB_HIGH_CONTRAST)

    sharp = 0
    total = 0
    for b in np.nonzero(is_edge_block)[0]:
        wb = width_b[b]
        wb = wb[wb != 0]
        if wb.size == 0:
            continue
        p = 1.0 - np.exp(-np.abs(wb / jnb[b]) ** BETA)
        sharp += int(np.count_nonzero(np.round(p * 100.0) <= P_BLUR_MAX_PERCENT))
        total += int(wb.size)
    if total == 0:
        log.debug("CPBD: no measurable edges in a %dx%d picture", h, w)
        return 0.0
    return sharp / total


def cpbd(frame: np.ndarray, data_range: float | None = None) -> float:
    """CPBD sharpness of one picture, in 0..1 (higher is sharper).

    ``frame``: (H, W) grey or (H, W, 3) RGB; uint8 in 0..255 or float in 0..1
    (see :func:`to_gray255` for ``data_range``).  Needs at least one whole
    64×64 block.  A picture with no measurable edges scores 0.
    """
    return _cpbd_gray(to_gray255(frame, data_range))


def cpbd_face(frame: np.ndarray, box: tuple[float, float, float, float] | np.ndarray,
              data_range: float | None = None) -> float:
    """CPBD of the face region ``box`` = (x1, y1, x2, y2) in pixels of ``frame``.

    The box is rounded outward to whole pixels and clipped to the frame; the
    region must hold at least one 64×64 block (upscale small faces first if
    needed).  Returns a value in 0..1, higher is sharper.
    """
    img = np.asarray(frame)
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    c0 = max(0, int(np.floor(x1)))
    r0 = max(0, int(np.floor(y1)))
    c1 = min(w, int(np.ceil(x2)))
    r1 = min(h, int(np.ceil(y2)))
    if c1 <= c0 or r1 <= r0:
        raise ValueError(f"face box {tuple(box)} lies outside the {w}x{h} frame")
    return cpbd(img[r0:r1, c0:c1], data_range)
