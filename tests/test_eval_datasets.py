"""`retalk eval --dataset LAYOUT:PATH`: miniature LRS2 and HDTF layouts, manifests, --subset, runs that finish.

Every layout is generated here, tiny, in the shape it has when distributed (see
retalk/evaluate/layouts.py and docs/evaluation.md):

* LRS2: ``mvlrs_v1/main/<speaker_id>/<clip>.mp4`` (+ ``.txt`` transcripts), ``mvlrs_v1/pretrain/``, and
  ``test.txt``/``val.txt`` lists of ``<speaker_id>/<clip>`` lines, some with a trailing `` NF``/`` MV`` flag;
* HDTF: ``<name>.mp4`` clips named ``RD_…``/``WDA_…``/``WRA_…``, split into source sub-folders or not.
"""
from __future__ import annotations

import csv
import json
import shutil

import pytest

from retalk.errors import InputError
from retalk.evaluate.dataset import load_dataset, open_dataset, parse_dataset_name, subset_clips
from retalk.evaluate.layouts import hdtf_source

METRICS = "sync,mouth"  # weight-free and quick: the layouts, not the metrics, are tested here


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def _lrs2(root, clips, lists):
    """``root/mvlrs_v1`` with ``clips`` ({"spk/clip": source file or None for a placeholder}) and file lists."""
    base = root / "mvlrs_v1"
    for name, src in clips.items():
        f = base / "main" / f"{name}.mp4"
        f.parent.mkdir(parents=True, exist_ok=True)
        if src is None:
            f.write_bytes(b"\0")
        else:
            shutil.copy(src, f)
        f.with_suffix(".txt").write_text("Text:  HELLO WORLD\nConf:  5\n")
    (base / "pretrain" / "111").mkdir(parents=True)
    (base / "pretrain" / "111" / "00001.mp4").write_bytes(b"\0")
    for list_name, lines in lists.items():
        (base / list_name).write_text("".join(line + "\n" for line in lines))
    return base


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory):
    """Two 1.2 s 160×160 25 fps astronaut clips (LRS2 crop size), each with its own vowel speech."""
    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip

    root = tmp_path_factory.mktemp("src")
    out = []
    for name, rate, motion in (("a", 3.0, 1.0), ("b", 5.0, 0.6)):
        wav = root / f"{name}.wav"
        write_wav(wav, vowel_speech(1.2, syllable_rate=rate, seed=int(rate)), 16000)
        out.append(write_face_clip(root / f"{name}.mp4", 1.2, fps=25, width=160, height=160, motion=motion,
                                   audio_path=wav))
    return out


# ----------------------------------------------------------------------------- reading the layouts
def test_lrs2_layout(tmp_path):
    _lrs2(tmp_path, {"6330311066473698535/00011": None, "6330311066473698535/00018": None,
                     "5535415699068794046/00001": None},
          {"test.txt": ["6330311066473698535/00011 NF", "5535415699068794046/00001", "",
                        "6330311066473698535/00018 MV"],
           "val.txt": ["5535415699068794046/00001", "9999999999999999999/00004"]})
    want = ["5535415699068794046_00001", "6330311066473698535_00011", "6330311066473698535_00018"]
    for name in (f"lrs2:{tmp_path}", f"lrs2:{tmp_path / 'mvlrs_v1'}"):
        ds = open_dataset(name)
        assert (ds.layout, [c.id for c in ds.clips]) == ("lrs2", want)
        assert ds.clips[1].video == tmp_path / "mvlrs_v1/main/6330311066473698535/00011.mp4"
        assert all(c.audio is None for c in ds.clips)  # the speech is the video's own sound track
    val = open_dataset(f"lrs2:{tmp_path / 'mvlrs_v1' / 'val.txt'}")
    assert [c.id for c in val.clips] == ["5535415699068794046_00001", "9999999999999999999_00004"]
    assert not val.clips[1].video.exists()  # listed but missing: kept, its row will fail
    (tmp_path / "mvlrs_v1" / "bad.txt").write_text("no_slash_here\n")
    for name in (f"lrs2:{tmp_path / 'mvlrs_v1' / 'bad.txt'}", f"lrs2:{tmp_path / 'mvlrs_v1' / 'main'}"):
        with pytest.raises(InputError) as err:
            open_dataset(name)
        assert len(str(err.value).splitlines()) == 1


