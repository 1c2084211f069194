"""GFPGAN (v1.3, clean architecture, 512 x 512) network cost: ms per face and peak GPU memory.

Random weights (speed does not depend on their values). For each batch size, on CUDA: float32 with cuDNN's
autotuner off and on, and bfloat16/float16 autocast (with how far each moves the output from float32, in grey
levels). On the CPU: float32 at batch 1 only (seconds per face).

    python benchmarks/gfpgan_speed.py [--batches 4 16] [--iters 10]
"""
from __future__ import annotations

import argparse
import time

import torch

from retalk.networks.gfpgan import GFPGANv1Clean


def _run(net: GFPGANv1Clean, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast(device_type=x.device.type, dtype=dtype or torch.float32,
                                                enabled=dtype is not None):
        out = net(x, return_rgb=False, randomize_noise=False)[0]
    return ((out.float().clamp(-1, 1) + 1) * 127.5).round()


def measure(net: GFPGANv1Clean, batch: int, device: torch.device, dtype: torch.dtype | None,
            iters: int) -> tuple[float, float, torch.Tensor]:
    """(ms per face, peak GPU MiB, output of the first batch) over ``iters`` timed calls after one warm-up."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, 512, 512, generator=g) * 2 - 1).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    first = _run(net, x, dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        _run(net, x, dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
    ms = 1000 * (time.perf_counter() - t) / (iters * batch)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    return ms, peak, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = GFPGANv1Clean().eval()
    print(f"GFPGANv1Clean 512, random weights, torch {torch.__version__}")
    print(f"{'device':<6} {'mode':<22} {'batch':>5} {'ms/face':>8} {'peak MiB':>9}  vs fp32 (grey levels)")
    if not torch.cuda.is_available():
        ms, _, _ = measure(net, 1, torch.device("cpu"), None, 1)
        print(f"{'cpu':<6} {'fp32':<22} {1:>5} {ms:8.0f} {'-':>9}")
        return
    cuda = torch.device("cuda")
    net = net.to(cuda)
    for batch in args.batches:
        ref = None
        for mode, bench, dtype in (("fp32, cudnn autotune off", False, None), ("fp32, cudnn autotune on", True, None),
                                   ("bf16 autocast", True, torch.bfloat16), ("fp16 autocast", True, torch.float16)):
            torch.backends.cudnn.benchmark = bench
            ms, peak, out = measure(net, batch, cuda, dtype, args.iters)
            diff = ""
            if ref is None:
                ref = out
            elif dtype is not None:
                d = (out - ref).abs()
                diff = f"mean {d.mean().item():.2f}, max {d.max().item():.0f}"
            print(f"{'cuda':<6} {mode:<22} {batch:>5} {ms:8.2f} {peak:9.0f}  {diff}", flush=True)


if __name__ == "__main__":
    main()
