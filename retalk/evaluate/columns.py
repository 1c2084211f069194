"""The schema of ``retalk eval``'s results: metric definitions, column order, file names and cell formatting.

Every other module of :mod:`retalk.evaluate` reads its columns from here; nothing here
computes a metric.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from retalk.errors import InputError, RetalkError

UNAVAILABLE = "unavailable"
"""Cell value of a metric whose weights could not be loaded (the reason is in ``summary.json``)."""

RESULTS_CSV = "results.csv"
SUMMARY_JSON = "summary.json"
REPORT_MD = "report.md"
VIDEOS_DIR = "videos"
PLOTS_DIR = "plots"


@dataclass(frozen=True)
class Metric:
    """A result column: ``name``, metric ``group``, ``unit``, which way is ``better`` and a description."""

    name: str
    group: str
    unit: str
    better: str
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("cpbd", "sharpness", "0..1", "higher", "CPBD sharpness of the whole frame, mean over frames"),
    Metric("cpbd_face", "sharpness", "0..1", "higher",
           "CPBD sharpness of the tracked face box (at least 64×64 px), mean over frames"),
    Metric("av_offset", "sync", "frames", "0", "mouth-opening vs speech-loudness offset (SyncNet sign: -audio delay)"),
    Metric("av_confidence", "sync", "correlation", "higher",
           "peak minus median correlation of mouth opening and speech loudness over ±15 frame lags"),
    Metric("mouth_open_mean", "mouth", "IOD", "", "mean inner-lip opening (inter-ocular distances)"),
    Metric("mouth_open_std", "mouth", "IOD", "", "standard deviation of the inner-lip opening"),
    Metric("mouth_open_range", "mouth", "IOD", "", "p95 − p5 of the inner-lip opening: how far the mouth moves"),
    Metric("mouth_speed", "mouth", "IOD/frame", "", "mean absolute frame-to-frame change of the opening"),
    Metric("landmark_jitter", "jitter", "IOD/frame²", "lower",
           "mean second difference of the 478 tracked points (temporal trembling)"),
    Metric("lmd_mouth", "reference", "IOD", "lower", "landmark distance over the 40 lip points vs the source video"),
    Metric("lmd_face", "reference", "IOD", "lower", "landmark distance over all 478 points vs the source video"),
    Metric("psnr", "reference", "dB", "higher", "PSNR vs the source frame, mean over frames"),
    Metric("ssim", "reference", "≤1", "higher", "SSIM vs the source frame (7×7 window), mean over frames"),
    Metric("psnr_outside", "reference", "dB", "higher",
           "PSNR outside the source's face box (grown 10% per side): is the rest of the picture untouched?"),
    Metric("lse_d", "lse", "distance", "lower", "SyncNet LSE-D: mean embedding distance at the best offset"),
    Metric("lse_c", "lse", "distance", "higher", "SyncNet LSE-C: median minus minimum distance over offsets"),
    Metric("lse_offset", "lse", "frames", "0", "SyncNet AV offset (positive: audio early)"),
)
"""Per-clip metrics, in column order."""

SET_METRICS: tuple[Metric, ...] = (
    Metric("fid", "fid", "feature units²", "lower", "FID of rendered frames vs source frames (Inception pool3)"),
    Metric("kid", "fid", "feature units²", "lower", "KID (unbiased MMD², cubic kernel) of rendered vs source frames"),
    Metric("kid_std", "fid", "feature units²", "", "standard deviation of KID over 100 subsets"),
)
"""Set-level metrics over the whole run (in ``summary.json``)."""

GROUPS: tuple[str, ...] = ("sharpness", "sync", "mouth", "jitter", "reference", "lse", "fid")
"""Metric groups; ``metrics=("default",)`` selects all (``reference`` applies to ``paired`` only)."""

INFO_COLUMNS: tuple[str, ...] = ("id", "video", "audio", "audio_id", "engine", "protocol", "status", "error",
                                 "frames", "fps", "duration_s", "face_fraction")
TIMING_COLUMNS: tuple[str, ...] = ("render_s", "score_s")
COLUMNS: tuple[str, ...] = INFO_COLUMNS + tuple(m.name for m in METRICS) + TIMING_COLUMNS + ("notes",)
"""Columns of ``results.csv``, in order."""

METRIC_BY_NAME = MappingProxyType({m.name: m for m in METRICS + SET_METRICS})
"""Every metric (per clip and per set) by column name."""


def select_groups(metrics: Sequence[str] | str) -> tuple[str, ...]:
    """Metric groups named by ``metrics`` (names or comma lists; ``default``/``all`` = every group), in GROUPS order.

    Raises :class:`InputError` for an unknown name or an empty selection.
    """
    items = [metrics] if isinstance(metrics, str) else list(metrics)
    names: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name in ("default", "all"):
                names.extend(GROUPS)
            elif name in GROUPS:
                names.append(name)
            else:
                raise InputError(f"unknown metric group {name!r}; choose from default, {', '.join(GROUPS)}")
    if not names:
        raise InputError("no metrics selected")
    return tuple(g for g in GROUPS if g in names)


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 500 characters (a :class:`RetalkError`'s message without its type)."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    if isinstance(exc, RetalkError):
        msg = first or type(exc).__name__
    else:
        msg = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return msg[:500]


def fmt(v: Any) -> str:
    """A cell: '' for missing/NaN, 'inf' for infinities, 6 significant digits for floats."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    x = float(v)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def number(cell: str | None) -> float | None:
    """A cell as a float, or None when it is empty, ``unavailable`` or text."""
    if cell in (None, "", UNAVAILABLE):
        return None
    try:
        return float(cell)
    except ValueError:
        return None
