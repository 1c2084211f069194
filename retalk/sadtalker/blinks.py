"""Eye blinks for SadTalker's audio2exp: a seeded blink pattern, or a reference video's expressions.

The reference (``generate_blink_seq_randomly``) draws gaps with Python's
unseeded ``random``; here a :class:`numpy.random.Generator` is passed in, so a
seed reproduces a run.  The pattern rule is the reference's: no blinks for
``T <= 20`` frames; otherwise, from frame ``f = 0``, a gap ``g`` is drawn
uniformly from ``[min(10, T), min(T // 2, 70))`` and, if ``f + g + 5 <= T - 1``,
the 5 frames from ``f + g`` get ``[0.5, 0.9, 1.0, 0.9, 0.5]`` and ``f`` moves
past them; the first gap that does not fit ends the pattern.  At ``T = 21``
that range is empty and the reference crashes (``IndexError``); here an empty
range means the gap is its lower end (the value ``T = 22`` would draw).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["BLINK", "blink_ratio", "tile_frames", "reference_expression"]

#: Eye-closure ratio over the 5 frames of one blink (1 = fully closed).
BLINK = (0.5, 0.9, 1.0, 0.9, 0.5)
_MIN_FRAMES = 21


class IntegerSource(Protocol):
    """What :func:`blink_ratio` needs from a generator: ``integers(low, high)`` in ``[low, high)``."""

    def integers(self, low: int, high: int) -> int: ...  # pragma: no cover


def blink_ratio(n_frames: int, rng: IntegerSource) -> np.ndarray:
    """``(T, 1)`` float32 eye-blink ratio per frame (0 = open), drawn with ``rng``.

    Args:
        n_frames: number of frames ``T`` (25 fps).
        rng: e.g. ``np.random.default_rng(seed)``; ``rng.integers(lo, hi)`` draws one gap.
    """
    ratio = np.zeros((n_frames, 1), dtype=np.float32)
    if n_frames < _MIN_FRAMES:
        return ratio
    lo, hi = min(10, n_frames), min(n_frames // 2, 70)
    hi = max(hi, lo + 1)  # T = 21: the reference's empty range
    frame = 0
    while frame < n_frames:
        start = frame + int(rng.integers(lo, hi))
        if start + len(BLINK) > n_frames - 1:
            break
        ratio[start:start + len(BLINK), 0] = BLINK
        frame = start + len(BLINK)
    return ratio


def tile_frames(rows: np.ndarray, n_frames: int) -> np.ndarray:
    """A reference video's per-frame rows stretched to ``T`` frames as the reference does.

    A shorter video is repeated whole, then cut (frame ``i`` takes row
    ``i % N``); a longer one is cut to its first ``T`` rows.

    Args:
        rows: ``(N, k)`` per-frame values, ``N >= 1``.
        n_frames: ``T``.

    Returns:
        ``(T, k)`` array of ``rows``' dtype.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError(f"expected (N >= 1, k) rows, got shape {rows.shape}")
    return rows[np.arange(n_frames) % rows.shape[0]]


def reference_expression(source_exp: np.ndarray, n_frames: int,
                         video_exp: np.ndarray | None = None) -> np.ndarray:
    """``(T, 64)`` float32 ``ref`` input of audio2exp.

    The source image's expression repeated per frame, or, with
    ``--ref-eyeblink``, the reference video's per-frame expression
    (``video_exp`` ``(N, 64)``, tiled by :func:`tile_frames`); with a video the
    blink ratio must be all zeros (the video's own eyes blink).
    """
    if video_exp is not None:
        return tile_frames(np.asarray(video_exp, dtype=np.float32)[:, :64], n_frames)
    exp = np.asarray(source_exp, dtype=np.float32).reshape(-1)[:64]
    return np.repeat(exp[None, :], n_frames, axis=0)
