"""Opening media files with errors a user can act on."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import av

from retalk.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def check_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, raising :class:`InputError` if it is missing, a folder or empty."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {what} not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected a {what}")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: {what} is empty (0 bytes)")
    return p


def is_image(path: str | Path) -> bool:
    """True when ``path`` names a still image by its suffix."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@contextlib.contextmanager
def open_container(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading; any FFmpeg failure becomes a one-line :class:`InputError`."""
    p = check_file(path)
    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"{p}: not a readable media file ({reason})") from None
    try:
        yield container
    finally:
        container.close()
