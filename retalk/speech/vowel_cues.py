"""How open a vowel sounds, from the signal alone, for any voice: first-formant height and voicing.

The level of the 300–3000 Hz band (:func:`retalk.speech.mouth.aperture`) says *that* a vowel is loud, not
how open it is: a close vowel (i, u) can be as loud as an open one (a). The jaw's opening shows in the
first formant: F1 rises from about 300 Hz (i, u) to 700–1000 Hz (a), for men, women, children and
synthesizers alike, though each voice sits elsewhere on that scale. So F1 is read per 10 ms frame from a
linear-prediction envelope and calibrated per recording (its own 20th and 90th percentiles over voiced,
loud frames become 0 and 1), which holds for a deep, a high or a synthetic voice without a fixed table.

Units: frequencies in Hz, levels in dB, frames at :data:`retalk.speech.mouth.FEATURE_RATE` (100 Hz).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LPC_ORDER = 18  # poles of the all-pole envelope at 16 kHz (two per kHz, and two more)
WINDOW_S = 0.03  # analysis window, seconds
F1_RANGE_HZ = (200.0, 1200.0)  # where the first formant is looked for
PITCH_RANGE_HZ = (60.0, 450.0)  # voicing: the autocorrelation's peak is looked for at these pitches
VOICED_CORRELATION = 0.45  # normalized autocorrelation peak above which a frame is voiced
CALIBRATION_QUANTILES = (0.2, 0.9)  # F1 quantiles of this recording's voiced frames that become 0 and 1
MIN_F1_SPAN_HZ = 150.0  # the calibrated span is at least this wide (a monotone recording is not stretched)
BLOCK_FRAMES = 512  # frames analysed at once (~30 MB of spectra at 16 kHz, whatever the recording's length)


@dataclass(frozen=True)
class VowelCues:
    """Per 10 ms frame: ``f1_hz`` (first-formant estimate; NaN where not voiced), ``voicing`` (normalized
    autocorrelation peak in [0, 1]), ``voiced`` (bool) and ``height`` (F1 calibrated to this recording:
    0 = its close vowels, 1 = its most open ones; 0 where not voiced)."""

    f1_hz: np.ndarray
    voicing: np.ndarray
    voiced: np.ndarray
    height: np.ndarray


def _frames(pad: np.ndarray, frames: range, hop: int, nper: int) -> np.ndarray:
    """(len(frames), nper) windows centred on each hop of the signal, from ``pad``: the signal with nper // 2
    zeros before it and nper + hop after it (:func:`vowel_cues`)."""
    idx = np.arange(frames.start, frames.stop)[:, None] * hop + np.arange(nper)[None, :]
    return pad[np.minimum(idx, len(pad) - 1)]


def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Prediction polynomials (n, order + 1), a[:, 0] = 1, from autocorrelations ``r`` (n, >= order + 1);
    Levinson–Durbin, vectorized over the rows."""
    n = r.shape[0]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.einsum("nj,nj->n", a[:, 1:i], r[:, i - 1:0:-1]) if i > 1 else r[:, i].copy()
        k = -acc / np.maximum(err, 1e-12)
        prev = a[:, 1:i].copy()
        a[:, 1:i] = prev + k[:, None] * prev[:, ::-1]
        a[:, i] = k
        err = err * np.maximum(1.0 - k * k, 1e-6)
    return a


def _block_cues(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """F1 (Hz, NaN where not voiced) and voicing of each row of ``frames`` (n, nper): see :func:`vowel_cues`."""
    nper = frames.shape[1]
    fr = frames * np.hanning(nper)[None, :]
    # voicing: the normalized autocorrelation's highest peak over the pitch range
    nfft = 1 << int(np.ceil(np.log2(2 * nper)))
    spec = np.fft.rfft(fr, nfft)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft)[:, :nper]
    win_ac = np.fft.irfft(np.abs(np.fft.rfft(np.hanning(nper), nfft)) ** 2, nfft)[:nper]
    acn = ac / np.maximum(ac[:, :1], 1e-12) / np.maximum(win_ac / win_ac[0], 1e-3)[None, :]
    lo = int(sample_rate / PITCH_RANGE_HZ[1])
    hi = min(nper - 1, int(sample_rate / PITCH_RANGE_HZ[0]))
    voicing = np.clip(acn[:, lo:hi].max(1), 0.0, 1.0)
    voicing[ac[:, 0] <= 1e-10] = 0.0
    voiced = voicing > VOICED_CORRELATION
    # F1: the first peak of the all-pole envelope of the pre-emphasized frame
    pre = np.diff(fr, axis=1, prepend=fr[:, :1])  # pre-emphasis: the envelope's tilt flattened
    pspec = np.fft.rfft(pre, nfft)
    r = np.fft.irfft(np.abs(pspec) ** 2, nfft)[:, :LPC_ORDER + 1]
    r[:, 0] *= 1.0 + 1e-6  # a touch of white noise keeps the recursion stable
    a = _levinson(r, LPC_ORDER)
    grid = 1024
    env = -np.log(np.abs(np.fft.rfft(a, grid)) + 1e-12)  # log envelope on grid // 2 + 1 bins up to Nyquist
    freqs = np.arange(env.shape[1]) * sample_rate / grid
    band = np.flatnonzero((freqs >= F1_RANGE_HZ[0]) & (freqs <= F1_RANGE_HZ[1]))
    e = env[:, band[0] - 1: band[-1] + 2]
    peak = (e[:, 1:-1] > e[:, :-2]) & (e[:, 1:-1] >= e[:, 2:])
    has = peak.any(1)
    first = np.argmax(peak, axis=1)
    f1 = np.where(has & voiced, freqs[band][first], np.nan)
    return f1, voicing


def vowel_cues(samples: np.ndarray, sample_rate: int, n_frames: int, hop_s: float = 0.01) -> VowelCues:
    """F1, voicing and calibrated vowel height for ``n_frames`` frames of ``hop_s`` seconds (see the module docstring).

    ``samples``: float mono at ``sample_rate`` Hz.
    """
    x = np.asarray(samples, np.float64)
    hop = max(1, int(round(hop_s * sample_rate)))
    nper = int(round(WINDOW_S * sample_rate))
    pad = np.concatenate([np.zeros(nper // 2, x.dtype), x, np.zeros(nper + hop, x.dtype)])
    f1 = np.full(n_frames, np.nan)
    voicing = np.zeros(n_frames)
    for start in range(0, n_frames, BLOCK_FRAMES):  # in blocks: whole, the spectra took ~5.5 MB a second
        block = range(start, min(n_frames, start + BLOCK_FRAMES))
        f1[start:block.stop], voicing[start:block.stop] = _block_cues(_frames(pad, block, hop, nper), sample_rate)
    voiced = voicing > VOICED_CORRELATION
    height = _calibrate(f1)
    return VowelCues(f1, voicing, voiced, height)


def _calibrate(f1: np.ndarray) -> np.ndarray:
    """F1 mapped to [0, 1] by this recording's own quantiles over its voiced frames (0 where NaN)."""
    ok = ~np.isnan(f1)
    if ok.sum() < 10:
        return np.where(ok, 0.5, 0.0)
    lo, hi = np.quantile(f1[ok], CALIBRATION_QUANTILES)
    hi = max(hi, lo + MIN_F1_SPAN_HZ)
    return np.where(ok, np.clip((np.nan_to_num(f1) - lo) / (hi - lo), 0.0, 1.0), 0.0)
