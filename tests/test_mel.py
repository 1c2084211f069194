"""Tests for retalk.speech.mel (numpy/scipy only; no torch, no librosa)."""
from __future__ import annotations

import numpy as np
import pytest

from retalk.speech import mel as M

SR = 16000


def tone(freq_hz: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 199, 200, 201, 16000, 12345])
def test_shape_dtype_and_range(n: int) -> None:
    rng = np.random.default_rng(n)
    spec = M.melspectrogram((0.2 * rng.standard_normal(n)).astype(np.float32))
    assert spec.shape == (80, 1 + n // 200)
    assert spec.dtype == np.float32
    assert spec.min() >= -4.0 and spec.max() <= 4.0


def test_silence_is_floor() -> None:
    spec = M.melspectrogram(np.zeros(8000, dtype=np.float32))
    assert np.all(spec == M.SILENCE)


def test_sine_energy_lands_in_the_right_band() -> None:
    bank = M.mel_filterbank()
    bin_hz = np.arange(bank.shape[1]) * SR / M.N_FFT  # 20 Hz per FFT bin
    peak_hz = bin_hz[bank.argmax(axis=1)]  # where each band's triangle peaks
    for freq in (300.0, 1000.0, 3000.0, 6000.0):
        spec = M.melspectrogram(tone(freq, 1.0))
        middle = spec[:, 10:-10].mean(axis=1)
        band = int(middle.argmax())
        expected = int(np.abs(peak_hz - freq).argmin())
        assert abs(band - expected) <= 1, (freq, band, expected)
        assert middle[band] > 0.0  # well above the floor


def test_units_one_unit_is_12_5_db() -> None:
    # Doubling the amplitude adds 20*log10(2) = 6.02 dB = 0.4816 units (unclipped region).
    quiet = M.melspectrogram(tone(1000.0, 0.5, amp=0.02))[:, 5:-5]
    loud = M.melspectrogram(tone(1000.0, 0.5, amp=0.04))[:, 5:-5]
    band = int(quiet.mean(axis=1).argmax())
    assert -4 < quiet[band].mean() < 3.5
    assert loud[band].mean() - quiet[band].mean() == pytest.approx(20 * np.log10(2) / 12.5, abs=2e-3)


def test_time_axis_80_frames_per_second() -> None:
    wav = np.concatenate([np.zeros(SR, dtype=np.float32), tone(1000.0, 1.0)])  # onset at 1.0 s
    energy = M.melspectrogram(wav).max(axis=0)
    onset_col = int(1.0 * M.MEL_FPS)  # column t is centred on sample 200 t
    assert np.all(energy[: onset_col - 3] == M.SILENCE)
    assert np.all(energy[onset_col + 3 :] > 0.0)


def test_filterbank_slaney_area_normalisation() -> None:
    bank = M.mel_filterbank()
    assert bank.shape == (80, 401)
    assert np.all(bank >= 0)
    assert not bank.flags.writeable
    # Nothing below fmin or above fmax.
    bin_hz = np.arange(401) * 20.0
    assert np.all(bank[:, bin_hz < M.FMIN] == 0)
    assert np.all(bank[:, bin_hz > M.FMAX] == 0)
    # Slaney normalisation: every triangle has unit area in Hz (sampled every 20 Hz here).
    assert np.allclose(bank.sum(axis=1) * (SR / M.N_FFT), 1.0, atol=0.05)
    # Below 1 kHz the Slaney scale is linear, above it logarithmic: band peaks spread out.
    peaks = bank.argmax(axis=1) * (SR / M.N_FFT)
    assert np.all(np.diff(peaks) >= 0)
    assert np.diff(peaks[:10]).mean() < 40 < np.diff(peaks[-10:]).mean()


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="16000"):
        M.melspectrogram(np.zeros(1000, dtype=np.float32), sr=22050)
    with pytest.raises(ValueError, match="1-D"):
        M.melspectrogram(np.zeros((2, 1000), dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        M.melspectrogram(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        M.melspectrogram(np.array([0.0, np.nan, 0.0]))


def _reference_count(total: int, fps: float) -> int:
    """Independent re-statement of the W2L/VRT loop: cut until a window overruns, then one last."""
    step = 80.0 / fps
    i = 0
    while int(i * step) + 16 <= total:
        i += 1
    return i + 1


@pytest.mark.parametrize("fps", [25.0, 30000 / 1001, 24.0, 50.0])
def test_windows_rule(fps: float) -> None:
    total = 241  # 3 s of audio
    spec = np.arange(80 * total, dtype=np.float32).reshape(80, total)
    wins = M.mel_windows(spec, fps)
    assert wins.shape == (_reference_count(total, fps), 80, 16)
    step = 80.0 / fps
    for i in range(len(wins) - 1):
        start = int(i * step)
        np.testing.assert_array_equal(wins[i], spec[:, start : start + 16])
    np.testing.assert_array_equal(wins[-1], spec[:, -16:])  # last window = final 16 frames


def test_windows_rule_at_25fps_by_hand() -> None:
    spec = np.random.default_rng(0).standard_normal((80, 241)).astype(np.float32)
    wins = M.mel_windows(spec, 25)
    # int(70 * 3.2) + 16 = 240 <= 241, int(71 * 3.2) + 16 = 243 > 241 -> 71 regular + 1 last.
    assert len(wins) == 72
    np.testing.assert_array_equal(wins[70], spec[:, 224:240])
    np.testing.assert_array_equal(wins[71], spec[:, 225:241])


def test_windows_with_n_frames() -> None:
    spec = np.random.default_rng(1).standard_normal((80, 100)).astype(np.float32)
    natural = M.mel_windows(spec, 25)
    more = M.mel_windows(spec, 25, n_frames=len(natural) + 5)
    np.testing.assert_array_equal(more[: len(natural)], natural)
    for w in more[len(natural) :]:
        np.testing.assert_array_equal(w, spec[:, -16:])
    fewer = M.mel_windows(spec, 25, n_frames=3)
    np.testing.assert_array_equal(fewer, natural[:3])
    assert M.mel_windows(spec, 25, n_frames=0).shape == (0, 80, 16)


def test_windows_short_audio_padded_with_silence() -> None:
    spec = np.zeros((80, 5), dtype=np.float32)
    wins = M.mel_windows(spec, 25)
    # Padded to exactly 16 columns; like the reference at T == 16, that gives the
    # window at 0 plus the "last 16" window (the same columns).
    assert wins.shape == (2, 80, 16)
    for w in wins:
        assert np.all(w[:, :5] == 0) and np.all(w[:, 5:] == M.SILENCE)


def test_window_at_sadtalker_clamping() -> None:
    total = 60
    spec = np.tile(np.arange(total, dtype=np.float32), (80, 1))
    first = M.mel_window_at(spec, 0, 25)  # starts at int(-6.4) = -6 -> clamped to column 0
    np.testing.assert_array_equal(first[0], [0] * 7 + list(range(1, 10)))
    mid = M.mel_window_at(spec, 10, 25)  # int(80 * 8 / 25) = 25
    np.testing.assert_array_equal(mid[0], np.arange(25, 41))
    last = M.mel_window_at(spec, 20, 25)  # int(57.6) = 57 -> 57, 58, 59, 59, ...
    np.testing.assert_array_equal(last[0], [57, 58] + [59] * 14)
    assert last.shape == (80, 16)


def test_end_to_end_window_count_matches_video_length() -> None:
    wav = np.random.default_rng(2).standard_normal(SR * 2).astype(np.float32) * 0.1
    spec = M.melspectrogram(wav)
    assert spec.shape == (80, 161)
    # 2 s at 25 fps is 50 video frames, but the reference rule stops early
    # (int(45 * 3.2) + 16 = 160 <= 161, then one "last 16" window): 47 windows,
    # and the reference truncates the video to that many frames.
    assert len(M.mel_windows(spec, 25)) == 47
    # Asking for one window per video frame pads the tail with the final window.
    per_frame = M.mel_windows(spec, 25, n_frames=50)
    assert per_frame.shape == (50, 80, 16)
    np.testing.assert_array_equal(per_frame[-1], spec[:, -16:])
