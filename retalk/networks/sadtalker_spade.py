"""SadTalker's SPADE decoder: the image half of the face renderer (``generator.decoder.*``).

The decoder's widths are hard-coded in the release (input 256 channels at S/4, six 512-channel
SPADE residual blocks, then ×2 → 256 and ×2 → 64 channels, 3×3 conv to RGB, sigmoid).  Its
residual convolutions are spectrally normalised: the release stores ``weight_orig``,
``weight_u`` and ``weight_v`` instead of ``weight``; at inference the weight is
``weight_orig / σ`` with ``σ = uᵀ (W v)`` from the **stored** ``u``, ``v`` (no power iteration;
this module is inference-only and behaves the same in train mode).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from retalk.networks.sadtalker_spade_fast import FastDecoderCache, block_forward

__all__ = ["SpectralConv2d", "SPADE", "SPADEResnetBlock", "SPADEDecoder"]


class SpectralConv2d(nn.Module):
    """A 2-D convolution whose weight is divided by its stored spectral-norm estimate.

    State: ``bias`` (when ``bias``), ``weight_orig`` ``(Cout, Cin, k, k)``, buffers ``weight_u``
    ``(Cout,)`` and ``weight_v`` ``(Cin·k·k,)`` (the release's names and order).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.padding = padding
        self.dilation = dilation
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("bias", None)
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)
        fan = in_channels * kernel_size * kernel_size
        self.register_buffer("weight_u", F.normalize(torch.randn(out_channels), dim=0, eps=1e-12))
        self.register_buffer("weight_v", F.normalize(torch.randn(fan), dim=0, eps=1e-12))

    def weight(self) -> torch.Tensor:
        """The effective weight ``weight_orig / (uᵀ W v)``."""
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding, dilation=self.dilation)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``InstanceNorm(x) · (1 + γ(seg)) + β(seg)``.

    ``x`` ``(B, norm_nc, H, W)``; ``seg`` ``(B, label_nc, h, w)`` is resized to ``(H, W)`` by
    nearest neighbour, then a shared 3×3 conv (128 channels, ReLU) feeds the γ and β 3×3 convs.
    The instance norm has no affine parameters and no running statistics (eps 1e-5).
    """

    def __init__(self, norm_nc: int, label_nc: int) -> None:
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        hidden = 128
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        seg = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """SPADE residual block with spectral-normed convs and LeakyReLU(0.2).

    ``(B, fin, H, W)``, seg → ``(B, fout, H, W)``; a learned 1×1 shortcut (no bias) when
    ``fin != fout``.
    """

    def __init__(self, fin: int, fout: int, label_nc: int) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = SpectralConv2d(fin, fmiddle, kernel_size=3, padding=1)
        self.conv_1 = SpectralConv2d(fmiddle, fout, kernel_size=3, padding=1)
        if self.learned_shortcut:
            self.conv_s = SpectralConv2d(fin, fout, kernel_size=1, bias=False)
        self.norm_0 = SPADE(fin, label_nc)
        self.norm_1 = SPADE(fmiddle, label_nc)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 2e-1))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 2e-1))
        return x_s + dx


class SPADEDecoder(nn.Module):
    """Feature map → image, conditioned on itself (the SPADE segmentation input is the input).

    Input ``(B, 256, S/4, S/4)``; output ``(B, 3, S, S)`` RGB in ``[0, 1]`` (sigmoid).
    """

    def __init__(self) -> None:
        super().__init__()
        ic, oc, label_nc = 256, 64, 256
        self.fc = nn.Conv2d(ic, 2 * ic, 3, padding=1)
        for i in range(6):
            setattr(self, f"G_middle_{i}", SPADEResnetBlock(2 * ic, 2 * ic, label_nc))
        self.up_0 = SPADEResnetBlock(2 * ic, ic, label_nc)
        self.up_1 = SPADEResnetBlock(ic, oc, label_nc)
        self.conv_img = nn.Conv2d(oc, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self._fast_cache = FastDecoderCache()

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """``(B, 256, S/4, S/4)`` → ``(B, 3, S, S)``: :meth:`forward_plain`'s maths with fewer multiplications
        (:mod:`retalk.networks.sadtalker_spade_fast`; equal to float32 rounding)."""
        seg = feature
        x = self.fc(feature)
        for i in range(6):
            x = block_forward(getattr(self, f"G_middle_{i}"), x, seg, False, self._fast_cache, f"G_middle_{i}")
        x = block_forward(self.up_0, x, seg, True, self._fast_cache, "up_0")
        x = block_forward(self.up_1, x, seg, True, self._fast_cache, "up_1")
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 2e-1)))

    def forward_plain(self, feature: torch.Tensor) -> torch.Tensor:
        """The release's op sequence (each SPADE on the upsampled segmentation): the reference's cost."""
        seg = feature
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(self.up(x), seg)
        x = self.up_1(self.up(x), seg)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 2e-1)))
