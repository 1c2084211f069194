"""``retalk serve`` from the command line (it starts, imports stay light, loopback default) and the upload checks' pieces."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from retalk.serve.uploads import RequestError, _sniff, confine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _time_to_page(tmp_path: Path, limit: float = 30.0) -> tuple[float, str]:
    """Seconds from starting ``retalk serve`` until its page answers 200; and its log."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "retalk", "serve", "--port", str(port), "--no-examples",
                             "--work-dir", str(tmp_path / "work")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        while time.monotonic() - t0 < limit:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200 and b"<html" in r.read(4096).lower():
                        return time.monotonic() - t0, ""
            except OSError:
                time.sleep(0.05)
            if proc.poll() is not None:
                break
        return float("inf"), "did not answer"
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        assert "Traceback" not in (out or ""), out


HEAVY = ("torch", "mediapipe", "av", "cv2", "scipy", "skimage", "pocketsphinx", "matplotlib")


def test_serve_answers_its_page(tmp_path):
    """The server comes up and serves its page (how fast: benchmarks/serve_startup.py)."""
    pytest.importorskip("gradio", reason="needs pip install 'retalk[serve]'")
    seconds, why = _time_to_page(tmp_path, limit=120.0)
    assert seconds < float("inf"), why


def test_serve_builds_its_app_without_the_heavy_modules(tmp_path):
    """What keeps start-up short: building the app imports none of the media or network libraries
    (jobs import them in their own processes)."""
    pytest.importorskip("gradio", reason="needs pip install 'retalk[serve]'")
    code = ("import sys; from pathlib import Path; from retalk.serve.config import ServeConfig; "
            "from retalk.serve.app import build_app; "
            f"build_app(ServeConfig(work_dir=Path({str(tmp_path)!r}), examples=False)); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_serve_flags_default_to_loopback():
    from retalk.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.allow_path) == ("127.0.0.1", 7860, [])
    out = subprocess.run([sys.executable, "-c", "import sys; from retalk.cli import build_parser; "
                          "build_parser().parse_args(['serve']); print('gradio' in sys.modules)"],
                         capture_output=True, text=True, env={**os.environ,
                                                              "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.strip() == "False", out.stderr


def test_bad_serve_option_is_one_line(tmp_path):
    from retalk.cli import main

    assert main(["serve", "--port", "70000", "--work-dir", str(tmp_path)]) == 2
    assert main(["serve", "--allow-path", str(tmp_path / "nope"), "--work-dir", str(tmp_path)]) == 2


@pytest.mark.parametrize("head, expected", [
    (b"\x89PNG\r\n\x1a\n" + bytes(8), ("image", ".png")),
    (b"\xff\xd8\xff\xe0" + bytes(12), ("image", ".jpg")),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", ("audio", ".wav")),
    (b"RIFF\x00\x00\x00\x00AVI LIST", ("video", ".avi")),
    (b"\x00\x00\x00\x20ftypisom\x00\x00", ("video", ".mp4")),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", ("video", ".mkv")),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", ("audio", ".mp3")),
    (b"#!/bin/sh\nrm -rf /\n", None),
    (b"<html><body>", None),
    (b"", None),
])
def test_sniff_by_content(head, expected):
    assert _sniff(head) == expected


def test_confine(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.wav").write_bytes(b"x")
    (tmp_path / "secret.wav").write_bytes(b"x")
    assert confine(str(root / "sub" / "a.wav"), (root,)) == (root / "sub" / "a.wav").resolve()
    assert confine(str(root / "sub" / ".." / "sub" / "a.wav"), (root,)) == (root / "sub" / "a.wav").resolve()
    for bad, status in [(str(root / ".." / "secret.wav"), 403), (str(root) + "/../secret.wav", 403),
                        ("/etc/passwd", 403), (str(root / "nope.wav"), 404), ("a\x00b", 400)]:
        with pytest.raises(RequestError) as err:
            confine(bad, (root,))
        assert err.value.status == status, bad
    with pytest.raises(RequestError) as err:
        confine(str(root / "sub" / "a.wav"), ())  # server-side paths off
    assert err.value.status == 403
