"""Small seeded stand-ins for the face3d, GPEN and ParseNet networks, with the real networks' call signatures.

* ``Face3dStandIn``: (B, 3, 224, 224) RGB [0, 1] → (B, 257).
* ``GpenStandIn``: (B, 3, 512, 512) RGB [−1, 1] → (image (B, 3, 512, 512) in [−1, 1], latents).
* ``ParseStandIn``: (B, 3, 512, 512) RGB [−1, 1] → (logits (B, 19, 512, 512), image).
Weights come from numpy's ``default_rng`` so the reference run in a scratch folder used the same ones.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _conv(cin: int, cout: int, k: int, seed: int, gain: float) -> nn.Conv2d:
    rng = np.random.default_rng(seed)
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(rng.normal(0, gain / (cin * k * k) ** 0.5, conv.weight.shape).astype(np.float32)))
        conv.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, conv.bias.shape).astype(np.float32)))
    return conv


class GpenStandIn(nn.Module):
    def __init__(self, seed: int = 11) -> None:
        super().__init__()
        self.conv = _conv(3, 3, 3, seed, 1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tanh(x + 0.5 * self.conv(x)), x.mean((1, 2, 3))


class ParseStandIn(nn.Module):
    def __init__(self, seed: int = 12) -> None:
        super().__init__()
        self.conv = _conv(3, 19, 5, seed, 3.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv(x), x


class Face3dStandIn(nn.Module):
    def __init__(self, seed: int = 13) -> None:
        super().__init__()
        self.conv = _conv(3, 8, 5, seed, 1.0)
        rng = np.random.default_rng(seed + 1)
        self.fc = nn.Linear(8 * 16, 257)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(rng.normal(0, 0.1, (257, 128)).astype(np.float32)))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, 224, 224)
        f = nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 4)
        return self.fc(f.flatten(1))
