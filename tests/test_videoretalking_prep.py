"""VideoReTalking Step 5 (GPEN reference enhancement) and the Step 7 Laplacian blend.

``tests/data/vrt_prep.npz`` was written once in a scratch folder by VideoReTalking's own
``FaceEnhancement.process(img, img, face_enhance=True)`` (its FaceGAN / FaceParse wrappers around the
stand-in networks of ``tests/_vrt_standins.py``, the detector replaced by the same 5 points retalk derives
from the 68 landmarks) and by ``Laplacian_Pyramid_Blending_with_mask`` on the inputs built here.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _bfm import face_landmarks  # noqa: E402
from _golden import digest, load_golden  # noqa: E402
from _vrt_standins import GpenStandIn, ParseStandIn  # noqa: E402
from retalk.videoretalking import blend, reference_enhance  # noqa: E402


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 13.0 + yy / 29.0), 128 + 90 * np.cos(yy / 11.0), (xx * 3 + yy * 5) % 256], -1)
    return (base + rng.integers(-20, 21, (h, w, 3))).clip(0, 255).astype(np.uint8)


def _blend_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = cv2.resize(_image(256, 256, 31), (512, 512))
    b = cv2.resize(_image(256, 256, 32), (512, 512))
    yy, xx = np.mgrid[0:512, 0:512]
    m = np.clip(1.2 - np.hypot(xx - 260, yy - 300) / 120, 0, 1).astype(np.float32)
    return a, b, m


def _independent_blend(a: np.ndarray, b: np.ndarray, m: np.ndarray, levels: int) -> np.ndarray:
    """Step 7's description, coded separately: uint8 Gaussian pyramids, float mask pyramid, bands, rebuild."""
    def gauss(x: np.ndarray) -> list[np.ndarray]:
        out = [x]
        for _ in range(levels):
            x = cv2.pyrDown(x)
            out.append(x.astype(np.float32))
        return out

    pa, pb, pm = gauss(a), gauss(b), gauss(m)
    result = None
    for i in range(levels - 1, -1, -1):
        if i == levels - 1:
            la, lb = pa[i], pb[i]
        else:
            la = pa[i] - cv2.pyrUp(pa[i + 1])
            lb = pb[i] - cv2.pyrUp(pb[i + 1])
        band = la * pm[i][..., None] + lb * (1 - pm[i][..., None])
        result = band if result is None else cv2.pyrUp(result) + band
    return result


@pytest.mark.parametrize("levels", [10, 6])
def test_blend_matches_reference_and_an_independent_version(levels: int) -> None:
    a, b, m = _blend_inputs()
    out = blend.laplacian_blend(a, b, m, levels)
    assert out.dtype == np.float32 and out.shape == (512, 512, 3)
    np.testing.assert_allclose(digest(out), load_golden("vrt_prep")[f"blend{levels}"], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(out, _independent_blend(a, b, m, levels), atol=1e-3)


def test_blend_with_a_constant_mask_rebuilds_one_image() -> None:
    a, b, _ = _blend_inputs()
    ones = np.ones((512, 512), np.float32)
    np.testing.assert_allclose(blend.laplacian_blend(a, b, ones, 6), a, atol=1e-3)
    np.testing.assert_allclose(blend.laplacian_blend(a, b, 0 * ones, 6), b, atol=1e-3)


def test_blend_hand_checked_small_case() -> None:
    # One level: no pyramid at all, plain per-pixel mixing a·m + b·(1 − m).
    a = np.full((4, 4, 3), 200, np.uint8)
    b = np.full((4, 4, 3), 100, np.uint8)
    m = np.array([[0, 0.25, 0.5, 1]] * 4, np.float32)
    out = blend.laplacian_blend(a, b, m, 1)
    np.testing.assert_allclose(out[0, :, 0], [100, 125, 150, 200])


def test_umeyama_recovers_a_similarity() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 100, (5, 2))
    ang, sc, t = 0.3, 1.7, np.array([4.0, -9.0])
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = sc * src @ r.T + t
    m, scale = reference_enhance.umeyama(src, dst)
    assert scale == pytest.approx(sc, rel=1e-12)
    np.testing.assert_allclose(m[:2, :2], sc * r, atol=1e-12)
    np.testing.assert_allclose(m[:2, 2], t, atol=1e-9)


