"""Held-out lip-sync check on synthesized speech: the renderer hears only the audio; the synthesizer's
own phone timings are the ground truth. The do-nothing engine (original video + new audio) must fail."""
import pytest

from retalk.evaluate.phonetic import phonetic_sync
from retalk.media import write_wav
from retalk.pipeline import SyncOptions, sync
from retalk.speech.tts import synthesize

TEXT = "Bob bought a big map. Maybe my puppy paints, but Emma bakes apple pie."


@pytest.fixture(scope="module")
def tts(tmp_path_factory):
    sp = synthesize(TEXT)
    p = tmp_path_factory.mktemp("tts") / "speech.wav"
    write_wav(p, sp.samples, sp.sample_rate)
    return p, sp


@pytest.mark.parametrize("face", ["photo", "face_clip"])
def test_lips_close_on_bilabials_and_open_on_vowels(face, tts, request, tmp_path):
    wav, sp = tts
    src = request.getfixturevalue(face)
    out = tmp_path / "dub.mp4"
    sync(src, wav, out, SyncOptions(progress=False, recognize=False, preset="ultrafast"))
    score = phonetic_sync(out, sp.phones)
    assert score.n_bilabials >= 8
    assert score.passed(), score


def test_do_nothing_engine_fails(tts, face_clip, tmp_path):
    wav, sp = tts
    out = tmp_path / "same.mp4"
    sync(face_clip, wav, out, SyncOptions(engine="passthrough", progress=False, recognize=False, preset="ultrafast"))
    assert not phonetic_sync(out, sp.phones).passed()
