"""The mel spectrogram that the released lip-sync networks were trained on.

Wav2Lip, its lip-sync expert, VideoReTalking's L-Net/E-Net and SadTalker's
audio encoder all consume the same audio front end: 16 kHz mono audio,
pre-emphasis, a 50 ms Hann STFT every 12.5 ms, 80 Slaney mel bands between
55 Hz and 7.6 kHz, decibels, and a clipped linear rescaling to ``[-4, 4]``.
This module computes it with numpy only (no librosa at run time; the STFT is
:func:`retalk.dsp.spectra`, the project's one spectral front end),
following the librosa >= 0.9 conventions the newer references run with
(centred frames, zero padding at both ends).

Units
-----
* Input: samples in ``[-1, 1]`` (float), 16 000 samples per second.
* Time axis: one mel frame per :data:`HOP` = 200 samples, i.e. 12.5 ms,
  :data:`MEL_FPS` = 80 frames per second; frame ``t`` is centred on sample
  ``200 * t``.  A clip of ``n`` samples gives ``1 + n // 200`` frames.
* Values: ``v = clip(0.08 * (dB + 100) - 4, -4, 4)`` with
  ``dB = 20 * log10(max(1e-5, band magnitude)) - 20`` (``REF_LEVEL_DB``).
  So one unit is 12.5 dB, ``-4`` means a band magnitude of 1e-4 or less
  (silence) and ``+4`` a magnitude of 10 or more (magnitudes are sums of
  |STFT| of the pre-emphasised signal, weighted by the filterbank).

Windows fed to the networks are 16 mel frames (0.2 s) long: see
:func:`mel_windows` (Wav2Lip / VideoReTalking rule) and
:func:`mel_window_at` (SadTalker rule).
"""
from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from retalk.dsp import preemphasis, spectra

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP",
    "WIN",
    "N_MELS",
    "FMIN",
    "FMAX",
    "MEL_FPS",
    "WINDOW_FRAMES",
    "SILENCE",
    "melspectrogram",
    "mel_filterbank",
    "mel_windows",
    "mel_window_at",
]

logger = logging.getLogger(__name__)

#: Sample rate the networks were trained on, in Hz.
SAMPLE_RATE = 16_000
#: FFT size in samples (50 ms at 16 kHz).
N_FFT = 800
#: Hop between mel frames in samples (12.5 ms at 16 kHz).
HOP = 200
#: Analysis window length in samples (same as :data:`N_FFT`: the Hann window fills the FFT frame).
WIN = 800
#: Number of mel bands.
N_MELS = 80
#: Lowest mel band edge in Hz.
FMIN = 55.0
#: Highest mel band edge in Hz.
FMAX = 7600.0
#: Pre-emphasis coefficient (``y[n] = x[n] - 0.97 x[n-1]``).
PREEMPHASIS = 0.97
#: Reference level subtracted after conversion to dB.
REF_LEVEL_DB = 20.0
#: Floor of the dB scale (the amplitude floor is ``10 ** (-100 / 20) = 1e-5``).
MIN_LEVEL_DB = -100.0
#: Half-range of the normalised output: values lie in ``[-4, 4]``.
MAX_ABS_VALUE = 4.0
#: Mel frames per second at :data:`SAMPLE_RATE` (16000 / 200).
MEL_FPS = SAMPLE_RATE / HOP
#: Length of one network input window in mel frames (0.2 s).
WINDOW_FRAMES = 16
#: The normalised value of silence (the bottom of the range).
SILENCE = -MAX_ABS_VALUE


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    hz_per_mel = 200.0 / 3.0
    knee_hz = 1000.0
    knee_mel = knee_hz / hz_per_mel  # 15 mel
    mels_per_octave_step = 27.0 / np.log(6.4)  # 27 mel from 1 kHz to 6.4 kHz
    mel = hz / hz_per_mel
    above = hz >= knee_hz
    mel = np.where(
        above,
        knee_mel + np.log(np.maximum(hz, knee_hz) / knee_hz) * mels_per_octave_step,
        mel,
    )
    return mel


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_slaney_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    hz_per_mel = 200.0 / 3.0
    knee_hz = 1000.0
    knee_mel = knee_hz / hz_per_mel
    log_step = np.log(6.4) / 27.0
    return np.where(
        mel >= knee_mel,
        knee_hz * np.exp(log_step * (mel - knee_mel)),
        hz_per_mel * mel,
    )


