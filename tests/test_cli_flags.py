"""Command-line flags: one dash style with the old underscore spellings as hidden aliases, early validation,
`say` target checks, exit statuses."""
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time

import pytest

from retalk import cli
from retalk.errors import EXIT_BAD_INPUT, EXIT_FAILED_CLIPS, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK

SYNC = ["sync", "--face", "f.mp4", "--audio", "a.wav", "-o", "o.mp4"]
ANIMATE = ["animate", "--image", "p.png", "--audio", "a.wav", "-o", "o.mp4"]
SAY_FACE = ["say", "--text", "hi", "--face", "f.mp4", "-o", "o.mp4"]
SAY_IMAGE = ["say", "--text", "hi", "--image", "p.png", "-o", "o.mp4"]
EVAL = ["eval", "--dataset", "d", "--out", "o"]

# (command, old spelling, its values, dest, parsed value): every underscore spelling the CLI ever accepted
OLD_SPELLINGS = [
    (SYNC, "--expression_scale", ["0.5"], "expression_scale", 0.5),
    (SYNC, "--face_index", ["2"], "face_index", 2),
    (ANIMATE, "--expression_scale", ["1.5"], "expression_scale", 1.5),
    (ANIMATE, "--pose_style", ["3"], "pose_style", 3),
    (ANIMATE, "--input_yaw", ["-8", "8", "0"], "input_yaw", [-8.0, 8.0, 0.0]),
    (ANIMATE, "--input_pitch", ["4"], "input_pitch", [4.0]),
    (ANIMATE, "--input_roll", ["3", "-3"], "input_roll", [3.0, -3.0]),
    (ANIMATE, "--ref_eyeblink", ["clip.mp4"], "ref_eyeblink", "clip.mp4"),
    (ANIMATE, "--ref_pose", ["clip.mp4"], "ref_pose", "clip.mp4"),
    (ANIMATE, "--blink_rate", ["12"], "blink_rate", 12.0),
    (SAY_IMAGE, "--pose_style", ["1"], "pose_style", 1),
    (SAY_IMAGE, "--blink_rate", ["20"], "blink_rate", 20.0),
    (SAY_IMAGE, "--input_yaw", ["5"], "input_yaw", [5.0]),
    (SAY_FACE, "--face_index", ["1"], "face_index", 1),
    (SAY_FACE, "--expression_scale", ["2"], "expression_scale", 2.0),
    (["say", "--face", "f.mp4", "-o", "o.mp4"], "--text_file", ["t.txt"], "text_file", "t.txt"),
    (EVAL, "--frame_step", ["4"], "frame_step", 4),
]


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return cli.build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("base, old, values, dest, expected", OLD_SPELLINGS,
                         ids=[f"{c[0]}{o}" for c, o, *_ in OLD_SPELLINGS])
def test_old_underscore_spelling_still_parses(parser, base, old, values, dest, expected):
    new = old.replace("_", "-")
    assert getattr(parser.parse_args([*base, old, *values]), dest) == expected
    assert getattr(parser.parse_args([*base, new, *values]), dest) == expected


def test_help_shows_one_flag_style(parser):
    helps = {"retalk": parser.format_help()}
    helps.update({name: p.format_help() for name, p in _subparsers(parser).items()})
    assert set(helps) >= {"retalk", "sync", "animate", "say", "eval", "doctor"}
    for name, text in helps.items():
        assert not re.findall(r"--[a-z0-9]+_[a-z0-9_]*", text), name
    assert "--pose-style" in helps["animate"] and "--input-yaw" in helps["animate"]
    assert "--frame-step" in helps["eval"] and "--text-file" in helps["say"]


