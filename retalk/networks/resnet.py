"""ResNet-50 trunk with torchvision's module names (no torchvision needed).

The ImageNet ResNet "v1.5" layout (stride on the 3x3 convolution of each
bottleneck), as torchvision defines it: ``conv1``, ``bn1``, ``layer1`` ..
``layer4`` (``Bottleneck`` blocks with ``conv1..3``, ``bn1..3`` and an
optional ``downsample.0`` 1x1 convolution + ``downsample.1`` batch norm).
The classifier ``fc`` is not part of it: :class:`ResNet50` returns the
global-average-pooled features.  Released networks that embed a
torchvision ResNet-50 under some prefix (Deep3DFaceRecon's ``backbone.``)
hold exactly these keys.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Bottleneck", "ResNet50"]

#: Bottleneck blocks per stage of ResNet-50.
_BLOCKS = (3, 4, 6, 3)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand (x4), BatchNorm after each, residual, ReLU.

    Args:
        inplanes: input channels.
        planes: bottleneck width; the output has ``4 * planes`` channels.
        stride: spatial stride of the 3x3 convolution (1 or 2).
        downsample: projection of the identity path when shape changes
            (``nn.Sequential(conv1x1, BatchNorm2d)``), else ``None``.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(y + identity)


class ResNet50(nn.Module):
    """ResNet-50 feature extractor: (B, 3, H, W) -> (B, 2048, 1, 1).

    7x7/2 convolution, BN, ReLU, 3x3/2 max pool, four bottleneck stages
    (64, 128, 256, 512 wide; strides 1, 2, 2, 2), global average pool.
    Total stride 32 (224 -> 7 before pooling).  Any input scaling is the
    caller's (Deep3DFaceRecon feeds RGB in [0, 1]).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), _BLOCKS)):
            stride = 1 if index == 0 else 2
            layers: list[nn.Module] = []
            for block in range(blocks):
                downsample = None
                if block == 0 and (stride != 1 or inplanes != planes * Bottleneck.expansion):
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                        nn.BatchNorm2d(planes * Bottleneck.expansion),
                    )
                layers.append(Bottleneck(inplanes, planes, stride if block == 0 else 1, downsample))
                inplanes = planes * Bottleneck.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, 2048, 1, 1) of images ``x`` (B, 3, H, W)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)
