"""GFPGAN v1 "clean" architecture (the one released as ``GFPGANv1.3.pth``).

A U-Net encoder/decoder predicts, from a degraded aligned face, (a) one style
vector per StyleGAN2 layer and (b) per-level spatial feature transforms (scale,
shift).  A StyleGAN2 generator (the "clean" variant: plain PyTorch ops, no
fused CUDA kernels) renders the restored face from those styles, with the
second half of its channels modulated by the transforms after the first
convolution of each resolution level.  The decoder and its building blocks are
in :mod:`retalk.networks.stylegan2_clean`; this module holds the U-Net
encoder/decoder, the SFT condition layers and :class:`GFPGANv1Clean`.

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

from torch import Tensor, nn
from torch.nn import functional as F

from retalk.networks.stylegan2_clean import (  # noqa: F401 - the decoder blocks stay importable from here
    LRELU_SLOPE,
    ConstantInput,
    ModulatedConv2d,
    NormStyleCode,
    StyleConv,
    StyleGAN2GeneratorCSFT,
    ToRGB,
    log2_int,
    stylegan_channels,
)

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
        main = F.leaky_relu(self.conv1(x), LRELU_SLOPE)
        main = F.leaky_relu(self.conv2(self._resize(main)), LRELU_SLOPE)
        return main + self.skip(self._resize(x))


def _sft_branch(channels: int, out_channels: int) -> nn.Sequential:
    """Conv3×3 → LeakyReLU(0.2) → Conv3×3, producing one SFT scale or shift map."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, 1, 1),
        nn.LeakyReLU(LRELU_SLOPE, True),
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
        self.log_size = log2_int(out_size)

        unet_ch = stylegan_channels(channel_multiplier, narrow * 0.5)
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
        feat = F.leaky_relu(self.conv_body_first(x), LRELU_SLOPE)
        skips: list[Tensor] = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.append(feat)
        feat = F.leaky_relu(self.final_conv(feat), LRELU_SLOPE)

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
