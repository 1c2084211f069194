"""``--preprocess crop|extcrop|resize|full|extfull``: the photo → SadTalker's ``--size``² source image.

The crop geometry is the reference's (``src/utils/croper.py`` + ``src/utils/preprocess.py``,
computed by :func:`retalk.face3d.crop.croper_box`): the FFHQ quad from 68 landmarks of the first face,
its bounding box ± a border (``crop``), the quad box inside it (``quad``), and

* ``crop`` / ``full``: the photo cut to ``[cly:cry, clx:crx][ly:ry, lx:rx]``;
* ``extcrop`` / ``extfull``: cut to the border box ``[cly:cry, clx:crx]`` only;
* ``resize``: the whole photo, squeezed to a square (aspect not kept, as the reference);

then ``cv2.resize`` (bilinear) to ``--size``². The rendered frames are resized back to
(``size``, ``int(size · h / w)``) of the quad box (crop modes), and for full/extfull pasted into the photo
at the region that was cut (:mod:`retalk.sadtalker.paste`; the reference pastes at the quad box
even where the photo's edge clipped it, which stretches the face: a fix).

**Substitution**: the reference finds the face with facexlib's RetinaFace and its 68 points with an
AWing FAN (98 points → 68). retalk uses its own face finder (:func:`retalk.portrait.geometry.find_face`,
MediaPipe face mesh, any picture size) and :func:`retalk.face.landmarks68.mesh_to_68`; the geometry
computed from the 68 points is unchanged. The 68 points of the source image (for the 3DMM alignment)
are the photo's points mapped through the crop and resize instead of a second detection.

**Large photos** never fail: the face is found on a ≤ 960 px copy (tiles for small faces); the crop
is cut from the full-resolution photo. The reference's "shrink" (a face quad ≥ 2048 px: the photo is
first scaled down by a whole factor) is kept for the crop; its paste box, which the reference applies to
the unshrunk photo, is mapped back to the photo's own pixels here. For full/extfull the photo is the
video frame; it is scaled so its longer side is at most :data:`FULL_MAX_SIDE` (the paste box with it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from retalk.face3d.crop import CropBox, croper_box
from retalk.sadtalker.files import PREPROCESS_MODES

__all__ = ["FULL_MAX_SIDE", "CutRegion", "SourcePhoto", "cut_region", "prepare_source"]

log = logging.getLogger(__name__)

FULL_MAX_SIDE = 1920
"""Longest side (pixels) of the output frame for ``full``/``extfull``; larger photos are scaled down to it."""


def _quad_box(box: CropBox) -> tuple[int, int, int, int]:
    """(ox1, oy1, ox2, oy2): the quad box in the (scaled) picture (may reach past its border)."""
    clx, cly, _, _ = box.border
    lx, ly, rx, ry = box.inner
    return clx + lx, cly + ly, clx + rx, cly + ry


@dataclass(frozen=True)
class SourcePhoto:
    """The source picture of one SadTalker run.

    ``image``: (S, S, 3) uint8 RGB, what the networks see. ``landmarks``: (68, 2) float32 pixels of
    ``image``. ``out_size``: (width, height) of the rendered video frame for crop/extcrop/resize
    (``S`` × ``int(S·h/w)`` of the quad box, or of the picture for resize). ``background`` and
    ``paste_box``: for full/extfull, the output frame ((H, W, 3) uint8 RGB, longer side ≤
    :data:`FULL_MAX_SIDE`) and the (x1, y1, x2, y2) box in it the rendered crop is blended into; None otherwise.
    """

    image: np.ndarray
    landmarks: np.ndarray
    size: int
    preprocess: str
    out_size: tuple[int, int]
    background: np.ndarray | None = None
    paste_box: tuple[int, int, int, int] | None = None


def _map_points(lm: np.ndarray, x0: float, y0: float, sx: float, sy: float) -> np.ndarray:
    out = np.empty_like(lm, dtype=np.float32)
    out[:, 0] = (lm[:, 0] - x0) * sx
    out[:, 1] = (lm[:, 1] - y0) * sy
    return out


@dataclass(frozen=True)
class CutRegion:
    """Where a picture is cut for the source image: (x0, y0, x1, y1) pixels of the picture scaled down by
    ``shrink`` (a whole factor, 1: not) to ``rsize`` (width, height); ``None`` box: the whole picture (resize)."""

    box: tuple[int, int, int, int] | None
    shrink: int = 1
    rsize: tuple[int, int] | None = None

    def cut(self, picture: np.ndarray, size: int) -> np.ndarray:
        """The (size, size, 3) uint8 source image from ``picture`` (bilinear, as the reference's cv2.resize).

        Equal to :meth:`retalk.face3d.crop.CropBox.cut_resized` then the resize to ``size``, without scaling the
        whole picture when the shrink rule does not apply (a large photo is not copied)."""
        if self.box is None:
            return cv2.resize(picture, (size, size))
        x0, y0, x1, y1 = self.box
        if self.shrink > 1 and self.rsize is not None:  # the reference scales the whole picture first
            region = cv2.resize(picture, self.rsize)[y0:y1, x0:x1]
        else:
            region = picture[y0:y1, x0:x1]
        return cv2.resize(np.ascontiguousarray(region), (size, size))

    def map_points(self, points: np.ndarray, size: int, width: int, height: int) -> np.ndarray:
        """(N, 2) pixel points of the ``width``×``height`` picture → pixels of the cut source image."""
        if self.box is None:
            return _map_points(points, 0.0, 0.0, size / width, size / height)
        x0, y0, x1, y1 = self.box
        k = self.shrink
        return _map_points(points, x0 * k, y0 * k, size / ((x1 - x0) * k), size / ((y1 - y0) * k))


def cut_region(lm68: np.ndarray, width: int, height: int, preprocess: str) -> tuple[CutRegion, CropBox | None]:
    """The region ``preprocess`` cuts from a ``width``×``height`` picture whose face has (68, 2) points ``lm68``."""
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"preprocess {preprocess!r} not in {PREPROCESS_MODES}")
    if preprocess == "resize":
        return CutRegion(None), None
    geo = croper_box(lm68, width, height)
    clx, cly, crx, cry = geo.border
    lx, ly, rx, ry = geo.inner
    if preprocess.startswith("ext"):
        box = (clx, cly, crx, cry)
    else:  # [cly:cry, clx:crx][ly:ry, lx:rx]: the second cut clipped to the first, as numpy slicing does
        box = (clx + lx, cly + ly, min(clx + rx, crx), min(cly + ry, cry))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"empty crop {box} for a {width}x{height} picture")
    k = geo.shrink if geo.shrink > 1 else 1  # the rule scales only for factors above 1
    return CutRegion(box, k, geo.size if k > 1 else (width, height)), geo


def prepare_source(photo: np.ndarray, lm68: np.ndarray, preprocess: str = "crop", size: int = 256) -> SourcePhoto:
    """The source image and output geometry for ``photo`` ((H, W, 3) uint8 RGB), face points ``lm68`` (68, 2)."""
    h, w = photo.shape[:2]
    s = int(size)
    region, geo = cut_region(lm68, w, h, preprocess)
    image = region.cut(photo, s)
    pts = region.map_points(np.asarray(lm68, np.float32), s, w, h)
    if geo is None:
        return SourcePhoto(image, pts, s, preprocess, (s, int(s * h / w)))
    ox1, oy1, ox2, oy2 = _quad_box(geo)
    out_size = (s, int(s * (oy2 - oy1) / (ox2 - ox1)))
    if "full" not in preprocess:
        return SourcePhoto(image, pts, s, preprocess, out_size)
    assert region.box is not None
    f = min(1.0, FULL_MAX_SIDE / max(h, w))
    scale = region.shrink * f  # scaled-picture pixels → output-frame pixels
    background = photo if f >= 1.0 else cv2.resize(photo, (max(1, round(w * f)), max(1, round(h * f))),
                                                   interpolation=cv2.INTER_AREA)
    if f < 1.0:
        log.info("full: the %dx%d photo is written at %dx%d (longer side at most %d)", w, h,
                 background.shape[1], background.shape[0], FULL_MAX_SIDE)
    # pasted where it was cut (the reference uses the unclipped quad box, stretching a face cut at the edge)
    paste_box = tuple(int(round(v * scale)) for v in region.box)
    return SourcePhoto(image, pts, s, preprocess, out_size, np.ascontiguousarray(background),
                       paste_box)  # type: ignore[arg-type]
