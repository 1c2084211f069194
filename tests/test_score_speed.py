"""`score_clip` gives the same values after the speed work of issue 16 (item 2) as before it.

The literals below were recorded from ``score_clip`` at commit 07c8b1f (before any of the speed
changes: one decode + face-mesh pass per video, per-frame CPBD with a Python loop over columns,
a second decoding pass for the SyncNet crops), on the clips this module generates, with SyncNet
built from ``torch.manual_seed(0)`` as tests/test_evaluate.py builds it.  They depend on the
installed mediapipe, libx264 (through PyAV) and torch builds, like every golden of the project.
Floats must match to 1e-9 relative (the faster code may sum in another order); integers exactly.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from retalk.evaluate.clip import ClipTask, score_clip

GROUPS = ("sharpness", "sync", "mouth", "jitter", "reference", "lse")

# Recorded at 07c8b1f (see the module docstring) with repr() of each value.
PINNED = {
    "paired": {
        "frames": 40, "fps": 25.0, "duration_s": 1.6, "face_fraction": 1.0,
        "cpbd": 0.43876865328815196, "cpbd_face": 0.3646012589010609,
        "av_offset": 12, "av_confidence": 0.38668724512942776,
        "mouth_open_mean": 0.11472265925258399, "mouth_open_std": 0.0048677799206299785,
        "mouth_open_range": 0.014684569090604768, "mouth_speed": 0.003833847932326488,
        "landmark_jitter": 0.008575767322650443,
        "lmd_mouth": 0.029179268876577836, "lmd_face": 0.026843360044056006,
        "psnr": 19.778158848993296, "ssim": 0.7047231650830811, "psnr_outside": 19.64300164766462,
        "lse_d": 6.827463697743549, "lse_c": 0.0556321300379965, "lse_offset": -15,
    },
    "step3_30fps": {
        "frames": 36, "fps": 30.0, "duration_s": 1.2, "face_fraction": 1.0,
        "cpbd": 0.33821808234464523, "cpbd_face": 0.2584480334125936,
        "av_offset": -9, "av_confidence": 0.39394059149008126,
        "mouth_open_mean": 0.11777579349776109, "mouth_open_std": 0.0043614841724482,
        "mouth_open_range": 0.014998195692896843, "mouth_speed": 0.0029687628149986265,
        "landmark_jitter": 0.004399404372163135,
        "lse_d": 6.80544824124004, "lse_c": 0.08291468691731918, "lse_offset": -15,
    },
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 1.6 s 256×256 25 fps source and a rendition of it (another head motion, same sound), and a
    1.2 s 320×240 30 fps clip (SyncNet resamples it to 25 fps)."""
    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip

    d = tmp_path_factory.mktemp("score_pins")

    def make(name, seconds, w, h, fps, motion, rate):
        wav = d / f"{name}.wav"
        write_wav(wav, vowel_speech(seconds, syllable_rate=rate, seed=int(rate)), 16000)
        return write_face_clip(d / f"{name}.mp4", seconds, fps=fps, width=w, height=h, motion=motion, audio_path=wav)

    return {"src": make("src", 1.6, 256, 256, 25.0, 1.0, 3.0), "out": make("out", 1.6, 256, 256, 25.0, 0.8, 3.0),
            "other": make("other", 1.2, 320, 240, 30.0, 0.6, 5.0)}


@pytest.fixture(scope="module")
def syncnet():
    torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
    from retalk.networks.syncnet import SyncNetV2

    torch.manual_seed(0)
    return SyncNetV2().eval()


def _check(values, pinned):
    assert set(values) == set(pinned)
    for k, want in pinned.items():
        got = values[k]
        if isinstance(want, int):
            assert got == want, k
        else:
            assert isinstance(got, float) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (k, got, want)


@pytest.mark.parametrize("case", ["paired", "step3_30fps"])
def test_score_clip_values_are_pinned(clips, syncnet, case):
    if case == "paired":
        task = ClipTask(case, str(clips["src"]), str(clips["src"]), "a", str(clips["out"]), "builtin", "paired",
                        GROUPS, True, render=False, frame_step=1)
    else:
        task = ClipTask(case, str(clips["other"]), str(clips["other"]), "a", str(clips["other"]), "builtin",
                        "unpaired", GROUPS, True, render=False, frame_step=3)
    values, notes = score_clip(task, syncnet)
    assert notes == []
    _check(values, PINNED[case])