def test_top_level_help_lists_exit_statuses():
    proc = subprocess.run([sys.executable, "-m", "retalk", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    status = proc.stdout.split("exit status:")[1]
    codes = [int(ln.split()[0]) for ln in status.strip().splitlines()]
    assert codes == [0, 1, 2, 3, 130, 143]


def test_exit_status_values():
    assert (EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_FAILED_CLIPS, EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)
    from retalk.errors import EXIT_TERMINATED

    assert EXIT_TERMINATED == 143


def test_choices_come_from_the_registries(parser):
    from retalk.engines import ENGINES
    from retalk.enhance import ENHANCERS

    subs = _subparsers(parser)
    for name in ("sync", "say", "eval"):
        engine = next(a for a in subs[name]._actions if a.dest == "engine")
        # say --image also takes the portrait engines (builtin, sadtalker)
        assert list(engine.choices) == sorted(set(ENGINES) | ({"builtin", "sadtalker"} if name == "say" else set()))
        for spec in ENGINES.values():
            assert spec.description in " ".join(engine.help.split())
    for name in ("sync", "animate", "say"):
        actions = {a.dest: a for a in subs[name]._actions}
        assert list(actions["enhancer"].choices) == list(ENHANCERS)
        assert list(actions["preset"].choices) == ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                                   "slow", "slower", "veryslow", "placebo"]


@pytest.mark.parametrize("extra, message", [
    (["--preset", "bogus"], "argument --preset: invalid choice: 'bogus'"),
    (["--crf", "99"], "argument --crf: 99 is out of range"),
    (["--crf", "-1"], "argument --crf: -1 is out of range"),
    (["--crf", "high"], "argument --crf: expected a whole number"),
    (["--engine", "bogus"], "argument --engine: invalid choice: 'bogus'"),
    (["--enhancer", "bogus"], "argument --enhancer: invalid choice: 'bogus'"),
    (["--device", "gpu"], "argument --device: expected cpu, cuda, cuda:N or auto"),
    (["--device", "cuda:"], "argument --device: expected cpu, cuda, cuda:N or auto"),
])
def test_bad_options_fail_in_one_line_before_anything_runs(extra, message, monkeypatch, capsys):
    import retalk.pipeline

    monkeypatch.setattr(retalk.pipeline, "sync", lambda *a, **k: pytest.fail("sync ran"))
    with pytest.raises(SystemExit) as exc:
        cli.main([*SYNC, *extra])
    assert exc.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("retalk: error: ") and message in err, err


@pytest.mark.parametrize("value", ["0", "17", "51"])
def test_crf_range_ends_are_accepted(parser, value):
    assert parser.parse_args([*SYNC, "--crf", value]).crf == int(value)


@pytest.mark.parametrize("text, device", [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"),
                                          ("CUDA:0", "cuda:0"), ("auto", None)])
def test_device_values(parser, text, device):
    for base in (SYNC, ANIMATE, SAY_FACE, EVAL):
        assert parser.parse_args([*base, "--device", text]).device == device
    assert parser.parse_args(SYNC).device is None


@pytest.mark.parametrize("args", [["--preset", "bogus"], ["--crf", "99"]])
def test_bad_encoder_options_fail_fast_on_a_real_clip(args, tmp_path, monkeypatch, capsys):
    """A bad encoder option fails before the analysis pass (which runs the face tracker), in one line."""
    from retalk.face import tracker
    from retalk.samples import write_face_clip, write_vowel_speech

    face = write_face_clip(tmp_path / "f.mp4", seconds=1.0, width=128, height=128)
    wav = write_vowel_speech(tmp_path / "a.wav", seconds=1.0)
    out = tmp_path / "o.mp4"

    def no_tracking(self, frame):
        raise AssertionError("the face tracker ran before the encoder options were checked")

    monkeypatch.setattr(tracker.FaceTracker, "update", no_tracking)
    with pytest.raises(SystemExit) as stop:  # the parser's one-line usage error
        cli.main(["sync", "--face", str(face), "--audio", str(wav), "-o", str(out), "-q", *args])
    code = stop.value.code
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_sync_refuses_fps_with_a_video(face_clip, short_wav, tmp_path, monkeypatch):
    import retalk.pipeline as pipeline
    from retalk.errors import InputError

    monkeypatch.setattr(pipeline, "iter_frames", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(InputError, match="--fps applies to a still image; .* is a video and keeps its own rate "
                                         r"\(25.000 fps\)"):
        pipeline.sync(face_clip, short_wav, tmp_path / "o.mp4", pipeline.SyncOptions(fps=30, progress=False))


@pytest.mark.parametrize("extra, message", [
    (["--pose-style", "1"], "--pose-style applies to --image, not to --face"),
    (["--pose_style", "1"], "--pose-style applies to --image, not to --face"),
    (["--still"], "--still applies to --image, not to --face"),
    (["--size", "256"], "--size applies to --image, not to --face"),
    (["--input-yaw", "5"], "--input-yaw applies to --image, not to --face"),
    (["--blink-rate", "3"], "--blink-rate applies to --image, not to --face"),
    (["--preprocess", "full"], "--preprocess applies to --image, not to --face"),
    (["--seed", "3"], "--seed applies to --image, not to --face"),
    (["--engine", "sadtalker"], "--engine sadtalker does not apply to --face: choose builtin, passthrough, videoretalking, wav2lip"),
])
def test_say_rejects_portrait_flags_with_face(extra, message, tmp_path, capsys):
    assert cli.main([*SAY_FACE[:-1], str(tmp_path / "o.mp4"), *extra]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"retalk: error: {message}"


@pytest.mark.parametrize("extra, message", [
    (["--engine", "wav2lip"], "--engine wav2lip does not apply to --image: choose builtin, sadtalker"),
    (["--face-index", "0"], "--face-index applies to --face, not to --image"),
    (["--box", "0 0 10 10"], "--box applies to --face, not to --image"),
    (["--no-hold-repeats"], "--no-hold-repeats applies to --face, not to --image"),
])
def test_say_rejects_dubbing_flags_with_image(extra, message, tmp_path, capsys):
    assert cli.main([*SAY_IMAGE[:-1], str(tmp_path / "o.mp4"), *extra]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"retalk: error: {message}"


def test_say_face_takes_speaker_flags_and_defaults(parser):
    args = cli.check_say_target(parser.parse_args([*SAY_FACE, "--face-index", "1", "--box", "1,2,3,4"]))
    assert (args.face_index, args.box, args.engine, args.hold_repeats, args.fps) == (1, (1.0, 2.0, 3.0, 4.0),
                                                                                     "builtin", True, None)
    args = cli.check_say_target(parser.parse_args([*SAY_IMAGE, "--pose-style", "2"]))
    assert (args.pose_style, args.blink_rate, args.preprocess, args.still, args.size) == (2, 17.0, "crop", False,
                                                                                          None)


def test_say_lists_voices(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["say", "--list-voices"])
    assert exc.value.code == 0
    voices = capsys.readouterr().out.split()
    assert "en-us" in voices and voices == sorted(voices)


def test_unknown_voice_points_to_list_voices(tmp_path, face_clip, capsys):
    code = cli.main(["say", "--text", "hi", "--voice", "xx-nonexistent", "--face", str(face_clip), "-o",
                     str(tmp_path / "o.mp4")])
    assert code == EXIT_BAD_INPUT
    assert "retalk say --list-voices" in capsys.readouterr().err


@pytest.mark.parametrize("error, code, line", [
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "retalk: interrupted"),
    (ValueError("a bug"), EXIT_INTERNAL, "retalk: internal error: ValueError: a bug (run with -vv for details)"),
])
def test_exit_status_of_interrupts_and_bugs(error, code, line, monkeypatch, capsys):
    def boom(args):
        raise error

    monkeypatch.setattr(cli, "_run_doctor", boom)
    assert cli.main(["doctor"]) == code
    assert capsys.readouterr().err.strip() == line


def test_sigint_exits_130_without_traceback_or_output(tmp_path):
    from retalk.samples import write_face_clip, write_vowel_speech

    face = write_face_clip(tmp_path / "f.mp4", seconds=10.0, width=320, height=320)
    wav = write_vowel_speech(tmp_path / "a.wav", seconds=10.0)
    out = tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "retalk", "sync", "--face", str(face), "--audio", str(wav), "-o",
                             str(out), "-q", "--no-asr", "--preset", "ultrafast"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".o.*partial*")):  # the sink's temporary file: rendering has begun
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip("the render finished before it could be interrupted")
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert err.strip() == "retalk: interrupted"
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_sigterm_exits_143_and_removes_output_and_temporary_files(tmp_path):
    """SIGTERM while rendering a dub whose audio is longer than the video (back-and-forth playback)."""
    import os

    from retalk.errors import EXIT_TERMINATED
    from retalk.samples import write_face_clip, write_vowel_speech

    face = write_face_clip(tmp_path / "f.mp4", seconds=3.0, width=320, height=320)
    wav = write_vowel_speech(tmp_path / "a.wav", seconds=30.0)
    out = tmp_path / "o.mp4"
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "retalk", "sync", "--face", str(face), "--audio", str(wav), "-o",
                             str(out), "-q", "--no-asr", "--preset", "ultrafast"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(temp)})
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".o.*partial*")):  # the sink's temporary file: rendering has begun
        assert proc.poll() is None and time.monotonic() < deadline, "the render ended before it could be stopped"
        time.sleep(0.02)
    time.sleep(0.5)  # into the backward runs (3 s of video, 30 s of speech: about 3 s of rendering on 2 cores)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_TERMINATED, err
    assert err.strip() == "retalk: terminated"
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    assert list(temp.iterdir()) == []


