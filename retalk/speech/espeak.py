"""The espeak-ng shared library through :mod:`ctypes`: loading, voices, one synthesis call.

espeak-ng is used as a shared library (the ``libespeak-ng.so`` and
``espeak-ng-data`` that the ``espeakng-loader`` wheel ships): no system
package, no subprocess, no network.  :func:`synth` speaks UTF-8 text and
returns the 16-bit PCM it produced with the library's events (phoneme events
carry the espeak mnemonic and the position in the audio, in milliseconds);
:mod:`retalk.speech.tts` turns those into timed phones.

Global state: libespeak-ng keeps its voice, parameters and callback in
process-wide C globals and is not re-entrant.  This module therefore
initialises it lazily, once per process, on the first call that needs it,
and serialises every call into the library with a module-level lock
(:data:`_LOCK`), so the functions here are safe to call from several
threads (calls run one at a time).  Do not drive the same library from
other code in the same process.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retalk.errors import InputError, MissingDependencyError
from retalk.signals import deferred_signals

log = logging.getLogger(__name__)

# ----------------------------------------------------------- speak_lib.h ABI
# (espeak-ng API revision 12; values from speak_lib.h)
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
espeakCHARS_UTF8 = 1
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakINITIALIZE_DONT_EXIT = 0x8000
espeakRATE = 1
EE_OK = 0

espeakEVENT_LIST_TERMINATED = 0
espeakEVENT_WORD = 1
espeakEVENT_SENTENCE = 2
espeakEVENT_END = 5
espeakEVENT_MSG_TERMINATED = 6
espeakEVENT_PHONEME = 7
espeakEVENT_SAMPLERATE = 8

RATE_MIN_WPM = 80
"""Slowest speaking rate espeak-ng accepts (espeakRATE_MINIMUM), words per minute."""
RATE_MAX_WPM = 450
"""Fastest speaking rate espeak-ng accepts (espeakRATE_MAXIMUM), words per minute."""


class _EventId(ctypes.Union):
    """``espeak_EVENT.id``: a number, a name pointer, or an 8-byte phoneme mnemonic."""

    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),  # phoneme name, NUL-terminated unless all 8 bytes used
    ]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (40 bytes on LP64: six 4-byte ints, a pointer at 24, the union at 32)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds into the message's audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` as returned by ``espeak_ListVoices``."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.POINTER(ctypes.c_char)),  # (priority byte, language\0)*, \0
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class _Collector:
    """Per-call buffers the C callback fills (only touched while :data:`_LOCK` is held)."""

    chunks: list[np.ndarray] = field(default_factory=list)
    events: list[tuple[int, int, str]] = field(default_factory=list)  # (type, audio ms, label)
    error: BaseException | None = None  # raised in the callback (Ctrl-C, SIGTERM): re-raised after the call


@dataclass(frozen=True)
class _VoiceInfo:
    """One installed espeak-ng voice: file identifier, display name, languages by priority."""

    identifier: str  # e.g. "gmw/en-US"; accepted by espeak_SetVoiceByName
    name: str  # e.g. "English (America)"
    languages: tuple[tuple[int, str], ...]  # (priority, tag); lower priority = better fit
    usable: bool  # False when its pronunciation dictionary is not installed


@dataclass
class _Engine:
    """The initialised library, its sample rate and the live callback object."""

    lib: ctypes.CDLL
    sample_rate: int
    data_path: str
    callback: object  # the ctypes callback; must stay referenced while the library lives
    collector: _Collector | None = None
    voices: list[_VoiceInfo] | None = None  # filled on first use by _voices()


_LOCK = threading.Lock()
"""Serialises every call into libespeak-ng (global C state, not re-entrant)."""
_ENGINE: _Engine | None = None


def _declare(lib: ctypes.CDLL) -> None:
    """Set argument/result types of the functions used, for a correct 64-bit ABI."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p


def _engine() -> _Engine:
    """Load and initialise libespeak-ng once (call with :data:`_LOCK` held)."""
    global _ENGINE
    if _ENGINE is not None:
        return _ENGINE
    try:
        import espeakng_loader
    except ImportError:
        raise MissingDependencyError(
            "text-to-speech needs the 'espeakng-loader' package (pip install espeakng-loader)"
        ) from None
    lib_path = espeakng_loader.get_library_path()
    data_path = espeakng_loader.get_data_path()
    try:
        lib = ctypes.CDLL(lib_path)
    except OSError as exc:
        raise MissingDependencyError(f"cannot load espeak-ng library {lib_path}: {exc}") from None
    _declare(lib)
    options = espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT
    sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), options)
    if sample_rate <= 0:
        raise MissingDependencyError(f"espeak-ng failed to initialise with data at {data_path}")

    engine = _Engine(lib=lib, sample_rate=sample_rate, data_path=data_path, callback=None)

    def on_synth(wav: ctypes.POINTER(ctypes.c_short), n: int, events: ctypes.POINTER(_Event)) -> int:
        col = engine.collector
        if col is None:  # not ours; ask the library to stop
            return 1
        try:
            _collect(col, wav, n, events)
        except BaseException as exc:  # noqa: BLE001 - ctypes would print and drop it; stop and re-raise later
            col.error = exc
            return 1
        return 0

    def _collect(col: _Collector, wav: ctypes.POINTER(ctypes.c_short), n: int,
                 events: ctypes.POINTER(_Event)) -> None:
        if wav and n > 0:
            col.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        if events:
            i = 0
            while events[i].type != espeakEVENT_LIST_TERMINATED:
                ev = events[i]
                label = ""
                if ev.type == espeakEVENT_PHONEME:
                    raw = bytes(ev.id.string)  # all 8 bytes; cut at the first NUL
                    label = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
                col.events.append((ev.type, ev.audio_position, label))
                i += 1

    engine.callback = _SynthCallback(on_synth)
    lib.espeak_SetSynthCallback(engine.callback)
    version = lib.espeak_Info(None)
    log.debug("espeak-ng %s initialised at %d Hz (data %s)",
              version.decode() if version else "?", sample_rate, data_path)
    _ENGINE = engine
    return engine


