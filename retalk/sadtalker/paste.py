"""Paste-back for ``--preprocess full|extfull``: the rendered face crop blended into the photo.

The reference resizes each rendered frame to the crop box and puts it into the photo with
``cv2.seamlessClone(NORMAL_CLONE)`` and an all-white mask: a Poisson solve per frame (about 40 s
per clip in the seed's measurements). Here the blend is a **feathered alpha blend** computed once
per photo: the weight is 1 inside the box and falls to 0 at its border along a smoothstep ramp
``feather`` × the box's shorter side wide, so the photo comes back exactly on and outside the box
edge and no seam shows. Per frame it is one resize and one weighted sum over the box
(``cv2.blendLinear``, uint8 in and out): about 1 ms for a 500 px box, far below the renderer's cost.

The rendered face and the photo match in colour away from the moving head (the renderer redraws
the photo itself), which is why a plain feather is enough where the reference needed Poisson
blending's colour correction.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["FEATHER", "Paster", "feather_mask"]

FEATHER = 0.12
"""Default width of the blend ramp, as a fraction of the box's shorter side."""


def feather_mask(height: int, width: int, feather: float = FEATHER) -> np.ndarray:
    """(height, width) float32 weights: 0 on the border, 1 deeper than ``feather``·min(h, w), smoothstep between."""
    ramp = max(1.0, float(feather) * min(height, width))

    def axis(n: int) -> np.ndarray:
        # distance of each pixel centre from the nearer edge, in pixels (0.5 for the outermost pixel)
        d = np.minimum(np.arange(n) + 0.5, n - 0.5 - np.arange(n)).astype(np.float32)
        t = np.clip((d - 0.5) / ramp, 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)

    return np.outer(axis(height), axis(width)).astype(np.float32)


@dataclass(frozen=True)
class Paster:
    """Blends rendered crops into one background picture at a fixed box.

    ``background``: (H, W, 3) uint8 RGB, the photo (never modified). ``box``: (x1, y1, x2, y2) pixels of
    the background where the rendered crop goes (may reach past the picture: the part outside is
    dropped, as the resized crop is cut to the picture). ``feather``: see :data:`FEATHER`.
    Build with :meth:`create`.
    """

    background: np.ndarray
    box: tuple[int, int, int, int]
    clip: tuple[int, int, int, int]  # the box cut to the picture
    weight: np.ndarray  # (h, w) float32 over the clipped box
    inverse: np.ndarray  # 1 - weight

    @classmethod
    def create(cls, background: np.ndarray, box: tuple[int, int, int, int], feather: float = FEATHER) -> Paster:
        h, w = background.shape[:2]
        x1, y1, x2, y2 = (int(v) for v in box)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"empty paste box {box}")
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if cx2 <= cx1 or cy2 <= cy1:
            raise ValueError(f"paste box {box} lies outside the {w}x{h} picture")
        full = feather_mask(y2 - y1, x2 - x1, feather)
        weight = np.ascontiguousarray(full[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1])
        return cls(background, (x1, y1, x2, y2), (cx1, cy1, cx2, cy2), weight, np.ascontiguousarray(1.0 - weight))

    @property
    def box_size(self) -> tuple[int, int]:
        """(width, height) of the whole box: the size a rendered crop is resized to."""
        x1, y1, x2, y2 = self.box
        return x2 - x1, y2 - y1

    def paste(self, crop: np.ndarray) -> np.ndarray:
        """A new (H, W, 3) uint8 frame: the background with ``crop`` (any size, RGB uint8) blended into the box."""
        x1, y1, x2, y2 = self.box
        cx1, cy1, cx2, cy2 = self.clip
        bw, bh = self.box_size
        if crop.shape[:2] != (bh, bw):
            crop = cv2.resize(crop, (bw, bh), interpolation=cv2.INTER_LINEAR)
        part = np.ascontiguousarray(crop[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1])
        out = self.background.copy()
        region = np.ascontiguousarray(out[cy1:cy2, cx1:cx2])
        out[cy1:cy2, cx1:cx2] = cv2.blendLinear(part, region, self.weight, self.inverse)
        return out
