"""VideoReTalking Step 5: GPEN restoration of the stabilised faces, composed back with a ParseNet face mask.

The reference (``FaceEnhancement.process(img, img, face_enhance=True)``) runs per 256×256 BGR frame:
RetinaFace → 5 points → similarity warp to GPEN's 512 template → GPEN-BFR-512 → ParseNet face mask →
mask post-processing → inverse warps → two ``convertScaleAbs`` compositions. retalk does the same with two
documented differences:

* **Landmarks instead of RetinaFace**: the 5 points are taken from the frame's 68 landmarks (eye centres =
  means of points 36–41 / 42–47, nose tip 30, mouth corners 48 / 54, :func:`retalk.face.landmarks68.five_points`),
  and the "face box" whose smaller side decides the small-face filter is the 68 points' bounding box. One face per
  frame. A frame without landmarks is returned unchanged (the reference would fail).
* **Batched**: GPEN and ParseNet see (B, 3, 512, 512) batches; the warps and masks are per frame.

Networks (retalk ports, registry ``gpen`` / ``parsenet``): ``gpen(x)`` with x RGB in [−1, 1] returns
``(image, latents)``, image RGB in [−1, 1]; ``parsenet(x)`` with the same input returns ``(logits (B, 19, 512,
512), image)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from retalk.face.landmarks68 import five_points

log = logging.getLogger(__name__)

SIZE = 512
#: GPEN's 5-point template in the 512 crop (FaceEnhancement's reference points: 96×112 points, square, padding 0.25).
TEMPLATE_512 = np.array([[202.04068428190476, 242.8839634590476], [309.43024554666664, 242.28998092190477],
                         [256.07679966476195, 303.9591703771428], [211.9597749333333, 366.82819474285714],
                         [300.8911249066667, 366.33630951619045]], np.float64)
#: ParseNet class → mask value for the face region (skin, nose, glasses, eyes, brows, mouth, lips).
FACE_CLASSES = (0, 255, 255, 255, 255, 255, 255, 255, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0)
#: The 3×3 smoothing filter applied to restored faces whose box is under :data:`SMALL_FACE` pixels.
SMALL_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16.0
SMALL_FACE = 100
BORDER = 20
#: The reference warps with ``flags=3`` (``INTER_AREA``), which ``cv2.warpAffine`` runs as bilinear (checked:
#: identical output); bilinear is named here. Not bicubic.
WARP = cv2.INTER_LINEAR


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True, scale: float = 1.0,
            ) -> tuple[np.ndarray, float]:
    """Least-squares similarity (Umeyama 1991) taking ``src`` (n, 2) to ``dst`` (n, 2): (3×3 matrix, scale).

    With ``estimate_scale=False`` the given ``scale`` is used (the reference's inverse uses 1/scale).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    dim = src.shape[1]
    sm, dm = src.mean(0), dst.mean(0)
    sd, dd = src - sm, dst - dm
    a = dd.T @ sd / src.shape[0]
    d = np.ones(dim)
    if np.linalg.det(a) < 0:
        d[-1] = -1.0
    t = np.eye(dim + 1)
    u, s, v = np.linalg.svd(a)
    rank = np.linalg.matrix_rank(a)
    if rank == 0:
        return np.full_like(t, np.nan), float("nan")
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(v) > 0:
            t[:dim, :dim] = u @ v
        else:
            dd_ = d.copy()
            dd_[-1] = -1.0
            t[:dim, :dim] = u @ np.diag(dd_) @ v
    else:
        t[:dim, :dim] = u @ np.diag(d) @ v
    if estimate_scale:
        scale = float(1.0 / sd.var(axis=0).sum() * (s @ d))
    t[:dim, dim] = dm - scale * (t[:dim, :dim] @ sm)
    t[:dim, :dim] *= scale
    return t, scale


@dataclass(frozen=True)
class FaceWarp:
    """The warp of one face into GPEN's 512 crop: ``forward`` (2, 3) frame → crop, ``inverse`` (2, 3) crop → frame,
    ``small``: True where the face box's smaller side is under 100 px (the restored crop is then smoothed)."""

    forward: np.ndarray
    inverse: np.ndarray
    small: bool


def face_warp(lm68: np.ndarray) -> FaceWarp:
    """The GPEN warp of a face from its 68 landmarks (pixels)."""
    pts = five_points(lm68).astype(np.float64)
    fwd, scale = umeyama(pts, TEMPLATE_512)
    inv, _ = umeyama(TEMPLATE_512, pts, False, scale=1.0 / scale)
    lm = np.asarray(lm68, np.float64)
    w, h = np.ptp(lm[:, 0]), np.ptp(lm[:, 1])
    return FaceWarp(forward=fwd[:2], inverse=inv[:2], small=bool(min(w, h) < SMALL_FACE))


def warp_to_template(frame: np.ndarray, warp: FaceWarp) -> np.ndarray:
    """The face of ``frame`` (H, W, 3) uint8 warped into GPEN's (512, 512, 3) crop (bilinear, as the reference)."""
    return cv2.warpAffine(frame, warp.forward, (SIZE, SIZE), flags=WARP)


def mask_postprocess(mask: np.ndarray, border: int = BORDER) -> np.ndarray:
    """Zero a ``border``-pixel frame of ``mask`` **in place** (as the reference does), then blur twice
    (101×101, σ 11). Returns the blurred float32 mask."""
    mask[:border, :] = 0
    mask[-border:, :] = 0
    mask[:, :border] = 0
    mask[:, -border:] = 0
    mask = cv2.GaussianBlur(mask, (101, 101), 11)
    mask = cv2.GaussianBlur(mask, (101, 101), 11)
    return mask.astype(np.float32)


def _device(net: Any) -> Any:
    import torch

    try:
        return next(net.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def gpen_restore(gpen: Any, crops: list[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
    """GPEN on BGR uint8 512×512 crops (``FaceGAN.process``): restored BGR uint8 crops (values truncated).

    The network sees (B, 3, 512, 512) RGB in [−1, 1] and returns ``(image, latents)``, image in [−1, 1].
    """
    import torch

    device = _device(gpen)
    out: list[np.ndarray] = []
    with torch.no_grad():
        for k in range(0, len(crops), max(1, int(batch_size))):
            x = torch.from_numpy(np.stack(crops[k:k + batch_size])).to(device)
            x = ((x.float() / 255.0 - 0.5) / 0.5).permute(0, 3, 1, 2).flip(1)  # BGR → RGB
            y = gpen(x)[0]
            img = (y * 0.5 + 0.5).flip(1).permute(0, 2, 3, 1).float().cpu().numpy().clip(0, 1) * 255.0
            out.extend(list(img.astype(np.uint8)))  # truncation, as the reference
    return out


def parse_masks(parsenet: Any, images: list[np.ndarray], classes: tuple[int, ...] = FACE_CLASSES,
                batch_size: int = 4) -> list[np.ndarray]:
    """ParseNet masks of BGR uint8 images (``FaceParse.process``): each resized to 512×512 (bilinear), parsed
    as RGB in [−1, 1], argmax over the 19 classes mapped through ``classes`` → (512, 512) uint8 masks."""
    import torch

    device = _device(parsenet)
    table = torch.tensor(classes, dtype=torch.uint8)
    out: list[np.ndarray] = []
    with torch.no_grad():
        for k in range(0, len(images), max(1, int(batch_size))):
            chunk = [cv2.resize(im, (SIZE, SIZE)) for im in images[k:k + batch_size]]
            y = torch.from_numpy(np.stack(chunk)[..., ::-1].copy()).to(device).double() / 255.0 * 2 - 1
            logits = parsenet(y.permute(0, 3, 1, 2).float())[0]
            out.extend(list(table[logits.argmax(dim=1).cpu()].numpy()))
    return out


def restore_and_parse(gpen: Any, parsenet: Any, crops: list[np.ndarray], batch_size: int = 4,
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Both networks of Step 5 on BGR uint8 512 crops: GPEN's restored crops and ParseNet's face masks of them
    ((512, 512) uint8, 0/255), one of each per crop."""
    restored = gpen_restore(gpen, crops, batch_size)
    return restored, parse_masks(parsenet, restored, FACE_CLASSES, batch_size)


#: Old private name, kept for callers written against it.
_restore = restore_and_parse


def compose(frame: np.ndarray, restored: np.ndarray, face_mask: np.ndarray, warp: FaceWarp) -> np.ndarray:
    """Put one restored 512 crop back into its BGR uint8 ``frame`` as ``FaceEnhancement.process`` does.

    ``face_mask``: the ParseNet mask of the crop (512, 512) uint8 0/255. Returns a new uint8 frame.
    """
    h, w = frame.shape[:2]
    mask_sharp = face_mask / 255.0
    tmp_mask = mask_postprocess(mask_sharp)  # also zeroes mask_sharp's border, as in the reference
    tmp_mask = cv2.warpAffine(tmp_mask, warp.inverse, (w, h), flags=WARP)
    mask_sharp = cv2.warpAffine(mask_sharp, warp.inverse, (w, h), flags=WARP)
    ef = cv2.filter2D(restored, -1, SMALL_KERNEL) if warp.small else restored
    tmp_img = cv2.warpAffine(ef, warp.inverse, (w, h), flags=WARP)
    full_mask = np.zeros((h, w), np.float32)
    full_img = np.zeros(frame.shape, np.uint8)
    where = tmp_mask > 0
    full_mask[where] = tmp_mask[where]
    full_img[where] = tmp_img[where]
    mask_sharp = cv2.GaussianBlur(mask_sharp, (0, 0), sigmaX=1, sigmaY=1, borderType=cv2.BORDER_DEFAULT)
    fm = full_mask[:, :, None]
    ms = mask_sharp[:, :, None]
    img = cv2.convertScaleAbs(frame * (1 - fm) + full_img * fm)
    return cv2.convertScaleAbs(frame * (1 - ms) + img * ms)


def warp_faces(frames: list[np.ndarray], lms: np.ndarray | list[np.ndarray | None]
               ) -> tuple[list[FaceWarp | None], list[np.ndarray]]:
    """Each frame's face warped to the 512 template: ``(warps, crops)``.

    ``warps[i]`` is frame *i*'s :class:`FaceWarp`, or None where its landmarks (68, 2) are missing or not finite;
    ``crops`` holds the (512, 512, 3) crops of the frames that have a warp, in order.
    """
    warps: list[FaceWarp | None] = []
    crops: list[np.ndarray] = []
    for frame, lm in zip(frames, lms):
        if lm is None or not np.all(np.isfinite(lm)):
            warps.append(None)
            continue
        wp = face_warp(lm)
        warps.append(wp)
        crops.append(warp_to_template(frame, wp))
    return warps, crops


def enhance_references(frames: list[np.ndarray], lms: np.ndarray | list[np.ndarray | None], gpen: Any, parsenet: Any,
                       batch_size: int = 4) -> list[np.ndarray]:
    """GPEN-enhance stabilised faces: N BGR uint8 frames (VideoReTalking: 256×256) → N BGR uint8 frames.

    ``lms``: (N, 68, 2) pixel landmarks of each frame (None / NaN rows: no face, frame returned as a copy);
    ``gpen``, ``parsenet``: the networks (see the module docstring), called with (B, 3, 512, 512) batches.
    """
    warps, crops = warp_faces(frames, lms)
    missing = sum(wp is None for wp in warps)
    if missing:
        log.info("reference enhancement: %d of %d frames without landmarks left as they are", missing, len(frames))
    restored, masks = restore_and_parse(gpen, parsenet, crops, batch_size)
    out: list[np.ndarray] = []
    k = 0
    for frame, wp in zip(frames, warps):
        if wp is None:
            out.append(frame.copy())
            continue
        out.append(compose(frame, restored[k], masks[k], wp))
        k += 1
    return out
