"""Tooth specks: bright dots left on the lips around a warped mouth.

Warping a mouth whose teeth show onto another shape carries a few teeth pixels past the inner lip
contour (the landmarks never hug the teeth exactly); they read as white specks on or under the lip,
most visibly where a parted mouth is closed. :func:`remove_bright_specks` finds pixels on the lips and
the skin just around them (outside the target's inner lip contour, slightly grown) that are far brighter
than their neighbourhood's median, and replaces them by that median. Real teeth (inside the contour) and
broad highlights (wider than the neighbourhood) are left alone. Sizes scale with the inter-ocular
distance ``iod`` (pixels).
"""
from __future__ import annotations

import cv2
import numpy as np

from retalk.compose.blend import padded_box, polygon_mask

BOX_MARGIN_IOD = 0.12  # work box around the lips (inter-ocular distances)
AROUND_LIPS_IOD = 0.06  # specks are looked for up to this far outside the outer lip contour ...
INNER_GROW_IOD = 0.015  # ... and no closer than this to the inner lip contour (the teeth's own edge)
NEIGHBOURHOOD_IOD = 0.08  # median window (at least MIN_NEIGHBOURHOOD_PX, odd): wider than a speck
MIN_NEIGHBOURHOOD_PX = 5
SPECK_BRIGHTNESS = 45  # a speck: R + G + B this many levels (0-255 each) above its neighbourhood's median


def remove_bright_specks(fg: np.ndarray, inner: np.ndarray, outer: np.ndarray, iod: float) -> np.ndarray:
    """Replace isolated bright pixels on and around the lips by their neighbourhood's median.

    ``fg``: float32 (h, w, 3) RGB, 0-255. ``inner``/``outer``: (k, 2) closed inner and outer lip contours of the
    mouth as drawn (pixels in ``fg``). ``iod``: inter-ocular distance in pixels. Returns float32 (h, w, 3); only
    specks change.
    """
    h, w = fg.shape[:2]
    m = int(max(8, np.ceil(BOX_MARGIN_IOD * iod)))
    x0, y0, x1, y1 = padded_box(outer, m, (h, w))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return fg
    off = np.array([x0, y0], np.float64)
    box = fg[y0:y1, x0:x1]
    shape = box.shape[:2]
    grow = max(1, int(round(AROUND_LIPS_IOD * iod)))
    lips = cv2.dilate(polygon_mask(shape, outer - off), cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                                   (2 * grow + 1, 2 * grow + 1)))
    keep = max(1, int(round(INNER_GROW_IOD * iod)))
    mouth = cv2.dilate(polygon_mask(shape, inner - off), cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                                    (2 * keep + 1, 2 * keep + 1)))
    where = (lips > 128) & (mouth < 128)
    if not where.any():
        return fg
    k = max(MIN_NEIGHBOURHOOD_PX, int(NEIGHBOURHOOD_IOD * iod)) | 1
    u8 = np.clip(box + 0.5, 0, 255).astype(np.uint8)
    med = cv2.medianBlur(u8, k)
    speck = where & ((u8.astype(np.int16).sum(2) - med.astype(np.int16).sum(2)) > SPECK_BRIGHTNESS)
    if not speck.any():
        return fg
    # a speck's soft edge is brighter than the median too: take its one-pixel rim with it
    speck = cv2.dilate(speck.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & where
    out = fg.copy()
    out[y0:y1, x0:x1][speck] = np.minimum(box[speck], med[speck].astype(np.float32))
    return out
