"""Full-reference picture metrics: PSNR, SSIM and PSNR outside the face.

All functions take two pictures of the same shape, (H, W) or (H, W, C).
``data_range`` is the distance from black to white in the inputs' units: by
default 255 for integer arrays and 1.0 for float arrays.  PSNR is in dB
(``inf`` for identical inputs); SSIM is unitless, at most 1.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["box_mask", "psnr", "psnr_and_outside", "psnr_outside", "ssim"]


def _default_range(a: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        return float(data_range)
    return 255.0 if np.issubdtype(a.dtype, np.integer) else 1.0


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"pictures differ in shape: {a.shape} vs {b.shape}")
    return a, b


def _psnr_from_mse(mse: float, data_range: float) -> float:
    if mse <= 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range * data_range / mse))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio between ``a`` and ``b`` in dB over all pixels and channels."""
    a, b = _pair(a, b)
    return _psnr_from_mse(float(np.mean(_squared_error(a, b), dtype=np.float64)), _default_range(a, data_range))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None, **kwargs: Any) -> float:
    """Structural similarity (scikit-image ``structural_similarity``), unitless, ≤ 1.

    Colour pictures (H, W, C) are compared per channel and averaged.  Extra
    keyword arguments go to scikit-image (e.g. ``gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False`` for Wang et al.'s original
    setting); the default is scikit-image's (7×7 uniform window).
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    rng = _default_range(a, data_range)
    if not kwargs and a.ndim in (2, 3) and min(a.shape[:2]) >= SSIM_WIN:
        return _ssim_box(a, b, rng)
    channel_axis = -1 if a.ndim == 3 else None
    return float(structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=rng,
                                       channel_axis=channel_axis, **kwargs))


SSIM_WIN = 7
"""Side of scikit-image's default uniform SSIM window (pixels)."""


SSIM_STRIP = 16
"""Rows of SSIM windows turned into values at a time (their int32 and float64 work arrays stay in the CPU cache)."""


