"""Stand-in 3DMM support files for tests: ``BFM/similarity_Lm3D_all.mat`` and ``expression.mat``.

The real files (VideoReTalking's release, SadTalker's ``src/config``) are not shipped. These are generated
here: a symmetric 68-point mean face drawn from simple curves (x right, **y up**, z toward the viewer, in
the same rough units as the real file: eye centres ±0.31 apart from the midline, chin at y ≈ −0.85), and
two seeded 64-value expressions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import savemat


def mean_face_68() -> np.ndarray:
    """A plausible symmetric mean face: (68, 3) float64, iBUG order, y up."""
    pts: list[tuple[float, float, float]] = []
    for i in range(17):  # jaw, image-left ear → chin → image-right ear
        t = np.pi * i / 16
        pts.append((-0.75 * np.cos(t), 0.25 - 1.1 * np.sin(t), -0.3 + 0.45 * np.sin(t)))
    brow = [(-0.62, 0.48), (-0.52, 0.54), (-0.40, 0.56), (-0.28, 0.55), (-0.16, 0.51)]
    pts += [(x, y, 0.3) for x, y in brow]
    pts += [(-x, y, 0.3) for x, y in reversed(brow)]
    pts += [(0.0, y, z) for y, z in ((0.30, 0.30), (0.17, 0.38), (0.04, 0.46), (-0.09, 0.55))]
    pts += [(x, -0.20 - (0.02 if x == 0 else 0.0), 0.35) for x in (-0.15, -0.075, 0.0, 0.075, 0.15)]
    eye = [(-0.44, 0.27), (-0.35, 0.31), (-0.27, 0.31), (-0.18, 0.27), (-0.27, 0.23), (-0.35, 0.23)]
    pts += [(x, y, 0.25) for x, y in eye]
    # Right eye: inner corner, upper lid inner→outer, outer corner, lower lid outer→inner.
    pts += [(-x, y, 0.25) for x, y in (eye[3], eye[2], eye[1], eye[0], eye[5], eye[4])]
    for k in range(7):  # outer lips: left corner, upper lip, right corner
        phi = np.pi - k * np.pi / 6
        pts.append((0.25 * np.cos(phi), -0.45 + 0.09 * np.sin(phi), 0.4))
    for k in range(1, 6):  # lower lip, right → left
        phi = -k * np.pi / 6
        pts.append((0.25 * np.cos(phi), -0.45 + 0.12 * np.sin(phi), 0.4))
    for phi in (np.pi, 3 * np.pi / 4, np.pi / 2, np.pi / 4, 0.0, -np.pi / 4, -np.pi / 2, -3 * np.pi / 4):
        pts.append((0.18 * np.cos(phi), -0.45 + 0.03 * np.sin(phi), 0.42))
    out = np.array(pts, np.float64)
    assert out.shape == (68, 3)
    return out


def expressions(seed: int = 7, width: int = 64) -> dict[str, np.ndarray]:
    """Seeded stand-ins for ``expression_center`` and ``expression_mouth``: (1, width) float32 each."""
    rng = np.random.default_rng(seed)
    return {"expression_center": rng.normal(0, 0.3, (1, width)).astype(np.float32),
            "expression_mouth": rng.normal(0, 0.3, (1, width)).astype(np.float32)}


def write_bfm(checkpoints: Path, *, in_bfm: bool = True, expression: bool = True, width: int = 64) -> dict[str, Path]:
    """Write the stand-ins under ``checkpoints``: ``BFM/similarity_Lm3D_all.mat`` (or at the top with
    ``in_bfm=False``) and ``expression.mat``. Returns their paths by name (``lm3d``, ``expression``)."""
    checkpoints = Path(checkpoints)
    folder = checkpoints / "BFM" if in_bfm else checkpoints
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"lm3d": folder / "similarity_Lm3D_all.mat"}
    savemat(str(paths["lm3d"]), {"lm": mean_face_68()})
    if expression:
        paths["expression"] = checkpoints / "expression.mat"
        savemat(str(paths["expression"]), expressions(width=width))
    return paths


def face_landmarks(cx: float, cy: float, scale: float, angle_deg: float = 0.0) -> np.ndarray:
    """68 pixel landmarks (y down) of :func:`mean_face_68` centred at (cx, cy), ``scale`` px per unit, rotated
    by ``angle_deg`` (counter-clockwise on screen): (68, 2) float64."""
    xy = mean_face_68()[:, :2] * np.array([1.0, -1.0])
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    return np.array([cx, cy]) + scale * xy @ rot.T
