"""Plain data types shared by the speech modules: phones, visemes and viseme spans.

Units: every time is in seconds from the start of the audio the phones came
from.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Phone:
    """One phone (or pause) with its time span.

    ``label`` is in whatever notation produced it: ARPAbet from the
    recogniser (``"AA"``, ``"B"``, ``"SIL"``, ``"+NSN+"``), an espeak-ng
    mnemonic from the synthesiser (``"'O:"``, ``"tS"``, ``"_:"``) or IPA.
    ``start`` and ``end`` are in seconds, ``start <= end``.
    """

    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


class Viseme(str, Enum):
    """Mouth-shape classes that phones are folded into for lip-sync.

    Each member's value is its lowercase name, so ``Viseme("pbm") is Viseme.PBM``.
    """

    SIL = "sil"
    """Silence or rest: lips closed or relaxed."""
    PBM = "pbm"
    """Bilabial closure: p, b, m."""
    FV = "fv"
    """Labiodental: lower lip to upper teeth (f, v)."""
    TH = "th"
    """Dental: tongue tip between or behind the teeth (th as in thin/this)."""
    DSTN = "dstn"
    """Alveolar and similar: t d s z n l (and palatal/retroflex stops, taps)."""
    KG = "kg"
    """Velar and back: k g ng, plus h and other glottal/uvular/pharyngeal sounds."""
    CH = "ch"
    """Postalveolar: sh ch jh zh, lips rounded and protruded."""
    R = "r"
    """Rhotic: r and r-coloured vowels (er)."""
    W = "w"
    """Labial-velar glide: w (the oo-glide), rounded and narrow."""
    AA = "aa"
    """Open vowels: aa ae ah ay aw (and schwa)."""
    EH = "eh"
    """Mid spread vowels: eh ey."""
    IY = "iy"
    """Close spread vowels and the palatal glide: iy ih y."""
    AO = "ao"
    """Open rounded vowels: ao oy."""
    OW = "ow"
    """Mid rounded vowel: ow."""
    UW = "uw"
    """Close rounded vowels: uw uh."""


@dataclass(frozen=True)
class VisemeSpan:
    """A viseme held from ``start`` to ``end`` (seconds).

    ``source`` says where the timing came from: ``"tts"`` (the synthesiser's
    own phoneme events) or ``"asr"`` (phones recognised from audio).
    """

    viseme: Viseme
    start: float
    end: float
    source: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start
