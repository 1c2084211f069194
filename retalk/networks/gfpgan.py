"""GFPGAN v1 "clean" architecture (the one released as ``GFPGANv1.3.pth``).

A U-Net encoder/decoder predicts, from a degraded aligned face, (a) one style
vector per StyleGAN2 layer and (b) per-level spatial feature transforms (scale,
shift).  A StyleGAN2 generator (the "clean" variant: plain PyTorch ops, no
fused CUDA kernels) renders the restored face from those styles, with the
second half of its channels modulated by the transforms after the first
convolution of each resolution level.

Conventions
-----------
* Input ``x``: float tensor (B, 3, S, S), **RGB**, values in **[-1, 1]**, where
  ``S = out_size`` (512 for the release).  The face must already be aligned to
  the FFHQ five-point template (see :mod:`retalk.enhance.gfpgan`).
* Output image: (B, 3, S, S), RGB, nominally in [-1, 1] (not clamped).

Parameter and buffer names, shapes and registration order match the reference
implementation, so the released state dict loads with ``strict=True``.  This
module does no I/O: loading is the job of :mod:`retalk.checkpoints`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "GFPGANv1Clean",
    "StyleGAN2GeneratorCSFT",
    "StyleConv",
    "ToRGB",
    "ModulatedConv2d",
    "ConstantInput",
    "NormStyleCode",
    "ResBlock",
]

_LRELU_SLOPE = 0.2


def _log2_int(size: int) -> int:
    """``log2(size)`` for a power of two ``size`` (raises otherwise)."""
    if size < 4 or size & (size - 1):
        raise ValueError(f"out_size must be a power of two >= 4, got {size}")
    return size.bit_length() - 1


def _stylegan_channels(channel_multiplier: float, narrow: float) -> dict[int, int]:
    """Channel count of each StyleGAN2 resolution level (resolution → channels)."""
    wide = {4: 512, 8: 512, 16: 512, 32: 512}
    scaled = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    out = {res: int(c * narrow) for res, c in wide.items()}
    out.update({res: int(c * channel_multiplier * narrow) for res, c in scaled.items()})
    return out


# ----------------------------------------------------------------------------
# StyleGAN2 "clean" building blocks
# ----------------------------------------------------------------------------


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
        self.activate = nn.LeakyReLU(negative_slope=_LRELU_SLOPE, inplace=True)

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
        self.log_size = _log2_int(out_size)
        self.num_layers = 2 * (self.log_size - 2) + 1
        self.num_latent = 2 * self.log_size - 2

        mlp: list[nn.Module] = [NormStyleCode()]
        for _ in range(num_mlp):
            linear = nn.Linear(num_style_feat, num_style_feat, bias=True)
            nn.init.kaiming_normal_(linear.weight, a=_LRELU_SLOPE, mode="fan_in", nonlinearity="leaky_relu")
            nn.init.zeros_(linear.bias)
            mlp += [linear, nn.LeakyReLU(negative_slope=_LRELU_SLOPE, inplace=True)]
        self.style_mlp = nn.Sequential(*mlp)

        channels = _stylegan_channels(channel_multiplier, narrow)
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


# ----------------------------------------------------------------------------
# GFPGAN U-Net
# ----------------------------------------------------------------------------


class ResBlock(nn.Module):
    """Residual block that resizes by ``mode`` ('down': ×0.5, 'up': ×2; bilinear, align_corners=False).

    main: conv3×3 (in→in) → LReLU → resize → conv3×3 (in→out) → LReLU;
    skip: resize → conv1×1 (in→out, no bias).  Output = main + skip.
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str = "down") -> None:
        super().__init__()
        if mode not in ("down", "up"):
            raise ValueError(f"mode must be 'down' or 'up', got {mode!r}")
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.scale_factor = 0.5 if mode == "down" else 2.0

    def _resize(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        main = F.leaky_relu(self.conv1(x), _LRELU_SLOPE)
        main = F.leaky_relu(self.conv2(self._resize(main)), _LRELU_SLOPE)
        return main + self.skip(self._resize(x))


def _sft_branch(channels: int, out_channels: int) -> nn.Sequential:
    """Conv3×3 → LeakyReLU(0.2) → Conv3×3, producing one SFT scale or shift map."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, 1, 1),
        nn.LeakyReLU(_LRELU_SLOPE, True),
        nn.Conv2d(channels, out_channels, 3, 1, 1),
    )


class GFPGANv1Clean(nn.Module):
    """GFPGAN v1 (clean): U-Net + StyleGAN2 decoder with SFT.

    Defaults are those of the released ``GFPGANv1.3.pth`` (out_size 512,
    channel_multiplier 2, latent input, one W per layer, SFT on half the
    channels).

    Args:
        out_size: input/output side in pixels (power of two).
        num_style_feat: style (W) dimension.
        channel_multiplier: StyleGAN2 channel multiplier for resolutions ≥ 64.
        decoder_load_path: must be None: this module does no I/O (load a full state dict instead).
        fix_decoder: freeze the decoder's parameters (``requires_grad=False``).
        num_mlp: number of linear layers in the decoder's style MLP.
        input_is_latent: feed the predicted styles directly as W (skip the style MLP).
        different_w: predict one W per decoder layer (``2·log2(out_size) − 2`` of them).
        narrow: channel narrowing ratio (the U-Net uses half of the decoder's channels times this).
        sft_half: apply SFT to the second half of the decoder channels only.
    """

    def __init__(
        self,
        out_size: int = 512,
        num_style_feat: int = 512,
        channel_multiplier: float = 2,
        decoder_load_path: str | None = None,
        fix_decoder: bool = False,
        num_mlp: int = 8,
        input_is_latent: bool = True,
        different_w: bool = True,
        narrow: float = 1,
        sft_half: bool = True,
    ) -> None:
        super().__init__()
        if decoder_load_path is not None:
            raise ValueError("decoder_load_path is not supported: networks do no I/O; load a state dict instead")
        self.out_size = out_size
        self.input_is_latent = input_is_latent
        self.different_w = different_w
        self.num_style_feat = num_style_feat
        self.log_size = _log2_int(out_size)

        unet_ch = _stylegan_channels(channel_multiplier, narrow * 0.5)
        self.conv_body_first = nn.Conv2d(3, unet_ch[out_size], 1)

        self.conv_body_down = nn.ModuleList()
        ch = unet_ch[out_size]
        for log_res in range(self.log_size, 2, -1):  # out_size → 4
            nxt = unet_ch[2 ** (log_res - 1)]
            self.conv_body_down.append(ResBlock(ch, nxt, mode="down"))
            ch = nxt
        self.final_conv = nn.Conv2d(ch, unet_ch[4], 3, 1, 1)

        self.conv_body_up = nn.ModuleList()
        ch = unet_ch[4]
        for log_res in range(3, self.log_size + 1):  # 8 → out_size
            nxt = unet_ch[2**log_res]
            self.conv_body_up.append(ResBlock(ch, nxt, mode="up"))
            ch = nxt

        self.toRGB = nn.ModuleList(nn.Conv2d(unet_ch[2**r], 3, 1) for r in range(3, self.log_size + 1))

        n_w = (2 * self.log_size - 2) if different_w else 1
        self.final_linear = nn.Linear(unet_ch[4] * 4 * 4, n_w * num_style_feat)

        self.stylegan_decoder = StyleGAN2GeneratorCSFT(
            out_size=out_size,
            num_style_feat=num_style_feat,
            num_mlp=num_mlp,
            channel_multiplier=channel_multiplier,
            narrow=narrow,
            sft_half=sft_half,
        )
        if fix_decoder:
            for param in self.stylegan_decoder.parameters():
                param.requires_grad_(False)

        self.condition_scale = nn.ModuleList()
        self.condition_shift = nn.ModuleList()
        for log_res in range(3, self.log_size + 1):
            c = unet_ch[2**log_res]
            sft_out = c if sft_half else 2 * c
            self.condition_scale.append(_sft_branch(c, sft_out))
            self.condition_shift.append(_sft_branch(c, sft_out))

    def forward(
        self,
        x: Tensor,
        return_latents: bool = False,
        return_rgb: bool = True,
        randomize_noise: bool = True,
        **kwargs: object,
    ) -> tuple[Tensor, list[Tensor]]:
        """Restore aligned faces.

        Args:
            x: (B, 3, out_size, out_size) RGB in [-1, 1].
            return_latents: passed to the decoder; the latents are not returned (as in the reference).
            return_rgb: also return the U-Net's intermediate RGB predictions (8×8 … out_size).
            randomize_noise: fresh decoder noise per call (True, the reference default) or the
                stored ``noises`` buffers (False, deterministic).
            **kwargs: ignored (the reference wrapper passes e.g. ``weight=0.5``).

        Returns:
            ``(image (B, 3, out_size, out_size) RGB ≈ [-1, 1], out_rgbs)`` where ``out_rgbs`` is a list of
            (B, 3, r, r) for r = 8 … out_size when ``return_rgb`` else an empty list.
        """
        feat = F.leaky_relu(self.conv_body_first(x), _LRELU_SLOPE)
        skips: list[Tensor] = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.append(feat)
        feat = F.leaky_relu(self.final_conv(feat), _LRELU_SLOPE)

        style = self.final_linear(feat.flatten(1))
        if self.different_w:
            style = style.view(style.shape[0], -1, self.num_style_feat)

        conditions: list[Tensor] = []
        out_rgbs: list[Tensor] = []
        for i, block in enumerate(self.conv_body_up):
            feat = block(feat + skips[-1 - i])
            conditions.append(self.condition_scale[i](feat))
            conditions.append(self.condition_shift[i](feat))
            if return_rgb:
                out_rgbs.append(self.toRGB[i](feat))

        image, _ = self.stylegan_decoder(
            [style],
            conditions,
            return_latents=return_latents,
            input_is_latent=self.input_is_latent,
            randomize_noise=randomize_noise,
        )
        return image, out_rgbs
