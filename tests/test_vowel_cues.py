"""``retalk.speech.vowel_cues``: F1 read from a source-filter vowel whose formants are set by hand (the expected
values are the resonators' own frequencies), for a low and a high voice; calibrated height orders the vowels."""
import numpy as np
import pytest
from scipy.signal import lfilter

from retalk.speech.vowel_cues import vowel_cues

RATE = 16000  # Hz


def _vowel(f0: float, formants: tuple[float, ...], seconds: float = 0.4) -> np.ndarray:
    """A pulse train at ``f0`` Hz through two-pole resonators at ``formants`` (Hz, 80 Hz bandwidth)."""
    n = int(seconds * RATE)
    x = np.zeros(n)
    x[:: int(RATE / f0)] = 1.0
    for f in formants:
        r = np.exp(-np.pi * 80.0 / RATE)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / RATE), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_f1_of_open_and_close_vowels(f0):
    open_a, close_i = (800.0, 1200.0, 2500.0), (300.0, 2300.0, 3000.0)
    x = np.concatenate([_vowel(f0, close_i), _vowel(f0, open_a), _vowel(f0, close_i), _vowel(f0, open_a)])
    c = vowel_cues(x, RATE, int(len(x) / 160))
    mid_i, mid_a = slice(10, 30), slice(50, 70)  # 10 ms frames well inside the first two vowels
    assert c.voiced[mid_i].mean() > 0.9 and c.voiced[mid_a].mean() > 0.9
    assert np.nanmedian(c.f1_hz[mid_i]) == pytest.approx(300.0, abs=80.0)
    assert np.nanmedian(c.f1_hz[mid_a]) == pytest.approx(800.0, abs=80.0)
    assert c.height[mid_a].mean() > 0.8 > 0.2 > c.height[mid_i].mean()


def test_silence_and_noise_are_not_voiced():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(RATE // 4), 0.1 * rng.standard_normal(RATE // 4)]).astype(np.float32)
    c = vowel_cues(x, RATE, int(len(x) / 160))
    assert c.voiced.mean() < 0.1
    assert np.all(c.height[~c.voiced] == 0.0)