def test_hdtf_layout(tmp_path):
    for rel in ("RD/RD_Radio11_000.mp4", "WDA/WDA_BarackObama_000.mp4", "WRA_AdamKinzinger_000.mp4",
                ".cache/WDA_Hidden_000.mp4", "RD/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"\0")
    (tmp_path / "WDA" / "WDA_BarackObama_000.wav").write_bytes(b"\0")
    (tmp_path / "runs" / "b" / "videos").mkdir(parents=True)  # an eval --out inside the dataset is not read
    (tmp_path / "runs" / "b" / "results.csv").write_text("id\n")
    (tmp_path / "runs" / "b" / "videos" / "RD_Radio11_000.mp4").write_bytes(b"\0")
    ds = open_dataset(f"hdtf:{tmp_path}")
    assert [c.id for c in ds.clips] == ["RD_Radio11_000", "WDA_BarackObama_000", "WRA_AdamKinzinger_000"]
    assert ds.clips[1].audio == tmp_path / "WDA" / "WDA_BarackObama_000.wav"
    assert [hdtf_source(c.id) for c in ds.clips] == ["RD", "WDA", "WRA"] and hdtf_source("talk1") == ""
    (tmp_path / "WRA").mkdir()
    (tmp_path / "WRA" / "RD_Radio11_000.mp4").write_bytes(b"\0")
    with pytest.raises(InputError, match="two clips"):
        open_dataset(f"hdtf:{tmp_path}")


def test_dataset_names_and_subset(tmp_path):
    for stem in ("c", "a", "b", "e", "d"):
        (tmp_path / f"{stem}.mp4").write_bytes(b"\0")
    (tmp_path / "m.csv").write_text("video\na.mp4\nb.mp4\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"video": "a.mp4"}) + "\n")
    assert parse_dataset_name(tmp_path) == ("folder", tmp_path)
    assert parse_dataset_name(f"folder:{tmp_path}") == ("folder", tmp_path)
    assert parse_dataset_name(tmp_path / "m.csv") == ("csv", tmp_path / "m.csv")
    assert parse_dataset_name(f"jsonl:{tmp_path / 'm.jsonl'}") == ("jsonl", tmp_path / "m.jsonl")
    assert [c.id for c in load_dataset(f"csv:{tmp_path / 'm.csv'}")] == ["a", "b"]
    for bad in ("lrs2:", f"nosuch:{tmp_path}", f"csv:{tmp_path}", f"folder:{tmp_path / 'm.csv'}"):
        with pytest.raises(InputError):
            open_dataset(bad)
    clips = load_dataset(tmp_path)
    assert [c.id for c in clips] == ["a", "b", "c", "d", "e"]
    picked = subset_clips(clips, 3, seed=7)
    assert len(picked) == 3 and len({c.id for c in picked}) == 3
    assert [c.id for c in picked] == sorted(c.id for c in picked)  # kept in dataset order
    assert picked == subset_clips(clips, 3, seed=7)
    assert len({tuple(c.id for c in subset_clips(clips, 2, s)) for s in range(20)}) > 1  # the seed matters
    assert subset_clips(clips, 9, seed=0) == clips
    ds = open_dataset(tmp_path, subset=2, seed=7)
    assert (len(ds.clips), ds.n_total, ds.subset_seed) == (2, 5, 7)
    with pytest.raises(InputError):
        subset_clips(clips, 0, seed=0)


def test_manifest_with_a_missing_file_opens(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"\0")
    (tmp_path / "m.csv").write_text("video,audio,id\nv.mp4,,v\ngone.mp4,,gone\nv.mp4,nope.wav,v2\n")
    clips = load_dataset(tmp_path / "m.csv")
    assert [(c.id, c.video.exists(), c.audio is None or c.audio.exists()) for c in clips] == [
        ("gone", False, True), ("v", True, True), ("v2", True, False)]


# ----------------------------------------------------------------------------- end to end, through the CLI
def _eval(*argv):
    from retalk.cli import main

    return main(["eval", "--engine", "builtin", "--metrics", METRICS, "-q", *map(str, argv)])


def test_lrs2_paired_end_to_end(two_clips, tmp_path):
    a, b = two_clips
    _lrs2(tmp_path, {"100/00001": a, "100/00002": b, "200/00001": b},
          {"test.txt": ["100/00001 NF", "100/00002"], "val.txt": ["200/00001"]})
    out = tmp_path / "run"
    assert _eval("--dataset", f"lrs2:{tmp_path}", "--out", out) == 0
    rows = _rows(out / "results.csv")
    assert sorted(rows) == ["100_00001", "100_00002"]
    for clip_id, r in rows.items():
        assert r["status"] == "ok" and r["protocol"] == "paired" and r["audio_id"] == clip_id
        assert (out / "videos" / f"{clip_id}.mp4").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["dataset_layout"], summary["dataset_clips"], summary["subset"]) == ("lrs2", 2, None)
    assert "own speech" in summary["pairing"]


def test_hdtf_unpaired_end_to_end(two_clips, tmp_path):
    a, b = two_clips
    data = tmp_path / "HDTF"
    (data / "WDA").mkdir(parents=True)
    (data / "RD").mkdir()
    shutil.copy(a, data / "WDA" / "WDA_Speaker_000.mp4")
    shutil.copy(b, data / "RD" / "RD_Radio1_000.mp4")
    out = tmp_path / "run"
    assert _eval("--dataset", f"hdtf:{data}", "--protocol", "unpaired", "--seed", "4", "--out", out) == 0
    rows = _rows(out / "results.csv")
    # two clips: the only derangement swaps their speech (Prajwal et al.'s unpaired setting)
    assert {i: r["audio_id"] for i, r in rows.items()} == {"RD_Radio1_000": "WDA_Speaker_000",
                                                             "WDA_Speaker_000": "RD_Radio1_000"}
    assert all(r["status"] == "ok" and r["protocol"] == "unpaired" for r in rows.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset_layout"] == "hdtf" and "Prajwal" in summary["pairing"]
    assert "Prajwal" in (out / "report.md").read_text()


def test_manifest_missing_file_row_fails_and_exit_3(two_clips, tmp_path):
    a, b = two_clips
    manifest = tmp_path / "set.csv"
    manifest.write_text(f"video,id\n{a},a\nmissing/gone.mp4,gone\n{b},b\n")
    out = tmp_path / "run"
    assert _eval("--dataset", f"csv:{manifest}", "--out", out, "--subset", "3") == 3
    rows = _rows(out / "results.csv")
    assert {i: r["status"] for i, r in rows.items()} == {"a": "ok", "b": "ok", "gone": "error"}
    assert "not found" in rows["gone"]["error"] and "gone.mp4" in rows["gone"]["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"clips": 3, "ok": 2, "error": 1, "resumed": 0}
    assert summary["subset"] == {"clips": 3, "seed": 0}
    # the run could not start: exit 2
    assert _eval("--dataset", f"lrs2:{tmp_path}", "--out", tmp_path / "run2") == 2


# ----------------------------------------------------------------------------- what a run shows
def test_progress_counts_frames_and_clips(two_clips, tmp_path):
    from retalk.evaluate.progress import RunProgress, frame_count

    assert frame_count(str(two_clips[0])) == 30  # 1.2 s at 25 fps
    assert frame_count(str(tmp_path / "absent.mp4")) == 0
    with RunProgress({"a": 30, "b": 20, "c": 50}, ["c"], "eval", enabled=False) as bar:
        assert (bar.clips_done, bar.frames_done) == (1, 50)
        bar.finished("a", ok=True)
        bar.finished("b", ok=False)
        assert (bar.clips_done, bar.frames_done) == (3, 100)


def test_each_warning_once_per_run():
    import logging

    from retalk.evaluate.progress import warn_once

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Keep(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        log = logging.getLogger("retalk.test_once")
        with warn_once():
            for _ in range(3):
                log.warning("LSE unavailable: get it from %s", "there")
            log.warning("another")
        log.warning("another")  # after the run: shown again
    finally:
        root.removeHandler(handler)
    assert seen == ["LSE unavailable: get it from there", "another", "another"]


def test_pool_workers_are_quiet():
    import subprocess
    import sys

    code = ("import logging, warnings; from retalk.evaluate.progress import quiet_worker; quiet_worker(30); "
            "warnings.warn('protobuf deprecated', UserWarning); logging.getLogger('retalk.x').warning('clip failed')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    loud = code.replace("quiet_worker(30)", "quiet_worker(20)")
    proc = subprocess.run([sys.executable, "-c", loud], capture_output=True, text=True, timeout=120)
    assert "protobuf deprecated" in proc.stderr and "clip failed" in proc.stderr


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "process-pool"])
def test_eval_progress_output_reaches_frame_and_clip_totals(two_clips, tmp_path, capsys, workers):
    """A real run's bar, captured: frames reach 60/60 (two 30-frame clips), clips reach 2/2, with an ETA."""
    import re

    from retalk.evaluate.runner import evaluate

    data = tmp_path / "clips"
    data.mkdir()
    for src in two_clips:
        shutil.copy(src, data / src.name)
    capsys.readouterr()
    evaluate(data, "passthrough", tmp_path / "run", metrics="mouth", progress=True, workers=workers)
    err = capsys.readouterr().err
    assert "0/60" in err  # the bar starts at zero frames of the total read from the headers
    last = [s for s in re.split(r"[\r\n]", err) if s.startswith("eval passthrough")][-1]
    assert "60/60" in last and "2/2 clips" in last, last
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", last), last  # elapsed<remaining: the ETA
    # quiet (the CLI's -q): nothing on stderr from the bar
    evaluate(data, "passthrough", tmp_path / "quiet", metrics="mouth", progress=False)
    assert "eval passthrough" not in capsys.readouterr().err
