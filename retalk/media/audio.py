"""Audio input with PyAV: any container or codec FFmpeg reads, to float32 arrays.

Units: sample rates in Hz, durations in seconds, samples as float32 in [-1, 1].
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from retalk.errors import InputError
from retalk.media.probe import check_file, open_container

log = logging.getLogger(__name__)

ANALYSIS_RATE = 16000
"""Sample rate (Hz) of the mono track every speech feature is computed from."""


@dataclass(frozen=True)
class Audio:
    """A decoded audio track.

    ``samples`` has shape (n,) for mono analysis audio, float32 in [-1, 1].
    """

    samples: np.ndarray
    sample_rate: int
    source: str = ""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / float(self.sample_rate)


def load_audio(path: str | Path, sample_rate: int = ANALYSIS_RATE) -> Audio:
    """Decode the first audio stream of ``path`` to mono float32 at ``sample_rate`` Hz.

    ``path`` may be an audio file or a video whose sound to use. Raises
    :class:`InputError` (one line, no traceback) for a missing file, a file
    FFmpeg cannot read, a file without an audio stream, or an empty stream.
    """
    path = check_file(path, "audio file")
    with open_container(path) as container:
        if not container.streams.audio:
            raise InputError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: cannot decode audio ({exc.strerror or exc})") from None
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise InputError(f"{path}: audio stream is empty")
    log.debug("loaded %s: %.2f s at %d Hz", path, len(samples) / sample_rate, sample_rate)
    return Audio(samples=samples, sample_rate=sample_rate, source=str(path))


def check_not_silent(audio: Audio, threshold_db: float = -60.0) -> None:
    """Raise :class:`InputError` if the loudest 50 ms of ``audio`` is below ``threshold_db`` dBFS."""
    win = max(1, int(0.05 * audio.sample_rate))
    x = audio.samples
    n = len(x) // win
    if n == 0:
        peak = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    else:
        peak = float(np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1)).max())
    level = 20 * np.log10(max(peak, 1e-10))
    if level < threshold_db:
        raise InputError(
            f"{audio.source or 'audio'}: the audio is silent (loudest level {level:.0f} dBFS); "
            "give a speech track"
        )


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples to a 16-bit PCM WAV file (for tests and demos)."""
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
