"""Portrait animation (``retalk animate``) and text input (``retalk say``), on generated photos and speech."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from retalk.errors import NoFaceError, RetalkError
from retalk.face import landmarks as L
from retalk.face.tracker import FaceMesh
from retalk.media import iter_frames, load_audio, probe_video, write_wav
from retalk.portrait import AnimateOptions, animate
from retalk.portrait.animate import head_poses, load_enhancer
from retalk.portrait.blink import blink_curve, eye_aspect_ratio
from retalk.portrait.head_motion import STYLES, keyframe_curve, speech_pose

FAST = dict(progress=False, preset="ultrafast", size=256)
SENTENCE = "Hello, my name is Anna. I like to talk about maps and boats. Maybe we can walk by the sea."
SAY_TEXT = "Bob picked up a map. People must be patient."


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "retalk", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def speech6(media_dir):
    """About 6 s of synthesized English with its phone timings."""
    from retalk.speech.tts import synthesize

    sp = synthesize(SENTENCE)
    p = media_dir / "sentence.wav"
    write_wav(p, sp.samples, sp.sample_rate)
    return p, sp


def _track(path):
    """Raw face-mesh landmarks per frame (None where no face), detected independently per frame."""
    mesh = FaceMesh(static=True)
    out = []
    for f in iter_frames(probe_video(path)):
        faces = mesh(f)
        out.append(faces[0] if faces else None)
    mesh.close()
    return out


@pytest.fixture(scope="module")
def default_clip(tmp_path_factory, photo, speech6):
    wav, sp = speech6
    out = tmp_path_factory.mktemp("animate") / "talk.mp4"
    res = animate(photo, wav, out, AnimateOptions(phones=sp.phones, **FAST))
    return out, res, _track(out)


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory, photo, speech6):
    wav, sp = speech6
    out = tmp_path_factory.mktemp("still") / "still.mp4"
    res = animate(photo, wav, out, AnimateOptions(phones=sp.phones, still=True, **FAST))
    return out, res, _track(out)


def test_animate_size_fps_duration_audio(default_clip, speech6):
    out, res, _ = default_clip
    info = probe_video(out)
    frames = sum(1 for _ in iter_frames(info))
    duration = load_audio(speech6[0]).duration
    assert (info.width, info.height, float(info.fps)) == (256, 256, 25.0)
    assert frames == res.frames == round(duration * 25)
    assert abs(load_audio(out).duration - duration) < 0.08
    assert [p.name for p in out.parent.iterdir()] == ["talk.mp4"]  # no partial files


def _points(lms, idx):
    return np.array([lm[idx, :2] for lm in lms if lm is not None])


def test_still_keeps_eyes_and_nose_fixed_default_moves_them(default_clip, still_clip):
    idx = [L.NOSE_TIP, L.RIGHT_EYE_OUTER, L.LEFT_EYE_OUTER, 168]
    moving = _points(default_clip[2], idx)
    still = _points(still_clip[2], idx)
    # typical distance (pixels at 256 px) of these points from where they usually are
    move_dev = np.median(np.linalg.norm(moving - np.median(moving, axis=0), axis=-1))
    still_dev = np.median(np.linalg.norm(still - np.median(still, axis=0), axis=-1))
    assert still_dev < 1.0, still_dev  # the detector's own jitter
    assert move_dev > 1.5 and move_dev > 2.5 * still_dev, (move_dev, still_dev)
    assert np.ptp(moving, axis=0).max() > 4.0


def test_blinks_visible_at_plausible_rate(default_clip):
    lms = default_clip[2]
    ear = np.array([eye_aspect_ratio(lm) if lm is not None else np.nan for lm in lms])
    base = np.nanmedian(ear)
    shut = np.nan_to_num(ear, nan=base) < 0.6 * base
    events = int(np.sum(shut[1:] & ~shut[:-1]) + shut[0])
    seconds = len(lms) / 25.0
    assert 5.0 < seconds < 9.0
    assert 1 <= events <= 4, (events, np.round(ear / base, 2))
    assert 6.0 <= default_clip[1].blinks_per_minute <= 40.0


def test_blink_rate_long_run():
    rates = [np.sum(np.diff((blink_curve(25 * 120, 25.0, seed=s) > 0.6).astype(int)) == 1) / 2.0 for s in range(20)]
    assert 15.0 <= np.mean(rates) <= 20.0, np.mean(rates)
    intervals = []
    c = blink_curve(25 * 120, 25.0, seed=3) > 0.6
    starts = np.flatnonzero(np.diff(c.astype(int)) == 1)
    intervals = np.diff(starts) / 25.0
    assert intervals.std() > 0.4  # irregular


def test_pose_styles_distinct_and_deterministic(speech6):
    sp = load_audio(speech6[0])
    n = int(sp.duration * 25)
    poses = [speech_pose(sp.samples, sp.sample_rate, 25.0, n, k) for k in range(len(STYLES))]
    assert np.array_equal(poses[2], speech_pose(sp.samples, sp.sample_rate, 25.0, n, 2))
    for i in range(len(poses)):
        assert np.abs(poses[i][:, :3]).max() < 12.0
        assert np.abs(np.diff(poses[i][:, :3], axis=0)).max() < 1.5  # smooth: < 1.5 degrees per frame
        for j in range(i):
            assert np.abs(poses[i][:, :3] - poses[j][:, :3]).mean() > 0.3, (i, j)


def test_head_motion_follows_speech(speech6):
    """The head moves more while speaking than in a pause."""
    sp = load_audio(speech6[0])
    y = np.concatenate([sp.samples, np.zeros(3 * sp.sample_rate, np.float32), sp.samples])
    n = int(len(y) / sp.sample_rate * 25)
    m = int(sp.duration * 25)
    for style in range(len(STYLES)):
        v = np.linalg.norm(np.diff(speech_pose(y, sp.sample_rate, 25.0, n, style)[:, :3], axis=0), axis=1)
        speaking = np.r_[v[5:m - 5], v[m + 80:-5]].mean()
        pause = v[m + 15:m + 60].mean()
        assert speaking > 1.8 * pause, (style, speaking, pause)


def test_input_angles_and_still(speech6):
    sp = load_audio(speech6[0])
    curve = keyframe_curve([-10, 20, 5], 101)
    assert curve[0] == pytest.approx(-10) and curve[50] == pytest.approx(20) and curve[-1] == pytest.approx(5)
    pose = head_poses(sp.samples, 25.0, 100, AnimateOptions(still=True, input_yaw=(-8.0, 8.0)))
    assert pose[0, 0] == pytest.approx(-8) and pose[-1, 0] == pytest.approx(8)
    assert np.all(pose[:, 1:] == 0)


def test_say_closes_lips_on_bilabials(tmp_path, photo):
    from retalk.evaluate.phonetic import phonetic_sync
    from retalk.speech.tts import synthesize

    out = tmp_path / "say.mp4"
    proc = run_cli("say", "--text", SAY_TEXT, "--image", photo, "--outfile", out, "-q", "--size", 256,
                   "--preset", "ultrafast")
    assert proc.returncode == 0, proc.stderr
    score = phonetic_sync(out, synthesize(SAY_TEXT).phones)
    # the synthesizer's own timings drive the mouth, so every p/b/m closes
    assert score.closed_fraction == 1.0 and score.passed(), score


def test_no_face_one_line_error(tmp_path, short_wav):
    img = tmp_path / "wall.png"
    g = np.zeros((240, 320, 3), np.uint8)
    g[..., 1] = np.linspace(0, 255, 320)[None, :]
    cv2.imwrite(str(img), g)
    out = tmp_path / "out.mp4"
    proc = run_cli("animate", "--image", img, "--audio", short_wav, "--outfile", out, "-q")
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("retalk: error:") and "no face" in err, err
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    with pytest.raises(NoFaceError):
        animate(img, short_wav, tmp_path / "out2.mp4", AnimateOptions(**FAST))


def test_large_alpha_photo_small_face(tmp_path, short_wav):
    """6000×4000 RGBA PNG, the face a small part of it: processed, output at --size."""
    from retalk.samples import astronaut

    big = np.zeros((4000, 6000, 4), np.uint8)
    big[..., :3] = np.linspace(40, 200, 6000, dtype=np.uint8)[None, :, None]
    person = astronaut(900)
    big[2400:3300, 3800:4700, :3] = person
    big[2400:3300, 3800:4700, 3] = 255
    big[..., 3] = np.maximum(big[..., 3], 128)
    img = tmp_path / "big.png"
    cv2.imwrite(str(img), cv2.cvtColor(big, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    del big
    out = tmp_path / "big.mp4"
    res = animate(img, short_wav, out, AnimateOptions(recognize=False, **FAST))
    info = probe_video(out)
    assert (info.width, info.height) == (256, 256) == res.size
    frames = list(iter_frames(info))
    assert len(frames) == 30
    assert FaceMesh(static=True)(frames[15])


@pytest.mark.parametrize("mode", ["crop", "resize", "full"])
def test_preprocess_modes_non_square(tmp_path, short_wav, mode):
    from retalk.samples import astronaut

    pic = np.full((320, 480, 3), 90, np.uint8)
    pic[:, :, 2] = np.linspace(60, 220, 480, dtype=np.uint8)[None, :]
    pic[20:320, 150:450] = astronaut(300)
    img = tmp_path / "wide.jpg"
    cv2.imwrite(str(img), cv2.cvtColor(pic, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = tmp_path / f"{mode}.mp4"
    opts = AnimateOptions(recognize=False, progress=False, preset="ultrafast", size=None if mode == "full" else 256,
                          preprocess=mode, pose_style=2)
    res = animate(img, short_wav, out, opts)
    info = probe_video(out)
    expected = {"crop": (256, 256), "resize": (256, 170), "full": (480, 320)}[mode]
    assert (info.width, info.height) == expected == res.size
    if mode == "full":  # everything away from the head is the original picture
        src = cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB).astype(int)
        for f in list(iter_frames(info))[::6]:
            assert np.abs(f[:, :60].astype(int) - src[:, :60]).mean() < 3.0


def test_enhancer_hook_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(RetalkError) as e:
        load_enhancer("nonsense")
    assert "\n" not in str(e.value)
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    monkeypatch.setitem(sys.modules, "torch", None)  # as if the neural extra were not installed
    with pytest.raises(RetalkError) as e:
        load_enhancer("gfpgan")
    assert "neural" in str(e.value)


def test_reference_video_round_trip(default_clip):
    """Our own animated clip as a reference: its blinks and head motion are recovered."""
    from retalk.portrait.reference import analyse_reference, reference_blinks, reference_pose

    out, res, lms = default_clip
    ref = analyse_reference(out)
    n = res.frames
    blinks = reference_blinks(ref, 25.0, n)
    assert (np.diff((blinks > 0.5).astype(int)) == 1).sum() >= 1
    pose = reference_pose(ref, 25.0, 2 * n)  # longer than the reference: played back and forth
    assert pose.shape == (2 * n, 5) and np.isfinite(pose).all()
    assert np.abs(np.diff(pose[:, :3], axis=0)).max() < 3.0


def test_independent_detector_finds_the_face(default_clip):
    """scikit-image's LBP frontal-face cascade (not mediapipe) finds the face in >= 95% of frames."""
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.feature import Cascade

    out, _, _ = default_clip
    detector = Cascade(data.lbp_frontal_face_cascade_filename())
    frames = list(iter_frames(probe_video(out)))[::3]
    found = 0
    for f in frames:
        g = rgb2gray(f)
        hits = detector.detect_multi_scale(img=g, scale_factor=1.2, step_ratio=1, min_size=(60, 60),
                                           max_size=(400, 400))
        found += bool(hits)
    assert found / len(frames) >= 0.95, f"{found}/{len(frames)}"
    blank = np.tile(np.linspace(0, 1, frames[0].shape[1])[None, :], (frames[0].shape[0], 1))
    assert not detector.detect_multi_scale(img=blank, scale_factor=1.2, step_ratio=1, min_size=(60, 60),
                                           max_size=(400, 400))  # the detector is not trivially positive
