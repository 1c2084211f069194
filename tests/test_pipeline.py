"""End-to-end dubbing on generated media: durations, sizes, pass-through, untouched upper face."""
import numpy as np

from retalk.face.tracker import FaceMesh
from retalk.face import landmarks as L
from retalk.media import iter_frames, load_audio, probe_video
from retalk.pipeline import SyncOptions, ping_pong, sync

OPTS = SyncOptions(progress=False, recognize=False, preset="ultrafast")


def test_ping_pong_never_jumps():
    s = ping_pong(5, 17)
    assert list(s[:10]) == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1]
    assert np.abs(np.diff(s)).max() == 1
    assert list(ping_pong(5, 3)) == [0, 1, 2]
    assert list(ping_pong(1, 3)) == [0, 0, 0]


def test_sync_longer_audio_pingpongs(tmp_path, face_clip, vowel_wav):
    out = tmp_path / "out.mp4"
    res = sync(face_clip, vowel_wav, out, OPTS)
    info = probe_video(out)
    n = sum(1 for _ in iter_frames(info))
    assert (info.width, info.height, float(info.fps)) == (320, 320, 25.0)
    audio = load_audio(out)
    assert abs(n / 25.0 - 3.0) <= 1 / 25 + 1e-6
    assert abs(audio.duration - 3.0) < 0.06
    assert res.frames == n and res.face_fraction > 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_sync_shorter_audio_cuts_and_keeps_upper_face(tmp_path, face_clip, short_wav):
    out = tmp_path / "cut.mp4"
    sync(face_clip, short_wav, out, OPTS)
    src = list(iter_frames(probe_video(face_clip)))
    dst = list(iter_frames(probe_video(out)))
    assert len(dst) == 30
    mesh = FaceMesh(static=True)
    changed_lower, psnr_upper = [], []
    for a, b in zip(src[:30:5], dst[::5]):
        lm = mesh(a)[0]
        eye_y = int(lm[[L.RIGHT_EYE_OUTER, L.LEFT_EYE_OUTER], 1].mean())
        nose_y = int(lm[L.NOSE_TIP, 1])
        up = slice(0, eye_y + (nose_y - eye_y) // 2)
        mse = np.mean((a[up].astype(float) - b[up].astype(float)) ** 2)
        psnr_upper.append(10 * np.log10(255**2 / max(mse, 1e-9)))
        x0, x1 = lm[L.LIPS_OUTER, 0].min(), lm[L.LIPS_OUTER, 0].max()
        y0, y1 = lm[L.LIPS_OUTER, 1].min(), lm[L.LIPS_OUTER, 1].max()
        changed_lower.append(np.abs(a[int(y0):int(y1), int(x0):int(x1)].astype(float) - b[int(y0):int(y1), int(x0):int(x1)]).mean())
    assert min(psnr_upper) > 34, psnr_upper  # encoding loss only
    assert max(changed_lower) > 8, changed_lower  # the mouth was re-rendered somewhere


def test_still_image_face(tmp_path, photo, short_wav):
    out = tmp_path / "photo.mp4"
    res = sync(photo, short_wav, out, SyncOptions(progress=False, recognize=False, fps=20, preset="ultrafast"))
    info = probe_video(out)
    assert (info.width, info.height, float(info.fps)) == (384, 384, 20.0)
    frames = list(iter_frames(info))
    assert len(frames) == res.frames == 24
    # the mouth moves: frames differ from each other around the mouth
    lm = FaceMesh(static=True)(frames[0])[0]
    y0, y1 = int(lm[L.LIPS_OUTER, 1].min()) - 5, int(lm[L.LIPS_OUTER, 1].max()) + 15
    x0, x1 = int(lm[L.LIPS_OUTER, 0].min()), int(lm[L.LIPS_OUTER, 0].max())
    crops = np.stack([f[y0:y1, x0:x1].astype(float) for f in frames])
    assert crops.std(axis=0).mean() > 5


def test_no_face_passes_through(tmp_path, noface_clip, short_wav):
    out = tmp_path / "nf.mp4"
    res = sync(noface_clip, short_wav, out, OPTS)
    assert res.face_fraction == 0.0
    src = list(iter_frames(probe_video(noface_clip)))
    dst = list(iter_frames(probe_video(out)))
    assert len(dst) == 30
    # frames 0..24 then back (ping-pong): 25 -> 23
    assert np.abs(dst[3].astype(int) - src[3]).mean() < 3
    assert np.abs(dst[26].astype(int) - src[22]).mean() < 3


def test_smoothing_keeps_closures_and_matches_the_speakers_pace():
    from retalk.engines.builtin.engine import match_smoothness, smooth_pinned

    rng = np.random.default_rng(0)
    x = np.clip(0.08 + 0.05 * rng.standard_normal(200), 0, None)
    pinned = np.zeros(200, bool)
    pinned[::17] = True
    x[pinned] = 0.0
    # the banded solve equals the dense least-squares solution with pinned rows
    w = 3.0
    a = np.eye(200) + w * np.diff(np.eye(200), axis=0).T @ np.diff(np.eye(200), axis=0)
    b = x.copy()
    for i in np.flatnonzero(pinned):
        a[i] = 0
        a[i, i] = 1
    assert np.allclose(np.linalg.solve(a, b), smooth_pinned(x, pinned, w), atol=1e-10)
    y = match_smoothness(x, pinned, 0.01)
    free = ~pinned[1:] & ~pinned[:-1]
    assert np.allclose(y[pinned], 0.0, atol=1e-12)
    assert abs(np.abs(np.diff(y))[free].mean() - 0.01) < 0.001


def test_hold_frames_follow_the_sources_cadence_only():
    from retalk.pipeline import hold_frames

    n = 20
    repeat = np.zeros(n, bool)
    repeat[[4, 9, 14]] = True  # a rate conversion's duplicates
    repeat[17:20] = True  # a frozen stretch: not cadence
    sched = np.arange(n)
    hold = hold_frames(sched, repeat)
    assert list(np.flatnonzero(hold)) == [4, 9, 14]
    # a change of lip closure is never held back
    closed = np.zeros(n, bool)
    closed[9:12] = True
    assert list(np.flatnonzero(hold_frames(sched, repeat, closed))) == [4, 14]
    # backwards (ping-pong): 10 -> 9 shows the same pair as 8 -> 9
    back = ping_pong(12, 20)
    held = np.flatnonzero(hold_frames(back, repeat[:12]))
    assert list(back[held - 1]) == [3, 8, 9, 4] and list(back[held]) == [4, 9, 8, 3]
    # never twice in a row, even at a turn of the ping-pong on a repeated last frame
    r = np.zeros(6, bool)
    r[5] = True
    turn = ping_pong(6, 8)  # 0 1 2 3 4 5 4 3
    assert list(np.flatnonzero(hold_frames(turn, r))) == [5]
    assert not hold_frames(sched, np.zeros(n, bool)).any()


def _frames_with_repeats(n=50, every=5):
    """The moving astronaut where every ``every``-th frame repeats the one before (like 20 fps shown at 25)."""
    from retalk.samples import moving_frames

    frames = list(moving_frames(n, 320, 320, 25.0))
    for k in range(every - 1, n, every):
        frames[k] = frames[k - 1]
    return frames


def _clip_with_repeats(path):
    """:func:`_frames_with_repeats` coded losslessly, so the repeats stay exact."""
    from fractions import Fraction

    from retalk.media import VideoSink

    with VideoSink(path, 320, 320, Fraction(25), crf=0, preset="ultrafast") as sink:
        for f in _frames_with_repeats():
            sink.write(f)
    return path


def test_repeated_frames_rules():
    from retalk.face.tracker import repeated_frames

    change = np.array([np.nan, 3.0, 0.05, 2.5, 0.6, 2.9, 0.9, 1.2, 0.35, 0.4, np.nan])
    # 0.05: coded as no change; 0.6: a dip between 2.5 and 2.9 (a re-coded duplicate);
    # 0.9 next to 1.2 and 0.35/0.4 (a still speaker) are not; unmeasured frames are not
    assert list(np.flatnonzero(repeated_frames(change))) == [2, 4]


def test_tracker_marks_repeated_frames():
    from retalk.face.tracker import FaceTracker

    tracker = FaceTracker()
    for f in _frames_with_repeats():
        tracker.update(f)
    track = tracker.finish()
    assert list(np.flatnonzero(track.repeat)) == list(range(4, 50, 5))


def test_sync_repeats_a_frame_where_the_source_does(tmp_path, vowel_wav):
    from retalk.speech.types import Phone

    clip = _clip_with_repeats(tmp_path / "rep.mp4")
    # vowels only (no closure anywhere), and lossless output so a repeated frame decodes identical
    vowels = [Phone("AA" if k % 2 else "IY", 0.2 * k, 0.2 * (k + 1)) for k in range(15)]

    def identical_steps(**kw):
        opts = SyncOptions(progress=False, phones=vowels, phone_notation="arpabet", crf=0, preset="ultrafast", **kw)
        f = list(iter_frames(probe_video(sync(clip, vowel_wav, tmp_path / "out.mp4", opts).path)))
        return {i for i in range(1, len(f)) if np.array_equal(f[i], f[i - 1])}

    # source frames 4, 9, …, 49 repeat their predecessor; 75 output frames play 0…49 then 48…24.
    # Forwards, output k steps onto source k: held at 4, 9, …, 49.  Backwards, output j shows 98 − j and
    # steps down from the repeat 99 − j when j ≡ 0 (mod 5): 55, 60, 65, 70 (50 would be a second hold in a row).
    expected = {4, 9, 14, 19, 24, 29, 34, 39, 44, 49, 55, 60, 65, 70}
    assert identical_steps() == expected
    assert len(identical_steps(hold_repeats=False) & expected) <= 2  # without: the mouth moves on
