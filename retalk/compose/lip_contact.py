"""Lip-contact repair: what a parted mouth, warped shut, shows where its lips meet.

Closing a mouth that was open in the picture squeezes its teeth and interior into a thin band
between the lips, which reads as a dotted line with dark specks. :func:`lip_contact` covers that
band with the lips' own colour, removes the specks and paints the soft dark line real lips show
where they touch. Sizes scale with the inter-ocular distance ``iod`` (pixels).
"""
from __future__ import annotations

import cv2
import numpy as np

from retalk.compose.blend import feather, polygon_mask

BOX_MARGIN_IOD = 0.1  # work box around the mouth, inter-ocular distances (the filters reach a few pixels at most)
BOX_MARGIN_MIN_PX = 8
BAND_GROW_IOD = 0.025  # the squeezed band: the inner-lip outline widened by this much
BAND_FEATHER_IOD = 0.01  # edge softness of the lip-colour cover (at least BAND_FEATHER_MIN_PX)
BAND_FEATHER_MIN_PX = 0.6
MIN_LIP_PX = 12  # fewest lip pixels outside the band to take the lips' colour from (else all lip pixels)
SPECK_MEDIAN_PX = 5  # neighbourhood (pixels) a speck is compared with
SPECK_DARKNESS = 90  # a speck: R + G + B this many levels (0-255 each) below its neighbourhood's median
LINE_PERCENTILE = 30  # the contact line's colour: this percentile of the lips' colour ...
LINE_DARKNESS = 0.7  # ... times this
LINE_THICKNESS_IOD = 0.012  # contact line width (at least 1 pixel) ...
LINE_BLUR_IOD = 0.006  # ... softened by a Gaussian of this sigma (at least LINE_BLUR_MIN_PX)
LINE_BLUR_MIN_PX = 0.6


def lip_contact(fg: np.ndarray, upper: np.ndarray, lower: np.ndarray, mouth_u8: np.ndarray, iod: float,
                strength: float) -> np.ndarray:
    """Close a parted mouth's gap with lip colour and paint a soft dark line where the lips meet.

    ``fg``: float32 (h, w, 3) RGB image of the mouth, 0-255. ``upper``/``lower``: (k, 2) inner contours of the
    upper and lower lip from one mouth corner to the other (pixels in ``fg``). ``mouth_u8``: uint8 (h, w), 255
    inside the outer lip contour. ``iod``: inter-ocular distance in pixels. ``strength`` (0-1): how much of the
    repair is applied (0: ``fg`` unchanged). Returns float (h, w, 3); pixels away from the mouth are ``fg``'s.
    """
    ys, xs = np.nonzero(mouth_u8 > 128)
    if len(ys) == 0:
        return fg
    m = int(max(BOX_MARGIN_MIN_PX, np.ceil(BOX_MARGIN_IOD * iod)))
    H, W = fg.shape[:2]
    y0, y1 = max(0, int(ys.min()) - m), min(H, int(ys.max()) + m + 1)
    x0, x1 = max(0, int(xs.min()) - m), min(W, int(xs.max()) + m + 1)
    off = np.array([x0, y0], np.float64)
    out = fg.copy()
    out[y0:y1, x0:x1] = _lip_contact_box(fg[y0:y1, x0:x1], upper - off, lower - off, mouth_u8[y0:y1, x0:x1], iod,
                                         strength)
    return out


def _lip_contact_box(fg: np.ndarray, upper: np.ndarray, lower: np.ndarray, mouth_u8: np.ndarray, iod: float,
                     strength: float) -> np.ndarray:
    """:func:`lip_contact` on the box around the mouth (all arguments in the box's pixels)."""
    lips_px = fg[mouth_u8 > 128]
    h, w = fg.shape[:2]
    band = polygon_mask((h, w), np.concatenate([upper, lower[::-1]]))
    grow = max(1, int(round(BAND_GROW_IOD * iod)))
    band = cv2.dilate(band, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    outside = (mouth_u8 > 128) & (band < 128)
    lip_rgb = np.median(fg[outside], axis=0) if outside.sum() >= MIN_LIP_PX else np.median(lips_px, axis=0)
    cover = feather(band.astype(np.float32) / 255.0, max(BAND_FEATHER_MIN_PX, BAND_FEATHER_IOD * iod)) * strength
    fg = fg * (1 - cover[..., None]) + lip_rgb * cover[..., None]
    # collapsed triangles of the squeezed interior can still leave single dark pixels on the lips
    # (far darker than their neighbourhood): replace those by the local median
    u8 = np.clip(fg + 0.5, 0, 255).astype(np.uint8)
    med = cv2.medianBlur(u8, SPECK_MEDIAN_PX)
    speck = (med.astype(np.int16).sum(2) - u8.astype(np.int16).sum(2)) > SPECK_DARKNESS
    speck &= cv2.dilate(mouth_u8, np.ones((3, 3), np.uint8)) > 128
    if speck.any():
        fg[speck] += (med[speck].astype(np.float32) - fg[speck]) * strength
    colour = np.percentile(lips_px, LINE_PERCENTILE, axis=0) * LINE_DARKNESS
    mid = 0.5 * (upper + lower)
    line = np.zeros((h, w), np.float32)
    thick = max(1, int(round(LINE_THICKNESS_IOD * iod)))
    cv2.polylines(line, [np.round(mid * 16).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, shift=4)
    line = cv2.GaussianBlur(line, (0, 0), max(LINE_BLUR_MIN_PX, LINE_BLUR_IOD * iod)) * strength
    return fg * (1 - line[..., None]) + colour * line[..., None]
