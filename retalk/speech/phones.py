"""Phone recognition from audio with pocketsphinx (allphone mode, bundled en-us models).

:func:`recognize_phones` decodes speech into a sequence of timed ARPAbet
phones with pocketsphinx 5's phone-loop search: the bundled US-English
acoustic model (``model/en-us/en-us``) constrained only by the bundled
phone bigram language model (``en-us-phone.lm.bin``), so no words or
dictionary are involved and any speech (even another language, badly) comes
out as English phones.

Labels are pocketsphinx's: the 39 CMU phones (``AA`` ... ``ZH``), ``SIL`` and
fillers such as ``+NSN+`` (noise), ``+SPN+`` (spoken noise), ``+BREATH+``;
:func:`retalk.speech.visemes.phone_to_viseme` understands all of them.

State: nothing is cached between calls.  A new decoder is built for every
call (0.15-0.3 s of model loading, the fixed part of the cost), which keeps
the function thread-safe, free of global state and deterministic: a reused
pocketsphinx decoder carries cepstral-mean and noise estimates from one
utterance into the next, so the same audio can decode differently depending
on what was decoded before it.  pocketsphinx's own log output is
silenced (``loglevel=FATAL``, ``logfn=/dev/null``).

Units: samples float32 in [-1, 1], sample rates in Hz, times in seconds;
pocketsphinx works on 10 ms frames (100 frames/s) at 16 kHz.
"""
from __future__ import annotations

import logging
import os
import time
from math import gcd

import numpy as np

from retalk.errors import InputError, MissingDependencyError
from retalk.speech.types import Phone

log = logging.getLogger(__name__)

MODEL_RATE = 16000
"""Sample rate (Hz) of pocketsphinx's en-us acoustic model; other rates are resampled."""
FRAME_RATE = 100
"""pocketsphinx analysis frames per second (10 ms frames)."""
LANGUAGE_WEIGHT = 1.0
"""Phone-LM weight (``-lw``).  Lower than the word-decoding default (6.5), which in a
phone loop swallows short consonants into neighbours: on espeak speech lw=1 found
about 1.5x the bilabials of lw=2 and 4x those of lw=6.5 at equal or better frame accuracy."""
BEAM = 1e-20
"""Search beams (``-beam`` and ``-pbeam``), the values CMU recommends for phone decoding."""
SILENCE_PEAK = 1e-4
"""Audio whose absolute peak is below this (-80 dBFS) is returned as one ``SIL`` phone
without decoding."""


def _model_paths() -> tuple[str, str]:
    """(acoustic model dir, phone LM file) of pocketsphinx's bundled en-us model."""
    try:
        import pocketsphinx
    except ImportError:
        raise MissingDependencyError(
            "phone recognition needs the 'pocketsphinx' package (pip install pocketsphinx)"
        ) from None
    root = pocketsphinx.get_model_path()
    hmm = os.path.join(root, "en-us", "en-us")
    phone_lm = os.path.join(root, "en-us", "en-us-phone.lm.bin")
    for path in (hmm, phone_lm):
        if not os.path.exists(path):
            raise MissingDependencyError(f"pocketsphinx model file missing: {path}")
    return hmm, phone_lm


def _to_model_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 ``samples`` resampled from ``sample_rate`` to :data:`MODEL_RATE` Hz."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:  # (n, channels) or (channels, n): average to mono
        x = x.mean(axis=1 if x.shape[0] >= x.shape[1] else 0)
    if x.ndim != 1:
        raise InputError(f"audio must be mono samples (1-D), got shape {np.shape(samples)}")
    if sample_rate != MODEL_RATE:
        from scipy.signal import resample_poly

        g = gcd(int(sample_rate), MODEL_RATE)
        x = resample_poly(x, MODEL_RATE // g, int(sample_rate) // g).astype(np.float32)
    return x


def _contiguous(segments: list[tuple[str, float, float]], duration: float) -> list[Phone]:
    """Phones from (label, start s, end s) segments, clipped to ``[0, duration]``,
    overlaps trimmed and gaps (including before the first and after the last)
    filled with ``SIL``, so the result tiles the whole audio."""
    phones: list[Phone] = []
    t = 0.0
    for label, start, end in sorted(segments, key=lambda s: s[1]):
        start, end = max(min(start, duration), t), min(end, duration)
        if end <= start:
            continue
        if start > t:
            phones.append(Phone("SIL", t, start))
        phones.append(Phone(label, start, end))
        t = end
    if t < duration:
        if phones and phones[-1].label == "SIL":
            phones[-1] = Phone("SIL", phones[-1].start, duration)
        else:
            phones.append(Phone("SIL", t, duration))
    return phones


def recognize_phones(samples: np.ndarray, sample_rate: int = MODEL_RATE) -> list[Phone]:
    """Recognise timed ARPAbet phones in ``samples`` (float32 mono in [-1, 1] at ``sample_rate`` Hz).

    Returns phones in time order with start/end in seconds (10 ms frames)
    that tile ``[0, duration]`` with no gaps or overlaps (uncovered frames
    become ``SIL``); silence and noise come back as ``SIL`` or ``+NSN+``-style
    fillers.  Empty audio gives ``[]``; audio
    quieter than -80 dBFS gives a single ``SIL`` phone without decoding.
    Audio at rates other than 16 kHz is resampled first.

    Raises :class:`InputError` for a non-positive sample rate or non-mono
    input, :class:`~retalk.errors.MissingDependencyError` if pocketsphinx or
    its bundled model is missing.
    """
    if sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}")
    x = _to_model_rate(samples, sample_rate)
    duration = len(x) / float(MODEL_RATE)
    if x.size == 0:
        return []
    if not np.all(np.isfinite(x)):
        raise InputError("audio contains NaN or infinite samples")
    if float(np.max(np.abs(x))) < SILENCE_PEAK:
        return [Phone("SIL", 0.0, duration)]

    hmm, phone_lm = _model_paths()
    from pocketsphinx import Decoder

    t0 = time.perf_counter()
    decoder = Decoder(
        hmm=hmm,
        allphone=phone_lm,
        lw=LANGUAGE_WEIGHT,
        beam=BEAM,
        pbeam=BEAM,
        samprate=float(MODEL_RATE),
        loglevel="FATAL",
        logfn=os.devnull,
    )
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, no_search=False, full_utt=True)
    decoder.end_utt()

    phones = _contiguous(
        [(seg.word, seg.start_frame / FRAME_RATE, (seg.end_frame + 1) / FRAME_RATE)  # end inclusive
         for seg in (decoder.seg() or ())],  # None when the decoder found nothing (very short audio)
        duration,
    )
    log.debug("recognised %d phones in %.2f s of audio in %.3f s",
              len(phones), duration, time.perf_counter() - t0)
    return phones
