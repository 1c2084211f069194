"""``make demo``: render a dubbing demo from inputs generated on the spot.

Writes, under ``--out`` (default ``out/``):
* ``demo_face.mp4``  — the astronaut photo drifting and turning slightly (the "talking-head video"),
* ``demo_speech.wav`` — a sentence from the bundled espeak-ng synthesizer,
* ``demo.mp4``       — the face video lip-synced to the speech by the built-in engine,
* ``demo_sheet.png`` — a contact sheet of the mouth, every few frames, to look at.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from retalk.errors import RetalkError

log = logging.getLogger(__name__)


def contact_sheet(video: Path, out: Path, step: int = 4, cols: int = 6, rows: int = 4) -> Path:
    """Save a grid of mouth close-ups taken every ``step`` frames of ``video`` (PNG)."""
    from retalk.face import landmarks as L
    from retalk.face.tracker import FaceMesh
    from retalk.media import iter_frames, probe_video

    mesh = FaceMesh(static=True)
    tiles = []
    for i, frame in enumerate(iter_frames(probe_video(video))):
        if i % step:
            continue
        faces = mesh(frame)
        if faces:
            lm = faces[0]
            c = lm[L.LIPS_OUTER, :2].mean(0)
            r = int(0.8 * L.interocular(lm))
            y0, x0 = max(0, int(c[1] - 0.8 * r)), max(0, int(c[0] - r))
            frame = frame[y0:y0 + int(1.6 * r), x0:x0 + 2 * r]
        tiles.append(cv2.resize(frame, (200, 160), interpolation=cv2.INTER_AREA))
        if len(tiles) == cols * rows:
            break
    mesh.close()
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.concatenate([np.concatenate(tiles[i:i + cols], 1) for i in range(0, len(tiles), cols)], 0)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m retalk.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out", help="output folder (created)")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of the generated face video")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from retalk.media import write_wav
    from retalk.pipeline import SyncOptions, sync
    from retalk.samples import DEMO_TEXT, write_face_clip
    from retalk.speech.tts import synthesize

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        face = write_face_clip(out / "demo_face.mp4", seconds=args.seconds, fps=25, width=512, height=512)
        speech = synthesize(DEMO_TEXT)
        wav = out / "demo_speech.wav"
        write_wav(wav, speech.samples, speech.sample_rate)
        log.info("inputs: %s (%.1f s video), %s (%.1f s speech)", face, args.seconds, wav, speech.duration)
        res = sync(face, wav, out / "demo.mp4", SyncOptions(progress=sys.stderr.isatty()))
        sheet = contact_sheet(res.path, out / "demo_sheet.png")
    except RetalkError as exc:
        print(f"retalk demo: error: {exc}", file=sys.stderr)
        return 2
    log.info("demo video: %s (%d frames, %.2f s, with sound)", res.path, res.frames, res.duration)
    log.info("mouth contact sheet: %s", sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
