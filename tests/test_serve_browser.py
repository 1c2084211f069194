"""The page of ``retalk serve`` in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Uploads a generated clip and speech, runs a dub with the built-in engine and reads the result's
duration back in the page; every request that would leave 127.0.0.1 is blocked and must not happen.
Chromium comes from ``make test`` (apt-get); when it is missing this test fails, it does not skip.
"""
from __future__ import annotations

import os
import shutil
import socket

import pytest

CHROMIUM = "/usr/bin/chromium"
FPS = 25


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed: CI must run the browser test (make test installs it)")
        pytest.skip(f"needs {module}: pip install 'retalk[serve,test]'")


def _chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (make browser / apt-get install "
                    "chromium); the browser test does not skip")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dub_in_the_page(tmp_path):
    _need("gradio")
    _need("playwright")
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip
    from retalk.serve.app import start
    from retalk.serve.config import ServeConfig

    face = write_face_clip(tmp_path / "face.mp4", seconds=1.0, fps=FPS, width=192, height=192)
    speech = tmp_path / "speech.wav"
    seconds = 1.6
    write_wav(speech, vowel_speech(seconds), 16000)
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    running = start(ServeConfig(host="127.0.0.1", port=free_port(), work_dir=tmp_path / "work", cpu_workers=1,
                                checkpoints=empty))
    external: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1280, "height": 1000})

            def offline(route):  # the network is cut: only the server itself answers
                url = route.request.url
                if url.startswith((running.url, "data:", "blob:")):
                    route.continue_()
                else:
                    external.append(url)
                    route.abort()

            context.route("**/*", offline)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(running.url + "/", wait_until="networkidle")
            page.locator("#dub-face input[type=file]").set_input_files(str(face))
            page.locator("#dub-audio input[type=file]").set_input_files(str(speech))
            page.locator("#dub-face video").wait_for()
            page.locator("#dub-run").click()
            page.wait_for_function("() => { const v = document.querySelector('#dub-result video');"
                                   " return v && v.readyState >= 1 && v.duration > 0; }", timeout=90_000)
            duration = page.evaluate("() => document.querySelector('#dub-result video').duration")
            assert abs(duration - seconds) <= 1.5 / FPS, duration  # the result has the speech's length
            assert page.evaluate("() => document.querySelector('#dub-result video').error") is None
            assert "40 frames" in page.locator("#dub-info").inner_text()
            # the engines table says which checkpoints are missing and where to get them
            page.get_by_text("Engines, enhancers and checkpoints").click()
            table = page.locator("table").first.inner_text()
            assert "wav2lip" in table and "github.com" in table
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            browser.close()
    finally:
        running.stop()
    assert external == [], f"the page asked for outside resources: {external}"
