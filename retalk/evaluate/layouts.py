"""Public talking-head datasets as they are laid out on disk: LRS2 and HDTF.

``retalk eval --dataset lrs2:PATH`` / ``hdtf:PATH`` read these layouts; the plain folder and the
CSV/JSON Lines manifests live in :mod:`retalk.evaluate.dataset`.

**LRS2** (BBC, Son Chung et al. 2017), as distributed::

    PATH/                      (``mvlrs_v1/`` itself, or the folder that holds it)
      main/<speaker_id>/<clip>.mp4  (+ <clip>.txt transcripts; 160×160 face crops at 25 fps)
      pretrain/...                  (longer utterances; not read)
      train.txt  val.txt  test.txt  (one ``<speaker_id>/<clip>`` per line; some lines carry a
                                     trailing flag such as `` NF`` or `` MV``, which is ignored)

``lrs2:PATH`` reads ``test.txt`` (the split the lip-sync papers report on); ``lrs2:PATH/val.txt``
(any ``.txt`` list) reads that list instead.  The list files are looked for in ``PATH``, then in
``PATH/mvlrs_v1``; ``main/`` beside the list, or in ``mvlrs_v1/``.  The clip id is
``<speaker_id>_<clip>``.  A listed clip whose ``.mp4`` is missing is kept: its row fails with
"not found" and the run goes on.

**HDTF** (Zhang et al. 2021) is distributed as lists of YouTube URLs and time stamps; people keep
the downloaded clips as ``<name>.mp4``, named after the source (``RD_Radio…``, ``WDA_…``,
``WRA_…``), in one folder or split into sub-folders (``RD/``, ``WDA/``, ``WRA/``).  ``hdtf:PATH``
takes every video under ``PATH`` (any depth; hidden folders and ``retalk eval`` output folders, those
holding a ``results.csv``, skipped); the clip id is the file
stem, which HDTF's names keep unique.  A same-stem audio file beside a video is its speech.
"""
from __future__ import annotations

import logging
from pathlib import Path

from retalk.errors import InputError
from retalk.evaluate.dataset import AUDIO_SUFFIXES, VIDEO_SUFFIXES, Clip, check_id

log = logging.getLogger(__name__)

LRS2_DEFAULT_LIST = "test.txt"
"""The LRS2 file list read when ``lrs2:PATH`` names a folder."""
LRS2_ROOT = "mvlrs_v1"
HDTF_SOURCES: tuple[str, ...] = ("RD", "WDA", "WRA")
"""HDTF clip-name prefixes (radio, Democrat and Republican addresses): recorded as the clip's source."""


def read_lrs2(path: Path) -> list[Clip]:
    """The clips listed in an LRS2 file list (see the module docstring); ``path``: a folder or a ``.txt`` list."""
    listing = _lrs2_list(path)
    main = _lrs2_main(listing.parent)
    clips: list[Clip] = []
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{listing}: cannot read the LRS2 file list ({exc})") from None
    for n, line in enumerate(lines, start=1):
        words = line.split()
        if not words:
            continue
        entry = words[0]  # "<speaker_id>/<clip>", a flag (NF, MV) may follow
        parts = entry.split("/")
        if len(parts) != 2 or not all(parts):
            raise InputError(f"{listing} line {n}: expected '<speaker_id>/<clip>', found {entry!r}")
        clip_id = check_id(f"{parts[0]}_{parts[1]}", f"{listing} line {n}")
        clips.append(Clip(clip_id, main / parts[0] / f"{parts[1]}.mp4"))
    missing = sum(not c.video.is_file() for c in clips)
    if missing:
        log.warning("%s: %d of %d listed clip(s) not found under %s; their rows will fail", listing, missing,
                    len(clips), main)
    return clips


def _lrs2_list(path: Path) -> Path:
    if path.is_file():
        if path.suffix.lower() != ".txt":
            raise InputError(f"{path}: an LRS2 dataset is a folder or a .txt file list (test.txt, val.txt)")
        return path
    for folder in (path, path / LRS2_ROOT):
        if (folder / LRS2_DEFAULT_LIST).is_file():
            return folder / LRS2_DEFAULT_LIST
    raise InputError(f"{path}: no LRS2 {LRS2_DEFAULT_LIST} here or in {LRS2_ROOT}/ (give lrs2:PATH/val.txt "
                     "for another list)")


def _lrs2_main(folder: Path) -> Path:
    for main in (folder / "main", folder / LRS2_ROOT / "main"):
        if main.is_dir():
            return main
    raise InputError(f"{folder}: no LRS2 main/ folder beside the file list (expected main/<speaker_id>/<clip>.mp4)")


def hdtf_source(clip_id: str) -> str:
    """``RD``, ``WDA`` or ``WRA`` from an HDTF clip name (``WDA_BarackObama_000``), else ``""``."""
    prefix = clip_id.split("_", 1)[0].upper()
    return prefix if prefix in HDTF_SOURCES else ""


def read_hdtf(path: Path) -> list[Clip]:
    """Every video under ``path`` (any depth) as an HDTF clip; a same-stem audio file beside it is its speech."""
    if not path.is_dir():
        raise InputError(f"{path}: an HDTF dataset is a folder of <name>.mp4 clips (sub-folders allowed)")
    clips: dict[str, Clip] = {}
    runs = {r.parent for r in path.rglob("results.csv")}  # `retalk eval --out` folders: their videos are outputs
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path)
        if any(part.startswith(".") for part in rel.parts) or f.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        if runs.intersection(f.parents):
            continue
        if not f.is_file():
            continue
        clip_id = check_id(f.stem, str(path))
        if clip_id in clips:
            raise InputError(f"{path}: two clips are named {clip_id!r} ({clips[clip_id].video.relative_to(path)}, "
                             f"{rel})")
        audio = next((a for a in (f.with_suffix(s) for s in sorted(AUDIO_SUFFIXES)) if a.is_file()), None)
        clips[clip_id] = Clip(clip_id, f, audio)
    if not clips:
        raise InputError(f"{path}: no videos found under it ({', '.join(sorted(VIDEO_SUFFIXES))})")
    unknown = sorted(c for c in clips if not hdtf_source(c))
    if unknown:
        log.info("%s: %d clip name(s) without an HDTF source prefix (%s), e.g. %s", path, len(unknown),
                 "/".join(HDTF_SOURCES), unknown[0])
    return list(clips.values())
