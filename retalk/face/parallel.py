"""The analysis pass in several processes: each tracks the face over one part of the clip.

Face tracking (mediapipe's face mesh, about 8-10 ms a 720p frame on one core) is the
longest stage of a neural engine's run on a GPU machine: a 60 s clip spends 12-14 s in
it while the GPU renders the whole clip in a few seconds. Mediapipe holds the GIL, so
threads do not help; processes do. :func:`track_in_parts` splits the clip into
consecutive parts, lets each process decode its part (seeking to it) and track it, and
joins the raw landmarks into one :class:`FaceTrack` (smoothed over the whole clip, as the
single-process pass does).

What differs from one process: each part but the first starts tracking :data:`LEAD_IN`
frames early and drops them, so that its first frames follow the face as a single pass
would (detection alone lost a few frames there); landmarks can still differ slightly
from the single pass near a part's start. The lead-in also gives each part's cut detector
(:mod:`retalk.face.shots`) the frames before the part, so a cut on a part's first frame is
found as in one pass; the shots are numbered over the joined clip.
A clip whose first look in any part finds several faces is tracked in one process
instead, so the speaker is chosen once (the largest face, or ``--face-index``/``--box``).
"""
from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retalk.face.tracker import FaceTrack, FaceTracker, RawTrack
from retalk.media.video import VideoInfo

log = logging.getLogger(__name__)

#: Fewest frames per part: below this a process's start-up (about 1-2 s) costs more than it saves.
MIN_FRAMES_PER_PART = 150
#: Frames each part (but the first) tracks before its start and drops. Detection alone misses faces that
#: tracking from the previous frame keeps (measured on the generated clip: 5 frames at a part's start lost
#: without it); by the end of the lead-in the mesh follows the face as the single pass does.
LEAD_IN = 30


@dataclass(frozen=True)
class PartResult:
    """One part's raw track (:class:`RawTrack`: landmarks (478, 3) px or None per frame, thumbnail changes,
    cuts, drift), faces at the start."""

    start: int
    raw: RawTrack
    size: tuple[int, int]
    faces_at_start: int | None
    busy_s: float


def _track_part(path: str, start: int, stop: int | None, out: str) -> None:
    """Decode frames ``start``..``stop`` (to the end when None) of ``path``, track them, save to ``out`` (.npz)."""
    from retalk.media.video import iter_frames, probe_video

    t = time.perf_counter()
    info = probe_video(path)
    tracker = FaceTracker()
    size = (info.width, info.height)
    lead = min(LEAD_IN, start)  # frames tracked before the part and dropped: the mesh locks on in them
    for k, frame in enumerate(iter_frames(info, start - lead)):
        if stop is not None and start - lead + k >= stop:
            break
        tracker.update(frame)
        size = (frame.shape[1], frame.shape[0])
    raw = tracker.raw()
    frames, change, cuts, drift = raw.frames[lead:], raw.change[lead:], raw.cuts[lead:], raw.drift[lead:]
    faces = tracker.faces_at_start
    tracker.close()  # the parent smooths the joined track; nothing to finish here
    valid = np.array([f is not None for f in frames], bool)
    lms = np.stack([f if f is not None else np.zeros((478, 3), np.float32) for f in frames]) if frames else \
        np.zeros((0, 478, 3), np.float32)
    np.savez(out, landmarks=lms.astype(np.float32), valid=valid, change=np.asarray(change, np.float64),
             cuts=np.asarray(cuts, bool), drift=np.asarray(drift, np.float64).reshape(-1, 2),
             size=np.asarray(size), faces=-1 if faces is None else faces, busy=time.perf_counter() - t)


def _read_part(start: int, path: Path) -> PartResult:
    with np.load(path) as z:
        lms, valid = z["landmarks"], z["valid"]
        frames = [lms[i] if valid[i] else None for i in range(len(valid))]
        faces = int(z["faces"])
        raw = RawTrack(frames, [float(c) for c in z["change"]], [bool(c) for c in z["cuts"]],
                       [(float(d[0]), float(d[1])) for d in z["drift"]])
        return PartResult(start, raw, (int(z["size"][0]), int(z["size"][1])),
                          None if faces < 0 else faces, float(z["busy"]))


def _run_parts(info: VideoInfo, parts: list[tuple[int, int | None]]) -> list[PartResult]:
    """One worker process per part (``python -m retalk.face.parallel``: no ``__main__`` re-import, no fork)."""
    with tempfile.TemporaryDirectory(prefix="retalk-track-") as tmp:
        procs = []
        try:
            for k, (a, b) in enumerate(parts):
                out = Path(tmp) / f"part{k}.npz"
                cmd = [sys.executable, "-m", "retalk.face.parallel", str(info.path), str(a),
                       "" if b is None else str(b), str(out)]
                procs.append((a, out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
            results = []
            for a, out, proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0 or not out.is_file():
                    tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
                    raise RuntimeError(f"face tracking worker failed (exit {proc.returncode}): {' '.join(tail)}")
                results.append(_read_part(a, out))
            return results
        finally:
            for _, _, proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def plan_parts(n_frames: int, workers: int, min_part: int = MIN_FRAMES_PER_PART) -> list[tuple[int, int | None]]:
    """Consecutive ``(start, stop)`` parts of ``n_frames`` frames for ``workers`` processes.

    At least ``min_part`` frames a part; the last part runs to the end of the
    stream (``stop=None``), so a frame count that was only estimated loses nothing.
    """
    parts = max(1, min(int(workers), n_frames // max(1, min_part)))
    bounds = [round(i * n_frames / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] if i + 1 < parts else None) for i in range(parts)]


def track_in_parts(info: VideoInfo, workers: int,
                   min_part: int | None = None) -> tuple[FaceTrack, int, list[float]] | None:
    """Track the largest face of a video in ``workers`` processes.

    Returns ``(track, frames, busy seconds of each process)``, or None when the clip is better
    tracked in one process (too short for two parts of ``min_part`` frames, default
    :data:`MIN_FRAMES_PER_PART`, or several faces at a part's start).
    """
    parts = plan_parts(int(info.n_frames), workers, MIN_FRAMES_PER_PART if min_part is None else min_part)
    if len(parts) < 2:
        return None
    results = _run_parts(info, parts)
    short = [r.start for r, (a, b) in zip(results, parts) if b is not None and len(r.raw.frames) != b - a]
    if short:
        log.info("a part of the clip decoded fewer frames than counted: tracking again in one process")
        return None
    if any((r.faces_at_start or 0) > 1 for r in results):
        log.info("several faces at the start of a part: tracking again in one process to choose the speaker once")
        return None
    frames: list[np.ndarray | None] = []
    change: list[float] = []
    cuts: list[bool] = []
    drift: list[tuple[float, float]] = []
    for r in results:
        frames += r.raw.frames
        change += r.raw.change
        cuts += r.raw.cuts
        drift += r.raw.drift
    log.info("analysis in %d processes: %s frames", len(parts), "+".join(str(len(r.raw.frames)) for r in results))
    track = FaceTracker.from_raw(RawTrack(frames, change, cuts, drift), results[0].size).finish()
    return track, len(frames), [r.busy_s for r in results]


if __name__ == "__main__":  # a worker: python -m retalk.face.parallel VIDEO START STOP OUT.npz
    _track_part(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if sys.argv[3] else None, sys.argv[4])
