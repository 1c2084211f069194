"""GPEN blind face restoration network (``GPEN-BFR-512``): a StyleGAN2 prior driven by a CNN encoder.

:class:`FullGenerator` encodes a degraded face with a stack of strided
equalised convolutions, maps the deepest features to a style vector, and feeds
both into :class:`Generator`, the original StyleGAN2 generator whose "noise"
inputs are the encoder features of the matching resolution, *concatenated* to
the convolution outputs (so every styled conv emits twice its channel count).
Deterministic: no random noise is drawn in :meth:`FullGenerator.forward`.

Images are (B, 3, S, S) **RGB** in [-1, 1] in and out (the output is not
clamped).  Parameter and buffer names, shapes and order match the reference
``FullGenerator``, so ``GPEN-BFR-512.pth`` (a bare state dict that includes
the 21 FIR ``kernel`` buffers) loads with ``strict=True``.  Built from the
plain-torch ops of :mod:`retalk.networks.stylegan2_ops`.  No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from retalk.networks.stylegan2_clean import NormStyleCode
from retalk.networks.stylegan2_ops import (
    DEFAULT_BLUR,
    Blur,
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
    ScaledLeakyReLU,
    Upsample,
)

__all__ = ["FullGenerator", "Generator", "gpen_channels"]


def gpen_channels(channel_multiplier: float, narrow: float) -> dict[int, int]:
    """Channels per resolution (4 … 1024) of GPEN's encoder and generator."""
    wide = {4: 512, 8: 512, 16: 512, 32: 512}
    scaled = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    out = {res: int(c * narrow) for res, c in wide.items()}
    out.update({res: int(c * channel_multiplier * narrow) for res, c in scaled.items()})
    return out


def _log2(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"GPEN size must be a power of two >= 8, got {size}")
    return size.bit_length() - 1


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution (no bias); ``upsample`` = ×2 transposed conv then blur.

    ``weight`` (1, C_out, C_in, k, k) is scaled by ``1/sqrt(C_in·k²)`` and by the
    per-sample style ``modulation(style)`` (B, C_in) (an :class:`EqualLinear`,
    bias initialised to 1), then demodulated (``rsqrt(sum w² + 1e-8)`` per output
    channel) when ``demodulate``.  Padding ``k // 2`` without upsampling.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR) -> None:
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.upsample = upsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1)
        self.demodulate = demodulate

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """``x`` (B, C_in, H, W), ``style`` (B, style_dim) → (B, C_out, H, W), or (B, C_out, 2H, 2W) upsampling."""
        batch, in_ch, height, width = x.shape
        k = self.kernel_size
        mod = self.modulation(style).view(batch, 1, in_ch, 1, 1)
        weight = self.scale * self.weight * mod  # (B, C_out, C_in, k, k)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)
            weight = weight * demod.view(batch, self.out_channels, 1, 1, 1)
        grouped = x.reshape(1, batch * in_ch, height, width)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_ch, self.out_channels, k, k)
            out = F.conv_transpose2d(grouped, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channels, out.shape[2], out.shape[3])
            return self.blur(out)
        weight = weight.reshape(batch * self.out_channels, in_ch, k, k)
        out = F.conv2d(grouped, weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channels, out.shape[2], out.shape[3])

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, {self.kernel_size}, upsample={self.upsample}"


