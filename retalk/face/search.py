"""Faces too small for the whole-frame detector: found in tiles, then tracked on a region around them.

mediapipe's face detector looks at the whole picture shrunk to 128 × 128 pixels and needs a face about a
sixth of it: in a 720 × 1080 full-body shot a 60 px face is 7 px there and is never found. Two pieces:

* :func:`search_tiles` looks at overlapping square tiles of the frame at full resolution (tiles of
  :data:`TILE_SIDES` pixels, overlapping by half, so every face up to half a tile lies whole in one).
  Its landmarks are mapped back to frame pixels.
* :class:`RegionTracker` follows such a face on a fixed-size square crop around it, at full resolution
  (:data:`REGION_FACTOR` times the face's size): the face fills a quarter of what the mesh sees, so the mesh
  tracks it and, if it loses it, detects it again inside the crop. The crop moves only when the face nears
  its edge (:data:`RECENTRE_SHARE`), so the mesh mostly sees a steady picture.

Units: pixels of the frame; boxes ``(x0, y0, x1, y1)``.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

TILE_SIDES = (512, 320)  # tile sizes tried in turn (pixels); each finds faces from about 1/8.5 to 1/2 of it
# (measured on the generated full-body shot: 512 px tiles find 60 px faces, 320 px tiles 36 px ones; a search
# over a face-less 1080p frame looks at 94 tiles in about 0.4 s)
MIN_FACE_PX = 24  # a face narrower than this (landmark box, pixels) is not tracked
REGION_FACTOR = 4.0  # the region crop's side: this many times the face's larger side ...
MIN_REGION_PX = 160  # ... and at least this many pixels
RECENTRE_SHARE = 0.2  # the crop moves when the face's centre is this share of its side off the crop's centre
SMALL_FACE_SHARE = 1 / 6  # a face narrower than this share of the frame's longer side is tracked on a region


def face_box(lm: np.ndarray) -> np.ndarray:
    """Landmark box (x0, y0, x1, y1), float32, of ``lm`` (478, >=2)."""
    return np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float32)


def tile_origins(length: int, side: int) -> list[int]:
    """Starts of tiles of ``side`` pixels covering ``length`` pixels, each half a tile after the previous."""
    if length <= side:
        return [0]
    n = int(np.ceil((length - side) / (side / 2))) + 1
    return [int(round(v)) for v in np.linspace(0, length - side, n)]


def search_tiles(mesh, frame: np.ndarray) -> list[np.ndarray]:  # noqa: ANN001 - a face.tracker.FaceMesh
    """Faces (each (478, 3) float32, frame pixels) found in tiles of the RGB ``frame``, one tile size after the
    other (:data:`TILE_SIDES`) until one finds a face; duplicates from overlapping tiles are dropped.

    ``mesh``: a static (per picture) :class:`retalk.face.tracker.FaceMesh` with no shrinking.
    Tile sizes not smaller than the frame are skipped (the whole-frame look covers them).
    """
    h, w = frame.shape[:2]
    for side in TILE_SIDES:
        if side >= max(h, w):
            continue
        found: list[np.ndarray] = []
        for y0 in tile_origins(h, side):
            for x0 in tile_origins(w, side):
                tile = np.ascontiguousarray(frame[y0:y0 + side, x0:x0 + side])
                for f in mesh(tile):
                    f = f.copy()
                    f[:, 0] += x0
                    f[:, 1] += y0
                    b = face_box(f)
                    if b[2] - b[0] < MIN_FACE_PX:
                        continue
                    centre = 0.5 * (b[:2] + b[2:])
                    if all(np.linalg.norm(centre - 0.5 * (face_box(g)[:2] + face_box(g)[2:])) > 0.5 * (b[2] - b[0])
                           for g in found):
                        found.append(f)
        if found:
            log.debug("%d face(s) found in %d px tiles", len(found), side)
            return found
    return []


def region_side(box: np.ndarray, frame_shape: tuple[int, ...]) -> int:
    """The region crop's side (pixels) for a face in ``box``, within a frame of ``frame_shape`` (h, w, ...)."""
    size = float(max(box[2] - box[0], box[3] - box[1]))
    return int(min(max(REGION_FACTOR * size, MIN_REGION_PX), min(frame_shape[:2])))


class RegionTracker:
    """Tracks one small face on a square crop around it (see the module docstring).

    ``mesh``: a tracking (video-mode) one-face :class:`retalk.face.tracker.FaceMesh` with no shrinking, used for
    this face only while it is followed (the caller owns it); ``box``: where the face was found; ``shape``: the
    frames' (height, width).
    """

    def __init__(self, mesh, box: np.ndarray, shape: tuple[int, ...]) -> None:  # noqa: ANN001
        self.mesh = mesh
        self.side = region_side(box, shape)
        self.shape = shape[:2]
        self.origin = self._centred(0.5 * (box[:2] + box[2:]))

    def _centred(self, centre: np.ndarray) -> tuple[int, int]:
        h, w = self.shape
        x0 = int(np.clip(round(centre[0] - self.side / 2), 0, w - self.side))
        y0 = int(np.clip(round(centre[1] - self.side / 2), 0, h - self.side))
        return x0, y0

    def track(self, frame: np.ndarray) -> np.ndarray | None:
        """The face's landmarks (478, 3) float32 in ``frame``'s pixels, or None when the mesh lost it."""
        x0, y0 = self.origin
        faces = self.mesh(np.ascontiguousarray(frame[y0:y0 + self.side, x0:x0 + self.side]))
        if not faces:
            return None
        lm = faces[0].copy()
        lm[:, 0] += x0
        lm[:, 1] += y0
        b = face_box(lm)
        centre = 0.5 * (b[:2] + b[2:])
        if np.abs(centre - (np.array(self.origin) + self.side / 2)).max() > RECENTRE_SHARE * self.side:
            self.origin = self._centred(centre)
        return lm
