"""Safe, strict loading of released checkpoints (the only loading path in retalk).

* Files are read with ``torch.load(..., map_location="cpu", weights_only=True)``
  (no arbitrary code from pickles) or, for ``.safetensors``, with
  :mod:`safetensors`.
* The release's wrapper (a dict key such as ``state_dict``, a ``module.``
  prefix) is removed as the registry says, then the state dict must match
  the network exactly: same keys, same shapes, ``strict=True``.  The one
  allowed gap is BatchNorm's ``num_batches_tracked`` counter, which older
  PyTorch versions did not save; those buffers (and nothing else) keep the
  network's own value when the file lacks them.  They do not affect
  inference.
* Every failure is a one-line :class:`~retalk.errors.CheckpointError`.

torch is imported only when a checkpoint is loaded.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from retalk.checkpoints.registry import REGISTRY, CheckpointSpec, get_spec
from retalk.errors import CheckpointError, MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ENV_VAR",
    "DEFAULT_DIR",
    "FoundCheckpoint",
    "default_checkpoints_dir",
    "candidate_files",
    "resolve",
    "read_state_dict",
    "read_with_companions",
    "load",
    "find_checkpoints",
]

logger = logging.getLogger(__name__)

#: Environment variable that overrides the default checkpoint directory.
ENV_VAR = "RETALK_CHECKPOINTS"
#: Default checkpoint directory, relative to the current working directory.
DEFAULT_DIR = "checkpoints"

_SAFETENSORS = ".safetensors"
_EXAMPLES = 3  # key names quoted in a mismatch message


class FoundCheckpoint(NamedTuple):
    """A release file found on disk (see :func:`find_checkpoints`)."""

    name: str
    path: Path
    size: int  # bytes
    sha256: str  # hex digest, "" when hashing was skipped


def _require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "loading network checkpoints needs PyTorch: pip install 'retalk[neural]'"
        ) from None
    return torch


def default_checkpoints_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The directory to search: ``explicit``, else ``$RETALK_CHECKPOINTS``, else ``./checkpoints``."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(DEFAULT_DIR)


def candidate_files(spec: CheckpointSpec) -> tuple[str, ...]:
    """File names accepted for ``spec``, in order: per release file, its safetensors twin first.

    The twin of ``x.pth`` is ``x.safetensors``; a double suffix ``x.pth.tar`` (SadTalker) is
    removed as a whole, so its twin is ``x.safetensors`` too.
    """
    out: list[str] = []
    for fname in spec.files:
        if fname.endswith(".pth.tar"):
            stem = fname[: -len(".pth.tar")]
        else:
            stem = fname.rsplit(".", 1)[0] if "." in fname else fname
        out += [stem + _SAFETENSORS, fname]
    return tuple(dict.fromkeys(out))


def resolve(name: str, path: str | os.PathLike[str] | None = None,
            checkpoints_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the file for checkpoint ``name``.

    Args:
        name: registry name.
        path: a checkpoint file (used as is) or a directory to search.
        checkpoints_dir: directory to search when ``path`` is None (default:
            see :func:`default_checkpoints_dir`).

    Raises:
        CheckpointError: no such file; the message names the file(s), the
            directory searched and where users get them.
    """
    spec = get_spec(name)
    if path is not None and not Path(path).expanduser().is_dir():
        file = Path(path).expanduser()
        if file.is_file():
            return file
        raise CheckpointError(
            f"checkpoint file for '{name}' not found: {file.resolve()} does not exist; "
            f"get {' or '.join(spec.files)} from {spec.source}"
        )
    directory = Path(path).expanduser() if path is not None else default_checkpoints_dir(checkpoints_dir)
    for fname in candidate_files(spec):
        file = directory / fname
        if file.is_file():
            return file
    raise CheckpointError(
        f"checkpoint '{name}' not found: looked for {' or '.join(spec.files)} (or .safetensors) "
        f"in {directory.resolve()}; get it from {spec.source} and put it there "
        f"(or point --checkpoints / ${ENV_VAR} at the folder that has it)"
    )


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
    torch = _require_torch()
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
    torch = _require_torch()
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


def _sha256(file: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def find_checkpoints(directory: str | os.PathLike[str] | None = None, *,
                     hashes: bool = True) -> list[FoundCheckpoint]:
    """Registered release files present in ``directory`` (default: :func:`default_checkpoints_dir`).

    Args:
        directory: folder to scan (not recursive).
        hashes: compute SHA-256 digests (reads every file; ~1 s per 300 MB).

    Returns:
        One :class:`FoundCheckpoint` ``(name, path, size, sha256)`` per file
        found, in registry order; empty if the folder does not exist.
    """
    folder = default_checkpoints_dir(directory)
    found: list[FoundCheckpoint] = []
    if not folder.is_dir():
        return found
    for spec in REGISTRY.values():
        for fname in candidate_files(spec):
            file = folder / fname
            if file.is_file():
                found.append(FoundCheckpoint(
                    spec.name, file, file.stat().st_size, _sha256(file) if hashes else ""
                ))
    return found
