"""Neural engines end to end: wall time, frames/s, real-time factor, peak memory, per-stage profile.

For each clip (generated 10 s and 60 s 1280x720 25 fps talking-head clips, or ``--clip VIDEO AUDIO``),
runs ``retalk sync`` with, side by side on the same machine:

* ``passthrough``        decode + face tracking + encode + mux (the floor every engine pays),
* ``wav2lip``            the Wav2Lip generator on the neural runtime,
* ``wav2lip+gfpgan``     the same with GFPGAN face restoration on every frame,

each in a fresh process (so peak RSS and peak GPU memory are its own), with random weights saved in the
released checkpoint formats (speed does not depend on the weights' values). Prints wall time (the whole
process: imports, CUDA start-up, both passes), frames per second, real-time factor, peak RSS, peak GPU
memory, and the stage that set the pace in the rendering pass.

    python benchmarks/neural_speed.py                       # 10 s and 60 s clips, every engine
    python benchmarks/neural_speed.py --seconds 2 --skip-long --engines passthrough wav2lip   # CI-sized, CPU
    python benchmarks/neural_speed.py --clip talk.mp4 speech.wav --device cuda

``--sequential`` adds a row per engine (first clip only) with the rendering stages run one after another
(the runtime's reference path), to show what overlapping gains. ``--profile`` prints each run's whole stage table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
engine, face, audio, out, device, sequential = sys.argv[1:7]
from retalk.pipeline import SyncOptions, sync
enhancer = None
if engine.endswith("+gfpgan"):
    engine, enhancer = engine[:-len("+gfpgan")], "gfpgan"
opts = {} if engine in ("passthrough", "builtin") else {"device": None if device == "auto" else device}
res = sync(face, audio, out, SyncOptions(engine=engine, enhancer=enhancer, progress=False, recognize=False,
           device=None if device == "auto" else device, engine_options=opts, concurrent=sequential != "1"))
wall = time.perf_counter() - t0
gpu = None
if "torch" in sys.modules:
    import torch
    if torch.cuda.is_available():
        gpu = torch.cuda.max_memory_allocated() / 2**20
t = res.timings
render = {k: v.pace for k, v in t.stages.items() if not k.startswith("analysis")}
print(json.dumps({"wall": wall, "frames": res.frames, "duration": res.duration,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "gpu_mb": gpu,
                  "passes": t.passes, "critical": max(render, key=render.get) if render else None,
                  "report": t.report()}))
"""


def _checkpoints(folder: Path, engines: list[str]) -> None:
    """Random weights in the released containers: Wav2Lip {'state_dict': {'module.'+k}}, GFPGAN {'params_ema'}."""
    import torch

    torch.manual_seed(0)
    if any(e.startswith("wav2lip") for e in engines):
        from retalk.networks.wav2lip import Wav2Lip

        torch.save({"state_dict": {"module." + k: v for k, v in Wav2Lip().state_dict().items()}},
                   folder / "wav2lip_gan.pth")
    if any(e.endswith("+gfpgan") for e in engines):
        from retalk.networks.gfpgan import GFPGANv1Clean

        torch.save({"params_ema": GFPGANv1Clean().state_dict()}, folder / "GFPGANv1.3.pth")


def _run(engine: str, face: Path, audio: Path, out: Path, device: str, sequential: bool, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, engine, str(face), str(audio), str(out), device,
                           "1" if sequential else "0"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="short generated clip, seconds (default 10)")
    parser.add_argument("--long", type=float, default=60.0, help="long generated clip, seconds (default 60)")
    parser.add_argument("--skip-long", action="store_true", help="only the short clip")
    parser.add_argument("--size", default="1280x720", help="generated clips' frame size (default 1280x720)")
    parser.add_argument("--clip", nargs=2, metavar=("VIDEO", "AUDIO"), help="your own footage instead")
    parser.add_argument("--engines", nargs="+", default=["passthrough", "wav2lip", "wav2lip+gfpgan"])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N (default: CUDA when available)")
    parser.add_argument("--sequential", action="store_true", help="also run each neural engine without overlap")
    parser.add_argument("--profile", action="store_true", help="print every run's per-stage table")
    args = parser.parse_args()

    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    print(f"retalk neural_speed: {os.cpu_count()} CPU cores, GPU: {gpu}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="retalk-neural-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        _checkpoints(tmp, args.engines)
        env = {**os.environ, "RETALK_CHECKPOINTS": str(tmp)}
        clips: list[tuple[str, Path, Path]] = []
        if args.clip:
            clips.append((Path(args.clip[0]).name, Path(args.clip[0]), Path(args.clip[1])))
        else:
            from retalk.samples import write_face_clip, write_vowel_speech

            w, h = (int(v) for v in args.size.lower().split("x"))
            for secs in [args.seconds] + ([] if args.skip_long else [args.long]):
                face = write_face_clip(tmp / f"face{secs:g}.mp4", seconds=secs, fps=25, width=w, height=h)
                audio = write_vowel_speech(tmp / f"speech{secs:g}.wav", seconds=secs)
                clips.append((f"{w}x{h} {secs:g} s", face, audio))
        print(f"{'clip':<16} {'engine':<24} {'wall s':>7} {'frames/s':>9} {'x real':>7} {'RSS MB':>7} "
              f"{'GPU MB':>7}  pace-setting stage")
        for k, (label, face, audio) in enumerate(clips):
            for engine in args.engines:
                modes = [False] + ([True] if args.sequential and engine != "passthrough" and k == 0 else [])
                for seq in modes:
                    t = time.perf_counter()
                    r = _run(engine, face, audio, tmp / "out.mp4", args.device, seq, env)
                    name = engine + (" (sequential)" if seq else "")
                    if "error" in r:
                        print(f"{label:<16} {name:<24} failed after {time.perf_counter() - t:.1f} s: {r['error']}")
                        continue
                    gpu_mb = f"{r['gpu_mb']:7.0f}" if r["gpu_mb"] is not None else f"{'-':>7}"
                    print(f"{label:<16} {name:<24} {r['wall']:7.2f} {r['frames'] / r['wall']:9.1f} "
                          f"{r['duration'] / r['wall']:7.2f} {r['rss_mb']:7.0f} {gpu_mb}  {r['critical']}",
                          flush=True)
                    if args.profile:
                        print("    " + r["report"].replace("\n", "\n    "), flush=True)


if __name__ == "__main__":
    main()
