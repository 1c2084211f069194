"""SadTalker's coefficient generation (retalk.sadtalker) against the reference's own functions.

``tests/data/sadtalker_coeffs.npz`` holds what SadTalker's ``get_data``,
``generate_blink_seq_randomly``, ``get_facerender_data``, ``gen_camera_pose``,
``keypoint_transformation`` and ``Audio2Coeff.generate`` returned, run once outside the
repository on the inputs rebuilt here (see ``tests/data/README.md``).  Also: the reference's
crashes (21-frame blinks, equal neighbouring ``--input-yaw`` values, poses under 3 frames) are gone.
"""
from __future__ import annotations

import numpy as np
import pytest
from _golden import assert_matches, digest, fill_seeded, load_golden

from retalk.errors import InputError
from retalk.sadtalker.audio import SAMPLES_PER_FRAME, frame_count, mel_windows, window_starts
from retalk.sadtalker.blinks import BLINK, blink_ratio, reference_expression, tile_frames
from retalk.sadtalker.head_angles import camera_ramp
from retalk.sadtalker.motion import add_reference_pose, check_pose_style, smooth_pose
from retalk.sadtalker.types import MotionCoeffs
from retalk.sadtalker.windows import source_window, target_windows
from retalk.speech.mel import melspectrogram


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return load_golden("sadtalker_coeffs")


# --------------------------------------------------------------------------- audio


def test_window_starts_truncate_toward_zero() -> None:
    assert window_starts(8).tolist() == [-6, -3, 0, 3, 6, 9, 12, 16]  # int(80 * (i - 2) / 25)
    assert frame_count(639) == 0 and frame_count(640) == 1 and frame_count(16000) == 25


@pytest.mark.parametrize("n_samples", [640 * 7 + 100, 16000 * 2 + 333])
def test_mel_windows_take_the_reference_columns(golden, n_samples: int) -> None:
    cols = golden[f"mel_cols_{n_samples}"]  # (T, 16) column index of every window entry
    frames = frame_count(n_samples)
    assert cols.shape == (frames, 16)
    n_cols = 1 + frames * SAMPLES_PER_FRAME // 200
    starts = window_starts(frames)
    assert np.array_equal(np.clip(starts[:, None] + np.arange(16), 0, n_cols - 1), cols)
    wav = 0.3 * np.sin(np.arange(n_samples) * 0.05) * np.random.default_rng(0).uniform(0.2, 1.0, n_samples)
    mel = melspectrogram(wav[: frames * SAMPLES_PER_FRAME])
    assert mel.shape == (80, n_cols)
    windows = mel_windows(wav)
    assert windows.shape == (frames, 80, 16) and windows.dtype == np.float32
    assert np.array_equal(windows, mel[:, cols].transpose(1, 0, 2))


def test_too_short_audio_is_an_input_error() -> None:
    with pytest.raises(InputError, match="too short"):
        mel_windows(np.zeros(600))


# --------------------------------------------------------------------------- blinks


class _Scripted:
    """Draws ``lo + script[j] % (hi - lo)``: the reference run used ``choice(seq) = seq[script[j] % len(seq)]``."""

    def __init__(self, script: np.ndarray) -> None:
        self.script = iter(script.tolist())

    def integers(self, low: int, high: int) -> int:
        return low + next(self.script) % (high - low)


@pytest.mark.parametrize("frames", [20, 22, 30, 100, 250])
def test_blink_pattern_equals_reference(golden, frames: int) -> None:
    ratio = blink_ratio(frames, _Scripted(golden["blink_script"]))
    assert ratio.shape == (frames, 1) and ratio.dtype == np.float32
    assert np.array_equal(ratio, golden[f"blink_{frames}"])


def test_blinks_at_21_frames_do_not_crash_and_are_seeded() -> None:
    ratio = blink_ratio(21, np.random.default_rng(0))
    assert ratio[10:15, 0].tolist() == list(np.float32(BLINK)) and not ratio[:10].any() and not ratio[15:].any()
    a = blink_ratio(300, np.random.default_rng(5))
    assert np.array_equal(a, blink_ratio(300, np.random.default_rng(5)))
    assert not np.array_equal(a, blink_ratio(300, np.random.default_rng(6)))
    assert (a[:, 0] == 1.0).sum() >= 300 // 75  # a blink at least every 70 + 5 frames until the end


