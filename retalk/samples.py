"""Generated sample inputs for the demo, tests and benchmarks (nothing downloaded).

The face is scikit-image's astronaut photo (public domain, shipped in the
scikit-image wheel), moved around so trackers and renderers see motion; the
speech comes from the bundled espeak-ng synthesizer, or a synthetic vowel
sequence when only sound with known structure is needed.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from retalk.media import VideoSink, write_wav

DEMO_TEXT = (
    "Hello! This is retalk. My lips follow the new speech, and they close on every p, b and m. "
    "Maybe a big blue balloon will bob up above the map."
)


def astronaut(size: int = 512) -> np.ndarray:
    """The astronaut photo (RGB uint8), resized to ``size`` × ``size``."""
    from skimage import data

    img = data.astronaut()
    return img if size == 512 else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def moving_frames(n: int, width: int = 512, height: int = 512, fps: float = 25.0, motion: float = 1.0,
                  image: np.ndarray | None = None):
    """Yield ``n`` RGB frames of a photo drifting, rotating and zooming slightly (a gentle head motion)."""
    src = astronaut() if image is None else image
    sh, sw = src.shape[:2]
    base = max(width / sw, height / sh) * 1.1
    for i in range(n):
        t = i / fps
        ang = motion * 3.0 * np.sin(2 * np.pi * 0.23 * t)
        s = base * (1 + motion * 0.03 * np.sin(2 * np.pi * 0.17 * t))
        dx = motion * 0.03 * width * np.sin(2 * np.pi * 0.31 * t)
        dy = motion * 0.02 * height * np.sin(2 * np.pi * 0.19 * t + 1)
        m = cv2.getRotationMatrix2D((sw / 2, sh / 2), ang, s)
        m[0, 2] += width / 2 - sw / 2 + dx
        m[1, 2] += height / 2 - sh / 2 + dy
        yield cv2.warpAffine(src, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def write_face_clip(path: str | Path, seconds: float = 3.0, fps: float = 25.0, width: int = 512, height: int = 512,
                    motion: float = 1.0, audio_path: str | Path | None = None) -> Path:
    """Write an H.264 clip of the moving astronaut (optionally with a sound track)."""
    n = max(1, int(round(seconds * fps)))
    rate = Fraction(fps).limit_denominator(1001)
    with VideoSink(path, width, height, rate, audio_path=audio_path, crf=18, preset="ultrafast") as sink:
        for f in moving_frames(n, width, height, fps, motion):
            sink.write(f)
    return Path(path)


def vowel_speech(seconds: float = 3.0, sample_rate: int = 16000, syllable_rate: float = 4.0,
                 seed: int = 0) -> np.ndarray:
    """A voiced buzz shaped into syllables with silent gaps: speech-like level structure, no words."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 120 + 15 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 30))
    env = np.clip(np.sin(2 * np.pi * syllable_rate * t / 2) ** 2 * 1.4 - 0.2, 0, 1)
    x = buzz * env + 0.003 * rng.standard_normal(n)
    # crude formant: emphasise 500-2500 Hz
    from scipy.signal import butter, sosfilt

    x = sosfilt(butter(2, [400, 2600], btype="band", fs=sample_rate, output="sos"), x)
    return (0.5 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


def write_vowel_speech(path: str | Path, seconds: float = 3.0, sample_rate: int = 16000) -> Path:
    write_wav(path, vowel_speech(seconds, sample_rate), sample_rate)
    return Path(path)
