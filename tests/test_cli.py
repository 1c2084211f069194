"""Bad input: one line on stderr, non-zero exit, no traceback, no output file."""
import subprocess
import sys

import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "retalk", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def _assert_clean_failure(proc, out):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("retalk: error:")
    assert not out.exists()
    assert not list(out.parent.glob(".*partial*"))


@pytest.fixture()
def textfile_mp4(tmp_path):
    p = tmp_path / "fake.mp4"
    p.write_text("this is not a video\n" * 20)
    return p


@pytest.fixture()
def zero_bytes(tmp_path):
    p = tmp_path / "zero.mp4"
    p.write_bytes(b"")
    return p


@pytest.mark.parametrize("case", ["missing_face", "text_as_video", "zero_byte_video", "silent_audio", "image_as_audio",
                                  "missing_audio", "bad_outdir", "unknown_engine"])
def test_bad_input_one_line(case, tmp_path, face_clip, vowel_wav, silent_wav, photo, textfile_mp4, zero_bytes):
    out = tmp_path / "result.mp4"
    face, audio, extra = face_clip, vowel_wav, []
    if case == "missing_face":
        face = tmp_path / "nope.mp4"
    elif case == "text_as_video":
        face = textfile_mp4
    elif case == "zero_byte_video":
        face = zero_bytes
    elif case == "silent_audio":
        audio = silent_wav
    elif case == "image_as_audio":
        audio = photo
    elif case == "missing_audio":
        audio = tmp_path / "nope.wav"
    elif case == "bad_outdir":
        out = tmp_path / "no" / "such" / "dir" / "x.mp4"
    elif case == "unknown_engine":
        extra = ["--engine", "nonsense"]
    proc = run("sync", "--face", face, "--audio", audio, "--outfile", out, "-q", "--no-asr", *extra)
    if case == "bad_outdir":
        assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        return
    _assert_clean_failure(proc, out)


def test_help_explains_flags():
    proc = run("sync", "--help")
    assert proc.returncode == 0
    for flag in ["--face", "--audio", "--outfile", "--engine", "--checkpoints", "--fps", "--face-index", "--box"]:
        assert flag in proc.stdout


def test_doctor_runs():
    proc = run("doctor")
    assert proc.returncode == 0
    assert "mediapipe" in proc.stdout and "checkpoints" in proc.stdout


def test_cli_sync_writes_video(tmp_path, face_clip, short_wav):
    out = tmp_path / "ok.mp4"
    proc = run("sync", "--face", face_clip, "--audio", short_wav, "--outfile", out, "-q", "--preset", "ultrafast")
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and out.stat().st_size > 1000


def test_global_flags_before_or_after_the_command():
    from retalk.cli import build_parser

    for argv, verbose, quiet in ((["-v", "doctor"], 1, False), (["doctor", "-vv"], 2, False),
                                 (["-q", "doctor"], 0, True), (["doctor"], 0, False)):
        args = build_parser().parse_args(argv)
        assert (args.verbose, args.quiet) == (verbose, quiet), argv


def test_doctor_says_which_file_each_command_needs_and_where_to_get_it(tmp_path, monkeypatch):
    from retalk.doctor import report

    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path / "absent"))
    text = report(check=False)
    assert f"checkpoints folder: {(tmp_path / 'absent').resolve()}, which does not exist" in text
    section = text.split("other release files (in the checkpoints folder):\n")[1].split("\n\n")[0].splitlines()
    expected = {"wav2lip.pth or wav2lip_gan.pth": ("sync --engine wav2lip", "github.com/Rudrabha/Wav2Lip"),
                "GFPGANv1.3.pth or GFPGANv1.4.pth": ("--enhancer gfpgan", "GFPGANv1.3.pth"),
                "syncnet_v2.model": ("eval: LSE-D/LSE-C", "robots.ox.ac.uk"),
                "pt_inception-2015-12-05-6726825d.pth": ("eval: FID/KID", "pytorch-fid")}
    assert len(section) == len(expected)
    for line, (files, (use, source)) in zip(section, expected.items()):
        assert line.split("(")[0].strip() == files
        assert f"({use}) missing; get it from" in line and source in line
    engine = next(line for line in text.splitlines() if line.split()[:1] == ["wav2lip"])
    assert engine.endswith("checkpoints: wav2lip.pth or wav2lip_gan.pth missing")