@pytest.mark.parametrize("n_samples", [640 * 7 + 100, 16000 * 2 + 333])
def test_ref_eyeblink_expression_is_tiled_like_the_reference(golden, n_samples: int) -> None:
    ref = golden[f"eyeblink_ref_{n_samples}"]  # the reference's ref_coeff (T, 70) with a 3-frame video
    frames = ref.shape[0]
    src = np.arange(73, dtype=np.float32) / 10
    video = np.arange(3 * 73, dtype=np.float32).reshape(3, 73) / 7
    np.testing.assert_array_equal(reference_expression(src[:64], frames, video[:, :64]), ref[:, :64])
    np.testing.assert_array_equal(np.repeat(src[None, 64:70], frames, 0), ref[:, 64:])
    assert np.array_equal(reference_expression(src, 4), np.repeat(src[None, :64], 4, axis=0))
    assert tile_frames(video, 2).shape == (2, 73)


# --------------------------------------------------------------------------- windows, angles


def _window_inputs() -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.default_rng(7)
    gen = rs.standard_normal((30, 70)).astype(np.float32)
    src = rs.standard_normal((1, 73)).astype(np.float32)
    return gen, src[0]


@pytest.mark.parametrize(("tag", "full", "still", "scale"), [
    ("crop", False, False, 1.0), ("crop_still_s13", False, True, 1.3),
    ("full_s07", True, False, 0.7), ("full_still", True, True, 1.0),
])
def test_windows_equal_reference(golden, tag: str, full: bool, still: bool, scale: float) -> None:
    gen, src = _window_inputs()
    windows = target_windows(gen, src, expression_scale=scale, full=full, still=still)
    assert windows.shape == (30, 73 if full else 70, 27) and windows.dtype == np.float32
    assert_matches(digest(windows), golden[f"win_{tag}"], f"windows {tag}")
    assert_matches(digest(source_window(src, full=full)), golden[f"winsrc_{tag}"], f"source window {tag}")
    assert np.array_equal(windows[0, :, 0], windows[0, :, 13])  # clamped at the start
    assert np.array_equal(gen, _window_inputs()[0])  # inputs untouched


