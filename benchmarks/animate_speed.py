"""Speed and memory of ``retalk animate`` (portrait animation) on a generated photo and synthesized speech.

Prints the real-time factor (seconds of output per second of wall time, start-up
included: reading the photo, finding the face, building the working picture) and
peak resident memory at output sizes 512 and 1024, and for a 6000×4000 photo
with a small face rendered at 512. Each measurement runs in a fresh subprocess
so peak RSS is its own.

Usage: python benchmarks/animate_speed.py [--seconds 10] [--skip-large]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
photo, audio, out, size = sys.argv[1:5]
from retalk.portrait import AnimateOptions, animate
t = time.perf_counter()
res = animate(photo, audio, out, AnimateOptions(size=int(size), recognize=False, progress=False))
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "duration": res.duration, "frames": res.frames,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

TEXT = ("Good morning, and welcome. Today I would like to tell you a little about our project. "
        "We build tools that make pictures speak, and we try to make them look natural. "
        "Maybe a big blue balloon will bob up above the map.")


def measure(photo: Path, audio: Path, out: Path, size: int) -> dict:
    env = dict(os.environ, GLOG_minloglevel="3", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(photo), str(audio), str(out), str(size)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"animate failed: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_inputs(tmp: Path, seconds: float) -> tuple[Path, Path, Path]:
    import cv2
    import numpy as np

    from retalk.media import write_wav
    from retalk.samples import astronaut
    from retalk.speech.tts import synthesize

    sp = synthesize(TEXT)
    n = int(min(seconds, sp.duration) * sp.sample_rate)
    audio = tmp / "speech.wav"
    write_wav(audio, sp.samples[:n], sp.sample_rate)
    photo = tmp / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut(1024), cv2.COLOR_RGB2BGR))
    large = tmp / "large.jpg"
    big = np.zeros((4000, 6000, 3), np.uint8)
    big[...] = np.linspace(30, 210, 6000, dtype=np.uint8)[None, :, None]
    big[2200:3200, 3600:4600] = astronaut(1000)
    cv2.imwrite(str(large), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return photo, large, audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the speech (at most the text's length)")
    ap.add_argument("--skip-large", action="store_true", help="skip the 6000x4000 photo")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        photo, large, audio = make_inputs(tmp, args.seconds)
        print(f"retalk animate benchmark: {os.cpu_count()} CPU cores, generated photo, synthesized speech, 25 fps\n")
        rows = [(f"{s}x{s}", measure(photo, audio, tmp / f"out{s}.mp4", s)) for s in (512, 1024)]
        if not args.skip_large:
            rows.append(("6000x4000 photo -> 512", measure(large, audio, tmp / "large.mp4", 512)))
        print(f"{'output':24s} {'clip':>7s} {'wall':>7s} {'RTF':>7s} {'peak RSS':>9s}")
        for name, r in rows:
            print(f"{name:24s} {r['duration']:6.1f}s {r['wall']:6.1f}s {r['duration'] / r['wall']:6.2f}x "
                  f"{r['rss_mb']:6.0f} MB")


if __name__ == "__main__":
    main()
