"""``--input-yaw/-pitch/-roll``: a per-frame head angle ramp through the listed degrees.

SadTalker's ``gen_camera_pose``, without its padding and reshaping to the render batch.

One value holds that angle for the whole clip.  Several values ``d0, d1, ...``
are joined by linear ramps whose lengths are proportional to ``|d_k+1 - d_k|``:
the total change is spread evenly over ``T - 1`` steps (``step = sum|Δ| / (T - 1)``
degrees per frame), each segment is ``np.arange(d_k, d_k+1, ±step)`` (end
excluded), and the result is cut to, or padded with its last value up to,
``T`` frames.

The reference divides by zero when two neighbouring values are equal (and
when ``T = 1``); here a segment with no change adds no frames (its length is
``0 / step``), all-equal values hold that value, and ``T = 1`` gives ``[d0]``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["camera_ramp"]


def camera_ramp(degrees: Sequence[float], n_frames: int) -> np.ndarray:
    """``(T,)`` float32 head angle in degrees per frame.

    Args:
        degrees: the listed angles (at least one).
        n_frames: ``T``.
    """
    values = [float(d) for d in degrees]
    if not values:
        raise ValueError("camera_ramp needs at least one angle")
    if n_frames <= 0:
        return np.zeros(0, dtype=np.float32)
    total = sum(abs(b - a) for a, b in zip(values[:-1], values[1:]))
    if len(values) == 1 or n_frames == 1 or total == 0.0:
        return np.full(n_frames, values[0], dtype=np.float32)
    per_frame = total / (n_frames - 1)
    out: list[float] = []
    for last, degree in zip(values[:-1], values[1:]):
        if degree == last:
            continue
        step = per_frame * abs(degree - last) / (degree - last)
        out += list(np.arange(last, degree, step))
    out = out[:n_frames]
    out += [out[-1]] * (n_frames - len(out))
    return np.asarray(out, dtype=np.float32)