def test_camera_ramps_equal_reference(golden) -> None:
    np.testing.assert_allclose(camera_ramp([0, 20, -10], 30), golden["yaw_0_20_-10"], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(camera_ramp([5], 30), golden["pitch_5"])
    np.testing.assert_allclose(camera_ramp([3, -7], 30), golden["roll_3_-7"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(camera_ramp([10, -30, 0, 45], 37), golden["ramp_10_-30_0_45_37"], atol=1e-5)
    np.testing.assert_allclose(camera_ramp([0.5, 2.25], 5), golden["ramp_0.5_2.25_5"], atol=1e-6)


def test_camera_ramp_equal_neighbours_do_not_divide_by_zero() -> None:
    np.testing.assert_array_equal(camera_ramp([0, 10, 10, -5], 25), camera_ramp([0, 10, -5], 25))
    np.testing.assert_array_equal(camera_ramp([4, 4], 6), np.full(6, 4.0, np.float32))
    np.testing.assert_array_equal(camera_ramp([-3, 20], 1), [-3.0])
    ramp = camera_ramp([0, 30], 4)
    np.testing.assert_allclose(ramp, [0.0, 10.0, 20.0, 20.0])  # np.arange excludes the end; padded with the last


# --------------------------------------------------------------------------- pose helpers


def test_pose_smoothing_and_reference_pose() -> None:
    t = np.arange(30, dtype=np.float32)[:, None]
    quadratic = np.repeat(0.01 * t**2 - 0.2 * t + 1.0, 6, axis=1)
    np.testing.assert_allclose(smooth_pose(quadratic), quadratic, atol=1e-4)  # order-2 filter keeps parabolas
    noisy = quadratic + np.random.default_rng(1).normal(0, 0.1, quadratic.shape).astype(np.float32)
    assert np.abs(smooth_pose(noisy) - quadratic).mean() < 0.6 * np.abs(noisy - quadratic).mean()
    for n in (1, 2):  # the reference's savgol_filter raises here
        np.testing.assert_array_equal(smooth_pose(noisy[:n]), noisy[:n])
    video = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(add_reference_pose(np.zeros((3, 6)), video), [[0] * 6, [6] * 6, [0] * 6])


def test_pose_style_range_and_motion_coeffs_shapes() -> None:
    assert check_pose_style(45) == 45
    for bad in (-1, 46, 2.5, True):
        with pytest.raises(InputError, match="--pose-style"):
            check_pose_style(bad)
    m = MotionCoeffs(exp=np.zeros((4, 64)), pose=np.ones((4, 6)), crop=np.zeros((4, 3)))
    assert m.n_frames == 4 and m.coeffs().shape == (4, 70) and m.exp.dtype == np.float32
    with pytest.raises(ValueError):
        m.exp[0, 0] = 1.0  # read-only
    with pytest.raises(ValueError, match="frames"):
        MotionCoeffs(exp=np.zeros((4, 64)), pose=np.ones((3, 6)), crop=np.zeros((4, 3)))


# --------------------------------------------------------------------------- torch parts


def test_keypoint_transform_equals_reference(golden) -> None:
    torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
    from retalk.sadtalker.keypoints import keypoint_transform

    rk = np.random.default_rng(8)
    kp = torch.from_numpy(rk.uniform(-1, 1, (3, 15, 3)).astype(np.float32))
    he = {k: torch.from_numpy((s * rk.standard_normal(shape)).astype(np.float32))
          for k, s, shape in (("yaw", 2.0, (3, 66)), ("pitch", 2.0, (3, 66)), ("roll", 2.0, (3, 66)),
                              ("t", 0.3, (3, 3)), ("exp", 0.1, (3, 45)))}
    t_before = he["t"].clone()
    out = keypoint_transform(kp, he)
    np.testing.assert_allclose(out.numpy(), golden["kp_out"], rtol=1e-5, atol=1e-5)
    assert torch.equal(he["t"], t_before)  # the reference zeroes t in place; retalk does not
    yaw, roll = torch.tensor([10.0, -20.0, 33.0]), torch.tensor([-5.0, 0.0, 5.0])
    out = keypoint_transform(kp, he, yaw=yaw, roll=roll)
    np.testing.assert_allclose(out.numpy(), golden["kp_out_yaw_roll"], rtol=1e-5, atol=1e-5)
    shared = keypoint_transform(kp[:1], he)  # one canonical set for the whole batch
    assert torch.allclose(shared, keypoint_transform(kp[:1].expand(3, -1, -1), he))


def test_generate_motion_equals_reference_audio2coeff(golden) -> None:
    torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
    from retalk.networks.sadtalker_audio2exp import SimpleWrapperV2
    from retalk.networks.sadtalker_audio2pose import Audio2Pose
    from retalk.sadtalker.motion import generate_motion

    a2e, a2p = fill_seeded(SimpleWrapperV2(), 44), fill_seeded(Audio2Pose(), 45)
    rg = np.random.default_rng(46)
    mels = rg.standard_normal((40, 80, 16)).astype(np.float32)
    src = (0.5 * rg.standard_normal(73)).astype(np.float32)
    ratio = np.zeros((40, 1), np.float32)
    ratio[10:15, 0] = BLINK
    video_pose = (0.1 * rg.standard_normal((15, 70))).astype(np.float32)[:, 64:70]
    for n, ref_pose in ((40, video_pose), (9, None)):
        torch.manual_seed(46)
        motion = generate_motion(a2e, a2p, mels[:n], src, ratio[:n], pose_style=11, ref_pose=ref_pose)
        coeffs = motion.coeffs()
        assert coeffs.shape == (n, 70)
        assert np.array_equal(motion.crop, np.repeat(src[None, 70:], n, axis=0))
        summary = np.concatenate([coeffs[:, :64].ravel()[::37], coeffs[:, 64:].ravel()])
        assert_matches(summary, golden[f"gen_coeffs_{n}"], f"Audio2Coeff.generate, {n} frames")
    motion = generate_motion(a2e, a2p, mels[:2], src, ratio[:2], generator=torch.Generator().manual_seed(0))
    assert motion.n_frames == 2  # the reference's savgol_filter raises for 2 frames
    np.testing.assert_allclose(motion.pose[0], src[64:70], atol=1e-6)


def test_package_imports_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys\nimport retalk.sadtalker, retalk.sadtalker.audio, retalk.sadtalker.blinks, "
            "retalk.sadtalker.windows, retalk.sadtalker.head_angles, retalk.sadtalker.motion, "
            "retalk.sadtalker.keypoints, retalk.sadtalker.types\nassert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
