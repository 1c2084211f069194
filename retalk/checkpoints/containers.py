"""Reading a release file safely and unwrapping it to the flat state dict its network expects.

* Files are read with ``torch.load(..., map_location="cpu", weights_only=True)`` (no code from
  pickles) or, for ``.safetensors``, with :mod:`safetensors`.
* The release's wrapper (a dict key such as ``state_dict``, a bundle prefix, a ``module.`` prefix,
  dropped sub-keys) is removed as the registry entry says; companion files beside the main one add
  their keys under a prefix.
* Every failure is a one-line :class:`~retalk.errors.CheckpointError` (unsafe, corrupt, truncated, an
  HTML page or a Git LFS pointer instead of the file, the wrong release).

torch is imported only when a file is read.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retalk.checkpoints.files import resolve
from retalk.checkpoints.registry import CheckpointSpec, get_spec
from retalk.errors import CheckpointError, MissingDependencyError

__all__ = ["read_state_dict", "read_with_companions", "require_torch"]

logger = logging.getLogger(__name__)

_SAFETENSORS = ".safetensors"
_EXAMPLES = 3  # key names quoted in a message


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "loading network checkpoints needs PyTorch: pip install 'retalk[neural]'"
        ) from None
    return torch


def _sniff(file: Path) -> str:
    """A hint about what a non-checkpoint file looks like, or ''."""
    try:
        with open(file, "rb") as fh:
            head = fh.read(64).lstrip()
    except OSError:
        return ""
    if head[:1] == b"<":
        return " (it looks like an HTML page: an interrupted or blocked download?)"
    if head.startswith(b"version https://git-lfs"):
        return " (it is a Git LFS pointer, not the file itself)"
    return ""


def _torch_load(torch: Any, file: Path) -> Any:
    import pickle
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            raise CheckpointError(
                f"refusing to load {file} as unsafe: its pickle asks for {found.group(1)}, which "
                "weights-only loading does not allow (a pickle can run code); if you trust the file, "
                "re-save its tensors as .safetensors"
            ) from None
        raise CheckpointError(
            f"checkpoint {file} is corrupt or not a PyTorch file{_sniff(file)}; download it again"
        ) from None
    except PermissionError:
        raise CheckpointError(f"cannot read checkpoint {file}: permission denied") from None
    except Exception as exc:  # zip/legacy reader errors: RuntimeError, EOFError, struct.error, ...
        logger.debug("torch.load(%s) failed", file, exc_info=True)
        raise CheckpointError(
            f"checkpoint {file} is corrupt or truncated ({type(exc).__name__}){_sniff(file)}; download it again"
        ) from None


def _safetensors_load(file: Path) -> dict[str, Any]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise MissingDependencyError(
            f"reading {file.name} needs the safetensors package: pip install 'retalk[neural]'"
        ) from None
    try:
        return load_file(str(file), device="cpu")
    except PermissionError:
        raise CheckpointError(f"cannot read checkpoint {file}: permission denied") from None
    except Exception as exc:  # safetensors raises its own SafetensorError (and OSError, ValueError)
        logger.debug("safetensors load_file(%s) failed", file, exc_info=True)
        raise CheckpointError(
            f"checkpoint {file} is corrupt or truncated ({type(exc).__name__}){_sniff(file)}; download it again"
        ) from None


def _is_tensor_map(torch: Any, obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _strip(key: str, prefixes: tuple[str, ...]) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
                changed = True
    return key


def read_state_dict(spec: CheckpointSpec, file: Path) -> dict[str, Any]:
    """Read ``file`` safely and unwrap it to a flat ``{key: tensor}`` per ``spec``.

    Raises:
        CheckpointError: unsafe, corrupt, or not shaped like ``spec``'s release.
        MissingDependencyError: torch (or safetensors for a ``.safetensors`` file) missing.
    """
    torch = require_torch()
    if file.suffix == _SAFETENSORS:
        obj: Any = _safetensors_load(file)
    else:
        obj = _torch_load(torch, file)

    state: Any = None
    if isinstance(obj, Mapping):
        for key in spec.state_keys:
            if key in obj and isinstance(obj[key], Mapping):
                state = obj[key]
                logger.debug("%s: using the %r entry of %s", spec.name, key, file)
                break
        if state is None and _is_tensor_map(torch, obj):
            state = obj
    if state is None:
        if isinstance(obj, Mapping):
            top = ", ".join(repr(k) for k in list(obj)[:_EXAMPLES]) or "none"
            wanted = " or ".join(repr(k) for k in spec.state_keys) or "tensors at the top level"
            raise CheckpointError(
                f"{file} is not a '{spec.name}' checkpoint: expected {wanted}, found keys {top}"
                f"{' ...' if len(obj) > _EXAMPLES else ''}"
            )
        raise CheckpointError(
            f"{file} is not a '{spec.name}' checkpoint: it holds a {type(obj).__name__}, not a state dict"
        )
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{file} is not a '{spec.name}' checkpoint: {len(bad)} entries are not tensors "
            f"(e.g. {', '.join(map(str, bad[:_EXAMPLES]))})"
        )
    if spec.select_prefix and any(spec.select_prefix in str(k) for k in state):
        marker = spec.select_prefix
        state = {str(k).split(marker, 1)[1]: v for k, v in state.items() if marker in str(k)}
        logger.debug("%s: using the %r entries of the bundle %s", spec.name, marker, file)
    out: dict[str, Any] = {}
    for key, value in state.items():
        if any(part in str(key) for part in spec.drop_substrings):
            continue
        new = _strip(str(key), spec.strip_prefixes)
        if new in out:
            raise CheckpointError(f"{file}: key {new!r} appears twice after removing prefixes")
        out[new] = value
    return out


def read_with_companions(spec: CheckpointSpec, file: Path) -> dict[str, Any]:
    """:func:`read_state_dict` plus each companion's keys (its file found beside ``file``).

    Raises:
        CheckpointError: as :func:`read_state_dict`, or a companion file is
            missing from ``file``'s folder (the message names it and its source).
    """
    state = read_state_dict(spec, file)
    for other, prefix in spec.companions:
        other_spec = get_spec(other)
        try:
            other_file = resolve(other, file.parent)
        except CheckpointError:
            raise CheckpointError(
                f"'{spec.name}' needs {' or '.join(other_spec.files)} in the same folder as {file.name} "
                f"({file.parent.resolve()}): get it from {other_spec.source}"
            ) from None
        for key, value in read_state_dict(other_spec, other_file).items():
            state[prefix + key] = value
    return state
