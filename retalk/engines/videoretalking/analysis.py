"""The per-clip preprocessing pass: FFHQ crop box and 3DMM coefficients of every source frame.

Reference (FACTSHEET §1 Steps 0b, 1, 2): one FFHQ-style crop box from the first face, every
frame cut to it and resized to 256 × 256, 68 landmarks per frame (face-alignment's FAN there),
5 of them aligning the frame to the 3DMM regressor's 224 × 224 input, 257 coefficients per frame.

Here the 68 points come from retalk's face-mesh track (:func:`retalk.face.landmarks68.mesh_to_68`;
no FAN, no dlib: the tracker already found, followed and smoothed the speaker, and one landmark
model keeps every stage consistent), mapped into the 256 crop. The frames are decoded once more
from the source (cheap beside the networks) and go through the regressor in batches, so memory
holds one batch of crops, never the clip. Frames without a face get the coefficients of the
nearest frame with one (the reference reuses the previous frame's landmarks), so the 26-frame
D-Net windows stay defined; they are not rendered (they pass through).

The result, :class:`ClipAnalysis`, is what the cache (:mod:`retalk.engines.videoretalking.cache`) stores.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

__all__ = ["ClipAnalysis", "CROP_SIZE", "WINDOW", "crop_to_box", "landmarks_in_crop", "analyse_frames",
           "fill_missing"]

log = logging.getLogger(__name__)

#: Side of the stabilisation crop (D-Net's input and output), pixels.
CROP_SIZE = 256
#: D-Net's driving window: frames ``idx - 13 .. idx + 12`` (26), clamped to the clip.
WINDOW = 26
_WINDOW_BEFORE = 13

#: Column ranges of the 257 coefficients (Deep3DFaceRecon's order).
EXP, ANGLE, TRANS = slice(80, 144), slice(224, 227), slice(254, 257)


@dataclass(frozen=True)
class ClipAnalysis:
    """One clip's preprocessing.

    Attributes:
        box: ``(x1, y1, x2, y2)`` end-exclusive pixels of the FFHQ crop region in the source frames
            (the same for every frame, as in the reference).
        coeffs: (N, 257) float32 3DMM coefficients per source frame (filled where ``valid`` is False).
        trans: (N, 5) float32 alignment parameters ``W0, H0, s, tx, ty`` per frame (the reference's
            columns 257..261), of the 256 crop.
        valid: (N,) bool, the frame had a face.
    """

    box: tuple[int, int, int, int]
    coeffs: np.ndarray
    trans: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)

    def window(self, idx: int, template: np.ndarray) -> np.ndarray:
        """D-Net's driving coefficients for source frame ``idx``: (73, 26) float32.

        Per time step ``exp (64) ‖ angle (3) ‖ trans (3) ‖ s, tx, ty (3)`` of frames ``idx-13 .. idx+12``
        (clamped to the clip; column 13 is frame ``idx``), with the expression replaced by
        ``template`` (64,) at every step. The crop-scale ratio is 1 (the reference's search always
        finds the frame itself).
        """
        n = len(self.valid)
        rows = np.clip(np.arange(idx - _WINDOW_BEFORE, idx - _WINDOW_BEFORE + WINDOW), 0, n - 1)
        c = self.coeffs[rows]
        exp = np.broadcast_to(np.asarray(template, np.float32)[:64], (WINDOW, 64))
        out = np.concatenate([exp, c[:, ANGLE], c[:, TRANS], self.trans[rows][:, 2:5]], axis=1)
        return np.ascontiguousarray(out.T, np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays the cache stores."""
        return {"box": np.asarray(self.box, np.int64), "coeffs": self.coeffs, "trans": self.trans,
                "valid": self.valid}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_frames: int) -> ClipAnalysis | None:
        """Rebuild from :meth:`to_arrays`' output; None when it does not fit a clip of ``n_frames``."""
        try:
            box = tuple(int(v) for v in arrays["box"])
            coeffs, trans, valid = arrays["coeffs"], arrays["trans"], arrays["valid"].astype(bool)
        except KeyError:
            return None
        if len(box) != 4 or coeffs.shape != (n_frames, 257) or trans.shape != (n_frames, 5) or len(valid) != n_frames:
            return None
        return cls(box, coeffs.astype(np.float32), trans.astype(np.float32), valid)  # type: ignore[arg-type]


