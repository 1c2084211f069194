"""The built-in engine on footage people film (issue 15): a cut to another person, a small face, a whip pan.

All footage is generated (``tests/_footage.py``); where things are is known from how it was made: the cut's
frame, the pan's shift per frame, where the small head was pasted. Mouth positions are measured on the
still photo with the ordinary whole-picture detector, then carried by the known motion.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from _footage import other_person, small_face, two_shots, whip_pan

from retalk.engines.base import Plan, render_slots
from retalk.face import landmarks as L
from retalk.face.shots import CutDetector, near_cut, shot_index
from retalk.face.tracker import FaceTracker
from retalk.pipeline import ping_pong
from retalk.runtime.stages import Slot
from retalk.samples import astronaut, moving_frames, vowel_speech
from retalk.speech.mouth import mouth_track

FPS = 25.0
RATE = 16000


def _render(frames: list[np.ndarray], seconds: float):  # noqa: ANN202 - (track, prepared, output frames)
    """Track ``frames``, dub them with ``seconds`` of vowel-like sound through the built-in engine (as
    ``pipeline.sync`` feeds it, frames in memory); returns the track, the engine's prepared job and the output."""
    from retalk.engines.builtin.engine import BuiltinEngine

    engine = BuiltinEngine()
    tracker = FaceTracker()
    for k, frame in enumerate(frames):
        engine.observe(k, frame, tracker.update(frame))
    track = tracker.finish()
    samples = vowel_speech(seconds, RATE, seed=3)
    n_out = int(round(seconds * FPS))
    mouth = mouth_track(samples, RATE, FPS, n_out, None, False, 1.0, None)
    schedule = ping_pong(len(frames), n_out)
    prepared = engine.prepare(Plan(track=track, mouth=mouth, schedule=schedule, fps=FPS, audio=samples,
                                   sample_rate=RATE, still=False))
    slots = (Slot(i, int(schedule[i]), frames[int(schedule[i])].copy(), bool(track.valid[schedule[i]]))
             for i in range(n_out))
    out = [s.frame for s in render_slots(engine, slots)]
    engine.close()
    return track, prepared, out


