"""What a new user ran into: an --outfile that was the input, missing checkpoints named one per run, a
--checkpoints folder that does not exist, Ctrl-C swallowed while speech was synthesized."""
from __future__ import annotations

import ctypes
import importlib.util
import os
import signal
import sys

import pytest

from retalk import cli
from retalk.cli import deferred_signals
from retalk.cli_checks import check_dub_checkpoints, check_paths
from retalk.errors import EXIT_BAD_INPUT, CheckpointError, InputError


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("retalk: error: "), err
    return err


@pytest.mark.parametrize("flag", ["--face", "--audio"])
def test_outfile_that_is_an_input_is_refused_and_the_input_kept(flag, tmp_path, capsys, monkeypatch):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"the user's only copy" * 100)
    other = tmp_path / "other.mp4"
    other.write_bytes(b"x" * 100)
    face, audio = (src, other) if flag == "--face" else (other, src)
    monkeypatch.chdir(tmp_path)  # the output spelled differently: ./clip.mp4
    code = cli.main(["sync", "--face", str(face), "--audio", str(audio), "-o", "./clip.mp4", "-q"])
    assert code == EXIT_BAD_INPUT
    assert f"is also the {flag} input and would be overwritten" in _one_error_line(capsys)
    assert src.read_bytes() == b"the user's only copy" * 100


def test_outfile_reaching_an_input_through_a_link_is_refused(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"video")
    (tmp_path / "sym.mp4").symlink_to(src)
    os.link(src, tmp_path / "hard.mp4")
    for out in ("sym.mp4", "hard.mp4"):
        with pytest.raises(InputError, match="--image input"):
            check_paths(tmp_path / out, {"--image": src, "--audio": None})
    check_paths(tmp_path / "new.mp4", {"--image": src, "--audio": None})  # a new file is fine


def test_animate_refuses_an_outfile_that_is_the_reference_video(tmp_path, capsys):
    ref = tmp_path / "ref.mp4"
    ref.write_bytes(b"video")
    code = cli.main(["animate", "--image", "p.png", "--audio", "a.wav", "--ref-pose", str(ref), "-o", str(ref)])
    assert code == EXIT_BAD_INPUT
    assert "is also the --ref-pose input" in _one_error_line(capsys)


@pytest.mark.parametrize("command", [
    ["sync", "--face", "f.mp4", "--audio", "a.wav"],
    ["animate", "--image", "p.png", "--audio", "a.wav"],
    ["say", "--text", "hi", "--face", "f.mp4"],
])
def test_checkpoints_folder_that_does_not_exist_is_named(command, tmp_path, capsys):
    missing = tmp_path / "weights"
    code = cli.main([*command, "-o", str(tmp_path / "o.mp4"), "--checkpoints", str(missing)])
    assert code == EXIT_BAD_INPUT
    assert _one_error_line(capsys) == f"retalk: error: --checkpoints {missing}: folder not found"


@pytest.fixture()
def torch_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks look at files only; they run when torch is installed, so pretend it is."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "torch" else real(name, *a))


def test_wav2lip_and_enhancer_missing_are_named_together(tmp_path, monkeypatch, torch_present):
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError) as exc:
        check_dub_checkpoints("wav2lip", "gfpgan", {})
    text = str(exc.value)
    assert text.startswith("2 checkpoints are missing: (1) ")
    for part in ("wav2lip.pth", "wav2lip_gan.pth", "github.com/Rudrabha/Wav2Lip", "--enhancer gfpgan",
                 "GFPGANv1.3.pth", str(tmp_path.resolve())):
        assert part in text, part
    (tmp_path / "wav2lip_gan.pth").write_bytes(b"0")  # existence is all this check looks at
    with pytest.raises(CheckpointError) as exc:
        check_dub_checkpoints("wav2lip", "gfpgan", {})
    assert str(exc.value).startswith("--enhancer gfpgan: checkpoint 'gfpgan' not found")
    (tmp_path / "GFPGANv1.3.pth").write_bytes(b"0")
    check_dub_checkpoints("wav2lip", "gfpgan", {})


