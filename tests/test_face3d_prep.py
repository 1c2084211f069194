"""Crop boxes, aligned crops and the 224 alignment against numbers VideoReTalking's code produced once.

The expected values below were computed by running the reference functions (VRT ``utils/ffhq_preprocess.py``
``Croper.align_face``, ``utils/alignment_stit.py`` ``crop_faces`` / ``calc_alignment_coefficients`` /
``paste_image`` and ``third_part/face3d/util/preprocess.py`` ``align_img``) in a scratch folder on exactly the
inputs these tests build; only the numbers are stored.
"""
from __future__ import annotations

import numpy as np
import pytest

from _bfm import face_landmarks, mean_face_68, write_bfm
from retalk.errors import CheckpointError
from retalk.face3d import align, crop


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 13.0 + yy / 29.0), 128 + 90 * np.cos(yy / 11.0), (xx * 3 + yy * 5) % 256], -1)
    return (base + rng.integers(-20, 21, (h, w, 3))).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("w,h,lm,border,inner", [
    (400, 300, face_landmarks(200, 150, 60, 8), (94, 34, 303, 243), (17, 16, 192, 192)),
    # Portrait frame, face low: ry is clipped with the image *width* (200), as the reference writes it.
    (200, 360, face_landmarks(100, 250, 70, -5), (0, 119, 200, 353), (3, 19, 199, 200)),
    # qsize > 2048 px: shrink 2, boxes in the shrunken image's coordinates.
    (2400, 2400, face_landmarks(1200, 1200, 900, 3), (0, 0, 1200, 1200), (0, 0, 1200, 1124)),
])
def test_croper_box_matches_reference(w: int, h: int, lm: np.ndarray, border: tuple, inner: tuple) -> None:
    box = crop.croper_box(lm, w, h)
    assert box.border == border
    assert box.inner == inner


def test_croper_box_sizes_and_sadtalker_cut() -> None:
    assert crop.croper_box(face_landmarks(200, 150, 60, 8), 400, 300).size == (400, 300)
    big = crop.croper_box(face_landmarks(1200, 1200, 900, 3), 2400, 2400)
    assert big.shrink == 2 and big.size == (1200, 1200)
    frame = np.zeros((2400, 2400, 3), np.uint8)
    frame[1200:] = 255  # lower half white: in the half-size image it starts at row 600
    cut = big.cut_resized(frame)
    assert cut.shape == (1124, 1200, 3)
    assert cut[599, 0, 0] == 0 and cut[601, 0, 0] == 255
    assert big.cut_resized(frame, inner=False).shape == (1200, 1200, 3)
    # No shrink: SadTalker's resize is a no-op and both cuts agree.
    small = crop.croper_box(face_landmarks(200, 150, 60, 8), 400, 300)
    img = _image(300, 400, 1)
    np.testing.assert_array_equal(small.cut_resized(img), small.cut(img))


def test_croper_box_cut_and_region() -> None:
    frame = _image(300, 400, 1)
    box = crop.croper_box(face_landmarks(200, 150, 60, 8), 400, 300)
    cut = box.cut(frame)
    oy1, oy2, ox1, ox2 = box.region(300, 400)
    assert (oy1, oy2, ox1, ox2) == (34 + 16, 34 + 192, 94 + 17, 94 + 192)
    np.testing.assert_array_equal(cut, frame[oy1:oy2, ox1:ox2])


def test_face_quad_is_a_square_around_the_face() -> None:
    lm = face_landmarks(200, 150, 60, 8)
    q = crop.face_quad(lm)
    c = q.corners
    sides = np.linalg.norm(np.roll(c, -1, 0) - c, axis=1)
    np.testing.assert_allclose(sides, q.size, rtol=1e-12)
    assert np.dot(c[1] - c[0], c[3] - c[0]) == pytest.approx(0.0, abs=1e-9)
    # x axis of the quad follows the eye line (8 degrees counter-clockwise on screen: y decreases to the right).
    ang = np.degrees(np.arctan2(-(c[3, 1] - c[0, 1]), c[3, 0] - c[0, 0]))
    assert ang == pytest.approx(8.0, abs=1e-6)
    # Every landmark lies inside the quad's bounding box.
    assert (lm.min(0) > c.min(0)).all() and (lm.max(0) < c.max(0)).all()


AL_CROP = [([8387544, 8788835, 8303469], [92, 199, 239], [225, 211, 1], [216, 100, 186]),
           ([8099721, 8407432, 8342429], [182, 176, 48], [213, 169, 27], [118, 98, 130])]
AL_INV = [[1.6300708950478446, -0.2290915242140952, -164.35094006288116, 0.2290915242141042, 1.6300708950478036,
           -143.70296475406903, -9.269928574751063e-17, -3.252606517456513e-17],
          [1.7913608085474721, 0.1252641503822613, -233.3591301646402, -0.1252641503822534, 1.791360808547442,
           -116.09503356848319, 9.063930161978817e-17, 1.1319070680748666e-16]]
AL_PASTE = [([15233515, 15646327, 15285686], [217, 169, 63], [184, 37, 189]),
            ([15235641, 15650908, 15290250], [218, 169, 61], [183, 39, 186])]


