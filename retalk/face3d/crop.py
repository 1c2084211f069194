"""FFHQ-style face crops from 68 landmarks, as VideoReTalking and SadTalker cut them.

Two uses of the same oriented quad (NVlabs' FFHQ recipe):

* :func:`croper_box`: the one axis-aligned box per video that VideoReTalking's ``Croper`` (and
  SadTalker's ``croper.py``) derives from the first face; every frame is cut to it and resized to 256.
* :func:`aligned_crops` / :func:`paste_crop`: ``crop_faces``-style rotated 256×256 crops (PIL ``QUAD``
  warp, bilinear) and the perspective transform that pastes a crop back (VideoReTalking Step 6.2/6.4).

All coordinates are pixels (x right, y down); landmarks are the 68-point iBUG layout
(:mod:`retalk.face.landmarks68`). Images are uint8 (H, W, 3) in any colour order (the warps do not mix
channels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

EYE_LEFT, EYE_RIGHT, MOUTH_LEFT, MOUTH_RIGHT = slice(36, 42), slice(42, 48), 48, 54


@dataclass(frozen=True)
class FaceQuad:
    """The FFHQ oriented square: centre ``c`` and half-axes ``x`` (across the face) and ``y`` (down it), pixels."""

    c: tuple[float, float]
    x: tuple[float, float]
    y: tuple[float, float]

    @property
    def corners(self) -> np.ndarray:
        """(4, 2) float64 corners ``c−x−y, c−x+y, c+x+y, c+x−y`` (top-left, bottom-left, bottom-right, top-right)."""
        c, x, y = (np.asarray(v, np.float64) for v in (self.c, self.x, self.y))
        return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])

    @property
    def size(self) -> float:
        """Side length of the square (``qsize``), pixels."""
        return 2.0 * math.hypot(*self.x)


def face_quad(lm68: np.ndarray, scale: float = 1.0) -> FaceQuad:
    """The FFHQ quad of one face; ``lm68`` (68, 2) pixels, ``scale`` multiplies the half-axes."""
    lm = np.asarray(lm68, np.float64)
    eye_left = lm[EYE_LEFT].mean(0)
    eye_right = lm[EYE_RIGHT].mean(0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    # Across-face axis: the eye line, tilted by the eye→mouth direction turned a quarter.
    x = eye_to_eye - np.flipud(eye_to_mouth) * np.array([-1.0, 1.0])
    x = x / np.hypot(*x)
    x = x * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) * scale
    y = np.flipud(x) * np.array([-1.0, 1.0])
    c = eye_avg + eye_to_mouth * 0.1
    return FaceQuad(tuple(map(float, c)), tuple(map(float, x)), tuple(map(float, y)))  # type: ignore[arg-type]


def _shrink_and_border(quad: np.ndarray, qsize: float, size: tuple[int, int], output_size: int,
                       ) -> tuple[int, tuple[int, int], np.ndarray, float, tuple[int, int, int, int]]:
    """FFHQ's shrink step and border box: (shrink, shrunken (W, H), quad, qsize, border crop box)."""
    w, h = size
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        w, h = int(np.rint(float(w) / shrink)), int(np.rint(float(h) / shrink))
        quad = quad / shrink
        qsize = qsize / shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    box = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
           int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    box = (max(box[0] - border, 0), max(box[1] - border, 0), min(box[2] + border, w), min(box[3] + border, h))
    return shrink, (w, h), quad, qsize, box


