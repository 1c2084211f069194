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
