"""Does a dubbed video's mouth move like the speaker's own? Spread of lip opening and frame-to-frame change.

Compares a ``retalk sync`` output with the source video it was made from. The
output plays the source's frames in ping-pong order (:func:`retalk.pipeline.ping_pong`),
so every figure compares the output with the *same* source frames played in
that order: a 5 s output from a 10 s clip is compared with the clip's first
5 s, not with frames it never shows.

* ``spread_ratio``: standard deviation of the inner-lip opening (face mesh,
  inter-ocular units), output over source. About 1: the mouth moves as much as
  the speaker's own; well below: a mumbling mouth; well above: exaggerated.
* ``change_ratio``: mean absolute frame-to-frame difference (0–255 grey levels,
  RGB averaged) in a fixed box around the mouth (side 1.2 inter-ocular distances,
  centred on the source's first tracked mouth), output over source. Above 1
  means more change than the speaker's own: stutter, flicker or popping.
* ``change_p99_ratio``: the same for the 99th percentile of the per-frame change (single pops).
* ``aligned_change_ratio``: the mean change in a box that follows the head (each
  frame aligned on the stable points: eyes, nose), which leaves out head motion
  and measures the mouth alone.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from retalk.face import landmarks as L
from retalk.face.tracker import FaceTracker, smooth_landmarks
from retalk.media import iter_frames, probe_video
from retalk.media.video import prefetch


@dataclass(frozen=True)
class MotionReport:
    """Output-over-source ratios from :func:`mouth_motion` (see the module docstring), the frames compared
    and the source's own spread of lip opening."""

    spread_ratio: float
    change_ratio: float
    change_p99_ratio: float
    aligned_change_ratio: float
    frames: int
    source_spread: float  # the source's own spread (inter-ocular units): near 0 for a still mouth, where ratios mean little


@dataclass(frozen=True)
class _Box:
    ref: np.ndarray  # (478, 2) reference landmarks (the source's first tracked frame)
    y0: int
    y1: int
    x0: int
    x1: int


def _mouth_box(ref: np.ndarray, shape: tuple[int, int]) -> _Box:
    c = ref[L.LIPS_OUTER].mean(0)
    r = 0.6 * float(L.interocular(ref))
    h, w = shape
    return _Box(ref, int(max(0, c[1] - r)), int(min(h, c[1] + r)), int(max(0, c[0] - r)), int(min(w, c[0] + r)))


def _crops(frames: Iterator[np.ndarray], lms: list[np.ndarray | None], box: _Box) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(fixed-box crop, head-aligned crop or None) per frame; ``lms[k]``: the landmarks that place frame k's head."""
    y0, y1, x0, x1 = box.y0, box.y1, box.x0, box.x1
    for f, lm in zip(frames, lms):
        fixed = f[y0:y1, x0:x1].astype(np.float32)
        aligned = None
        if lm is not None:
            m = L.similarity_transform(lm[L.STABLE].astype(np.float64), box.ref[L.STABLE].astype(np.float64))
            m[:, 2] -= (x0, y0)  # straight into the box's coordinates
            aligned = cv2.warpAffine(f, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        yield fixed, aligned


def _changes(crops: Iterator[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray]:
    """Per step k (frame k to k+1): mean absolute change of the fixed and of the aligned crops (NaN if either is missing)."""
    fixed, aligned = [], []
    prev: tuple[np.ndarray, np.ndarray | None] | None = None
    for cur in crops:
        if prev is not None:
            fixed.append(float(np.abs(cur[0] - prev[0]).mean()))
            ok = cur[1] is not None and prev[1] is not None
            aligned.append(float(np.abs(cur[1] - prev[1]).mean()) if ok else np.nan)  # type: ignore[operator]
        prev = cur
    return np.array(fixed), np.array(aligned)


def _along(step_values: np.ndarray, schedule: np.ndarray) -> np.ndarray:
    """The source's step values as the output plays them: step k→k±1 takes the source's step between those
    two frames; a repeated frame (no move) changes by 0."""
    a, b = schedule[:-1], schedule[1:]
    lo = np.clip(np.minimum(a, b), 0, len(step_values) - 1)
    return np.where(np.abs(b - a) == 1, step_values[lo], 0.0)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 1e-9 else float("nan")


def mouth_motion(source: str | Path, output: str | Path, schedule: np.ndarray | None = None) -> MotionReport:
    """Compare ``output``'s mouth motion with ``source``'s (both videos of the same size; see the module docstring).

    ``schedule``: the source frame shown by each output frame; by default the ping-pong order that
    ``retalk sync`` uses, for as many frames as the output has.
    """
    from retalk.pipeline import ping_pong

    src_info, out_info = probe_video(source), probe_video(output)
    if (src_info.width, src_info.height) != (out_info.width, out_info.height):
        raise ValueError(f"{output} is {out_info.width}x{out_info.height}, its source {src_info.width}x{src_info.height}")
    tracker = FaceTracker()
    n_src = 0
    for f in prefetch(iter_frames(src_info)):
        tracker.update(f)
        n_src += 1
    raw = tracker.finish(smooth=False)
    if n_src < 2:
        raise ValueError(f"{source} is a single picture: it has no motion to compare with")
    if not raw.valid.any():
        raise ValueError(f"no face found in {source}")
    steady = smooth_landmarks(raw.landmarks, raw.valid)  # alignment wants steady points, openings raw ones
    src_lms: list[np.ndarray | None] = [steady[k, :, :2] if raw.valid[k] else None for k in range(n_src)]
    box = _mouth_box(src_lms[int(np.argmax(raw.valid))], (src_info.height, src_info.width))  # type: ignore[arg-type]
    src_fixed, src_aligned = _changes(_crops(prefetch(iter_frames(src_info)), src_lms, box))
    src_open = L.opening_series(raw.landmarks, raw.valid)

    out_tracker = FaceTracker()

    def tracked(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for f in frames:
            out_tracker.update(f)
            yield f

    if schedule is None:  # generous: the output's frame count is only an estimate until decoded
        schedule = ping_pong(n_src, 2 * out_info.n_frames + 100)
    schedule = np.asarray(schedule, np.int64)
    out_lms = [src_lms[int(k)] for k in schedule]  # the output keeps the source's head: align with its landmarks
    out_fixed, out_aligned = _changes(_crops(tracked(prefetch(iter_frames(out_info))), out_lms, box))
    n = len(out_fixed) + 1
    schedule = schedule[:n]
    out_track = out_tracker.finish(smooth=False)
    out_open = L.opening_series(out_track.landmarks, out_track.valid)
    ref_fixed = _along(src_fixed, schedule)
    ref_aligned = _along(src_aligned, schedule)
    ok = ~np.isnan(out_aligned) & ~np.isnan(ref_aligned)
    src_spread = float(np.nanstd(src_open[schedule]))
    return MotionReport(
        spread_ratio=_ratio(float(np.nanstd(out_open[:n])), src_spread),
        change_ratio=_ratio(float(out_fixed.mean()), float(ref_fixed.mean())),
        change_p99_ratio=_ratio(float(np.percentile(out_fixed, 99)), float(np.percentile(ref_fixed, 99))),
        aligned_change_ratio=_ratio(float(out_aligned[ok].mean()), float(ref_aligned[ok].mean())) if ok.any() else float("nan"),
        frames=n,
        source_spread=src_spread,
    )
