"""Tests for retalk.metrics: every input is generated here; no weights are needed."""
from __future__ import annotations

import importlib
import importlib.util
import itertools
import math

import numpy as np
import pytest

from retalk.errors import CheckpointError, InputError
from retalk.metrics import avsync, image, landmark_metrics, lse

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch (retalk[neural]) not installed")

# ``retalk.metrics.cpbd`` / ``.fid`` are the functions; the modules by their full names:
cpbd_mod = importlib.import_module("retalk.metrics.cpbd")
fid_mod = importlib.import_module("retalk.metrics.fid")

# ----------------------------------------------------------------------------------------------
# generated pictures
# ----------------------------------------------------------------------------------------------


def _scene(h: int = 128, w: int = 192, seed: int = 0) -> np.ndarray:
    """Grey uint8 picture with sharp rectangles of low and high contrast, a long ramp and texture."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 100.0)
    img[:, : w // 2] += np.linspace(0, 120, w // 2)[None, :]  # long ramp (> 100 px wide edges)
    for _ in range(14):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y:y + rng.integers(6, 40), x:x + rng.integers(6, 40)] = rng.integers(0, 256)
    img[h // 2:h // 2 + 20, w // 2:w // 2 + 60] = 120 + 30 * (rng.random((20, 60)) > 0.5)  # contrast ≤ 50
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    if sigma == 0:
        return img
    return np.clip(np.round(gaussian_filter(img.astype(np.float64), sigma)), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# CPBD: literal values from the reference ``cpbd`` package (1.0.7, ``cpbd.compute``), computed once
# on exactly these generated pictures (see tests/data/README.md)
# ----------------------------------------------------------------------------------------------

CPBD_SCENE3 = {0.0: 0.8197969543147209, 0.7: 0.3912037037037037, 1.5: 0.002840909090909091}
CPBD_PINK = {0.0: 0.7583624050892674, 0.5: 0.6546408307461729, 1.0: 0.28453809656712253, 1.5: 0.07659656569554311,
             2.0: 0.009934714731762702, 3.0: 0.0005640157924421884, 5.0: 0.0}


@pytest.mark.parametrize("sigma", sorted(CPBD_SCENE3))
def test_cpbd_equals_reference_package(sigma):
    img = _blur(_scene(seed=3), sigma)
    assert cpbd_mod.cpbd(img) == pytest.approx(CPBD_SCENE3[sigma], abs=1e-12)


def test_cpbd_equals_reference_package_noise_and_flat_directions():
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (64, 130)).astype(np.uint8)
    assert cpbd_mod.cpbd(noise) == pytest.approx(0.8840947546531304, abs=1e-12)
    # only horizontal stripes: every horizontal gradient is 0 → no widths → 0 (as the reference)
    stripes = np.repeat((np.arange(64) // 8 % 2 * 200).astype(np.uint8)[:, None], 64, axis=1)
    assert cpbd_mod.cpbd(stripes) == 0.0


def _pink_noise(n: int = 256, seed: int = 0) -> np.ndarray:
    """Grey uint8 picture with a natural 1/f amplitude spectrum."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(n)
    radius = np.hypot(f[:, None], f[None, :])
    radius[0, 0] = 1.0
    img = np.real(np.fft.ifft2((rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / radius))
    return np.round((img - img.min()) / (img.max() - img.min()) * 255).astype(np.uint8)


def test_cpbd_falls_as_blur_grows():
    img = _pink_noise()
    values = [cpbd_mod.cpbd(_blur(img, s)) for s in sorted(CPBD_PINK)]
    np.testing.assert_allclose(values, [CPBD_PINK[s] for s in sorted(CPBD_PINK)], rtol=0, atol=1e-12)
    assert all(a > b for a, b in itertools.pairwise(values[:-1])), values


def test_cpbd_colour_face_box_and_errors():
    grey = _scene(seed=2)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert cpbd_mod.cpbd(rgb) == pytest.approx(cpbd_mod.cpbd(grey))
    assert cpbd_mod.cpbd(grey.astype(np.float64) / 255.0) == pytest.approx(cpbd_mod.cpbd(grey))
    big = np.zeros((300, 400, 3), np.uint8)
    big[50:178, 100:292] = rgb
    assert cpbd_mod.cpbd_face(big, (100, 50, 292, 178)) == pytest.approx(cpbd_mod.cpbd(grey))
    with pytest.raises(ValueError):
        cpbd_mod.cpbd(grey[:40, :200])
    with pytest.raises(ValueError):
        cpbd_mod.cpbd_face(big, (500, 400, 600, 500))


# ----------------------------------------------------------------------------------------------
# PSNR / SSIM / outside-face PSNR
# ----------------------------------------------------------------------------------------------


def test_psnr_ssim_and_outside_face():
    rng = np.random.default_rng(0)
    a = rng.integers(20, 230, (64, 80, 3)).astype(np.uint8)
    b = a.copy()
    b += 1
    assert image.psnr(a, a) == math.inf
    assert image.psnr(a, b) == pytest.approx(20 * math.log10(255.0))
    assert image.psnr(a / 255.0, b / 255.0) == pytest.approx(20 * math.log10(255.0))
    assert image.ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert image.ssim(a, noisy) < image.ssim(a, b) < 1.0
    edited = a.copy()
    edited[10:30, 20:50] = 0  # the "face" changed, the rest untouched
    assert image.psnr_outside(a, edited, (20, 10, 50, 30)) == math.inf
    mask = image.box_mask(a.shape, (20, 10, 50, 30))
    assert mask.sum() == 20 * 30
    assert image.psnr_outside(a, edited, mask) == math.inf
    assert image.psnr_outside(a, b, mask) == pytest.approx(20 * math.log10(255.0))
    assert image.psnr(a, edited) < 30
    with pytest.raises(ValueError):
        image.psnr(a, a[:10])


# ----------------------------------------------------------------------------------------------
# landmarks
# ----------------------------------------------------------------------------------------------


def _face_landmarks(t: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(100, 300, (478, 3))
    base[33, :2] = (150, 180)
    base[263, :2] = (250, 180)  # inter-ocular distance 100 px
    base[13, :2] = (200, 280)
    base[14, :2] = (200, 290)
    return np.repeat(base[None], t, axis=0)


def test_lmd_jitter_and_mouth_opening():
    ref = _face_landmarks()
    pred = ref.copy()
    lips = list(landmark_metrics.LIP_INDICES)
    assert len(set(lips)) == 40 and 13 in lips and 14 in lips and 61 in lips and 291 in lips
    pred[:, lips, 0] += 3.0
    pred[:, lips, 1] += 4.0  # every lip point 5 px off
    assert landmark_metrics.lmd_mouth(ref, ref) == 0.0
    assert landmark_metrics.lmd_mouth(pred, ref) == pytest.approx(5.0)
    assert landmark_metrics.lmd_mouth(pred, ref, normalize=True) == pytest.approx(0.05)
    assert landmark_metrics.lmd_face(pred, ref) == pytest.approx(5.0 * 40 / 478)
    assert landmark_metrics.lmd(pred[0], ref[0], [13]) == pytest.approx(5.0)

    moving = ref.copy()
    moving[:, :, 0] += np.arange(len(ref))[:, None] * 2.0  # uniform motion: no jitter
    assert landmark_metrics.landmark_jitter(moving) == pytest.approx(0.0, abs=1e-12)
    shaky = moving.copy()
    shaky[::2, :, 0] += 1.0  # ±1 px alternating → second difference 2 px = 0.02 IOD
    assert landmark_metrics.landmark_jitter(shaky) == pytest.approx(0.02)

    opening = landmark_metrics.mouth_opening(ref)
    assert opening.shape == (20,) and np.allclose(opening, 0.1)
    ref[:, 14, 1] = 290 + 20 * np.sin(np.arange(20) / 3.0) ** 2
    stats = landmark_metrics.mouth_opening_stats(landmark_metrics.mouth_opening(ref))
    assert 0.1 <= stats.p5 < stats.p95 <= 0.3 and stats.range > 0.1 and stats.mean_speed > 0
    assert 0 < stats.open_fraction < 1


# ----------------------------------------------------------------------------------------------
# audio-visual offset (weight-free)
# ----------------------------------------------------------------------------------------------


def _syllables(n_frames: int, seed: int) -> np.ndarray:
    """Mouth opening per frame: smooth random bursts (unitless, 0..~0.4)."""
    rng = np.random.default_rng(seed)
    raw = (rng.random(n_frames) > 0.6) * rng.uniform(0.1, 0.4, n_frames)
    kernel = np.hanning(7)
    return np.convolve(raw, kernel / kernel.max(), mode="same")


def _audio_for(opening: np.ndarray, delay_frames: int, seed: int) -> np.ndarray:
    """Noise whose loudness follows ``opening``, delayed by ``delay_frames`` frames (25 fps, 16 kHz)."""
    rng = np.random.default_rng(seed + 100)
    env = np.repeat(opening, 640)
    env = np.roll(env, delay_frames * 640)
    return (rng.standard_normal(env.size) * (0.01 + env)).astype(np.float32)


@pytest.mark.parametrize("delay", [0, 3, -4, 7])
def test_av_offset_recovers_inserted_delay(delay):
    opening = _syllables(250, seed=1)
    res = avsync.av_offset(opening, _audio_for(opening, delay, seed=1))
    assert res.audio_delay == delay
    assert res.offset == -delay
    assert res.confidence > 0.3
    assert res.lags.shape == res.correlation.shape == (31,)
    res_d = avsync.av_offset(opening, _audio_for(opening, delay, seed=1), use_derivative=True)
    assert res_d.audio_delay == delay


def test_av_offset_unrelated_audio_has_low_confidence():
    opening = _syllables(250, seed=2)
    res = avsync.av_offset(opening, _audio_for(_syllables(250, seed=9), 0, seed=2))
    good = avsync.av_offset(opening, _audio_for(opening, 0, seed=2))
    assert res.confidence < good.confidence / 2


# ----------------------------------------------------------------------------------------------
# MFCC and LSE
# ----------------------------------------------------------------------------------------------


def test_mfcc_layout():
    rng = np.random.default_rng(0)
    for n in (1, 400, 401, 16000, 16123):
        feats = lse.mfcc(rng.standard_normal(n) * 1000)
        expected = 1 if n <= 400 else 1 + math.ceil((n - 400) / 160)
        assert feats.shape == (expected, 13)
    x = rng.standard_normal(1600) * 1000
    feats = lse.mfcc(x)
    pre = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    frame0 = pre[:400]
    energy = np.sum(np.abs(np.fft.rfft(frame0, 512)) ** 2) / 512
    assert feats[0, 0] == pytest.approx(math.log(energy))
    silent = lse.mfcc(np.zeros(800))
    assert np.allclose(silent[:, 0], math.log(np.finfo(float).eps))
    fb = lse.mel_filterbank()
    assert fb.shape == (26, 257) and fb.max() == 1.0 and np.all(fb.sum(axis=1) > 0)
    assert np.array_equal(lse.to_int16_scale(np.array([0.5, -1.0], np.float32)), [16384.0, -32768.0])
    assert np.array_equal(lse.to_int16_scale(np.array([3, -7], np.int16)), [3.0, -7.0])


class _EnergyModel:
    """Fake SyncNet: both embeddings are the (de-meaned) loudness of the 5 frames of a window.

    Video frame t is grey with brightness 100 + 20·a[t]; the audio's log-energy
    is 2·a[t] + const, so the embeddings coincide when audio and video align.
    """

    training = False

    def forward_lip(self, x):
        import torch

        assert tuple(x.shape[1:3]) == (3, 5) and x.dtype == torch.float32
        level = (x.mean(dim=(1, 3, 4)) - 100.0) / 20.0  # (N, 5)
        return level - level.mean(dim=1, keepdim=True)

    def forward_aud(self, x):
        assert tuple(x.shape[1:]) == (1, 13, 20)
        c0 = x[:, 0, 0, :].reshape(-1, 5, 4).mean(dim=2) / 2.0  # log-energy per video frame
        return c0 - c0.mean(dim=1, keepdim=True)


def _clip(n_frames: int, delay: int, seed: int = 0, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1.5, 1.5, n_frames)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    frames[:] = np.round(100 + 20 * a)[:, None, None, None].astype(np.uint8)
    gain = np.exp(np.roll(a, delay))  # audio delayed by `delay` frames
    audio = rng.standard_normal(n_frames * 640) * 500 * np.repeat(gain, 640)
    return frames, np.clip(audio, -32768, 32767).astype(np.int16)


@needs_torch
@pytest.mark.parametrize("delay", [0, 3, -5])
def test_lse_finds_known_offset_with_fake_model(delay):
    frames, audio = _clip(60, delay)
    res = lse.lse_scores(frames, audio, _EnergyModel(), vshift=15, batch=7)
    assert res.offset == -delay  # SyncNet convention: positive = audio early
    assert res.distances.shape == (31,)
    assert res.n_windows == 60 - 5
    assert res.lse_d == pytest.approx(res.distances.min())
    assert res.lse_c == pytest.approx(np.median(res.distances) - res.distances.min())
    assert res.lse_c > 0.5
    assert res.framewise_confidence.shape == (55,)


@needs_torch
def test_lse_batching_and_reference_distance_formula():
    import torch
    import torch.nn.functional as F

    frames, audio = _clip(30, 2, seed=4)
    model = _EnergyModel()
    r1 = lse.lse_scores(frames, audio, model, batch=20)
    r2 = lse.lse_scores(frames, audio, model, batch=3)
    np.testing.assert_allclose(r1.window_distances, r2.window_distances, atol=1e-9)
    # the reference's calc_pdist on the same embeddings
    ceps = torch.from_numpy(lse.mfcc(audio.astype(np.float64)).T.copy()).float()
    n = 30 - 5
    fv = model.forward_lip(torch.from_numpy(np.stack([frames[v:v + 5] for v in range(n)]).transpose(0, 4, 1, 2, 3)
                                            .copy()).float())
    fa = model.forward_aud(torch.stack([ceps[None, :, 4 * v:4 * v + 20] for v in range(n)]))
    fap = F.pad(fa, (0, 0, 15, 15))
    dists = torch.stack([F.pairwise_distance(fv[[i], :].repeat(31, 1), fap[i:i + 31, :]) for i in range(n)], 1)
    mdist = dists.mean(1).double().numpy()
    np.testing.assert_allclose(r1.distances, mdist, rtol=1e-5, atol=1e-6)
    assert r1.offset == 15 - int(np.argmin(mdist))


@needs_torch
def test_lse_rejects_short_clip_and_float_audio_is_int16_scaled():
    frames, audio = _clip(12, 0)
    res_int = lse.lse_scores(frames, audio, _EnergyModel())
    res_float = lse.lse_scores(frames, audio.astype(np.float32) / 32768.0, _EnergyModel())
    np.testing.assert_allclose(res_int.distances, res_float.distances, atol=1e-9)
    with pytest.raises(InputError):
        lse.lse_scores(frames[:5], audio, _EnergyModel())


def test_crop_faces_syncnet():
    frames = np.zeros((15, 240, 320, 3), np.uint8)
    frames[..., 0] = 200  # red in RGB
    boxes = np.tile([120.0, 80.0, 200.0, 160.0], (15, 1))
    crops = lse.crop_faces_syncnet(frames, boxes)
    assert crops.shape == (15, 224, 224, 3) and crops.dtype == np.uint8
    assert crops[0, 112, 112].tolist() == [0, 0, 200]  # BGR out
    # the crop is 2.8·s wide and 2.8·s tall around the box: top s above the centre, 1.8·s below
    assert crops[0, 5, 112].tolist() == [0, 0, 200]
    near_edge = lse.crop_faces_syncnet(frames, np.tile([0.0, 0.0, 100.0, 100.0], (15, 1)))
    assert near_edge[0, 2, 2].tolist() == [110, 110, 110]  # padding value outside the frame


@needs_torch
def test_lse_with_random_syncnet():
    import torch

    from retalk.networks.syncnet import SyncNetV2

    torch.manual_seed(0)
    net = SyncNetV2().eval()
    frames, audio = _clip(8, 0, seed=2)
    res = lse.lse_scores(frames, audio, net, vshift=15, batch=20)
    assert res.n_windows == 3 and res.distances.shape == (31,)
    assert np.all(np.isfinite(res.distances)) and res.lse_c >= 0
    assert -15 <= res.offset <= 15


# ----------------------------------------------------------------------------------------------
# FID / KID
# ----------------------------------------------------------------------------------------------


def test_frechet_distance_closed_form_and_self():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid_mod.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)
    feats = rng.normal(size=(50, 128))  # fewer samples than dimensions: singular covariance
    scale = float(np.trace(np.cov(feats, rowvar=False)))
    assert abs(fid_mod.fid(feats, feats)) < 1e-9 * scale
    mu, cov = fid_mod.feature_stats(feats)
    assert abs(fid_mod.frechet_distance(mu, cov, mu, cov)) < 1e-6 * scale  # rounding in the null space only
    # the sample route (N < D) and the covariance route agree
    other = rng.normal(size=(60, 128)) * 1.2 + 0.1
    mu2, cov2 = fid_mod.feature_stats(other)
    assert fid_mod.fid(feats, other) == pytest.approx(fid_mod.frechet_distance(mu, cov, mu2, cov2), rel=1e-7)


def test_fid_equals_pytorch_fid_on_correlated_features():
    """Literal values of pytorch-fid's ``calculate_frechet_distance`` (scipy ``sqrtm``) on these features."""
    rng = np.random.default_rng(21)
    mix = rng.normal(size=(16, 16)) / 4
    a = rng.normal(size=(300, 16)) @ mix
    b = rng.normal(size=(250, 16)) @ (mix + 0.2 * rng.normal(size=(16, 16))) + 0.3
    assert fid_mod.fid(a, b) == pytest.approx(7.264825050427845, rel=1e-9)
    mu_a, cov_a = fid_mod.feature_stats(a)
    mu_b, cov_b = fid_mod.feature_stats(b)
    assert fid_mod.frechet_distance(mu_a, cov_a, mu_b, cov_b) == pytest.approx(7.264825050427845, rel=1e-9)
    # fewer samples than dimensions (singular covariances): the reference's sqrtm is only good to ~1e-8 here
    x = rng.normal(size=(40, 64))
    y = rng.normal(size=(50, 64)) * 1.3 + 0.1
    assert fid_mod.fid(x, y) == pytest.approx(71.01047577769123, rel=1e-6)


def test_fid_and_kid_grow_with_distortion():
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(32, 32)) / 4
    base = rng.normal(size=(400, 32)) @ mix
    twin = rng.normal(size=(400, 32)) @ mix  # same distribution, independent samples
    other = rng.normal(size=(400, 32))
    fids = [fid_mod.fid(base, base + level * (0.5 + other)) for level in (0.0, 0.2, 0.5, 1.0, 2.0)]
    assert abs(fids[0]) < 1e-8
    assert all(a < b for a, b in itertools.pairwise(fids)), fids
    kids = [fid_mod.kid(base, twin + level * (0.5 + other), n_subsets=10, subset_size=200)
            for level in (0.0, 0.5, 1.0, 2.0)]
    means = [k.mean for k in kids]
    assert abs(means[0]) < 2 * kids[0].std + 0.02  # unbiased: ≈ 0 for equal distributions
    assert all(a < b for a, b in itertools.pairwise(means)), means
    assert all(k.std > 0 for k in kids)


