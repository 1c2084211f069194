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

__all__ = ["Wav2Lip", "SyncNetColor", "SyncNetV2"]

_LAZY = {
    "Wav2Lip": "retalk.networks.wav2lip",
    "SyncNetColor": "retalk.networks.wav2lip",
    "SyncNetV2": "retalk.networks.syncnet",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'retalk.networks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
