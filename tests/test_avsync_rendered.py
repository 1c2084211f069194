"""The weight-free AV offset recovers a k-frame audio delay inserted into a clip the built-in engine rendered."""
import numpy as np
import pytest

from retalk.evaluate.phonetic import mouth_openings
from retalk.media import load_audio, write_wav
from retalk.metrics import av_offset
from retalk.pipeline import SyncOptions, sync
from retalk.speech.tts import synthesize

TEXT = "Maybe my puppy bakes a big apple pie. Bob painted a map of the moon, and we all applauded."


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, face_clip):
    d = tmp_path_factory.mktemp("avsync")
    sp = synthesize(TEXT)
    wav = d / "speech.wav"
    write_wav(wav, sp.samples, sp.sample_rate)
    out = d / "dub.mp4"
    sync(face_clip, wav, out, SyncOptions(progress=False, recognize=False, preset="ultrafast"))
    opening, fps = mouth_openings(out)
    audio = load_audio(out)
    return np.nan_to_num(opening, nan=float(np.nanmedian(opening))), audio.samples, audio.sample_rate, fps


@pytest.mark.parametrize("k", [0, 3, -4])
def test_av_offset_finds_inserted_delay(rendered, k):
    opening, samples, sr, fps = rendered
    shift = int(round(abs(k) / fps * sr))
    if k > 0:  # audio arrives k frames late
        audio = np.concatenate([np.zeros(shift, np.float32), samples])[: len(samples)]
    elif k < 0:  # audio arrives early
        audio = np.concatenate([samples[shift:], np.zeros(shift, np.float32)])
    else:
        audio = samples
    res = av_offset(opening, audio, sr, fps)
    assert res.audio_delay == k, res
    assert res.confidence > 0.2
