"""Fold phone labels (ARPAbet, espeak-ng mnemonics, IPA) into mouth-shape classes.

Three notations reach this module:

* **ARPAbet** as pocketsphinx's ``en-us`` model emits it: ``AA AE AH ... ZH``,
  ``SIL`` and fillers such as ``+NSN+``, ``+SPN+``, ``+BREATH+``.  Stress
  digits (``AH0``, ``IY1``) are accepted and ignored.
* **espeak-ng phoneme mnemonics** as espeak-ng reports them in its phoneme
  events (``'O:``, ``aI``, ``tS``, ``@L``, ``_:``): stress marks (``' , % =``)
  and length marks (``:``) are stripped, pauses (``_``, ``_:``, ``_!``, ``||``
  ...) are silence, and the rest is mapped by its articulator-relevant first
  segment (``aI`` -> ``a`` -> AA, ``oU`` -> ``o`` -> OW; affricates such as
  ``tS``/``dZ`` are taken whole).  espeak's ASCII letters follow Kirshenbaum/
  X-SAMPA conventions (``S`` = ʃ, ``T`` = θ, ``N`` = ŋ, ``@`` = ə, ``0`` = ɒ,
  ``2`` = ø, ``9`` = œ ...).
* **IPA** (any language): diacritics, tie bars, modifier letters (ʰ ʲ ʷ),
  stress (ˈ ˌ), length (ː ˑ) and tone letters are stripped before the first
  segment is looked up.

Several labels mean different things in different notations (``S`` is s in
ARPAbet but ʃ in espeak, ``V`` is v in ARPAbet but ʌ in espeak, ``Y`` is the
glide j in ARPAbet but ø in espeak).  Pass ``notation`` when you know it;
without it a label that is a valid upper-case ARPAbet symbol is read as
ARPAbet (what the recogniser emits), any other ASCII label as espeak, and
non-ASCII labels as IPA.  :func:`phones_to_visemes` picks the notation from
the phones' ``source`` (``"tts"`` -> espeak, ``"asr"`` -> ARPAbet).

Choices worth knowing: schwa (ə, espeak ``@``, ARPAbet ``AH``) is AA, as the
ARPAbet convention folds it with ʌ; espeak ``0`` is AA because the en-us voice
realises it as ɑ (IPA ɒ stays AO); rhotics (r ɹ ʀ ʁ, ɚ ɝ, espeak ``3``) are R,
taps (ɾ) are DSTN; h and glottal/uvular/pharyngeal consonants are KG; palatal
stops/nasals/laterals are DSTN and the palatal glide j is IY.  An unknown
vowel-like symbol falls back to AA (open) or EH; an unknown consonant to DSTN.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable

from retalk.speech.types import Phone, Viseme, VisemeSpan

log = logging.getLogger(__name__)

V = Viseme

VOWEL_VISEMES: frozenset[Viseme] = frozenset({V.AA, V.EH, V.IY, V.AO, V.OW, V.UW})
"""Visemes that stand for vowels (R also covers r-coloured vowels, but is not listed)."""

NOTATIONS = ("arpabet", "espeak", "ipa")
"""Values accepted for ``notation``."""

# --------------------------------------------------------------------- ARPAbet
ARPABET: dict[str, Viseme] = {
    "AA": V.AA, "AE": V.AA, "AH": V.AA, "AO": V.AO, "AW": V.AA, "AY": V.AA,
    "B": V.PBM, "CH": V.CH, "D": V.DSTN, "DH": V.TH, "EH": V.EH, "ER": V.R,
    "EY": V.EH, "F": V.FV, "G": V.KG, "HH": V.KG, "IH": V.IY, "IY": V.IY,
    "JH": V.CH, "K": V.KG, "L": V.DSTN, "M": V.PBM, "N": V.DSTN, "NG": V.KG,
    "OW": V.OW, "OY": V.AO, "P": V.PBM, "R": V.R, "S": V.DSTN, "SH": V.CH,
    "T": V.DSTN, "TH": V.TH, "UH": V.UW, "UW": V.UW, "V": V.FV, "W": V.W,
    "Y": V.IY, "Z": V.DSTN, "ZH": V.CH, "SIL": V.SIL,
}
"""CMU/ARPAbet phone set of pocketsphinx's en-us model (stress digits removed)."""

_ARPABET_RE = re.compile(r"([A-Z]{1,3})[012]?")

_SILENCE_WORDS = frozenset({
    "SIL", "SP", "SPN", "NSN", "PAU", "SILENCE", "EPI", "<S>", "</S>", "<SIL>",
})

