"""Blink timing and head motion copied from a real talking video (``--ref_eyeblink`` / ``--ref_pose``).

The reference is tracked once with the face tracker (streaming, landmarks
only). Blinks come from the eye aspect ratio of the raw (unsmoothed)
landmarks; motion from :attr:`FaceTrack.pose` (yaw, pitch, roll) and the eyes'
midpoint (translation), both relative to the clip's median so the photo's own
pose is the rest pose. Frames without a face are filled from their neighbours.
A reference shorter than the speech is played back and forth.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from tqdm import tqdm

from retalk.errors import InputError, NoFaceError
from retalk.face import landmarks as L
from retalk.face.tracker import FaceTracker
from retalk.media import iter_frames, probe_video
from retalk.media.video import prefetch
from retalk.portrait.blink import closure_from_ear, eye_aspect_ratio
from retalk.portrait.head_motion import POSE_LIMITS, resample_series

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """What a reference video gives, at its own frame rate ``fps``.

    ``ear``: (m,) eye aspect ratio per frame (NaN without a face). ``pose``: (m, 5)
    yaw, pitch, roll (degrees) and tx, ty (inter-ocular distances), relative to the
    clip's median, gaps filled.
    """

    fps: float
    ear: np.ndarray
    pose: np.ndarray


def _fill(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over invalid rows (edges hold the nearest valid value)."""
    out = np.array(x, np.float64, copy=True)
    idx = np.flatnonzero(valid)
    for c in range(out.shape[1]):
        out[:, c] = np.interp(np.arange(len(out)), idx, out[idx, c])
    return out


def analyse_reference(path: str | Path, progress: bool = False) -> Reference:
    """Track a reference talking video. Raises :class:`NoFaceError` when it shows no face."""
    info = probe_video(path)
    if info.is_image:
        raise InputError(f"{path}: a reference must be a video, not a still image")
    tracker = FaceTracker()
    bar = tqdm(total=info.n_frames, desc="reference", unit="frame", disable=not progress, leave=False)
    for frame in prefetch(iter_frames(info)):
        tracker.update(frame)
        bar.update(1)
    bar.close()
    raw = tracker.finish(smooth=False)
    if not raw.valid.any():
        raise NoFaceError(f"{path}: no face found in the reference video")
    m = len(raw)
    ear = np.full(m, np.nan)
    for i in np.flatnonzero(raw.valid):
        ear[i] = eye_aspect_ratio(raw.landmarks[i])
    # pose from smoothed landmarks (the tracker's own smoothing), translation from the eye midpoint
    from retalk.face.tracker import smooth_landmarks

    lms = smooth_landmarks(raw.landmarks, raw.valid)
    pose = np.zeros((m, 5))
    for i in np.flatnonzero(raw.valid):
        pose[i, :3] = L.head_pose(lms[i])
        iod = max(float(L.interocular(lms[i])), 1e-6)
        o, _, _ = L.face_frame(lms[i])
        pose[i, 3:] = o / iod
    pose = _fill(pose, raw.valid)
    pose -= np.median(pose[raw.valid], axis=0)
    pose = gaussian_filter1d(pose, 1.0, axis=0, mode="nearest")
    log.info("reference %s: %d frames, face in %.0f%%", path, m, 100 * raw.valid.mean())
    return Reference(float(info.fps), ear, np.clip(pose, -POSE_LIMITS, POSE_LIMITS))


def reference_blinks(ref: Reference, fps: float, n: int) -> np.ndarray:
    """Eyelid closure (n,) at ``fps`` from the reference's eye aspect ratio (looped when shorter)."""
    c = closure_from_ear(ref.ear)
    return np.clip(resample_series(c, ref.fps, fps, n, mode="loop"), 0, 1)


def reference_pose(ref: Reference, fps: float, n: int) -> np.ndarray:
    """Head pose (n, 5) at ``fps`` from the reference (played back and forth when shorter)."""
    return resample_series(ref.pose.astype(np.float32), ref.fps, fps, n, mode="pingpong")
