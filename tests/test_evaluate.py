"""`retalk eval`: datasets, protocols, the runner end to end (local, process pool, Ray), resuming, reports."""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys

import numpy as np
import pytest

from retalk.errors import InputError, MissingDependencyError
from retalk.evaluate.dataset import Clip, derangement, load_dataset, pair_clips
from retalk.evaluate.runner import COLUMNS, METRICS, TIMING_COLUMNS, UNAVAILABLE, evaluate

WEIGHT_FREE = ("cpbd", "cpbd_face", "av_offset", "av_confidence", "mouth_open_mean", "mouth_open_std",
               "mouth_open_range", "mouth_speed", "landmark_jitter")
REFERENCE = ("lmd_mouth", "lmd_face", "psnr", "ssim", "psnr_outside")
LSE = ("lse_d", "lse_c", "lse_offset")


def _stable(rows):
    """Rows without the timing columns (the only ones allowed to differ between runs)."""
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    """Two 1.5 s 256×256 astronaut clips with different vowel speech as their sound, and a broken 'video'."""
    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip

    root = tmp_path_factory.mktemp("evalset")
    d = root / "clips"
    d.mkdir()
    for name, rate, motion in (("clip_a", 3.0, 1.0), ("clip_b", 5.0, 0.6)):
        wav = root / f"{name}.wav"
        write_wav(wav, vowel_speech(1.5, syllable_rate=rate, seed=int(rate)), 16000)
        write_face_clip(d / f"{name}.mp4", 1.5, width=256, height=256, motion=motion, audio_path=wav)
    (d / "broken.mp4").write_text("this is not a video\n" * 20)
    return d


@pytest.fixture(scope="module")
def no_weights(tmp_path_factory):
    return tmp_path_factory.mktemp("no_weights")


@pytest.fixture(scope="module")
def paired(clips_dir, no_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("paired") / "run"
    summary = evaluate(clips_dir, "builtin", out, protocol="paired", checkpoints=no_weights, progress=False)
    return summary, out


# ----------------------------------------------------------------------------- datasets
def test_folder_dataset_pairs_same_stem_audio(tmp_path):
    (tmp_path / "b.mp4").write_bytes(b"x")
    (tmp_path / "a.mov").write_bytes(b"x")
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / "orphan.wav").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("ignored")
    clips = load_dataset(tmp_path)
    assert [c.id for c in clips] == ["a", "b"]
    assert clips[0].audio == tmp_path / "a.wav" and clips[0].speech == tmp_path / "a.wav"
    assert clips[1].audio is None and clips[1].speech == tmp_path / "b.mp4"
    paired = pair_clips(clips, "paired")
    assert [(p.clip.id, p.audio_id) for p in paired] == [("a", "a"), ("b", "b")]


