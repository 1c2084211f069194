"""Face restoration behind one small interface.

Every restorer takes an **RGB uint8** frame (H, W, 3) and the face's mediapipe
face-mesh landmarks in **pixels** of that frame ((478, 2), or (468, 2) without
the iris points) and returns a new RGB uint8 frame of the same size in which
only the face region has changed.  Engines call ``restorer.restore(frame, lm)``
without knowing which network is behind it.

Importing this package does not import torch; building a restorer does.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from retalk.enhance.gfpgan import (
    FFHQ_TEMPLATE_512,
    GFPGANRestorer,
    alignment_matrix,
    five_points_from_mesh,
    paste_face,
    warp_face,
)

__all__ = [
    "FaceRestorer",
    "GFPGANRestorer",
    "FFHQ_TEMPLATE_512",
    "five_points_from_mesh",
    "alignment_matrix",
    "warp_face",
    "paste_face",
]


@runtime_checkable
class FaceRestorer(Protocol):
    """Anything that restores the face of one frame."""

    def restore(self, frame_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Return a restored copy of ``frame_rgb`` ((H, W, 3) uint8 RGB).

        ``landmarks``: (478, 2) face-mesh points in pixels of ``frame_rgb``.  Pixels outside the
        face region are returned unchanged; a frame whose landmarks are unusable is returned as is.
        """
        ...


ENHANCERS = ("gfpgan",)
"""Names accepted by :func:`create_restorer` (``--enhancer``)."""


def create_restorer(name: str, device: str | None = None) -> FaceRestorer:
    """Build the restorer called ``name`` from its released checkpoint (see :mod:`retalk.checkpoints`).

    Raises :class:`retalk.errors.InputError` for an unknown name, and the registry's one-line
    :class:`retalk.errors.CheckpointError` / ``MissingDependencyError`` when the weights or torch are missing.
    """
    from retalk.errors import InputError, MissingDependencyError

    if name.lower() not in ENHANCERS:
        raise InputError(f"unknown enhancer {name!r}; choose from {', '.join(ENHANCERS)}")
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(f"--enhancer {name} needs the neural extra: pip install 'retalk[neural]'") from None
    from retalk import checkpoints

    from retalk.runtime.device import resolve_device

    dev = resolve_device(device)
    net = checkpoints.load("gfpgan", device=dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return GFPGANRestorer(net, device=dev, randomize_noise=False, batch_size=16 if dev.type == "cuda" else 4)
