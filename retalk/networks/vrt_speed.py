"""Faster CPU inference of the VideoReTalking networks, with the same output (to float32 rounding).

Each network stays the plain port that the golden tests check against the reference; what changes is
how it is run:

* :class:`ChannelsLast` — 4-D inputs and conv weights in channels-last (NHWC) memory order, which oneDNN
  convolves without reordering every tensor on the way in and out (1.1–1.4× per network on an AVX-512 CPU);
* :class:`ParseLogits` — ParseNet with only the parsing head: the reconstructed-image head the reference
  also evaluates is never used by the pipeline;
* :func:`compile_network` — ``torch.compile`` (TorchInductor, ``freezing``: weights folded in as constants,
  batch norms folded into the convolutions, element-wise chains such as bias + LeakyReLU + noise fused into
  one C++ loop, convolution weights pre-packed for oneDNN): about 2× on GPEN, 1.5× on ParseNet. Compiling
  costs tens of seconds per network and needs a C++ compiler; it is paid once per network and process, on
  the example inputs given, and falls back to the eager module (with a warning) when it fails. Random draws
  inside the networks (E-Net's and GFPGAN's noise) use the eager random-number stream (``fallback_random``),
  so a seeded run draws the same noise compiled or not.

No global state is changed: the Inductor settings are passed per compiled module.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ChannelsLast", "ParseLogits", "to_channels_last", "compile_network", "INDUCTOR_OPTIONS"]

log = logging.getLogger(__name__)

#: Inductor settings of every compiled network: constant-folded weights (inference only) and eager RNG.
INDUCTOR_OPTIONS: dict[str, Any] = {"freezing": True, "fallback_random": True}


def to_channels_last(net: nn.Module) -> nn.Module:
    """``net`` with every 4-D parameter and buffer stored channels-last, in place (values unchanged)."""
    for t in list(net.parameters()) + list(net.buffers()):
        if t.dim() == 4:
            t.data = t.data.contiguous(memory_format=torch.channels_last)
    return net


def _nhwc(x: Any) -> Any:
    if isinstance(x, Tensor) and x.dim() == 4 and x.is_floating_point():
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _nhwc_copy(x: Any) -> Any:
    """A channels-last copy of a 4-D float tensor (made in inference mode, it is an inference tensor whether
    ``x`` was one or not: compiled code guards on that); anything else unchanged."""
    if isinstance(x, Tensor) and x.dim() == 4 and x.is_floating_point():
        return x.clone(memory_format=torch.channels_last)
    return x


class ChannelsLast(nn.Module):
    """Calls ``net`` with its 4-D float tensor arguments in channels-last order (same values, same outputs).

    ``net``'s 4-D weights are converted too (:func:`to_channels_last`); outputs come back as ``net`` makes them
    (values and shapes unchanged, so callers that index, permute or ``.numpy()`` them see the same numbers).
    After :meth:`use_compiled` the calls go to the compiled ``net`` instead, always under
    ``torch.inference_mode`` and with channels-last inputs, so that its guards (grad mode, strides) hold on
    every call and it is compiled once.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = to_channels_last(net)
        self.__dict__["_compiled"] = None  # not a registered submodule: the state stays that of ``net``

    def use_compiled(self, compiled: Callable[..., Any] | None) -> None:
        """Route calls to ``compiled`` (a ``torch.compile`` of :attr:`net`), or back to ``net`` (None)."""
        self.__dict__["_compiled"] = compiled

    @property
    def compiled(self) -> bool:
        """Whether calls go to a compiled network."""
        return self.__dict__["_compiled"] is not None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self.__dict__["_compiled"]
        if compiled is None:
            return self.net(*(_nhwc(a) for a in args), **{k: _nhwc(v) for k, v in kwargs.items()})
        with torch.inference_mode():  # fresh inference-mode copies: the same guards hold whoever calls
            return compiled(*(_nhwc_copy(a) for a in args), **{k: _nhwc_copy(v) for k, v in kwargs.items()})


class ParseLogits(nn.Module):
    """ParseNet returning ``(logits,)`` only: (B, 3, 512, 512) RGB in [-1, 1] → ((B, 19, 512, 512),).

    The same first output as :meth:`retalk.networks.parsenet.ParseNet.forward` (callers index ``[0]``); the
    image head (a 64 → 3 convolution at 512 × 512) is skipped.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor]:
        n = self.net
        feat = n.encoder(x)
        return (n.out_mask_conv(n.decoder(feat + n.body(feat))),)


def compile_network(net: ChannelsLast, warm_up: Callable[[nn.Module], Any], name: str) -> float:
    """Compile ``net.net`` with ``torch.compile`` (see the module docstring) and route ``net``'s calls to it;
    it is compiled now, by calling ``warm_up(net)``. Returns the seconds spent. On any failure (no C++
    compiler, an unsupported operation) ``net`` stays eager, with a warning.

    Each network class has its own ``forward`` code, so each gets its own compiled-code cache (the wrapper's
    input conversion stays outside the compiled graph).
    """
    t = time.perf_counter()
    try:
        net.use_compiled(torch.compile(net.net, dynamic=False, options=dict(INDUCTOR_OPTIONS)))
        with torch.inference_mode():
            warm_up(net)
    except Exception as exc:  # noqa: BLE001 - any compiler failure means: run eager
        net.use_compiled(None)
        log.warning("%s: torch.compile failed (%s: %s); running it uncompiled", name, type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "")
        return time.perf_counter() - t
    seconds = time.perf_counter() - t
    log.info("%s: compiled in %.1f s", name, seconds)
    return seconds
