"""Clean lips from the built-in engine on a photo whose teeth show (the smiling astronaut), through closures.

* No tooth specks: bright isolated pixels (a white top-hat on brightness, a measure independent of the engine's
  own speck filter) are counted on the lips and the skin around them, outside the inner lip contour of the face
  mesh run afresh on each output frame.
* Closed lips stay lips: the dark run where they meet is thin and the lips keep their redness.
* A closed mouth's bright lips are not mistaken for teeth (which would paint pink teeth into its open mouth).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from _builtin_render import render_in_memory

from retalk.compose.blend import polygon_mask
from retalk.face import landmarks as L
from retalk.face.tracker import FaceMesh
from retalk.samples import astronaut, vowel_speech
from retalk.speech.types import Phone

SIZE = 256
RATE = 16000
FPS = 25.0
MAX_MEAN_SPECKS = 6.0  # bright isolated pixels per closed frame, at most (see the test)
TOPHAT_LEVELS = 30  # a speck: this many grey levels brighter than the brightness opened by a 5 x 5 disc


def _phones() -> list[Phone]:
    labels = ["SIL", "M", "AA", "M", "AA", "B", "EY", "B", "IY", "P", "AA", "P", "AA", "B", "AA", "B", "SIL"]
    edges = np.linspace(0.0, 2.0, len(labels) + 1)
    return [Phone(lab, float(a), float(b)) for lab, a, b in zip(labels, edges[:-1], edges[1:])]


def bright_specks(frame: np.ndarray, lm: np.ndarray) -> int:
    """Bright isolated pixels within 0.06 iod of the outer lips and more than 0.03 iod outside the inner lips."""
    iod = float(L.interocular(lm))
    lum = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    tophat = cv2.morphologyEx(lum, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    g = max(1, int(round(0.06 * iod)))
    lips = cv2.dilate(polygon_mask(lum.shape, lm[L.LIPS_OUTER]), np.ones((2 * g + 1, 2 * g + 1), np.uint8))
    k = max(1, int(round(0.03 * iod)))
    inner = cv2.dilate(polygon_mask(lum.shape, lm[L.LIPS_INNER]), np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    return int(np.sum((tophat > TOPHAT_LEVELS) & (lips > 128) & (inner < 128)))


@pytest.fixture(scope="module")
def rendered():
    _, mouth, frames = render_in_memory([astronaut(SIZE)], True, vowel_speech(2.0, RATE, seed=0), RATE, FPS,
                                        phones=_phones())
    return mouth, frames


def test_closed_lips_show_no_tooth_specks(rendered):
    mouth, frames = rendered
    mesh = FaceMesh(static=True)
    counts = []
    try:
        for i in np.flatnonzero(mouth.closed > 0.5):
            faces = mesh(frames[i])
            assert faces, f"frame {i}: no face"
            counts.append(bright_specks(frames[i], faces[0][:, :2]))
    finally:
        mesh.close()
    assert len(counts) >= 5
    # the ring also holds a few of the photo's own highlights (smile lines, the lip's sheen): about 4 a frame;
    # with teeth squeezed onto the lips (the engine before its speck filter) it was about 15
    assert np.mean(counts) <= MAX_MEAN_SPECKS, counts



@pytest.fixture(scope="module")
def rendered_large():
    """The same render at 512 px (the contact line's thickness is a few pixels there)."""
    _, mouth, frames = render_in_memory([astronaut(2 * SIZE)], True, vowel_speech(2.0, RATE, seed=0), RATE, FPS,
                                        phones=_phones())
    return mouth, frames


def test_closed_smile_keeps_its_lips(rendered_large):
    """Closing the smiling photo's mouth shows lips meeting, not a dark band: across the middle of the mouth the
    dark run (darker than 0.6 x the skin around) is thin next to the inter-ocular distance, and the lips above and
    below it keep their redness."""
    mouth, frames = rendered_large
    mesh = FaceMesh(static=True)
    thickness, redness = [], []
    try:
        for i in np.flatnonzero(mouth.closed > 0.5)[::3]:
            faces = mesh(frames[i])
            assert faces, f"frame {i}: no face"
            lm = faces[0][:, :2]
            iod = float(L.interocular(lm))
            lum = frames[i].astype(np.float32).mean(2)
            lips = polygon_mask(lum.shape, lm[L.LIPS_OUTER]) > 128
            g = max(1, int(round(0.15 * iod)))
            ring = cv2.dilate(lips.astype(np.uint8), np.ones((2 * g + 1, 2 * g + 1), np.uint8)).astype(bool) & ~lips
            skin = float(np.median(lum[ring]))
            left, right = lm[L.MOUTH_LEFT], lm[L.MOUTH_RIGHT]
            runs = []
            for x in np.linspace(left[0], right[0], 9)[3:6].round().astype(int):
                ys = np.flatnonzero(lips[:, x])
                runs.append(int(np.sum(lum[ys, x] < 0.6 * skin)))
            thickness.append(np.mean(runs) / iod)
            px = frames[i][lips].astype(np.float32)
            redness.append(float(np.median(px[:, 0] - px[:, 1])))
    finally:
        mesh.close()
    assert len(thickness) >= 3
    assert np.mean(thickness) < 0.02, np.round(thickness, 3)  # a 0.035-iod line of 0.55 x the lips: 0.03
    assert np.mean(redness) > 25, np.round(redness, 1)


@pytest.mark.parametrize("inside_rgb, teeth", [((200, 120, 125), False), ((225, 220, 205), True)])
def test_a_closed_mouths_bright_lips_are_not_taken_for_teeth(inside_rgb, teeth):
    """Bright pink lips inside the inner contour (a closed smile) are no teeth; ivory there is."""
    from retalk.engines.builtin.library import LibraryEntry, measure_teeth

    h, w = 80, 140
    crop = np.full((h, w, 3), (205, 165, 145), np.uint8)  # skin
    pts = np.zeros((L.N_POINTS, 2))
    xs = np.linspace(30, 110, len(L.LIPS_OUTER) // 2)
    arc = np.sin(np.linspace(0, np.pi, len(xs)))
    pts[L.LIPS_OUTER] = np.concatenate([np.stack([xs, 40 - 14 * arc], 1), np.stack([xs[::-1], 40 + 16 * arc], 1)])
    pts[L.LIPS_INNER] = np.concatenate([np.stack([xs, 40 - 5 * arc], 1), np.stack([xs[::-1], 40 + 5 * arc], 1)])
    crop[polygon_mask((h, w), pts[L.LIPS_OUTER]) > 128] = (190, 105, 110)  # lips
    crop[polygon_mask((h, w), pts[L.LIPS_INNER]) > 128] = inside_rgb
    noise = np.random.default_rng(0).integers(-6, 7, crop.shape)  # a photo's grain
    crop = np.clip(crop.astype(int) + noise, 0, 255).astype(np.uint8)
    got = measure_teeth(LibraryEntry(0, 0, 0, crop), pts)
    assert (got is not None) == teeth, got
