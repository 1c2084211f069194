"""Building blocks shared by SadTalker's face renderer networks (key-point detector, generator).

These are the convolution blocks of SadTalker's ``facerender`` (face-vid2vid style) networks,
with the same state-dict names and shapes as the release.  SadTalker's
``SynchronizedBatchNorm{2,3}d`` stores plain BatchNorm keys and runs ``F.batch_norm`` with the
running statistics at inference, so plain :class:`torch.nn.BatchNorm2d` / ``BatchNorm3d`` are used.

Conventions kept from the release (they change the numbers):

* upsampling is nearest-neighbour (``F.interpolate`` default mode);
* coordinates are normalised to ``[-1, 1]`` over ``n`` samples as ``2 * i / (n - 1) - 1``, in
  ``(x, y, z)`` order (x = width, y = height, z = depth), as ``grid_sample`` expects.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AntiAliasInterpolation2d", "DownBlock2d", "DownBlock3d", "Hourglass", "ResBlock3d",
    "SameBlock2d", "UpBlock3d", "coordinate_grid_3d", "kp2gaussian",
]


def coordinate_grid_3d(depth: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Normalised sampling grid of shape ``(D, H, W, 3)`` holding ``(x, y, z)`` in ``[-1, 1]``.

    Args:
        depth, height, width: grid size (each ≥ 2).
        like: a tensor whose dtype and device the grid takes.
    """
    def axis(n: int) -> torch.Tensor:
        return 2 * (torch.arange(n, dtype=like.dtype, device=like.device) / (n - 1)) - 1

    x = axis(width).view(1, 1, width).expand(depth, height, width)
    y = axis(height).view(1, height, 1).expand(depth, height, width)
    z = axis(depth).view(depth, 1, 1).expand(depth, height, width)
    return torch.stack([x, y, z], dim=3)


def kp2gaussian(kp: torch.Tensor, spatial_size: tuple[int, int, int], kp_variance: float) -> torch.Tensor:
    """Unnormalised 3-D Gaussians around key points.

    Args:
        kp: ``(B, K, 3)`` key points ``(x, y, z)`` in ``[-1, 1]``.
        spatial_size: ``(D, H, W)`` of the output volume.
        kp_variance: variance of every Gaussian (normalised units²; SadTalker uses 0.01).

    Returns:
        ``(B, K, D, H, W)``: ``exp(-|grid - kp|² / (2 · variance))``.
    """
    grid = coordinate_grid_3d(*spatial_size, like=kp)
    diff = grid.view(1, 1, *grid.shape) - kp.view(kp.shape[0], kp.shape[1], 1, 1, 1, 3)
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / kp_variance)


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then stride-``1/scale`` subsampling (band-limited downscaling).

    The kernel is a **stored** buffer ``weight`` ``(C, 1, k, k)`` (the release holds it; it is
    recomputed here only so that a freshly built module works): σ = (1/scale − 1)/2,
    k = 2·round(4σ) + 1, normalised to sum 1.  Input ``(B, C, H, W)`` → ``(B, C, ⌈H·scale⌉, ⌈W·scale⌉)``.
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        centre = (size - 1) / 2
        ramp = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((ramp - centre) ** 2) / (2 * sigma ** 2))
        kernel = g.view(-1, 1) * g.view(1, -1)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.scale = scale
        self.step = int(1 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight, groups=self.groups)
        return out[:, :, ::self.step, ::self.step]


class DownBlock2d(nn.Module):
    """conv → BatchNorm → ReLU → 2×2 average pool: ``(B, Cin, H, W)`` → ``(B, Cout, H/2, W/2)``."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int | tuple[int, int] = 3,
                 padding: int | tuple[int, int] = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class DownBlock3d(nn.Module):
    """conv3d → BatchNorm → ReLU → (1,2,2) average pool: halves H and W, keeps depth."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class UpBlock3d(nn.Module):
    """nearest ×(1,2,2) → conv3d → BatchNorm → ReLU: doubles H and W, keeps depth."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class SameBlock2d(nn.Module):
    """conv → BatchNorm → ReLU (or LeakyReLU 0.01 when ``lrelu``), same spatial size."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int | tuple[int, int] = 3,
                 padding: int | tuple[int, int] = 1, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.ac: nn.Module = nn.LeakyReLU() if lrelu else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ac(self.norm(self.conv(x)))


class ResBlock3d(nn.Module):
    """Pre-activation 3-D residual block: ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_features, in_features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(in_features, in_features, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(in_features, affine=True)
        self.norm2 = nn.BatchNorm3d(in_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class _Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(in_features if i == 0 else min(max_features, block_expansion * 2 ** i),
                        min(max_features, block_expansion * 2 ** (i + 1)))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class _Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            width = min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(UpBlock3d((1 if i == num_blocks - 1 else 2) * width,
                                    min(max_features, block_expansion * 2 ** i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        out = skips[-1]
        for i, block in enumerate(self.up_blocks):
            out = torch.cat([block(out), skips[-2 - i]], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    """3-D U-Net: ``num_blocks`` (1,2,2)-down blocks, then up blocks with skip concatenation.

    ``(B, in_features, D, H, W)`` → ``(B, block_expansion + in_features, D, H, W)``; H and W must
    be divisible by ``2**num_blocks``.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        self.encoder = _Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = _Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