class NoiseInjection(nn.Module):
    """``cat(x, weight·noise)`` on channels (``isconcat``) or ``x + weight·noise``; ``weight`` (1,).

    Without a ``noise`` map, N(0, 1) noise is drawn from the global torch RNG:
    one channel when adding, as many channels as ``x`` when concatenating (the
    reference draws one channel there too, which its activation then rejects).
    """

    def __init__(self, isconcat: bool = True) -> None:
        super().__init__()
        self.isconcat = isconcat
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            channels = x.shape[1] if self.isconcat else 1
            noise = x.new_empty(x.shape[0], channels, x.shape[2], x.shape[3]).normal_()
        if self.isconcat:
            return torch.cat((x, self.weight * noise), dim=1)
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned starting tensor ``input`` (1, C, size, size), repeated over the batch."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, x: Tensor) -> Tensor:
        """``x``: anything with the batch size as its first dimension."""
        return self.input.repeat(x.shape[0], 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated conv → noise injection → fused bias + LeakyReLU (over 2·C_out channels when concatenating)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[int] = DEFAULT_BLUR,
                 demodulate: bool = True, isconcat: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim,
                                    demodulate=demodulate, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection(isconcat)
        self.activate = FusedLeakyReLU(out_channels * (2 if isconcat else 1))

    def forward(self, x: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        return self.activate(self.noise(self.conv(x, style), noise=noise))


class ToRGB(nn.Module):
    """1×1 modulated conv (no demodulation) to RGB + ``bias`` (1, 3, 1, 1), plus the ×2-upsampled ``skip``."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Generator(nn.Module):
    """Original StyleGAN2 generator with concatenated noise (GPEN's ``generator``).

    ``style``: PixelNorm + ``n_mlp`` × EqualLinear(style_dim, lr_mul ``lr_mlp``,
    fused LeakyReLU); ``input`` 4×4 constant; ``conv1`` + ``to_rgb1`` at 4×4;
    per resolution 8 … size two ``convs`` (the first upsamples) and one ``to_rgbs``.
    """

    def __init__(self, size: int, style_dim: int, n_mlp: int, channel_multiplier: float = 2,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR, lr_mlp: float = 0.01,
                 isconcat: bool = True, narrow: float = 1) -> None:
        super().__init__()
        self.size = size
        self.n_mlp = n_mlp
        self.style_dim = style_dim
        self.feat_multiplier = 2 if isconcat else 1
        mult = self.feat_multiplier
        layers: list[nn.Module] = [NormStyleCode()]
        layers += [EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp)]
        self.style = nn.Sequential(*layers)

        self.channels = gpen_channels(channel_multiplier, narrow)
        ch4 = self.channels[4]
        self.input = ConstantInput(ch4)
        self.conv1 = StyledConv(ch4, ch4, 3, style_dim, blur_kernel=blur_kernel, isconcat=isconcat)
        self.to_rgb1 = ToRGB(ch4 * mult, style_dim, upsample=False)
        self.log_size = _log2(size)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch4
        for level in range(3, self.log_size + 1):
            out_ch = self.channels[2**level]
            self.convs.append(StyledConv(in_ch * mult, out_ch, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel, isconcat=isconcat))
            self.convs.append(StyledConv(out_ch * mult, out_ch, 3, style_dim,
                                         blur_kernel=blur_kernel, isconcat=isconcat))
            self.to_rgbs.append(ToRGB(out_ch * mult, style_dim))
            in_ch = out_ch
        self.n_latent = self.log_size * 2 - 2
        self.num_layers = 2 * (self.log_size - 2) + 1

    def forward(
        self,
        styles: Sequence[Tensor],
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1,
        truncation_latent: Tensor | None = None,
        input_is_latent: bool = False,
        noise: Sequence[Tensor | None] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Render images.

        Args:
            styles: 1 (or 2, for style mixing) tensors (B, style_dim).
            return_latents: also return the per-layer latents (B, n_latent, style_dim).
            inject_index: mixing cut-over layer for two styles (random when None).
            truncation, truncation_latent: ``w_avg + t·(w − w_avg)`` when ``t < 1``.
            input_is_latent: the styles already are W latents (skip ``style``).
            noise: ``num_layers`` maps (or Nones), in layer order: 4×4, then two
                per resolution; each (B, C_res, res, res) when concatenating.  None:
                fresh random noise (see :class:`NoiseInjection`); GPEN's
                :class:`FullGenerator` always passes its encoder features.

        Returns:
            ``(image (B, 3, size, size) RGB, latents or None)``.
        """
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None:
            noise = [None] * self.num_layers
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent")
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            latent = styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            if inject_index is None:
                inject_index = int(torch.randint(1, self.n_latent, ()).item())
            first = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
            second = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
            latent = torch.cat([first, second], 1)

        out = self.input(latent)
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        for level, to_rgb in enumerate(self.to_rgbs):
            i = 2 * level + 1
            out = self.convs[2 * level](out, latent[:, i], noise=noise[i])
            out = self.convs[2 * level + 1](out, latent[:, i + 1], noise=noise[i + 1])
            skip = to_rgb(out, latent[:, i + 2], skip)
        return skip, (latent if return_latents else None)


class ConvLayer(nn.Sequential):
    """[Blur(pad 2,2) when ``downsample``] → EqualConv2d (stride 2 when downsampling) → activation.

    The conv has a bias only when ``bias and not activate``; with ``activate``
    the bias lives in the :class:`FusedLeakyReLU` (or there is none:
    :class:`ScaledLeakyReLU`, when ``bias`` is False).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR, bias: bool = True, activate: bool = True) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU(0.2))
        super().__init__(*layers)


class FullGenerator(nn.Module):
    """GPEN: encoder ``ecd0`` … ``ecd{log2(size)-2}`` + ``final_linear`` + :class:`Generator`.

    Released configuration (``GPEN-BFR-512.pth``): ``FullGenerator(512, 512,
    n_mlp=8, channel_multiplier=2, narrow=1)``.  ``ecd0`` is a 1×1 conv at full
    resolution; each further ``ecd`` halves the resolution (down to 4×4);
    ``final_linear`` maps the flattened 4×4 features to the style vector.
    """

    def __init__(self, size: int, style_dim: int, n_mlp: int, channel_multiplier: float = 2,
                 blur_kernel: Sequence[int] = DEFAULT_BLUR, lr_mlp: float = 0.01,
                 isconcat: bool = True, narrow: float = 1) -> None:
        super().__init__()
        channels = gpen_channels(channel_multiplier, narrow)
        self.log_size = _log2(size)
        self.generator = Generator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier,
                                   blur_kernel=blur_kernel, lr_mlp=lr_mlp, isconcat=isconcat, narrow=narrow)
        self.ecd0 = nn.Sequential(ConvLayer(3, channels[size], 1))
        in_ch = channels[size]
        self.names = [f"ecd{i}" for i in range(self.log_size - 1)]
        for level in range(self.log_size, 2, -1):
            out_ch = channels[2 ** (level - 1)]
            setattr(self, self.names[self.log_size - level + 1],
                    nn.Sequential(ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)))
            in_ch = out_ch
        self.final_linear = nn.Sequential(EqualLinear(channels[4] * 4 * 4, style_dim, activation="fused_lrelu"))

    def forward(
        self,
        inputs: Tensor,
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1,
        truncation_latent: Tensor | None = None,
        input_is_latent: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Restore faces.

        Args:
            inputs: (B, 3, size, size) RGB in [-1, 1] (the reference wrapper:
                ``(bgr/255 − 0.5)/0.5``, channels flipped to RGB).
            return_latents, inject_index, truncation, truncation_latent, input_is_latent:
                passed to :meth:`Generator.forward` (defaults: the style MLP is applied).

        Returns:
            ``(image (B, 3, size, size) RGB ≈ [-1, 1] (unclamped), latents (B, n_latent, style_dim) or None)``.
        """
        feats = []
        x = inputs
        for name in self.names:
            x = getattr(self, name)(x)
            feats.append(x)
        style = self.final_linear(x.reshape(x.shape[0], -1))
        # deepest map feeds conv1 (4×4); every finer map feeds both convs of its resolution
        noise = [feats[-1]] + [f for f in reversed(feats[:-1]) for _ in range(2)]
        return self.generator([style], return_latents, inject_index, truncation, truncation_latent,
                              input_is_latent, noise=noise)
