"""``retalk animate --engine sadtalker``: frames/s per stage and end to end, peak RSS and GPU memory, and the
reference generator's cost at its batch of 2 (source re-encoded in every call) measured in the same run.

Each configuration runs in a fresh process (so peak RSS and peak GPU memory are its own) on a generated
photo and generated speech, with random weights written in the released containers (speed does not depend
on the weights' values) unless ``--checkpoints`` names a folder with the real files. Per configuration:

* end to end: frames / wall time of the whole run (files, loading, photo, 3DMM, motion, render, paste-back,
  enhancer, encoding), and of the rendering pass alone;
* per stage: frames per second of busy time (``render.network`` is the generator, ``enhance.network`` GFPGAN,
  ``render.finish`` resize / paste-back, ``mapping`` the mapping net + key-point transform of every frame);
* the generator alone on the same frames: retalk's cached-source batched call against the reference's way
  (``make_animation``: 2 frames per call, the source encoded again in each, the release's op sequence and
  layout), in ms per frame of wall time and of process CPU time, ``--repeats`` times alternately (best kept),
  and the 8-bit difference between the two ways' frames (the same frames: fp32 rounding only, unless autocast);
* peak RSS (MB) and peak GPU memory allocated (MB).

    python benchmarks/sadtalker_speed.py --device cpu                     # CPU, 2 frames: a couple of minutes
    python benchmarks/sadtalker_speed.py --device cpu --threads 1 --ref-frames 4 --repeats 2   # steadier CPU figures
    python benchmarks/sadtalker_speed.py --device cuda --seconds 60       # the issue's targets (256, full, gfpgan, 512)
    python benchmarks/sadtalker_speed.py --device cuda --configs 256:crop 512:crop --precision fp32
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
t_start = time.perf_counter()
size, preprocess, enhancer, device, seconds, ref_frames, folder, precision, out, threads, repeats = sys.argv[1:12]
size, seconds, ref_frames, threads, repeats = int(size), float(seconds), int(ref_frames), int(threads), int(repeats)
import cv2, numpy as np, torch
if threads > 0:
    torch.set_num_threads(threads)
from retalk.media import write_wav
from retalk.portrait import AnimateOptions
from retalk.runtime.device import resolve_device
from retalk.samples import astronaut, vowel_speech
from retalk.sadtalker.budget import choose_batch
from retalk.sadtalker.engine import animate_sadtalker, autocast_dtype, load_networks
from retalk.sadtalker.files import find_files
from retalk.sadtalker.render import FaceRenderer, set_channels_last
dev = resolve_device(None if device == "auto" else device)
photo, speech, warm = out + ".png", out + ".wav", out + ".warm.wav"
pic = astronaut(512)
if preprocess.endswith("full"):  # a wider picture with the face in it, as a full-body photo would be
    pic = cv2.copyMakeBorder(cv2.resize(pic, (640, 640)), 220, 220, 640, 640, cv2.BORDER_REFLECT)
cv2.imwrite(photo, cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
write_wav(speech, vowel_speech(seconds), 16000)
write_wav(warm, vowel_speech(0.2), 16000)
enh = None if enhancer == "none" else enhancer
nets = load_networks(find_files(folder, size, preprocess, enh), dev)
opts = AnimateOptions(engine="sadtalker", size=size, preprocess=preprocess, enhancer=enh, progress=False,
                      device=device, precision=None if precision == "auto" else precision)
if dev.type == "cuda":  # CUDA context, cuDNN autotuning, allocator warm-up
    animate_sadtalker(photo, warm, out, opts, nets=nets)
    torch.cuda.reset_peak_memory_stats()
t = time.perf_counter()
res = animate_sadtalker(photo, speech, out, opts, nets=nets)
wall = time.perf_counter() - t
gpu_run = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None

# the generator alone on the same random frames: cached source in batches vs the reference's batch of 2
rng = np.random.default_rng(0)
img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
src = rng.normal(0, 0.2, (70, 27)).astype(np.float32)
wins = rng.normal(0, 0.2, (ref_frames, 70, 27)).astype(np.float32)
if "full" in preprocess:
    src = np.concatenate([src, np.ones((3, 27), np.float32)])
    wins = np.concatenate([wins, np.ones((ref_frames, 3, 27), np.float32)], 1)
def timed(fn):
    # (wall ms, process CPU ms) per frame of one call of fn
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    fn()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return 1000.0 * (time.perf_counter() - t) / ref_frames, 1000.0 * (time.process_time() - c) / ref_frames
ref = FaceRenderer(nets.kp_extractor, nets.generator, nets.mapping, dev)  # fp32, as the reference
ours = FaceRenderer(nets.kp_extractor, nets.generator, nets.mapping, dev, half=autocast_dtype(opts, dev))
batch = choose_batch(dev, size, half=ours.half is not None, enhancer=enh is not None)
state = ours.encode_source(img, src)
kp = ours.driving_keypoints(state, wins)
if dev.type == "cuda":
    ref.render_reference(img, src, wins[:2], batch=2)
    ours.render(state, kp[:batch])
ref_runs, our_runs, frames_out = [], [], {}
for _ in range(repeats):  # alternately, so that a change of load hits both
    set_channels_last(nets.generator, False)  # the reference's layout (and its op sequence: plain=True)
    ref_runs.append(timed(lambda: frames_out.update(ref=ref.render_reference(img, src, wins, batch=2))))
    set_channels_last(nets.generator, dev.type == "cpu")  # as animate_sadtalker runs it
    our_runs.append(timed(lambda: frames_out.update(ours=np.concatenate(
        [ours.render(state, kp[a:a + batch]) for a in range(0, ref_frames, batch)]))))
# the same frames? 8-bit differences between the two ways
diff = np.abs(frames_out["ref"].astype(np.int16) - frames_out["ours"].astype(np.int16))
ms_ref, cpu_ref = min(w for w, _ in ref_runs), min(c for _, c in ref_runs)
ms_ours, cpu_ours = min(w for w, _ in our_runs), min(c for _, c in our_runs)
stages = {k: {"fps": v.items / v.busy if v.busy > 0 else None, "busy": v.busy, "items": v.items}
          for k, v in res.timings.stages.items()}
print(json.dumps({"frames": res.frames, "wall": wall, "render_wall": res.timings.passes.get("render"),
                  "stages": stages, "ms_ref": ms_ref, "ms_ours": ms_ours, "batch": batch,
                  "cpu_ms_ref": cpu_ref, "cpu_ms_ours": cpu_ours, "runs_ref": ref_runs, "runs_ours": our_runs,
                  "threads": torch.get_num_threads(), "load": os.getloadavg(),
                  "diff_max": int(diff.max()), "diff_mean": float(diff.mean()),
                  "half": str(ours.half), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "gpu_mb": gpu_run,
                  "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
                  "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}))
"""