def crop_to_box(frame: np.ndarray, box: tuple[int, int, int, int], size: int = CROP_SIZE) -> np.ndarray:
    """``frame[y1:y2, x1:x2]`` resized to ``size`` × ``size`` (bilinear, as the reference's ``cv2.resize``)."""
    x1, y1, x2, y2 = box
    return cv2.resize(frame[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)


def landmarks_in_crop(points: np.ndarray, box: tuple[int, int, int, int], size: int = CROP_SIZE) -> np.ndarray:
    """Frame-pixel points (..., 2) mapped into the ``size`` crop of ``box`` (float32)."""
    x1, y1, x2, y2 = box
    scale = np.array([size / max(1, x2 - x1), size / max(1, y2 - y1)], np.float32)
    return ((np.asarray(points, np.float32)[..., :2] - np.array([x1, y1], np.float32)) * scale).astype(np.float32)


def fill_missing(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rows where ``valid`` is False replaced by the nearest valid row (earlier on ties); unchanged if none valid."""
    idx = np.flatnonzero(valid)
    if len(idx) == 0 or len(idx) == len(valid):
        return values
    pos = np.searchsorted(idx, np.arange(len(valid)))
    left = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    right = idx[np.clip(pos, 0, len(idx) - 1)]
    near = np.where(np.abs(np.arange(len(valid)) - left) <= np.abs(right - np.arange(len(valid))), left, right)
    return values[near]


Extractor = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(crops (B, 256, 256, 3) uint8 RGB, lm68 (B, 68, 2) crop pixels) -> (coeffs (B, 257), trans (B, 5))``."""


def analyse_frames(frames: Iterable[np.ndarray], lm68: np.ndarray, valid: np.ndarray,
                   box: tuple[int, int, int, int], extract: Extractor, batch_size: int = 16,
                   progress: bool = True) -> ClipAnalysis:
    """3DMM coefficients of every frame (see the module docstring).

    Args:
        frames: the source frames in order, RGB uint8 (H, W, 3), streamed.
        lm68: (N, 68, 2) float32 frame-pixel 68-point landmarks (rows where not ``valid`` are ignored).
        valid: (N,) bool, the frame has a face.
        box: the FFHQ crop region.
        extract: the batched regressor (crop + landmarks → coefficients and alignment parameters).
        batch_size: crops per regressor call.
        progress: show a progress bar with a time estimate.
    """
    n = len(valid)
    coeffs = np.zeros((n, 257), np.float32)
    trans = np.zeros((n, 5), np.float32)
    got = np.zeros(n, bool)
    crops: list[np.ndarray] = []
    where: list[int] = []

    def flush() -> None:
        if not crops:
            return
        c, t = extract(np.stack(crops), landmarks_in_crop(lm68[where], box))
        coeffs[where], trans[where], got[where] = c, t, True
        crops.clear()
        where.clear()

    bar = tqdm(total=n, desc="videoretalking: 3DMM coefficients", unit="frame", disable=not progress, leave=False)
    k = -1
    for k, frame in enumerate(frames):
        if k >= n:
            break
        if valid[k]:
            crops.append(crop_to_box(frame, box))
            where.append(k)
            if len(crops) >= batch_size:
                flush()
        bar.update(1)
    flush()
    bar.close()
    if k + 1 < n:
        log.warning("the source gave %d frames in the coefficient pass, %d in the analysis", k + 1, n)
    return ClipAnalysis(box, fill_missing(coeffs, got), fill_missing(trans, got), got)
