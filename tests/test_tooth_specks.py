"""No tooth specks: a photo whose teeth show, rendered by the built-in engine through closures, keeps its lips clean.

The astronaut photo smiles with her teeth showing; every p/b/m closes the mouth, which squeezes the teeth between
the lips. Bright isolated pixels (a white top-hat on brightness, a measure independent of the engine's own speck
filter) are counted on the lips and the skin around them, outside the inner lip contour of the face mesh run
afresh on each output frame.
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
