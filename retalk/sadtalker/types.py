"""Frozen data passed between the SadTalker coefficient stages.

Coefficient rows follow SadTalker's 3DMM layout (Deep3DFaceRecon): columns
0:64 expression, 64:67 rotation angles (pitch, yaw, roll, radians), 67:70
translation, and, for the ``full``/``extfull`` preprocess only, 70:73 the
crop's ``s, tx, ty`` (scale and offset of the 224-pixel alignment).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EXP_DIM", "POSE_DIM", "CROP_DIM", "MotionCoeffs", "check_source"]

#: Expression coefficients per frame.
EXP_DIM = 64
#: Pose coefficients per frame (3 angles, 3 translations).
POSE_DIM = 6
#: Crop parameters per frame (``s, tx, ty``).
CROP_DIM = 3


def _frozen(a: np.ndarray, cols: int, name: str, frames: int | None) -> np.ndarray:
    arr = np.array(a, dtype=np.float32)  # a private copy
    if arr.ndim != 2 or arr.shape[1] != cols:
        raise ValueError(f"{name} must be (T, {cols}), got shape {arr.shape}")
    if frames is not None and arr.shape[0] != frames:
        raise ValueError(f"{name} has {arr.shape[0]} frames, expected {frames}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class MotionCoeffs:
    """Per-frame motion predicted from audio (25 frames per second).

    Attributes:
        exp: ``(T, 64)`` float32 expression coefficients (absolute, not
            relative to the source).
        pose: ``(T, 6)`` float32 head pose (pitch, yaw, roll in radians;
            tx, ty, tz), already smoothed.
        crop: ``(T, 3)`` float32 ``s, tx, ty`` of the source crop, repeated
            per frame (used by the ``full`` preprocess only).

    The arrays are read-only copies.
    """

    exp: np.ndarray
    pose: np.ndarray
    crop: np.ndarray

    def __post_init__(self) -> None:
        exp = _frozen(self.exp, EXP_DIM, "exp", None)
        object.__setattr__(self, "exp", exp)
        object.__setattr__(self, "pose", _frozen(self.pose, POSE_DIM, "pose", exp.shape[0]))
        object.__setattr__(self, "crop", _frozen(self.crop, CROP_DIM, "crop", exp.shape[0]))

    @property
    def n_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.exp.shape[0])

    def coeffs(self) -> np.ndarray:
        """``(T, 70)`` float32 rows ``[exp, pose]``, the reference's saved ``coeff_3dmm``."""
        return np.concatenate([self.exp, self.pose], axis=1)


def check_source(source: np.ndarray) -> np.ndarray:
    """A source coefficient row as float32 ``(73,)`` (or ``(70,)``); ``ValueError`` otherwise.

    Accepts ``(1, C)`` too (the reference's ``coeff_3dmm[:1]``).
    """
    arr = np.asarray(source, dtype=np.float32).reshape(-1)
    if arr.shape[0] not in (EXP_DIM + POSE_DIM, EXP_DIM + POSE_DIM + CROP_DIM):
        raise ValueError(f"a source coefficient row has 70 or 73 values, got {arr.shape[0]}")
    return arr