# ----------------------------------------------------------------------------- the faster pieces
def _pictures(shape, seed, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, shape).astype(np.float64)
    from scipy.ndimage import gaussian_filter

    a = gaussian_filter(base, 1.5)
    b = np.clip(a + rng.normal(0, 6, shape), 0, 255)
    if dtype == np.uint8:
        return np.round(a).astype(np.uint8), np.round(b).astype(np.uint8)
    return a / 255.0, b / 255.0


@pytest.mark.parametrize("shape, dtype", [((70, 90, 3), np.uint8), ((64, 80), np.uint8), ((33, 41, 3), np.float64),
                                          ((7, 7, 3), np.uint8)])
def test_ssim_matches_scikit_image(shape, dtype):
    """The box-filter SSIM against scikit-image's structural_similarity (the reference) to 1e-9."""
    from skimage.metrics import structural_similarity

    from retalk.metrics import ssim

    a, b = _pictures(shape, 1, dtype)
    rng = 255.0 if dtype == np.uint8 else 1.0
    want = structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=rng,
                                 channel_axis=-1 if len(shape) == 3 else None)
    assert math.isclose(ssim(a, b), want, rel_tol=1e-9, abs_tol=1e-12)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_psnr_and_outside_equals_the_two_functions():
    from retalk.metrics import psnr, psnr_and_outside, psnr_outside

    a, b = _pictures((60, 80, 3), 2)
    for box in ((10.2, 5.7, 40.1, 33.0), (-5, -5, 30, 90), (70, 50, 200, 200), (100, 100, 120, 120)):
        whole, outside = psnr_and_outside(a, b, box)
        assert whole == psnr(a, b) and outside == psnr_outside(a, b, box)  # integer sums: to the bit
    assert psnr_and_outside(a, b, None) == (psnr(a, b), None)
    with pytest.raises(ValueError, match="covers the whole picture"):
        psnr_and_outside(a, b, (-1, -1, 80, 60))
    fa, fb = a / 255.0, b / 255.0
    whole, outside = psnr_and_outside(fa, fb, (10, 5, 40, 33))
    assert math.isclose(whole, psnr(fa, fb), rel_tol=1e-12)
    assert math.isclose(outside, psnr_outside(fa, fb, (10, 5, 40, 33)), rel_tol=1e-12)


def test_cpbd_pieces_equal_their_slow_forms():
    """OpenCV's Sobel response equals scipy's to the bit on whole grey levels; the vectorised run lengths equal a
    column loop; the face window of a shared grey picture gives cpbd_face's value."""
    from retalk.metrics import cpbd_face
    from retalk.metrics.cpbd import (_runs_ending_at, _runs_starting_at, cpbd_gray, face_window, sobel_vertical_edges,
                                     to_gray255)

    a, _ = _pictures((130, 150, 3), 3)
    gray = to_gray255(a)
    assert np.array_equal(sobel_vertical_edges(gray, integral=True), sobel_vertical_edges(gray, integral=False))
    cond = np.random.default_rng(4).random((5, 40)) < 0.6
    loop = np.zeros(cond.shape, np.int64)
    for r in range(cond.shape[0]):
        run = 0
        for c in range(cond.shape[1]):
            run = run + 1 if cond[r, c] else 0
            loop[r, c] = run
    rows, cols = np.indices(cond.shape).reshape(2, -1)
    assert np.array_equal(_runs_ending_at(cond, rows, cols), loop.ravel())
    flipped = cond[:, ::-1]
    assert np.array_equal(_runs_starting_at(cond, rows, cols),
                          _runs_ending_at(flipped, rows, cond.shape[1] - 1 - cols))
    every = np.ones((2, 6), bool)  # no False at all, and a row of False only
    every[1] = False
    r, c = np.indices(every.shape).reshape(2, -1)
    assert _runs_ending_at(every, r, c).tolist() == [1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0]
    assert _runs_starting_at(every, r, c).tolist() == [6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0]
    full = np.ones((2, 3), bool)
    r, c = np.indices(full.shape).reshape(2, -1)
    assert _runs_ending_at(full, r, c).tolist() == [1, 2, 3, 1, 2, 3]
    assert _runs_starting_at(full, r, c).tolist() == [3, 2, 1, 3, 2, 1]
    box = (20.4, 10.5, 100.2, 90.9)
    rows, cols = face_window(a.shape, box)
    assert cpbd_gray(gray[rows, cols], True) == cpbd_face(a, box)
    with pytest.raises(ValueError, match="outside"):
        face_window(a.shape, (200, 200, 300, 300))


