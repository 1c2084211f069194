"""Checks on every input a job names: size, type by content, duration, and where a server-side path may point.

Nothing here trusts a client's file name or extension: the type comes from the file's first bytes
and from decoding it, the stored name is chosen by the server, and a server-side path must resolve
(symlinks followed) inside one of the operator's allowed roots.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from retalk.errors import RetalkError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
"""Bytes copied per read while storing an upload."""


class RequestError(RetalkError):
    """A request the server refuses, with its HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# (signature test, kind, stored extension); kinds: image, audio, video (audio+video containers are "video"
# until decoding shows whether they have a picture)
def _sniff(head: bytes) -> tuple[str, str] | None:
    """The media kind and extension of a file from its first 16+ bytes, or None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head.startswith(b"BM"):
        return "image", ".bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", ".wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", ".avi"
    if head[4:8] == b"ftyp":
        return "video", ".mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", ".mkv"
    if head.startswith(b"fLaC"):
        return "audio", ".flac"
    if head.startswith(b"OggS"):
        return "audio", ".ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio", ".mp3"
    return None


@dataclass(frozen=True)
class MediaCheck:
    """What a checked file holds: ``kind`` image | audio | video (a picture track), ``duration`` in seconds
    (0 for an image), ``has_audio`` whether it has a sound track."""

    kind: str
    duration: float
    has_audio: bool


ROLES: dict[str, tuple[str, ...]] = {
    "face": ("video", "image"),       # dubbing: the talking-head video or a still
    "audio": ("audio", "video"),      # the driving speech, or a video whose sound to use
    "image": ("image",),              # portrait: the photo
    "clip": ("video",),               # evaluation: a talking video
}
"""Kinds accepted for each input role."""


def _probe(path: Path) -> MediaCheck:
    """Decode enough of ``path`` to know its kind and duration; RequestError(415) if it does not decode."""
    import av

    try:
        with av.open(str(path)) as box:
            kind = "video" if box.streams.video else "audio"
            has_audio = bool(box.streams.audio)
            if not box.streams.video and not has_audio:
                raise RequestError(415, "the file has no audio or video stream")
            duration = float(box.duration / 1_000_000) if box.duration else 0.0
            stream = (box.streams.video or box.streams.audio)[0]
            if duration <= 0 and stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            # decode the first frame, so a file with a valid header and garbage after it is refused
            for _ in box.decode(stream):
                break
            else:
                raise RequestError(415, "the file's media stream has no decodable frame")
    except RequestError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not media we can use"
        raise RequestError(415, f"the file is not decodable audio or video ({type(exc).__name__})") from None
    return MediaCheck(kind, duration, has_audio)


def _check_image(path: Path) -> MediaCheck:
    import cv2
    import numpy as np

    data = np.fromfile(str(path), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise RequestError(415, "the file starts like an image but does not decode as one")
    return MediaCheck("image", 0.0, False)


def check_media(path: Path, role: str, max_duration_s: float) -> MediaCheck:
    """Check that ``path`` is media fit for ``role`` (see :data:`ROLES`), by content.

    Raises :class:`RequestError`: 415 for a file of the wrong or unknown type, 413 for one longer than
    ``max_duration_s`` seconds, 400 for audio without a sound track.
    """
    with open(path, "rb") as fh:
        head = fh.read(32)
    sniffed = _sniff(head)
    accepted = ROLES[role]
    if sniffed is None:
        raise RequestError(415, f"{role}: not a recognised media file (expected {' or '.join(accepted)})")
    kind = sniffed[0]
    info = _check_image(path) if kind == "image" else _probe(path)
    if info.kind not in accepted:
        raise RequestError(415, f"{role}: got {info.kind}, expected {' or '.join(accepted)}")
    if role == "audio" and not info.has_audio:
        raise RequestError(400, "audio: the file has no sound track")
    if info.duration > max_duration_s:
        raise RequestError(413, f"{role}: {info.duration:.1f} s is longer than the {max_duration_s:g} s limit")
    return info


def store_upload(src: BinaryIO, folder: Path, role: str, max_bytes: int, max_duration_s: float) -> Path:
    """Copy an uploaded stream into ``folder`` under a server-chosen name, then check it by content.

    The copy stops (413) as soon as it passes ``max_bytes``; a refused file is deleted.
    Returns the stored path (``folder/<role><ext>``, the extension from the content).
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{role}.part"
    size = 0
    try:
        with open(tmp, "wb") as out:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise RequestError(413, f"{role}: upload larger than the {max_bytes / 2**20:g} MiB limit")
                out.write(chunk)
        if size == 0:
            raise RequestError(400, f"{role}: the upload is empty")
        check_media(tmp, role, max_duration_s)
        with open(tmp, "rb") as fh:
            ext = _sniff(fh.read(32))[1]  # type: ignore[index]
        final = folder / f"{role}{ext}"
        tmp.replace(final)
        return final
    finally:
        tmp.unlink(missing_ok=True)


def confine(path_text: str, roots: tuple[Path, ...]) -> Path:
    """Resolve a client-given server-side path; it must exist inside one of ``roots``.

    Raises :class:`RequestError`: 403 when server-side paths are off (no roots) or the resolved path
    (symlinks and ``..`` followed) lies outside every root, 404 when it does not exist.
    """
    if not roots:
        raise RequestError(403, "server-side paths are disabled on this server (start it with --allow-path DIR)")
    if "\x00" in path_text:
        raise RequestError(400, "the path contains a NUL byte")
    try:
        real = Path(path_text).expanduser().resolve(strict=False)
    except (OSError, RuntimeError):
        raise RequestError(400, "the path cannot be resolved") from None
    if not any(real.is_relative_to(Path(r).resolve()) for r in roots):
        raise RequestError(403, "the path is outside the allowed folders")
    if not real.exists():
        raise RequestError(404, "no such file inside the allowed folders")
    return real


def link_server_file(path_text: str, roots: tuple[Path, ...], folder: Path, role: str, max_bytes: int,
                     max_duration_s: float) -> Path:
    """Check a server-side file (confined to ``roots``) for ``role`` and copy it into the job's ``folder``."""
    real = confine(path_text, roots)
    if not real.is_file():
        raise RequestError(400, f"{role}: not a file")
    if real.stat().st_size > max_bytes:
        raise RequestError(413, f"{role}: file larger than the {max_bytes / 2**20:g} MiB limit")
    with open(real, "rb") as fh:
        return store_upload(fh, folder, role, max_bytes, max_duration_s)
