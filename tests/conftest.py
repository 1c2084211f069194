"""Shared fixtures: every input is generated (astronaut photo moved around, synthesized speech)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from _skip_audit import pytest_addoption, pytest_configure  # noqa: F401  (skip summary, --skip-allowlist)

os.environ.setdefault("GLOG_minloglevel", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def face_clip(media_dir):
    """2 s, 25 fps, 320×320 clip of the moving astronaut (no audio)."""
    from retalk.samples import write_face_clip

    return write_face_clip(media_dir / "face.mp4", seconds=2.0, fps=25, width=320, height=320)


@pytest.fixture(scope="session")
def vowel_wav(media_dir):
    """3 s of syllable-like voiced sound at 16 kHz."""
    from retalk.samples import write_vowel_speech

    return write_vowel_speech(media_dir / "vowels.wav", seconds=3.0)


@pytest.fixture(scope="session")
def short_wav(media_dir):
    from retalk.samples import write_vowel_speech

    return write_vowel_speech(media_dir / "short.wav", seconds=1.2)


@pytest.fixture(scope="session")
def silent_wav(media_dir):
    from retalk.media import write_wav

    p = media_dir / "silent.wav"
    write_wav(p, np.zeros(16000, np.float32), 16000)
    return p


@pytest.fixture(scope="session")
def photo(media_dir):
    import cv2

    from retalk.samples import astronaut

    p = media_dir / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(astronaut(384), cv2.COLOR_RGB2BGR))
    return p


@pytest.fixture(scope="session")
def noface_clip(media_dir):
    """1 s of a moving gradient: no face anywhere."""
    from fractions import Fraction

    from retalk.media import VideoSink

    p = media_dir / "noface.mp4"
    with VideoSink(p, 160, 120, Fraction(25), preset="ultrafast") as s:
        for i in range(25):
            f = np.zeros((120, 160, 3), np.uint8)
            f[..., 0] = np.linspace(0, 255, 160)[None, :]
            f[..., 1] = (i * 8) % 255
            s.write(f)
    return p
