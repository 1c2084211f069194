"""Mapping-net output -> 3-D key points for SadTalker's renderer (``keypoint_transformation``).

``X(kp_c, m)`` rotates the canonical key points by the head pose, shifts
them vertically and adds the expression offsets:

* angles: each of ``m['yaw'|'pitch'|'roll']`` ``(B, 66)`` is a softmax over
  66 bins of 3 degrees, read as ``sum(p * idx) * 3 - 99`` degrees; an
  explicit per-frame angle (``--input-yaw`` etc.) replaces it;
* ``R = Rx(pitch) @ Ry(yaw) @ Rz(roll)`` with radians ``= deg / 180 * 3.14``
  (the reference's 3.14, kept so the released weights see what they were
  trained with);
* ``kp = kp_c @ R^T + (0, t_y, 0) + exp.view(B, 15, 3)``: ``t_x`` and
  ``t_z`` are zeroed.

torch is imported inside the functions (this package imports without it).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["NUM_BINS", "PI_APPROX", "headpose_to_degrees", "rotation_matrix", "keypoint_transform"]

#: Bins of the mapping net's angle heads.
NUM_BINS = 66
#: The reference's value of pi in degree-to-radian conversions.
PI_APPROX = 3.14


def headpose_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """``(B, 66)`` angle-bin logits -> ``(B,)`` degrees in ``[-99, 96]`` (softmax expectation)."""
    import torch

    idx = torch.arange(NUM_BINS, dtype=logits.dtype, device=logits.device)
    return torch.sum(torch.softmax(logits, dim=1) * idx, dim=1) * 3 - 99


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """``(B,)`` degrees each -> ``(B, 3, 3)`` ``Rx(pitch) @ Ry(yaw) @ Rz(roll)`` (radians = deg / 180 * 3.14)."""
    import torch

    yaw, pitch, roll = (a / 180 * PI_APPROX for a in (yaw, pitch, roll))
    one, zero = torch.ones_like(pitch), torch.zeros_like(pitch)
    rx = torch.stack([one, zero, zero,
                      zero, torch.cos(pitch), -torch.sin(pitch),
                      zero, torch.sin(pitch), torch.cos(pitch)], dim=1).view(-1, 3, 3)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    ry = torch.stack([torch.cos(yaw), zero, torch.sin(yaw),
                      zero, one, zero,
                      -torch.sin(yaw), zero, torch.cos(yaw)], dim=1).view(-1, 3, 3)
    one, zero = torch.ones_like(roll), torch.zeros_like(roll)
    rz = torch.stack([torch.cos(roll), -torch.sin(roll), zero,
                      torch.sin(roll), torch.cos(roll), zero,
                      zero, zero, one], dim=1).view(-1, 3, 3)
    return torch.einsum("bij,bjk,bkm->bim", rx, ry, rz)


def _angle(override: Any, logits: torch.Tensor) -> torch.Tensor:
    import torch

    if override is None:
        return headpose_to_degrees(logits)
    value = torch.as_tensor(override, dtype=logits.dtype, device=logits.device)
    return value.reshape(-1).expand(logits.shape[0])


def keypoint_transform(kp_canonical: torch.Tensor, mapping_out: Mapping[str, torch.Tensor], *,
                       yaw: Any = None, pitch: Any = None, roll: Any = None) -> torch.Tensor:
    """Driving (or source) key points from canonical ones and one mapping-net output.

    Args:
        kp_canonical: ``(B, 15, 3)`` or ``(1, 15, 3)`` canonical key points
            (the key-point detector's ``'value'`` for the source image), x, y, z in ``[-1, 1]``.
        mapping_out: the mapping net's dict: ``yaw``, ``pitch``, ``roll``
            ``(B, 66)`` logits, ``t`` ``(B, 3)``, ``exp`` ``(B, 45)``.  Not modified.
        yaw, pitch, roll: optional angles in degrees replacing the predicted
            ones: a ``(B,)`` tensor/array or one number for the whole batch
            (``--input-yaw`` etc.; apply them to driving frames only, as the
            reference does).

    Returns:
        ``(B, 15, 3)`` transformed key points (the reference's ``{'value': ...}`` content).
    """
    import torch

    yaw_deg = _angle(yaw, mapping_out["yaw"])
    pitch_deg = _angle(pitch, mapping_out["pitch"])
    roll_deg = _angle(roll, mapping_out["roll"])
    rot = rotation_matrix(yaw_deg, pitch_deg, roll_deg)  # (B, 3, 3)
    b = rot.shape[0]
    kp = kp_canonical.expand(b, -1, -1) if kp_canonical.shape[0] == 1 else kp_canonical
    rotated = torch.einsum("bmp,bkp->bkm", rot, kp)
    t = mapping_out["t"]
    shift = torch.stack([torch.zeros_like(t[:, 1]), t[:, 1], torch.zeros_like(t[:, 1])], dim=1)
    return rotated + shift.unsqueeze(1) + mapping_out["exp"].view(b, -1, 3)