def _ssim_box(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """scikit-image's default SSIM (7×7 uniform window, sample covariance, K1 0.01, K2 0.03), faster.

    Only windows wholly inside the picture count (scikit-image crops the 3-pixel border, so the
    border mode never matters).  8-bit pictures go to :func:`_ssim_8bit` (exact integer window
    sums); other pictures use float64 means from one OpenCV box filter over a (H, W, 5·C) stack.
    Equal to ``structural_similarity`` up to the float rounding of its window means and of the
    final average (about 1e-12 relative).
    """
    import cv2

    if a.dtype == np.uint8 and b.dtype == np.uint8:
        return _ssim_8bit(a, b, data_range)
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    h, w, c = a.shape
    stack = np.empty((h, w, 5 * c), np.float64)
    x, y = stack[:, :, :c], stack[:, :, c:2 * c]
    x[...] = a
    y[...] = b
    np.multiply(x, x, out=stack[:, :, 2 * c:3 * c])
    np.multiply(y, y, out=stack[:, :, 3 * c:4 * c])
    np.multiply(x, y, out=stack[:, :, 4 * c:])
    pad = (SSIM_WIN - 1) // 2
    sums = cv2.boxFilter(stack, -1, (SSIM_WIN, SSIM_WIN), normalize=False, borderType=cv2.BORDER_REFLECT)
    planes = np.ascontiguousarray(sums.reshape(sums.shape[0], sums.shape[1], -1)[pad:-pad, pad:-pad].transpose(2, 0, 1))
    n = SSIM_WIN ** 2
    cov_norm = n / (n - 1.0)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    ux, uy, uxx, uyy, uxy = (planes[k * c:(k + 1) * c] / n for k in range(5))
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    smap = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    return float(smap.mean(axis=(1, 2)).mean())


def _ssim_8bit(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """SSIM of two uint8 pictures (H, W) or (H, W, C) from exact int32 window sums (N = 49 pixels a window).

    The five window sums per channel (x, y, x², y², xy) come from OpenCV box filters (products in
    uint16: 255² fits).  With means ``u = S/N`` the SSIM terms are ratios of whole numbers scaled
    by N²: ``2·ux·uy = 2·Sx·Sy/N²``, ``ux² + uy² = (Sx² + Sy²)/N²``, ``vxy = cov·(N·Sxy − Sx·Sy)/N²``,
    ``vx + vy = cov·(N·(Sxx + Syy) − Sx² − Sy²)/N²``; every product is below 2³¹, so int32 is exact,
    and only the final ratio is float64.  The windows are turned into values :data:`SSIM_STRIP`
    rows at a time, in preallocated arrays, and summed; the mean over every window and channel
    equals scikit-image's mean of channel means up to float rounding (all channels have as many windows).
    """
    import cv2

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_32S, (SSIM_WIN, SSIM_WIN), normalize=False, borderType=cv2.BORDER_REFLECT)

    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    pad = (SSIM_WIN - 1) // 2
    h, w = a.shape[:2]
    sums = [box(a), box(b), box(cv2.multiply(a, a, dtype=cv2.CV_16U)), box(cv2.multiply(b, b, dtype=cv2.CV_16U)),
            box(cv2.multiply(a, b, dtype=cv2.CV_16U))]
    sx, sy, sxx, syy, sxy = (s.reshape(h, w, -1)[pad:h - pad, pad:w - pad] for s in sums)  # valid windows only
    rows = h - 2 * pad
    n = np.int32(SSIM_WIN ** 2)
    n2 = float(SSIM_WIN ** 4)
    cov_norm = n / (n - 1.0)
    c1n2 = (0.01 * data_range) ** 2 * n2
    c2n2 = (0.03 * data_range) ** 2 * n2
    shape = (min(SSIM_STRIP, rows),) + sx.shape[1:]
    pxy_, sq_, cross_, spread_, tmp_ = (np.empty(shape, np.int32) for _ in range(5))
    num_, den_, term_ = (np.empty(shape) for _ in range(3))
    total = 0.0
    for r0 in range(0, rows, SSIM_STRIP):
        r1 = min(rows, r0 + SSIM_STRIP)
        k = r1 - r0
        x, y, xx, yy, xy = (s[r0:r1] for s in (sx, sy, sxx, syy, sxy))
        pxy, sq, cross, spread, tmp = (v[:k] for v in (pxy_, sq_, cross_, spread_, tmp_))
        num, den, term = (v[:k] for v in (num_, den_, term_))
        np.multiply(x, y, out=pxy)  # Sx·Sy
        np.multiply(x, x, out=sq)
        np.multiply(y, y, out=tmp)
        sq += tmp  # Sx² + Sy²
        np.multiply(xy, n, out=cross)
        cross -= pxy  # N·Sxy − Sx·Sy
        np.add(xx, yy, out=spread)
        spread *= n
        spread -= sq  # N·(Sxx + Syy) − Sx² − Sy²
        np.multiply(pxy, 2.0, out=num)
        num += c1n2
        np.multiply(cross, 2.0 * cov_norm, out=term)
        term += c2n2
        num *= term
        np.add(sq, c1n2, out=den)
        np.multiply(spread, cov_norm, out=term)
        term += c2n2
        den *= term
        num /= den
        total += float(num.sum())
    return total / (rows * sx.shape[1] * sx.shape[2])


def box_mask(shape: tuple[int, ...], box: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    """Bool (H, W) mask, True inside ``box`` = (x1, y1, x2, y2) in pixels (rounded outward, clipped)."""
    r0, r1, c0, c1 = _box_window(shape, box)
    mask = np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def _box_window(shape: tuple[int, ...],
                box: tuple[float, float, float, float] | np.ndarray) -> tuple[int, int, int, int]:
    """Rows r0:r1 and columns c0:c1 of ``box`` (x1, y1, x2, y2) rounded outward and clipped; empty when outside."""
    h, w = int(shape[0]), int(shape[1])
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    c0, r0 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    c1, r1 = max(c0, min(w, int(np.ceil(x2)))), max(r0, min(h, int(np.ceil(y2))))
    return r0, r1, c0, c1


def psnr_outside(a: np.ndarray, b: np.ndarray, face: np.ndarray | tuple[float, float, float, float],
                 data_range: float | None = None) -> float:
    """PSNR in dB over the pixels *outside* the face.

    ``face`` is either a bool (H, W) mask, True on the face (those pixels are
    excluded), or a box (x1, y1, x2, y2) in pixels.  Use it to check that a
    lip-sync engine leaves the background and body untouched: an engine that
    pastes back exactly scores ``inf``.
    """
    a, b = _pair(a, b)
    face_arr = np.asarray(face)
    if face_arr.dtype == bool and face_arr.ndim == 2:
        if face_arr.shape != a.shape[:2]:
            raise ValueError(f"mask shape {face_arr.shape} does not match picture {a.shape[:2]}")
        mask = face_arr
    else:
        mask = box_mask(a.shape, face_arr)
    n_inside = int(np.count_nonzero(mask))
    n_pixels = mask.size - n_inside
    if n_pixels == 0:
        raise ValueError("the face covers the whole picture: no pixels outside it")
    sq = _squared_error(a, b)
    per_pixel = sq.reshape(mask.shape + (-1,)).sum(axis=-1) if sq.ndim == 3 else sq
    sse = float(per_pixel.sum()) - float(per_pixel[mask].sum())
    channels = 1 if a.ndim == 2 else a.shape[2]
    return _psnr_from_mse(max(sse, 0.0) / (n_pixels * channels), _default_range(a, data_range))


def psnr_and_outside(a: np.ndarray, b: np.ndarray, face: tuple[float, float, float, float] | np.ndarray | None,
                     data_range: float | None = None) -> tuple[float, float | None]:
    """:func:`psnr` and, when ``face`` (a box x1, y1, x2, y2 in pixels) is given, :func:`psnr_outside`, in dB,
    from one squared-error pass.

    Integer pictures give the very same values as the two functions (their error sums are exact
    integers); float pictures agree to float rounding.  Raises ``ValueError`` when the box covers
    the whole picture.
    """
    a, b = _pair(a, b)
    rng = _default_range(a, data_range)
    sq = _squared_error(a, b)
    exact = np.issubdtype(sq.dtype, np.integer)
    total = int(sq.sum(dtype=np.int64)) if exact else float(np.sum(sq, dtype=np.float64))
    whole = _psnr_from_mse(total / sq.size, rng)
    if face is None:
        return whole, None
    r0, r1, c0, c1 = _box_window(a.shape, face)
    inside = sq[r0:r1, c0:c1].sum(dtype=np.int64 if exact else np.float64)
    n_pixels = a.shape[0] * a.shape[1] - (r1 - r0) * (c1 - c0)
    if n_pixels == 0:
        raise ValueError("the face covers the whole picture: no pixels outside it")
    channels = 1 if a.ndim == 2 else a.shape[2]
    return whole, _psnr_from_mse(max(float(total) - float(inside), 0.0) / (n_pixels * channels), rng)


def _squared_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-element squared difference, exact (int64) for 8/16-bit integer pictures, else float64."""
    if a.dtype == b.dtype and a.dtype in (np.uint8, np.int8, np.uint16, np.int16):
        d = a.astype(np.int32) - b.astype(np.int32)
        return (d * d).astype(np.int64) if a.dtype.itemsize == 2 else d * d
    d = a.astype(np.float64) - b.astype(np.float64)
    return d * d
