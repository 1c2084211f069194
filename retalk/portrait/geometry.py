"""Finding the face in a photo and laying out the working picture and the output frame.

Photos come in every size. The picture is read once, the face is found on a
downscaled copy (then in overlapping tiles when it is too small to be seen
there), its landmarks are refined on a crop around it, and everything after
that works on a **working picture** at output scale: the face region with
context (``crop``), or the whole picture (``resize``, ``full``). The full-size
original is dropped as soon as the working picture exists, so memory does not
grow with the photo's size.

Units: pixels; ``(x0, y0, x1, y1)`` boxes; sizes as ``(width, height)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from retalk.errors import InputError, NoFaceError
from retalk.face import landmarks as L
from retalk.face.tracker import FaceMesh, _quiet_native_stderr

log = logging.getLogger(__name__)

PREPROCESS_MODES = ("crop", "resize", "full")
"""``crop``: square face region; ``resize``: the whole picture scaled; ``full``: the whole picture, kept."""
FULL_MAX_SIDE = 1920
"""``full`` keeps the picture's own size up to this longer side (pixels) unless a size is given."""
DETECT_SIDE = 960
"""Longer side (pixels) of the copy the face is searched in."""
TILE_LEVELS = (2, 3, 5, 8)
"""Tiles per side tried, in order, when the whole picture shows no face (the face detector needs a face
at least ~1/6 of what it looks at; 8 × 8 tiles find a 250 px face in a 6000 px picture)."""
TILE_SIDE = 640
"""Longer side (pixels) a tile is shrunk to before the detector sees it."""
CROP_FACE_FRACTION = 0.52
"""In ``crop`` mode the face (forehead top to chin) fills this fraction of the output's height."""


@dataclass(frozen=True)
class PhotoLayout:
    """The picture to animate, at output scale.

    ``work``: RGB uint8 working picture. ``landmarks``: (478, 3) face mesh of the
    speaker in ``work`` pixels (z in pixel units, negative towards the camera).
    ``out_rect``: ``(x, y, width, height)`` of the output frame inside ``work``.
    ``scale``: ``work`` pixels per original pixel.
    """

    work: np.ndarray
    landmarks: np.ndarray
    out_rect: tuple[int, int, int, int]
    scale: float

    @property
    def out_size(self) -> tuple[int, int]:
        """(width, height) of the output frames."""
        return self.out_rect[2], self.out_rect[3]


def _box(lm: np.ndarray) -> np.ndarray:
    return np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float64)


def _largest(faces: list[np.ndarray]) -> np.ndarray | None:
    if not faces:
        return None
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in map(_box, faces)]
    return faces[int(np.argmax(areas))]


def _tiles(w: int, h: int, n: int) -> list[tuple[int, int, int, int]]:
    """Overlapping windows, ``n`` per side, each 1.6/n of the picture (so a face never falls between tiles)."""
    tw, th = min(w, int(np.ceil(1.6 * w / n))), min(h, int(np.ceil(1.6 * h / n)))
    xs = np.linspace(0, w - tw, n).round().astype(int)
    ys = np.linspace(0, h - th, n).round().astype(int)
    return [(int(x), int(y), int(x) + tw, int(y) + th) for y in ys for x in xs]