def _voice_languages(voice: _Voice) -> list[tuple[int, str]]:
    """Decode ``espeak_VOICE.languages``: (priority byte, UTF-8 tag, NUL)*, then NUL."""
    out: list[tuple[int, str]] = []
    p = voice.languages
    if not p:
        return out
    base = ctypes.addressof(p.contents)
    i = 0
    while p[i] != b"\0":
        priority = p[i][0]
        i += 1
        start = i
        while p[i] != b"\0":
            i += 1
        out.append((priority, ctypes.string_at(base + start, i - start).decode("utf-8", "replace")))
        i += 1
    return out


def _dictionary_installed(data_path: str, identifier: str) -> bool:
    """Whether the pronunciation dictionary a voice needs is present in ``data_path``.

    Mirrors espeak-ng's rule: the voice file's ``dictionary`` line if it has
    one, else its first ``language`` tag up to the first ``-`` (``en-us`` ->
    ``en_dict``).  The espeakng-loader wheel omits a few (fo, kaa, xex).
    """
    data = Path(data_path)
    for folder in ("lang", "voices"):
        voice_file = data / folder / identifier
        if voice_file.is_file():
            break
    else:
        return True  # unknown layout: let espeak decide
    dictionary = first_language = None
    for line in voice_file.read_text(encoding="utf-8", errors="replace").splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        if words[0] == "dictionary":
            dictionary = words[1]
        elif words[0] == "language" and first_language is None:
            first_language = words[1]
    name = dictionary or (first_language or "").split("-")[0]
    return not name or (data / f"{name}_dict").is_file()


def _voices(eng: _Engine) -> list[_VoiceInfo]:
    """The installed voices (read once; call with :data:`_LOCK` held)."""
    if eng.voices is None:
        table = eng.lib.espeak_ListVoices(None)
        voices: list[_VoiceInfo] = []
        i = 0
        while table[i]:
            v = table[i].contents
            ident = (v.identifier or b"").decode("utf-8", "replace")
            voices.append(_VoiceInfo(
                identifier=ident,
                name=(v.name or b"").decode("utf-8", "replace"),
                languages=tuple(_voice_languages(v)),
                usable=_dictionary_installed(eng.data_path, ident),
            ))
            i += 1
        eng.voices = voices
    return eng.voices


def _resolve_voice(eng: _Engine, voice: str) -> str:
    """espeak voice name for ``voice`` (a language tag, voice name or identifier,
    optionally with a ``+variant``); raises :class:`InputError` if none is installed."""
    base, plus, variant = voice.partition("+")
    key = base.strip().lower()
    candidates: list[tuple[int, int, _VoiceInfo]] = []
    for order, v in enumerate(_voices(eng)):
        if key in (v.identifier.lower(), v.name.lower()):
            candidates.append((-1, order, v))
        for priority, tag in v.languages:
            if tag.lower() == key:
                candidates.append((priority, order, v))
    if not candidates:
        raise InputError(f"unknown espeak-ng voice {voice!r}; `retalk say --list-voices` lists the installed ones")
    usable = [c for c in candidates if c[2].usable]
    if not usable:
        raise InputError(f"espeak-ng voice {voice!r} is not installed (its dictionary is missing)")
    best = min(usable, key=lambda c: (c[0], c[1]))[2]
    return best.identifier + (plus + variant if variant else "")


def installed_language_tags() -> list[str]:
    """Sorted language tags of the installed voices whose pronunciation dictionary is present."""
    with _LOCK:
        voices = _voices(_engine())
    return sorted({tag for v in voices if v.usable for _, tag in v.languages if tag})


def synth(data: bytes, voice: str, rate_wpm: int) -> tuple[np.ndarray, int, list[tuple[int, int, str]]]:
    """Speak UTF-8 ``data`` with ``voice`` at ``rate_wpm`` words per minute.

    Returns ``(pcm, sample_rate, events)``: int16 mono samples (N,) at
    ``sample_rate`` Hz and the library's events as (type, audio ms, label),
    the label being the phoneme mnemonic for ``espeakEVENT_PHONEME`` and ``""``
    otherwise.  Raises :class:`InputError` for an unknown or uninstalled voice
    or a failed synthesis.
    """
    with _LOCK:
        eng = _engine()
        lib = eng.lib
        name = _resolve_voice(eng, voice)
        if lib.espeak_SetVoiceByName(name.encode("utf-8")) != EE_OK:
            raise InputError(f"espeak-ng cannot load voice {voice!r} ({name})")
        lib.espeak_SetParameter(espeakRATE, int(rate_wpm), 0)
        col = _Collector()
        eng.collector = col
        try:
            with deferred_signals():  # a Ctrl-C raised inside the callback would be printed and dropped
                err = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, None, None)
        finally:
            eng.collector = None
        sample_rate = eng.sample_rate
    if col.error is not None:  # a signal handler raised inside the callback: synthesis stopped, pass it on
        raise col.error
    if err != EE_OK:
        raise InputError(f"espeak-ng could not synthesise the text (error {err})")
    pcm = np.concatenate(col.chunks) if col.chunks else np.zeros(0, np.int16)
    return pcm, sample_rate, col.events
