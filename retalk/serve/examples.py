"""Example inputs for the page, generated on the server's first start (nothing downloaded).

``face.mp4`` (the moving astronaut, 3 s, 384×384, 25 fps), ``speech.wav`` (the demo sentence from the
bundled synthesizer), ``photo.png`` (the astronaut, 512×512). Written once into the examples folder;
a later start reuses them.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SPEECH_TEXT = "Hello! This is retalk. My lips follow the new speech."
TEXT = "Hello! This is retalk, speaking from a photo. Maybe a big blue balloon will bob up above the map."


@dataclass(frozen=True)
class Examples:
    """Paths of the example inputs."""

    face: Path
    speech: Path
    photo: Path
    text: str = TEXT


def example_paths(folder: Path) -> Examples:
    return Examples(folder / "face.mp4", folder / "speech.wav", folder / "photo.png")


def write_examples(folder: Path) -> Examples:
    """Generate the example inputs that are missing in ``folder``; return their paths."""
    import cv2

    from retalk.media import write_wav
    from retalk.samples import astronaut, write_face_clip
    from retalk.speech.tts import synthesize

    ex = example_paths(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not ex.face.is_file():
        write_face_clip(folder / ".face.tmp.mp4", seconds=3.0, fps=25, width=384, height=384).replace(ex.face)
    if not ex.speech.is_file():
        speech = synthesize(SPEECH_TEXT)
        tmp = folder / ".speech.tmp.wav"
        write_wav(tmp, speech.samples, speech.sample_rate)
        tmp.replace(ex.speech)
    if not ex.photo.is_file():
        tmp = folder / ".photo.tmp.png"
        cv2.imwrite(str(tmp), cv2.cvtColor(astronaut(512), cv2.COLOR_RGB2BGR))
        tmp.replace(ex.photo)
    return ex


class ExampleMaker:
    """Writes the examples in a background thread (:meth:`start`), so the server is up at once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._done = threading.Event()
        self._error: str | None = None
        self._started = threading.Event()

    def start(self) -> None:
        if not self._started.is_set():
            self._started.set()
            threading.Thread(target=self._run, name="retalk-examples", daemon=True).start()

    def _run(self) -> None:
        try:
            write_examples(self.folder)
            log.info("example inputs in %s", self.folder)
        except Exception as exc:  # noqa: BLE001 - examples are a convenience; the server runs without them
            self._error = f"{type(exc).__name__}: {exc}"
            log.warning("could not write the example inputs: %s", self._error)
        finally:
            self._done.set()

    def get(self, timeout: float = 60.0) -> Examples | None:
        """The examples once written (waits up to ``timeout`` s), or None if writing them failed."""
        self.start()
        self._done.wait(timeout)
        return example_paths(self.folder) if self._done.is_set() and self._error is None else None