STAGES = ("photo", "3dmm", "motion", "mapping", "render.network", "render.finish", "enhance.network", "enhance.finish")


def _release(folder: Path, sizes: set[int], enhancer: bool) -> None:
    """Random weights in the released containers (bundles, both mapping files, the landmark file, GFPGAN)."""
    import numpy as np
    import torch
    from scipy.io import savemat

    from retalk.checkpoints import get_spec

    torch.manual_seed(0)
    nets = ("sadtalker_kp_extractor", "sadtalker_generator", "sadtalker_audio2exp", "sadtalker_audio2pose", "face3d")
    bundle = {}
    for name in nets:
        spec = get_spec(name)
        bundle.update({spec.select_prefix + k: v.contiguous() for k, v in spec.build().state_dict().items()})
    from safetensors.torch import save_file

    for size in sizes:
        save_file(bundle, str(folder / f"SadTalker_V0.0.2_{size}.safetensors"))
    spec = get_spec("sadtalker_mapping")
    torch.save({"mapping": spec.factory(coeff_nc=70).state_dict()}, folder / "mapping_00229-model.pth.tar")
    torch.save({"mapping": spec.factory(coeff_nc=73).state_dict()}, folder / "mapping_00109-model.pth.tar")
    (folder / "BFM").mkdir(exist_ok=True)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)  # any 68 points: only their 5-point summary is used
    savemat(str(folder / "BFM" / "similarity_Lm3D_all.mat"),
            {"lm": np.stack([0.5 * np.cos(t), 0.6 * np.sin(t), 0.1 * np.cos(2 * t)], 1)})
    if enhancer:
        from retalk.networks.gfpgan import GFPGANv1Clean

        torch.save({"params_ema": GFPGANv1Clean().state_dict()}, folder / "GFPGANv1.3.pth")


