"""Building a network from its released checkpoint and loading it strictly (the only loading path).

:func:`load` finds the file (:mod:`~retalk.checkpoints.files`), reads and unwraps it safely
(:mod:`~retalk.checkpoints.containers`), builds the registry's network for it, and requires the state
dict to match exactly: same keys, same shapes, ``strict=True``.  The one allowed gap is BatchNorm's
``num_batches_tracked`` counter, which older PyTorch versions did not save; those buffers (and nothing
else) keep the network's own value when the file lacks them.  They do not affect inference.  Every
failure is a one-line :class:`~retalk.errors.CheckpointError`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retalk.checkpoints.containers import read_with_companions, require_torch
from retalk.checkpoints.files import resolve
from retalk.checkpoints.registry import CheckpointSpec, get_spec
from retalk.errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["load"]

logger = logging.getLogger(__name__)

_EXAMPLES = 3  # key names quoted in a mismatch message


def _examples(keys: list[str]) -> str:
    shown = ", ".join(keys[:_EXAMPLES])
    return shown + (", ..." if len(keys) > _EXAMPLES else "")


def _fit_state(torch: Any, model: Any, state: dict[str, Any], spec: CheckpointSpec,
               file: Path) -> dict[str, Any]:
    """Check keys/shapes against ``model``; fill missing BatchNorm counters only."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]

    filled: list[str] = []
    for key in list(missing):
        owner, _, leaf = key.rpartition(".")
        if leaf != "num_batches_tracked":
            continue
        try:
            module = model.get_submodule(owner)
        except AttributeError:
            continue
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            state[key] = own[key].clone()
            filled.append(key)
            missing.remove(key)
    if filled:
        logger.debug("%s: %d BatchNorm num_batches_tracked counters absent from %s; keeping 0",
                     spec.name, len(filled), file)

    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_examples(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_examples(unexpected)})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches ({'; '.join(shapes[:_EXAMPLES])}"
                         f"{'; ...' if len(shapes) > _EXAMPLES else ''})")
        raise CheckpointError(
            f"{file} does not fit the '{spec.name}' network {type(model).__name__}: "
            + ", ".join(parts) + " — is it the right file?"
        )
    return state


def load(name: str, path: str | os.PathLike[str] | None = None, device: Any = "cpu", *,
         checkpoints_dir: str | os.PathLike[str] | None = None) -> torch.nn.Module:
    """Build network ``name``, load its released weights strictly, return it in eval mode.

    Args:
        name: registry name (see :data:`retalk.checkpoints.REGISTRY`).
        path: a checkpoint file, or a directory to search for the release
            file names; ``None`` searches ``checkpoints_dir``.
        device: where to put the network (``"cpu"``, ``"cuda"``, a
            :class:`torch.device`); files are always read onto the CPU first.
        checkpoints_dir: directory to search when ``path`` is None; default
            ``$RETALK_CHECKPOINTS`` or ``./checkpoints``.

    Returns:
        The network (a :class:`torch.nn.Module`) in eval mode on ``device``.

    Raises:
        CheckpointError: unknown name, network not implemented, file missing,
            unsafe, corrupt, or not matching the network.
        MissingDependencyError: torch is not installed.
    """
    spec = get_spec(name)
    torch = require_torch()
    if not spec.implemented:
        spec.build()  # raises a clear "not implemented yet" before asking for a file
    file = resolve(name, path, checkpoints_dir)
    state = read_with_companions(spec, file)
    model = spec.build(state)
    state = _fit_state(torch, model, state, spec, file)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # should not happen after _fit_state; keep it one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{file} does not fit the '{name}' network: {first}") from None
    model.eval()
    model.to(device)
    logger.info("loaded %s from %s (%d tensors) on %s", name, file, len(state), device)
    return model
