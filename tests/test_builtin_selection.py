"""The built-in engine's appearance measure, which makes its jumps go to look-alike mouths."""
import numpy as np

from retalk.engines.builtin.engine import LibraryEntry, mouth_patches, pairwise_rms
from retalk.face.tracker import FaceMesh
from retalk.samples import astronaut


def test_pairwise_rms_matches_brute_force():
    x = np.random.default_rng(0).normal(size=(7, 50)).astype(np.float32)
    d = pairwise_rms(x)
    brute = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).mean(-1))
    np.testing.assert_allclose(d, brute, atol=1e-4)
    assert np.allclose(np.diag(d), 0.0, atol=1e-4)


def test_mouth_patches_align_crops_and_see_the_mouth():
    img = astronaut(384)
    lm = FaceMesh(static=True)(img)[0]
    # the same face cropped at two different places: same patch after alignment
    a = LibraryEntry(0, 10, 40, img[40:, 10:].copy())
    b = LibraryEntry(1, 30, 60, img[60:, 30:].copy())
    # the same face with the mouth painted dark: a different patch
    dark = img.copy()
    c0, c1 = lm[[61, 291], 0].astype(int)
    y0 = int(lm[13, 1]) - 4
    dark[y0:y0 + 8, c0:c1] = 20
    c = LibraryEntry(2, 10, 40, dark[40:, 10:].copy())
    landmarks = np.stack([lm, lm, lm])
    p = mouth_patches([a, b, c], landmarks)
    d = pairwise_rms(p)
    assert d[0, 1] < 1.0  # grey levels: alignment removes the crop offset
    assert d[0, 2] > 5 * max(d[0, 1], 0.5)
