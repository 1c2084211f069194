"""Synthesizing a mouth interior (cavity, teeth, tongue) for mouths opened wider than any real example.

Used when a still photo, or a clip whose speaker never opens their mouth,
has to show an open mouth. Colours are derived from the face itself: the
cavity from the lips, the teeth from the skin's brightness, so the result
follows the picture's white balance and exposure. Painted teeth are never
paper-white (``TEETH_MAX``): the speaker's own teeth colour where the picture
shows teeth, else an ivory lifted from the skin with some of its hue.
"""
from __future__ import annotations

import cv2
import numpy as np

from retalk.compose.blend import feather, padded_box, polygon_mask


TEETH_MAX = 235.0  # no channel of painted teeth is brighter (teeth are never paper-white on camera)
TEETH_LIFT = 1.3  # teeth derived from the skin: this much brighter than its mean ...
TEETH_SKIN_TINT = 0.3  # ... keeping this share of the skin's own hue over a neutral ivory
IVORY = (1.0, 0.97, 0.88)  # relative R, G, B of the ivory


def teeth_from_skin(skin_rgb: np.ndarray) -> np.ndarray:
    """Teeth colour (RGB float32, 0-255) for a face whose own teeth are not seen: a brightened, mostly neutral
    ivory carrying some of the skin's hue, so it follows the picture's white balance and exposure. Painted teeth are never
paper-white (``TEETH_MAX``): the speaker's own teeth colour where the picture
shows teeth, else an ivory lifted from the skin with some of its hue."""
    skin = np.asarray(skin_rgb, np.float32)
    lum = max(float(skin.mean()), 1.0)
    tone = (1 - TEETH_SKIN_TINT) * np.array(IVORY, np.float32) + TEETH_SKIN_TINT * skin / lum
    return np.minimum(tone * lum * TEETH_LIFT, TEETH_MAX).astype(np.float32)


