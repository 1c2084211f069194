"""SadTalker's canonical key-point detector (``kp_extractor`` in the release bundle).

A plain :class:`torch.nn.Module` whose state dict matches ``kp_extractor.*`` of
``SadTalker_V0.0.2_256.safetensors`` / ``_512`` and ``kp_detector`` of the legacy
``facevid2vid_00189-model.pth.tar`` (75 entries).  No I/O here: see :mod:`retalk.checkpoints`.

``KPDetector()(img)['value']``: ``img`` ``(B, 3, S, S)`` RGB in ``[0, 1]`` (S = 256 or 512) →
``(B, 15, 3)`` canonical key points ``(x, y, z)`` in ``[-1, 1]``.

Flow: Gaussian anti-alias ×1/4 (the stored ``down.weight``), a 2-D encoder (5 down blocks), a 1×1
conv to 16384 channels viewed as a ``(1024, 16, S/128, S/128)`` volume, a 3-D decoder (5 nearest
×(1,2,2) up blocks) to ``(32, 16, S/4, S/4)``, a 3×3×3 conv to 15 heat maps, softmax of
``heat / temperature`` over all voxels, and the expected coordinate (soft-argmax).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from retalk.networks.sadtalker_blocks import AntiAliasInterpolation2d, DownBlock2d, UpBlock3d, coordinate_grid_3d

__all__ = ["KPHourglass", "KPDetector"]


class KPHourglass(nn.Module):
    """2-D encoder → reshape to 3-D → 3-D decoder.

    ``(B, in_features, H, W)`` → ``(B, out_filters, reshape_depth, H, W)`` with
    ``out_filters = min(max_features, block_expansion)``; H, W divisible by ``2**num_blocks``.
    """

    def __init__(self, block_expansion: int, in_features: int, reshape_features: int, reshape_depth: int,
                 num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        self.down_blocks = nn.Sequential()
        for i in range(num_blocks):
            self.down_blocks.add_module(f"down{i}", DownBlock2d(
                in_features if i == 0 else min(max_features, block_expansion * 2 ** i),
                min(max_features, block_expansion * 2 ** (i + 1))))
        self.conv = nn.Conv2d(min(max_features, block_expansion * 2 ** num_blocks), reshape_features, kernel_size=1)
        self.up_blocks = nn.Sequential()
        out_filters = in_features
        for i in range(num_blocks):
            out_filters = min(max_features, block_expansion * 2 ** (num_blocks - i - 1))
            self.up_blocks.add_module(f"up{i}", UpBlock3d(
                min(max_features, block_expansion * 2 ** (num_blocks - i)), out_filters))
        self.reshape_depth = reshape_depth
        self.out_filters = out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.down_blocks(x))
        bs, c, h, w = out.shape
        out = out.view(bs, c // self.reshape_depth, self.reshape_depth, h, w)
        return self.up_blocks(out)


class KPDetector(nn.Module):
    """Canonical 3-D key points of a face image (face-vid2vid's detector, no Jacobians).

    Defaults are the released configuration (``facerender.yaml``).  ``forward(x)`` takes
    ``(B, image_channel, S, S)`` RGB in ``[0, 1]`` and returns ``{'value': (B, num_kp, 3)}``,
    ``(x, y, z)`` in ``[-1, 1]``; S·scale_factor must be divisible by ``2**num_blocks``.
    """

    def __init__(self, block_expansion: int = 32, feature_channel: int = 32, num_kp: int = 15,
                 image_channel: int = 3, max_features: int = 1024, reshape_channel: int = 16384,
                 reshape_depth: int = 16, num_blocks: int = 5, temperature: float = 0.1,
                 estimate_jacobian: bool = False, scale_factor: float = 0.25) -> None:
        super().__init__()
        if estimate_jacobian:
            raise ValueError("KPDetector: Jacobian estimation is not part of SadTalker's release")
        del feature_channel  # part of the release's signature; unused by the detector
        self.predictor = KPHourglass(block_expansion, in_features=image_channel, max_features=max_features,
                                     reshape_features=reshape_channel, reshape_depth=reshape_depth,
                                     num_blocks=num_blocks)
        self.kp = nn.Conv3d(self.predictor.out_filters, num_kp, kernel_size=3, padding=1)
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(image_channel, scale_factor)

    @staticmethod
    def gaussian2kp(heatmap: torch.Tensor) -> dict[str, torch.Tensor]:
        """Expected ``(x, y, z)`` of each normalised heat map ``(B, K, D, H, W)`` → ``{'value': (B, K, 3)}``."""
        grid = coordinate_grid_3d(*heatmap.shape[2:], like=heatmap)
        value = (heatmap.unsqueeze(-1) * grid.view(1, 1, *grid.shape)).sum(dim=(2, 3, 4))
        return {"value": value}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            x = self.down(x)
        prediction = self.kp(self.predictor(x))
        shape = prediction.shape
        heatmap = F.softmax(prediction.view(shape[0], shape[1], -1) / self.temperature, dim=2)
        return self.gaussian2kp(heatmap.view(*shape))
