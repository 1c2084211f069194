"""Speed and memory of ``retalk sync`` (built-in engine) on generated clips.

Prints, in one run, side by side:
* real-time factor (seconds of output per second of wall time) of ``retalk sync`` at 512p and 720p,
* the same for a plain decode + encode of the same clip (the floor any dubbing tool pays),
* peak resident memory (RSS) of ``retalk sync`` for a 10 s and a 60 s clip (flat = streaming works).

Each measurement runs in a fresh subprocess so peak RSS is its own.
Usage: python benchmarks/sync_speed.py [--seconds 10] [--long 60] [--skip-long] [--clip VIDEO AUDIO]
``--clip`` adds a row for your own footage (generated clips are detailed and cost the encoder more than
real talking heads do).
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
mode, face, audio, out = sys.argv[1:5]
t = time.perf_counter()
if mode == "sync":
    from retalk.pipeline import SyncOptions, sync
    sync(face, audio, out, SyncOptions(progress=False))
else:
    from retalk.media import VideoSink, iter_frames, probe_video
    info = probe_video(face)
    with VideoSink(out, info.width, info.height, info.fps, audio_path=audio) as sink:
        for f in iter_frames(info):
            sink.write(f)
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(mode: str, face: Path, audio: Path, out: Path) -> dict:
    env = dict(os.environ, GLOG_minloglevel="3", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(face), str(audio), str(out)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_inputs(tmp: Path, seconds: float, width: int, height: int) -> tuple[Path, Path]:
    from retalk.samples import write_face_clip, write_vowel_speech

    audio = tmp / f"speech_{seconds:.0f}.wav"
    if not audio.exists():
        write_vowel_speech(audio, seconds)
    face = tmp / f"face_{height}p_{seconds:.0f}s.mp4"
    write_face_clip(face, seconds=seconds, fps=25, width=width, height=height)
    return face, audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--long", type=float, default=60.0)
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--clip", nargs=2, metavar=("VIDEO", "AUDIO"), help="also measure this clip with this speech")
    args = ap.parse_args()
    print(f"retalk sync benchmark: {os.cpu_count()} CPU cores, clips of {args.seconds:.0f} s at 25 fps\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = []
        for name, (w, h) in {"512p": (512, 512), "720p": (1280, 720)}.items():
            face, audio = make_inputs(tmp, args.seconds, w, h)
            s = measure("sync", face, audio, tmp / "out.mp4")
            c = measure("copy", face, audio, tmp / "copy.mp4")
            rows.append((name, args.seconds / s["wall"], args.seconds / c["wall"], s["rss_mb"]))
        if args.clip:
            from retalk.media import load_audio

            face, audio = Path(args.clip[0]), Path(args.clip[1])
            seconds = load_audio(audio).duration
            s = measure("sync", face, audio, tmp / "clip.mp4")
            c = measure("copy", face, audio, tmp / "clip_copy.mp4")
            rows.append((face.name[:6], seconds / s["wall"], seconds / c["wall"], s["rss_mb"]))
        print(f"{'clip':6s} {'sync RTF':>9s} {'decode+encode RTF':>18s} {'sync peak RSS':>14s}")
        for name, rs, rc, rss in rows:
            print(f"{name:6s} {rs:8.2f}x {rc:17.2f}x {rss:11.0f} MB")
        if not args.skip_long:
            face, audio = make_inputs(tmp, args.long, 1280, 720)
            s = measure("sync", face, audio, tmp / "long.mp4")
            print(f"\npeak RSS, 720p: {args.seconds:.0f} s clip {rows[1][3]:.0f} MB, "
                  f"{args.long:.0f} s clip {s['rss_mb']:.0f} MB (RTF {args.long / s['wall']:.2f}x)")


if __name__ == "__main__":
    main()
