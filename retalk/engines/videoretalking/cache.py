"""Per-clip preprocessing results kept between runs, keyed by a hash of what they depend on.

What is stored:

* one ``<key>.npz`` per clip: the FFHQ crop box, the 3DMM coefficients of every source frame with their
  alignment parameters, and which frames had a face (see
  :class:`retalk.engines.videoretalking.analysis.ClipAnalysis`). Dubbing the same video again (another speech,
  another ``--exp-img`` or ``--up-face``) skips the coefficient pass;
* one folder ``<key>-faces-<template key>/`` per clip and expression template, holding the stabilised,
  GPEN-enhanced 256 × 256 face of each source frame as ``<frame>.png`` (about 100 KB each): they depend
  on the frame and the template only, not on the speech, so dubbing the same video again, or a source
  frame shown twice (ping-pong), skips D-Net, GPEN and the first ParseNet (about half of each frame's
  network time).

Where: ``--cache-dir DIR``, else ``$RETALK_CACHE_DIR/videoretalking``, else
``$XDG_CACHE_HOME/retalk/videoretalking``, else ``~/.cache/retalk/videoretalking``. The folder
holds only these files: deleting it (or any file in it) is always safe. ``--no-cache`` neither
reads nor writes it.

The key is the SHA-256 of: a format version, the source file's bytes, the face track's landmarks
and validity (so another speaker choice is another entry), and the identity (name, size,
modification time) of the 3DMM network and BFM files used.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CACHE_VERSION", "default_cache_dir", "clip_key", "faces_key", "ClipCache", "FaceCache"]

log = logging.getLogger(__name__)

#: Bump when what is stored, or how it is computed, changes: old entries are then ignored.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """The cache folder when ``--cache-dir`` is not given (see the module docstring)."""
    env = os.environ.get("RETALK_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser() / "videoretalking"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "retalk" / "videoretalking"


def _file_identity(path: Path) -> bytes:
    st = path.stat()
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode()


def clip_key(source: str | Path, landmarks: np.ndarray, valid: np.ndarray, weights: list[Path]) -> str:
    """The cache key (hex) of one clip's preprocessing (see the module docstring)."""
    h = hashlib.sha256(f"retalk-videoretalking-{CACHE_VERSION}".encode())
    with open(source, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    h.update(np.ascontiguousarray(valid, np.bool_).tobytes())
    h.update(np.ascontiguousarray(landmarks[..., :2], np.float32).tobytes())
    for w in weights:
        h.update(_file_identity(Path(w)))
    return h.hexdigest()


def faces_key(template: np.ndarray, weights: list[Path]) -> str:
    """The second half of a face folder's name: the expression template and the D-Net/GPEN/ParseNet files."""
    h = hashlib.sha256(np.ascontiguousarray(template, np.float32).tobytes())
    for w in weights:
        h.update(_file_identity(Path(w)))
    return h.hexdigest()[:16]


class FaceCache:
    """Stabilised, enhanced faces (256 × 256 × 3 uint8 RGB) per source frame, as PNG files in one folder.

    ``folder=None`` disables it. Reads and writes are thread-safe (one file per frame, written to a
    temporary name and renamed); an unreadable file is treated as absent.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = None if folder is None else Path(folder)
        self._made = False

    def _path(self, index: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{index:07d}.png"

    def get(self, index: int) -> np.ndarray | None:
        """Source frame ``index``'s face (RGB uint8), or None."""
        import cv2

        if self.folder is None:
            return None
        path = self._path(index)
        if not path.is_file():
            return None
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def put(self, index: int, face: np.ndarray) -> None:
        """Store source frame ``index``'s face (RGB uint8); a failure to write is logged once per call."""
        import cv2

        if self.folder is None:
            return
        try:
            if not self._made:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._made = True
            ok, data = cv2.imencode(".png", cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            if not ok:
                return
            tmp = self.folder / f".tmp-{index}-{os.getpid()}-{id(face)}.png"
            tmp.write_bytes(data.tobytes())
            os.replace(tmp, self._path(index))
        except OSError as exc:
            log.warning("cannot write the face cache %s (%s)", self.folder, exc)


class ClipCache:
    """Read and write one folder of per-clip ``.npz`` entries; ``folder=None`` disables it.

    Writes are atomic (a temporary file renamed), so a killed run never leaves a broken entry; an
    entry that cannot be read is treated as absent (and logged).
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = None if folder is None else Path(folder).expanduser()

    def path(self, key: str) -> Path | None:
        """Where the entry ``key`` lives (None when caching is off)."""
        return None if self.folder is None else self.folder / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None (caching off, absent or unreadable)."""
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable cache entry %s (%s)", path, exc)
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> Path | None:
        """Store ``arrays`` under ``key``; returns the path (None when caching is off or the folder is not writable)."""
        path = self.path(key)
        if path is None:
            return None
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write the cache entry %s (%s); going on without it", path, exc)
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            return None
        return path

    def faces(self, key: str, template_key: str) -> FaceCache:
        """The face cache of clip ``key`` with template ``template_key`` (disabled when caching is off)."""
        return FaceCache(None if self.folder is None else self.folder / f"{key}-faces-{template_key}")
