"""Audio -> per-frame expression and head pose with SadTalker's audio2exp and audio2pose networks.

Follows ``src/test_audio2coeff.py`` and ``src/audio2exp_models/audio2exp.py``:

* expression: audio2exp on chunks of 10 frames, inputs mel window, the
  reference expression (the source's, or a reference video's) and the blink
  ratio; the output is absolute;
* pose: :meth:`Audio2Pose.test` with pose style ``0..45`` (frame 0 is the
  source's pose, then 32-frame chunks, one latent ``z`` per chunk), then a
  Savitzky-Golay filter over time (window 13, order 2; for ``T < 13`` the
  largest odd window ``<= T``), then, with ``--ref-pose``, plus the reference
  video's pose change from its first frame.

The reference cannot smooth fewer than 3 frames (``savgol_filter`` raises);
here such poses are left as they are.  torch is imported inside the functions.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from retalk.errors import InputError
from retalk.sadtalker.blinks import tile_frames
from retalk.sadtalker.types import EXP_DIM, POSE_DIM, MotionCoeffs, check_source

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["EXP_CHUNK", "NUM_POSE_STYLES", "SAVGOL_WINDOW", "check_pose_style", "predict_expression",
           "predict_pose", "smooth_pose", "add_reference_pose", "generate_motion"]

logger = logging.getLogger(__name__)

#: Frames per audio2exp call.
EXP_CHUNK = 10
#: Pose styles of the released audio2pose (``--pose-style`` 0..45).
NUM_POSE_STYLES = 46
#: Savitzky-Golay window (frames) and polynomial order of the pose smoothing.
SAVGOL_WINDOW = 13
SAVGOL_ORDER = 2


def check_pose_style(style: int) -> int:
    """``style`` as an int in ``0..45``; :class:`~retalk.errors.InputError` otherwise."""
    if isinstance(style, bool) or int(style) != style or not 0 <= int(style) < NUM_POSE_STYLES:
        raise InputError(f"--pose-style must be an integer from 0 to {NUM_POSE_STYLES - 1}, got {style!r}")
    return int(style)


def _device(net: Any) -> Any:
    return next(net.parameters()).device


def predict_expression(net: Any, mels: np.ndarray, ref_exp: np.ndarray, ratio: np.ndarray,
                       chunk: int = EXP_CHUNK) -> np.ndarray:
    """Expression coefficients per frame from audio2exp (:class:`~retalk.networks.sadtalker_audio2exp.SimpleWrapperV2`).

    Args:
        net: the loaded audio2exp network (eval mode, any device).
        mels: ``(T, 80, 16)`` mel windows (:func:`retalk.sadtalker.audio.mel_windows`).
        ref_exp: ``(T, 64)`` reference expression per frame
            (:func:`retalk.sadtalker.blinks.reference_expression`).
        ratio: ``(T, 1)`` (or ``(T,)``) blink ratio in ``[0, 1]``.
        chunk: frames per network call (10 in the reference; results do not
            depend on it, since frames are independent).

    Returns:
        ``(T, 64)`` float32 expression coefficients.
    """
    import torch

    dev = _device(net)
    n = mels.shape[0]
    mel_t = torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32))
    ref_t = torch.from_numpy(np.ascontiguousarray(ref_exp, dtype=np.float32)[:, :EXP_DIM])
    ratio_t = torch.from_numpy(np.ascontiguousarray(ratio, dtype=np.float32).reshape(n, 1))
    out = []
    with torch.no_grad():
        for i in range(0, n, chunk):
            x = mel_t[i:i + chunk].unsqueeze(1).to(dev)  # (n, 1, 80, 16)
            out.append(net(x, ref_t[None, i:i + chunk].to(dev), ratio_t[None, i:i + chunk].to(dev))[0].cpu())
    return torch.cat(out, dim=0).numpy()


def predict_pose(net: Any, mels: np.ndarray, source_pose: np.ndarray, style: int,
                 generator: torch.Generator | None = None) -> np.ndarray:
    """Unsmoothed head pose per frame from audio2pose (:class:`~retalk.networks.sadtalker_audio2pose.Audio2Pose`).

    Args:
        net: the loaded audio2pose network.
        mels: ``(T, 80, 16)`` mel windows.
        source_pose: ``(6,)`` the source image's pose (coefficients 64:70).
        style: pose style ``0..45``.
        generator: CPU generator for the latent codes; ``None`` uses torch's
            global RNG (``torch.manual_seed`` then reproduces the reference).

    Returns:
        ``(T, 6)`` float32 pose; row 0 equals ``source_pose``.
    """
    import torch

    style = check_pose_style(style)
    dev = _device(net)
    n = mels.shape[0]
    ref = np.zeros((1, 1, EXP_DIM + POSE_DIM), dtype=np.float32)
    ref[0, 0, EXP_DIM:] = np.asarray(source_pose, dtype=np.float32).reshape(POSE_DIM)
    batch = {
        "indiv_mels": torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32))[None, :, None].to(dev),
        "ref": torch.from_numpy(ref).to(dev),
        "class": torch.tensor([style], dtype=torch.long, device=dev),
        "num_frames": n,
    }
    with torch.no_grad():
        pose = net.test(batch, generator=generator)["pose_pred"]
    return pose[0].cpu().numpy()


def smooth_pose(pose: np.ndarray) -> np.ndarray:
    """Savitzky-Golay smoothing over time (axis 0) of a ``(T, 6)`` pose, as the reference.

    Window 13 frames, order 2 (``scipy`` ``mode='interp'``); ``T < 13`` uses
    the largest odd window ``<= T``; ``T < 3`` is returned unchanged.
    """
    from scipy.signal import savgol_filter

    pose = np.asarray(pose, dtype=np.float32)
    n = pose.shape[0]
    window = SAVGOL_WINDOW if n >= SAVGOL_WINDOW else (n - 1) // 2 * 2 + 1
    if window <= SAVGOL_ORDER:
        return pose.copy()
    return np.asarray(savgol_filter(pose, window, SAVGOL_ORDER, axis=0), dtype=np.float32)


def add_reference_pose(pose: np.ndarray, video_pose: np.ndarray) -> np.ndarray:
    """``--ref-pose``: ``pose + (video_pose - video_pose[0])``, the video tiled to ``T`` frames.

    Args:
        pose: ``(T, 6)`` smoothed pose.
        video_pose: ``(N, 6)`` the reference video's per-frame pose (coefficients 64:70).
    """
    pose = np.asarray(pose, dtype=np.float32)
    video = tile_frames(np.asarray(video_pose, dtype=np.float32), pose.shape[0])
    return pose + (video - video[:1])


def generate_motion(a2e: Any, a2p: Any, mels: np.ndarray, source: np.ndarray, ratio: np.ndarray, *,
                    pose_style: int = 0, ref_exp: np.ndarray | None = None,
                    ref_pose: np.ndarray | None = None,
                    generator: torch.Generator | None = None) -> MotionCoeffs:
    """Expression and pose for every frame: steps 5 and 6 of SadTalker's data flow.

    Args:
        a2e, a2p: the loaded audio2exp and audio2pose networks.
        mels: ``(T, 80, 16)`` mel windows.
        source: the source image's coefficient row ``(73,)`` (``(70,)``: crop zeros).
        ratio: ``(T, 1)`` blink ratio (:func:`retalk.sadtalker.blinks.blink_ratio`,
            zeros with ``--ref-eyeblink``).
        pose_style: ``0..45``.
        ref_exp: ``(T, 64)`` reference expression; default the source's, repeated.
        ref_pose: ``(N, 6)`` a reference video's pose (``--ref-pose``), or None.
        generator: latent-code generator (see :func:`predict_pose`).

    Returns:
        :class:`MotionCoeffs` with the smoothed pose and the source's crop per frame.
    """
    src = check_source(source)
    n = mels.shape[0]
    if ref_exp is None:
        ref_exp = np.repeat(src[None, :EXP_DIM], n, axis=0)
    exp = predict_expression(a2e, mels, ref_exp, ratio)
    pose = smooth_pose(predict_pose(a2p, mels, src[EXP_DIM:EXP_DIM + POSE_DIM], pose_style, generator))
    if ref_pose is not None:
        pose = add_reference_pose(pose, ref_pose)
    crop = src[EXP_DIM + POSE_DIM:] if src.shape[0] > EXP_DIM + POSE_DIM else np.zeros(3, dtype=np.float32)
    logger.debug("SadTalker motion: %d frames, pose style %d", n, pose_style)
    return MotionCoeffs(exp=exp, pose=pose, crop=np.repeat(crop[None], n, axis=0))
