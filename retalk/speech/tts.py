"""Offline text-to-speech with espeak-ng, with the synthesiser's own phone timings.

The library binding is :mod:`retalk.speech.espeak` (ctypes; no system
package, no subprocess, no network; calls serialised by its lock, so the
functions here are safe to call from several threads).

The synthesiser reports a phoneme event (``espeakEVENT_PHONEME``) at the
start of every phone it speaks, with the espeak phoneme mnemonic and its
position in the output audio; :func:`synthesize` turns those into
:class:`~retalk.speech.types.Phone` spans, which are exact by construction
(they are where the synthesiser put the phones, not a recogniser's guess).

Units: sample rates in Hz, times in seconds (espeak reports milliseconds),
samples as float32 in [-1, 1], speaking rate in words per minute.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retalk.errors import InputError
from retalk.speech.espeak import RATE_MAX_WPM, RATE_MIN_WPM, espeakEVENT_PHONEME, installed_language_tags, synth
from retalk.speech.types import Phone

__all__ = ["RATE_MAX_WPM", "RATE_MIN_WPM", "Speech", "list_voices", "synthesize", "synthesize_to_wav"]

log = logging.getLogger(__name__)

# ------------------------------------------------------------- public types


@dataclass(frozen=True)
class Speech:
    """Synthesised speech and the synthesiser's phone timings.

    ``samples``: float32 mono in [-1, 1] at ``sample_rate`` Hz (22050 for
    espeak-ng).  ``phones``: espeak mnemonics (``"b"``, ``"'O:"``, ``"_:"``)
    with start/end in seconds, contiguous, covering ``[0, duration]``; pauses
    are ``"_"``-labelled phones.
    """

    samples: np.ndarray
    sample_rate: int
    phones: tuple[Phone, ...]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / float(self.sample_rate)



# ------------------------------------------------------------------ public API


def list_voices() -> list[str]:
    """Language tags espeak-ng can speak here (sorted), each a valid ``voice`` for :func:`synthesize`.

    These are the installed voices' language tags (``"en-us"``, ``"en-gb"``,
    ``"es"``, ``"de"`` ...), leaving out voices whose pronunciation dictionary
    is not installed.  :func:`synthesize` also accepts voice identifiers such
    as ``"gmw/en-US"`` and a ``+variant`` suffix (``"en-us+f3"``).
    """
    return installed_language_tags()


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 160) -> Speech:
    """Speak ``text`` with espeak-ng and return the audio with its phone timings.

    ``voice`` is an espeak-ng voice or language name (see :func:`list_voices`);
    ``rate_wpm`` the speaking rate in words per minute (80-450).  Each phone's
    start is its phoneme event's ``audio_position`` (ms -> s) and its end the
    next event's start (the last ends with the audio); a pause before the
    first event becomes a ``"_"`` phone, and zero-length events and
    language-switch markers (``"(en)"``, when a word is spoken with another
    language's rules) are dropped.

    espeak-ng keeps a little synthesis state from one call to the next, so
    repeating a call can shift the audio and timings by a few samples.

    Raises :class:`InputError` (one line) for empty text, an unknown voice,
    a rate out of range, or text that produces no sound.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError("text to speak is empty")
    if not voice or not isinstance(voice, str) or "\0" in voice:
        raise InputError(f"unknown espeak-ng voice {voice!r}")
    if not RATE_MIN_WPM <= int(rate_wpm) <= RATE_MAX_WPM:
        raise InputError(f"speaking rate {rate_wpm} wpm is outside {RATE_MIN_WPM}-{RATE_MAX_WPM}")
    data = text.replace("\0", " ").encode("utf-8")
    pcm, sample_rate, events = synth(data, voice, int(rate_wpm))
    samples = (pcm.astype(np.float32) / 32768.0)
    if samples.size == 0 or not np.any(samples):
        raise InputError(f"espeak-ng produced no sound for {text[:40]!r}")
    duration = samples.size / float(sample_rate)
    phones = _phones_from_events(events, duration)
    log.debug("synthesised %.2f s, %d phones, voice %s, %d wpm", duration, len(phones), voice, rate_wpm)
    return Speech(samples=samples, sample_rate=sample_rate, phones=tuple(phones))


def _is_language_switch(label: str) -> bool:
    """espeak reports a switch of language inside the text as a pseudo-phoneme ``"(en)"``."""
    return len(label) > 2 and label[0] == "(" and label[-1] == ")"


def _phones_from_events(events: list[tuple[int, int, str]], duration: float) -> list[Phone]:
    """Phone spans (seconds) from (type, audio ms, label) events; see :func:`synthesize`."""
    marks = [(min(ms / 1000.0, duration), label) for typ, ms, label in events
             if typ == espeakEVENT_PHONEME and label and not _is_language_switch(label)]
    if not marks:
        return [Phone("_", 0.0, duration)] if duration > 0 else []
    for i in range(1, len(marks)):  # never let time run backwards
        if marks[i][0] < marks[i - 1][0]:
            marks[i] = (marks[i - 1][0], marks[i][1])
    if marks[0][0] > 0.0:
        marks.insert(0, (0.0, "_"))
    phones: list[Phone] = []
    for i, (start, label) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else duration
        if end > start:
            phones.append(Phone(label, start, end))
    return phones


def synthesize_to_wav(text: str, path: str | Path, voice: str = "en-us", rate_wpm: int = 160) -> Speech:
    """:func:`synthesize` ``text`` and write it to ``path`` as a WAV file; return the speech."""
    from retalk.media.audio import write_wav

    speech = synthesize(text, voice=voice, rate_wpm=rate_wpm)
    write_wav(path, speech.samples, speech.sample_rate)
    return speech
