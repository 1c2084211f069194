"""The analysis pass in several processes (neural engines on many-core machines) against one process."""
from __future__ import annotations

import numpy as np
import pytest

from retalk.face import landmarks as L
from retalk.face.parallel import plan_parts, track_in_parts
from retalk.face.tracker import FaceTracker
from retalk.media import iter_frames, probe_video


def test_plan_parts() -> None:
    assert plan_parts(1000, 4) == [(0, 250), (250, 500), (500, 750), (750, None)]
    assert plan_parts(1000, 4, min_part=400) == [(0, 500), (500, None)]
    assert plan_parts(100, 8) == [(0, None)]  # too short to be worth a second process
    assert plan_parts(0, 3) == [(0, None)]


def test_parts_decode_the_same_frames(face_clip) -> None:
    info = probe_video(face_clip)
    full = list(iter_frames(info))
    for a, b in plan_parts(len(full), 3, min_part=10):
        part = [f for _, f in zip(range((b or len(full)) - a), iter_frames(info, a))]
        assert len(part) == (b or len(full)) - a
        assert all(np.array_equal(x, y) for x, y in zip(part, full[a:]))


def test_track_in_parts_matches_one_process(face_clip) -> None:
    info = probe_video(face_clip)
    tracker = FaceTracker()
    for f in iter_frames(info):
        tracker.update(f)
    one = tracker.finish()
    parted = track_in_parts(info, 2, min_part=10)
    assert parted is not None
    two, n, busy = parted
    assert n == len(one) and len(busy) == 2 and min(busy) > 0
    np.testing.assert_array_equal(two.valid, one.valid)
    both = one.valid & two.valid
    iod = np.median([L.interocular(lm) for lm in one.landmarks[both]])
    per_frame = np.abs(two.landmarks - one.landmarks)[both][..., :2].max(axis=(1, 2)) / iod
    first = plan_parts(len(one), 2, min_part=10)[1][0]
    assert per_frame[:first - 5].max() == 0.0  # the first part is tracked exactly as in one process
    # the second part re-acquires the face: the mesh lands within its own frame-to-frame jitter
    assert np.median(per_frame) < 0.02 and per_frame.max() < 0.08


def test_sync_with_parallel_analysis(tmp_path, monkeypatch, face_clip, short_wav) -> None:
    import retalk.face.parallel
    from retalk.pipeline import SyncOptions, sync

    monkeypatch.setattr(retalk.face.parallel, "MIN_FRAMES_PER_PART", 10)
    res = sync(face_clip, short_wav, tmp_path / "p.mp4",
               SyncOptions(engine="passthrough", progress=False, analysis_workers=2, preset="ultrafast"))
    assert res.frames == round(1.2 * 25) and res.face_fraction == pytest.approx(1.0)
    assert res.timings.stages["analysis.track"].items == 50
    assert res.timings.stages["analysis.track"].threads == 2  # two processes tracked it


def test_builtin_engine_keeps_one_process(tmp_path, monkeypatch, face_clip, short_wav) -> None:
    """The built-in engine watches the analysis pass (its mouth library), so it is never split."""
    import retalk.face.parallel
    from retalk.pipeline import SyncOptions, sync

    monkeypatch.setattr(retalk.face.parallel, "MIN_FRAMES_PER_PART", 10)
    res = sync(face_clip, short_wav, tmp_path / "b.mp4",
               SyncOptions(progress=False, recognize=False, analysis_workers=2, preset="ultrafast"))
    assert res.timings.stages["analysis.track"].threads == 1