def _still_mouth(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Mouth centre (x, y pixels) and inter-ocular distance of the face in a still picture, found by the
    ordinary whole-picture detector (the reference the moving footage is compared with)."""
    from retalk.face.mesh import FaceMesh

    mesh = FaceMesh(static=True)
    try:
        lm = mesh(image)[0]
    finally:
        mesh.close()
    return lm[L.LIPS_OUTER, :2].mean(0).astype(np.float64), float(L.interocular(lm))


def _changed(a: np.ndarray, b: np.ndarray, level: int = 12) -> np.ndarray:
    """Pixels (bool (h, w)) where two RGB frames differ by more than ``level`` in some channel."""
    return (np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1) > level)


# ---- shots --------------------------------------------------------------------------------------------

def test_cut_detector_on_colours_and_pans():
    rng = np.random.default_rng(0)
    photo = astronaut(320)
    det = CutDetector()
    # a pan across one picture (the colours stay) is no cut; a cut to another picture is, once
    frames = [np.ascontiguousarray(np.roll(photo, 9 * k, axis=1)) for k in range(12)]
    frames += [np.clip(other_person(320).astype(int) + rng.integers(-3, 4, (320, 320, 3)), 0, 255).astype(np.uint8)
               for _ in range(6)]
    cuts = [det.update(f) for f in frames]
    assert cuts == [False] * 12 + [True] + [False] * 5
    assert list(shot_index(np.array(cuts))) == [0] * 12 + [1] * 6
    assert list(np.flatnonzero(near_cut(shot_index(np.array(cuts)), 2))) == [10, 11, 12, 13]


@lru_cache(maxsize=1)
def _cut_job():
    frames = two_shots(25, 25)
    return frames, *_render(frames, 2.0)


def test_tracker_splits_shots_at_the_cut():
    frames, track, _, _ = _cut_job()
    assert list(track.shot) == [0] * 25 + [1] * 25
    assert track.valid.all()
    # the second person's landmarks are their own from the cut's first frame on (no smoothing across it):
    # the eye distance jumps to the new framing's at once
    iod = L.interocular(track.landmarks)
    assert abs(iod[24] - np.median(iod[15:25])) < 0.05 * iod[24]
    assert abs(iod[25] - np.median(iod[26:35])) < 0.05 * iod[25]


def test_two_person_cut_never_shows_the_other_shots_mouth():
    frames, track, prepared, out = _cut_job()
    schedule, entry = prepared.plan.schedule, prepared.selection.entry
    lib_frames = prepared.library.frames
    # frames within two of the cut are the source's own, byte for byte
    for i in range(len(out)):
        if abs(int(schedule[i]) - 24.5) < 2:
            assert np.array_equal(out[i], frames[schedule[i]]), i
    # every other frame shows a mouth of its own shot
    shown = entry >= 0
    assert (track.shot[lib_frames[entry[shown]]] == track.shot[schedule[shown]]).all()
    # ... and is dubbed, changing only its own lower face (nothing smeared over the cheek from the other shot)
    dubbed = 0
    for i in np.flatnonzero(shown):
        k = int(schedule[i])
        lm = track.landmarks[k]
        iod = float(L.interocular(lm))
        changed = _changed(out[i], frames[k])
        ys, xs = np.nonzero(changed)
        if not len(xs):
            continue
        dubbed += 1
        lips = lm[L.LIPS_OUTER, :2].mean(0)
        # the lower face spans about 1.1 inter-ocular distances either side of the mouth (the eye corners' distance)
        assert np.abs(xs - lips[0]).max() < 1.3 * iod, i
        assert ys.min() > lips[1] - 0.85 * iod and ys.max() < lips[1] + 1.3 * iod, i
    assert dubbed >= 0.8 * shown.sum()


def test_parallel_analysis_keeps_the_cut(tmp_path):
    from fractions import Fraction

    from retalk.face.parallel import track_in_parts
    from retalk.media import VideoSink, probe_video

    path = tmp_path / "cut.mp4"
    with VideoSink(path, 320, 320, Fraction(25), crf=12, preset="ultrafast") as sink:
        for f in two_shots(20, 20):  # the cut falls on the second part's first frame
            sink.write(f)
    parted = track_in_parts(probe_video(path), 2, min_part=10)
    assert parted is not None
    track, n, _ = parted
    assert n == 40 and list(track.shot) == [0] * 20 + [1] * 20


# ---- small faces -------------------------------------------------------------------------------------

def test_small_face_in_a_full_body_shot_is_dubbed(tmp_path):
    from retalk.media import iter_frames, probe_video, write_wav
    from retalk.media.sink import VideoSink
    from retalk.pipeline import SyncOptions, sync

    face_px, at = 60, (420, 300)
    frames = small_face(25, face_px=face_px, at=at)
    clip = tmp_path / "body.mp4"
    from fractions import Fraction

    with VideoSink(clip, 720, 1080, Fraction(25), crf=12, preset="ultrafast") as sink:
        for f in frames:
            sink.write(f)
    wav = tmp_path / "v.wav"
    write_wav(wav, vowel_speech(1.0, RATE, seed=2), RATE)
    res = sync(clip, wav, tmp_path / "out.mp4", SyncOptions(progress=False, recognize=False, preset="ultrafast"))
    assert res.face_fraction > 0.9  # found (it used to pass through with a warning)
    # the same clip through the same encoder, unchanged: what the dub is compared with
    plain = sync(clip, wav, tmp_path / "plain.mp4", SyncOptions(engine="passthrough", progress=False,
                                                                recognize=False, preset="ultrafast"))
    # where the mouth is: measured on the photo, carried by the known paste (scale and place)
    mouth, iod = _still_mouth(astronaut())
    scale = round(512 * face_px / 91.0) / 512
    side = round(512 * face_px / 91.0)
    mouth = mouth * scale + (at[0] - side // 2, at[1] - side // 2)
    iod *= scale
    assert 35 < iod < 45  # the face is about 60 px wide: about 40 px between the eyes
    src = list(iter_frames(probe_video(plain.path)))
    dst = list(iter_frames(probe_video(res.path)))
    near = np.zeros((1080, 720), bool)
    y0, y1 = int(mouth[1] - 0.85 * iod), int(mouth[1] + 1.3 * iod)
    near[y0:y1, int(mouth[0] - 1.3 * iod):int(mouth[0] + 1.3 * iod)] = True
    dubbed = 0
    for i, out in enumerate(dst):
        changed = _changed(out, src[i])
        assert not (changed & ~near).any(), i  # nothing changes away from the mouth
        dubbed += int(changed[near].sum() > 10)
    assert dubbed >= 0.7 * len(dst)  # the mouth is re-rendered, not passed through


# ---- fast motion -------------------------------------------------------------------------------------

def test_whip_pan_keeps_the_mouth_on_the_mouth():
    from retalk.engines.builtin.geometry import FrameTargets

    frames, shift = whip_pan(36, travel=240.0, start=10, frames=6)  # up to 60 px a frame, about 0.9 iod
    track, prepared, out = _render(frames, 36 / FPS)
    mouth0, iod = _still_mouth(frames[0])  # the mouth of the still first frame; later: carried by the pan
    schedule, entry = prepared.plan.schedule, prepared.selection.entry
    assert entry.min() >= 0 and not track.shot.any()  # no cut seen in the pan
    # the mesh trails the face by a fifth of the eye distance at the pan's fastest (frame 13 here): such frames
    # are unsure and shown as they are; all others are trusted
    assert track.valid.sum() >= len(track) - 2
    for i in np.flatnonzero(~track.valid[schedule]):
        assert np.array_equal(out[i], frames[schedule[i]])
    # 1. where the engine puts the lips: on the mouth of the frame shown, within 0.08 inter-ocular distances
    geometry = FrameTargets(track.landmarks, schedule, prepared.library, entry, prepared.targets.opening,
                            prepared.targets.width, 3)
    for i in np.flatnonzero(track.valid[schedule]):
        k = int(schedule[i])
        tgt, _ = geometry.frame(i, track.landmarks[k, :, :2].astype(np.float64))
        lips = tgt[L.LIPS_OUTER].mean(0)
        assert abs(lips[0] - (mouth0[0] + shift[k])) < 0.08 * iod, (i, lips[0], mouth0[0] + shift[k])
        assert abs(lips[1] - mouth0[1]) < 0.3 * iod, i
    # 2. what is drawn: changes only on the lower face around the real mouth (they reach 1.1 inter-ocular
    # distances either side of it on the still frames: a mouth drawn half that far off would cross the bounds)
    dubbed = 0
    for i, o in enumerate(out):
        k = int(schedule[i])
        x_mouth = mouth0[0] + shift[k]
        changed = _changed(o, frames[k])
        ys, xs = np.nonzero(changed)
        if len(xs) < 10:
            continue
        dubbed += 1
        assert np.abs(xs - x_mouth).max() < 1.3 * iod, i
        assert ys.min() > mouth0[1] - 0.85 * iod and ys.max() < mouth0[1] + 1.3 * iod, i
    assert dubbed >= 0.8 * len(out)  # dubbed through the pan and after it, not passed through


def test_landmarks_that_trail_the_picture_pass_through(monkeypatch):
    """A mesh that lags the face under fast motion (simulated: it returns the previous frame's landmarks while
    the picture moves) gives frames whose tracking is unsure; they are not valid, so they pass through."""
    frames, shift = whip_pan(30, travel=240.0, start=10, frames=6)
    tracker = FaceTracker()
    real = FaceTracker._track
    kept: list[np.ndarray] = []

    def lagging(self, frame, k):  # noqa: ANN001, ANN202
        lm = real(self, frame, k)
        if lm is not None:
            kept.append(lm)
        if 12 <= k <= 15 and len(kept) >= 2:
            return kept[-2].copy()  # one frame late
        return lm

    monkeypatch.setattr(FaceTracker, "_track", lagging)
    for f in frames:
        tracker.update(f)
    track = tracker.finish()
    speed = np.abs(np.diff(shift, prepend=0.0))
    late = [k for k in range(12, 16) if speed[k] > 0.3 * float(L.interocular(track.landmarks[0]))]
    assert late, "the pan is fast enough for a one-frame lag to matter"
    assert not track.valid[late].any()
    # the rest is trusted: everything before, and all but the few frames after the mesh caught up again
    assert track.valid[:11].all() and track.valid[20:].all()


@pytest.mark.parametrize("clip", ["gentle", "pan"])
def test_no_false_cuts(clip):
    frames = list(moving_frames(30, 320, 320, 25.0)) if clip == "gentle" else whip_pan(30)[0]
    tracker = FaceTracker()
    for f in frames:
        tracker.update(f)
    assert not tracker.finish().shot.any()


def test_motion_adaptive_smoothing_follows_a_sudden_move():
    from retalk.face.smoothing import smooth_landmarks

    # a face standing still, then moving 40 px a frame from frame 10 on: plain smoothing overshoots/lags there
    base = np.zeros((478, 3), np.float32)
    base[:, :2] = np.random.default_rng(1).uniform(100, 160, (478, 2))
    base[L.RIGHT_EYE_OUTER, :2], base[L.LEFT_EYE_OUTER, :2] = (100, 120), (160, 120)  # 60 px between the eyes
    x = np.where(np.arange(24) < 10, 0.0, 40.0 * (np.arange(24) - 10))
    lms = np.repeat(base[None], 24, 0)
    lms[:, :, 0] += x[:, None]
    valid = np.ones(24, bool)
    plain = smooth_landmarks(lms, valid, adaptive=False)
    adaptive = smooth_landmarks(lms, valid)
    err_plain = np.abs(plain[:, L.STABLE, 0].mean(1) - lms[:, L.STABLE, 0].mean(1)).max()
    err = np.abs(adaptive[:, L.STABLE, 0].mean(1) - lms[:, L.STABLE, 0].mean(1)).max()
    assert err_plain > 0.05 * 60  # what the plain smoothing did: several pixels behind
    assert err < 0.025 * 60


def test_a_one_frame_glitch_is_unsure_and_a_steady_move_is_not():
    from retalk.face.smoothing import unsure_frames

    rng = np.random.default_rng(4)
    base = rng.uniform(0, 100, (478, 3)).astype(np.float32)
    base[L.RIGHT_EYE_OUTER, :2], base[L.LEFT_EYE_OUTER, :2] = (20, 40), (80, 40)  # 60 px between the eyes
    lms = np.repeat(base[None], 12, 0)
    lms[:, :, 0] += 25.0 * np.arange(12)[:, None]  # a fast but steady move: 25 px a frame, nothing unsure
    valid = np.ones(12, bool)
    assert not unsure_frames(lms, valid).any()
    glitch = lms.copy()
    glitch[6, :, :2] += rng.normal(0, 6.0, (478, 2))  # frame 6's mesh scrambled (0.1 eye distances RMS)
    glitch[9, :, :2] = (glitch[9, :, :2] - glitch[9, :, :2].mean(0)) * 1.3 + glitch[9, :, :2].mean(0)  # a size spike
    assert list(np.flatnonzero(unsure_frames(glitch, valid))) == [6, 9]
    # a cut between frames 5 and 6 makes frame 6 the first of its shot: nothing to compare it with on one side
    assert list(np.flatnonzero(unsure_frames(glitch, valid, shot=np.r_[np.zeros(6, int), np.ones(6, int)]))) == [9]


def test_a_box_over_no_face_picks_the_nearest_and_says_so(caplog):
    """``--box`` where no face is: the face nearest the box, with one warning (it used to take the first face)."""
    from retalk.face.tracker import FaceTracker

    def face(x0: float, y0: float) -> np.ndarray:  # a square "mesh" of 4 points, pixels
        return np.array([[x0, y0, 0], [x0 + 50, y0, 0], [x0, y0 + 50, 0], [x0 + 50, y0 + 50, 0]], np.float32)

    left, right = face(10, 10), face(300, 10)
    tracker = FaceTracker(box=(500, 0, 560, 60))
    with caplog.at_level("WARNING", logger="retalk.face.tracker"):
        assert tracker._choose([left, right]) is right
        assert tracker._choose([left, right]) is right
    said = [r for r in caplog.records if "overlaps none" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    assert FaceTracker(box=(0, 0, 40, 40))._choose([left, right]) is left  # an overlapping box still decides
