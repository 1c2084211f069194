"""Batches of uint8 pictures to and from the networks' float tensors (torch imported here).

Pictures travel to the device as uint8 (a quarter of float32's bytes) and are scaled there; results
come back as uint8 with the reference's rounding rule (truncation for D-Net, GPEN and E-Net).
"""
from __future__ import annotations

import numpy as np
import torch

from retalk.runtime.device import download, upload

__all__ = ["to_unit", "to_signed", "unit_to_uint8", "signed_to_uint8"]


def to_unit(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, H, W, C) uint8 → (B, C, H, W) float32 in [0, 1] on ``device`` (``x / 255``)."""
    return upload(np.ascontiguousarray(images, np.uint8), device).permute(0, 3, 1, 2).float().div_(255.0)


def to_signed(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, H, W, C) uint8 → (B, C, H, W) float32 in [-1, 1] on ``device`` (``(x / 255 - 0.5) / 0.5``)."""
    return to_unit(images, device).sub_(0.5).div_(0.5)


def unit_to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) float in [0, 1] → (B, H, W, C) uint8 on the host, clamped, ``x · 255`` truncated."""
    return download((x.float().clamp(0.0, 1.0) * 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous())


def signed_to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) float in [-1, 1] → (B, H, W, C) uint8, clamped, ``(x + 1) / 2 · 255`` truncated."""
    return unit_to_uint8((x.float().clamp(-1.0, 1.0) + 1.0) / 2.0)
