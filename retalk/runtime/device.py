"""Choosing a torch device and moving batches to it.

Importing this module does not import torch; its functions do.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from retalk.errors import InputError, MissingDependencyError

if TYPE_CHECKING:
    import torch

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def check_device_name(name: str | None) -> str | None:
    """Validate a ``--device`` value (``cpu``, ``cuda`` or ``cuda:N``; None = automatic) without importing torch."""
    if name is None or name == "auto":
        return None
    if not _DEVICE.match(name):
        raise InputError(f"--device {name!r}: use cpu, cuda or cuda:N")
    return name


def resolve_device(name: str | None) -> torch.device:
    """The torch device for ``name`` (None: CUDA when available, else CPU).

    Raises :class:`InputError` when CUDA is asked for and PyTorch sees none, or the index is out of range.
    """
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("neural engines need PyTorch: pip install 'retalk[neural]'") from None
    name = check_device_name(name)
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: PyTorch sees no CUDA device (CPU-only build, or no driver)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return dev


def upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Copy a NumPy array to ``device``: through pinned memory and asynchronously on CUDA, as is on the CPU.

    The returned tensor may alias ``array`` on the CPU; callers must not change it afterwards.
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def download(tensor: torch.Tensor) -> np.ndarray:
    """Copy a tensor to host memory as a NumPy array (waits for the device)."""
    return tensor.detach().cpu().numpy()
