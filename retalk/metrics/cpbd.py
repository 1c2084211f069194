"""CPBD: cumulative probability of blur detection (no-reference sharpness).

Narvekar & Karam, "A no-reference perceptual image sharpness metric based on a
cumulative probability of blur detection", QoMEX 2009.  The recipe, as used by
the talking-head literature through the Python ``cpbd`` package:

1. The picture is taken as 8-bit grey levels (0..255, float).
2. Canny edges (scikit-image defaults: sigma 1; computed by
   :mod:`retalk.metrics.canny`, the same edge map with less work) decide which
   64×64 blocks are *edge blocks*: more than 0.2 % (threshold 0.002) of the
   block's pixels are Canny edges.  Only whole blocks are used; a ragged right/bottom margin is
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

__all__ = ["cpbd", "cpbd_face", "cpbd_gray", "edge_widths", "face_window", "gray8", "sobel_vertical_edges",
           "to_gray255"]


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


def gray8(frame: np.ndarray, data_range: float | None = None) -> np.ndarray:
    """``frame`` as grey levels 0..255: uint8 (H, W) for 8-bit input on its own scale (the very levels
    :func:`to_gray255` gives, before its float conversion), else :func:`to_gray255`'s float64."""
    img = np.asarray(frame)
    if img.dtype != np.uint8 or data_range not in (None, 255, 255.0):
        return to_gray255(frame, data_range)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        import cv2

        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    if img.ndim != 2:
        raise ValueError(f"expected (H, W) or (H, W, 3) frame, got shape {img.shape}")
    return img


_SOBEL_X = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 8.0
"""Octave's vertical-edge Sobel kernel, normalised by the sum of its absolute weights (convolution order)."""


