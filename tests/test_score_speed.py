"""`score_clip` gives the same values after the speed work of issue 16 (item 2) as before it.

The literals below were recorded from ``score_clip`` at commit 07c8b1f (before any of the speed
changes: one decode + face-mesh pass per video, per-frame CPBD with a Python loop over columns,
a second decoding pass for the SyncNet crops), on the clips this module generates, with SyncNet
built from ``torch.manual_seed(0)`` as tests/test_evaluate.py builds it.  They depend on the
installed mediapipe, libx264 (through PyAV) and torch builds, like every golden of the project.
Floats must match to 1e-9 relative (the faster code may sum in another order); integers exactly.
"""
from __future__ import annotations

import math

import pytest

from retalk.evaluate.clip import ClipTask, score_clip

GROUPS = ("sharpness", "sync", "mouth", "jitter", "reference", "lse")

# Recorded at 07c8b1f (see the module docstring) with repr() of each value.
PINNED = {
    "paired": {
        "frames": 40, "fps": 25.0, "duration_s": 1.6, "face_fraction": 1.0,
        "cpbd": 0.43876865328815196, "cpbd_face": 0.3646012589010609,
        "av_offset": 12, "av_confidence": 0.38668724512942776,
        "mouth_open_mean": 0.11472265925258399, "mouth_open_std": 0.0048677799206299785,
        "mouth_open_range": 0.014684569090604768, "mouth_speed": 0.003833847932326488,
        "landmark_jitter": 0.008575767322650443,
        "lmd_mouth": 0.029179268876577836, "lmd_face": 0.026843360044056006,
        "psnr": 19.778158848993296, "ssim": 0.7047231650830811, "psnr_outside": 19.64300164766462,
        "lse_d": 6.827463697743549, "lse_c": 0.0556321300379965, "lse_offset": -15,
    },
    "step3_30fps": {
        "frames": 36, "fps": 30.0, "duration_s": 1.2, "face_fraction": 1.0,
        "cpbd": 0.33821808234464523, "cpbd_face": 0.2584480334125936,
        "av_offset": -9, "av_confidence": 0.39394059149008126,
        "mouth_open_mean": 0.11777579349776109, "mouth_open_std": 0.0043614841724482,
        "mouth_open_range": 0.014998195692896843, "mouth_speed": 0.0029687628149986265,
        "landmark_jitter": 0.004399404372163135,
        "lse_d": 6.80544824124004, "lse_c": 0.08291468691731918, "lse_offset": -15,
    },
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 1.6 s 256×256 25 fps source and a rendition of it (another head motion, same sound), and a
    1.2 s 320×240 30 fps clip (SyncNet resamples it to 25 fps)."""
    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip

    d = tmp_path_factory.mktemp("score_pins")

    def make(name, seconds, w, h, fps, motion, rate):
        wav = d / f"{name}.wav"
        write_wav(wav, vowel_speech(seconds, syllable_rate=rate, seed=int(rate)), 16000)
        return write_face_clip(d / f"{name}.mp4", seconds, fps=fps, width=w, height=h, motion=motion, audio_path=wav)

    return {"src": make("src", 1.6, 256, 256, 25.0, 1.0, 3.0), "out": make("out", 1.6, 256, 256, 25.0, 0.8, 3.0),
            "other": make("other", 1.2, 320, 240, 30.0, 0.6, 5.0)}


@pytest.fixture(scope="module")
def syncnet():
    torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
    from retalk.networks.syncnet import SyncNetV2

    torch.manual_seed(0)
    return SyncNetV2().eval()


def _check(values, pinned):
    assert set(values) == set(pinned)
    for k, want in pinned.items():
        got = values[k]
        if isinstance(want, int):
            assert got == want, k
        else:
            assert isinstance(got, float) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (k, got, want)


@pytest.mark.parametrize("case", ["paired", "step3_30fps"])
def test_score_clip_values_are_pinned(clips, syncnet, case):
    if case == "paired":
        task = ClipTask(case, str(clips["src"]), str(clips["src"]), "a", str(clips["out"]), "builtin", "paired",
                        GROUPS, True, render=False, frame_step=1)
    else:
        task = ClipTask(case, str(clips["other"]), str(clips["other"]), "a", str(clips["other"]), "builtin",
                        "unpaired", GROUPS, True, render=False, frame_step=3)
    values, notes = score_clip(task, syncnet)
    assert notes == []
    _check(values, PINNED[case])
