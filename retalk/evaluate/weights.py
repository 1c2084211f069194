"""The optional metric networks of ``retalk eval``: load them, or say in one line why they are missing.

Missing weights never stop a run: the caller marks the metric group ``unavailable`` with the reason.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from retalk.errors import CheckpointError, MissingDependencyError
from retalk.evaluate.columns import one_line


def load_weights(loader: Callable[[], Any], file: str) -> tuple[Any, str | None]:
    """``loader()`` → (network, None), or (None, one-line reason) when the weights or PyTorch are missing."""
    try:
        return loader(), None
    except CheckpointError as exc:
        return None, one_line(exc)
    except (MissingDependencyError, ImportError) as exc:
        return None, f"PyTorch is not installed ({one_line(exc)}); then {file} is needed too"


def load_syncnet(checkpoints: str | None) -> tuple[Any, str | None]:
    """SyncNet (``syncnet_v2.model`` in ``checkpoints``) for LSE, or the reason it is unavailable."""
    from retalk import checkpoints as ck

    return load_weights(lambda: ck.load("syncnet", checkpoints), "syncnet_v2.model")


def load_inception(checkpoints: str | None) -> tuple[Any, str | None]:
    """The FID Inception network (its weights file in ``checkpoints``), or the reason it is unavailable."""
    from retalk.metrics import FID_WEIGHTS_FILE, load_fid_inception

    path = Path(checkpoints) / FID_WEIGHTS_FILE if checkpoints else None
    return load_weights(lambda: load_fid_inception(path), FID_WEIGHTS_FILE)
