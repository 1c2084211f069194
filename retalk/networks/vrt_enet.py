"""VideoReTalking's E-Net (``models/ENet.py``): L-Net at 96×96, then a StyleGAN2-style ×4 upsampler to 384×384.

A style code is computed from the reference face (GFPGAN-like down-sampling ResBlocks); the
L-Net sub-module ``low_res`` produces the 96×96 mouth; two styled levels (StyleConv ×2 + ToRGB,
the GFPGAN "clean" blocks of :mod:`retalk.networks.stylegan2_clean`) enlarge it ×4.

Call (release configuration ``ENet()``, i.e. ``ENet(lnet=LNet())``)::

    out, low_res = enet(audio, faces, gt)

* ``audio``: (B, 1, 80, 16) mel window (see :mod:`retalk.networks.vrt_lnet`).
* ``faces``: (B, 6, H, W) float, **BGR** in [0, 1]: masked original ‖ reference (384×384 in
  the reference pipeline; any size works, everything is resized inside).
* ``gt``: (B, 3, H, W) the reference face, BGR [0, 1].
* ``out``: (B, 3, 384, 384) BGR, nominally [0, 1] but **not** clamped (the caller clamps).
* ``low_res``: (B, 3, 96, 96) the L-Net output, BGR in (0, 1).

Noise: each of the four StyleConvs adds ``weight · n`` with a map ``n`` (B, 1, S, S), S = 200,
200, 400, 400.  With ``noise=None`` fresh N(0, 1) maps are drawn from torch's global RNG in that
order, exactly as the reference does (seeding torch identically reproduces it bit for bit); for
reproducible output pass ``noise=enet.make_noise(B, generator=torch.Generator().manual_seed(s))``
(the same draws a global seed ``s`` would give) or any maps of those shapes.

5-D inputs (audio (B, T, 1, 80, 16), faces (B, 6, T, H, W), gt (B, 3, T, H, W)) are folded
time-major into the batch; then ``out`` is (B, 3, T, 384, 384) and ``low_res`` is resized
(nearest) to 384 and also (B, 3, T, 384, 384), as in the reference.  No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from retalk.networks.gfpgan import ResBlock
from retalk.networks.stylegan2_clean import LRELU_SLOPE, StyleConv, ToRGB
from retalk.networks.vrt_lnet import LNet

__all__ = ["ENet", "NOISE_SIZES"]

NOISE_SIZES = (200, 200, 400, 400)
"""Side of each StyleConv's noise map, in draw order (96 + 2·2 padding, ×2, ×4)."""

_STYLE_INPUT = 256  # the reference face is resized to this for the style code
_LNET_INPUT = 96  # L-Net's input size
_PAD = 2  # reflect padding of the L-Net output before upsampling
_CROP = 8  # removed from each side after ×4 (= 2 · padding · 2)


