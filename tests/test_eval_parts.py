"""The parts of `retalk eval` one at a time: the atomic writer, the error policy, SyncNet's 25 fps crops,
and the one STFT (`retalk.dsp.spectra`) that the mel spectrogram and the MFCC frame through."""
from __future__ import annotations

import csv
import os
import stat
from dataclasses import replace

import numpy as np
import pytest

from retalk.errors import InputError, NoFaceError
from retalk.evaluate import clip as clip_mod
from retalk.evaluate.clip import ClipTask, run_clip
from retalk.evaluate.columns import COLUMNS
from retalk.evaluate.results import ResultsAppender, read_results, write_atomic, write_results


# ----------------------------------------------------------------------------- files
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writer_gives_the_umask_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "report.md", "# hi\n")
        write_results(tmp_path / "results.csv", [])
    finally:
        os.umask(old)
    for name in ("report.md", "results.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_atomic_writer_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "summary.json"
    write_atomic(target, "old\n")
    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]  # fails while writing
    assert target.read_text() == "old\n"
    write_atomic(target, "névé\n")
    assert target.read_bytes() == "névé\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_results_round_trip_and_append(tmp_path):
    path = tmp_path / "results.csv"
    first = dict.fromkeys(COLUMNS, "") | {"id": "a", "status": "ok", "notes": "x, \"quoted\"; y"}
    write_results(path, [first])
    with ResultsAppender(path) as add:
        add(dict(first, id="b", extra="ignored"))
    rows = read_results(path)
    assert [r["id"] for r in rows] == ["a", "b"] and rows[1]["notes"] == 'x, "quoted"; y'
    with path.open(newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == list(COLUMNS)


# ----------------------------------------------------------------------------- error policy
@pytest.fixture()
def task(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"rendered")
    return ClipTask(clip_id="c1", video=str(tmp_path / "in.mp4"), audio=str(tmp_path / "in.wav"), audio_id="c1",
                    output=str(out), engine="builtin", protocol="paired", groups=("sharpness",), lse=False,
                    render=False)


def test_bad_input_is_a_failed_clip(task, monkeypatch):
    def bad(*_args):
        raise InputError("in.mp4: no sound\nsecond line")

    monkeypatch.setattr(clip_mod, "score_clip", bad)
    row = run_clip(task)
    assert row["status"] == "error" and row["error"] == "in.mp4: no sound" and row["id"] == "c1"
    missing = run_clip(replace(task, output=task.output + ".gone"))
    assert missing["status"] == "error" and "rendered video is missing" in missing["error"]


def test_a_bug_is_not_a_failed_clip(task, monkeypatch):
    def buggy(*_args):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(clip_mod, "score_clip", buggy)
    with pytest.raises(ValueError, match="broadcast"):
        run_clip(task)


def test_a_metric_the_clip_cannot_give_is_a_note_but_a_bug_propagates():
    notes: list[str] = []

    def unscorable() -> None:
        raise clip_mod.Unscorable("needs 3 consecutive frames with a face")

    clip_mod._attempt(notes, "landmark_jitter", unscorable)
    clip_mod._attempt(notes, "landmark_jitter", unscorable)  # noted once
    assert notes == ["landmark_jitter: needs 3 consecutive frames with a face"]

    def bug() -> None:
        raise ValueError("shapes (3,) and (4,) not aligned")

    with pytest.raises(ValueError):
        clip_mod._attempt(notes, "cpbd", bug)


def test_unscorable_preconditions():
    with pytest.raises(clip_mod.Unscorable, match="64x64"):
        clip_mod._cpbd_sized(np.zeros((63, 200, 3), np.uint8))
    frame = np.zeros((64, 64, 3), np.uint8)
    assert clip_mod._cpbd_sized(frame) is frame
    with pytest.raises(clip_mod.Unscorable, match="whole picture"):
        clip_mod._leaves_pixels(np.array([-1.0, 0.2, 100.0, 64.0]), (64, 100, 3))
    box = np.array([0.0, 0.0, 99.5, 63.0])  # rounds out to columns 0..99 but leaves row 63
    assert clip_mod._leaves_pixels(box, (64, 100, 3)) is box
    lms = np.zeros((5, 478, 3))
    with pytest.raises(clip_mod.Unscorable):
        clip_mod._jitter(lms, np.array([True, True, False, True, True]))


def test_a_bug_stops_the_run_and_keeps_the_finished_rows(tmp_path, monkeypatch):
    """Clip a is scored, clip b hits a bug: evaluate raises it, results.csv keeps a, a rerun resumes."""
    from retalk.evaluate import backends
    from retalk.evaluate.runner import evaluate

    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        (data / f"{name}.mp4").write_bytes(b"not looked at: run_clip is replaced")

    def fake_run_clip(t, syncnet=None):
        if t.clip_id == "b":
            raise KeyError("frame_index")
        row = clip_mod.base_row(t)
        row["status"] = "ok"
        open(t.output, "wb").close()
        return row

    monkeypatch.setattr(backends, "run_clip", fake_run_clip)
    out = tmp_path / "run"
    with pytest.raises(KeyError, match="frame_index"):
        evaluate(data, "passthrough", out, metrics="sharpness", progress=False)
    assert [(r["id"], r["status"]) for r in read_results(out / "results.csv")] == [("a", "ok")]
    assert stat.S_IMODE((out / "results.csv").stat().st_mode) == 0o666 & ~_umask()


class _FakeRay:
    """Just enough of the ``ray`` module for :func:`run_ray`: tasks finish in order; ``outcome`` per clip id."""

    def __init__(self, outcome):
        self.outcome, self.cancelled = outcome, []

    def remote(self, **_options):
        return lambda fn: type("Remote", (), {"remote": staticmethod(lambda t: t)})

    def wait(self, pending, num_returns):
        return pending[:num_returns], pending[num_returns:]

    def get(self, ref):
        result = self.outcome[ref.clip_id]
        if isinstance(result, BaseException):
            raise result
        return result

    def cancel(self, ref):
        self.cancelled.append(ref.clip_id)


def test_ray_backend_records_dead_workers_and_raises_bugs(task):
    ray_exceptions = pytest.importorskip("ray.exceptions")
    from retalk.evaluate.backends import run_ray

    tasks = [replace(task, clip_id=c) for c in ("a", "b", "c", "d")]
    fake = _FakeRay({"a": {"id": "a", "status": "ok"}, "b": ray_exceptions.WorkerCrashedError(),
                     "c": ray_exceptions.RayTaskError("run_clip", "Traceback ...", ValueError("boom")),
                     "d": {"id": "d", "status": "ok"}})
    rows = run_ray(fake, tasks)
    assert next(rows)["status"] == "ok"
    dead = next(rows)
    assert dead["id"] == "b" and dead["status"] == "error" and "worker died" in dead["error"]
    with pytest.raises(ray_exceptions.RayTaskError):
        next(rows)
    assert fake.cancelled == ["d"]


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


# ----------------------------------------------------------------------------- SyncNet crops at 25 fps
def test_syncnet_frame_index():
    from retalk.metrics.lse import syncnet_frame_index

    assert syncnet_frame_index(6, 30.0).tolist() == [0, 1, 2, 4, 5]  # round(k * 30 / 25)
    assert syncnet_frame_index(4, 25.0).tolist() == [0, 1, 2, 3]
    assert syncnet_frame_index(3, 50.0).tolist() == [0]  # floor(3 * 25 / 50) = 1 frame
    assert syncnet_frame_index(5, 12.5).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]  # floor(k / 2 + 0.5), clipped


