"""Work the built-in dubbing path skips or moves elsewhere for speed (issue 15, item 7) gives the same answers:

* the cut check's phase correlation is measured only where a histogram rule finds a cut (it can only veto one);
* phone recognition runs in a child process (:mod:`retalk.runtime.aside`) beside the analysis pass;
* :func:`retalk.speech.vowel_cues.vowel_cues` works in blocks (flat memory for long speech).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from retalk.face.shots import COHERENT_RESPONSE, CutDetector
from retalk.runtime.aside import Aside, importable
from retalk.samples import astronaut


def _frames() -> list[np.ndarray]:
    """A still shot with sensor noise, a pan across it, a cut to a recoloured copy, and the same again."""
    rng = np.random.default_rng(3)
    photo = astronaut(160)
    other = np.ascontiguousarray(photo[:, :, ::-1])  # the same shapes, other colours: a histogram jump
    noisy = [np.clip(photo.astype(int) + rng.integers(-4, 5, photo.shape), 0, 255).astype(np.uint8) for _ in range(6)]
    pan = [np.ascontiguousarray(np.roll(photo, 7 * k, axis=1)) for k in range(6)]
    return noisy + pan + [other] * 4 + noisy[:3] + [other] * 3


@pytest.mark.parametrize("response", [0.05, 0.9])
def test_the_cut_check_correlates_only_where_the_histogram_finds_a_cut(response):
    frames = _frames()
    eager, lazy = CutDetector(), CutDetector()
    calls: list[int] = []
    got_eager, got_lazy = [], []
    for k, f in enumerate(frames):
        got_eager.append(eager.update(f, None, response))
        got_lazy.append(lazy.update(f, None, lambda k=k: calls.append(k) or response))
    assert got_lazy == got_eager
    cuts_by_histogram = [k for k in range(1, len(frames)) if frames[k] is not frames[k - 1]
                         and (frames[k] is frames[12] or frames[k - 1] is frames[12])]
    # the frames where the colours jump (into and out of the recoloured copy) are measured, and only those
    assert calls == cuts_by_histogram
    if response >= COHERENT_RESPONSE:  # a strong peak vetoes every cut (the picture only moved)
        assert not any(got_lazy)
    else:
        assert [k for k, c in enumerate(got_lazy) if c] == cuts_by_histogram


def _square(x: float) -> float:
    return x * x


def _pid() -> int:
    return os.getpid()


def test_a_call_aside_gives_the_same_answer_as_here():
    # a module-level numpy function: importable, so it runs in a child
    x = np.arange(10.0)
    aside = Aside(np.cumsum, x)
    assert aside.in_child
    assert np.array_equal(aside.result(), np.cumsum(x))
    assert Aside(_square, 3.0).result() == 9.0
    # this test module's own function, found by the child on this process's sys.path, and run there
    assert Aside(_pid).result() != os.getpid()


def test_what_a_child_cannot_import_runs_here():
    assert not importable(lambda: 1)
    aside = Aside(lambda a: a + 1, 41)
    assert not aside.in_child and aside.result() == 42
    assert not importable(math.sqrt.__call__)  # a bound method


def test_an_error_in_the_child_is_raised_here(monkeypatch):
    # np.linalg.inv of a singular matrix raises LinAlgError in the child; it comes back as itself
    aside = Aside(np.linalg.inv, np.zeros((2, 2)))
    assert aside.in_child
    with pytest.raises(np.linalg.LinAlgError):
        aside.result()


def test_close_kills_a_running_child():
    aside = Aside(time.sleep, 30.0)
    assert aside.in_child
    proc = aside._proc
    t = time.perf_counter()
    aside.close()
    assert time.perf_counter() - t < 5.0
    assert proc is not None and proc.poll() is not None  # gone, not orphaned


def test_recognizer_aside_matches_recognizing_here():
    pytest.importorskip("pocketsphinx")
    from retalk.samples import vowel_speech
    from retalk.speech import phones as phones_mod

    samples = vowel_speech(5.0)
    here = phones_mod.recognize_phones(samples, 16000)
    aside = Aside(phones_mod.recognize_phones, samples, 16000)
    assert aside.in_child
    assert aside.result() == here and len(here) > 5


def test_the_child_entry_point_answers_on_stdout():
    import pickle

    out = subprocess.run([sys.executable, "-m", "retalk.runtime.aside"],
                         input=pickle.dumps((sys.path, "math", "hypot", (3, 4))),
                         capture_output=True, env=dict(os.environ), check=True).stdout
    assert pickle.loads(out) == ("ok", 5.0)


def test_vowel_cues_in_blocks_equal_the_whole_recording_at_once(monkeypatch):
    from retalk.samples import vowel_speech
    from retalk.speech import vowel_cues as vc

    x = vowel_speech(7.3)
    n = int(math.ceil(len(x) / 160))
    blocks = vc.vowel_cues(x, 16000, n)
    monkeypatch.setattr(vc, "BLOCK_FRAMES", 1 << 30)  # one block: how it was computed before
    whole = vc.vowel_cues(x, 16000, n)
    for a, b in zip(blocks.__dict__.values(), whole.__dict__.values()):
        assert np.array_equal(a, b, equal_nan=True)
    assert np.isfinite(blocks.f1_hz).sum() > 50  # vowels were found (the comparison means something)


def test_a_function_the_child_cannot_import_runs_here(monkeypatch):
    import types

    mod = types.ModuleType("retalk_made_up_module")  # only in this process's sys.modules

    def answer() -> int:
        return os.getpid()

    answer.__module__, answer.__qualname__ = mod.__name__, "answer"
    mod.answer = answer
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    aside = Aside(answer)
    assert aside.in_child  # it looked importable here ...
    assert aside.result() == os.getpid()  # ... the child could not import it, so it ran here


def _noisy(x: int) -> tuple[int, int]:
    print("chatter on stdout")  # must not garble the answer
    os.write(1, b"more chatter\n")
    return x * 2, os.getpid()


def test_what_the_call_prints_does_not_garble_the_answer():
    value, pid = Aside(_noisy, 21).result()
    assert value == 42 and pid != os.getpid()  # the child's own answer, read despite the chatter


def test_sync_with_the_recognizer_aside_writes_the_same_video(tmp_path, monkeypatch):
    pytest.importorskip("pocketsphinx")
    import retalk.pipeline as pipeline
    from retalk.samples import write_face_clip, write_vowel_speech

    face = write_face_clip(tmp_path / "f.mp4", seconds=2.0, width=256, height=256)
    wav = write_vowel_speech(tmp_path / "a.wav", seconds=2.0)
    here = pipeline.sync(face, wav, tmp_path / "here.mp4", pipeline.SyncOptions(progress=False))
    used: list[bool] = []

    class Spy(Aside):
        def result(self):  # noqa: ANN202
            used.append(self.in_child)
            return super().result()

    monkeypatch.setattr(pipeline, "Aside", Spy)
    monkeypatch.setattr(pipeline, "ASIDE_MIN_SECONDS", 0.0)
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 8)
    aside = pipeline.sync(face, wav, tmp_path / "aside.mp4", pipeline.SyncOptions(progress=False))
    assert used == [True]  # recognized in a child process, picked up at planning
    assert aside.frames == here.frames
    assert (tmp_path / "aside.mp4").read_bytes() == (tmp_path / "here.mp4").read_bytes()
