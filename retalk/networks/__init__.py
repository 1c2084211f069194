"""Plain PyTorch modules, one file per released network.

Each module here only defines layers and ``forward``: no file I/O, no
weight loading, no pipeline code.  Parameter names match the released
checkpoints so that :func:`retalk.checkpoints.load` can load them with
``strict=True``.

Importing this package does not import torch; the classes are resolved on
first attribute access (``retalk.networks.Wav2Lip``), which does.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Wav2Lip": "retalk.networks.wav2lip",
    "SyncNetColor": "retalk.networks.wav2lip",
    "SyncNetV2": "retalk.networks.syncnet",
    "GFPGANv1Clean": "retalk.networks.gfpgan",
    "FIDInceptionV3": "retalk.networks.fid_inception",
    # VideoReTalking and the networks around it
    "LNet": "retalk.networks.vrt_lnet",
    "ENet": "retalk.networks.vrt_enet",
    "DNet": "retalk.networks.vrt_dnet",
    "ReconNet": "retalk.networks.face3d",
    "FullGenerator": "retalk.networks.gpen",
    "ParseNet": "retalk.networks.parsenet",
    "SplitGenerator": "retalk.networks.ganimation",
    # SadTalker
    "KPDetector": "retalk.networks.sadtalker_kp",
    "OcclusionAwareSPADEGenerator": "retalk.networks.sadtalker_generator",
    "MappingNet": "retalk.networks.sadtalker_mapping",
    "SimpleWrapperV2": "retalk.networks.sadtalker_audio2exp",
    "Audio2Pose": "retalk.networks.sadtalker_audio2pose",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'retalk.networks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
