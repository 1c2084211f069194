"""Blinks on a photo close the lid over a still eyeball: measured on the astronaut photo with a painted blue iris.

The iris colour is known (pure blue, far from any skin or lash tone), so "no iris left" and "iris moved or
faded" can be counted exactly: skin has blue - red of about -60 levels, the painted iris +190.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from retalk.compose.blend import polygon_mask
from retalk.face import landmarks as L
from retalk.portrait.blink import EYES, EyelidRenderer
from retalk.portrait.geometry import find_face
from retalk.samples import astronaut

IRIS_RGB = (40, 90, 230)


def _blue(img: np.ndarray) -> np.ndarray:
    """Blue minus red per pixel (int)."""
    return img[..., 2].astype(int) - img[..., 0].astype(int)


@pytest.fixture(scope="module")
def blue_eyed():
    """The astronaut photo (512 px) with both irises painted blue inside the lids, its landmarks, and eye boxes."""
    img = astronaut(512)
    lm = find_face(img, name="astronaut")[:, :2]
    painted = img.copy()
    for eye, centre in zip(EYES, (468, 473)):
        lid = np.concatenate([lm[[eye.corners[0]]], lm[list(eye.upper)], lm[[eye.corners[1]]],
                              lm[list(eye.lower)][::-1]])
        inside = polygon_mask(img.shape[:2], lid) > 128
        r = float(np.linalg.norm(lm[centre + 1:centre + 5] - lm[centre], axis=1).mean())
        disc = np.zeros(img.shape[:2], np.uint8)
        cv2.circle(disc, tuple(int(v) for v in np.round(lm[centre])), int(round(r)), 1, -1)
        painted[(disc > 0) & inside] = IRIS_RGB
    lm2 = find_face(painted, name="blue-eyed")
    iod = float(L.interocular(lm2[:, :2]))
    boxes = []
    for eye in EYES:
        p = lm2[list(eye.corners) + list(eye.upper) + list(eye.lower), :2]
        x0, y0 = np.floor(p.min(0) - 0.05 * iod).astype(int)
        x1, y1 = np.ceil(p.max(0) + 0.05 * iod).astype(int)
        boxes.append((slice(y0, y1), slice(x0, x1)))
    assert all((_blue(painted[b]) > 100).sum() >= 20 for b in boxes)  # the iris is there to be covered
    return painted, lm2, boxes


def test_open_eyes_are_left_unchanged(blue_eyed):
    img, lm, _ = blue_eyed
    r = EyelidRenderer(img, lm)
    for closure in (0.0, 0.01):
        assert np.array_equal(r.apply(img.copy(), lm, closure), img)


@pytest.mark.parametrize("closure", [0.99, 1.0])
def test_closed_eye_has_no_iris_and_one_lash_line(blue_eyed, closure):
    img, lm, boxes = blue_eyed
    out = EyelidRenderer(img, lm).apply(img.copy(), lm, closure)
    for box in boxes:
        eye = out[box]
        # no iris, not even a faint ghost of it, and no iris colour in the lashes (skin is about -60)
        assert _blue(eye).max() < 0, _blue(eye).max()
        # the lash line: one dark band in each column across the middle of the eye
        lum = eye.astype(np.float32).mean(2)
        dark = lum < 0.7 * np.median(lum)
        w = dark.shape[1]
        runs = [int(np.sum(np.diff(dark[:, c].astype(int)) == 1) + dark[0, c]) for c in range(w // 5, 4 * w // 5)]
        assert np.mean(np.array(runs) == 1) >= 0.85, runs


def test_half_closed_lid_covers_a_still_iris_from_above(blue_eyed):
    img, lm, boxes = blue_eyed
    out = EyelidRenderer(img, lm).apply(img.copy(), lm, 0.6)
    for box in boxes:
        before, after = _blue(img[box]) > 100, _blue(out[box]) > 100
        assert after.sum() >= 5, after.sum()  # the lower part of the iris still shows ...
        assert not (after & ~before).any()  # ... where it was: occluded, never squeezed or moved
        rows_before, rows_after = np.flatnonzero(before.any(1)), np.flatnonzero(after.any(1))
        assert rows_after.max() == rows_before.max()  # its bottom stays put
        assert rows_after.min() > rows_before.min()  # its top is under the lid
