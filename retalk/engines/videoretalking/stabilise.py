"""Step 3: D-Net expression stabilisation of each frame's face crop, as a runtime op.

Reference (FACTSHEET §1 Step 3): the frame's 256 × 256 crop (RGB, [-1, 1]) and the 26-frame window of
its 3DMM coefficients with every expression replaced by the template (neutral, smile, or a user's
picture) go through D-Net; ``fake_image`` is clamped and truncated to uint8. The result is the same
face with a still, closed-mouth expression: the reference for the lip-sync networks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from retalk.runtime.stages import Slot
from retalk.engines.videoretalking.analysis import crop_to_box
from retalk.engines.videoretalking.context import ClipContext, Networks
from retalk.engines.videoretalking.store import FrameStore
from retalk.engines.videoretalking.tensors import signed_to_uint8, to_signed

__all__ = ["StabiliseOp"]


@dataclass(frozen=True)
class _Input:
    crop: np.ndarray  # (256, 256, 3) uint8 RGB
    window: np.ndarray  # (73, 26) float32


class StabiliseOp:
    """D-Net on the crop of every frame with a face; stores ``stable`` (256, 256, 3) uint8 RGB."""

    name = "vrt.dnet"

    def __init__(self, clip: ClipContext, nets: Networks, store: FrameStore, batch_size: int) -> None:
        self.clip, self.nets, self.store = clip, nets, store
        self.batch_size = batch_size
        self.device = nets.device

    def prepare_item(self, slot: Slot) -> _Input | None:
        """The crop of the frame and its coefficient window (None if the clip analysis found no face there,
        or when the face cache already holds the enhanced face)."""
        a = self.clip.analysis
        if not a.valid[slot.src_index]:
            return None
        cached = None if self.clip.faces is None else self.clip.faces.get(slot.src_index)
        if cached is not None:  # stabilised and enhanced before: skip D-Net and GPEN
            self.store.put(slot.out_index, enhanced=cached)
            return None
        return _Input(crop_to_box(slot.frame, a.box), a.window(slot.src_index, self.clip.template))

    def run_batch(self, inputs: list[_Input]) -> list[np.ndarray]:
        """D-Net on the batch; (256, 256, 3) uint8 RGB per frame."""
        with torch.inference_mode():
            source = to_signed(np.stack([i.crop for i in inputs]), self.device)
            coeffs = torch.from_numpy(np.stack([i.window for i in inputs])).to(self.device)
            out = self.nets.dnet(source, coeffs)
            fake = out["fake_image"] if isinstance(out, dict) else out
            return list(signed_to_uint8(fake))

    def finish_item(self, slot: Slot, prepared: _Input, output: np.ndarray) -> np.ndarray:
        """Keep the stabilised face for the next step; the frame itself is unchanged."""
        self.store.put(slot.out_index, stable=output)
        return slot.frame