# ----------------------------------------------------------------------- IPA
_IPA_CLASSES: dict[Viseme, str] = {
    V.PBM: "pbmɸβʙɓʘφ",
    V.FV: "fvɱʋⱱ",
    V.TH: "θð",
    V.DSTN: "tdnlszɾɽɬɮɺʈɖɳɭcɟɲʎçʝɗʄɫǀǃǂǁʦʣ",
    V.KG: "kgɡŋxɣɰɠqɢɴχħʕhɦʔʡʢʜʟγ",
    V.CH: "ʃʒʂʐɕʑʧʤɧʨʥ",
    V.R: "rɹɻʀʁɚɝ",
    V.W: "wʍɥ",
    V.IY: "iɪɨjɯι",
    V.EH: "eɛɜɘɤɞε",
    V.AA: "aɑæɐʌəα",
    V.AO: "ɒɔœɶ",
    V.OW: "oɵø",
    V.UW: "uʊyʏʉɷυ",
}
IPA: dict[str, Viseme] = {ch: vis for vis, chars in _IPA_CLASSES.items() for ch in chars}
"""First IPA segment (one code point, diacritics stripped) -> viseme."""

_IPA_CLUSTERS: dict[str, Viseme] = {
    # affricates and doubly-articulated stops, whose first letter misleads
    "tʃ": V.CH, "dʒ": V.CH, "tɕ": V.CH, "dʑ": V.CH, "ʈʂ": V.CH, "ɖʐ": V.CH,
    "ts": V.DSTN, "dz": V.DSTN, "kp": V.PBM, "ɡb": V.PBM, "gb": V.PBM, "ŋm": V.PBM,
}

_IPA_STRIP = set("ˈˌ'ˑː:‿.|‖-_~˞") | set("˥˦˧˨˩0123456789")

# -------------------------------------------------------------------- espeak
_ESPEAK_CHARS: dict[str, Viseme] = {
    # upper-case letters (Kirshenbaum / X-SAMPA-like)
    "A": V.AA, "B": V.PBM, "C": V.DSTN, "D": V.TH, "E": V.EH, "F": V.FV, "G": V.KG,
    "H": V.KG, "I": V.IY, "J": V.DSTN, "K": V.DSTN, "L": V.DSTN, "M": V.FV, "N": V.KG,
    "O": V.AO, "P": V.PBM, "Q": V.KG, "R": V.R, "S": V.CH, "T": V.TH, "U": V.UW,
    "V": V.AA, "W": V.AO, "X": V.KG, "Y": V.OW, "Z": V.CH,
    # digits and symbols used as segments
    "@": V.AA, "&": V.AA, "0": V.AA, "1": V.IY, "2": V.OW, "3": V.R, "4": V.AA,
    "5": V.AA, "6": V.AA, "7": V.EH, "8": V.OW, "9": V.AO, "*": V.DSTN, "?": V.KG,
    "#": V.KG,
}
"""espeak mnemonic characters whose meaning differs from (or is absent in) IPA."""

_ESPEAK_CLUSTERS: tuple[tuple[str, Viseme], ...] = (
    # longest first; checked against the start of the stripped mnemonic
    ("t_s\\", V.CH), ("d_z\\", V.CH), ("ts.", V.CH), ("dz.", V.CH),
    ("ts\\", V.CH), ("dz\\", V.CH),
    ("tS", V.CH), ("dZ", V.CH), ("TS", V.CH), ("ts", V.DSTN), ("dz", V.DSTN),
    ("s.", V.CH), ("z.", V.CH), ("s\\", V.CH), ("z\\", V.CH),
    ("@L", V.DSTN),  # syllabic l ("bottle")
    ("@r", V.R),  # r-coloured schwa (Mandarin er)
    (";", V.IY),  # bare palatalisation mark: a j-like glide
    ("kp", V.PBM), ("gb", V.PBM),
)

_ESPEAK_PAUSES = frozenset({"_", "_:", "_::", "_!", "_|", "||", "_;_", "_^_", "_X1", "_\x01", "-", ":", "!"})
_ESPEAK_STRESS = "'\",%=+"

_VOWEL_NAME_RE = re.compile(
    r"\bLETTER (?:(?:SMALL CAPITAL|TURNED|REVERSED|CLOSED|BARRED|OPEN|RAMS HORN|SCRIPT|LONG) )*"
    r"(A|AE|ALPHA|E|SCHWA|I|IOTA|O|OE|U|UPSILON|Y|EPSILON|OMEGA|OMICRON|ETA)\b"
)


def _strip_diacritics(s: str) -> str:
    """NFD-decompose ``s`` and drop combining marks (nasal tilde, tie bars, ring below ...)."""
    return "".join(ch for ch in unicodedata.normalize("NFD", s) if not unicodedata.combining(ch))


def _unknown(ch: str) -> Viseme:
    """Default for a segment no table knows: AA/EH for vowel-like letters, else DSTN."""
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return V.DSTN
    m = _VOWEL_NAME_RE.search(name)
    if m is None:
        return V.DSTN
    return V.AA if m.group(1) in ("A", "AE", "ALPHA") else V.EH


