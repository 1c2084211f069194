"""Hand-written DSP against its reference libraries, via golden arrays computed once (tests/data/dsp.npz).

* ``retalk.speech.mel``: Wav2Lip's ``audio.melspectrogram`` (librosa STFT + Slaney mel filterbank).
* ``retalk.metrics.lse.mfcc``: ``python_speech_features.mfcc(signal, 16000)`` as SyncNet calls it.

The signals are generated here (seeded); ``tests/data/README.md`` says how the arrays were made.
"""
from __future__ import annotations

import numpy as np
from _golden import assert_matches, load_golden

from retalk.metrics import lse
from retalk.speech import mel as M


def speech_like(n: int, seed: int) -> np.ndarray:
    """float64 samples in [-1, 1] at 16 kHz: two tones and noise under a syllable-rate envelope, 50 ms of silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000.0
    env = 0.05 + 0.45 * np.sin(np.pi * 4.0 * t) ** 2
    x = env * (0.5 * np.sin(2 * np.pi * 220.0 * t) + 0.3 * np.sin(2 * np.pi * 1870.0 * t)
               + 0.2 * rng.standard_normal(n))
    x[n // 2: n // 2 + 800] = 0.0
    return np.clip(x, -1.0, 1.0)


MEL_SIGNAL = (6123, 11)  # samples, seed
MFCC_SIGNAL = (4321, 12)


def test_mel_filterbank_equals_librosa_slaney() -> None:
    golden = load_golden("dsp")
    assert_matches(M.mel_filterbank(), golden["mel_filterbank"], "librosa.filters.mel", rtol=1e-5)


def test_melspectrogram_equals_wav2lip_reference() -> None:
    golden = load_golden("dsp")
    n, seed = MEL_SIGNAL
    spec = M.melspectrogram(speech_like(n, seed).astype(np.float32))
    expected = golden["melspectrogram"]
    assert spec.shape == expected.shape == (80, 1 + n // 200)
    assert np.ptp(expected) > 4.0 and np.mean(np.abs(expected) < 4.0) > 0.9  # a signal, not the clipped floor
    assert_matches(spec, expected, "Wav2Lip audio.melspectrogram")


def test_mfcc_filterbank_equals_python_speech_features() -> None:
    golden = load_golden("dsp")
    assert_matches(lse.mel_filterbank(), golden["psf_filterbank"], "python_speech_features.get_filterbanks",
                   rtol=1e-6)


def test_mfcc_equals_python_speech_features() -> None:
    golden = load_golden("dsp")
    n, seed = MFCC_SIGNAL
    x = np.round(speech_like(n, seed) * 32767.0)  # SyncNet feeds int16-scale samples
    feats = lse.mfcc(x, 16000)
    assert feats.shape == golden["mfcc"].shape == (1 + int(np.ceil((n - 400) / 160)), 13)
    assert_matches(feats, golden["mfcc"], "python_speech_features.mfcc", rtol=1e-6)
