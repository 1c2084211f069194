"""The residual U-Net over pose sequences used inside SadTalker's Audio2Pose CVAE.

Key names (``input_layer``, ``residual_conv_1`` ... ``output_layer``) are the
release's.  It works on a one-channel "image" of ``(frames, 6)`` pose
values: the frame axis is halved three times (stride ``(2, 1)``) and
restored by ``(2, 1)`` transposed convolutions; the pose axis keeps its size.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualConv", "Upsample", "ResUnet"]


class ResidualConv(nn.Module):
    """Pre-activation residual block: ``conv_block`` + ``conv_skip``.

    ``conv_block``: BN, ReLU, conv 3x3 (stride), BN, ReLU, conv 3x3; ``conv_skip``: conv 3x3 (stride), BN.
    """

    def __init__(self, input_dim: int, output_dim: int, stride: int | tuple[int, int], padding: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.BatchNorm2d(input_dim),
            nn.ReLU(),
            nn.Conv2d(input_dim, output_dim, kernel_size=3, stride=stride, padding=padding),
            nn.BatchNorm2d(output_dim),
            nn.ReLU(),
            nn.Conv2d(output_dim, output_dim, kernel_size=3, padding=1),
        )
        self.conv_skip = nn.Sequential(
            nn.Conv2d(input_dim, output_dim, kernel_size=3, stride=stride, padding=1),
            nn.BatchNorm2d(output_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x) + self.conv_skip(x)


class Upsample(nn.Module):
    """A transposed convolution (``upsample``) that multiplies the size by its stride."""

    def __init__(self, input_dim: int, output_dim: int, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(input_dim, output_dim, kernel_size=kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)


class ResUnet(nn.Module):
    """``(B, 1, F, 6)`` -> ``(B, 1, F, 6)`` in ``(0, 1)`` (sigmoid); ``F`` divisible by 8 (32 in SadTalker).

    Channels 32 -> 64 -> 128 -> 256 (bridge) on the way down, back to 32
    with skip concatenations, then a 1x1 convolution to one channel.
    """

    def __init__(self, channel: int = 1, filters: tuple[int, int, int, int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        f0, f1, f2, f3 = filters
        self.input_layer = nn.Sequential(
            nn.Conv2d(channel, f0, kernel_size=3, padding=1),
            nn.BatchNorm2d(f0),
            nn.ReLU(),
            nn.Conv2d(f0, f0, kernel_size=3, padding=1),
        )
        self.input_skip = nn.Sequential(nn.Conv2d(channel, f0, kernel_size=3, padding=1))
        self.residual_conv_1 = ResidualConv(f0, f1, stride=(2, 1), padding=1)
        self.residual_conv_2 = ResidualConv(f1, f2, stride=(2, 1), padding=1)
        self.bridge = ResidualConv(f2, f3, stride=(2, 1), padding=1)
        self.upsample_1 = Upsample(f3, f3, kernel=(2, 1), stride=(2, 1))
        self.up_residual_conv1 = ResidualConv(f3 + f2, f2, stride=1, padding=1)
        self.upsample_2 = Upsample(f2, f2, kernel=(2, 1), stride=(2, 1))
        self.up_residual_conv2 = ResidualConv(f2 + f1, f1, stride=1, padding=1)
        self.upsample_3 = Upsample(f1, f1, kernel=(2, 1), stride=(2, 1))
        self.up_residual_conv3 = ResidualConv(f1 + f0, f0, stride=1, padding=1)
        self.output_layer = nn.Sequential(nn.Conv2d(f0, 1, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.input_layer(x) + self.input_skip(x)
        x2 = self.residual_conv_1(x1)
        x3 = self.residual_conv_2(x2)
        x4 = self.bridge(x3)
        x6 = self.up_residual_conv1(torch.cat([self.upsample_1(x4), x3], dim=1))
        x8 = self.up_residual_conv2(torch.cat([self.upsample_2(x6), x2], dim=1))
        x10 = self.up_residual_conv3(torch.cat([self.upsample_3(x8), x1], dim=1))
        return self.output_layer(x10)
