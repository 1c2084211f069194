"""VideoReTalking's last step per frame: blend the synthesised face into the original frame (Step 7, final blend).

The reference calls ``FaceEnhancement.process(pp, original, bbox=box, face_enhance=False, possion_blending=True)``:
the face of the synthesised frame ``pp`` is warped to GPEN's 512 template (no GPEN), parsed with ParseNet (face
classes), the parse mask and the crop are warped back, the mask is blurred (σ 1) and limited to the face box
(rows ``y1 … y2−6``), and ``pp``'s face and the original frame are Laplacian-blended with 6 levels at 512×512.

Substitution (as in :mod:`retalk.videoretalking.reference_enhance`): the 5 points come from the frame's 68
landmarks instead of RetinaFace on ``pp``. A frame without landmarks is returned as ``pp`` unchanged (the
reference would fail).
"""
from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from retalk.videoretalking.blend import laplacian_blend
from retalk.videoretalking.reference_enhance import FACE_CLASSES, WARP, mask_postprocess, parse_masks, warp_faces

log = logging.getLogger(__name__)

LEVELS = 6
BLEND_SIZE = 512


def blend_one(pp: np.ndarray, original: np.ndarray, crop: np.ndarray, face_mask: np.ndarray, inverse: np.ndarray,
              box: tuple[int, int, int, int]) -> np.ndarray:
    """One frame: ``pp`` and ``original`` (H, W, 3) BGR uint8, ``crop`` the 512 face crop of ``pp``, ``face_mask``
    its ParseNet mask (512, 512) uint8 0/255, ``inverse`` (2, 3) crop → frame, ``box`` = (y1, y2, x1, x2) pixels.
    Returns the blended (H, W, 3) uint8 frame."""
    h, w = pp.shape[:2]
    mask_sharp = face_mask / 255.0
    tmp_mask = mask_postprocess(mask_sharp)  # zeroes mask_sharp's border too, as the reference does
    tmp_mask = cv2.warpAffine(tmp_mask, inverse, (w, h), flags=WARP)
    mask_sharp = cv2.warpAffine(mask_sharp, inverse, (w, h), flags=WARP)
    tmp_img = cv2.warpAffine(crop, inverse, (w, h), flags=WARP)
    full_img = np.zeros(original.shape, np.uint8)
    where = tmp_mask > 0
    full_img[where] = tmp_img[where]
    mask_sharp = cv2.GaussianBlur(mask_sharp, (0, 0), sigmaX=1, sigmaY=1, borderType=cv2.BORDER_DEFAULT)
    y1, y2, x1, x2 = box
    mask_box = np.zeros_like(mask_sharp)
    mask_box[y1:y2 - 5, x1:x2] = 1
    size = (BLEND_SIZE, BLEND_SIZE)
    a, b, m = (cv2.resize(v, size) for v in (full_img, original, np.float32(mask_sharp * mask_box)))
    out = np.clip(laplacian_blend(a, b, m, LEVELS), 0, 255)
    return np.uint8(cv2.resize(out, (w, h)))


def blend_faces(frames: list[np.ndarray], originals: list[np.ndarray], lms: np.ndarray | list[np.ndarray | None],
                boxes: list[tuple[int, int, int, int]], parsenet: Any, batch_size: int = 4) -> list[np.ndarray]:
    """Blend the synthesised faces of ``frames`` into ``originals`` (both N BGR uint8 (H, W, 3)).

    ``lms``: (N, 68, 2) pixel landmarks of each frame's face (None / NaN: left as ``frames[i]``); ``boxes``:
    (y1, y2, x1, x2) face boxes (VideoReTalking: the smoothed, padded s3fd boxes); ``parsenet``: called with
    (B, 3, 512, 512) RGB in [−1, 1], returns ``(logits (B, 19, 512, 512), image)``.
    """
    warps, crops = warp_faces(frames, lms)
    masks = parse_masks(parsenet, crops, FACE_CLASSES, batch_size)
    out, k = [], 0
    for pp, orig, wp, box in zip(frames, originals, warps, boxes):
        if wp is None:
            out.append(pp.copy())
            continue
        out.append(blend_one(pp, orig, crops[k], masks[k], wp.inverse, box))
        k += 1
    missing = sum(wp is None for wp in warps)
    if missing:
        log.info("face blend: %d of %d frames without landmarks kept unblended", missing, len(frames))
    return out
