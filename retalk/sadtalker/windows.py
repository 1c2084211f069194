"""The 27-frame coefficient windows SadTalker's mapping net reads (``src/generate_facerender_batch.py``).

Each rendered frame ``i`` is driven by the coefficient rows of frames
``i - 13 .. i + 13`` (indices clamped to ``[0, T - 1]``), transposed to
``(channels, 27)``.  The source image's window is its own row repeated 27 times.
"""
from __future__ import annotations

import numpy as np

from retalk.sadtalker.types import EXP_DIM, check_source

__all__ = ["SEMANTIC_RADIUS", "WINDOW", "source_window", "target_rows", "target_windows"]

#: Frames on each side of the centre frame.
SEMANTIC_RADIUS = 13
#: Frames per window (``2 * 13 + 1``).
WINDOW = 2 * SEMANTIC_RADIUS + 1
_BASE = 70


def source_window(source: np.ndarray, full: bool = False) -> np.ndarray:
    """``(70, 27)`` float32 (``(73, 27)`` with ``full``): the source row repeated over the window.

    Args:
        source: the source image's coefficient row, ``(73,)`` (or ``(70,)``
            when ``full`` is False).
        full: the ``full``/``extfull`` preprocess (adds the crop's s, tx, ty).
    """
    row = _source_row(source, full)
    return np.repeat(row[:, None], WINDOW, axis=1)


def _source_row(source: np.ndarray, full: bool) -> np.ndarray:
    row = check_source(source)
    if full and row.shape[0] != _BASE + 3:
        raise ValueError("the full preprocess needs a 73-value source row (with s, tx, ty)")
    return row if full else row[:_BASE]


def target_rows(coeffs: np.ndarray, source: np.ndarray, *, expression_scale: float = 1.0,
                full: bool = False, still: bool = False) -> np.ndarray:
    """Per-frame driving rows, in the reference's order of edits.

    1. expression (columns 0:64) times ``expression_scale``;
    2. ``full``: the source's ``s, tx, ty`` appended to every row;
    3. ``still``: pose (and crop) columns 64: replaced by the source's.

    Args:
        coeffs: ``(T, 70)`` predicted rows ``[exp 64, pose 6]`` (:meth:`MotionCoeffs.coeffs`).
        source: the source row ``(73,)`` (``(70,)`` allowed without ``full``).

    Returns:
        ``(T, 70)`` float32, or ``(T, 73)`` with ``full``.
    """
    rows = np.array(coeffs, dtype=np.float32)[:, :_BASE]
    if rows.ndim != 2 or rows.shape[1] != _BASE:
        raise ValueError(f"coeffs must be (T, 70), got shape {np.shape(coeffs)}")
    src = _source_row(source, full)
    rows[:, :EXP_DIM] = rows[:, :EXP_DIM] * np.float32(expression_scale)
    if full:
        rows = np.concatenate([rows, np.repeat(src[None, _BASE:], rows.shape[0], axis=0)], axis=1)
    if still:
        rows[:, EXP_DIM:] = src[None, EXP_DIM:]
    return rows


def target_windows(coeffs: np.ndarray, source: np.ndarray, *, expression_scale: float = 1.0,
                   full: bool = False, still: bool = False) -> np.ndarray:
    """``(T, 70|73, 27)`` float32: the mapping net's input window for every frame.

    Arguments as :func:`target_rows`; window ``i`` holds rows
    ``clip(i - 13 .. i + 13, 0, T - 1)`` along its last axis.
    """
    rows = target_rows(coeffs, source, expression_scale=expression_scale, full=full, still=still)
    n = rows.shape[0]
    idx = np.clip(np.arange(n)[:, None] + np.arange(-SEMANTIC_RADIUS, SEMANTIC_RADIUS + 1)[None, :], 0, n - 1)
    return np.ascontiguousarray(rows[idx].transpose(0, 2, 1))
