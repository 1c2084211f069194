"""3DMM coefficient rows (SadTalker's 73 values) of the source photo and of ``--ref-eyeblink`` / ``--ref-pose`` videos.

A row is ``[exp 64, angle 3, trans 3, s, tx, ty]`` (``src/utils/preprocess.py``): the face3d network's
expression, rotation and translation, then the scale and offset of the 224 px alignment
(:meth:`retalk.face3d.coeffs.FrameCoeffs.sadtalker_rows`).

* the photo: its ``--size``² source image and the 68 points mapped into it (:mod:`retalk.sadtalker.preprocess`);
* a reference video, **streamed**: each frame is tracked (retalk's face tracker instead of the
  reference's RetinaFace + FAN; 68 points by :func:`retalk.face.landmarks68.mesh_to_68`), cut with the
  crop of the first frame that shows a face (as the reference cuts every frame with frame 0's crop)
  and resized to 256², and the face3d network runs on batches of :data:`VIDEO_BATCH` frames; memory
  does not grow with the video (rows only). Frames without a face get the standard landmarks, as the
  reference's; frames before the first face repeat its row. Rows are per video frame, used in
  order by the coefficient generation (the reference ignores the video's frame rate too).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retalk.errors import InputError, NoFaceError
from retalk.sadtalker.preprocess import CutRegion, cut_region

__all__ = ["REFERENCE_SIZE", "VIDEO_BATCH", "photo_row", "video_rows"]

log = logging.getLogger(__name__)

REFERENCE_SIZE = 256
"""Side of the cut reference-video frames (the reference's default ``pic_size``)."""
VIDEO_BATCH = 32
"""Reference-video frames per face3d call."""


def photo_row(net: Any, image: np.ndarray, lm68: np.ndarray, lm3d: np.ndarray) -> np.ndarray:
    """(73,) float32 row of the source image ((S, S, 3) uint8 RGB) with its (68, 2) pixel points."""
    from retalk.face3d.coeffs import extract_coeffs

    return extract_coeffs(net, [image], np.asarray(lm68, np.float32)[None], lm3d).sadtalker_rows[0]


def video_rows(path: str | Path, net: Any, lm3d: np.ndarray, preprocess: str = "crop",
               progress: bool = False) -> np.ndarray:
    """(N, 73) float32 rows, one per frame of the video at ``path`` (see the module docstring).

    Raises :class:`InputError` for a still image, :class:`NoFaceError` when no frame shows a face.
    """
    from retalk.face.landmarks68 import mesh_to_68
    from retalk.face.tracker import FaceTracker
    from retalk.face3d.coeffs import extract_coeffs
    from retalk.media.video import iter_frames, prefetch, probe_video

    info = probe_video(path)
    if info.is_image:
        raise InputError(f"{path}: a reference must be a video, not a still image")
    tracker = FaceTracker()
    region: CutRegion | None = None
    lead = 0  # frames before the first face
    rows: list[np.ndarray] = []
    images: list[np.ndarray] = []
    points: list[np.ndarray | None] = []

    def flush() -> None:
        if images:
            rows.append(extract_coeffs(net, images, points, lm3d).sadtalker_rows)
            images.clear()
            points.clear()

    bar = tqdm(total=info.n_frames, desc="reference 3DMM", unit="frame", disable=not progress, leave=False)
    try:
        for frame in prefetch(iter_frames(info)):
            lm = tracker.update(frame)
            bar.update(1)
            h, w = frame.shape[:2]
            lm68 = None if lm is None else mesh_to_68(lm)
            if region is None:
                if lm68 is None:
                    lead += 1
                    continue
                region, _ = cut_region(lm68, w, h, preprocess)
            images.append(region.cut(frame, REFERENCE_SIZE))
            points.append(None if lm68 is None else region.map_points(lm68, REFERENCE_SIZE, w, h))
            if len(images) >= VIDEO_BATCH:
                flush()
        flush()
    finally:
        bar.close()
        tracker.close()
    if not rows:
        raise NoFaceError(f"{path}: no face found in the reference video")
    out = np.concatenate(rows).astype(np.float32)
    if lead:
        out = np.concatenate([np.repeat(out[:1], lead, axis=0), out])
    log.info("reference %s: %d frames of 3DMM coefficients (%d before the first face)", path, len(out), lead)
    return out
