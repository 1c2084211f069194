"""A face restorer as a step of the neural runtime (:class:`retalk.runtime.BatchOp`).

:class:`RestoreOp` splits :class:`retalk.enhance.gfpgan.GFPGANRestorer`'s work per frame into
alignment (CPU, in the pool), the network on a batch of aligned faces (the op's own thread)
and the paste-back (CPU, in the pool), so restoring overlaps decoding, the lip-sync network
and encoding. The result equals ``restorer.restore(frame, landmarks)`` frame for frame.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from retalk.enhance.gfpgan import GFPGANRestorer, paste_face
from retalk.runtime.stages import Slot


class RestoreOp:
    """Restore the face of every slot that has work.

    Args:
        restorer: a loaded :class:`GFPGANRestorer`.
        landmarks: ``landmarks(slot)`` → the face's (478, 2) mesh points in pixels of ``slot.frame``
            (or None to leave the frame as it is).
        batch_size: faces per network call (default: the restorer's).
    """

    name = "enhance"

    def __init__(self, restorer: GFPGANRestorer, landmarks: Callable[[Slot], np.ndarray | None],
                 batch_size: int | None = None) -> None:
        self.restorer = restorer
        self.landmarks = landmarks
        self.batch_size = int(batch_size or restorer.batch_size)
        self.device = restorer.device

    def prepare_item(self, slot: Slot) -> tuple[np.ndarray, np.ndarray] | None:
        """The aligned face crop (S, S, 3) uint8 RGB and its 2×3 affine, or None to leave the frame."""
        return self.restorer.align(slot.frame, self.landmarks(slot))

    def run_batch(self, inputs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Restored crops, (S, S, 3) uint8 RGB each."""
        return list(self.restorer.run_network(np.stack([crop for crop, _ in inputs])))

    def finish_item(self, slot: Slot, prepared: tuple[np.ndarray, np.ndarray], output: Any) -> np.ndarray:
        """Paste the restored face back into the frame."""
        return paste_face(slot.frame, output, prepared[1])
