"""VideoReTalking: time per output frame of each stage of ``retalk sync --engine videoretalking``, beside
the reference networks' own per-frame cost at batch 1, measured in the same run on the same device.

Random weights in the release's file formats (speed does not depend on their values; written once into
``--checkpoints`` unless the files are there already) and stand-in BFM files; a generated clip of
``--frames`` frames of the moving astronaut at ``--size`` pixels, and as many frames of speech.

Tables:

* **retalk**: per stage (``vrt.coefficients`` and each op's prepare / network / finish), busy seconds per
  output frame from the job's timing report, the wall time of the rendering pass per frame (stages
  overlap, so the wall time is less than their sum) and the process CPU seconds of the whole run;
  compiling the networks (``--compile on``, once per process) is timed apart as ``vrt.compile``;
* **reference networks alone, batch 1**: wall and CPU seconds of one forward of each network on its
  reference input (after one warm-up, mean of ``--repeats``), run as the reference runs them (plain
  float32 NCHW eager modules; GPEN's blur as the reference's single-channel convolutions), and the
  reference's per-frame total: D-Net + GPEN + 3 ParseNet (Step 5, the Step 7 mouth mask and the
  Step 7 face mask) + E-Net (with its L-Net) + GFPGAN + face3d. RetinaFace (run twice per frame by the
  reference) has no retalk port and is left out, so the reference total is a lower bound;
* **per frame, retalk beside the reference**: each retalk network stage's busy time per frame beside the
  reference networks it stands for.

    python benchmarks/videoretalking_speed.py [--frames 4] [--size 256] [--clip VIDEO AUDIO] [--device cpu|cuda]
                                             [--compile auto|on|off] [--checkpoints DIR] [--rerun]

On a 2-core CPU one frame costs seconds; the defaults (four frames, not compiled) finish in a few minutes,
``--compile on`` adds about five minutes of compiling.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

NETWORKS = ("dnet", "lnet", "enet", "face3d", "gpen", "parsenet", "gfpgan")


def write_release(folder: Path) -> None:
    """Random-weight release files and stand-in BFM files in ``folder`` (skipped when present)."""
    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path.insert(0, str(tests))
    from _bfm import write_bfm
    from _release import write_release as write

    from retalk.checkpoints import candidate_files, get_spec

    for name in NETWORKS:
        if not any((folder / f).is_file() for f in candidate_files(get_spec(name))):
            write(name, folder)
    if not (folder / "BFM" / "similarity_Lm3D_all.mat").is_file():
        write_bfm(folder)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device: torch.device, repeats: int = 1) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per call of ``fn()`` after one warm-up call."""
    with torch.inference_mode():
        fn()
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            fn()
        _sync(device)
    return (time.perf_counter() - t) / repeats, (time.process_time() - c) / repeats


def reference_upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
                        pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """StyleGAN2's FIR filter the way the reference's plain-torch ``upfirdn2d_native`` runs it (what GPEN
    runs on a CPU): every channel as its own (B·C, 1, H, W) single-channel convolution. Same values as
    retalk's depthwise version; used here only so the reference column costs what the reference costs."""
    import torch.nn.functional as F

    from retalk.networks.stylegan2_ops import spread_and_pad

    b, c = x.shape[:2]
    kh, kw = kernel.shape
    x = spread_and_pad(x, up, pad)
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).view(1, 1, kh, kw)
    out = F.conv2d(x.reshape(b * c, 1, x.shape[2], x.shape[3]), weight)
    out = out.view(b, c, out.shape[2], out.shape[3])
    return out[:, :, ::down, ::down] if down > 1 else out