def _frames() -> tuple[list[np.ndarray], np.ndarray]:
    frames = [_image(256, 256, 21), _image(256, 256, 22)]
    lms = np.stack([face_landmarks(128, 130, 60, 5), face_landmarks(126, 128, 75, -7)])
    return frames, lms


def test_face_warp_puts_the_five_points_on_the_template() -> None:
    _, lms = _frames()
    from retalk.face.landmarks68 import five_points

    for lm, small in zip(lms, (True, False)):  # face boxes 90 px and 112 px wide
        wp = reference_enhance.face_warp(lm)
        assert wp.small is small
        p = five_points(lm).astype(np.float64)
        mapped = p @ wp.forward[:, :2].T + wp.forward[:, 2]
        np.testing.assert_allclose(mapped, reference_enhance.TEMPLATE_512, atol=12.0)  # a best fit, not exact
        # Upright template, upright face: the warp's rotation is the face's roll (5 and -7 degrees on screen).
        roll = np.degrees(np.arctan2(wp.forward[1, 0], wp.forward[0, 0]))
        assert roll == pytest.approx(5.0 if small else -7.0, abs=1.0)
        # The inverse (fitted the other way, scale fixed to 1/scale) undoes the forward warp.
        fwd = np.vstack([wp.forward, [0, 0, 1]])
        inv = np.vstack([wp.inverse, [0, 0, 1]])
        np.testing.assert_allclose(inv @ fwd, np.eye(3), atol=2e-3)


def test_enhance_references_matches_reference() -> None:
    torch.set_num_threads(1)
    frames, lms = _frames()
    gpen, parse = GpenStandIn().eval(), ParseStandIn().eval()
    out = reference_enhance.enhance_references(frames, lms, gpen, parse, batch_size=2)
    gold = load_golden("vrt_prep")
    for k in range(2):
        assert out[k].shape == (256, 256, 3) and out[k].dtype == np.uint8
        assert np.abs(out[k].astype(int) - frames[k]).max() > 30  # the face really changed
        got = out[k][::4, ::4].astype(int)
        diff = np.abs(got - gold[f"enhance{k}"].astype(int))
        # GPEN's output is truncated to uint8 and then filtered and warped: a float ulp in the network (another
        # conv algorithm for another memory layout) moves a few values by 1-2 levels.
        assert diff.max() <= 3 and (diff > 0).mean() < 0.005, (k, diff.max(), (diff > 0).mean())


def test_enhance_references_leaves_frames_without_landmarks() -> None:
    frames, lms = _frames()
    lms = lms.copy()
    lms[1] = np.nan
    out = reference_enhance.enhance_references(frames, lms, GpenStandIn().eval(), ParseStandIn().eval())
    np.testing.assert_array_equal(out[1], frames[1])
    assert not np.array_equal(out[0], frames[0])


def test_face_blend_matches_reference() -> None:
    from retalk.videoretalking import face_blend

    torch.set_num_threads(1)
    pp, orig = _image(256, 256, 41), _image(256, 256, 42)
    lm = face_landmarks(128, 130, 70, 3)
    out = face_blend.blend_faces([pp, pp], [orig, orig], [lm, None], [(60, 220, 50, 210)] * 2, ParseStandIn().eval())
    assert out[0].shape == (256, 256, 3) and out[0].dtype == np.uint8
    got = out[0][::4, ::4].astype(int)
    diff = np.abs(got - load_golden("vrt_prep")["faceblend"].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.005, (diff.max(), (diff > 0).mean())
    # The frame without landmarks is pp, unblended.
    np.testing.assert_array_equal(out[1], pp)


def test_warp_to_template_is_the_references_flags_3_warp() -> None:
    frames, lms = _frames()
    wp = reference_enhance.face_warp(lms[1])
    ours = reference_enhance.warp_to_template(frames[1], wp)
    np.testing.assert_array_equal(ours, cv2.warpAffine(frames[1], wp.forward, (512, 512), flags=3))
    assert not np.array_equal(ours, cv2.warpAffine(frames[1], wp.forward, (512, 512), flags=cv2.INTER_CUBIC))
