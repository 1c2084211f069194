"""``--enhancer gfpgan`` after the SadTalker renderer: the face of each output frame found, then restored in batches.

The reference runs ``GFPGANer`` (GFPGAN v1.4, ``upscale=2``, RetinaFace per frame, ParseNet paste mask)
on every frame of the written video, one frame at a time, and writes a video twice the size.
retalk restores with its own GFPGAN op (:class:`retalk.enhance.op.RestoreOp`: alignment in the CPU
pool, the network on batches of faces, soft-mask paste-back) at the frame's own size; the five
alignment points come from the face mesh run on each output frame (:class:`FrameLandmarks`) instead
of RetinaFace. GFPGAN v1.4 has v1.3's architecture (``GFPGANv1Clean``, channel multiplier 2, the same
constructor in both releases), so its file loads into retalk's ``gfpgan`` network with the same keys.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from retalk.runtime.stages import Slot

__all__ = ["FrameLandmarks", "restore_op"]


class FrameLandmarks:
    """``landmarks(slot)`` for :class:`RestoreOp`: the face mesh's (478, 2) points on ``slot.frame``, or None.

    One tracking face mesh behind a lock (the pool calls it from several threads; the mesh is not
    thread-safe). Frames arrive nearly in order, so tracking mode follows the face cheaply.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mesh: Any = None

    def __call__(self, slot: Slot) -> np.ndarray | None:
        from retalk.face.tracker import FaceMesh

        assert slot.frame is not None
        with self._lock:
            if self._mesh is None:
                self._mesh = FaceMesh(static=False, max_faces=1)
            faces = self._mesh(slot.frame)
        return faces[0][:, :2] if faces else None

    def close(self) -> None:
        """Release the face mesh."""
        with self._lock:
            if self._mesh is not None:
                self._mesh.close()
                self._mesh = None


def restore_op(restorer: Any, landmarks: FrameLandmarks) -> Any:
    """A :class:`retalk.enhance.op.RestoreOp` restoring every output frame's face with ``restorer``."""
    from retalk.enhance.op import RestoreOp

    return RestoreOp(restorer, landmarks)
