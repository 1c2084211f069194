"""Lip-contact repair: what a parted mouth, warped shut, shows where its lips meet.

Closing a mouth that was open in the picture squeezes its teeth and interior into a thin band
between the lips, which reads as a dotted line with dark specks. :func:`lip_contact` covers that
band with the lips' own colour (the upper lip's above the meeting line, the lower lip's below), removes
the specks and paints the soft dark line real lips show where they touch. A mouth closed from wide open
also carries its tongue and teeth onto the lips themselves (the landmarks leave them partly on the lips'
side of the inner contour): :func:`refill_lips` repaints each lip in its own colour first. Sizes scale
with the inter-ocular distance ``iod`` (pixels).
"""
from __future__ import annotations

import cv2
import numpy as np

from retalk.compose.blend import feather, padded_box, polygon_mask

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
CONTACT_GAP = (0.02, 0.05)  # face units: inner-lip gap (middle) up to which the lips are drawn meeting, fading
# to none at the second: a partly open target (0.09) narrower than a wide-open photo's mouth looked closed


def lip_contact(fg: np.ndarray, upper: np.ndarray, lower: np.ndarray, mouth_u8: np.ndarray, iod: float,
                strength: float) -> np.ndarray:
    """Close a parted mouth's gap with lip colour and paint a soft dark line where the lips meet.

    The gap's upper half takes the upper lip's colour, its lower half the lower lip's (medians of the lip pixels
    outside the gap on either side of the meeting line).

    ``fg``: float32 (h, w, 3) RGB image of the mouth, 0-255. ``upper``/``lower``: (k, 2) inner contours of the
    upper and lower lip from one mouth corner to the other (pixels in ``fg``). ``mouth_u8``: uint8 (h, w), 255
    inside the outer lip contour. ``iod``: inter-ocular distance in pixels. ``strength`` (0-1): how much of the
    repair is applied (0: ``fg`` unchanged), times :func:`contact_share` of the contours: lips the target leaves
    parted are not drawn meeting. Returns float (h, w, 3); pixels away from the mouth are ``fg``'s.
    """
    strength *= contact_share(upper, lower, iod)
    ys, xs = np.nonzero(mouth_u8 > 128)
    if len(ys) == 0 or strength <= 0:
        return fg
    m = int(max(BOX_MARGIN_MIN_PX, np.ceil(BOX_MARGIN_IOD * iod)))
    x0, y0, x1, y1 = padded_box(np.stack([xs, ys], axis=1), m, fg.shape[:2])
    off = np.array([x0, y0], np.float64)
    out = fg.copy()
    out[y0:y1, x0:x1] = _lip_contact_box(fg[y0:y1, x0:x1], upper - off, lower - off, mouth_u8[y0:y1, x0:x1], iod,
                                         strength)
    return out


