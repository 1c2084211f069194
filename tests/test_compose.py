"""Masks and blending used by every renderer."""
import cv2
import numpy as np
import pytest

from retalk.compose.blend import feather, laplacian_blend, polygon_mask


@pytest.mark.parametrize("shape", [(421, 463), (200, 97)])
@pytest.mark.parametrize("sigma", [2.0, 6.0, 9.0, 12.0])
def test_feather_matches_a_full_size_gaussian(shape, sigma):
    h, w = shape
    poly = np.array([[0.13, 0.1], [0.86, 0.14], [0.93, 0.7], [0.5, 0.95], [0.09, 0.66]]) * (w, h)
    m = polygon_mask(shape, poly).astype(np.float32) / 255.0
    k = int(2 * round(3 * sigma) + 1)
    ref = np.clip(cv2.GaussianBlur(m, (k, k), sigma), 0, 1)
    out = feather(m, sigma)
    assert out.shape == m.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - ref).max() < 0.012
    assert out[h // 2, w // 2] > 0.99 and out[-1, 0] < 0.01


def test_laplacian_blend_keeps_each_side_where_the_mask_is_flat():
    rng = np.random.default_rng(0)
    fg = rng.uniform(0, 255, (64, 80, 3)).astype(np.float32)
    bg = rng.uniform(0, 255, (64, 80, 3)).astype(np.float32)
    assert np.array_equal(laplacian_blend(fg, bg, np.zeros((64, 80), np.float32)), bg)
    assert np.allclose(laplacian_blend(fg, bg, np.ones((64, 80), np.float32)), fg, atol=1e-3)
    half = np.zeros((64, 80), np.float32)
    half[:, :40] = 1.0
    out = laplacian_blend(fg, bg, feather(half, 3.0))
    assert np.allclose(out[:, :8], fg[:, :8], atol=2.0) and np.allclose(out[:, -8:], bg[:, -8:], atol=2.0)
