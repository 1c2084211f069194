"""Cheap stand-ins for the VideoReTalking networks: the same calls and output shapes, almost no compute.

They let the engine's own work (crops, windows, stores, blends, batching, the runtime) be tested on
several clips in seconds; the released networks at full size run once, in the end-to-end test.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from retalk.enhance.gfpgan import GFPGANRestorer
from retalk.engines.videoretalking.context import Networks


class Face3D(nn.Module):
    """(B, 3, 224, 224) → (B, 257): channel means spread over the coefficients; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, 257 * 3).reshape(3, 257))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x.mean(dim=(2, 3)) @ self.w * 0.1


class DNet(nn.Module):
    """Source and coefficients → ``{"fake_image"}``: the source dimmed a little, shifted by the window's mean."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.9))

    def forward(self, source: torch.Tensor, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        shift = coeffs.mean(dim=(1, 2)).view(-1, 1, 1, 1) * 0.01
        return {"fake_image": (source * self.scale + shift).clamp(-1, 1)}


class GPEN(nn.Module):
    """(B, 3, 512, 512) [-1, 1] → (image, None)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.95))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x * self.scale, None


class ParseNet(nn.Module):
    """(B, 3, H, W) → (logits (B, 19, H, W), image): background at the border, skin inside, lips low in the middle."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        logits = torch.zeros(b, 19, h, w, device=x.device)
        logits[:, 0] = 1.0
        logits[:, 1, h // 8:h - h // 8, w // 8:w - w // 8] = 2.0
        logits[:, 12, int(h * 0.62):int(h * 0.82), int(w * 0.3):int(w * 0.7)] = 3.0
        return logits + self.dummy, x


class ENet(nn.Module):
    """``(mel, faces, gt) → (out, low_res)``: the reference, with the lower half set by the mel window's level."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(0.25))

    def forward(self, mel: torch.Tensor, faces: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = gt.clone()
        level = torch.tanh(mel.mean(dim=(1, 2, 3))).view(-1, 1, 1, 1)
        out[:, :, gt.shape[2] // 2:] = 0.5 + self.gain * level
        return out, nn.functional.interpolate(out, size=(96, 96), mode="bilinear", align_corners=False)


class GFPGAN(nn.Module):
    """``forward(x, return_rgb, randomize_noise) → (image,)``, 512 px."""

    out_size = 512

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.97))

    def forward(self, x: torch.Tensor, return_rgb: bool = False, randomize_noise: bool = True) -> tuple[torch.Tensor]:
        return (x * self.scale,)


class GANimation(nn.Module):
    """``(img (B, 3, 128, 128), aus (B, 17)) → (color, attention, features)``: the colours inverted in proportion
    to the action units' sum, attention 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, img: torch.Tensor, aus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        strength = (aus.sum(dim=1) * 5.0).clamp(0, 1).view(-1, 1, 1, 1)
        color = img * (1 - 2 * strength)
        attention = torch.full_like(img[:, :1], 0.5) + self.dummy
        return color, attention, img


def networks(up_face: bool = True) -> Networks:
    """Every stand-in, on the CPU, in eval mode."""
    nets = {k: m().eval() for k, m in (("face3d", Face3D), ("dnet", DNet), ("enet", ENet), ("gpen", GPEN),
                                        ("parsenet", ParseNet))}
    gan = GANimation().eval() if up_face else None
    return Networks(device=torch.device("cpu"), restorer=GFPGANRestorer(GFPGAN(), "cpu", randomize_noise=False),
                    ganimation=gan, **nets)


def lm3d() -> np.ndarray:
    """The 5 standard points of the stand-in BFM file (tests/_bfm.py), as load_lm3d returns them."""
    from _bfm import mean_face_68

    from retalk.face3d.align import reduce_to_5

    return reduce_to_5(mean_face_68())
