"""Tests for retalk.speech: viseme mapping, espeak-ng TTS with phone timings, pocketsphinx phones."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from retalk.errors import InputError
from retalk.speech import phones as phones_mod
from retalk.speech import tts
from retalk.speech.types import Phone, Viseme, VisemeSpan
from retalk.speech.visemes import VOWEL_VISEMES, phone_to_viseme, phones_to_visemes

# --------------------------------------------------------------------- visemes

ARPABET_VOWELS = ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"]


def test_viseme_members_and_values() -> None:
    names = ["SIL", "PBM", "FV", "TH", "DSTN", "KG", "CH", "R", "W", "AA", "EH", "IY", "AO", "OW", "UW"]
    assert [v.name for v in Viseme] == names
    assert all(v.value == v.name.lower() for v in Viseme)
    assert Viseme("pbm") is Viseme.PBM


@pytest.mark.parametrize(
    "label,notation",
    [("P", None), ("B", None), ("M", "arpabet"), ("B1", None),  # ARPAbet
     ("p", "espeak"), ("b", "espeak"), ("m", "espeak"), ("'b", None), ("p#", "espeak"), ("B", "espeak"),
     ("p", None), ("b", "ipa"), ("m", "ipa"), ("ɸ", None), ("β", None), ("pʰ", None), ("m̩", None),
     ("bː", None)],
)
def test_bilabials_map_to_pbm(label: str, notation: str | None) -> None:
    assert phone_to_viseme(label, notation) is Viseme.PBM


def test_arpabet_full_set() -> None:
    expected = {
        "AA": "AA", "AE": "AA", "AH": "AA", "AO": "AO", "AW": "AA", "AY": "AA", "B": "PBM", "CH": "CH",
        "D": "DSTN", "DH": "TH", "EH": "EH", "ER": "R", "EY": "EH", "F": "FV", "G": "KG", "HH": "KG",
        "IH": "IY", "IY": "IY", "JH": "CH", "K": "KG", "L": "DSTN", "M": "PBM", "N": "DSTN", "NG": "KG",
        "OW": "OW", "OY": "AO", "P": "PBM", "R": "R", "S": "DSTN", "SH": "CH", "T": "DSTN", "TH": "TH",
        "UH": "UW", "UW": "UW", "V": "FV", "W": "W", "Y": "IY", "Z": "DSTN", "ZH": "CH", "SIL": "SIL",
    }
    for label, name in expected.items():
        assert phone_to_viseme(label).name == name, label
        assert phone_to_viseme(label, "arpabet").name == name, label


def test_vowels_map_to_vowel_classes() -> None:
    for label in ARPABET_VOWELS:
        assert phone_to_viseme(label) in VOWEL_VISEMES | {Viseme.R}, label
    espeak = ["a", "'a", "aI", "aU", "A:", "@", "E", "eI", "i:", "I", "u:", "U", "O:", "oU", "0", "V", "&",
              "e@", "'O", "y", "2:", "9", "W"]
    for label in espeak:
        assert phone_to_viseme(label, "espeak") in VOWEL_VISEMES, label
    ipa = ["a", "ɑ", "æ", "ə", "ɐ", "e", "ɛ", "i", "ɪ", "o", "ɔ", "u", "ʊ", "y", "ø", "œ", "ɒ", "ʌ", "ɯ",
           "ẽ", "ɐ̃"]
    for label in ipa:
        assert phone_to_viseme(label, "ipa") in VOWEL_VISEMES, label
    # open vowels are AA in every notation
    assert {phone_to_viseme(x) for x in ("AA", "AE", "'a", "aI", "ɑ", "æ", "ˈa")} == {Viseme.AA}


def test_specific_classes_across_notations() -> None:
    cases = {
        Viseme.FV: [("F", None), ("v", "espeak"), ("f", "ipa"), ("ɱ", None)],
        Viseme.TH: [("DH", None), ("T", "espeak"), ("D", "espeak"), ("θ", None), ("ð", None)],
        Viseme.CH: [("SH", None), ("JH", None), ("tS", "espeak"), ("dZ", "espeak"), ("S", "espeak"),
                    ("Z", "espeak"), ("ʃ", None), ("tʃ", None), ("t͡ʃ", None), ("dʒ", None), ("ɕ", None)],
        Viseme.KG: [("NG", None), ("HH", None), ("N", "espeak"), ("k", "espeak"), ("x", None), ("ŋ", None),
                    ("h", None), ("ʔ", None), ("χ", None)],
        Viseme.R: [("ER", None), ("R", None), ("r", "espeak"), ("3:", "espeak"), ("ɹ", None), ("ɚ", None)],
        Viseme.W: [("W", None), ("w", "espeak"), ("w", "ipa"), ("ʍ", None)],
        Viseme.DSTN: [("T", None), ("S", None), ("n", "espeak"), ("l", "espeak"), ("ts", "espeak"),
                      ("t", "ipa"), ("ɾ", None), ("ɲ", None)],
        Viseme.IY: [("Y", None), ("j", "espeak"), ("i:", "espeak"), ("ɪ", None)],
        Viseme.UW: [("UH", None), ("u:", "espeak"), ("U@", "espeak"), ("y", "ipa"), ("ʉ", None)],
        Viseme.OW: [("OW", None), ("oU", "espeak"), ("o", "ipa"), ("ø", None)],
        Viseme.AO: [("AO", None), ("OY", None), ("O:", "espeak"), ("OI", "espeak"), ("ɔ", None)],
        Viseme.EH: [("EH", None), ("EY", None), ("E", "espeak"), ("eI", "espeak"), ("ɛ", None)],
    }
    for vis, labels in cases.items():
        for label, notation in labels:
            assert phone_to_viseme(label, notation) is vis, (label, notation)


@pytest.mark.parametrize(
    "label",
    ["+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "SIL", "sil", "<sil>", "[NOISE]", "_", "_:", "_!", "_|", "||",
     "(en)", "", "   "],
)
def test_fillers_and_pauses_are_silence(label: str) -> None:
    assert phone_to_viseme(label) is Viseme.SIL
    assert phone_to_viseme(label, "espeak" if label.startswith(("_", "|")) else None) is Viseme.SIL


def test_stress_and_length_marks_are_ignored() -> None:
    groups = [
        ["AH", "AH0", "AH1", "AH2"],
        ["O:", "'O:", ",O:", "O", "'O"],
        ["i:", ",i:", "'i:", "i"],
        ["a", "ˈa", "ˌa", "aː", "ˈaː", "'a"],
        ["u", "uː", "ˈuː", "u:"],
    ]
    for group in groups:
        assert len({phone_to_viseme(x) for x in group}) == 1, group


def test_ambiguous_letters_follow_notation() -> None:
    assert phone_to_viseme("S") is Viseme.DSTN  # ARPAbet s by default
    assert phone_to_viseme("S", "espeak") is Viseme.CH  # espeak ʃ
    assert phone_to_viseme("V") is Viseme.FV
    assert phone_to_viseme("V", "espeak") is Viseme.AA  # espeak ʌ
    assert phone_to_viseme("sh", "arpabet") is Viseme.CH  # lower-case ARPAbet when told


def test_unknown_labels_fall_back_without_raising() -> None:
    assert phone_to_viseme("ʗ") is Viseme.DSTN  # unknown consonant
    assert phone_to_viseme("ᴀ") is Viseme.AA  # unknown open-vowel letter
    assert phone_to_viseme("a32", "espeak") is Viseme.AA  # numbered espeak vowel variant
    for odd in ["§", "xyz", "123", "~", "ʘ", "Q\"", "t_s\\"]:
        assert isinstance(phone_to_viseme(odd), Viseme)
    with pytest.raises(ValueError):
        phone_to_viseme("a", "sampa")


def test_phones_to_visemes_merges_and_tags_source() -> None:
    phones = [Phone("_", 0.0, 0.1), Phone("m", 0.1, 0.2), Phone("b", 0.2, 0.3), Phone("'a", 0.3, 0.5),
              Phone("p", 0.5, 0.5), Phone("a", 0.5, 0.6), Phone("p", 0.7, 0.8)]
    spans = phones_to_visemes(phones, "tts")
    assert [s.viseme for s in spans] == [Viseme.SIL, Viseme.PBM, Viseme.AA, Viseme.PBM]
    assert spans[1] == VisemeSpan(Viseme.PBM, 0.1, 0.3, "tts")  # m+b merged
    assert spans[2] == VisemeSpan(Viseme.AA, 0.3, 0.6, "tts")  # zero-length p dropped, vowels merged
    assert all(s.source == "tts" for s in spans)
    # ASR labels use ARPAbet: "S" is s (DSTN), not espeak's ʃ
    asr = phones_to_visemes([Phone("SIL", 0, 0.1), Phone("S", 0.1, 0.2), Phone("+NSN+", 0.2, 0.3)], "asr")
    assert [s.viseme for s in asr] == [Viseme.SIL, Viseme.DSTN, Viseme.SIL]
    assert phones_to_visemes([], "asr") == []


# ------------------------------------------------------------------------ TTS


@pytest.fixture(scope="module")
def bob() -> "tts.Speech":
    return tts.synthesize("Bob bought a map.")


@pytest.fixture(scope="module")
def mother() -> "tts.Speech":
    return tts.synthesize("My mother baked a pumpkin pie for the bishop.")


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-9))


def _check_tiling(speech: "tts.Speech") -> None:
    phones = speech.phones
    assert phones, "no phones"
    assert phones[0].start == 0.0
    for a, b in zip(phones, phones[1:]):
        assert a.end == b.start
    assert all(p.end > p.start for p in phones)
    assert abs(phones[-1].end - speech.duration) < 1e-6


def test_tts_audio_and_phones(bob: "tts.Speech") -> None:
    assert bob.sample_rate == 22050
    assert bob.samples.dtype == np.float32 and bob.samples.ndim == 1
    assert 0.6 < bob.duration < 2.5
    assert float(np.max(np.abs(bob.samples))) <= 1.0
    assert _rms_db(bob.samples) > -35  # clearly not silent
    _check_tiling(bob)
    labels = [p.label for p in bob.phones]
    assert sum(phone_to_viseme(x, "espeak") is Viseme.PBM for x in labels) >= 4  # b b b m p
    assert {"b", "m", "p"} <= {x.lstrip("',") for x in labels}
    assert any(x.startswith("_") for x in labels)  # pauses are "_" phones


def test_tts_bilabial_spans_are_quiet(mother: "tts.Speech") -> None:
    """The synthesiser's p/b/m spans contain the lip closure: much quieter than its vowels."""
    x, sr = mother.samples, mother.sample_rate
    _check_tiling(mother)

    def span(p: Phone) -> np.ndarray:
        return x[int(round(p.start * sr)):int(round(p.end * sr))]

    def quietest_10ms(seg: np.ndarray) -> float:
        w = int(0.01 * sr)
        n = max(1, len(seg) // w)
        return min(_rms_db(seg[i * w:(i + 1) * w]) for i in range(n))

    vowels = [_rms_db(span(p)) for p in mother.phones if phone_to_viseme(p.label, "espeak") in VOWEL_VISEMES]
    bilabials = [p for p in mother.phones if phone_to_viseme(p.label, "espeak") is Viseme.PBM]
    assert len(bilabials) >= 8 and len(vowels) >= 8
    vowel_level = float(np.median(vowels))
    assert vowel_level - float(np.median([_rms_db(span(p)) for p in bilabials])) > 5.0
    for p in bilabials:
        assert quietest_10ms(span(p)) < vowel_level - 6.0, p


@pytest.mark.parametrize("voice,text", [("es", "Hola, me llamo Pablo y bebo mucho vino."),
                                        ("de", "Guten Morgen, bitte ein Bier.")])
def test_tts_other_languages(voice: str, text: str) -> None:
    speech = tts.synthesize(text, voice=voice)
    assert _rms_db(speech.samples) > -35
    _check_tiling(speech)
    visemes = [phone_to_viseme(p.label, "espeak") for p in speech.phones]
    assert Viseme.PBM in visemes and sum(v in VOWEL_VISEMES for v in visemes) >= 5


def test_tts_rate_changes_duration() -> None:
    slow = tts.synthesize("Bob bought a map.", rate_wpm=100)
    fast = tts.synthesize("Bob bought a map.", rate_wpm=300)
    assert slow.duration > 1.5 * fast.duration


def test_tts_errors() -> None:
    with pytest.raises(InputError) as err:
        tts.synthesize("hello", voice="xx-no-such-voice")
    assert "\n" not in str(err.value) and "xx-no-such-voice" in str(err.value)
    for empty in ["", "   \n"]:
        with pytest.raises(InputError):
            tts.synthesize(empty)
    with pytest.raises(InputError):
        tts.synthesize("hello", rate_wpm=10)


def test_list_voices() -> None:
    voices = tts.list_voices()
    assert {"en-us", "en-gb", "es", "de", "fr"} <= set(voices)
    assert voices == sorted(voices)
    assert "fo" not in voices  # listed by espeak but its dictionary is not shipped
    tts.synthesize("ok", voice="en-gb")  # a listed language tag that is not a voice name


def test_synthesize_to_wav(tmp_path) -> None:
    from retalk.media.audio import load_audio

    path = tmp_path / "bob.wav"
    speech = tts.synthesize_to_wav("Bob bought a map.", path)
    audio = load_audio(path)
    assert abs(audio.duration - speech.duration) < 0.02


def test_tts_thread_safe(bob: "tts.Speech") -> None:
    results: list[tts.Speech] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(tts.synthesize("Bob bought a map."))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    # espeak keeps some synthesis state between calls (other tests may have spoken other text first),
    # so timings agree to within a frame, while the phone sequence must be identical: nothing garbled
    for r in results:
        assert [p.label for p in r.phones] == [p.label for p in bob.phones]
        assert all(abs(p.start - q.start) < 0.02 for p, q in zip(r.phones, bob.phones))
        assert abs(r.duration - bob.duration) < 0.03


# ------------------------------------------------------------------- phones (ASR)


def test_recognize_phones_on_tts_speech(mother: "tts.Speech") -> None:
    rec = phones_mod.recognize_phones(mother.samples, mother.sample_rate)  # 22.05 kHz, resampled inside
    assert rec
    assert rec[0].start == 0.0 and abs(rec[-1].end - mother.duration) < 0.011
    for a, b in zip(rec, rec[1:]):
        assert a.end == pytest.approx(b.start) and b.end > b.start
    visemes = [phone_to_viseme(p.label, "arpabet") for p in rec]
    assert sum(v in VOWEL_VISEMES for v in visemes) >= 5
    # recognised speech spans most of where the synthesiser spoke
    spoken = [p for p in mother.phones if phone_to_viseme(p.label, "espeak") is not Viseme.SIL]
    heard = [p for p, v in zip(rec, visemes) if v is not Viseme.SIL]
    assert heard[0].start < spoken[0].start + 0.2
    assert heard[-1].end > spoken[-1].end - 0.3
    assert sum(p.duration for p in heard) > 0.5 * (spoken[-1].end - spoken[0].start)


def test_recognize_phones_at_16k() -> None:
    from scipy.signal import resample_poly

    speech = tts.synthesize("Please pass me the big blue bottle.")
    x16 = resample_poly(speech.samples, 320, 441).astype(np.float32)
    rec = phones_mod.recognize_phones(x16, 16000)
    assert sum(phone_to_viseme(p.label, "arpabet") in VOWEL_VISEMES for p in rec) >= 4


def test_recognize_phones_silence() -> None:
    assert phones_mod.recognize_phones(np.zeros(0, np.float32)) == []
    zeros = phones_mod.recognize_phones(np.zeros(16000, np.float32))
    assert [p.label for p in zeros] == ["SIL"] and zeros[0].end == pytest.approx(1.0)
    noise = (np.random.default_rng(0).standard_normal(24000) * 1e-3).astype(np.float32)  # -60 dBFS
    rec = phones_mod.recognize_phones(noise, 16000)
    assert all(phone_to_viseme(p.label, "arpabet") is Viseme.SIL for p in rec)
    with pytest.raises(InputError):
        phones_mod.recognize_phones(noise, 0)


def test_a_signal_during_espeak_synthesis_stops_the_run() -> None:
    """Ctrl-C during espeak-ng's synthesis used to be raised inside its ctypes callback, printed and dropped."""
    import os
    import signal

    from retalk.speech import espeak

    class Stopped(Exception):
        pass

    def interrupt(signum, frame):  # a handler that raises, as Python's default SIGINT handler does
        raise Stopped

    text = ("The quick brown fox jumps over the lazy dog near the riverbank at dawn. " * 400).encode()
    espeak.synth(b"warm up", "en-us", 175)
    old = signal.signal(signal.SIGINT, interrupt)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(Stopped):
            espeak.synth(text, "en-us", 175)  # ~27 minutes of speech: about a second of synthesis
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    pcm, rate, _ = espeak.synth(b"Still works.", "en-us", 175)  # the engine is usable afterwards
    assert rate > 0 and len(pcm) > rate // 4


def test_phones_of_a_few_milliseconds_of_audio_are_empty_not_an_error() -> None:
    pytest.importorskip("pocketsphinx")
    x = np.zeros(320, np.float32)  # 0.02 s at 16 kHz: the decoder returns no segments
    out = phones_mod.recognize_phones(x, 16000)
    assert all(isinstance(p, Phone) for p in out)
