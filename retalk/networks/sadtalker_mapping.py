"""SadTalker's mapping network: a 27-frame window of 3DMM coefficients → head pose and expression.

A plain :class:`torch.nn.Module` whose state dict matches ``mapping`` of
``mapping_00229-model.pth.tar`` (``coeff_nc=70``: 64 expression + 3 angles + 3 translation) and
``mapping_00109-model.pth.tar`` (``coeff_nc=73``: plus scale, tx, ty of the crop; ``full``
preprocessing) — 18 entries.  No I/O here: see :mod:`retalk.checkpoints`.

``MappingNet(coeff_nc)(window)``: ``window`` ``(B, coeff_nc, 27)`` → dict ``yaw``, ``pitch``,
``roll`` ``(B, 66)`` (logits over 3-degree bins; degrees = Σ softmax · index · 3 − 99), ``t``
``(B, 3)`` and ``exp`` ``(B, 45)`` (15 key-point offsets).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MappingNet"]


class MappingNet(nn.Module):
    """Conv1d k7 (no padding) then ``layer`` × [LeakyReLU 0.1, Conv1d k3 dilation 3] with residual
    ``out[:, :, 3:-3]`` (27 → 21 → 15 → 9 → 3 frames), mean over time, five linear heads.
    """

    def __init__(self, coeff_nc: int = 70, descriptor_nc: int = 1024, layer: int = 3, num_kp: int = 15,
                 num_bins: int = 66) -> None:
        super().__init__()
        self.layer = layer
        self.first = nn.Sequential(nn.Conv1d(coeff_nc, descriptor_nc, kernel_size=7, padding=0, bias=True))
        for i in range(layer):
            setattr(self, f"encoder{i}", nn.Sequential(
                nn.LeakyReLU(0.1), nn.Conv1d(descriptor_nc, descriptor_nc, kernel_size=3, padding=0, dilation=3)))
        self.pooling = nn.AdaptiveAvgPool1d(1)
        self.output_nc = descriptor_nc
        self.fc_roll = nn.Linear(descriptor_nc, num_bins)
        self.fc_pitch = nn.Linear(descriptor_nc, num_bins)
        self.fc_yaw = nn.Linear(descriptor_nc, num_bins)
        self.fc_t = nn.Linear(descriptor_nc, 3)
        self.fc_exp = nn.Linear(descriptor_nc, 3 * num_kp)

    def forward(self, input_3dmm: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.first(input_3dmm)
        for i in range(self.layer):
            out = getattr(self, f"encoder{i}")(out) + out[:, :, 3:-3]
        out = self.pooling(out).view(out.shape[0], -1)
        return {"yaw": self.fc_yaw(out), "pitch": self.fc_pitch(out), "roll": self.fc_roll(out),
                "t": self.fc_t(out), "exp": self.fc_exp(out)}