def _is_silence(label: str) -> bool:
    """True for pauses, silences and non-speech fillers in any notation."""
    s = label.strip()
    if not s:
        return True
    if len(s) >= 2 and s[0] == s[-1] == "+":  # pocketsphinx fillers: +NSN+ +SPN+ +BREATH+
        return True
    if (s[0], s[-1]) in (("[", "]"), ("<", ">"), ("(", ")")) and s.lower() != "<h>":
        return True  # [NOISE], <sil>, espeak language switches such as "(en)"
    if s.upper() in _SILENCE_WORDS:
        return True
    bare = s.lstrip(_ESPEAK_STRESS)
    if bare in _ESPEAK_PAUSES:
        return True
    # espeak pause variants: "_" followed only by punctuation/digits
    return bare.startswith("_") and not any(ch.isalpha() for ch in bare[1:].replace("X", ""))


def _arpabet(label: str) -> Viseme | None:
    """ARPAbet lookup of an upper-case label (stress digit allowed); None if not ARPAbet."""
    m = _ARPABET_RE.fullmatch(label)
    if m is None:
        return None
    return ARPABET.get(m.group(1))


def _ipa(label: str) -> Viseme:
    """Map an IPA (or ASCII IPA-compatible) label by its first segment."""
    s = _strip_diacritics(label)
    s = "".join(ch for ch in s if ch not in _IPA_STRIP and unicodedata.category(ch) not in ("Lm", "Sk"))
    if not s:
        return V.SIL
    if len(s) > 1 and s[0] == "ʔ":  # a glottal onset does not shape the lips
        s = s[1:]
    for cluster, vis in _IPA_CLUSTERS.items():
        if s.startswith(cluster):
            return vis
    first = s[0]
    if first in IPA:
        return IPA[first]
    low = first.lower()
    if low in IPA and low.isascii():
        return IPA[low]
    return _unknown(first)


def _espeak(label: str) -> Viseme:
    """Map an espeak-ng phoneme mnemonic (as in its phoneme events) by its first segment."""
    s = label.strip().lstrip(_ESPEAK_STRESS).replace("<", "").replace(">", "")
    if s in _ESPEAK_PAUSES or not s:
        return V.SIL
    s = s.replace(":", "") or s
    # a glottal onset ("?A") or aspiration mark ("#@") before a segment does not shape the lips
    if len(s) > 1 and s[0] in "?#":
        s = s[1:]
    for prefix, vis in _ESPEAK_CLUSTERS:
        if s.startswith(prefix):
            return vis
    first = s[0]
    if first in _ESPEAK_CHARS:
        return _ESPEAK_CHARS[first]
    return _ipa(s)


def phone_to_viseme(label: str, notation: str | None = None) -> Viseme:
    """Return the viseme for one phone ``label``.

    ``notation`` is ``"arpabet"``, ``"espeak"``, ``"ipa"`` or ``None`` (guess:
    upper-case ARPAbet symbols as ARPAbet, other ASCII as espeak, the rest as
    IPA).  Silences, pauses and fillers in any notation give :attr:`Viseme.SIL`.
    Never raises for an unknown label; it falls back to AA/EH (vowel-like) or
    DSTN (consonant).
    """
    if notation is not None and notation not in NOTATIONS:
        raise ValueError(f"notation must be one of {NOTATIONS} or None, not {notation!r}")
    s = unicodedata.normalize("NFC", label).strip()
    if _is_silence(s):
        return V.SIL
    if notation in (None, "arpabet"):
        vis = _arpabet(s if notation is None else s.upper())
        if vis is not None:
            return vis
        if notation == "arpabet":
            log.debug("not an ARPAbet phone: %r; reading it as IPA", label)
            return _ipa(s.lower())
    if notation == "espeak" or (notation is None and s.isascii()):
        return _espeak(s)
    return _ipa(s)


_SOURCE_NOTATION = {"tts": "espeak", "asr": "arpabet"}


def phones_to_visemes(
    phones: Iterable[Phone],
    source: str,
    notation: str | None = None,
    max_gap: float = 1e-3,
) -> list[VisemeSpan]:
    """Turn timed phones into viseme spans, merging neighbours with the same viseme.

    ``source`` is recorded on each span (``"tts"`` or ``"asr"``) and, unless
    ``notation`` is given, selects how labels are read (``"tts"`` -> espeak
    mnemonics, ``"asr"`` -> ARPAbet, anything else -> guessed per label).
    Phones of zero or negative length are skipped.  Two consecutive spans with
    the same viseme are merged when the gap between them is at most
    ``max_gap`` seconds.  Times are in seconds; output is ordered by start.
    """
    if notation is None:
        notation = _SOURCE_NOTATION.get(source)
    spans: list[VisemeSpan] = []
    for ph in sorted(phones, key=lambda p: p.start):
        if ph.end <= ph.start:
            continue
        vis = phone_to_viseme(ph.label, notation)
        if spans and spans[-1].viseme is vis and ph.start - spans[-1].end <= max_gap:
            last = spans[-1]
            spans[-1] = VisemeSpan(vis, last.start, max(last.end, ph.end), source)
        else:
            spans.append(VisemeSpan(vis, ph.start, ph.end, source))
    return spans
