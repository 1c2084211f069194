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

__all__ = ["box_mask", "psnr", "psnr_outside", "ssim"]


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


def _ssim_box(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """scikit-image's default SSIM (7×7 uniform window, sample covariance, K1 0.01, K2 0.03) in one pass.

    The five window sums of every channel are one OpenCV box filter over a (H, W, 5·C) stack
    (float32 for 8-bit pictures, whose sums of at most 49·255² are whole numbers below 2²⁴ and so
    exact; float64 otherwise); only windows wholly inside the picture are kept (scikit-image crops
    the 3-pixel border, so the border mode never matters).  Equal to ``structural_similarity`` up
    to the float rounding of the window means (about 1e-12 relative).
    """
    import cv2

    exact = a.dtype == np.uint8 and b.dtype == np.uint8  # window sums of 8-bit products are exact in float32
    x = a.astype(np.float32 if exact else np.float64)
    y = b.astype(x.dtype)
    if x.ndim == 2:
        x, y = x[:, :, None], y[:, :, None]
    c = x.shape[2]
    pad = (SSIM_WIN - 1) // 2
    sums = cv2.boxFilter(np.concatenate([x, y, x * x, y * y, x * y], axis=2), -1, (SSIM_WIN, SSIM_WIN),
                         normalize=False, borderType=cv2.BORDER_REFLECT)
    m = sums.reshape(sums.shape[0], sums.shape[1], -1)[pad:-pad, pad:-pad].transpose(2, 0, 1).astype(np.float64)
    m /= SSIM_WIN ** 2  # (5·C, h, w) window means, one contiguous plane each
    ux, uy, uxx, uyy, uxy = (m[k * c:(k + 1) * c] for k in range(5))
    cov_norm = SSIM_WIN ** 2 / (SSIM_WIN ** 2 - 1.0)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    uxuy = ux * uy
    sq = ux * ux
    sq += uy * uy
    num = 2.0 * uxuy + c1
    num *= 2.0 * cov_norm * (uxy - uxuy) + c2
    var = uxx + uyy
    var -= sq
    var *= cov_norm
    var += c2
    sq += c1
    sq *= var
    s = num / sq
    return float(s.mean(axis=(1, 2)).mean())


def box_mask(shape: tuple[int, ...], box: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    """Bool (H, W) mask, True inside ``box`` = (x1, y1, x2, y2) in pixels (rounded outward, clipped)."""
    h, w = int(shape[0]), int(shape[1])
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    mask = np.zeros((h, w), dtype=bool)
    c0, r0 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    c1, r1 = min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2)))
    if c1 > c0 and r1 > r0:
        mask[r0:r1, c0:c1] = True
    return mask


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


def _squared_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-element squared difference, exact (int64) for 8/16-bit integer pictures, else float64."""
    if a.dtype == b.dtype and a.dtype in (np.uint8, np.int8, np.uint16, np.int16):
        d = a.astype(np.int32) - b.astype(np.int32)
        return (d * d).astype(np.int64) if a.dtype.itemsize == 2 else d * d
    d = a.astype(np.float64) - b.astype(np.float64)
    return d * d
