"""The 68-point layout read off the face mesh, checked on a real face (the astronaut photo) by geometry."""
from __future__ import annotations

import numpy as np
import pytest

from retalk.face.landmarks68 import MESH_68, MIRROR_68, five_points, mesh_to_68


@pytest.fixture(scope="module")
def astronaut_68() -> tuple[np.ndarray, np.ndarray]:
    """68 points of the photo and of its mirror image (mirrored back to the photo's coordinates, re-labelled)."""
    from retalk.face.tracker import FaceMesh
    from retalk.samples import astronaut

    img = astronaut()
    mesh = FaceMesh(static=True)
    try:
        a = mesh(img)
        b = mesh(np.ascontiguousarray(img[:, ::-1]))
    finally:
        mesh.close()
    assert len(a) == 1 and len(b) == 1
    lm = mesh_to_68(a[0])
    flipped = mesh_to_68(b[0])
    flipped[:, 0] = img.shape[1] - 1 - flipped[:, 0]
    return lm, flipped[MIRROR_68]


def test_shapes_and_tables() -> None:
    pts = np.random.default_rng(0).uniform(0, 100, (478, 3))
    out = mesh_to_68(pts)
    assert out.shape == (68, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[30], pts[4, :2].astype(np.float32))
    batch = mesh_to_68(np.stack([pts[:, :2], pts[:, :2] + 1]))
    assert batch.shape == (2, 68, 2)
    np.testing.assert_allclose(batch[1] - batch[0], 1.0, atol=1e-4)
    with pytest.raises(ValueError):
        mesh_to_68(np.zeros((68, 2)))
    assert len(set(MESH_68.tolist())) == 68
    np.testing.assert_array_equal(MIRROR_68[MIRROR_68], np.arange(68))  # pairs, an involution


def test_layout_order_on_a_real_face(astronaut_68: tuple[np.ndarray, np.ndarray]) -> None:
    lm, _ = astronaut_68
    x, y = lm[:, 0], lm[:, 1]
    # Jaw: down to the chin, then up; the chin is the lowest point and the jaw runs image-left → right.
    assert np.all(np.diff(y[0:9]) > 0) and np.all(np.diff(y[8:17]) < 0)
    assert y[8] == y.max()
    assert x[:8].max() < x[8] < x[9:17].min()
    # Eye corners and mouth corners, image-left to image-right.
    assert x[36] < x[39] < x[42] < x[45]
    assert x[48] < x[51] < x[54] and x[60] < x[62] < x[64]
    # Upper lids above lower lids; brows above the eyes; upper lip above lower lip.
    assert y[37] < y[41] and y[38] < y[40] and y[43] < y[47] and y[44] < y[46]
    assert y[17:27].max() < y[36:48].min()
    assert y[51] < y[62] <= y[66] < y[57]
    # Nose ridge runs down, between the eyes, to above the nose base; the base runs left → right.
    assert np.all(np.diff(y[27:31]) > 0) and y[30] < y[33]
    assert np.all(np.diff(x[31:36]) > 0)
    # Eyes in clockwise order around their centres (image coordinates, y down).
    for eye in (slice(36, 42), slice(42, 48)):
        p = lm[eye] - lm[eye].mean(0)
        area = 0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])
        assert area > 0  # positive shoelace area with y down = clockwise on screen


def test_mirror_pairs_swap_under_a_horizontal_flip(astronaut_68: tuple[np.ndarray, np.ndarray]) -> None:
    lm, mirrored = astronaut_68
    iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
    err = np.linalg.norm(lm - mirrored, axis=1)
    assert err.max() < 0.08 * iod, (err.argmax(), err.max(), iod)  # a wrong pair would be off by ~0.3 iod or more


def test_five_points() -> None:
    lm = np.zeros((68, 2), np.float32)
    lm[36:42] = [10, 20]
    lm[42:48] = [30, 20]
    lm[30] = [20, 30]
    lm[48] = [12, 40]
    lm[54] = [28, 40]
    np.testing.assert_allclose(five_points(lm), [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
    assert five_points(np.stack([lm, lm])).shape == (2, 5, 2)
