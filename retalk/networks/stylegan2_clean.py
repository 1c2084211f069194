"""StyleGAN2 "clean" decoder building blocks (plain PyTorch ops, no fused CUDA kernels).

The layers GFPGAN's decoder is made of: style normalisation, modulated
convolution, styled convolution with noise, to-RGB with skip, the learned
constant input, and :class:`StyleGAN2GeneratorCSFT`, the generator whose
features a U-Net modulates with spatial feature transforms (used by
:class:`retalk.networks.gfpgan.GFPGANv1Clean`).

Conventions: feature maps are float tensors (B, C, H, W); style codes are
(B, num_style_feat); generated images are (B, 3, S, S) RGB, nominally in
[-1, 1].  Parameter and buffer names, shapes and registration order match the
reference implementation, so released state dicts load with ``strict=True``.
This module does no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "StyleGAN2GeneratorCSFT",
    "StyleConv",
    "ToRGB",
    "ModulatedConv2d",
    "ConstantInput",
    "NormStyleCode",
    "stylegan_channels",
]

LRELU_SLOPE = 0.2
"""Negative slope of every LeakyReLU in StyleGAN2 and the GFPGAN U-Net."""


def log2_int(size: int) -> int:
    """``log2(size)`` for a power of two ``size`` (raises otherwise)."""
    if size < 4 or size & (size - 1):
        raise ValueError(f"out_size must be a power of two >= 4, got {size}")
    return size.bit_length() - 1


def stylegan_channels(channel_multiplier: float, narrow: float) -> dict[int, int]:
    """Channel count of each StyleGAN2 resolution level (resolution → channels)."""
    wide = {4: 512, 8: 512, 16: 512, 32: 512}
    scaled = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    out = {res: int(c * narrow) for res, c in wide.items()}
    out.update({res: int(c * channel_multiplier * narrow) for res, c in scaled.items()})
    return out


class NormStyleCode(nn.Module):
    """Scale each style code (B, C) to unit root-mean-square over C (eps 1e-8 under the root)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution (StyleGAN2), without bias.

    The per-sample style (B, num_style_feat) goes through ``modulation`` (a
    linear layer, bias initialised to 1) to one scale per input channel; the
    shared kernel ``weight`` (1, C_out, C_in, k, k) is multiplied by it and,
    when ``demodulate``, renormalised so that each output channel's kernel has
    unit L2 norm (``rsqrt(sum w^2 + eps)``).  The per-sample kernels are applied
    as one grouped convolution.  ``sample_mode='upsample'`` / ``'downsample'``
    resizes the *input* bilinearly by 2 / 0.5 (align_corners=False) before the
    convolution; padding is ``k // 2``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_style_feat: int,
        demodulate: bool = True,
        sample_mode: str | None = None,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        if sample_mode not in (None, "upsample", "downsample"):
            raise ValueError(f"unknown sample_mode {sample_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.sample_mode = sample_mode
        self.eps = eps
        self.padding = kernel_size // 2

        self.modulation = nn.Linear(num_style_feat, in_channels, bias=True)
        nn.init.kaiming_normal_(self.modulation.weight, a=0, mode="fan_in", nonlinearity="linear")
        nn.init.constant_(self.modulation.bias, 1.0)

        fan_in = in_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size) / math.sqrt(fan_in)
        )

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """``x`` (B, C_in, H, W), ``style`` (B, num_style_feat) → (B, C_out, H', W')."""
        batch = x.shape[0]
        scales = self.modulation(style).view(batch, 1, self.in_channels, 1, 1)
        kernels = self.weight * scales  # (B, C_out, C_in, k, k)
        if self.demodulate:
            norm = torch.rsqrt(kernels.pow(2).sum(dim=(2, 3, 4)) + self.eps)  # (B, C_out)
            kernels = kernels * norm.view(batch, self.out_channels, 1, 1, 1)
        kernels = kernels.view(batch * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)

        if self.sample_mode == "upsample":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        elif self.sample_mode == "downsample":
            x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)

        height, width = x.shape[2], x.shape[3]
        out = F.conv2d(
            x.reshape(1, batch * self.in_channels, height, width), kernels, padding=self.padding, groups=batch
        )
        return out.view(batch, self.out_channels, out.shape[2], out.shape[3])

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, kernel_size={self.kernel_size}, "
            f"demodulate={self.demodulate}, sample_mode={self.sample_mode}"
        )