def _canny_pictures(clips):
    """Pictures for the Canny comparison: decoded frames of the generated clips (H.264, as a rendered video is),
    generated faces, random, blurred, flat, stepped and ramped pictures of odd sizes, 0..1 floats and negatives."""
    from scipy.ndimage import gaussian_filter

    from retalk.media import iter_frames, probe_video
    from retalk.metrics.cpbd import to_gray255
    from retalk.samples import astronaut, moving_frames

    rng = np.random.default_rng(7)
    frames = iter_frames(probe_video(clips["out"]))
    pics = [to_gray255(next(frames)) for _ in range(3)]
    frames.close()
    pics += [to_gray255(f) for f in moving_frames(2, 200, 168, motion=1.0)]
    face = to_gray255(astronaut(160))
    pics += [face, face[3:97, 11:140], face[:, ::-1].copy()]
    for shape in [(1, 1), (1, 6), (6, 1), (2, 3), (8, 8), (9, 9), (10, 13), (17, 9), (64, 64), (67, 130)]:
        noise = rng.integers(0, 256, shape).astype(np.float64)
        pics += [noise, np.round(gaussian_filter(noise, 1.5)), np.full(shape, 128.0), rng.random(shape),
                 rng.normal(0, 50, shape)]
    step = np.zeros((60, 70))
    step[20:40, 25:50] = 255.0
    pics += [step, np.tile(np.arange(70.0), (60, 1)), -np.tile(np.arange(70.0), (60, 1)), step * 1e-3]
    return pics


def test_canny_equals_scikit_image(clips):
    """retalk.metrics.canny's edge map against skimage.feature.canny (the reference), pixel for pixel; its
    Gaussian and Sobel steps against scipy's, bit for bit."""
    from scipy import ndimage as ndi
    from skimage.feature import canny

    from retalk.metrics.canny import canny_edges, gaussian_constant, sobel_pair

    pics = _canny_pictures(clips)
    for pic in pics:
        assert np.array_equal(canny_edges(pic), canny(pic)), pic.shape
    assert sum(int(canny(p).sum()) for p in pics) > 1000  # the pictures do have edges
    for pic in pics[:4] + pics[-6:]:
        assert np.array_equal(gaussian_constant(pic), ndi.gaussian_filter(pic, 1.0, mode="constant", cval=0.0))
        isobel, jsobel = sobel_pair(pic)
        assert np.array_equal(isobel, ndi.sobel(pic, axis=0)) and np.array_equal(jsobel, ndi.sobel(pic, axis=1))


def test_cpbd_uint8_route_equals_float_route(clips):
    """CPBD of uint8 grey (integer Sobel strength, uint8 comparisons, gradients at the edge pixels only) equals
    the float64 route, which takes the whole-picture gradient and scipy's Sobel; and so does cpbd() of colour."""
    from retalk.media import iter_frames, probe_video
    from retalk.metrics import cpbd
    from retalk.metrics.cpbd import _edge_width_points, cpbd_gray, gray8, sobel_vertical_edges

    frames = iter_frames(probe_video(clips["src"]))
    pictures = [next(frames) for _ in range(2)]
    frames.close()
    rng = np.random.default_rng(3)
    pictures += [rng.integers(0, 256, (70, 131)).astype(np.uint8), np.full((64, 64), 9, np.uint8),
                 np.repeat((np.arange(64) // 8 % 2 * 200).astype(np.uint8)[:, None], 65, axis=1)]
    for pic in pictures:
        g8 = gray8(pic)
        g64 = g8.astype(np.float64)
        assert g8.dtype == np.uint8
        edges = sobel_vertical_edges(g64, integral=False)  # scipy's convolution
        assert np.array_equal(sobel_vertical_edges(g8), edges)
        slow = _edge_width_points(g64, edges, integral=False)
        fast = _edge_width_points(g64, edges, integral=True, same=g8)
        assert all(np.array_equal(s, f) for s, f in zip(slow, fast))
        assert cpbd_gray(g8) == cpbd_gray(g64, integral=False) == cpbd(pic)
