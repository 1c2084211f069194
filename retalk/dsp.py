"""Small signal-processing functions over numpy arrays.

They exist so that the dubbing path does not import ``scipy.signal``, whose
import alone costs about a second on a laptop (it pulls in ``scipy.stats``);
the tests check them against scipy. :func:`spectra` is the project's only
short-time Fourier transform: :func:`stft` here, the lip-sync networks' mel
spectrogram (:mod:`retalk.speech.mel`) and SyncNet's MFCC
(:mod:`retalk.metrics.lse`) all frame and transform through it.
"""
from __future__ import annotations

import numpy as np


def hann(n: int) -> np.ndarray:
    """Periodic Hann window of ``n`` samples (the FFT convention; ``scipy.signal.get_window("hann", n)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def preemphasis(samples: np.ndarray, coef: float) -> np.ndarray:
    """Pre-emphasis filter ``y[0] = x[0]``, ``y[n] = x[n] - coef * x[n - 1]`` (float64, same length).

    Equal to ``scipy.signal.lfilter([1, -coef], [1], x)``.
    """
    x = np.asarray(samples, np.float64)
    return np.concatenate([x[:1], x[1:] - coef * x[:-1]])


_BLOCK_FRAMES = 4096
"""Frames transformed at once by :func:`spectra`, to bound memory on long signals
(4096 frames of 800 samples in float64 are 26 MB)."""


def spectra(samples: np.ndarray, n_fft: int, hop: int, *, frame_len: int | None = None,
            window: np.ndarray | None | str = "hann", center: bool = True, pad_end: bool = True,
            magnitude: bool = False) -> np.ndarray:
    """The one short-time Fourier transform of the project: spectra of overlapping frames of a signal.

    Frames of ``frame_len`` samples (default ``n_fft``) start every ``hop`` samples. With ``center``
    the signal first gets ``frame_len // 2`` zeros at both ends, so frame *k* is centred on sample
    ``k * hop``. With ``pad_end`` zeros are appended until the frames cover every sample (at least
    one frame); without it, frames that would run past the end are dropped. Each frame is multiplied
    by ``window`` (``"hann"``: :func:`hann` of ``frame_len``; ``None``: rectangular; or an array of
    ``frame_len`` weights) and transformed with an ``n_fft``-point real FFT (zero-padded at its end
    when ``n_fft > frame_len``); no scaling.

    Args:
        samples: 1-D signal (any unit; the spectra are in the same unit).
        n_fft: FFT size in samples (>= ``frame_len``).
        hop: frame step in samples (> 0).

    Returns:
        ``(n_fft // 2 + 1, n_frames)``: complex spectra, or their magnitudes (float64) when
        ``magnitude`` (computed block by block, so no complex array of the whole signal is made).
        Row *j* is the frequency ``j * sample_rate / n_fft``.
    """
    length = n_fft if frame_len is None else int(frame_len)
    if hop <= 0 or length <= 0 or n_fft < length:
        raise ValueError(f"need hop > 0 and 0 < frame_len <= n_fft, got hop={hop}, frame_len={length}, "
                         f"n_fft={n_fft}")
    x = np.asarray(samples, np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    if center:
        half = length // 2
        x = np.concatenate([np.zeros(half), x, np.zeros(half)])
    if pad_end:
        if len(x) < length:
            x = np.concatenate([x, np.zeros(length - len(x))])
        extra = -(len(x) - length) % hop
        if extra:
            x = np.concatenate([x, np.zeros(extra)])
    n_frames = max(0, (len(x) - length) // hop + 1)
    win = hann(length) if isinstance(window, str) and window == "hann" else window
    if win is not None:
        win = np.asarray(win, np.float64)
        if win.shape != (length,):
            raise ValueError(f"window must have {length} samples, got shape {win.shape}")
    out = np.empty((n_fft // 2 + 1, n_frames), dtype=np.float64 if magnitude else np.complex128)
    if n_frames == 0:
        return out
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::hop][:n_frames]
    for start in range(0, n_frames, _BLOCK_FRAMES):
        block = frames[start:start + _BLOCK_FRAMES]
        spec = np.fft.rfft(block if win is None else block * win, n=n_fft, axis=1).T
        out[:, start:start + block.shape[0]] = np.abs(spec) if magnitude else spec
    return out


def stft(samples: np.ndarray, sample_rate: float, nperseg: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Short-time Fourier transform with a periodic Hann window, scaled as scipy's.

    The signal gets ``nperseg // 2`` zeros at both ends (frame *k* is centred on
    sample ``k * hop``) and is zero-padded to a whole number of hops. Spectra are
    scaled by the window's sum, so a full-scale sinusoid has magnitude 0.5.
    Returns ``(frequencies in Hz (nperseg // 2 + 1,), spectra (n_freq, n_frames) complex)``;
    equal to ``scipy.signal.stft(x, fs, "hann", nperseg, nperseg - hop, boundary="zeros", padded=True)``.
    """
    spec = spectra(samples, nperseg, hop, window="hann", center=True, pad_end=True)
    freqs = np.fft.rfftfreq(nperseg, 1.0 / sample_rate)
    return freqs, spec / hann(nperseg).sum()


def savgol(x: np.ndarray, window: int, order: int) -> np.ndarray:
    """Savitzky–Golay smoothing along axis 0 (``window`` odd, > ``order``).

    Inside, each sample becomes the value at its centre of a polynomial of
    ``order`` fitted to the ``window`` samples around it. The first and last
    ``window // 2`` samples take the values of the polynomial fitted to the first
    (or last) whole window, so the ends are neither padded nor shifted (scipy's
    ``savgol_filter(mode="interp")``).
    """
    if window % 2 != 1 or window <= order:
        raise ValueError(f"window must be odd and larger than order, got {window} and {order}")
    a = np.ascontiguousarray(x, np.float64)
    n = a.shape[0]
    if n < window:
        raise ValueError(f"need at least {window} samples, got {n}")
    half = window // 2
    vander = np.vander(np.arange(window, dtype=np.float64), order + 1, increasing=True)
    fit = vander @ np.linalg.pinv(vander)  # (window, window): one window's samples -> its fitted values
    view = np.lib.stride_tricks.sliding_window_view(a, window, axis=0)  # (n - window + 1, ..., window)
    out = np.empty(a.shape)  # C order, so the reshapes below are views
    out[half:n - half] = view @ fit[half]  # inside: the fit's value at the window's centre
    flat = a.reshape(n, -1)
    out.reshape(n, -1)[:half] = fit[:half] @ flat[:window]
    out.reshape(n, -1)[n - half:] = fit[window - half:] @ flat[n - window:]
    dtype = np.asarray(x).dtype
    return out.astype(dtype) if dtype.kind == "f" else out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges ``(start, stop)`` of the consecutive True values of a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