def test_nearest_face_boxes():
    from retalk.metrics.lse import nearest_face_boxes

    boxes = np.arange(5)[:, None] * np.ones((1, 4))
    got = nearest_face_boxes(boxes, np.array([False, True, False, False, True]))
    assert got[:, 0].tolist() == [1, 1, 1, 4, 4]
    assert nearest_face_boxes(boxes[:3], np.array([True, False, True]))[:, 0].tolist() == [0, 2, 2]  # tie: later
    with pytest.raises(NoFaceError):
        nearest_face_boxes(boxes, np.zeros(5, bool))


def test_syncnet_crop_boxes_are_squares_about_the_face_centre():
    from retalk.metrics.lse import syncnet_crop_boxes

    boxes = np.tile([10.0, 20.0, 50.0, 80.0], (30, 1))  # 40 wide, 60 high: s = 30, centre (30, 50)
    idx, sq = syncnet_crop_boxes(boxes, np.ones(30, bool), 30.0, smooth=13)
    assert len(idx) == 25
    # medfilt pads with zeros: the ends are pulled towards 0, the middle is the box itself
    assert np.allclose(sq[6:-6], [0.0, 20.0, 60.0, 80.0])


# ----------------------------------------------------------------------------- the one STFT
@pytest.mark.parametrize("n", [1, 150, 400, 401, 999, 1600])
def test_spectra_framing_without_centre(n):
    """MFCC framing (python_speech_features): 1 + ceil((n - 400) / 160) frames, tail zero-padded, 512-point FFT."""
    from retalk.dsp import spectra

    x = np.random.default_rng(n).standard_normal(n)
    got = spectra(x, 512, 160, frame_len=400, window=None, center=False, pad_end=True)
    n_frames = 1 if n <= 400 else 1 + int(np.ceil((n - 400) / 160))
    assert got.shape == (257, n_frames)
    padded = np.concatenate([x, np.zeros((n_frames - 1) * 160 + 400 - n)])
    for k in range(n_frames):
        assert np.allclose(got[:, k], np.fft.rfft(padded[160 * k:160 * k + 400], 512), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("n", [0, 1, 199, 200, 16000, 16001])
def test_spectra_centred_librosa_framing(n):
    """librosa center=True, constant padding: 1 + n // hop frames, frame t centred on sample hop * t."""
    from retalk.dsp import hann, spectra

    x = np.random.default_rng(n).standard_normal(n)
    mag = spectra(x, 800, 200, center=True, pad_end=False, magnitude=True)
    assert mag.shape == (401, 1 + n // 200)
    padded = np.concatenate([np.zeros(400), x, np.zeros(400)])
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 800)
    assert np.allclose(hann(800), win)
    for t in (0, mag.shape[1] - 1):
        ref = np.abs(np.fft.rfft(padded[200 * t:200 * t + 800] * win))
        assert np.allclose(mag[:, t], ref, rtol=1e-12, atol=1e-9)


def test_spectra_rejects_bad_framing():
    from retalk.dsp import spectra

    with pytest.raises(ValueError, match="frame_len"):
        spectra(np.zeros(10), 256, 64, frame_len=400)
    with pytest.raises(ValueError, match="hop"):
        spectra(np.zeros(10), 256, 0)
    with pytest.raises(ValueError, match="window"):
        spectra(np.zeros(1000), 256, 64, window=np.ones(100))
