"""SyncNet v2 (``syncnet_v2.model``), the network behind the LSE-D / LSE-C scores.

A plain :class:`torch.nn.Module` whose state-dict names and shapes match the
released ``syncnet_v2.model`` (the ``S(num_layers_in_fc_layers=1024)`` model
of the original SyncNet code).  No I/O here: see :mod:`retalk.checkpoints`.

Inputs:

* audio: ``(N, 1, 13, 20)`` MFCC block: 13 cepstra x 20 frames at 100 Hz
  (0.2 s), computed from int16-scale samples (no normalisation);
* video: ``(N, 3, 5, 224, 224)`` five consecutive BGR frames, float in
  ``[0, 255]`` (no normalisation), 224x224 face crops.

Both embeddings are 1024-d and are **not** normalised; the metrics use the
Euclidean distance between them.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SyncNetV2"]


def _bn_relu_2d(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]


def _bn_relu_3d(c: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]


def _fc_head(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, width))


class SyncNetV2(nn.Module):
    """Audio and lip streams of SyncNet v2.

    Sequential indices are kept as in the release (e.g. ``netcnnaud.18`` is
    the last audio convolution) so that ``syncnet_v2.model`` loads strictly.

    Args:
        num_layers_in_fc_layers: embedding width (1024 in the release).
    """

    def __init__(self, num_layers_in_fc_layers: int = 1024) -> None:
        super().__init__()
        # Audio: 13x20 -> (pool 3x3 s(1,2)) 11x9 -> (pool 3x3 s2) 5x4 -> (conv 5x4) 1x1.
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1), *_bn_relu_2d(64),
            nn.MaxPool2d(kernel_size=1, stride=1),
            nn.Conv2d(64, 192, kernel_size=3, stride=1, padding=1), *_bn_relu_2d(192),
            nn.MaxPool2d(kernel_size=3, stride=(1, 2)),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), *_bn_relu_2d(384),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), *_bn_relu_2d(256),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), *_bn_relu_2d(256),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 512, kernel_size=(5, 4), padding=0), nn.BatchNorm2d(512), nn.ReLU(),
        )
        self.netfcaud = _fc_head(num_layers_in_fc_layers)
        self.netfclip = _fc_head(num_layers_in_fc_layers)
        # Lips: 5 frames x 224 -> 109 -> 54 -> 26 -> 13 -> 6 -> 1 (spatial), time 5 -> 1.
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, 96, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0), *_bn_relu_3d(96),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(96, 256, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), *_bn_relu_3d(256),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)), *_bn_relu_3d(256),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)), *_bn_relu_3d(256),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)), *_bn_relu_3d(256),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(256, 512, kernel_size=(1, 6, 6), padding=0), *_bn_relu_3d(512),
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """MFCC blocks ``(N, 1, 13, 20)`` -> audio embeddings ``(N, 1024)``."""
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """Frame stacks ``(N, 3, 5, 224, 224)`` -> lip embeddings ``(N, 1024)``."""
        return self.netfclip(self.forward_lipfeat(x))

    def forward_lipfeat(self, x: torch.Tensor) -> torch.Tensor:
        """Frame stacks ``(N, 3, 5, 224, 224)`` -> convolutional lip features ``(N, 512)``."""
        return self.netcnnlip(x).flatten(1)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both embeddings at once: ``(forward_aud(audio), forward_lip(video))``."""
        return self.forward_aud(audio), self.forward_lip(video)
