"""Evaluation metrics over numpy arrays.

Weight-free (numpy/scipy/scikit-image/OpenCV only):

* :mod:`~retalk.metrics.cpbd` — CPBD sharpness (:func:`cpbd`, :func:`cpbd_face`);
* :mod:`~retalk.metrics.image` — :func:`psnr`, :func:`ssim`, :func:`psnr_outside`
  (:func:`psnr_and_outside`: both PSNRs in one pass);
* :mod:`~retalk.metrics.landmark_metrics` — LMD, landmark jitter, mouth opening (MediaPipe 478 points);
* :mod:`~retalk.metrics.avsync` — audio-visual offset/confidence from a mouth-opening series;
* :mod:`~retalk.metrics.lse` — :func:`mfcc` (python_speech_features defaults) and SyncNet face crops.

Network-based (torch imported only when called): :func:`lse_scores` (LSE-D/LSE-C with
a loaded SyncNet), :class:`FIDInceptionV3`, :func:`load_fid_inception`,
:func:`inception_features`; the set distances :func:`fid`, :func:`kid` and
:func:`frechet_distance` need numpy only.
"""
from __future__ import annotations

from typing import Any

from retalk.metrics.avsync import AVSyncResult, av_offset, speech_envelope
from retalk.metrics.cpbd import cpbd, cpbd_face
from retalk.metrics.fid import (
    FID_WEIGHTS_FILE,
    KIDResult,
    feature_stats,
    fid,
    frechet_distance,
    inception_features,
    kid,
    load_fid_inception,
)
from retalk.metrics.image import box_mask, psnr, psnr_and_outside, psnr_outside, ssim
from retalk.metrics.landmark_metrics import (
    LIP_INDICES,
    MouthStats,
    inter_ocular,
    landmark_jitter,
    lmd,
    lmd_face,
    lmd_mouth,
    mouth_opening,
    mouth_opening_stats,
)
from retalk.metrics.lse import LSEResult, crop_faces_syncnet, lse_scores, mfcc, to_int16_scale

__all__ = [
    "FID_WEIGHTS_FILE",
    "LIP_INDICES",
    "AVSyncResult",
    "FIDInceptionV3",
    "KIDResult",
    "LSEResult",
    "MouthStats",
    "av_offset",
    "box_mask",
    "cpbd",
    "cpbd_face",
    "crop_faces_syncnet",
    "feature_stats",
    "fid",
    "frechet_distance",
    "inception_features",
    "inter_ocular",
    "kid",
    "landmark_jitter",
    "lmd",
    "lmd_face",
    "lmd_mouth",
    "load_fid_inception",
    "lse_scores",
    "mfcc",
    "mouth_opening",
    "mouth_opening_stats",
    "psnr",
    "psnr_and_outside",
    "psnr_outside",
    "speech_envelope",
    "ssim",
    "to_int16_scale",
]


def __getattr__(name: str) -> Any:
    if name == "FIDInceptionV3":
        from retalk.networks.fid_inception import FIDInceptionV3

        return FIDInceptionV3
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