def test_manifests_csv_and_jsonl(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for n in ("v1.mp4", "v2.mp4", "s1.wav"):
        (media / n).write_bytes(b"x")
    (tmp_path / "set.csv").write_text("video,audio,id\nmedia/v2.mp4,,second\nmedia/v1.mp4,media/s1.wav,\n\n")
    clips = load_dataset(tmp_path / "set.csv")
    assert clips == [Clip("second", media / "v2.mp4", None), Clip("v1", media / "v1.mp4", media / "s1.wav")]
    (tmp_path / "set.jsonl").write_text(json.dumps({"video": str(media / "v1.mp4"), "audio": "media/s1.wav"})
                                        + "\n\n" + json.dumps({"video": "media/v2.mp4", "id": "x"}) + "\n")
    assert [c.id for c in load_dataset(tmp_path / "set.jsonl")] == ["v1", "x"]


@pytest.mark.parametrize("case", ["missing", "empty_folder", "no_video_column", "duplicate_id",
                                  "bad_json", "bad_id", "wrong_suffix"])
def test_bad_dataset_is_one_line_input_error(tmp_path, case):
    (tmp_path / "v.mp4").write_bytes(b"x")
    target = {"missing": tmp_path / "nope", "empty_folder": tmp_path / "empty"}.get(case)
    if case == "empty_folder":
        target.mkdir()
    elif case == "no_video_column":
        target = tmp_path / "m.csv"
        target.write_text("path,audio\nv.mp4,\n")
    elif case == "duplicate_id":
        target = tmp_path / "m.csv"
        target.write_text("video\nv.mp4\nv.mp4\n")
    elif case == "bad_json":
        target = tmp_path / "m.jsonl"
        target.write_text('{"video": "v.mp4"}\n{"video": \n')
    elif case == "bad_id":
        target = tmp_path / "m.jsonl"
        target.write_text('{"video": "v.mp4", "id": "../escape"}\n')
    elif case == "wrong_suffix":
        target = tmp_path / "m.txt"
        target.write_text("v.mp4\n")
    with pytest.raises(InputError) as err:
        load_dataset(target)
    assert len(str(err.value).splitlines()) == 1


def test_unpaired_is_a_seeded_derangement():
    for n in (2, 3, 7, 50):
        for seed in range(5):
            perm = derangement(n, seed)
            assert sorted(perm.tolist()) == list(range(n))
            assert not np.any(perm == np.arange(n))
            assert np.array_equal(perm, derangement(n, seed))
    assert not all(np.array_equal(derangement(20, 0), derangement(20, s)) for s in range(1, 4))
    clips = [Clip(f"c{i}", f"c{i}.mp4") for i in range(5)]  # type: ignore[arg-type]
    pairs = pair_clips(clips, "unpaired", seed=1)
    assert all(p.audio_id != p.clip.id for p in pairs)
    assert [p.audio_id for p in pairs] == [p.audio_id for p in pair_clips(clips, "unpaired", seed=1)]
    with pytest.raises(InputError, match="at least 2 clips"):
        pair_clips(clips[:1], "unpaired")
    with pytest.raises(InputError, match="unknown protocol"):
        pair_clips(clips, "crossed")


# ----------------------------------------------------------------------------- end to end
def test_paired_run_writes_everything(paired, no_weights):
    summary, out = paired
    for name in ("results.csv", "summary.json", "report.md", "plots/per_clip.png", "plots/sync_offset_hist.png",
                 "videos/clip_a.mp4", "videos/clip_b.mp4"):
        assert (out / name).is_file(), name
    for png in summary.plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    rows = _csv_rows(out / "results.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert [r["id"] for r in rows] == ["broken", "clip_a", "clip_b"]
    assert _stable(rows) == _stable(summary.rows)

    broken, *good = rows
    assert broken["status"] == "error" and "broken.mp4" in broken["error"] and "\n" not in broken["error"]
    for r in good:
        assert r["status"] == "ok" and r["error"] == ""
        assert r["audio_id"] == r["id"] and r["protocol"] == "paired" and r["engine"] == "builtin"
        assert int(r["frames"]) >= 37 and float(r["fps"]) == 25.0 and float(r["face_fraction"]) == 1.0
        for name in WEIGHT_FREE + REFERENCE:
            assert np.isfinite(float(r[name])), (r["id"], name, r[name])
        for name in LSE:
            assert r[name] == UNAVAILABLE
        # reconstruction of the own speech: close to the source
        assert float(r["psnr"]) > 25 and float(r["ssim"]) > 0.8 and float(r["lmd_mouth"]) < 0.1
        assert 0 < float(r["cpbd"]) <= 1 and float(r["av_confidence"]) > 0.1

    doc = json.loads((out / "summary.json").read_text())
    assert doc["engine"] == "builtin" and doc["protocol"] == "paired" and doc["seed"] == 0
    assert doc["counts"] == {"clips": 3, "ok": 2, "error": 1, "resumed": 0}
    assert doc["errors"]["broken"] == broken["error"]
    assert doc["means"]["lse_d"] == UNAVAILABLE and doc["set_metrics"]["fid"] == UNAVAILABLE
    assert "syncnet_v2.model" in doc["unavailable"]["lse"]["reason"]  # also when PyTorch is the missing piece
    assert "pt_inception-2015-12-05-6726825d.pth" in doc["unavailable"]["fid"]["reason"]
    assert set(doc["unavailable"]["lse"]["metrics"]) == set(LSE)
    assert {"retalk", "numpy", "mediapipe"} <= set(doc["versions"])
    for name in WEIGHT_FREE + REFERENCE:
        assert isinstance(doc["means"][name], float)
    assert summary.n_ok == 2 and summary.n_error == 1 and summary.errors == {"broken": broken["error"]}

    report = (out / "report.md").read_text()
    assert "| metric | mean |" in report and "| clip_a | clip_a | ok |" in report
    assert "## Unavailable" in report and "## Errors" in report and "plots/per_clip.png" in report


def test_second_run_skips_finished_clips(paired, clips_dir, no_weights):
    first, out = paired
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.mp4")}
    again = evaluate(clips_dir, "builtin", out, checkpoints=no_weights, progress=False)
    assert again.n_resumed == 2 and again.n_ok == 2 and again.n_error == 1
    assert {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.mp4")} == stamps
    assert list(again.rows) == list(first.rows)
    assert json.loads((out / "summary.json").read_text())["counts"]["resumed"] == 2


def test_unpaired_manifest_run(clips_dir, no_weights, tmp_path):
    manifest = tmp_path / "set.jsonl"
    lines = [json.dumps({"video": str(clips_dir / f"{n}.mp4")}) for n in ("clip_b", "clip_a")]
    manifest.write_text("\n".join(lines) + "\n")
    s = evaluate(manifest, "builtin", tmp_path / "run", protocol="unpaired", seed=3, checkpoints=no_weights,
                 metrics="sync,mouth,reference", progress=False)
    assert s.n_ok == 2 and s.n_error == 0
    assert [(r["id"], r["audio_id"]) for r in s.rows] == [("clip_a", "clip_b"), ("clip_b", "clip_a")]
    for r in s.rows:
        assert r["audio"].endswith(f"{r['audio_id']}.mp4") and r["protocol"] == "unpaired"
        assert np.isfinite(float(r["av_confidence"])) and np.isfinite(float(r["mouth_open_range"]))
        for name in REFERENCE + ("cpbd",) + LSE:  # no reference under unpaired; groups not asked for stay empty
            assert r[name] == ""
    assert s.unavailable == {} and s.set_metrics == {}


def test_process_pool_gives_the_same_rows(paired, clips_dir, no_weights, tmp_path):
    first, _ = paired
    s = evaluate(clips_dir, "builtin", tmp_path / "pool", workers=2, checkpoints=no_weights, progress=False)
    assert _stable(s.rows) == _stable(first.rows)
    assert json.loads((tmp_path / "pool" / "summary.json").read_text())["backend"] == "process-pool:2"


def test_ray_local_gives_the_same_rows(paired, clips_dir, no_weights, tmp_path):
    pytest.importorskip("ray", reason="ray (retalk[ray]) not installed")
    first, _ = paired
    s = evaluate(clips_dir, "builtin", tmp_path / "ray", ray="local", workers=2, checkpoints=no_weights,
                 progress=False)
    assert _stable(s.rows) == _stable(first.rows)
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["backend"] == "ray:local"


def test_ray_auto_without_a_cluster_is_one_line(clips_dir, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray (retalk[ray]) not installed")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(InputError, match="--ray local") as err:
        evaluate(clips_dir, "builtin", tmp_path / "o", ray="auto", progress=False)
    assert len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_lse_and_fid_when_weights_arrive(paired, clips_dir, tmp_path):
    """Randomly initialised networks saved under the release file names: the weight paths run, nothing re-renders."""
    torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
    from retalk.metrics import FID_WEIGHTS_FILE
    from retalk.networks.fid_inception import FIDInceptionV3
    from retalk.networks.syncnet import SyncNetV2

    _, out = paired
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    stamps = {p.name: p.stat().st_mtime_ns for p in (copy / "videos").glob("*.mp4")}
    ck = tmp_path / "weights"
    ck.mkdir()
    torch.manual_seed(0)
    torch.save(SyncNetV2().state_dict(), ck / "syncnet_v2.model")
    torch.save(FIDInceptionV3().state_dict(), ck / FID_WEIGHTS_FILE)
    s = evaluate(clips_dir, "builtin", copy, checkpoints=ck, metrics=("lse", "fid"), frame_step=19, progress=False)
    assert s.unavailable == {} and s.n_resumed == 0 and s.n_ok == 2
    assert {p.name: p.stat().st_mtime_ns for p in (copy / "videos").glob("*.mp4")} == stamps
    for r in s.rows[1:]:
        assert r["render_s"] == "" and float(r["lse_d"]) > 0 and np.isfinite(float(r["lse_c"]))
        assert abs(int(r["lse_offset"])) <= 15
    assert all(isinstance(s.set_metrics[k], float) for k in ("fid", "kid", "kid_std"))


# ----------------------------------------------------------------------------- options and CLI
def test_bad_options(clips_dir, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="unknown engine"):
        evaluate(clips_dir, "nope", tmp_path / "o")
    with pytest.raises(InputError, match="unknown protocol"):
        evaluate(clips_dir, "builtin", tmp_path / "o", protocol="crossed")
    with pytest.raises(InputError, match="unknown metric group"):
        evaluate(clips_dir, "builtin", tmp_path / "o", metrics=("sharpness", "vibes"))
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"retalk\[ray\]"):
        evaluate(clips_dir, "builtin", tmp_path / "o", ray="local")
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("id,engine,protocol,status\nclip_a,passthrough,paired,ok\n")
    with pytest.raises(InputError, match="another --out"):
        evaluate(clips_dir, "builtin", other)


def test_cli_eval_parser_and_run(paired, clips_dir, no_weights, capsys):
    from retalk.evaluate.cli_eval import add_eval_parser, run_eval

    _, out = paired
    parser = argparse.ArgumentParser(prog="retalk")
    sub = parser.add_subparsers(dest="command")
    p = add_eval_parser(sub, [])
    assert all(a.help for a in p._actions if a.dest != "help")
    args = parser.parse_args(["eval", "--dataset", str(clips_dir), "--engine", "builtin", "--out", str(out),
                              "--checkpoints", str(no_weights)])
    assert (args.protocol, args.workers, args.ray, args.seed, args.frame_step) == ("paired", 1, None, 0, 1)
    assert run_eval(args) == 3  # EXIT_FAILED_CLIPS: the broken clip failed; the others were reused
    captured = capsys.readouterr()
    assert "2/3 clips scored, 2 reused" in captured.out and "lse unavailable" in captured.out
    assert "1 of 3 clip(s) failed" in captured.err
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--dataset", "x", "--out", "y", "--workers", "0"])


def test_metric_table_is_documented():
    import pathlib

    doc = (pathlib.Path(__file__).parents[1] / "docs" / "evaluation.md").read_text()
    for m in METRICS:
        assert f"`{m.name}`" in doc, m.name


def test_an_engine_that_cannot_load_leaves_no_output_folder(clips_dir, tmp_path):
    """A missing checkpoint stops the run before anything is written (no empty videos/ and plots/)."""
    pytest.importorskip("torch", reason="wav2lip needs torch (retalk[neural])")
    from retalk.errors import CheckpointError

    out = tmp_path / "o"
    with pytest.raises(CheckpointError):
        evaluate(clips_dir, "wav2lip", out, checkpoints=str(tmp_path / "empty"))
    assert not out.exists()
