"""The per-clip data and the loaded networks every VideoReTalking step reads (both frozen)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from retalk.engines.videoretalking.analysis import ClipAnalysis

__all__ = ["ClipContext", "Networks"]


@dataclass(frozen=True)
class ClipContext:
    """One clip, known before rendering.

    Attributes:
        analysis: crop box and 3DMM coefficients (:mod:`retalk.engines.videoretalking.analysis`).
        template: (64,) float32 expression the D-Net stabilises every frame to.
        mesh: (N, 478, 3) float32 face-mesh landmarks per source frame, pixels.
        lm68: (N, 68, 2) float32 68-point landmarks per source frame, pixels.
        face_boxes: (N, 4) int64 ``x1, y1, x2, y2`` (end-exclusive) face boxes per source frame, the
            s3fd-style box padded by 20 px at the bottom and smoothed over 5 frames (Step 6.3).
        mels: (n_out, 80, 16) float32 mel windows per output frame (0.2 s each, Step 4).
        up_face: ``"original"``, ``"surprise"`` or ``"angry"``.
        faces: the per-source-frame cache of enhanced faces (a :class:`retalk.engines.videoretalking.cache.FaceCache`;
            disabled when caching is off).
    """

    analysis: ClipAnalysis
    template: np.ndarray
    mesh: np.ndarray
    lm68: np.ndarray
    face_boxes: np.ndarray
    mels: np.ndarray
    up_face: str = "original"
    faces: Any = None


@dataclass(frozen=True)
class Networks:
    """The loaded networks (torch modules on ``device``) and the GFPGAN restorer wrapping its network.

    ``ganimation`` is None unless ``--up-face`` edits the upper face.
    """

    device: Any
    face3d: Any
    dnet: Any
    enet: Any
    gpen: Any
    parsenet: Any
    restorer: Any
    ganimation: Any = None