def test_output_permissions_follow_a_stricter_umask(tmp_path):
    import os
    from fractions import Fraction

    import numpy as np

    from retalk.media import VideoSink
    from retalk.media.video import _umask

    out = tmp_path / "perm.mp4"
    old = os.umask(0o027)
    try:
        assert _umask() == 0o027
        with VideoSink(out, 32, 32, Fraction(25)) as sink:
            sink.write(np.zeros((32, 32, 3), np.uint8))
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o640


def test_doctor_shows_the_real_import_error(tmp_path, monkeypatch):
    from retalk.doctor import _version

    (tmp_path / "retalk_test_broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _version("retalk_test_broken_mod") == "broken: RuntimeError: boom at import"
    assert _version("retalk_test_no_such_module") == "not installed"


@pytest.mark.parametrize("argv, message", [
    ([*SYNC, "--pose-style", "1"], "unrecognized arguments: --pose-style 1; --pose-style is a flag of retalk animate, "
                                   "retalk say, not of retalk sync (see 'retalk sync --help')"),
    ([*SYNC, "--pose_style", "1"], "unrecognized arguments: --pose_style 1; --pose-style is a flag of retalk animate, "
                                   "retalk say, not of retalk sync (see 'retalk sync --help')"),
    ([*ANIMATE, "--face-index", "1"], "unrecognized arguments: --face-index 1; --face-index is a flag of retalk sync, "
                                      "retalk say, not of retalk animate (see 'retalk animate --help')"),
    ([*SYNC, "--expresion-scale", "2"], "unrecognized arguments: --expresion-scale 2; did you mean "
                                        "--expression-scale? (see 'retalk sync --help')"),
    ([*SYNC, "stray"], "unrecognized arguments: stray (see 'retalk sync --help')"),
    (["sync", "--fac", "f.mp4"], "ambiguous option: --fac could match --face, --face-index (see 'retalk sync --help')"),
    ([*ANIMATE, "--input_", "3"], "ambiguous option: --input_ could match --input-yaw, --input-pitch, --input-roll "
                                  "(see 'retalk animate --help')"),
])
def test_unknown_flags_are_explained_by_their_command(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"retalk: error: {message}"


@pytest.mark.parametrize("argv, message", [
    ([*SYNC, "--fps", "0"], "argument --fps: 0 is out of range: choose 1 to 240 frames per second"),
    ([*SYNC, "--fps", "1000"], "argument --fps: 1000 is out of range: choose 1 to 240 frames per second"),
    ([*ANIMATE, "--fps", "0"], "argument --fps: 0 is out of range: choose 1 to 240 frames per second"),
    ([*SAY_IMAGE, "--fps", "nan"], "argument --fps: nan is out of range: choose 1 to 240 frames per second"),
    ([*ANIMATE, "--blink-rate", "-3"], "argument --blink-rate: -3 is out of range: choose 1 to 120 blinks per minute"),
    ([*SYNC, "--face-index", "-1"], "argument --face-index: -1: faces are counted from the left, starting at 0"),
    ([*SYNC, "--box", "10 10 5 5"], "argument --box: '10 10 5 5': X0 Y0 is the top-left corner and X1 Y1 the "
                                    "bottom-right one, so X1 > X0 and Y1 > Y0"),
])
def test_values_that_used_to_be_taken_silently_are_refused(argv, message, capsys):
    """--fps 0 became 25, --face-index -1 the rightmost face, --blink-rate -3 one a minute, a reversed --box any face."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"retalk: error: {message} (see 'retalk {argv[0]} --help')"


@pytest.mark.parametrize("argv, dest, value", [
    ([*SYNC, "--fps", "1"], "fps", 1.0), ([*SYNC, "--fps", "240"], "fps", 240.0),
    ([*ANIMATE, "--fps", "29.97"], "fps", 29.97), ([*ANIMATE, "--blink-rate", "1"], "blink_rate", 1.0),
    ([*SYNC, "--face-index", "0"], "face_index", 0), ([*SYNC, "--box", "0 0 1 1"], "box", (0.0, 0.0, 1.0, 1.0)),
])
def test_range_ends_are_accepted(parser, argv, dest, value):
    assert getattr(parser.parse_args(argv), dest) == value