@dataclass(frozen=True)
class CropBox:
    """VideoReTalking's per-video crop (``Croper.crop``): a border box, then a quad box inside it.

    ``border``: (clx, cly, crx, cry) in the (possibly shrunken) image; ``inner``: (lx, ly, rx, ry), ints,
    relative to ``border``'s corner; ``shrink``: the FFHQ shrink factor (1 = none); ``size``: (W, H) of the
    image the boxes refer to (the frame size, or the shrunken size ``rint(W / shrink)``). Reference quirks kept:
    ``ry`` is clipped with the image **width**; with ``shrink > 1`` (faces over ~2048 px) VideoReTalking applies
    the shrunken boxes to full-size frames (:meth:`cut`), SadTalker resizes the frames to ``size`` first
    (:meth:`cut_resized`).
    """

    border: tuple[int, int, int, int]
    inner: tuple[int, int, int, int]
    shrink: int = 1
    size: tuple[int, int] = (0, 0)

    def cut(self, frame: np.ndarray) -> np.ndarray:
        """VideoReTalking's cut: ``frame[cly:cry, clx:crx][ly:ry, lx:rx]`` (a view)."""
        clx, cly, crx, cry = self.border
        lx, ly, rx, ry = self.inner
        return frame[cly:cry, clx:crx][ly:ry, lx:rx]

    def cut_resized(self, frame: np.ndarray, inner: bool = True) -> np.ndarray:
        """SadTalker's cut: ``cv2.resize`` to :attr:`size` (bilinear), the border box, then (unless ``inner`` is
        False: SadTalker's ``ext`` modes / ``--still``) the inner box. Returns a new array."""
        img = cv2.resize(frame, self.size)
        clx, cly, crx, cry = self.border
        img = img[cly:cry, clx:crx]
        if inner:
            lx, ly, rx, ry = self.inner
            img = img[ly:ry, lx:rx]
        return np.ascontiguousarray(img)

    def region(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(oy1, oy2, ox1, ox2)``: where the cut lies in a ``height`` × ``width`` frame (the reference's formula)."""
        clx, cly, _, _ = self.border
        lx, ly, rx, ry = self.inner
        return cly + ly, min(cly + ry, height), clx + lx, min(clx + rx, width)


def croper_box(lm68: np.ndarray, width: int, height: int, xsize: int = 512) -> CropBox:
    """The crop box VideoReTalking's / SadTalker's ``Croper`` derives from one face.

    ``lm68``: (68, 2) pixels in a ``width`` × ``height`` frame; ``xsize``: the FFHQ output size used only by
    the shrink rule (``shrink = floor(qsize / xsize / 2)``, applied when > 1).
    """
    q = face_quad(lm68)
    shrink, (w, h), quad, _qsize, box = _shrink_and_border(q.corners, q.size, (width, height), xsize)
    if box[2] - box[0] < w or box[3] - box[1] < h:
        quad = quad - np.array(box[:2], np.float64)
    quad = (quad + 0.5).reshape(-1)
    lx = max(min(quad[0], quad[2]), 0)
    ly = max(min(quad[1], quad[7]), 0)
    rx = min(max(quad[4], quad[6]), w)
    ry = min(max(quad[3], quad[5]), w)  # the width, as the reference writes it
    return CropBox(border=box, inner=(int(lx), int(ly), int(rx), int(ry)), shrink=shrink, size=(w, h))


def smoothed_quads(lms: np.ndarray, scale: float = 1.0, center_sigma: float = 0.0, xy_sigma: float = 0.0) -> np.ndarray:
    """Per-frame FFHQ quads (N, 4, 2) float64 from (N, 68, 2) landmarks, optionally Gaussian-smoothed over time.

    ``center_sigma`` / ``xy_sigma``: σ in frames for the centres and the half-axes (0 = none; VideoReTalking uses 0).
    """
    qs = [face_quad(lm, scale) for lm in np.asarray(lms, np.float64)]
    cs = np.array([q.c for q in qs])
    xs = np.array([q.x for q in qs])
    ys = np.array([q.y for q in qs])
    if center_sigma:
        cs = gaussian_filter1d(cs, sigma=center_sigma, axis=0)
    if xy_sigma:
        xs = gaussian_filter1d(xs, sigma=xy_sigma, axis=0)
        ys = gaussian_filter1d(ys, sigma=xy_sigma, axis=0)
    return np.stack([cs - xs - ys, cs - xs + ys, cs + xs + ys, cs + xs - ys], axis=1)


def crop_quad(image: np.ndarray, quad: np.ndarray, size: int = 256) -> np.ndarray:
    """One ``crop_image``-style aligned crop: shrink, border box, then PIL ``QUAD`` warp (bilinear) to size².

    ``image``: (H, W, 3) uint8; ``quad``: (4, 2) corners as :attr:`FaceQuad.corners`. No padding (as
    ``crop_faces`` calls it): outside the image the crop is black. Returns (size, size, 3) uint8.
    """
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image))
    quad = np.asarray(quad, np.float64).copy()
    qsize = 2.0 * float(np.hypot(*((quad[3] - quad[1]) / 2)))
    shrink, (w, h), quad, _qsize, box = _shrink_and_border(quad, qsize, img.size, size)
    if shrink > 1:
        img = img.resize((w, h), Image.Resampling.LANCZOS)  # Pillow's ANTIALIAS is LANCZOS
    if box[2] - box[0] < img.size[0] or box[3] - box[1] < img.size[1]:
        img = img.crop(box)
        quad = quad - np.array(box[:2], np.float64)
    out = img.transform((size, size), Image.Transform.QUAD, tuple((quad + 0.5).reshape(-1)), Image.Resampling.BILINEAR)
    return np.asarray(out)