@needs_torch
def test_fid_network_state_dict_matches_pytorch_fid_layout():
    from retalk.metrics import FIDInceptionV3

    sd = FIDInceptionV3().state_dict()
    assert len(sd) == 566  # as pytorch-fid's fid_inception_v3() (94 BN layers, incl. num_batches_tracked)
    assert tuple(sd["Conv2d_1a_3x3.conv.weight"].shape) == (32, 3, 3, 3)
    assert tuple(sd["Mixed_5b.branch_pool.conv.weight"].shape) == (32, 192, 1, 1)
    assert tuple(sd["Mixed_6e.branch7x7dbl_5.conv.weight"].shape) == (192, 192, 1, 7)
    assert tuple(sd["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape) == (384, 384, 3, 1)
    assert tuple(sd["fc.weight"].shape) == (1008, 2048)
    assert not any(k.startswith("AuxLogits") for k in sd)
    assert sum(v.numel() for k, v in sd.items() if not k.endswith("num_batches_tracked")) == 23885392


@needs_torch
def test_fid_network_loads_by_path_and_extracts_features(tmp_path):
    import torch

    from retalk.metrics import FIDInceptionV3

    torch.manual_seed(0)
    net = FIDInceptionV3()
    path = tmp_path / fid_mod.FID_WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    model = fid_mod.load_fid_inception(path)
    assert not model.training and not any(p.requires_grad for p in model.parameters())

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (2, 40, 48, 3)).astype(np.uint8)
    feats = fid_mod.inception_features(imgs, model, batch=32)  # resized to 299 inside
    assert feats.shape == (2, 2048) and np.all(np.isfinite(feats)) and np.all(feats >= 0)

    model.resize_input = False  # cheap path for the batching checks: 80×80 inputs straight in
    small = rng.integers(0, 256, (4, 80, 80, 3)).astype(np.uint8)
    f_all = fid_mod.inception_features(small, model, batch=32)
    f_gen = fid_mod.inception_features((im for im in small), model, batch=2)
    np.testing.assert_allclose(f_all, f_gen, rtol=1e-4, atol=1e-6)
    f_float = fid_mod.inception_features(small.astype(np.float32) / 255.0, model, batch=32)
    np.testing.assert_allclose(f_all, f_float, rtol=1e-4, atol=1e-6)
    assert abs(fid_mod.fid(f_all, f_all)) < 1e-6 * max(1.0, float(np.trace(np.cov(f_all, rowvar=False))))


@needs_torch
def test_fid_loader_errors(tmp_path):
    import torch

    missing = tmp_path / "nowhere" / fid_mod.FID_WEIGHTS_FILE
    with pytest.raises(CheckpointError, match="pt_inception-2015-12-05-6726825d.pth"):
        fid_mod.load_fid_inception(missing)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pth"):
        fid_mod.load_fid_inception(corrupt)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, wrong)
    with pytest.raises(CheckpointError, match="wrong.pth"):
        fid_mod.load_fid_inception(wrong)


def test_weight_free_metrics_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np; import retalk.metrics as m; "
            "m.cpbd(np.zeros((64, 64), np.uint8)); m.mfcc(np.ones(800)); m.fid(np.eye(3), np.eye(3)); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