def test_videoretalking_list_names_gfpgan_once(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError) as exc:
        check_dub_checkpoints("videoretalking", "gfpgan", {"up_face": "angry"})
    text = str(exc.value)
    for name in ("DNet.pt", "LNet.pth", "ENet.pth", "GPEN-BFR-512.pth", "ParseNet-latest.pth", "30_net_gen.pth",
                 "expression.mat"):
        assert name in text, name
    assert text.count("GFPGANv1.3.pth (get it") == 1


def test_builtin_needs_no_checkpoints(tmp_path, monkeypatch, torch_present):
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    check_dub_checkpoints("builtin", None, {})
    check_dub_checkpoints("passthrough", None, {})


def test_cli_names_every_missing_file_before_reading_the_video(tmp_path, capsys, torch_present):
    code = cli.main(["sync", "--face", "never-read.mp4", "--audio", "never-read.wav", "-o", str(tmp_path / "o.mp4"),
                     "--engine", "wav2lip", "--enhancer", "gfpgan", "--checkpoints", str(tmp_path)])
    assert code == EXIT_BAD_INPUT
    err = _one_error_line(capsys)
    assert "wav2lip.pth" in err and "GFPGANv1.3.pth" in err and "never-read" not in err


_CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))


def _sort_in_c(values: list[int], signum: int) -> list[int]:
    """Sort with libc's qsort, whose comparisons call back into Python; the first one sends ``signum``."""
    sent = []

    def compare(a, b) -> int:  # noqa: ANN001 - ctypes pointers
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signum)
            sum(range(1000))  # bytecodes run: the handler's exception is raised here, inside the callback
        return (a[0] > b[0]) - (a[0] < b[0])

    arr = (ctypes.c_int * len(values))(*values)
    ctypes.CDLL(None).qsort(arr, len(values), ctypes.sizeof(ctypes.c_int), _CMP(compare))
    return list(arr)


def test_ctrl_c_inside_a_c_callback_is_lost_without_deferral(monkeypatch):
    """The failure the deferral exists for: ctypes hands the KeyboardInterrupt to sys.unraisablehook and goes on."""
    dropped: list = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)
    _sort_in_c([3, 1, 2], signal.SIGINT)  # returns: the Ctrl-C is gone
    assert [d.exc_type for d in dropped] == [KeyboardInterrupt]


def test_ctrl_c_inside_a_c_callback_takes_effect_after_it(capsys):
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            assert _sort_in_c([3, 1, 2], signal.SIGINT) == [1, 2, 3]  # the step finishes first
    assert "KeyboardInterrupt" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_runs_the_installed_handler_after_the_step():
    class Stop(BaseException):
        pass

    def on_term(signum, frame):  # noqa: ANN001
        raise Stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with pytest.raises(Stop):
            with deferred_signals():
                _sort_in_c([2, 1], signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is on_term
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_no_signal_no_effect():
    with deferred_signals():
        assert _sort_in_c.__name__ == "_sort_in_c"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_missing_audio_is_called_audio(tmp_path):
    from retalk.media import load_audio

    with pytest.raises(InputError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")


def test_an_option_error_comes_before_missing_files(tmp_path, capsys):
    pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
    code = cli.main(["sync", "--face", "f.mp4", "--audio", "a.wav", "-o", str(tmp_path / "o.mp4"), "--engine",
                     "videoretalking", "--enhancer", "gfpgan", "--exp-img", "grumpy", "--checkpoints", str(tmp_path)])
    assert code == EXIT_BAD_INPUT
    assert "--exp-img 'grumpy': not neutral, smile or an existing picture" in _one_error_line(capsys)


def test_checkpoints_flag_lasts_one_run(tmp_path, monkeypatch):
    monkeypatch.delenv("RETALK_CHECKPOINTS", raising=False)
    cli.main(["sync", "--face", "f.mp4", "--audio", "a.wav", "-o", str(tmp_path / "o.mp4"), "--checkpoints",
              str(tmp_path)])
    assert "RETALK_CHECKPOINTS" not in os.environ  # a later run in this process must not search tmp_path
    monkeypatch.setenv("RETALK_CHECKPOINTS", "/elsewhere")
    cli.main(["sync", "--face", "f.mp4", "--audio", "a.wav", "-o", str(tmp_path / "o.mp4"), "--checkpoints",
              str(tmp_path)])
    assert os.environ["RETALK_CHECKPOINTS"] == "/elsewhere"
