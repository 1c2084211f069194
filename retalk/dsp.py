"""Small signal-processing functions over numpy arrays.

They exist so that the dubbing path does not import ``scipy.signal``, whose
import alone costs about a second on a laptop (it pulls in ``scipy.stats``);
the tests check them against scipy.
"""
from __future__ import annotations

import numpy as np


def hann(n: int) -> np.ndarray:
    """Periodic Hann window of ``n`` samples (the FFT convention; ``scipy.signal.get_window("hann", n)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def stft(samples: np.ndarray, sample_rate: float, nperseg: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Short-time Fourier transform with a periodic Hann window.

    The signal gets ``nperseg // 2`` zeros at both ends (frame *k* is centred on
    sample ``k * hop``) and is zero-padded to a whole number of hops. Spectra are
    scaled by the window's sum, so a full-scale sinusoid has magnitude 0.5.
    Returns ``(frequencies in Hz (nperseg // 2 + 1,), spectra (n_freq, n_frames) complex)``;
    equal to ``scipy.signal.stft(x, fs, "hann", nperseg, nperseg - hop, boundary="zeros", padded=True)``.
    """
    x = np.asarray(samples, np.float64)
    half = nperseg // 2
    x = np.concatenate([np.zeros(half), x, np.zeros(half)])
    extra = -(len(x) - nperseg) % hop
    if extra:
        x = np.concatenate([x, np.zeros(extra)])
    n_frames = (len(x) - nperseg) // hop + 1
    win = hann(nperseg)
    frames = np.lib.stride_tricks.sliding_window_view(x, nperseg)[::hop][:n_frames]
    spec = np.fft.rfft(frames * win, axis=1).T / win.sum()
    freqs = np.fft.rfftfreq(nperseg, 1.0 / sample_rate)
    return freqs, spec


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