def reference_networks(folder: Path, device: torch.device, repeats: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per forward at batch 1 of each network on its reference input, run as the
    reference runs them: float32, contiguous (NCHW) tensors, eager, the plain ports without the engine's
    speed-ups (:mod:`retalk.networks.vrt_speed`), GPEN's blur as the reference's :func:`reference_upfirdn2d`."""
    from unittest import mock

    from retalk.checkpoints import load
    from retalk.networks import stylegan2_ops

    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g).to(device)

    out: dict[str, tuple[float, float]] = {}
    net = load("dnet", folder, device=device)
    src, coeff = rand(1, 3, 256, 256) * 2 - 1, torch.randn(1, 73, 26, generator=g).to(device)
    out["D-Net"] = time_call(lambda: net(src, coeff), device, repeats)
    net = load("enet", folder / "ENet.pth", device=device)
    mel, faces = torch.randn(1, 1, 80, 16, generator=g).to(device), rand(1, 6, 384, 384)
    out["L-Net + E-Net"] = time_call(lambda: net(mel, faces, faces[:, 3:]), device, repeats)
    net = load("gpen", folder, device=device)
    x512 = rand(1, 3, 512, 512) * 2 - 1
    with mock.patch.object(stylegan2_ops, "upfirdn2d", reference_upfirdn2d):
        out["GPEN"] = time_call(lambda: net(x512), device, repeats)
    net = load("parsenet", folder, device=device)
    out["ParseNet"] = time_call(lambda: net(x512), device, repeats)
    net = load("gfpgan", folder, device=device)
    out["GFPGAN"] = time_call(lambda: net(x512, return_rgb=False, randomize_noise=True), device, repeats)
    net = load("face3d", folder, device=device)
    x224 = rand(1, 3, 224, 224)
    out["face3d"] = time_call(lambda: net(x224), device, repeats)
    return out


def run_engine(folder: Path, work: Path, frames: int, size: int, device: str, compile_nets: bool | None,
               cache: Path | None = None, given: list[str] | None = None) -> tuple[object, float, float]:
    """``sync`` with the engine on ``given`` (video, audio) or a generated clip (made once); returns
    (SyncResult, wall seconds, process CPU seconds)."""
    from retalk.media import VideoSink, write_wav
    from retalk.samples import moving_frames, vowel_speech

    if given:
        return _run(folder, work, Path(given[0]), Path(given[1]), device, compile_nets, cache)
    clip, wav = work / "clip.mp4", work / "speech.wav"
    if not clip.exists():
        with VideoSink(clip, size, size, Fraction(25), crf=12, preset="ultrafast") as sink:
            for f in moving_frames(frames, size, size, 25.0):
                sink.write(f)
        write_wav(wav, vowel_speech(frames / 25.0 + 1e-3), 16000)
    return _run(folder, work, clip, wav, device, compile_nets, cache)


def _run(folder: Path, work: Path, clip: Path, wav: Path, device: str, compile_nets: bool | None,
         cache: Path | None) -> tuple[object, float, float]:
    from retalk.engines.videoretalking.engine import VideoReTalkingEngine
    from retalk.pipeline import SyncOptions, sync

    # an engine passed in stays open (its caller owns it): its networks, as it ran them, go to networks_ab
    engine = VideoReTalkingEngine(checkpoints=folder, device=device, cache=cache is not None, cache_dir=cache,
                                  compile=compile_nets, progress=False)
    opts = SyncOptions(engine=engine, device=device, progress=False, recognize=False, preset="ultrafast")
    t, c = time.perf_counter(), time.process_time()
    res = sync(clip, wav, work / "out.mp4", opts)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return (res, engine.nets), wall, cpu


def networks_ab(kept, folder: Path, device: torch.device, repeats: int) -> dict[str, tuple[float, ...]]:
    """Each network as the reference runs it (see :func:`reference_networks`) and as retalk ran it in the clip
    (``kept``: the engine's networks, channels-last, compiled if they were), batch 1, alternately (A B A B
    …, ``repeats`` pairs after one warm-up each), so that load from other processes hits both alike.
    Returns per network ``(reference wall, reference CPU, retalk wall, retalk CPU)`` seconds per forward."""
    from unittest import mock

    from retalk.checkpoints import load
    from retalk.networks import stylegan2_ops

    g = torch.Generator().manual_seed(0)
    x512 = torch.rand(1, 3, 512, 512, generator=g).to(device) * 2 - 1
    src, coeff = x512[:, :, ::2, ::2].contiguous(), torch.randn(1, 73, 26, generator=g).to(device)
    mel, faces = torch.randn(1, 1, 80, 16, generator=g).to(device), torch.rand(1, 6, 384, 384, generator=g).to(device)
    calls = {  # name: (reference module, retalk module, call)
        "D-Net": (load("dnet", folder, device=device), kept.dnet, lambda n: n(src, coeff)),
        "L-Net + E-Net": (load("enet", folder / "ENet.pth", device=device), kept.enet,
                          lambda n: n(mel, faces, faces[:, 3:])),
        "GPEN": (load("gpen", folder, device=device), kept.gpen, lambda n: n(x512)),
        "ParseNet": (load("parsenet", folder, device=device), kept.parsenet, lambda n: n(x512)),
        "GFPGAN": (load("gfpgan", folder, device=device), kept.restorer.net,
                   lambda n: n(x512, return_rgb=False, randomize_noise=True)),
    }
    out: dict[str, tuple[float, ...]] = {}
    for name, (ref, fast, call) in calls.items():
        sums = [0.0, 0.0, 0.0, 0.0]
        for _ in range(repeats):
            for k, net in enumerate((ref, fast)):
                with mock.patch.object(stylegan2_ops, "upfirdn2d", reference_upfirdn2d) if k == 0 else _nothing():
                    w, c = time_call(lambda: call(net), device, 1)
                sums[2 * k] += w / repeats
                sums[2 * k + 1] += c / repeats
        out[name] = tuple(sums)
    return out


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


#: Per frame: which reference networks each retalk network stage stands for (the reference's Step 7 parses the
#: restored face twice, mouth mask and face mask; retalk once).
STAGE_NETWORKS = (("vrt.dnet.network", "D-Net", {"D-Net": 1}),
                  ("vrt.reference.network", "GPEN + ParseNet (step 5)", {"GPEN": 1, "ParseNet": 1}),
                  ("vrt.enet.network", "L-Net + E-Net", {"L-Net + E-Net": 1}),
                  ("vrt.gfpgan.network", "GFPGAN", {"GFPGAN": 1}),
                  ("vrt.parse.network", "ParseNet (step 7: ref. x2)", {"ParseNet": 2}),
                  ("vrt.coefficients", "face3d (retalk: whole analysis)", {"face3d": 1}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=4, help="frames of the generated clip and of the output")
    ap.add_argument("--size", type=int, default=256, help="side of the generated clip, pixels")
    ap.add_argument("--clip", nargs=2, metavar=("VIDEO", "AUDIO"),
                    help="time your own face video (or photo) and speech instead of the generated clip")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--checkpoints", type=Path, help="release files (random ones are written here if absent)")
    ap.add_argument("--repeats", type=int, default=2, help="timed forwards per reference network (after one warm-up)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                    help="TorchInductor-compiled networks on the CPU: auto (the engine's default) compiles from 60 "
                         "frames; on compiles even for a few frames (minutes on a 2-core CPU, timed apart as "
                         "vrt.compile); never on a GPU")
    ap.add_argument("--rerun", action="store_true",
                    help="dub the same clip twice with a fresh cache and report the second run too (cached "
                         "coefficients and enhanced faces: D-Net, GPEN and one ParseNet skipped)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    compile_nets = {"auto": None, "on": True, "off": False}[args.compile]
    with tempfile.TemporaryDirectory(prefix="vrt-speed-") as tmp:
        folder = args.checkpoints or Path(tmp) / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        write_release(folder)
        print(f"release files ready in {time.perf_counter() - t:.1f} s ({folder})")
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
        print(f"device: {device} ({name}), torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.2f}, compile {args.compile}")

        cache = Path(tmp) / "cache" if args.rerun else None
        runs = ["first run"] + (["second run (cache warm)"] if args.rerun else [])
        results = []
        kept = None
        for label in runs:
            (res, kept), wall, cpu = run_engine(folder, Path(tmp), args.frames, args.size, args.device, compile_nets,
                                                cache, args.clip)
            what = Path(args.clip[0]).name if args.clip else f"{args.size}x{args.size}"
            results.append((label, res, report(res, wall, cpu, f"{label}: {what}")))

        ref = reference_networks(folder, device, args.repeats)
        print(f"\nreference networks alone, batch 1, {args.repeats} forward(s) after one warm-up "
              f"(load average {os.getloadavg()[0]:.2f}):")
        print(f"  {'network':<28}{'wall s':>10}{'CPU s':>10}")
        for k, (w, c) in ref.items():
            print(f"  {k:<28}{w:10.3f}{c:10.3f}  x{PER_FRAME[k]} per frame")
        total = sum(ref[k][0] * c for k, c in PER_FRAME.items())
        total_cpu = sum(ref[k][1] * c for k, c in PER_FRAME.items())
        print(f"  {'reference per frame':<28}{total:10.3f}{total_cpu:10.3f}  (RetinaFace x2 not included)")
        for label, res, render in results:
            compare(res, ref, label)
            print(f"retalk rendering wall per frame / reference networks per frame, {label}: {render / total:.2f} "
                  f"({total / render:.2f}x less time)")
        ab = networks_ab(kept, folder, device, args.repeats)
        print(f"\nnetworks alone, reference and retalk alternately, batch 1, mean of {args.repeats} "
              f"(load average {os.getloadavg()[0]:.2f}):")
        print(f"  {'network':<16}{'ref wall':>10}{'ref CPU':>10}{'retalk wall':>13}{'retalk CPU':>12}"
              f"{'x wall':>8}{'x CPU':>8}")
        for k, (rw, rc, fw, fc) in ab.items():
            print(f"  {k:<16}{rw:10.3f}{rc:10.3f}{fw:13.3f}{fc:12.3f}{rw / fw:8.2f}{rc / fc:8.2f}")
        uses = {"D-Net": 1, "GPEN": 1, "L-Net + E-Net": 1, "GFPGAN": 1}
        for i, (what, col) in enumerate((("wall", 0), ("CPU", 1))):
            r = sum(ab[k][col] * c for k, c in PER_FRAME.items() if k in ab) + ref["face3d"][col]
            f = sum(ab[k][2 + col] * c for k, c in uses.items()) + 2 * ab["ParseNet"][2 + col] + ref["face3d"][col]
            print(f"  per frame ({what}): reference networks {r:.3f} s (3 ParseNet), retalk's {f:.3f} s (2 ParseNet): "
                  f"{r / f:.2f}x less")


#: Reference forwards per output frame.
PER_FRAME = {"D-Net": 1, "GPEN": 1, "ParseNet": 3, "L-Net + E-Net": 1, "GFPGAN": 1, "face3d": 1}


def compare(res, ref: dict[str, tuple[float, float]], label: str) -> None:
    """Per-frame seconds of each retalk network stage beside the reference networks it stands for."""
    n = res.frames
    print(f"\nper frame, retalk ({label}) beside the reference networks (wall seconds):")
    print(f"  {'networks':<34}{'reference':>10}{'retalk':>10}{'ratio':>8}")
    ref_sum = got_sum = 0.0
    for stage, what, nets in STAGE_NETWORKS:
        r = sum(ref[k][0] * c for k, c in nets.items())
        st = res.timings.stages.get(stage)
        got = st.busy / n if st is not None else 0.0
        ref_sum, got_sum = ref_sum + r, got_sum + got
        print(f"  {what:<34}{r:10.3f}{got:10.3f}{r / got if got else float('inf'):8.2f}")
    print(f"  {'all networks':<34}{ref_sum:10.3f}{got_sum:10.3f}{ref_sum / got_sum if got_sum else 0:8.2f}")


def report(res, wall: float, cpu: float, label: str) -> float:
    """Print one run's per-stage table; returns the rendering pass's wall seconds per frame."""
    n = res.frames
    print(f"\nretalk sync --engine videoretalking, {label}, {n} frame(s): {wall:.1f} s wall, {cpu:.1f} s process "
          f"CPU ({wall / n:.2f} s wall and {cpu / n:.2f} s CPU per frame, start-up, compiling and analysis included; "
          f"load average {os.getloadavg()[0]:.2f})")
    render = res.timings.passes.get("rendering", 0.0) / n
    print(f"  rendering pass wall time per frame: {render:8.3f} s")
    compiled = res.timings.stages.get("vrt.compile")
    if compiled is not None:
        print(f"  compiling the networks (once per process): {compiled.busy:.1f} s")
    print(f"  {'stage':<28}{'busy s/frame':>14}")
    for stage, st in sorted(res.timings.stages.items()):
        if stage.startswith("vrt.") and stage != "vrt.compile":
            print(f"  {stage:<28}{st.busy / n:14.3f}")
    nets = {k: v for k, v in res.timings.stages.items() if k.endswith(".network") or k == "vrt.coefficients"}
    print(f"  {'networks (sum)':<28}{sum(v.busy for v in nets.values()) / n:14.3f}")
    return render


if __name__ == "__main__":
    main()
