"""Wav2Lip generator throughput: frames per second at batch 1, 16 and 64.

Random weights (speed does not depend on their values), real input shapes:
faces (B, 6, 96, 96) and mel windows (B, 1, 80, 16).  Runs on the CPU in
float32 and, when CUDA is available, on the GPU in float32 and float16.

With ``--e2e SECONDS`` it also times ``retalk sync --engine wav2lip`` end to end
(decode, face tracking, mel, network, blending, encode, mux) on a generated
512 x 512, 25 fps clip of that length with random weights saved in the release's
file format, and reports output frames per second of wall time.

    python benchmarks/wav2lip_speed.py [--iters N] [--batches 1 16 64] [--threads T] [--e2e 4]

Kept short (a few timed iterations after one warm-up) so that it finishes in
well under two minutes on two CPU cores (the end-to-end run is opt-in).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from retalk.networks.wav2lip import Wav2Lip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames_per_second(model: Wav2Lip, batch: int, device: torch.device, dtype: torch.dtype,
                      iters: int, budget_s: float) -> tuple[float, int]:
    """Throughput in frames per second over up to ``iters`` timed calls (after one warm-up call)."""
    faces = torch.rand(batch, 6, 96, 96, device=device, dtype=dtype)
    mels = torch.randn(batch, 1, 80, 16, device=device, dtype=dtype)
    with torch.inference_mode():
        model(mels, faces)  # warm-up (allocations, cuDNN autotune)
        _sync(device)
        done = 0
        start = time.perf_counter()
        while done < iters:
            model(mels, faces)
            done += 1
            if device.type == "cpu" and time.perf_counter() - start > budget_s:
                break
        _sync(device)
        elapsed = time.perf_counter() - start
    return batch * done / elapsed, done


def fp16_difference(model: Wav2Lip, batch: int = 64) -> None:
    """How far float16 autocast (the engine's CUDA default) moves the output from float32, in grey levels."""
    g = torch.Generator().manual_seed(1)
    faces = torch.rand(batch, 6, 96, 96, generator=g).cuda()
    mels = torch.randn(batch, 1, 80, 16, generator=g).cuda()
    with torch.inference_mode():
        ref = (model(mels, faces).float().clamp(0, 1) * 255.0).to(torch.uint8).float()
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            half = (model(mels, faces).float().clamp(0, 1) * 255.0).to(torch.uint8).float()
    d = (ref - half).abs().flatten()
    print(f"fp16 autocast vs fp32 output, {batch} random inputs: mean |diff| {d.mean().item():.3f}, "
          f"99th percentile {d.quantile(0.99).item():.0f}, max {d.max().item():.0f} grey levels")


_E2E_CHILD = r"""
import sys, time
from retalk.pipeline import SyncOptions, sync
face, audio, out, batch = sys.argv[1:5]
t = time.perf_counter()
res = sync(face, audio, out, SyncOptions(engine="wav2lip", progress=False, recognize=False,
                                         engine_options={"batch_size": int(batch)}))
print(time.perf_counter() - t, res.frames, res.duration)
"""


def end_to_end(seconds: float, batch: int) -> None:
    """Time ``retalk.pipeline.sync`` with the wav2lip engine on a generated clip; print output frames/s.

    The run is a fresh process, as ``retalk sync`` is: in this one, torch has already run the throughput
    test in the main thread, and its idle OpenMP threads would compete with the runtime's network thread
    for the two cores (measured: 20% slower than in a fresh process).
    """
    import subprocess
    import sys

    from retalk.samples import write_face_clip, write_vowel_speech

    with tempfile.TemporaryDirectory(prefix="retalk-w2l-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        torch.manual_seed(0)
        state = {"module." + k: v for k, v in Wav2Lip().state_dict().items()}
        torch.save({"state_dict": state}, tmp / "wav2lip_gan.pth")
        face = write_face_clip(tmp / "face.mp4", seconds=seconds, fps=25, width=512, height=512)
        audio = write_vowel_speech(tmp / "speech.wav", seconds=seconds)
        proc = subprocess.run([sys.executable, "-c", _E2E_CHILD, str(face), str(audio), str(tmp / "out.mp4"),
                               str(batch)], capture_output=True, text=True, check=True,
                              env={**os.environ, "RETALK_CHECKPOINTS": str(tmp)})
        wall, frames, duration = (float(v) for v in proc.stdout.split()[-3:])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"end to end: retalk sync --engine wav2lip, 512x512 25 fps, {int(frames)} frames, batch {batch}, "
          f"{device}: {wall:.1f} s wall, {frames / wall:.1f} frames/s, real-time factor {duration / wall:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per setting (CPU)")
    parser.add_argument("--gpu-iters", type=int, default=20, help="timed iterations per setting (CUDA)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--cpu-budget", type=float, default=8.0,
                        help="stop timing a CPU setting after this many seconds")
    parser.add_argument("--e2e", type=float, default=0.0, metavar="SECONDS",
                        help="also time retalk sync --engine wav2lip on a generated clip this long (0: skip)")
    parser.add_argument("--e2e-batch", type=int, default=16, help="engine batch size for --e2e")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Wav2Lip().eval()
    cpu = platform.processor() or platform.machine()
    print(f"Wav2Lip generator, random weights; torch {torch.__version__}, {cpu}, {torch.get_num_threads()} CPU threads")
    print(f"{'device':<8} {'dtype':<8} {'batch':>5} {'iters':>5} {'frames/s':>10} {'ms/frame':>9}")

    settings: list[tuple[torch.device, torch.dtype, int]] = [(torch.device("cpu"), torch.float32, args.iters)]
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        settings += [(cuda, torch.float32, args.gpu_iters), (cuda, torch.float16, args.gpu_iters)]
        torch.backends.cudnn.benchmark = True
    for device, dtype, iters in settings:
        net = model.to(device=device, dtype=dtype)
        for batch in args.batches:
            fps, done = frames_per_second(net, batch, device, dtype, iters, args.cpu_budget)
            name = "cuda" if device.type == "cuda" else "cpu"
            print(f"{name:<8} {str(dtype).replace('torch.', ''):<8} {batch:>5} {done:>5} {fps:>10.1f} "
                  f"{1000.0 / fps:>9.2f}", flush=True)
    if torch.cuda.is_available():
        fp16_difference(model.to(device="cuda", dtype=torch.float32))
    else:
        print("cuda     (not available: fp16 GPU figures skipped)")
    if args.e2e > 0:
        model.to(device="cpu", dtype=torch.float32)
        end_to_end(args.e2e, args.e2e_batch)


if __name__ == "__main__":
    main()