@lru_cache(maxsize=8)
def _filterbank_cached(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    n_bins = 1 + n_fft // 2
    bin_hz = np.linspace(0.0, sr / 2.0, n_bins)
    # n_mels + 2 band edges, equally spaced on the mel scale.
    edges_mel = np.linspace(_hz_to_slaney_mel(fmin), _hz_to_slaney_mel(fmax), n_mels + 2)
    edges_hz = _slaney_mel_to_hz(edges_mel)
    widths = np.diff(edges_hz)  # (n_mels + 1,)
    bank = np.zeros((n_mels, n_bins), dtype=np.float64)
    for m in range(n_mels):
        rising = (bin_hz - edges_hz[m]) / widths[m]
        falling = (edges_hz[m + 2] - bin_hz) / widths[m + 1]
        bank[m] = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney (area) normalisation: each triangle has unit area in Hz/2.
    bank *= (2.0 / (edges_hz[2 : n_mels + 2] - edges_hz[:n_mels]))[:, None]
    bank.setflags(write=False)
    return bank


def mel_filterbank(
    sr: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = FMIN,
    fmax: float = FMAX,
) -> np.ndarray:
    """Slaney-style triangular mel filterbank with area normalisation.

    Args:
        sr: sample rate in Hz.
        n_fft: FFT size in samples; the bank has ``1 + n_fft // 2`` columns,
            column ``k`` being the frequency ``k * sr / n_fft`` Hz.
        n_mels: number of bands (rows).
        fmin: lower edge of the first band in Hz.
        fmax: upper edge of the last band in Hz (at most ``sr / 2``).

    Returns:
        A read-only float64 array ``(n_mels, 1 + n_fft // 2)`` of weights
        (magnitude spectrum -> band energy), matching
        ``librosa.filters.mel(htk=False, norm='slaney')``.
    """
    if not 0.0 <= fmin < fmax <= sr / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    return _filterbank_cached(int(sr), int(n_fft), int(n_mels), float(fmin), float(fmax))


def _stft_magnitude(y: np.ndarray) -> np.ndarray:
    """|STFT| with centred frames and zero padding (librosa ``center=True``, ``pad_mode="constant"``).

    ``y``: (n,) samples; returns ``(1 + N_FFT // 2, 1 + n // HOP)`` magnitudes, periodic Hann window of
    :data:`WIN` = :data:`N_FFT` samples, unscaled.
    """
    return spectra(y, N_FFT, HOP, frame_len=WIN, window="hann", center=True, pad_end=False, magnitude=True)


def melspectrogram(wav: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Normalised log-mel spectrogram as consumed by Wav2Lip-family networks.

    Args:
        wav: mono audio, 1-D, samples in ``[-1, 1]`` at ``sr`` Hz.  Integer
            arrays are not rescaled: convert int16 PCM with ``x / 32768``
            first.
        sr: sample rate in Hz; must be 16 000 (resample before calling).

    Returns:
        float32 array ``(80, 1 + len(wav) // 200)``.  Column ``t`` describes
        the 50 ms around sample ``200 * t`` (12.5 ms per column, 80 columns
        per second); values are in ``[-4, 4]`` where one unit is 12.5 dB and
        ``-4`` is silence (see the module docstring for the exact formula).

    Raises:
        ValueError: on a wrong sample rate, a non-1-D input, an empty input
            or non-finite samples.
    """
    if sr != SAMPLE_RATE:
        raise ValueError(f"melspectrogram needs {SAMPLE_RATE} Hz audio, got {sr} Hz: resample it first")
    y = np.asarray(wav)
    if y.ndim != 1:
        raise ValueError(f"melspectrogram needs mono 1-D audio, got shape {y.shape}")
    if y.size == 0:
        raise ValueError("melspectrogram got empty audio")
    y = y.astype(np.float64, copy=False)
    if not np.all(np.isfinite(y)):
        raise ValueError("melspectrogram got NaN or infinite samples")
    emphasised = preemphasis(y, PREEMPHASIS)
    magnitude = _stft_magnitude(emphasised)
    mel = mel_filterbank() @ magnitude
    amp_floor = 10.0 ** (MIN_LEVEL_DB / 20.0)
    db = 20.0 * np.log10(np.maximum(amp_floor, mel)) - REF_LEVEL_DB
    scaled = (2.0 * MAX_ABS_VALUE) * ((db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS_VALUE
    return np.clip(scaled, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def _pad_to_window(mel: np.ndarray) -> np.ndarray:
    """Right-pad a spectrogram shorter than one window with silence."""
    n = mel.shape[1]
    if n >= WINDOW_FRAMES:
        return mel
    logger.debug("mel spectrogram has %d frames (< %d): padding with silence", n, WINDOW_FRAMES)
    pad = np.full((mel.shape[0], WINDOW_FRAMES - n), SILENCE, dtype=mel.dtype)
    return np.concatenate([mel, pad], axis=1)


def _check_mel(mel: np.ndarray, fps: float) -> np.ndarray:
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[1] == 0:
        raise ValueError(f"expected a (bands, frames) mel spectrogram, got shape {mel.shape}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    return mel


def mel_windows(mel: np.ndarray, fps: float, n_frames: int | None = None) -> np.ndarray:
    """Cut one 16-frame (0.2 s) mel window per video frame, Wav2Lip/VideoReTalking style.

    Window ``i`` (for video frame ``i`` at ``fps`` frames per second) starts
    at mel column ``int(i * (80 / fps))``, i.e. at time ``i / fps`` seconds,
    and spans the following 0.2 s.  The reference keeps cutting until a
    window would run past the end of the spectrogram; that last window is
    replaced by the final 16 columns, and nothing comes after it.

    Args:
        mel: ``(bands, T)`` spectrogram from :func:`melspectrogram`
            (80 columns per second).
        fps: video frame rate in frames per second (float, as probed).
        n_frames: number of windows wanted.  ``None`` gives the reference
            count (the first ``i`` whose window would overrun, plus one).
            Otherwise exactly ``n_frames`` windows; every window that would
            overrun is the final 16 columns, as in the reference.

    Returns:
        ``(n, bands, 16)`` array of the same dtype as ``mel``.  A
        spectrogram shorter than 16 columns is first right-padded with
        silence (``-4``).
    """
    mel = _pad_to_window(_check_mel(mel, fps))
    total = mel.shape[1]
    step = 80.0 / fps  # the reference multiplies i by this precomputed ratio
    last_start = total - WINDOW_FRAMES
    if n_frames is None:
        count = 0
        while int(count * step) + WINDOW_FRAMES <= total:
            count += 1
        n_frames = count + 1
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    starts = [min(int(i * step), last_start) for i in range(n_frames)]
    out = np.empty((n_frames, mel.shape[0], WINDOW_FRAMES), dtype=mel.dtype)
    for i, s in enumerate(starts):
        out[i] = mel[:, s : s + WINDOW_FRAMES]
    return out


def mel_window_at(mel: np.ndarray, i: int, fps: float, lead_frames: int = 2) -> np.ndarray:
    """One 16-frame mel window for video frame ``i``, SadTalker style.

    The window starts at column ``int(80 * (i - lead_frames) / fps)`` (so,
    with the default ``lead_frames=2`` at 25 fps, it begins 80 ms before
    the frame and is roughly centred on it: 0.2 s around time ``i / fps``).
    Column indices outside ``[0, T - 1]`` are clamped, which repeats the
    first or last column (edge replication) instead of shifting the window.

    Args:
        mel: ``(bands, T)`` spectrogram from :func:`melspectrogram`.
        i: video frame index (0-based).
        fps: video frame rate in frames per second.
        lead_frames: how many video frames the window starts before frame ``i``.

    Returns:
        ``(bands, 16)`` array of the same dtype as ``mel``.
    """
    mel = _check_mel(mel, fps)
    start = int(80.0 * ((i - lead_frames) / float(fps)))
    cols = np.clip(np.arange(start, start + WINDOW_FRAMES), 0, mel.shape[1] - 1)
    return mel[:, cols]
