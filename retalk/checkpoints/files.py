"""Where released checkpoints live on disk: the search folder, accepted file names, finding them.

* :func:`default_checkpoints_dir`: an explicit folder, else ``$RETALK_CHECKPOINTS``, else ``./checkpoints``.
* :func:`candidate_files`: the names a registry entry accepts (each release name and its
  ``.safetensors`` twin).
* :func:`resolve`: the file for one name, or a one-line :class:`~retalk.errors.CheckpointError` naming
  the file, the folder searched and where users get it.
* :func:`find_checkpoints`: every registered release file present in a folder (for ``retalk doctor``).

No torch needed here.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

from retalk.checkpoints.registry import REGISTRY, CheckpointSpec, get_spec
from retalk.errors import CheckpointError

__all__ = ["ENV_VAR", "DEFAULT_DIR", "FoundCheckpoint", "default_checkpoints_dir", "candidate_files",
           "resolve", "find_checkpoints"]

#: Environment variable that overrides the default checkpoint directory.
ENV_VAR = "RETALK_CHECKPOINTS"
#: Default checkpoint directory, relative to the current working directory.
DEFAULT_DIR = "checkpoints"


_SAFETENSORS = ".safetensors"


class FoundCheckpoint(NamedTuple):
    """A release file found on disk (see :func:`find_checkpoints`)."""

    name: str
    path: Path
    size: int  # bytes
    sha256: str  # hex digest, "" when hashing was skipped



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