def synthesize_interior(shape: tuple[int, int], upper: np.ndarray, lower: np.ndarray, lip_rgb: np.ndarray,
                        skin_rgb: np.ndarray, iod: float, teeth_rgb: np.ndarray | None = None,
                        reveal: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Paint a mouth interior between the inner lip contours.

    ``upper``/``lower``: (k, 2) inner contours of the upper and lower lip from
    one mouth corner to the other, in the patch's pixel coordinates.
    ``lip_rgb``/``skin_rgb``: mean colours (RGB, 0–255); ``teeth_rgb``: the speaker's own teeth colour when
    visible in the source (else derived from the skin's brightness). ``iod``: inter-ocular distance in pixels (sets sizes).
    ``reveal`` (0–1): how much of the opening the painted interior covers, sweeping up from the lower lip
    (a jaw drops away from the upper teeth): at 0 nothing, at 0.5 the lower half, at 1 all of it. A partly
    revealed interior keeps the picture's own upper teeth above a dark gap instead of mixing the two into grey.
    An array gives one value per contour point (``upper[j]`` with ``lower[j]``), interpolated across the mouth.
    Returns ``(image float32 (h, w, 3), alpha float32 (h, w))``.
    """
    h, w = shape
    img = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    poly = np.concatenate([upper, lower[::-1]], axis=0)
    # paint only the mouth's bounding box (every blur below reaches a few pixels at most)
    m = int(max(6, np.ceil(0.05 * iod)))
    x0, y0, x1, y1 = padded_box(poly, m, (h, w))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return img, alpha
    off = np.array([x0, y0], np.float64)
    box_img, box_alpha = _paint((y1 - y0, x1 - x0), upper - off, lower - off, lip_rgb, skin_rgb, iod, teeth_rgb, reveal)
    img[y0:y1, x0:x1] = box_img
    alpha[y0:y1, x0:x1] = box_alpha
    return img, alpha


def _paint(shape: tuple[int, int], upper: np.ndarray, lower: np.ndarray, lip_rgb: np.ndarray, skin_rgb: np.ndarray,
           iod: float, teeth_rgb: np.ndarray | None, reveal: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    poly = np.concatenate([upper, lower[::-1]], axis=0)
    inside = polygon_mask((h, w), poly)
    if inside.max() == 0:
        return np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32)
    lip = np.asarray(lip_rgb, np.float32)
    skin = np.asarray(skin_rgb, np.float32)
    cavity = np.clip(lip * np.array([0.26, 0.12, 0.12]) + 4, 0, 255)
    img = np.empty((h, w, 3), np.float32)
    img[:] = cavity
    # depth shading: darker towards the middle of the opening
    gap = np.maximum(lower[:, 1] - upper[:, 1], 0)
    mid_x = 0.5 * (upper[0, 0] + upper[-1, 0])
    half_w = max(0.5 * abs(upper[-1, 0] - upper[0, 0]), 1.0)
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None]
    radial = np.clip(1 - np.abs(xs - mid_x) / half_w, 0, 1)[None, :]
    img *= (1.0 - 0.45 * radial[..., None])
    open_px = float(gap.max())
    teeth = np.minimum(teeth_from_skin(skin) if teeth_rgb is None else np.asarray(teeth_rgb, np.float32), TEETH_MAX)
    # upper teeth: a band hanging from the upper inner lip, narrower than the mouth
    up_y = np.interp(xs, upper[:, 0], upper[:, 1]) if upper[0, 0] < upper[-1, 0] else np.interp(xs, upper[::-1, 0], upper[::-1, 1])
    lo_y = np.interp(xs, lower[:, 0], lower[:, 1]) if lower[0, 0] < lower[-1, 0] else np.interp(xs, lower[::-1, 0], lower[::-1, 1])
    t_h = min(0.38 * open_px, 0.09 * iod)
    span = np.clip(1 - (np.abs(xs - mid_x) / (0.78 * half_w)) ** 4, 0, 1)[None, :]
    band_up = ((ys >= up_y[None, :] - 2) & (ys <= up_y[None, :] + t_h * span)).astype(np.float32) * (span > 0.05)
    # gaps between teeth: faint vertical shading every ~0.07 iod
    pitch = max(0.075 * iod, 3.0)
    ridges = 0.97 + 0.03 * np.cos((xs - mid_x) / pitch * 2 * np.pi)[None, :]
    shade_up = np.clip(1.0 - 0.35 * (np.abs(xs - mid_x) / half_w)[None, :] ** 2, 0.5, 1.0) * ridges
    tooth_img = teeth[None, None, :] * shade_up[..., None]
    a_up = cv2.GaussianBlur(band_up, (0, 0), max(0.6, 0.006 * iod))
    img = img * (1 - a_up[..., None]) + tooth_img * a_up[..., None]
    # lower teeth, only when wide open: a narrower band above the lower lip, in the shadow of the upper jaw
    if open_px > 0.16 * iod:
        lt_h = min(0.15 * open_px, 0.045 * iod)
        span_lo = np.clip(1 - (np.abs(xs - mid_x) / (0.6 * half_w)) ** 4, 0, 1)[None, :]
        top = lo_y[None, :] - lt_h * span_lo
        band_lo = ((ys <= lo_y[None, :] + 2) & (ys >= top)).astype(np.float32) * (span_lo > 0.05)
        # darker towards their tips (further into the mouth)
        depth = np.clip((lo_y[None, :] - ys) / max(lt_h, 1.0), 0.0, 1.0)
        lo_teeth = teeth[None, None, :] * np.array([1.0, 0.95, 0.92], np.float32) * (0.78 - 0.25 * depth)[..., None] * shade_up[..., None]
        a_lo = cv2.GaussianBlur(band_lo, (0, 0), max(0.6, 0.006 * iod)) * 0.9
        # tongue: a soft reddish mound just behind the lower teeth
        tongue = np.clip(lip * np.array([0.55, 0.3, 0.3]), 0, 255)
        cy = lo_y[None, :] - lt_h - 0.1 * open_px
        d = ((xs[None, :] - mid_x) / (0.55 * half_w)) ** 2 + ((ys - cy) / max(0.22 * open_px, 1.0)) ** 2
        a_t = np.clip(1.2 - d, 0, 1) * 0.75
        img = img * (1 - a_t[..., None]) + tongue * a_t[..., None]
        img = img * (1 - a_lo[..., None]) + lo_teeth * a_lo[..., None]
    alpha = feather(inside.astype(np.float32) / 255.0, max(0.5, 0.004 * iod))
    rv = np.clip(np.asarray(reveal, np.float64), 0.0, 1.0)
    if rv.ndim:  # per contour point -> per column
        order = np.argsort(upper[:, 0])
        rv = np.interp(xs, upper[order, 0], rv[order])[None, :]
    if np.any(rv < 1.0):
        # position within the opening: 0 at the upper inner lip, 1 at the lower; a steep front sweeps upwards
        v = np.clip((ys - up_y[None, :]) / np.maximum(lo_y - up_y, 1.0)[None, :], 0.0, 1.0)
        alpha = alpha * np.clip((1.25 * rv - (1.0 - v)) / 0.25, 0.0, 1.0)
    img = cv2.GaussianBlur(img, (0, 0), max(0.5, 0.004 * iod))
    return img, alpha
