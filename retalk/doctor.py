"""``retalk doctor``: what is installed, which checkpoints are found, which device is used."""
from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path

_PACKAGES = ["numpy", "cv2", "av", "mediapipe", "scipy", "skimage", "pocketsphinx", "espeakng_loader", "torch",
             "safetensors", "ray"]


def _version(name: str) -> str:
    try:
        mod = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return "not installed"
    return str(getattr(mod, "__version__", "installed"))


def report() -> str:
    """A human-readable report, one fact per line."""
    from retalk import __version__

    lines = [f"retalk {__version__} on Python {platform.python_version()} ({platform.machine()})", "", "packages:"]
    for name in _PACKAGES:
        lines.append(f"  {name:16s} {_version(name)}")
    lines.append("")
    device = "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
    except Exception:  # noqa: BLE001
        device = "cpu (torch not installed: neural engines unavailable; pip install 'retalk[neural]')"
    lines.append(f"device for neural engines: {device}")
    ckdir = Path(os.environ.get("RETALK_CHECKPOINTS", "checkpoints"))
    lines.append(f"checkpoints folder: {ckdir.resolve()}")
    try:
        from retalk.checkpoints import find_checkpoints

        found = find_checkpoints(ckdir)
    except ImportError:
        found = []
    if not found:
        lines.append("  (no released checkpoints found; the built-in engine needs none)")
    for item in found:
        lines.append(f"  {item}")
    return "\n".join(lines)