def find_face(image: np.ndarray, name: str = "photo") -> np.ndarray:
    """Landmarks (478, 3) of the largest face in an RGB picture of any size, in its pixels.

    The whole picture is searched at :data:`DETECT_SIDE` pixels; if nothing is
    found, overlapping tiles, ever smaller (:data:`TILE_LEVELS`; small faces in large pictures). The
    landmarks are then refined on a crop around the face. Raises
    :class:`NoFaceError` when there is no face.
    """
    h, w = image.shape[:2]
    level = 1
    # mediapipe's native side prints to the process's stderr when a graph meets new input sizes
    with _quiet_native_stderr():
        mesh = FaceMesh(static=True, max_faces=5, max_side=DETECT_SIDE)
        try:
            lm = _largest(mesh(image))
            if lm is None:
                for n in TILE_LEVELS:
                    tiles = _tiles(w, h, n)
                    if min(tiles[0][2] - tiles[0][0], tiles[0][3] - tiles[0][1]) < 160:
                        break
                    # tiles are looked at no larger than TILE_SIDE: shrink the picture once per level
                    s = min(1.0, TILE_SIDE / max(tiles[0][2] - tiles[0][0], tiles[0][3] - tiles[0][1]))
                    small = image if s >= 1.0 else cv2.resize(
                        image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
                    found = []
                    for x0, y0, x1, y1 in tiles:
                        a0, b0, a1, b1 = (int(round(v * s)) for v in (x0, y0, x1, y1))
                        for f in mesh(np.ascontiguousarray(small[b0:b1, a0:a1])):
                            f = f.astype(np.float64)
                            f[:, 0] = (f[:, 0] + a0) / s
                            f[:, 1] = (f[:, 1] + b0) / s
                            f[:, 2] /= s
                            found.append(f.astype(np.float32))
                    del small
                    lm = _largest(found)
                    if lm is not None:
                        level = n
                        break
            if lm is not None:
                lm = _refine(mesh, image, lm)
        finally:
            mesh.close()
    if lm is None:
        raise NoFaceError(f"{name}: no face found in the picture")
    if level > 1:
        log.info("%s: face found in %dx%d tiles", name, level, level)
    iod = float(L.interocular(lm))
    if iod < 12:
        log.warning("%s: the face is tiny (%.0f px between the eyes); the result will be blurry", name, iod)
    return lm


def _refine(mesh: FaceMesh, image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Re-run the mesh on a square crop around the face, about 512 px, for accurate landmarks."""
    h, w = image.shape[:2]
    b = _box(lm)
    side = 2.2 * max(b[2] - b[0], b[3] - b[1])
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = image[y0:y1, x0:x1]
    s = min(1.0, 512.0 / max(crop.shape[:2]))
    if s < 1.0:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
                          interpolation=cv2.INTER_AREA)
    faces = mesh(np.ascontiguousarray(crop))
    if not faces:
        return lm
    # the face in the crop nearest the one we found
    centre = np.array([cx - x0, cy - y0]) * s
    f = min(faces, key=lambda a: float(np.linalg.norm(a[:, :2].mean(0) - centre)))
    out = f.astype(np.float64)
    out[:, :2] = out[:, :2] / s + (x0, y0)
    out[:, 2] /= s
    return out.astype(np.float32)


def _even(v: float) -> int:
    return max(2, 2 * int(round(v / 2.0)))


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if (w, h) == (image.shape[1], image.shape[0]):
        return np.ascontiguousarray(image)
    shrink = w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def layout_photo(image: np.ndarray, landmarks: np.ndarray, mode: str = "crop", size: int | None = None) -> PhotoLayout:
    """Build the working picture for ``mode`` (see :data:`PREPROCESS_MODES`).

    ``size``: ``crop`` → output ``size``×``size`` (default 512); ``resize`` → the
    longer side is ``size`` (default 512, aspect kept, even sides); ``full`` → the
    picture's own size, shrunk to ``size`` (default :data:`FULL_MAX_SIDE`) on its longer side if larger.
    """
    if mode not in PREPROCESS_MODES:
        raise InputError(f"--preprocess {mode!r}: choose from {', '.join(PREPROCESS_MODES)}")
    h, w = image.shape[:2]
    lm = landmarks.astype(np.float64)
    if mode == "crop":
        side_out = _even(size or 512)
        face_h = float(np.linalg.norm(lm[152, :2] - lm[10, :2]))
        face_w = float(np.linalg.norm(lm[454, :2] - lm[234, :2]))
        s_src = max(face_h / CROP_FACE_FRACTION, 1.25 * face_w / CROP_FACE_FRACTION)
        s_src = min(s_src, float(min(w, h)))
        c = 0.5 * (lm[10, :2] + lm[152, :2])
        c[1] += 0.04 * s_src  # a little more neck than hair
        sx0 = float(np.clip(c[0] - s_src / 2, 0, w - s_src))
        sy0 = float(np.clip(c[1] - s_src / 2, 0, h - s_src))
        # context around the output square so the head can move without its surroundings being cut
        m = 0.45 * s_src
        cx0, cy0 = int(max(0, np.floor(sx0 - m))), int(max(0, np.floor(sy0 - m)))
        cx1, cy1 = int(min(w, np.ceil(sx0 + s_src + m))), int(min(h, np.ceil(sy0 + s_src + m)))
        scale = side_out / s_src
        ww, wh = max(side_out, round((cx1 - cx0) * scale)), max(side_out, round((cy1 - cy0) * scale))
        work = _resized(image[cy0:cy1, cx0:cx1], (ww, wh))
        ox = int(np.clip(round((sx0 - cx0) * scale), 0, ww - side_out))
        oy = int(np.clip(round((sy0 - cy0) * scale), 0, wh - side_out))
        sx, sy = ww / (cx1 - cx0), wh / (cy1 - cy0)
        lm_w = lm.copy()
        lm_w[:, 0] = (lm[:, 0] - cx0) * sx
        lm_w[:, 1] = (lm[:, 1] - cy0) * sy
        lm_w[:, 2] = lm[:, 2] * sx
        rect = (ox, oy, side_out, side_out)
    else:
        if mode == "resize":
            longer = size or 512
        else:
            longer = min(max(w, h), size or FULL_MAX_SIDE)
        scale = longer / float(max(w, h))
        ww, wh = _even(w * scale), _even(h * scale)
        work = _resized(image, (ww, wh))
        sx, sy = ww / w, wh / h
        lm_w = lm.copy()
        lm_w[:, 0] *= sx
        lm_w[:, 1] *= sy
        lm_w[:, 2] *= sx
        rect = (0, 0, ww, wh)
    return PhotoLayout(work, _refined_in_work(work, lm_w.astype(np.float32)), rect, float(scale))


def _refined_in_work(work: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Landmarks measured on the working picture itself (the pixels the renderer uses), else ``lm`` mapped there."""
    with _quiet_native_stderr():
        mesh = FaceMesh(static=True, max_faces=5, max_side=DETECT_SIDE)
        try:
            return _refine(mesh, work, lm)
        finally:
            mesh.close()
