"""Speed and memory of ``retalk sync`` (built-in engine) on generated clips.

Prints, in one run, side by side:
* real-time factor (seconds of output per second of wall time) of ``retalk sync`` at 512p and 720p,
* the same for a plain decode + encode of the same clip (the floor any dubbing tool pays),
* peak resident memory (RSS) of ``retalk sync`` for a 10 s and a 60 s clip (flat = streaming works).

Each measurement runs in a fresh subprocess so peak RSS is its own. Beside wall time each row gives the CPU
seconds the run used (its own and its child processes': phone recognition runs in one, see
``retalk.runtime.aside``) and the 1-minute load average when it ended: on a shared machine wall times move with
the other jobs' load, CPU seconds much less.
Usage: python benchmarks/sync_speed.py [--seconds 10] [--long 60] [--skip-long] [--repeat N] [-v]
[--clip VIDEO AUDIO]
``--repeat`` runs each ``sync`` measurement N times and keeps the fastest (peak RSS: the largest). ``-v`` prints
each ``sync`` run's wall time per pass (start-up, analysis, planning, rendering). ``--clip`` adds a row for your
own footage (generated clips are detailed and cost the encoder more than real talking heads do).
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
import json, os, resource, sys, time
mode, face, audio, out = sys.argv[1:5]
t = time.perf_counter()
passes = {}
if mode == "sync":
    from retalk.pipeline import SyncOptions, sync
    passes = sync(face, audio, out, SyncOptions(progress=False)).timings.passes
else:
    from retalk.media import VideoSink, iter_frames, probe_video
    info = probe_video(face)
    with VideoSink(out, info.width, info.height, info.fps, audio_path=audio) as sink:
        for f in iter_frames(info):
            sink.write(f)
wall = time.perf_counter() - t
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu, "rss_mb": me.ru_maxrss / 1024, "load": os.getloadavg()[0],
                  "passes": passes}))
"""


def measure(mode: str, face: Path, audio: Path, out: Path, repeat: int = 1, verbose: bool = False) -> dict:
    """The fastest of ``repeat`` runs (wall s, CPU s, load, passes), with the largest peak RSS (MB) among them."""
    env = dict(os.environ, GLOG_minloglevel="3", TF_CPP_MIN_LOG_LEVEL="3")
    runs = []
    for _ in range(max(1, repeat)):
        proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(face), str(audio), str(out)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} failed: {proc.stderr.strip().splitlines()[-1]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if verbose and r["passes"]:
            print(f"  {face.name}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU, load {r['load']:.2f}; "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in r["passes"].items()))
        runs.append(r)
    best = min(runs, key=lambda r: r["wall"])
    return dict(best, rss_mb=max(r["rss_mb"] for r in runs))


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
    ap.add_argument("--repeat", type=int, default=1, help="runs per sync measurement (the fastest is kept)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each sync run's time per pass")
    ap.add_argument("--clip", nargs=2, metavar=("VIDEO", "AUDIO"), help="also measure this clip with this speech")
    args = ap.parse_args()
    print(f"retalk sync benchmark: {os.cpu_count()} CPU cores, clips of {args.seconds:.0f} s at 25 fps\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = []
        for name, (w, h) in {"512p": (512, 512), "720p": (1280, 720)}.items():
            face, audio = make_inputs(tmp, args.seconds, w, h)
            s = measure("sync", face, audio, tmp / "out.mp4", args.repeat, args.verbose)
            c = measure("copy", face, audio, tmp / "copy.mp4")
            rows.append((name, args.seconds, s, c))
        if args.clip:
            from retalk.media import load_audio

            face, audio = Path(args.clip[0]), Path(args.clip[1])
            seconds = load_audio(audio).duration
            s = measure("sync", face, audio, tmp / "clip.mp4", args.repeat, args.verbose)
            c = measure("copy", face, audio, tmp / "clip_copy.mp4")
            rows.append((face.name[:6], seconds, s, c))
        print(f"\n{'clip':6s} {'sync RTF':>9s} {'wall s':>7s} {'CPU s':>6s} {'load':>5s} {'decode+encode RTF':>18s} "
              f"{'sync peak RSS':>14s}")
        for name, seconds, s, c in rows:
            print(f"{name:6s} {seconds / s['wall']:8.2f}x {s['wall']:7.2f} {s['cpu']:6.2f} {s['load']:5.2f} "
                  f"{seconds / c['wall']:17.2f}x {s['rss_mb']:11.0f} MB")
        if not args.skip_long:
            face, audio = make_inputs(tmp, args.long, 1280, 720)
            s = measure("sync", face, audio, tmp / "long.mp4", args.repeat, args.verbose)
            short = rows[1][2]["rss_mb"]
            print(f"\npeak RSS, 720p: {args.seconds:.0f} s clip {short:.0f} MB, {args.long:.0f} s clip "
                  f"{s['rss_mb']:.0f} MB ({s['rss_mb'] / short:.2f}x; RTF {args.long / s['wall']:.2f}x, "
                  f"{s['cpu']:.1f} s CPU, load {s['load']:.2f})")


if __name__ == "__main__":
    main()