def contact_share(upper: np.ndarray, lower: np.ndarray, iod: float) -> float:
    """How much of the lip-contact repair a mouth with these inner contours gets (0-1): 1 where the lips meet
    (middle gap up to ``CONTACT_GAP[0]`` face units), 0 from ``CONTACT_GAP[1]`` on, linear between.

    ``upper``/``lower``: (k, 2) pixels, corner to corner (shared corners); ``iod``: inter-ocular distance in
    pixels. The middle gap is that of an elliptical opening of the contours' area and corner-to-corner width
    (area / width * 4 / pi).
    """
    poly = np.concatenate([upper, lower[::-1]]).astype(np.float64)
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    width = float(np.linalg.norm(upper[-1] - upper[0]))
    if width <= 0 or iod <= 0:
        return 1.0
    gap = area / width * 4.0 / np.pi / iod
    lo, hi = CONTACT_GAP
    return float(np.clip((hi - gap) / (hi - lo), 0.0, 1.0))


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
    # above the meeting line the band takes the upper lip's colour, below it the lower lip's (they often differ)
    mid = 0.5 * (upper + lower)
    order = np.argsort(mid[:, 0])
    y_mid = np.interp(np.arange(w, dtype=np.float64), mid[order, 0], mid[order, 1])
    above = np.arange(h, dtype=np.float64)[:, None] < y_mid[None, :]
    paint = np.empty_like(fg)
    for side in (above, ~above):
        px = fg[outside & side]
        paint[side] = np.median(px, axis=0) if len(px) >= MIN_LIP_PX else lip_rgb
    cover = feather(band.astype(np.float32) / 255.0, max(BAND_FEATHER_MIN_PX, BAND_FEATHER_IOD * iod)) * strength
    fg = fg * (1 - cover[..., None]) + paint * cover[..., None]
    # collapsed triangles of the squeezed interior can still leave single dark pixels on the lips
    # (far darker than their neighbourhood): replace those by the local median
    u8 = np.clip(fg + 0.5, 0, 255).astype(np.uint8)
    med = cv2.medianBlur(u8, SPECK_MEDIAN_PX)
    speck = (med.astype(np.int16).sum(2) - u8.astype(np.int16).sum(2)) > SPECK_DARKNESS
    speck &= cv2.dilate(mouth_u8, np.ones((3, 3), np.uint8)) > 128
    if speck.any():
        fg[speck] += (med[speck].astype(np.float32) - fg[speck]) * strength
    colour = np.percentile(lips_px, LINE_PERCENTILE, axis=0) * LINE_DARKNESS
    line = np.zeros((h, w), np.float32)
    thick = max(1, int(round(LINE_THICKNESS_IOD * iod)))
    cv2.polylines(line, [np.round(mid * 16).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, shift=4)
    line = cv2.GaussianBlur(line, (0, 0), max(LINE_BLUR_MIN_PX, LINE_BLUR_IOD * iod)) * strength
    return fg * (1 - line[..., None]) + colour * line[..., None]


REFILL_BAND = (25, 60)  # a lip's own colour: the median of its pixels between these brightness percentiles
#                         (below: the dark cavity at its inner edge; above: a tongue or teeth warped onto it)
REFILL_DETAIL = 0.5  # share of the warped picture's fine detail kept on a refilled lip
REFILL_DETAIL_IOD = 0.03  # "fine": finer than a Gaussian of this sigma (at least 1 pixel) ...
REFILL_DETAIL_MAX = 12.0  # ... and within this many levels (a tongue's or a tooth's edge is not lip texture)
REFILL_FEATHER_IOD = 0.012  # edge softness of a refilled lip (at least BAND_FEATHER_MIN_PX)


def refill_lips(fg: np.ndarray, upper_outer: np.ndarray, upper_inner: np.ndarray, lower_inner: np.ndarray,
                lower_outer: np.ndarray, iod: float, strength: float) -> np.ndarray:
    """Repaint each lip with its own colour where a wide-open mouth was warped shut.

    Closing a mouth that was wide open draws the closed lips from the open one: its tongue and teeth, which the
    landmarks leave partly on the lips' side of the inner contour, become a flat pale "lip". Each lip (between its
    outer and inner contour, corner to corner, pixels in ``fg``) is covered with its own colour, the median of
    the redder half of its mid-bright pixels (``REFILL_BAND``; grey teeth left on the lip are not its colour),
    keeping some of the picture's fine detail. ``fg``: float32 (h, w, 3)
    RGB, 0-255; ``iod``: inter-ocular distance in pixels; ``strength`` (0-1): how much is repainted (0: ``fg``
    unchanged). Returns float32 (h, w, 3); pixels away from the lips are ``fg``'s.
    """
    if strength <= 0:
        return fg
    pts = np.concatenate([upper_outer, lower_outer])
    m = int(max(BOX_MARGIN_MIN_PX, np.ceil(BOX_MARGIN_IOD * iod)))
    x0, y0, x1, y1 = padded_box(pts, m, fg.shape[:2])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return fg
    off = np.array([x0, y0], np.float64)
    box = fg[y0:y1, x0:x1]
    shape = box.shape[:2]
    sigma = max(1.0, REFILL_DETAIL_IOD * iod)
    detail = np.clip(box - cv2.GaussianBlur(box, (0, 0), sigma), -REFILL_DETAIL_MAX, REFILL_DETAIL_MAX)
    out_box = box.copy()
    for outer, inner in ((upper_outer, upper_inner), (lower_outer, lower_inner)):
        lip = polygon_mask(shape, np.concatenate([outer, inner[::-1]]) - off) > 128
        if lip.sum() < MIN_LIP_PX:
            continue
        px = box[lip]
        lum = px.mean(1)
        lo, hi = np.percentile(lum, REFILL_BAND)
        sel = px[(lum >= lo) & (lum <= hi)]
        sel = sel if len(sel) else px
        # teeth in shadow are as bright as lips but grey: of those pixels, the redder half is the lip's own
        red = sel[:, 0] - 0.5 * (sel[:, 1] + sel[:, 2])
        colour = np.median(sel[np.argsort(red, kind="stable")[len(sel) // 2:]], axis=0)
        cover = feather(lip.astype(np.float32), max(BAND_FEATHER_MIN_PX, REFILL_FEATHER_IOD * iod)) * strength
        paint = np.clip(colour + REFILL_DETAIL * detail, 0, 255)
        out_box = out_box * (1 - cover[..., None]) + paint * cover[..., None]
    out = fg.copy()
    out[y0:y1, x0:x1] = out_box
    return out