class StyleConv(nn.Module):
    """Modulated conv → ×√2 → + ``weight``·noise → + ``bias`` → LeakyReLU(0.2).

    ``weight`` (1,) is the learned noise strength, ``bias`` (1, C_out, 1, 1).
    The noise is one map (B or 1, 1, H, W) shared by all channels; when the
    caller gives none, fresh N(0, 1) noise is drawn from the global torch RNG.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_style_feat: int,
        demodulate: bool = True,
        sample_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, num_style_feat, demodulate=demodulate, sample_mode=sample_mode
        )
        self.weight = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.activate = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        out = self.modulated_conv(x, style) * math.sqrt(2.0)
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, out.shape[2], out.shape[3]).normal_()
        out = out + self.weight * noise
        out = out + self.bias
        return self.activate(out)


class ToRGB(nn.Module):
    """1×1 modulated conv (no demodulation) to 3 channels + ``bias``, plus the previous RGB ``skip``.

    With ``upsample`` the skip image is first enlarged ×2 (bilinear, align_corners=False).
    """

    def __init__(self, in_channels: int, num_style_feat: int, upsample: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = ModulatedConv2d(
            in_channels, 3, kernel_size=1, num_style_feat=num_style_feat, demodulate=False, sample_mode=None
        )
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            if self.upsample:
                skip = F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
            out = out + skip
        return out


class ConstantInput(nn.Module):
    """The learned 4×4 starting tensor ``weight`` (1, C, size, size), repeated over the batch."""

    def __init__(self, num_channel: int, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, num_channel, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.weight.expand(batch, -1, -1, -1)


class StyleGAN2GeneratorCSFT(nn.Module):
    """StyleGAN2 generator (clean ops) whose features are modulated by spatial feature transforms (SFT).

    Layers: ``style_mlp`` (NormStyleCode + ``num_mlp`` × [Linear, LeakyReLU 0.2];
    unused when the input is already a latent), ``constant_input`` 4×4,
    ``style_conv1`` + ``to_rgb1`` at 4×4, then for every resolution 8 … out_size
    two ``style_convs`` (the first upsamples) and one ``to_rgbs``.  ``noises``
    holds one fixed noise map per StyleConv (``noise0`` … ``noise{num_layers-1}``),
    used when ``randomize_noise=False``.

    With ``sft_half`` the SFT (``feat * scale + shift``) is applied to the second
    half of the channels only, right after the first (upsampling) conv of each
    level from 8×8 upwards.
    """

    def __init__(
        self,
        out_size: int,
        num_style_feat: int = 512,
        num_mlp: int = 8,
        channel_multiplier: float = 2,
        narrow: float = 1,
        sft_half: bool = False,
    ) -> None:
        super().__init__()
        self.num_style_feat = num_style_feat
        self.sft_half = sft_half
        self.log_size = log2_int(out_size)
        self.num_layers = 2 * (self.log_size - 2) + 1
        self.num_latent = 2 * self.log_size - 2

        mlp: list[nn.Module] = [NormStyleCode()]
        for _ in range(num_mlp):
            linear = nn.Linear(num_style_feat, num_style_feat, bias=True)
            nn.init.kaiming_normal_(linear.weight, a=LRELU_SLOPE, mode="fan_in", nonlinearity="leaky_relu")
            nn.init.zeros_(linear.bias)
            mlp += [linear, nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)]
        self.style_mlp = nn.Sequential(*mlp)

        channels = stylegan_channels(channel_multiplier, narrow)
        self.channels = channels
        self.constant_input = ConstantInput(channels[4], size=4)
        self.style_conv1 = StyleConv(channels[4], channels[4], 3, num_style_feat, demodulate=True, sample_mode=None)
        self.to_rgb1 = ToRGB(channels[4], num_style_feat, upsample=False)

        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for idx in range(self.num_layers):
            res = 2 ** ((idx + 5) // 2)  # 4, 8, 8, 16, 16, ...
            self.noises.register_buffer(f"noise{idx}", torch.randn(1, 1, res, res))

        in_ch = channels[4]
        for log_res in range(3, self.log_size + 1):
            out_ch = channels[2**log_res]
            self.style_convs.append(
                StyleConv(in_ch, out_ch, 3, num_style_feat, demodulate=True, sample_mode="upsample")
            )
            self.style_convs.append(StyleConv(out_ch, out_ch, 3, num_style_feat, demodulate=True, sample_mode=None))
            self.to_rgbs.append(ToRGB(out_ch, num_style_feat, upsample=True))
            in_ch = out_ch

    def stored_noise(self) -> list[Tensor]:
        """The fixed noise maps ``noises.noise*`` in layer order."""
        return [getattr(self.noises, f"noise{i}") for i in range(self.num_layers)]

    def _latents(self, styles: Sequence[Tensor], inject_index: int | None) -> Tensor:
        """Per-layer latents (B, num_latent, num_style_feat) from one or two style inputs."""
        if len(styles) == 1:
            style = styles[0]
            if style.ndim >= 3:  # already one code per layer
                return style
            return style.unsqueeze(1).expand(-1, self.num_latent, -1)
        if len(styles) == 2:  # style mixing
            if inject_index is None:
                inject_index = int(torch.randint(1, self.num_latent, ()).item())
            first = styles[0].unsqueeze(1).expand(-1, inject_index, -1)
            second = styles[1].unsqueeze(1).expand(-1, self.num_latent - inject_index, -1)
            return torch.cat([first, second], dim=1)
        raise ValueError(f"expected 1 or 2 style tensors, got {len(styles)}")

    def forward(
        self,
        styles: Sequence[Tensor],
        conditions: Sequence[Tensor],
        input_is_latent: bool = False,
        noise: Sequence[Tensor | None] | None = None,
        randomize_noise: bool = True,
        truncation: float = 1,
        truncation_latent: Tensor | None = None,
        inject_index: int | None = None,
        return_latents: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Render images from styles.

        Args:
            styles: list of 1 (or 2, for mixing) style tensors, (B, F) or (B, num_latent, F).
            conditions: SFT maps ``[scale_8, shift_8, scale_16, shift_16, ...]``; levels beyond
                ``len(conditions)`` are left unmodulated.
            input_is_latent: skip ``style_mlp`` (the styles already are W latents).
            noise: one noise map (or None) per StyleConv; overrides ``randomize_noise``.
            randomize_noise: draw fresh noise (True) or use the stored ``noises`` buffers (False).
            truncation, truncation_latent: truncation trick ``w_avg + t·(w − w_avg)`` when ``t < 1``.
            inject_index: mixing cut-over layer for two styles (random when None).
            return_latents: also return the per-layer latents.

        Returns:
            ``(image (B, 3, S, S), latents or None)``.
        """
        if not input_is_latent:
            styles = [self.style_mlp(s) for s in styles]
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.stored_noise()
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent")
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        latent = self._latents(styles, inject_index)

        out = self.constant_input(latent.shape[0])
        out = self.style_conv1(out, latent[:, 0], noise=noise[0])
        rgb = self.to_rgb1(out, latent[:, 1])

        n_levels = len(self.to_rgbs)
        for level in range(n_levels):
            w_idx = 2 * level + 1  # latent index of this level's first conv
            conv_up, conv = self.style_convs[2 * level], self.style_convs[2 * level + 1]
            out = conv_up(out, latent[:, w_idx], noise=noise[2 * level + 1])
            if w_idx < len(conditions):
                scale, shift = conditions[w_idx - 1], conditions[w_idx]
                if self.sft_half:
                    half = out.shape[1] // 2
                    kept, modulated = out[:, :half], out[:, half:]
                    out = torch.cat([kept, modulated * scale + shift], dim=1)
                else:
                    out = out * scale + shift
            out = conv(out, latent[:, w_idx + 1], noise=noise[2 * level + 2])
            rgb = self.to_rgbs[level](out, latent[:, w_idx + 2], rgb)

        return rgb, (latent if return_latents else None)
