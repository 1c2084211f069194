"""3DMM coefficients of video frames: align each face (:mod:`retalk.face3d.align`) and run the face3d network.

The network is retalk's port of Deep3DFaceRecon's ResNet-50 (registry name ``face3d``): called as
``net(x)`` with x (B, 3, 224, 224) RGB in [0, 1], it returns (B, 257) coefficients. Frames are aligned on
the CPU, then sent through the network in batches on the network's device.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retalk.face3d.align import align_img, flip_y, standard_points

log = logging.getLogger(__name__)

N_COEFFS = 257


@dataclass(frozen=True)
class CoeffSlices:
    """Column ranges of the 257 face3d outputs (Deep3DFaceRecon's ``split_coeff``)."""

    id: slice = field(default_factory=lambda: slice(0, 80))
    exp: slice = field(default_factory=lambda: slice(80, 144))
    tex: slice = field(default_factory=lambda: slice(144, 224))
    angle: slice = field(default_factory=lambda: slice(224, 227))
    gamma: slice = field(default_factory=lambda: slice(227, 254))
    trans: slice = field(default_factory=lambda: slice(254, 257))


#: The layout of every (…, 257) coefficient array.
SLICES = CoeffSlices()


@dataclass(frozen=True)
class FrameCoeffs:
    """Coefficients of N frames.

    ``coeffs``: (N, 257) float32 (slices in :data:`SLICES`); ``trans_params``: (N, 5) float32 =
    [W0, H0, s, tx, ty] of each frame's alignment (:func:`retalk.face3d.align.align_img`); ``found``: (N,)
    bool, False where the frame had no landmarks and the standard points were used instead.
    """

    coeffs: np.ndarray
    trans_params: np.ndarray
    found: np.ndarray

    def part(self, name: str) -> np.ndarray:
        """One named slice (``id``, ``exp``, ``tex``, ``angle``, ``gamma`` or ``trans``) of every row."""
        return self.coeffs[:, getattr(SLICES, name)]

    @property
    def rows(self) -> np.ndarray:
        """VideoReTalking's (N, 262) rows: the 257 coefficients then the 5 ``trans_params``."""
        return np.concatenate([self.coeffs, self.trans_params], axis=1).astype(np.float32)

    @property
    def sadtalker_rows(self) -> np.ndarray:
        """SadTalker's (N, 73) rows: exp 64, angle 3, trans 3, then s, tx, ty."""
        c = self.coeffs
        return np.concatenate([c[:, SLICES.exp], c[:, SLICES.angle], c[:, SLICES.trans], self.trans_params[:, 2:]],
                              axis=1).astype(np.float32)


def _missing(lm: np.ndarray | None) -> bool:
    """The reference marks a frame without a face by 68 × (−1); retalk also accepts None or NaNs."""
    return lm is None or not np.all(np.isfinite(lm)) or bool(np.mean(lm) == -1)


def align_frames(frames: list[np.ndarray], lms: np.ndarray | list[np.ndarray | None] | None,
                 lm3d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align every frame: (N, 224, 224, 3) uint8, trans_params (N, 5) float32, found (N,) bool.

    ``frames``: N RGB uint8 (H, W, 3); ``lms``: (N, 68, 2) pixels with y **down** (flipped here), a row of
    −1/NaN or None for a frame without a face (then the standard points are used, as the reference does).
    """
    images, params, found = [], [], []
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        lm = None if lms is None else lms[i]
        if _missing(lm):
            pts = standard_points(lm3d, w, h)
            found.append(False)
        else:
            pts = flip_y(np.asarray(lm, np.float64).reshape(-1, 2), h)
            found.append(True)
        a = align_img(frame, pts, lm3d)
        images.append(a.image)
        params.append(a.trans_params)
    return np.stack(images), np.stack(params).astype(np.float32), np.array(found, bool)


def run_face3d(net: Any, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """The face3d network on aligned uint8 RGB images (N, 224, 224, 3) → (N, 257) float32, batched on its device."""
    import torch

    try:
        device = next(net.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    out = []
    with torch.no_grad():
        for k in range(0, len(images), max(1, int(batch_size))):
            x = torch.from_numpy(np.ascontiguousarray(images[k:k + batch_size])).to(device)
            x = x.permute(0, 3, 1, 2).float() / 255.0
            out.append(net(x).float().cpu().numpy())
    if not out:
        return np.zeros((0, N_COEFFS), np.float32)
    return np.concatenate(out).astype(np.float32)


def extract_coeffs(net: Any, frames: list[np.ndarray], lms: np.ndarray | list[np.ndarray | None] | None,
                   lm3d: np.ndarray, batch_size: int = 16) -> FrameCoeffs:
    """3DMM coefficients of ``frames`` (RGB uint8) from their 68 landmarks (pixels, y down).

    ``net``: the face3d network (``retalk.checkpoints.load('face3d', …)``); ``lm3d``: (5, 3) from
    :func:`retalk.face3d.align.load_lm3d`. Returns :class:`FrameCoeffs`.
    """
    images, params, found = align_frames(frames, lms, lm3d)
    if not found.all():
        log.info("face3d: %d of %d frames had no landmarks; used the standard points", int((~found).sum()), len(found))
    return FrameCoeffs(coeffs=run_face3d(net, images, batch_size), trans_params=params, found=found)
