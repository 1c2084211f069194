"""The engine's CPU speed-ups: which networks run channels-last, with ParseNet's parsing head only, and
(for clips long enough to pay for it) compiled by TorchInductor; see :mod:`retalk.networks.vrt_speed`.

The output is the plain networks' output to float32 rounding (the golden-value tests check the plain ports
against the reference; ``tests/test_vrt_speed.py`` checks these against the plain ports). GPUs keep the
plain modules (cuDNN picks its own algorithms there).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import torch

from retalk.engines.videoretalking.context import Networks

__all__ = ["COMPILE_MIN_FRAMES", "should_compile", "cpu_networks"]

log = logging.getLogger(__name__)

#: Output frames with a face from which ``compile=None`` (auto) compiles on the CPU: compiling the five networks
#: cost about 270 s on the 2-core development CPU (E-Net 128 s, GFPGAN 55 s, D-Net 32 s, GPEN 27 s, ParseNet 25 s)
#: and saves about 4.4 s per frame there, so it pays from about 60 frames.
COMPILE_MIN_FRAMES = 60


def should_compile(choice: bool | None, device: torch.device, frames: int) -> bool:
    """``choice`` when given; else True on the CPU for at least :data:`COMPILE_MIN_FRAMES` frames."""
    if choice is not None:
        return bool(choice) and device.type == "cpu"
    return device.type == "cpu" and frames >= COMPILE_MIN_FRAMES


def _examples(device: torch.device) -> dict[str, Any]:
    """Warm-up calls at batch 1 on each network's pipeline input size (what the runtime ops feed them)."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g).to(device)

    def gfpgan_call(restorer: Any) -> Any:
        return lambda n: n(rand(1, 3, 512, 512) * 2 - 1, return_rgb=False, randomize_noise=restorer.randomize_noise)

    return {
        "dnet": lambda n: n(rand(1, 3, 256, 256) * 2 - 1, torch.randn(1, 73, 26, generator=g).to(device)),
        "enet": lambda n: n(torch.randn(1, 1, 80, 16, generator=g).to(device), rand(1, 6, 384, 384),
                            rand(1, 3, 384, 384)),
        "gpen": lambda n: n(rand(1, 3, 512, 512) * 2 - 1),
        "parsenet": lambda n: n(rand(1, 3, 512, 512) * 2 - 1),
        "gfpgan": gfpgan_call,
    }


def cpu_networks(nets: Networks, compile_them: bool) -> tuple[Networks, float]:
    """The networks of ``nets`` prepared for the CPU (unchanged on a GPU): channels-last, ParseNet's parsing
    head only, and compiled when ``compile_them``. Returns ``(networks, seconds spent compiling)``.

    Stand-in networks (not ``torch.nn.Module``) are left as they are.
    """
    from retalk.networks.parsenet import ParseNet
    from retalk.networks.vrt_speed import ChannelsLast, ParseLogits, compile_network

    device = torch.device(nets.device)
    if device.type != "cpu":
        return nets, 0.0
    examples = _examples(device)
    spent = 0.0

    def fast(name: str, net: Any, call: Any) -> Any:
        nonlocal spent
        if not isinstance(net, torch.nn.Module):
            return net
        if isinstance(net, ParseNet):
            net = ParseLogits(net)
        net = ChannelsLast(net).eval()
        if compile_them:
            spent += compile_network(net, call, f"videoretalking {name}")
        return net

    t = time.perf_counter()
    changed = {name: fast(name, getattr(nets, name), examples[name]) for name in ("dnet", "enet", "gpen", "parsenet")}
    restorer = nets.restorer
    if hasattr(restorer, "with_network"):
        restorer = restorer.with_network(fast("gfpgan", restorer.net, examples["gfpgan"](restorer)))
    log.debug("videoretalking: CPU networks ready in %.1f s (compiled: %s)", time.perf_counter() - t, compile_them)
    return dataclasses.replace(nets, restorer=restorer, **changed), spent
