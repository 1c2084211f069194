"""Evaluation datasets: discovery of clips and protocol pairing (which audio drives which video).

A dataset is one of

* a **folder** of videos (``.mp4 .mov .mkv .avi .webm .m4v .mpg .mpeg``, top level only).
  An audio file with the same stem (``talk1.mp4`` + ``talk1.wav``; ``.wav .mp3 .flac .m4a .aac
  .ogg .opus``) is that clip's speech; otherwise the video's own sound track is.  The clip id is
  the file stem.
* a **CSV manifest** (``.csv``, with a header row) or a **JSON Lines manifest** (``.jsonl``,
  one object per line) with the columns/keys ``video`` (required), ``audio`` (optional) and
  ``id`` (optional, default: the video's stem).  Relative paths are relative to the
  manifest's folder.
* a public dataset's layout, ``lrs2:PATH`` or ``hdtf:PATH`` (see :mod:`retalk.evaluate.layouts`).

A dataset is named ``LAYOUT:PATH`` (``folder:``, ``csv:``, ``jsonl:``, ``lrs2:``, ``hdtf:``) or by
its path alone (a folder, a ``.csv`` or a ``.jsonl`` file), see :func:`open_dataset`.

Paths are made absolute (workers in other processes or on a Ray cluster may run elsewhere).
Clips are returned sorted by id, so every protocol pairing and every result table has the
same order whatever the file system lists first.  A dataset that cannot be used (missing,
empty, a manifest without a ``video`` column, duplicate ids) raises
:class:`retalk.errors.InputError` with a one-line message.  A listed file that does not exist
is *not* such an error: the clip is kept and its row fails with "not found" (the run goes on).

Protocols (:func:`pair_clips`):

* ``paired`` — each video is driven by its own speech (reconstruction: the rendered video
  should match the source, so landmark distances and PSNR/SSIM against it are meaningful);
* ``unpaired`` — each video is driven by another clip's speech, chosen by a seeded random
  derangement (no clip keeps its own audio): the cross-driving setting of the lip-sync papers.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retalk.errors import InputError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})
"""File suffixes taken as videos when a dataset is a folder."""
AUDIO_SUFFIXES: frozenset[str] = frozenset({".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus"})
"""File suffixes taken as speech when a dataset is a folder."""
MANIFEST_SUFFIXES: frozenset[str] = frozenset({".csv", ".jsonl"})
PROTOCOLS: tuple[str, ...] = ("paired", "unpaired")
LAYOUTS: tuple[str, ...] = ("folder", "csv", "jsonl", "lrs2", "hdtf")
"""The ``LAYOUT:`` prefixes of a dataset name."""
UNPAIRED_NOTE = ("each video is driven by the speech of another clip of the dataset, chosen by a seeded random "
                 "derangement (no clip keeps its own audio), as in Prajwal et al. 2020 (Wav2Lip)")
"""How the unpaired protocol pairs clips, recorded in ``summary.json`` and ``report.md``."""

_BAD_ID = re.compile(r"[/\\\x00-\x1f]")


@dataclass(frozen=True)
class Clip:
    """One dataset entry: ``id`` (unique, used as the output file name), ``video`` and optional separate ``audio``."""

    id: str
    video: Path
    audio: Path | None = None

    @property
    def speech(self) -> Path:
        """The clip's own speech: the separate audio file, else the video's sound track."""
        return self.audio if self.audio is not None else self.video


@dataclass(frozen=True)
class Pair:
    """A job of a protocol: render ``clip``'s video driven by ``audio`` (the speech of clip ``audio_id``)."""

    clip: Clip
    audio: Path
    audio_id: str


@dataclass(frozen=True)
class Dataset:
    """An opened dataset: its ``layout`` (one of :data:`LAYOUTS`), ``path``, ``clips`` (sorted by id) and,
    after ``--subset``, how many clips it had (``n_total``) and the subset's ``subset_seed``."""

    layout: str
    path: Path
    clips: tuple[Clip, ...]
    n_total: int
    subset_seed: int | None = None

    @property
    def name(self) -> str:
        """``LAYOUT:PATH``, the name that opens this dataset again."""
        return f"{self.layout}:{self.path}"


