"""Step 5 as a runtime op: GPEN + ParseNet enhancement of each stabilised face.

The work itself is :mod:`retalk.videoretalking.reference_enhance` (the warp to GPEN's 512 template,
the two networks, the masked composition); this op splits it into the runtime's three steps: the warp
(CPU pool), both networks on a batch (device thread), the composition (CPU pool). The 5 alignment
points are the frame's own 68 landmarks mapped into the 256 crop (D-Net keeps the head where it was),
not a RetinaFace detection on the stabilised face.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from retalk.runtime.stages import Slot
from retalk.engines.videoretalking.analysis import landmarks_in_crop
from retalk.engines.videoretalking.context import ClipContext, Networks
from retalk.engines.videoretalking.store import FrameStore

__all__ = ["ReferenceOp"]


@dataclass(frozen=True)
class _Input:
    face: np.ndarray  # (256, 256, 3) uint8 BGR stabilised face
    crop: np.ndarray  # (512, 512, 3) uint8 BGR, warped to GPEN's template
    warp: object  # reference_enhance.FaceWarp


class ReferenceOp:
    """GPEN + ParseNet on every stabilised face; stores ``enhanced`` (256, 256, 3) uint8 RGB (and puts it in
    the clip's face cache)."""

    name = "vrt.reference"

    def __init__(self, clip: ClipContext, nets: Networks, store: FrameStore, batch_size: int) -> None:
        self.clip, self.nets, self.store = clip, nets, store
        self.batch_size = batch_size
        self.device = nets.device

    def prepare_item(self, slot: Slot) -> _Input | None:
        from retalk.videoretalking.reference_enhance import face_warp, warp_to_template

        stable = self.store.get(slot.out_index, "stable")
        if stable is None:
            return None
        lm = landmarks_in_crop(self.clip.lm68[slot.src_index], self.clip.analysis.box, stable.shape[0])
        warp = face_warp(lm)
        face = cv2.cvtColor(stable, cv2.COLOR_RGB2BGR)
        return _Input(face, warp_to_template(face, warp), warp)

    def run_batch(self, inputs: list[_Input]) -> list[tuple[np.ndarray, np.ndarray]]:
        """GPEN's restored crop (BGR uint8) and ParseNet's face mask (uint8 0/255) per face."""
        from retalk.videoretalking.reference_enhance import restore_and_parse

        restored, masks = restore_and_parse(self.nets.gpen, self.nets.parsenet, [i.crop for i in inputs], len(inputs))
        return list(zip(restored, masks))

    def finish_item(self, slot: Slot, prepared: _Input, output: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        from retalk.videoretalking.reference_enhance import compose

        enhanced = cv2.cvtColor(compose(prepared.face, output[0], output[1], prepared.warp),  # type: ignore[arg-type]
                                cv2.COLOR_BGR2RGB)
        self.store.put(slot.out_index, enhanced=enhanced)
        if self.clip.faces is not None:
            self.clip.faces.put(slot.src_index, enhanced)
        return slot.frame
