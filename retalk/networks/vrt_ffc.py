"""Fast Fourier convolution blocks of VideoReTalking's L-Net decoder (``models/ffc.py`` + the FFC parts of
``models/base_blocks.py``), in the one configuration L-Net uses.

* :class:`FourierUnit` — 1×1 conv + BatchNorm + ReLU applied to the real/imaginary parts of the
  2-D real FFT (``norm='ortho'``) of a feature map, transformed back to the same size.
* :class:`SpectralTransform` — 1×1 conv to half the channels (+ BN + ReLU), Fourier unit with a
  residual, 1×1 conv back up (stride 1, no local Fourier unit: ``enable_lfu=False``).
* :class:`FFC` — a 3×3 convolution split into a local part (first ``C − int(0.75·C)``
  channels) and a global part (last ``int(0.75·C)`` channels): local→local, local→global,
  global→local are reflect-padded 3×3 convs without bias, global→global is the spectral transform.
* :class:`FineADAINLama` — FFC → ADAIN per branch (``bn_l``, ``bn_g``) → LeakyReLU(0.01).
* :class:`FFCResnetBlock` / :class:`FFCADAINResBlocks` — two FineADAINLama stages with a residual,
  on a single (B, C, H, W) tensor (split and concatenated inside).

The BatchNorms are ordinary ``nn.BatchNorm2d`` (eval mode uses the running statistics).  The
LeakyReLU slope is 0.01 (PyTorch's default) although L-Net configures 0.1 elsewhere: the
reference never passes it to these blocks.  Feature maps are float (B, C, H, W); the
conditioning feature ``z`` is (B, F, ...) and flattened to (B, F).  No I/O here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from retalk.networks.vrt_blocks import ADAIN

__all__ = ["FourierUnit", "SpectralTransform", "FFC", "FineADAINLama", "FFCResnetBlock", "FFCADAINResBlocks"]

FFC_SLOPE = 0.01
"""LeakyReLU slope inside FineADAINLama (the reference's unconfigured default)."""

GLOBAL_RATIO = 0.75
"""Share of the channels in FFC's global (Fourier) branch, input and output."""


class FourierUnit(nn.Module):
    """Pointwise conv in the frequency domain: (B, C_in, H, W) → (B, C_out, H, W).

    ``rfft2`` (ortho) → channels laid out as ``2c + 0`` real, ``2c + 1`` imaginary →
    ``conv_layer`` 1×1 (2·C_in → 2·C_out, no bias) → ``bn`` → ReLU → complex → ``irfft2``
    back to (H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels * 2, out_channels * 2, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        spectrum = torch.fft.rfft2(x, dim=(-2, -1), norm="ortho")  # (B, C, H, W//2+1) complex
        parts = torch.stack((spectrum.real, spectrum.imag), dim=2)  # (B, C, 2, H, W')
        parts = parts.reshape(batch, -1, height, parts.shape[-1])
        parts = self.relu(self.bn(self.conv_layer(parts)))
        parts = parts.reshape(batch, -1, 2, height, parts.shape[-1])
        spectrum = torch.complex(parts[:, :, 0].contiguous(), parts[:, :, 1].contiguous())
        return torch.fft.irfft2(spectrum, s=(height, width), dim=(-2, -1), norm="ortho")


class SpectralTransform(nn.Module):
    """Global branch of an FFC: ``conv2(y + fu(y))`` with ``y = conv1(x)``; (B, C_in, H, W) → (B, C_out, H, W).

    ``conv1`` = [Conv 1×1 C_in → C_out/2 (no bias), BatchNorm, ReLU]; ``fu`` = FourierUnit(C_out/2);
    ``conv2`` = Conv 1×1 C_out/2 → C_out (no bias).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, half, kernel_size=1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(half, half)
        self.conv2 = nn.Conv2d(half, out_channels, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Fast Fourier convolution (stride 1, no gate, reflect padding, no bias).

    Input ``(x_l, x_g)`` (or one tensor, all local — not used by L-Net): local
    (B, C_in − g_in, H, W) and global (B, g_in, H, W) with ``g_in = int(ratio_gin·C_in)``
    (:attr:`global_in_num`).  Returns ``(out_l, out_g)`` with
    ``out_l = convl2l(x_l) + convg2l(x_g)`` and ``out_g = convl2g(x_l) + convg2g(x_g)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        ratio_gin: float = GLOBAL_RATIO,
        ratio_gout: float = GLOBAL_RATIO,
        padding: int = 1,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        in_cg = int(in_channels * ratio_gin)
        in_cl = in_channels - in_cg
        out_cg = int(out_channels * ratio_gout)
        out_cl = out_channels - out_cg
        if min(in_cg, in_cl, out_cg, out_cl) == 0:
            raise ValueError("FFC here needs non-empty local and global parts on both sides")
        self.ratio_gin = ratio_gin
        self.ratio_gout = ratio_gout
        self.global_in_num = in_cg

        def conv(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, kernel_size, 1, padding, bias=False, padding_mode=padding_type)

        self.convl2l = conv(in_cl, out_cl)
        self.convl2g = conv(in_cl, out_cg)
        self.convg2l = conv(in_cg, out_cl)
        self.convg2g = SpectralTransform(in_cg, out_cg)

    def forward(self, x: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x_l, x_g = x
        out_l = self.convl2l(x_l) + self.convg2l(x_g)
        out_g = self.convl2g(x_l) + self.convg2g(x_g)
        return out_l, out_g


class FineADAINLama(nn.Module):
    """FFC(C → C, 3×3) → ADAIN on each branch (``bn_l``, ``bn_g``, conditioned on ``z``) → LeakyReLU(0.01).

    ``forward((x_l, x_g), z)`` → ``(y_l, y_g)`` with the same channel split.
    """

    def __init__(self, input_nc: int, feature_nc: int) -> None:
        super().__init__()
        self.actvn = nn.LeakyReLU(FFC_SLOPE)
        self.ffc = FFC(input_nc, input_nc, 3, GLOBAL_RATIO, GLOBAL_RATIO, padding=1, padding_type="reflect")
        global_channels = int(input_nc * GLOBAL_RATIO)
        self.bn_l = ADAIN(input_nc - global_channels, feature_nc)
        self.bn_g = ADAIN(global_channels, feature_nc)

    def forward(self, x: tuple[Tensor, Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
        x_l, x_g = self.ffc(x)
        return self.actvn(self.bn_l(x_l, z)), self.actvn(self.bn_g(x_g, z))


class FFCResnetBlock(nn.Module):
    """Residual FFC block on one tensor: (B, C, H, W), z (B, F, ...) → (B, C, H, W).

    The last ``int(0.75·C)`` channels are the global part; both parts go
    through ``conv1`` then ``conv2`` (FineADAINLama), get their input added back,
    and are concatenated again (local first).
    """

    def __init__(self, dim: int, feature_dim: int) -> None:
        super().__init__()
        self.conv1 = FineADAINLama(dim, feature_dim)
        self.conv2 = FineADAINLama(dim, feature_dim)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        split = self.conv1.ffc.global_in_num
        id_l, id_g = x[:, :-split], x[:, -split:]
        x_l, x_g = self.conv1((id_l, id_g), z)
        x_l, x_g = self.conv2((x_l, x_g), z)
        return torch.cat((id_l + x_l, id_g + x_g), dim=1)


class FFCADAINResBlocks(nn.Module):
    """``num_block`` :class:`FFCResnetBlock` named ``res0`` … applied in order; (B, C, H, W) → same."""

    def __init__(self, num_block: int, input_nc: int, feature_nc: int) -> None:
        super().__init__()
        self.num_block = num_block
        for i in range(num_block):
            self.add_module(f"res{i}", FFCResnetBlock(input_nc, feature_nc))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        for i in range(self.num_block):
            x = getattr(self, f"res{i}")(x, z)
        return x