def parse_dataset_name(name: str | Path) -> tuple[str, Path]:
    """``"lrs2:/data/mvlrs_v1"`` → ``("lrs2", Path)``; a bare path → its layout from what it is.

    A name whose text before the first ``:`` is not one of :data:`LAYOUTS` is a path.
    """
    text = str(name)
    layout, sep, rest = text.partition(":")
    if sep and layout.lower() in LAYOUTS and not Path(text).exists():
        if not rest.strip():
            raise InputError(f"--dataset {text}: give a path after '{layout}:'")
        return layout.lower(), Path(rest).expanduser().absolute()
    p = Path(text).expanduser().absolute()
    if not p.exists():
        raise InputError(f"{p}: dataset not found (give a folder of videos, a .csv/.jsonl manifest or "
                         f"LAYOUT:PATH with LAYOUT one of {', '.join(LAYOUTS)})")
    if p.is_dir():
        return "folder", p
    if p.suffix.lower() in MANIFEST_SUFFIXES:
        return p.suffix.lower()[1:], p
    raise InputError(f"{p}: not a dataset; give a folder of videos, a .csv/.jsonl manifest or LAYOUT:PATH "
                     f"({', '.join(LAYOUTS)})")


def open_dataset(name: str | Path, subset: int | None = None, seed: int = 0) -> Dataset:
    """Open the dataset ``name`` (see :func:`parse_dataset_name`); keep ``subset`` clips chosen with ``seed``.

    Raises :class:`InputError` (one line) for a dataset that cannot be used.
    """
    from retalk.evaluate import layouts

    layout, p = parse_dataset_name(name)
    if not p.exists():
        raise InputError(f"{p}: dataset not found")
    if layout == "folder":
        if not p.is_dir():
            raise InputError(f"{p}: folder: needs a folder of videos")
        clips = _scan_folder(p)
    elif layout in ("csv", "jsonl"):
        if not p.is_file():
            raise InputError(f"{p}: {layout}: needs a manifest file")
        clips = _read_csv(p) if layout == "csv" else _read_jsonl(p)
    elif layout == "lrs2":
        clips = _unique(layouts.read_lrs2(p), p)
    else:
        clips = layouts.read_hdtf(p)
    if not clips:
        raise InputError(f"{p}: the dataset has no clips")
    clips.sort(key=lambda c: c.id)
    n_total = len(clips)
    if subset is not None:
        clips = subset_clips(clips, subset, seed)
    missing = sum(not c.video.is_file() or (c.audio is not None and not c.audio.is_file()) for c in clips)
    if missing and layout != "lrs2":  # lrs2 says it itself
        log.warning("%s: %d clip(s) name a file that does not exist; their rows will fail", p, missing)
    log.info("dataset %s:%s: %d clip(s)%s", layout, p, len(clips), f" of {n_total}" if subset is not None else "")
    return Dataset(layout, p, tuple(clips), n_total, seed if subset is not None else None)


def load_dataset(path: str | Path) -> list[Clip]:
    """Clips of the dataset ``path`` (any name :func:`open_dataset` takes), sorted by id."""
    return list(open_dataset(path).clips)


def subset_clips(clips: Sequence[Clip], n: int, seed: int) -> list[Clip]:
    """``n`` of ``clips`` drawn without replacement by ``numpy.random.default_rng(seed)``, in the given order."""
    if n < 1:
        raise InputError(f"--subset must be at least 1, got {n}")
    if n >= len(clips):
        return list(clips)
    keep = np.sort(np.random.default_rng(seed).choice(len(clips), size=n, replace=False))
    return [clips[int(i)] for i in keep]


def check_id(clip_id: str, where: str) -> str:
    """``clip_id`` stripped, or :class:`InputError` when it cannot be a file name (``where``: for the message)."""
    clip_id = clip_id.strip()
    if not clip_id or clip_id in (".", "..") or clip_id.startswith(".") or _BAD_ID.search(clip_id):
        raise InputError(f"{where}: clip id {clip_id!r} cannot be a file name (no slashes, no leading dot)")
    return clip_id


