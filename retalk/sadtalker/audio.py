"""SadTalker's audio front end: how many video frames a clip has, and one mel window per frame.

The spectrogram is Wav2Lip's (:func:`retalk.speech.mel.melspectrogram`:
SadTalker's ``src/utils/audio.py`` and ``hparams`` are the same recipe, 16 kHz,
80 bands, hop 200 samples = 80 columns per second, values in ``[-4, 4]``).

Frame rule (``src/generate_batch.py``): at 25 fps one frame is 640 samples,
``T = int(n_samples / 640)``, and the audio is cut to ``T * 640`` samples
before the spectrogram, which then has ``1 + floor(3.2 T)`` columns.
Window ``i`` is 16 columns starting at ``int(80 * (i - 2) / 25)``, truncated
toward zero (``-6, -3, 0, 3, 6, 9, 12, ...``), every column index clamped
to ``[0, columns - 1]`` (edge replication, see
:func:`retalk.speech.mel.mel_window_at`).
"""
from __future__ import annotations

import numpy as np

from retalk.errors import InputError
from retalk.speech.mel import SAMPLE_RATE, WINDOW_FRAMES, mel_window_at, melspectrogram

__all__ = ["FPS", "SAMPLES_PER_FRAME", "LEAD_FRAMES", "frame_count", "window_starts", "mel_windows"]

#: Video frame rate SadTalker generates at, frames per second.
FPS = 25
#: Audio samples per video frame at 16 kHz (``16000 / 25``).
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
#: Video frames a window starts before its frame.
LEAD_FRAMES = 2


def frame_count(n_samples: int) -> int:
    """Video frames ``T`` for ``n_samples`` of 16 kHz audio: ``int(n / 640)`` (the tail is dropped)."""
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    return int(n_samples) // SAMPLES_PER_FRAME


def window_starts(n_frames: int) -> np.ndarray:
    """``(T,)`` int64 first mel column of each frame's window, before clamping.

    ``int(80.0 * ((i - 2) / 25.0))`` evaluated in float64 exactly as the
    reference writes it, truncated toward zero.
    """
    i = np.arange(n_frames, dtype=np.float64)
    return np.trunc(80.0 * ((i - LEAD_FRAMES) / float(FPS))).astype(np.int64)


def mel_windows(wav: np.ndarray) -> np.ndarray:
    """One 16-column mel window per 25 fps video frame.

    Args:
        wav: mono 16 kHz audio, 1-D float samples in ``[-1, 1]``.

    Returns:
        ``(T, 80, 16)`` float32 with ``T = frame_count(len(wav))`` (the
        reference's ``indiv_mels``, without its batch and channel axes).

    Raises:
        InputError: the audio is shorter than one frame (40 ms).
    """
    y = np.asarray(wav)
    if y.ndim != 1:
        raise InputError(f"SadTalker needs mono audio, got an array of shape {y.shape}")
    n_frames = frame_count(y.shape[0])
    if n_frames == 0:
        raise InputError(f"the audio is too short: {y.shape[0]} samples, SadTalker needs at least "
                         f"{SAMPLES_PER_FRAME} (one 25 fps frame at 16 kHz)")
    mel = melspectrogram(y[: n_frames * SAMPLES_PER_FRAME])
    out = np.empty((n_frames, mel.shape[0], WINDOW_FRAMES), dtype=np.float32)
    for i in range(n_frames):
        out[i] = mel_window_at(mel, i, float(FPS), lead_frames=LEAD_FRAMES)
    return out
