"""Acoustic lip closures (``retalk.speech.mouth``): a stop's release tells the lips from the tongue."""
from __future__ import annotations

import numpy as np
import pytest

from retalk.speech.mouth import acoustic_features, aperture, closures

SR = 16000


def _vowel(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    out = np.zeros_like(t)
    for k in range(1, 30):  # harmonics of 120 Hz shaped by two formants (700, 1200 Hz)
        f = 120.0 * k
        out += (np.exp(-((f - 700) / 200) ** 2) + 0.6 * np.exp(-((f - 1200) / 250) ** 2) + 0.02) * np.sin(2 * np.pi * f * t)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return 0.2 * out / np.abs(out).max() * ramp


def _burst(low: bool, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(int(0.02 * SR))
    spec = np.fft.rfft(noise)
    f = np.fft.rfftfreq(len(noise), 1 / SR)
    spec[(f > 1500) if low else (f < 4000)] = 0.0
    b = np.fft.irfft(spec, len(noise))
    return (0.03 if low else 0.3) * b / np.abs(b).max()


def _stop(low_release: bool) -> tuple[np.ndarray, slice]:
    """vowel, 90 ms closure, a 20 ms release burst (low and weak like p/b, or high and loud like t/d), vowel."""
    rng = np.random.default_rng(3)
    gap = 1e-4 * rng.standard_normal(int(0.09 * SR))
    x = np.concatenate([_vowel(0.3), gap, _burst(low_release, rng), _vowel(0.3)]).astype(np.float32)
    return x, slice(31, 38)  # the closure, in 10 ms feature frames


@pytest.mark.parametrize("low_release", [True, False])
def test_a_high_loud_release_is_the_tongue_not_the_lips(low_release: bool) -> None:
    x, gap = _stop(low_release)
    feats = acoustic_features(x, SR)
    _, speech = aperture(feats)
    found = closures(feats, speech)
    without_veto = closures(feats, speech, max_release_db=None)
    assert without_veto[gap].any()  # both are acoustic closures
    assert found[gap].any() == low_release  # only the lips' release keeps its closure
    assert not found[3:25].any() and not found[45:].any()  # nowhere inside the vowels


def test_only_real_pauses_rest_the_mouth() -> None:
    from retalk.speech.mouth import pauses

    speech = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0], bool)
    # at 25 fps: the 2-frame gap (80 ms) is between two words, the 5-frame one (200 ms) a pause
    rest = pauses(speech, 25.0, 0.12)
    np.testing.assert_array_equal(rest, [1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(pauses(speech, 25.0, 0.0), ~speech)  # 0: every gap closes


def test_a_quiet_gap_between_syllables_does_not_snap_the_mouth_shut() -> None:
    from retalk.speech.mouth import mouth_track

    rng = np.random.default_rng(5)
    noise = rng.standard_normal(int(0.1 * SR))
    spec = np.fft.rfft(noise)
    spec[np.fft.rfftfreq(len(noise), 1 / SR) < 3000] = 0.0
    hiss = np.fft.irfft(spec, len(noise))
    hiss *= 0.003 / hiss.std()  # a soft, breathy fricative: too quiet to count as speech, not a stop
    silence = lambda s: np.zeros(int(s * SR))  # noqa: E731
    x = np.concatenate([silence(0.3), _vowel(0.3), hiss, _vowel(0.3), silence(0.4), _vowel(0.3), silence(0.3)])
    x = (x + 0.001 * rng.standard_normal(len(x))).astype(np.float32)
    fps = 25.0
    n = int(len(x) / SR * fps)
    track = mouth_track(x, SR, fps, n)
    t = (np.arange(n) + 0.5) / fps
    gap = (t > 0.6) & (t < 0.7) & ~track.speech  # the hiss, where the voice activity drops out
    assert gap.any() and not track.closed[gap].any()
    assert track.closed[(t > 1.05) & (t < 1.3)].all()  # the 400 ms pause rests the mouth
    assert track.closed[t < 0.2].all() and track.closed[t > 1.7].all()  # silence before and after
    every = mouth_track(x, SR, fps, n, min_pause_s=0.0)
    assert every.closed[gap].all()  # every gap used to close
