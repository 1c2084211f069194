"""Weight-free audio-visual synchrony from a mouth-opening series.

The mouth opens for loud (voiced, open-vowel) speech and closes in pauses and
on bilabials, so the mouth-opening series and the speech-band loudness of the
audio, both sampled at the video frame rate, correlate best when they are
aligned.  :func:`av_offset` scans lags of ±``max_lag`` frames and reports the
lag of the highest Pearson correlation and how far that peak stands above the
typical (median) lag.

Sign convention (the same as SyncNet's AV offset, :mod:`retalk.metrics.lse`):
``offset = −audio_delay``, where ``audio_delay > 0`` means the sound comes
``audio_delay`` frames *after* the matching mouth movement.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["AVSyncResult", "av_offset", "speech_envelope"]


@dataclass(frozen=True)
class AVSyncResult:
    """Outcome of :func:`av_offset`.

    ``offset``: frames, SyncNet convention (``−audio_delay``).
    ``confidence``: peak correlation minus the median correlation over all lags,
    unitless in 0..2 (≈ 0: no evidence of sync; real talking clips in sync
    typically score well above 0.2).
    ``lags``: audio delays scanned (frames); ``correlation``: Pearson r per lag.
    """

    offset: int
    confidence: float
    peak_correlation: float
    lags: np.ndarray
    correlation: np.ndarray

    @property
    def audio_delay(self) -> int:
        """Frames by which the audio lags the mouth (negative: audio early)."""
        return -self.offset


def speech_envelope(audio: np.ndarray, sample_rate: int = 16000, fps: float = 25.0,
                    band: tuple[float, float] = (300.0, 3000.0)) -> np.ndarray:
    """Speech-band loudness per video frame, in dB (relative), shape (floor(n·fps/sr),).

    The mono ``audio`` (any scale) is band-pass filtered (4th-order Butterworth,
    zero phase) to ``band`` Hz; frame *k* is the mean power of the samples shown
    with video frame *k*, i.e. times [k/fps, (k+1)/fps), in dB.
    """
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(audio, dtype=np.float64).ravel()
    hop = sample_rate / float(fps)
    n = int(np.floor(len(x) / hop))
    if n < 1:
        return np.zeros(0)
    lo, hi = band
    hi = min(hi, 0.45 * sample_rate)
    sos = butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
    y = sosfiltfilt(sos, x) if len(x) > 27 else x
    bounds = np.round(np.arange(n + 1) * hop).astype(np.int64)
    csum = np.concatenate([[0.0], np.cumsum(y * y)])
    power = (csum[bounds[1:]] - csum[bounds[:-1]]) / np.maximum(np.diff(bounds), 1)
    peak = float(power.max()) if power.size else 0.0
    floor = max(peak * 1e-8, 1e-20)
    return 10.0 * np.log10(np.maximum(power, floor))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if np.count_nonzero(ok) < 3:
        return 0.0
    a = a[ok] - a[ok].mean()
    b = b[ok] - b[ok].mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def av_offset(opening: np.ndarray, audio: np.ndarray, sample_rate: int = 16000, fps: float = 25.0,
              max_lag: int = 15, use_derivative: bool = False, min_overlap: int = 10) -> AVSyncResult:
    """Audio-visual offset and confidence of a mouth-opening series against its audio.

    ``opening``: (T,) mouth opening per video frame (e.g.
    :func:`retalk.metrics.landmark_metrics.mouth_opening`; NaN for frames without a
    face).  ``audio``: mono samples at ``sample_rate`` Hz, frame *k* of the
    video paired with time k/fps.  ``use_derivative`` correlates the frame-to-
    frame changes of both series instead of their levels (less sensitive to
    slow drifts).  Lags whose overlap is shorter than ``min_overlap`` frames
    score 0.
    """
    o = np.asarray(opening, dtype=np.float64).ravel()
    env = speech_envelope(audio, sample_rate, fps)
    n = min(len(o), len(env))
    if n < min_overlap:
        raise ValueError(f"need at least {min_overlap} frames of both video and audio, got {n}")
    o, env = o[:n], env[:n]
    if use_derivative:
        o, env = np.diff(o), np.diff(env)
        n -= 1
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.zeros(len(lags))
    for j, lag in enumerate(lags):
        # audio delayed by `lag` frames: mouth at t pairs with sound at t + lag
        t0, t1 = max(0, -lag), min(n, n - lag)
        if t1 - t0 < min_overlap:
            continue
        corr[j] = _pearson(o[t0:t1], env[t0 + lag:t1 + lag])
    best = int(np.argmax(corr))
    conf = float(corr[best] - np.median(corr))
    delay = int(lags[best])
    log.debug("av_offset: audio delay %d frames, peak r %.3f, confidence %.3f", delay, corr[best], conf)
    return AVSyncResult(offset=-delay, confidence=conf, peak_correlation=float(corr[best]),
                        lags=lags, correlation=corr)