def _fold(x: Tensor, time_dim: int) -> Tensor:
    """Merge ``time_dim`` into the batch, time-major (index ``t·B + b``)."""
    x = x.movedim(time_dim, 0)
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class ENet(nn.Module):
    """VideoReTalking E-Net; see the module docstring for the call.

    Args:
        num_style_feat: style code width (512 in the release).
        lnet: the L-Net used as ``low_res`` (its parameters are frozen, as in the reference);
            a release ``LNet()`` when None.
        concat: must be False (the reference's ``concat=True`` variant needs an L-Net that also
            returns features; it was not released).
    """

    def __init__(self, num_style_feat: int = 512, lnet: LNet | None = None, concat: bool = False) -> None:
        super().__init__()
        if concat:
            raise ValueError("ENet(concat=True) is not supported (no released L-Net returns features)")
        self.low_res = lnet if lnet is not None else LNet()
        for param in self.low_res.parameters():
            param.requires_grad = False

        channels = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}
        self.num_style_feat = num_style_feat
        self.log_size = 8
        self.conv_body_first = nn.Conv2d(3, channels[128], 1)
        self.conv_body_down = nn.ModuleList()
        in_channels = channels[128]
        for level in range(8, 2, -1):  # 256 → 4 in six halvings
            out_channels = channels[2 ** (level - 1)]
            self.conv_body_down.append(ResBlock(in_channels, out_channels, mode="down"))
            in_channels = out_channels
        self.final_linear = nn.Linear(channels[4] * 4 * 4, num_style_feat)
        self.final_conv = nn.Conv2d(in_channels, channels[4], 3, 1, 1)

        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()  # empty in the reference too (no stored noise)
        in_channels = 3
        for level in (7, 8):
            out_channels = channels[2**level]
            self.style_convs.append(
                StyleConv(in_channels, out_channels, 3, num_style_feat, demodulate=True, sample_mode="upsample")
            )
            self.style_convs.append(StyleConv(out_channels, out_channels, 3, num_style_feat, demodulate=True))
            self.to_rgbs.append(ToRGB(out_channels, num_style_feat, upsample=True))
            in_channels = out_channels

    def make_noise(
        self, batch: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> list[Tensor]:
        """The four StyleConv noise maps (batch, 1, S, S), S in :data:`NOISE_SIZES`, N(0, 1).

        Drawn in the order the reference draws them, so ``generator`` seeded with ``s`` gives the
        maps that ``torch.manual_seed(s)`` before a ``noise=None`` call would (same device).
        ``generator`` must live on ``device`` (a CPU generator for CPU maps); for a GPU network,
        drawing on the CPU and moving the maps with ``.to()`` keeps the output device-independent.
        """
        return [
            torch.randn(batch, 1, size, size, generator=generator, device=device) for size in NOISE_SIZES
        ]

    def style_code(self, ref: Tensor) -> Tensor:
        """(B, 3, H, W) reference face → style code (B, 1, num_style_feat)."""
        feat = F.interpolate(ref, size=(_STYLE_INPUT, _STYLE_INPUT), mode="bilinear", align_corners=False)
        feat = F.leaky_relu(self.conv_body_first(feat), LRELU_SLOPE)
        for block in self.conv_body_down:
            feat = block(feat)
        feat = F.leaky_relu(self.final_conv(feat), LRELU_SLOPE)
        code = self.final_linear(feat.reshape(feat.shape[0], -1))
        return code.reshape(code.shape[0], -1, self.num_style_feat)

    def forward(
        self,
        audio_sequences: Tensor,
        face_sequences: Tensor,
        gt_sequences: Tensor,
        noise: Sequence[Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """See the module docstring; ``noise``: four maps as from :meth:`make_noise`, or None (fresh)."""
        batch = audio_sequences.shape[0]
        sequence = face_sequences.dim() > 4
        inp, ref = torch.split(face_sequences, 3, dim=1)
        if sequence:
            audio_sequences = _fold(audio_sequences, 1)
            inp, ref, gt_sequences = _fold(inp, 2), _fold(ref, 2), _fold(gt_sequences, 2)
        if noise is not None and len(noise) != len(NOISE_SIZES):
            raise ValueError(f"noise must hold {len(NOISE_SIZES)} maps, got {len(noise)}")
        maps: Sequence[Tensor | None] = noise if noise is not None else [None] * len(NOISE_SIZES)

        style = self.style_code(ref)
        lnet_input = F.interpolate(
            torch.cat([inp, gt_sequences], dim=1), size=(_LNET_INPUT, _LNET_INPUT), mode="bilinear",
            align_corners=False,
        )
        low_res_img = self.low_res(audio_sequences, lnet_input)

        out = F.pad(low_res_img, (_PAD, _PAD, _PAD, _PAD), mode="reflect")
        skip = out
        for level, to_rgb in enumerate(self.to_rgbs):
            out = self.style_convs[2 * level](out, style, noise=maps[2 * level])
            out = self.style_convs[2 * level + 1](out, style, noise=maps[2 * level + 1])
            skip = to_rgb(out, style, skip)
        outputs = skip[:, :, _CROP:-_CROP, _CROP:-_CROP]

        if sequence:
            outputs = torch.stack(torch.split(outputs, batch, dim=0), dim=2)
            low_res_img = F.interpolate(low_res_img, outputs.shape[3:])
            low_res_img = torch.stack(torch.split(low_res_img, batch, dim=0), dim=2)
        return outputs, low_res_img
