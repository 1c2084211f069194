"""Steps 6 and 7 (first half): the E-Net inputs of each output frame, and E-Net itself, as a runtime op.

Reference (FACTSHEET §1 Step 6): the enhanced, stabilised face is put back into the frame inside its
FFHQ quad (the *reference* frame); the face box (s3fd there, padded 20 px at the bottom, smoothed
over 5 frames) is cut from the original frame and from the reference frame and resized to
384 × 384; the original's lower half (rows 192..383) is zeroed; E-Net gets
``(mel (B, 1, 80, 16), concat[masked, reference] (B, 6, 384, 384) BGR in [0, 1], reference)``
and returns the new face, clamped and truncated to uint8.

Differences: the quad and the box come from retalk's face-mesh landmarks of the frame (no FAN on the
enhanced crop, no s3fd; :func:`retalk.engines.wav2lip.s3fd_like_box` maps the mesh to an s3fd-style
box); the enhanced 256 face is resized into the crop region and masked by the quad directly,
instead of being cut to an aligned square and warped back (one resampling instead of two, same
pixels placed).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from retalk.runtime.stages import Slot
from retalk.engines.videoretalking.context import ClipContext, Networks
from retalk.engines.videoretalking.store import FrameStore
from retalk.engines.videoretalking.tensors import to_unit, unit_to_uint8

__all__ = ["LipSyncOp", "reference_frame", "IMG_SIZE"]

#: Side of E-Net's input and output, pixels.
IMG_SIZE = 384


def reference_frame(frame: np.ndarray, face256: np.ndarray, region: tuple[int, int, int, int],
                    quad: np.ndarray) -> np.ndarray:
    """``frame`` with ``face256`` (the 256 × 256 picture of ``region``) put back inside ``quad``.

    Args:
        frame: (H, W, 3) uint8.
        face256: (256, 256, 3) uint8, a picture of ``region`` (same colour order as ``frame``).
        region: ``(x1, y1, x2, y2)`` end-exclusive pixels the 256 picture covers.
        quad: (4, 2) FFHQ quad corners in frame pixels; only the pixels inside it are replaced.

    Returns:
        A new (H, W, 3) uint8 frame.
    """
    x1, y1, x2, y2 = region
    out = frame.copy()
    w, h = x2 - x1, y2 - y1
    if w < 2 or h < 2:
        return out
    face = cv2.resize(face256, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = np.zeros((h, w), np.uint8)
    pts = np.round((np.asarray(quad, np.float64) - (x1, y1)) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillConvexPoly(mask, pts, 255, lineType=cv2.LINE_AA, shift=4)
    m = mask[..., None].astype(np.float32) / 255.0
    part = out[y1:y2, x1:x2].astype(np.float32)
    out[y1:y2, x1:x2] = np.clip(face * m + part * (1.0 - m) + 0.5, 0, 255).astype(np.uint8)
    return out


@dataclass(frozen=True)
class _Input:
    face: np.ndarray  # (384, 384, 3) uint8 BGR, the original frame's face box
    ref: np.ndarray  # (384, 384, 3) uint8 BGR, the reference frame's face box
    mel: np.ndarray  # (80, 16) float32


class LipSyncOp:
    """E-Net on every frame; stores ``face`` (the original 384 crop) and ``pred`` (384, 384, 3) uint8 BGR."""

    name = "vrt.enet"

    def __init__(self, clip: ClipContext, nets: Networks, store: FrameStore, batch_size: int) -> None:
        self.clip, self.nets, self.store = clip, nets, store
        self.batch_size = batch_size
        self.device = nets.device

    def prepare_item(self, slot: Slot) -> _Input | None:
        """Build the reference frame and cut both 384 crops (None without a stabilised face or a usable box)."""
        face256 = self.store.get(slot.out_index, "enhanced")
        if face256 is None:
            face256 = self.store.get(slot.out_index, "stable")
        x1, y1, x2, y2 = (int(v) for v in self.clip.face_boxes[slot.src_index])
        if face256 is None or x2 - x1 < 4 or y2 - y1 < 4:
            return None
        from retalk.face3d.crop import face_quad

        k = slot.src_index
        ref = reference_frame(slot.frame, face256, self.clip.analysis.box, face_quad(self.clip.lm68[k]).corners)
        size = (IMG_SIZE, IMG_SIZE)
        face = cv2.cvtColor(cv2.resize(slot.frame[y1:y2, x1:x2], size), cv2.COLOR_RGB2BGR)
        ref_crop = cv2.cvtColor(cv2.resize(ref[y1:y2, x1:x2], size), cv2.COLOR_RGB2BGR)
        mel_index = min(slot.out_index, len(self.clip.mels) - 1)
        return _Input(face, ref_crop, self.clip.mels[mel_index])

    def run_batch(self, inputs: list[_Input]) -> list[np.ndarray]:
        """E-Net on the batch: (384, 384, 3) uint8 BGR faces with the new mouth."""
        with torch.inference_mode():
            face = to_unit(np.stack([i.face for i in inputs]), self.device)
            ref = to_unit(np.stack([i.ref for i in inputs]), self.device)
            masked = face.clone()
            masked[:, :, IMG_SIZE // 2:] = 0.0
            mel = torch.from_numpy(np.stack([i.mel for i in inputs]).astype(np.float32)).to(self.device).unsqueeze(1)
            out = self.nets.enet(mel, torch.cat([masked, ref], dim=1), ref)
            pred = out[0] if isinstance(out, (tuple, list)) else out
            return list(unit_to_uint8(pred))

    def finish_item(self, slot: Slot, prepared: _Input, output: np.ndarray) -> np.ndarray:
        """Keep the new face (and the original crop, for ``--up-face``); the frame is unchanged."""
        self.store.put(slot.out_index, face=prepared.face, pred=output)
        return slot.frame
