"""``retalk doctor``: what is installed, which checkpoints are found, which device is used."""
from __future__ import annotations

import importlib
import platform
from pathlib import Path

_PACKAGES = ["numpy", "cv2", "av", "mediapipe", "scipy", "skimage", "pocketsphinx", "espeakng_loader", "torch",
             "safetensors", "ray"]


_DISTRIBUTIONS = {"cv2": "opencv-contrib-python", "skimage": "scikit-image", "espeakng_loader": "espeakng-loader"}


def _version(name: str) -> str:
    from importlib import metadata

    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return "not installed"
    try:
        return metadata.version(_DISTRIBUTIONS.get(name, name))
    except metadata.PackageNotFoundError:
        return "installed"


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
    from retalk.checkpoints import default_checkpoints_dir, find_checkpoints

    ckdir = Path(default_checkpoints_dir())
    lines.append(f"checkpoints folder: {ckdir.resolve()} (set with --checkpoints or RETALK_CHECKPOINTS)")
    found = find_checkpoints(ckdir) if ckdir.is_dir() else []
    if not found:
        lines.append("  (no released checkpoints found; the built-in engine needs none)")
    for item in found:
        lines.append(f"  {item.name:15s} {Path(item.path).name:28s} {item.size / 1e6:9.1f} MB  sha256 {item.sha256}")
    return "\n".join(lines)
