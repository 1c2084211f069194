"""Original (rosinality-style) StyleGAN2 operators in plain PyTorch, as GPEN uses them.

The original StyleGAN2 code relies on two custom CUDA kernels, ``upfirdn2d``
(upsample, FIR filter, downsample) and the fused bias + leaky ReLU; this module
implements both with ordinary tensor operations (what the reference itself
runs on the CPU), plus the layers built from them:

* :class:`FusedLeakyReLU` — ``sqrt(2) * leaky_relu(x + bias, 0.2)``.
* :class:`Blur` / :class:`Upsample` — FIR filtering with a stored 2-D
  ``kernel`` buffer (outer product of ``[1, 3, 3, 1]``, normalised to sum 1,
  times ``factor**2`` when it follows or performs a ×``factor`` upsampling).
* :class:`EqualConv2d` / :class:`EqualLinear` — "equalised learning rate"
  layers: weights stored unscaled and multiplied by ``1/sqrt(fan_in)`` (and
  ``lr_mul``) at run time.

These differ from :mod:`retalk.networks.stylegan2_clean` (GFPGAN's "clean"
variant, bilinear resampling and plain ``nn.Linear``), so they live apart.
Feature maps are (B, C, H, W) float tensors.  No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "DEFAULT_BLUR",
    "make_kernel",
    "upfirdn2d",
    "fused_leaky_relu",
    "FusedLeakyReLU",
    "ScaledLeakyReLU",
    "Blur",
    "Upsample",
    "EqualConv2d",
    "EqualLinear",
]

DEFAULT_BLUR: tuple[int, ...] = (1, 3, 3, 1)
"""The binomial FIR taps of every StyleGAN2 blur."""

LRELU_SLOPE = 0.2
SQRT2 = math.sqrt(2.0)


def make_kernel(taps: Sequence[float]) -> Tensor:
    """2-D FIR kernel from 1-D taps (outer product with itself), normalised to sum 1; (k, k) float32."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    if k.ndim == 1:
        k = torch.outer(k, k)
    return k / k.sum()


def spread_and_pad(x: torch.Tensor, up: int, pad: tuple[int, int]) -> torch.Tensor:
    """upfirdn2d's first steps: ``up - 1`` zeros after each sample on both axes, then ``pad`` (before, after)
    on both axes (negative values crop). (B, C, H, W) → (B, C, H·up + p0 + p1, W·up + p0 + p1)."""
    batch, channels, height, width = x.shape
    if up > 1:
        spread = x.new_zeros(batch, channels, height, up, width, up)
        spread[:, :, :, 0, :, 0] = x
        x = spread.view(batch, channels, height * up, width * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    return x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by zero insertion, pad, convolve with ``kernel``, keep every ``down``-th sample.

    Args:
        x: (B, C, H, W).
        kernel: (kh, kw), applied to every channel separately as a true
            convolution (the kernel is flipped; it matters for asymmetric kernels).
        up: zero-insertion factor (each sample followed by ``up - 1`` zeros, both axes).
        down: subsampling factor after filtering.
        pad: (before, after) padding of both spatial axes after upsampling;
            negative values crop.

    Returns:
        (B, C, (H·up + p0 + p1 − kh) // down + 1, same for W).
    """
    batch, channels = x.shape[:2]
    kh, kw = kernel.shape
    x = spread_and_pad(x, up, pad)
    # one depthwise convolution (groups = channels): the same sums as filtering each channel alone, but
    # oneDNN runs it ~30x faster than a (B·C, 1, H, W) single-channel convolution
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).expand(channels, 1, kh, kw)
    out = F.conv2d(x, weight, groups=channels)
    return out[:, :, ::down, ::down] if down > 1 else out


def fused_leaky_relu(x: Tensor, bias: Tensor, negative_slope: float = LRELU_SLOPE, scale: float = SQRT2) -> Tensor:
    """``scale * leaky_relu(x + bias)``, ``bias`` (C,) broadcast over dim 1 of ``x`` (B, C, ...)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return scale * F.leaky_relu(x + bias.view(shape), negative_slope=negative_slope)


class FusedLeakyReLU(nn.Module):
    """Learned per-channel ``bias`` (C,) then LeakyReLU(0.2) scaled by √2."""

    def __init__(self, channels: int, negative_slope: float = LRELU_SLOPE, scale: float = SQRT2) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class ScaledLeakyReLU(nn.Module):
    """LeakyReLU(``negative_slope``) times √2, no bias."""

    def __init__(self, negative_slope: float = LRELU_SLOPE) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, negative_slope=self.negative_slope) * SQRT2


class Blur(nn.Module):
    """FIR blur with the stored ``kernel`` buffer (k, k) and fixed padding (same size when pads sum to k − 1)."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        kernel = make_kernel(taps)
        if upsample_factor > 1:
            kernel = kernel * upsample_factor**2
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """×``factor`` upsampling by zero insertion + FIR filter (``kernel`` buffer, sum ``factor**2``)."""

    def __init__(self, taps: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        kernel = make_kernel(taps) * factor**2
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) → (B, C, H·factor, W·factor)."""
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv2d whose ``weight`` (C_out, C_in, k, k) is scaled by ``1/sqrt(C_in·k²)`` at run time; optional ``bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, {k}, stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"


class EqualLinear(nn.Module):
    """Linear layer with run-time scale ``lr_mul/sqrt(in_dim)`` on ``weight`` and ``lr_mul`` on ``bias``.

    With ``activation`` (any truthy value, e.g. ``"fused_lrelu"``) the bias is
    added inside :func:`fused_leaky_relu`.  Input (..., in_dim) → (..., out_dim).
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: str | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, bias) if bias is not None else F.leaky_relu(out, LRELU_SLOPE) * SQRT2
        return F.linear(x, self.weight * self.scale, bias=bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"