def _runs(runs: list[list[float]]) -> str:
    return " ".join(f"{w:.0f}/{c:.0f}" for w, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N (default: CUDA when available)")
    parser.add_argument("--seconds", type=float, help="speech length (default: 60 on CUDA, 0.08 = 2 frames on CPU)")
    parser.add_argument("--ref-frames", type=int, help="frames for the generator comparison (default 64 CUDA, 2 CPU)")
    parser.add_argument("--configs", nargs="+", metavar="SIZE:PREPROCESS[:gfpgan]",
                        help="default on CUDA: 256:crop 256:full 256:full:gfpgan 512:crop; on CPU: 256:crop")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="renderer autocast on CUDA (auto: fp16)")
    parser.add_argument("--checkpoints", help="a folder with the real SadTalker files (default: random weights)")
    parser.add_argument("--profile", action="store_true", help="print every stage's frames/s")
    parser.add_argument("--threads", type=int, default=0, help="torch threads in the child (default: torch's)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="generator comparison: reference and retalk alternately, this many times each (best kept)")
    args = parser.parse_args()

    import torch

    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    seconds = args.seconds if args.seconds is not None else (60.0 if cuda else 0.08)
    ref_frames = args.ref_frames or (64 if cuda else 2)
    configs = args.configs or (["256:crop", "256:full", "256:full:gfpgan", "512:crop"] if cuda else ["256:crop"])
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    print(f"retalk sadtalker_speed: {os.cpu_count()} CPU cores, GPU: {gpu}, torch {torch.__version__}, "
          f"{seconds:g} s of speech, generator comparison on {ref_frames} frames")
    with tempfile.TemporaryDirectory(prefix="retalk-sad-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        folder = Path(args.checkpoints) if args.checkpoints else tmp
        if not args.checkpoints:
            _release(tmp, {int(c.split(":")[0]) for c in configs}, any(c.endswith("gfpgan") for c in configs))
        print(f"{'config':<18} {'frames':>6} {'e2e f/s':>8} {'render f/s':>10} {'gen f/s':>8} {'ref ms/f':>9} "
              f"{'ours ms/f':>9} {'speed-up':>8} {'batch':>5} {'RSS MB':>7} {'GPU MB':>7}")
        for config in configs:
            size, preprocess, *rest = config.split(":")
            enhancer = rest[0] if rest else "none"
            proc = subprocess.run([sys.executable, "-c", CHILD, size, preprocess, enhancer, args.device, str(seconds),
                                   str(ref_frames), str(folder), args.precision, str(tmp / "out.mp4"),
                                   str(args.threads), str(max(1, args.repeats))],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{config:<18} failed: {' | '.join(proc.stderr.strip().splitlines()[-3:])}", flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            gen = r["stages"].get("render.network", {}).get("fps")
            gpu_mb = f"{r['gpu_mb']:7.0f}" if r["gpu_mb"] is not None else f"{'-':>7}"
            print(f"{config:<18} {r['frames']:6d} {r['frames'] / r['wall']:8.2f} "
                  f"{r['frames'] / r['render_wall']:10.2f} {gen or 0:8.2f} {r['ms_ref']:9.1f} {r['ms_ours']:9.1f} "
                  f"{r['ms_ref'] / r['ms_ours']:7.2f}x {r['batch']:5d} {r['rss_mb']:7.0f} {gpu_mb}", flush=True)
            if args.profile:
                for name in STAGES:
                    st = r["stages"].get(name)
                    if st and st["fps"]:
                        print(f"    {name:<18} {st['fps']:9.2f} frames/s  ({st['busy']:.2f} s busy, "
                              f"{st['items']} items)")
            print(f"    generator CPU time per frame: reference {r['cpu_ms_ref']:.0f} ms, retalk "
                  f"{r['cpu_ms_ours']:.0f} ms ({r['cpu_ms_ref'] / r['cpu_ms_ours']:.2f}x); runs (wall ms/CPU ms) "
                  f"reference {_runs(r['runs_ref'])}, retalk {_runs(r['runs_ours'])}", flush=True)
            print(f"    same frames: reference vs retalk 8-bit max {r['diff_max']}, mean {r['diff_mean']:.4f} levels",
                  flush=True)
            print(f"    device {r['device']}, renderer autocast {r['half']}, {r['threads']} torch threads, "
                  f"load average {' '.join(f'{v:.1f}' for v in r['load'])}", flush=True)


if __name__ == "__main__":
    main()
