"""``--up-face surprise|angry``: GANimation edits the upper face, blended over E-Net's output.

Reference (FACTSHEET §4.6, Step 7): GANimation (``30_net_gen.pth``) is run on the original 384 crop
shrunk to 128 with an action-unit target (surprise: AU05 = 0.2, angry: AU04 = 0.3, all others 0) and
its result would replace the upper half of E-Net's output, but only with ``--without_rl1`` (and CUDA):
with the defaults the edit is computed and thrown away, so ``--up_face`` does nothing.

Here the edit always acts when asked for:

* GANimation sees the crop as RGB (it was trained on RGB faces; the reference passes BGR);
* its change is applied as a residual, ``crop + up(fake − crop128)``, so the 384 crop keeps its own
  detail where GANimation's attention keeps the source (a plain 128 → 384 resize would blur the
  whole upper face);
* the edited crop replaces E-Net's output above row 180 of 384 and fades into it linearly down to
  row 204 (the reference's hard switch at row 192, the edge of E-Net's masked half, made seamless).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from retalk.runtime.stages import Slot
from retalk.engines.videoretalking.context import Networks
from retalk.engines.videoretalking.store import FrameStore

__all__ = ["UpFaceOp", "ACTION_UNITS", "UP_FACES", "blend_upper", "FADE_ROWS"]

#: GANimation's 17 action units, in its input order.
ACTION_UNITS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
                "AU20", "AU23", "AU25", "AU26", "AU45")
#: ``--up-face`` choices → action-unit targets (the reference's values).
UP_FACES: dict[str, dict[str, float]] = {"original": {}, "surprise": {"AU05": 0.2}, "angry": {"AU04": 0.3}}
#: Rows of the 384 crop over which the edited upper face fades into E-Net's lower face.
FADE_ROWS = (180, 204)
_SIZE = 128


def au_vector(up_face: str) -> np.ndarray:
    """The (17,) float32 action-unit target of an ``--up-face`` choice."""
    v = np.zeros(len(ACTION_UNITS), np.float32)
    for au, value in UP_FACES[up_face].items():
        v[ACTION_UNITS.index(au)] = value
    return v


def blend_upper(upper: np.ndarray, lower: np.ndarray, fade: tuple[int, int] = FADE_ROWS) -> np.ndarray:
    """``upper`` above ``fade[0]``, ``lower`` below ``fade[1]``, a linear ramp between (same-size uint8 images)."""
    h = upper.shape[0]
    w = np.clip((np.arange(h, dtype=np.float32) - fade[0]) / max(1, fade[1] - fade[0]), 0.0, 1.0)[:, None, None]
    out = upper.astype(np.float32) * (1.0 - w) + lower.astype(np.float32) * w
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _Input:
    face: np.ndarray  # (384, 384, 3) uint8 BGR original crop
    pred: np.ndarray  # (384, 384, 3) uint8 BGR E-Net output


class UpFaceOp:
    """GANimation on the original crop of every frame; replaces the stored ``pred`` by the blend."""

    name = "vrt.upface"

    def __init__(self, up_face: str, nets: Networks, store: FrameStore, batch_size: int) -> None:
        if nets.ganimation is None:
            raise ValueError("UpFaceOp needs the GANimation network")
        self.aus = au_vector(up_face)
        self.nets, self.store = nets, store
        self.batch_size = batch_size
        self.device = nets.device

    def prepare_item(self, slot: Slot) -> _Input | None:
        face, pred = self.store.get(slot.out_index, "face"), self.store.get(slot.out_index, "pred")
        return None if face is None or pred is None else _Input(face, pred)

    def run_batch(self, inputs: list[_Input]) -> list[np.ndarray]:
        """The edited crops, (384, 384, 3) uint8 BGR."""
        with torch.inference_mode():
            rgb = np.stack([i.face[..., ::-1] for i in inputs])
            x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
            size = x.shape[-2:]
            small = F.interpolate(x * 2.0 - 1.0, size=(_SIZE, _SIZE), mode="bilinear", align_corners=False)
            aus = torch.from_numpy(np.repeat(self.aus[None], len(inputs), 0)).to(self.device)
            out = self.nets.ganimation(small, aus)
            color, attention = out[0], out[1]  # (color, attention[, features])
            fake = attention * small + (1.0 - attention) * color
            change = F.interpolate((fake - small) / 2.0, size=size, mode="bilinear", align_corners=False)
            edited = (x + change).clamp(0.0, 1.0)
            out = (edited * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [np.ascontiguousarray(o[..., ::-1]) for o in out]

    def finish_item(self, slot: Slot, prepared: _Input, output: np.ndarray) -> np.ndarray:
        self.store.put(slot.out_index, pred=blend_upper(output, prepared.pred))
        return slot.frame
