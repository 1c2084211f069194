"""Wav2Lip generator throughput: frames per second at batch 1, 16 and 64.

Random weights (speed does not depend on their values), real input shapes:
faces (B, 6, 96, 96) and mel windows (B, 1, 80, 16).  Runs on the CPU in
float32 and, when CUDA is available, on the GPU in float32 and float16.

    python benchmarks/wav2lip_speed.py [--iters N] [--batches 1 16 64] [--threads T]

Kept short (a few timed iterations after one warm-up) so that it finishes in
well under two minutes on two CPU cores.
"""
from __future__ import annotations

import argparse
import platform
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per setting (CPU)")
    parser.add_argument("--gpu-iters", type=int, default=20, help="timed iterations per setting (CUDA)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--cpu-budget", type=float, default=8.0,
                        help="stop timing a CPU setting after this many seconds")
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
    if not torch.cuda.is_available():
        print("cuda     (not available: fp16 GPU figures skipped)")


if __name__ == "__main__":
    main()