def test_aligned_crops_and_paste_match_reference() -> None:
    frame = _image(300, 400, 1)
    lms = np.stack([face_landmarks(200, 150, 60, 8), face_landmarks(190, 160, 55, -4)])
    res = crop.aligned_crops([frame, frame], lms, 256)
    assert res.crops.shape == (2, 256, 256, 3) and res.crops.dtype == np.uint8
    bg = _image(300, 400, 2)
    for k in range(2):
        a = res.crops[k].astype(np.int64)
        sums, p0, p1, p2 = AL_CROP[k]
        assert a.sum((0, 1)).tolist() == sums
        assert [a[10, 20].tolist(), a[128, 128].tolist(), a[200, 77].tolist()] == [p0, p1, p2]
        np.testing.assert_allclose(res.inverse[k][:6], AL_INV[k][:6], rtol=1e-9)
        np.testing.assert_allclose(res.inverse[k][6:], 0.0, atol=1e-12)
        pasted = crop.paste_crop(res.crops[k], res.inverse[k], bg).astype(np.int64)
        psum, q0, q1 = AL_PASTE[k]
        assert pasted.sum((0, 1)).tolist() == psum
        assert [pasted[150, 200].tolist(), pasted[100, 150].tolist()] == [q0, q1]


def test_perspective_coefficients_map_the_points() -> None:
    src = np.array([[10.0, 20.0], [15.0, 200.0], [220.0, 190.0], [205.0, 5.0]])
    dst = np.array([[0.0, 0.0], [0.0, 256.0], [256.0, 256.0], [256.0, 0.0]])
    a, b, c, d, e, f, g, h = crop.perspective_coefficients(src, dst)
    for (x, y), (u, v) in zip(src, dst):
        den = g * x + h * y + 1
        assert (a * x + b * y + c) / den == pytest.approx(u, abs=1e-6)
        assert (d * x + e * y + f) / den == pytest.approx(v, abs=1e-6)


def test_smoothed_quads_sigma_zero_is_raw_and_sigma_smooths() -> None:
    rng = np.random.default_rng(0)
    lms = np.stack([face_landmarks(200 + rng.normal(0, 3), 150, 60, 0) for _ in range(9)])
    raw = crop.smoothed_quads(lms)
    np.testing.assert_allclose(raw[4], crop.face_quad(lms[4]).corners)
    sm = crop.smoothed_quads(lms, center_sigma=2.0)
    assert np.std(sm[:, 0, 0]) < np.std(raw[:, 0, 0])


def test_reduce_to_5_and_load_lm3d(tmp_path) -> None:
    write_bfm(tmp_path)
    lm5 = align.load_lm3d(tmp_path)
    # Reference numbers (load_lm3d on the same stand-in file).
    np.testing.assert_allclose(lm5, [[-0.31, 0.27, 0.25], [0.31, 0.27, 0.25], [0.0, -0.09, 0.55],
                                     [-0.25, -0.45, 0.4], [0.25, -0.45, 0.4]], atol=1e-12)
    top = tmp_path / "top"
    write_bfm(top, in_bfm=False)
    np.testing.assert_allclose(align.load_lm3d(top), lm5)


def test_missing_lm3d_is_a_one_line_checkpoint_error(tmp_path) -> None:
    with pytest.raises(CheckpointError) as err:
        align.load_lm3d(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "similarity_Lm3D_all.mat" in msg and str(tmp_path / "BFM") in msg
    assert "BFM.zip" in msg and "src/config" in msg


def test_pos_recovers_a_known_similarity() -> None:
    x = mean_face_68().T  # (3, 68)
    xp = 37.5 * x[:2] + np.array([[12.0], [-4.0]])
    t, s = align.pos(xp, x)
    assert s == pytest.approx(37.5, rel=1e-12)
    np.testing.assert_allclose(t, [12.0, -4.0], atol=1e-9)


def test_align_img_matches_reference() -> None:
    img = _image(256, 256, 3)
    lm = face_landmarks(128, 135, 60, 6) + np.random.default_rng(5).normal(0, 1.5, (68, 2))
    lm5 = align.reduce_to_5(mean_face_68())
    a = align.align_img(img, align.flip_y(lm, 256), lm5)
    np.testing.assert_allclose(a.trans_params, [256.0, 256.0, 1.696304210493735, 127.24289408807854, 120.87516282004239],
                               rtol=1e-6)
    assert a.image.shape == (224, 224, 3) and a.image.dtype == np.uint8
    im = a.image.astype(np.int64)
    assert im.sum((0, 1)).tolist() == [6125957, 6200381, 6459516]
    assert [im[0, 0].tolist(), im[112, 112].tolist(), im[50, 180].tolist()] == [[184, 195, 1], [210, 206, 33], [96, 33, 220]]
    # The no-landmark fallback: the standard points placed in the frame.
    b = align.align_img(img, align.standard_points(lm5, 256, 256), lm5)
    np.testing.assert_allclose(b.trans_params, [256.0, 256.0, 0.7968749999999997, 128.0, 128.0], rtol=1e-6)
    assert b.image.astype(np.int64).sum((0, 1)).tolist() == [5284565, 5110858, 5255177]


def test_modules_import_without_torch() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import sys; sys.modules['torch'] = None\n"
            "import retalk.face.landmarks68, retalk.face3d.crop, retalk.face3d.align, retalk.face3d.coeffs\n"
            "import retalk.face3d.templates, retalk.videoretalking.blend, retalk.videoretalking.reference_enhance\n"
            "print('OK')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(root)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"