def _scan_folder(folder: Path) -> list[Clip]:
    videos: dict[str, Path] = {}
    audios: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        suffix = f.suffix.lower()
        table = videos if suffix in VIDEO_SUFFIXES else audios if suffix in AUDIO_SUFFIXES else None
        if table is None:
            continue
        if f.stem in table:
            kind = "videos" if table is videos else "audio files"
            raise InputError(f"{folder}: two {kind} share the name {f.stem!r} ({table[f.stem].name}, {f.name})")
        table[f.stem] = f
    if not videos:
        raise InputError(f"{folder}: no videos found ({', '.join(sorted(VIDEO_SUFFIXES))})")
    orphans = sorted(set(audios) - set(videos))
    if orphans:
        log.warning("%s: %d audio file(s) without a video of the same name are ignored (e.g. %s)",
                    folder, len(orphans), audios[orphans[0]].name)
    return [Clip(check_id(stem, str(folder)), v, audios.get(stem)) for stem, v in videos.items()]


def _entry_to_clip(entry: dict, base: Path, where: str) -> Clip:
    video = str(entry.get("video") or "").strip()
    if not video:
        raise InputError(f"{where}: no video given")
    vpath = _resolve(video, base)  # a missing file is the clip's failure, recorded when it runs
    audio = str(entry.get("audio") or "").strip()
    apath = _resolve(audio, base) if audio else None
    clip_id = str(entry.get("id") or "").strip() or vpath.stem
    return Clip(check_id(clip_id, where), vpath, apath)


def _resolve(text: str, base: Path) -> Path:
    p = Path(text).expanduser()
    return (p if p.is_absolute() else base / p).absolute()


def _unique(clips: list[Clip], where: Path) -> list[Clip]:
    seen: set[str] = set()
    for c in clips:
        if c.id in seen:
            raise InputError(f"{where}: clip id {c.id!r} appears twice (give an 'id' column to tell them apart)")
        seen.add(c.id)
    return clips


def _read_csv(path: Path) -> list[Clip]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            if "video" not in fields:
                raise InputError(f"{path}: the manifest needs a header row with a 'video' column "
                                 f"(found: {', '.join(fields) or 'nothing'})")
            clips = []
            for row in reader:
                entry = {(k or "").strip().lower(): (v or "") for k, v in row.items() if k is not None}
                if not any(str(v).strip() for v in entry.values()):
                    continue  # blank line
                clips.append(_entry_to_clip(entry, path.parent, f"{path} line {reader.line_num}"))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV manifest ({type(exc).__name__}: {exc})") from None
    return _unique(clips, path)


def _read_jsonl(path: Path) -> list[Clip]:
    clips = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 JSON Lines manifest ({exc.reason})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(entry, dict):
            raise InputError(f"{path} line {n}: expected an object like {{\"video\": ..., \"audio\": ...}}")
        entry = {str(k).lower(): ("" if v is None else v) for k, v in entry.items()}
        clips.append(_entry_to_clip(entry, path.parent, f"{path} line {n}"))
    return _unique(clips, path)


def derangement(n: int, seed: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` with no fixed point, reproducible from ``seed``.

    Rejection sampling of ``numpy.random.default_rng(seed).permutation`` (about e ≈ 2.7 draws on
    average).  ``n`` must be at least 2.
    """
    if n < 2:
        raise InputError(f"the unpaired protocol needs at least 2 clips, the dataset has {n}")
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == idx):
            return perm


def pair_clips(clips: Sequence[Clip], protocol: str = "paired", seed: int = 0) -> list[Pair]:
    """The jobs of ``protocol`` over ``clips`` (in the given order; :func:`load_dataset` sorts by id).

    ``paired``: each clip with its own speech.  ``unpaired``: clip *i* with the speech of clip
    ``derangement(n, seed)[i]``, so the pairing depends only on the clip ids and the seed.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    clips = list(clips)
    if protocol == "paired":
        return [Pair(c, c.speech, c.id) for c in clips]
    perm = derangement(len(clips), seed)
    return [Pair(c, clips[int(j)].speech, clips[int(j)].id) for c, j in zip(clips, perm)]
