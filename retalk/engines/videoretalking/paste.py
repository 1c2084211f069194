"""Step 7 (second half): the new face into the frame, GFPGAN, the ParseNet masks and the two blends.

Reference (FACTSHEET §1 Step 7): E-Net's face is resized to the face box and written into a copy of
the frame (``ff``); GFPGAN v1.3 restores the face of ``ff``; ParseNet parses the restored box and its
mouth (mouth, upper lip, lower lip; a binary mask) takes the restored pixels into ``ff`` with a
10-level Laplacian blend; finally the face (skin, nose, eyes, brows, mouth, lips) of that, inside the
box, goes into the original frame with a 6-level Laplacian blend.

Differences, each for a reason:

* GFPGAN is aligned on the face-mesh points (:mod:`retalk.enhance.gfpgan`), not on a RetinaFace detection;
* one ParseNet pass of the restored box gives both masks: the reference parses the box for the mouth,
  then detects and aligns the face again to parse it for the face mask (a third ParseNet call per frame
  and a RetinaFace pass); the final mask is limited to the box anyway;
* both blends run on the box (the second on the box plus a margin) at the frame's own resolution, with
  as many levels as the region allows (at most 10 and 6), instead of resizing the *whole frame* to
  512 × 512 and back, which blurs a 1080p frame's face by a factor of two or more.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from retalk.enhance.gfpgan import paste_face
from retalk.runtime.stages import Slot
from retalk.engines.videoretalking.context import ClipContext, Networks
from retalk.engines.videoretalking.store import FrameStore
from retalk.engines.videoretalking.tensors import to_signed

__all__ = ["RestoreOp", "MaskBlendOp", "MOUTH_CLASSES", "FACE_CLASSES", "pyramid_levels", "blend_region"]

#: ParseNet classes of the mouth mask (mouth, upper lip, lower lip).
MOUTH_CLASSES = (10, 11, 12)
#: ParseNet classes of the face mask (skin, nose, glasses, eyes, brows, mouth, lips).
FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12)
_PARSE_SIZE = 512
_MOUTH_LEVELS, _FACE_LEVELS = 10, 6


def pyramid_levels(shape: tuple[int, ...], want: int, smallest: int = 8) -> int:
    """At most ``want`` levels, fewer when the coarsest would be under ``smallest`` pixels."""
    side = min(shape[:2])
    levels = 1
    while levels < want and side / 2 ** levels >= smallest:
        levels += 1
    return levels


def blend_region(a: np.ndarray, b: np.ndarray, mask: np.ndarray, want: int) -> np.ndarray:
    """Laplacian blend of uint8 ``a`` (where ``mask`` is 1) over ``b``, clipped back to uint8."""
    from retalk.videoretalking.blend import laplacian_blend

    out = laplacian_blend(a, b, mask.astype(np.float32), levels=pyramid_levels(a.shape, want))
    return np.clip(out, 0, 255).astype(np.uint8)


def _box(clip: ClipContext, k: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (int(v) for v in clip.face_boxes[k])
    return x1, y1, x2, y2


@dataclass(frozen=True)
class _Aligned:
    ff: np.ndarray  # the frame with the new face pasted in, RGB uint8
    crop: np.ndarray  # GFPGAN's aligned 512 crop of it
    affine: np.ndarray  # (2, 3) frame → crop


class RestoreOp:
    """GFPGAN on the frame with E-Net's face pasted in; stores the face box of both (``ff``, ``restored``).

    Only the box travels on in the store (not whole frames), so memory per frame in flight stays small.
    """

    name = "vrt.gfpgan"

    def __init__(self, clip: ClipContext, nets: Networks, store: FrameStore, batch_size: int) -> None:
        self.clip, self.nets, self.store = clip, nets, store
        self.batch_size = batch_size
        self.device = nets.device

    def prepare_item(self, slot: Slot) -> _Aligned | None:
        """Paste the new face into a copy of the frame and align it for GFPGAN (None: nothing to restore)."""
        pred = self.store.get(slot.out_index, "pred")
        if pred is None:
            return None
        x1, y1, x2, y2 = _box(self.clip, slot.src_index)
        ff = slot.frame.copy()
        ff[y1:y2, x1:x2] = cv2.cvtColor(cv2.resize(pred, (x2 - x1, y2 - y1)), cv2.COLOR_BGR2RGB)
        box = ff[y1:y2, x1:x2].copy()
        self.store.put(slot.out_index, ff=box)
        aligned = self.nets.restorer.align(ff, self.clip.mesh[slot.src_index, :, :2])
        if aligned is None:
            self.store.put(slot.out_index, restored=box)
            return None
        return _Aligned(ff, aligned[0], aligned[1])

    def run_batch(self, inputs: list[_Aligned]) -> list[np.ndarray]:
        return list(self.nets.restorer.run_network(np.stack([a.crop for a in inputs])))

    def finish_item(self, slot: Slot, prepared: _Aligned, output: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = _box(self.clip, slot.src_index)
        restored = paste_face(prepared.ff, output, prepared.affine)
        self.store.put(slot.out_index, restored=np.ascontiguousarray(restored[y1:y2, x1:x2]))
        return slot.frame


@dataclass(frozen=True)
class _Input:
    crop: np.ndarray  # (512, 512, 3) uint8 RGB: the restored face box


class MaskBlendOp:
    """ParseNet on the restored face box, then the mouth blend and the face blend; returns the final frame."""

    name = "vrt.parse"

    def __init__(self, clip: ClipContext, nets: Networks, store: FrameStore, batch_size: int) -> None:
        self.clip, self.nets, self.store = clip, nets, store
        self.batch_size = batch_size
        self.device = nets.device

    def prepare_item(self, slot: Slot) -> _Input | None:
        restored = self.store.get(slot.out_index, "restored")
        if restored is None:
            self.store.pop(slot.out_index)
            return None
        return _Input(cv2.resize(restored, (_PARSE_SIZE, _PARSE_SIZE)))

    def run_batch(self, inputs: list[_Input]) -> list[np.ndarray]:
        """(512, 512) uint8 class maps (argmax of ParseNet's 19 class scores)."""
        with torch.inference_mode():
            out = self.nets.parsenet(to_signed(np.stack([i.crop for i in inputs]), self.device))
            if isinstance(out, (tuple, list)):
                out = next(t for t in out if t.shape[1] == 19)
            return list(out.argmax(dim=1).to(torch.uint8).cpu().numpy())

    def finish_item(self, slot: Slot, prepared: _Input, output: np.ndarray) -> np.ndarray:
        state = self.store.pop(slot.out_index)
        return compose(slot.frame, state["ff"], state["restored"], output, _box(self.clip, slot.src_index))


def compose(frame: np.ndarray, ff: np.ndarray, restored: np.ndarray, classes: np.ndarray,
            box: tuple[int, int, int, int]) -> np.ndarray:
    """The final frame from the original ``frame``, the face ``box`` of the pasted frame (``ff``) and of the
    restored one (``restored``; all RGB uint8) and ParseNet's (512, 512) class map of the restored box."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cls = cv2.resize(classes, (w, h), interpolation=cv2.INTER_NEAREST)
    mouth = np.isin(cls, MOUTH_CLASSES).astype(np.float32)
    pp_box = blend_region(restored, ff, mouth, _MOUTH_LEVELS)
    # face mask: parsed face, softened by one pixel, inside rows y1..y2-6 and columns x1..x2-1 of the box
    face = cv2.GaussianBlur(np.isin(cls, FACE_CLASSES).astype(np.float32), (0, 0), 1.0)
    face[max(0, h - 6):] = 0.0
    face[:, max(0, w - 1):] = 0.0
    H, W = frame.shape[:2]
    m = max(8, int(0.15 * max(w, h)))
    rx1, ry1, rx2, ry2 = max(0, x1 - m), max(0, y1 - m), min(W, x2 + m), min(H, y2 + m)
    pp = frame[ry1:ry2, rx1:rx2].copy()
    pp[y1 - ry1:y2 - ry1, x1 - rx1:x2 - rx1] = pp_box
    mask = np.zeros(pp.shape[:2], np.float32)
    mask[y1 - ry1:y2 - ry1, x1 - rx1:x2 - rx1] = face
    out = frame.copy()
    out[ry1:ry2, rx1:rx2] = blend_region(pp, frame[ry1:ry2, rx1:rx2], mask, _FACE_LEVELS)
    return out