def sobel_vertical_edges(gray: np.ndarray, integral: bool | None = None) -> np.ndarray:
    """Thinned Sobel edge map for vertical edges (horizontal gradient), bool (H, W).

    Octave ``edge(…, 'sobel', 'vertical')`` style: the kernel is normalised by
    the sum of its absolute weights (8), the squared response is kept where it
    exceeds ``2·sqrt(mean(response²))``, and a pixel is an edge when its
    response is a strict local maximum horizontally or vertically (zero outside
    the picture).  ``integral``: whether ``gray`` holds whole numbers (checked
    when None); then OpenCV computes the response, which is exact (every
    partial sum is a multiple of 1/8), so equal to scipy's to the bit.  A uint8
    ``gray`` takes :func:`_sobel_strength_8bit` (the same edges, in integers).
    """
    if gray.dtype == np.uint8:
        strength = _sobel_strength_8bit(gray)
    else:
        if integral is None:
            integral = bool(np.array_equal(gray, np.rint(gray)))
        if integral:
            import cv2

            # filter2D correlates: flip the kernel; scipy's "reflect" is OpenCV's BORDER_REFLECT
            response = cv2.filter2D(np.ascontiguousarray(gray, dtype=np.float64), cv2.CV_64F,
                                    _SOBEL_X[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT)
        else:
            from scipy.ndimage import convolve

            response = convolve(gray, _SOBEL_X)
        strength = np.square(response)
        strength[strength <= 2.0 * np.sqrt(np.mean(strength))] = 0.0
    pad = np.pad(strength, 1, mode="constant")
    centre = pad[1:-1, 1:-1]
    horiz = (centre > pad[1:-1, :-2]) & (centre > pad[1:-1, 2:])
    vert = (centre > pad[:-2, 1:-1]) & (centre > pad[2:, 1:-1])
    return horiz | vert


def _sobel_strength_8bit(gray: np.ndarray) -> np.ndarray:
    """The thresholded squared Sobel response of a uint8 picture times 64, int32 (H, W) (0 below the threshold).

    The float response is ``S/8`` with ``S`` OpenCV's integer Sobel sum (|S| ≤ 1020), so its square
    is ``S²/64`` exactly, and every partial sum of those squares is exact in float64: the mean is
    ``(ΣS² / 64) / N`` in any summation order, and ``S²/64 ≤ t`` is ``S² ≤ 64·t``.  Scaling by 64
    keeps the order of the strengths, so the thinning that follows picks the same pixels.
    """
    import cv2

    s = cv2.Sobel(np.ascontiguousarray(gray), cv2.CV_16S, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT).astype(np.int32)
    s *= s
    mean = (float(s.sum(dtype=np.int64)) / 64.0) / s.size
    s[s <= 64.0 * (2.0 * np.sqrt(mean))] = 0
    return s


def _runs_ending_at(cond: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                    false_at: np.ndarray | None = None) -> np.ndarray:
    """For each (row, col) query, the number of consecutive True values of ``cond`` (H, W) bool ending at that
    position, leftwards: ``col`` minus the column of the last False at or before it in its row (−1 if none).

    Found with a binary search in the flat positions of the False values (``false_at``:
    ``np.flatnonzero(~cond)``, computed when None), so the cost follows the number of queries, not the picture.
    """
    w = cond.shape[1]
    if false_at is None:
        false_at = np.flatnonzero(~cond)
    q = rows.astype(np.int64) * w + cols
    k = np.searchsorted(false_at, q, side="right") - 1
    last = np.full(q.shape, -1, np.int64)  # -1: no False before q
    found = k >= 0
    last[found] = false_at[k[found]]
    return np.where(last >= rows.astype(np.int64) * w, q - last, cols + 1).astype(np.int64)


def _runs_starting_at(cond: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                      false_at: np.ndarray | None = None) -> np.ndarray:
    """For each (row, col) query, the number of consecutive True values of ``cond`` starting there, rightwards."""
    w = cond.shape[1]
    if false_at is None:
        false_at = np.flatnonzero(~cond)
    q = rows.astype(np.int64) * w + cols
    k = np.searchsorted(false_at, q, side="left")
    nxt = np.full(q.shape, cond.size, np.int64)  # cond.size: no False after q
    found = k < false_at.size
    nxt[found] = false_at[k[found]]
    return np.where(nxt < (rows.astype(np.int64) + 1) * w, nxt - q, w - cols).astype(np.int64)


def _any_angle(grad_y: np.ndarray, grad_x: np.ndarray) -> bool:
    """Whether any ``arctan2(grad_y, grad_x)`` (taken as 0 where ``grad_x`` is 0) is non-zero, cheaply.

    arctan2 is 0 exactly where ``grad_y`` is 0 and ``grad_x`` > 0, and at least 90° where
    ``grad_x`` < 0; only the remaining pixels (``grad_x`` > 0, ``grad_y`` ≠ 0) need the angle.
    """
    if np.any(grad_x < 0):
        return True
    cand = (grad_x > 0) & (grad_y != 0)
    return bool(np.any(np.arctan2(grad_y[cand], grad_x[cand])))


def _falls_somewhere(gray: np.ndarray) -> bool:
    """Whether ``np.gradient(gray, axis=1)`` is negative somewhere, for a picture of whole grey levels.

    Its differences are whole numbers (halved in the interior), so their signs are those of the
    comparisons: the interior ``g[c+1] < g[c−1]``, the first column ``g[1] < g[0]``, the last
    ``g[w−1] < g[w−2]``.
    """
    return bool(np.any(gray[:, 2:] < gray[:, :-2]) or np.any(gray[:, 1] < gray[:, 0])
                or np.any(gray[:, -1] < gray[:, -2]))


def _edge_width_points(gray: np.ndarray, edges: np.ndarray, integral: bool = False,
                       same: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and widths (pixels, float64) of the edge pixels that get a width (see :func:`edge_widths`).

    ``integral``: ``gray`` holds whole grey levels (then the whole-picture gradient is needed
    only when no horizontal gradient is negative, which a real picture always has).  ``same``:
    the same picture in another dtype (e.g. uint8) whose comparisons are quicker; ``gray`` if None.
    """
    cmp = gray if same is None else same
    h, w = gray.shape
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if h < 3 or w < 3:
        return none
    if not (integral and _falls_somewhere(cmp)):
        grad_y, grad_x = np.gradient(gray)
        if not _any_angle(grad_y, grad_x):
            return none
    rows, cols = np.nonzero(edges[1:-1, 1:-1])
    rows += 1
    cols += 1
    gx = (gray[rows, cols + 1] - gray[rows, cols - 1]) / 2.0  # np.gradient's interior differences, at the edges
    gy = (gray[rows + 1, cols] - gray[rows - 1, cols]) / 2.0
    angle = np.where(gx != 0, np.arctan2(gy, gx) * (180.0 / np.pi), 0.0)
    q = 45.0 * np.round(angle / 45.0)
    rising = q == 0
    keep = rising | (q == 180) | (q == -180)
    rows, cols, rising = rows[keep], cols[keep], rising[keep]

    # step c is gray[c] -> gray[c + 1]; strict rises and falls, compared directly (the sign of the difference)
    up = cmp[:, 1:] > cmp[:, :-1]
    down = cmp[:, 1:] < cmp[:, :-1]
    n_left = np.zeros(rows.size, np.int64)
    n_right = np.zeros(rows.size, np.int64)
    for sel, cond in ((rising, up), (~rising, down)):
        r, c = rows[sel], cols[sel]
        false_at = np.flatnonzero(~cond)
        has_left = c >= 2  # first step looked at on the left: gray[c-2] -> gray[c-1]
        has_right = c + 1 <= w - 2  # first step on the right: gray[c+1] -> gray[c+2]
        n_left[sel] = _runs_ending_at(cond, r, np.clip(c - 2, 0, w - 2), false_at) * has_left
        n_right[sel] = _runs_starting_at(cond, r, np.clip(c + 1, 0, w - 2), false_at) * has_right
    width = (np.minimum(n_left, MAX_SIDE) + 1 + np.minimum(n_right, MAX_SIDE) + 1).astype(np.float64)
    return rows, cols, width


def edge_widths(gray: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Marziliano edge widths (pixels) at ``edges``; 0 where no width is measured.

    ``gray`` is the float picture, ``edges`` a bool map of edge pixels.  Only
    interior pixels whose gradient direction (``np.gradient``) rounds to 0° or
    ±180° get a width: the number of pixels to the intensity extremum on the
    left plus the right, each side counting the edge's neighbour and at most
    :data:`MAX_SIDE` further steps of strictly monotone intensity.
    """
    widths = np.zeros(gray.shape, dtype=np.float64)
    rows, cols, width = _edge_width_points(gray, edges)
    widths[rows, cols] = width
    return widths


def cpbd_gray(gray: np.ndarray, integral: bool | None = None) -> float:
    """CPBD of a grey picture (H, W) on the 0..255 scale, in 0..1: float64 (e.g. from :func:`to_gray255`)
    or uint8 (whole grey levels: the quicker route, same value).

    ``integral``: whether a float ``gray`` holds whole grey levels (as :func:`to_gray255` gives for
    8-bit input; checked when None), which lets the Sobel step run in OpenCV.
    """
    from retalk.metrics.canny import canny_edges

    h, w = gray.shape
    nby, nbx = h // BLOCK, w // BLOCK
    if nby == 0 or nbx == 0:
        raise ValueError(f"CPBD needs at least one {BLOCK}x{BLOCK} block; picture is {h}x{w}")
    hc, wc = nby * BLOCK, nbx * BLOCK
    if gray.dtype == np.uint8:
        integral = True
    elif integral is None:
        integral = bool(np.array_equal(gray, np.rint(gray)))
    gray64 = gray.astype(np.float64)

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:hc, :wc].reshape(nby, BLOCK, nbx, BLOCK)

    is_edge_block = (blocks(canny_edges(gray64)).sum(axis=(1, 3), dtype=np.int32).ravel()
                     > BLOCK * BLOCK * EDGE_BLOCK_FRACTION)
    contrast = (blocks(gray).max(axis=(1, 3)) - blocks(gray).min(axis=(1, 3))).astype(np.int64).ravel()
    jnb = np.where(contrast <= CONTRAST_SPLIT, JNB_LOW_CONTRAST, JNB_HIGH_CONTRAST)

    rows, cols, width = _edge_width_points(gray64, sobel_vertical_edges(gray, integral), integral, gray)
    inside = (rows < hc) & (cols < wc)
    block = (rows[inside] // BLOCK) * nbx + cols[inside] // BLOCK
    counted = is_edge_block[block]
    wb, jb = width[inside][counted], jnb[block[counted]]
    total = int(wb.size)
    if total == 0:
        log.debug("CPBD: no measurable edges in a %dx%d picture", h, w)
        return 0.0
    p = 1.0 - np.exp(-np.abs(wb / jb) ** BETA)
    return int(np.count_nonzero(np.round(p * 100.0) <= P_BLUR_MAX_PERCENT)) / total


def face_window(shape: tuple[int, ...], box: tuple[float, float, float, float] | np.ndarray) -> tuple[slice, slice]:
    """Row and column slices of ``box`` = (x1, y1, x2, y2) pixels in a picture of ``shape``: rounded outward, clipped.

    Raises ``ValueError`` when nothing of the box lies inside the picture.
    """
    h, w = int(shape[0]), int(shape[1])
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    c0 = max(0, int(np.floor(x1)))
    r0 = max(0, int(np.floor(y1)))
    c1 = min(w, int(np.ceil(x2)))
    r1 = min(h, int(np.ceil(y2)))
    if c1 <= c0 or r1 <= r0:
        raise ValueError(f"face box {tuple(np.asarray(box).reshape(4).tolist())} lies outside the {w}x{h} frame")
    return slice(r0, r1), slice(c0, c1)


def _integral_gray(frame: np.ndarray, data_range: float | None) -> bool:
    """Whether :func:`to_gray255` of ``frame`` holds whole grey levels (8-bit input on its own scale)."""
    return np.asarray(frame).dtype == np.uint8 and data_range in (None, 255, 255.0)


def cpbd(frame: np.ndarray, data_range: float | None = None) -> float:
    """CPBD sharpness of one picture, in 0..1 (higher is sharper).

    ``frame``: (H, W) grey or (H, W, 3) RGB; uint8 in 0..255 or float in 0..1
    (see :func:`to_gray255` for ``data_range``).  Needs at least one whole
    64×64 block.  A picture with no measurable edges scores 0.
    """
    return cpbd_gray(gray8(frame, data_range), _integral_gray(frame, data_range))


def cpbd_face(frame: np.ndarray, box: tuple[float, float, float, float] | np.ndarray,
              data_range: float | None = None) -> float:
    """CPBD of the face region ``box`` = (x1, y1, x2, y2) in pixels of ``frame``.

    The box is rounded outward to whole pixels and clipped to the frame; the
    region must hold at least one 64×64 block (upscale small faces first if
    needed).  Returns a value in 0..1, higher is sharper.
    """
    img = np.asarray(frame)
    rows, cols = face_window(img.shape, box)
    return cpbd(img[rows, cols], data_range)