def perspective_coefficients(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """8 coefficients (a..h) of the perspective map taking the 4 ``src`` points to the 4 ``dst`` points.

    ``dst = ((a·x + b·y + c) / (g·x + h·y + 1), (d·x + e·y + f) / (g·x + h·y + 1))``; solved by least squares
    through the normal equations, as ``calc_alignment_coefficients`` does. Returns (8,) float64.
    """
    rows, rhs = [], []
    for (x, y), (u, v) in zip(np.asarray(src, np.float64), np.asarray(dst, np.float64)):
        rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y])
        rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y])
        rhs.extend([u, v])
    a = np.array(rows)
    return np.linalg.inv(a.T @ a) @ a.T @ np.array(rhs)


def inverse_coefficients(quad: np.ndarray, size: int = 256) -> np.ndarray:
    """Coefficients mapping frame pixels to crop pixels for :func:`paste_crop` (``quad + 0.5`` → the size² corners)."""
    corners = np.array([[0, 0], [0, size], [size, size], [size, 0]], np.float64)
    return perspective_coefficients(np.asarray(quad, np.float64) + 0.5, corners)


@dataclass(frozen=True)
class AlignedCrops:
    """``crop_faces``' result: crops (N, size, size, 3) uint8, quads (N, 4, 2) and inverse coefficients (N, 8)."""

    crops: np.ndarray
    quads: np.ndarray
    inverse: np.ndarray


def aligned_crops(frames: list[np.ndarray], lms: np.ndarray, size: int = 256, scale: float = 1.0,
                  center_sigma: float = 0.0, xy_sigma: float = 0.0) -> AlignedCrops:
    """``crop_faces(size, (lm, frame)…, scale)``: aligned crops of every frame with their paste-back transforms.

    ``frames``: N uint8 (H, W, 3) images; ``lms``: (N, 68, 2) pixels.
    """
    quads = smoothed_quads(lms, scale, center_sigma, xy_sigma)
    crops = np.stack([crop_quad(f, q, size) for f, q in zip(frames, quads)])
    inverse = np.stack([inverse_coefficients(q, size) for q in quads])
    return AlignedCrops(crops=crops, quads=quads, inverse=inverse)


def paste_crop(crop: np.ndarray, inverse: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Paste an aligned crop back (``paste_image``): PIL perspective warp (bilinear) of the RGBA crop, its alpha as mask.

    ``crop``: (s, s, 3) uint8; ``inverse``: (8,) from :func:`inverse_coefficients`; ``background``: (H, W, 3)
    uint8. Returns a new (H, W, 3) uint8 image.
    """
    from PIL import Image

    bg = Image.fromarray(np.ascontiguousarray(background)).convert("RGBA")
    projected = Image.fromarray(np.ascontiguousarray(crop)).convert("RGBA").transform(
        bg.size, Image.Transform.PERSPECTIVE, tuple(float(v) for v in inverse), Image.Resampling.BILINEAR)
    bg.paste(projected, (0, 0), mask=projected)
    return np.asarray(bg.convert("RGB"))
