"""The wav2lip engine end to end with random weights in the released file format, and its failure modes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.errors import CheckpointError  # noqa: E402
from retalk.face import landmarks as L  # noqa: E402
from retalk.face.tracker import FaceMesh, FaceTrack  # noqa: E402
from retalk.media import iter_frames, load_audio, probe_video  # noqa: E402
from retalk.pipeline import SyncOptions, sync  # noqa: E402

OPTS = SyncOptions(engine="wav2lip", progress=False, recognize=False, preset="ultrafast")


@pytest.fixture(scope="module")
def random_checkpoints(tmp_path_factory):
    """A folder with ``wav2lip_gan.pth``: random weights in the release's container {'state_dict': {'module.'+k: v}}."""
    from retalk.networks.wav2lip import Wav2Lip

    folder = tmp_path_factory.mktemp("w2l_ckpt")
    torch.manual_seed(0)
    state = {"module." + k: v for k, v in Wav2Lip().state_dict().items()}
    torch.save({"state_dict": state, "global_step": 0, "global_epoch": 0}, folder / "wav2lip_gan.pth")
    return folder


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-9))


def test_sync_end_to_end(tmp_path, monkeypatch, random_checkpoints, face_clip, short_wav):
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(random_checkpoints))
    out = tmp_path / "w2l.mp4"
    res = sync(face_clip, short_wav, out, OPTS)

    src_info, info = probe_video(face_clip), probe_video(out)
    assert (info.width, info.height) == (src_info.width, src_info.height) == (320, 320)
    assert float(info.fps) == float(src_info.fps) == 25.0
    dst = list(iter_frames(info))
    speech = load_audio(short_wav)
    assert abs(len(dst) / 25.0 - speech.duration) <= 1 / 25 + 1e-6
    assert res.frames == len(dst) and res.face_fraction > 0.9
    sound = load_audio(out)  # raises when the output has no audio stream
    assert abs(sound.duration - speech.duration) < 0.06
    assert [p.name for p in tmp_path.iterdir()] == ["w2l.mp4"]

    src = list(iter_frames(src_info))
    mesh = FaceMesh(static=True)
    upper_third, above_nose, lips_change = [], [], []
    for a, b in zip(src[:len(dst):6], dst[::6]):
        lm = mesh(a)[0]
        top, chin = lm[L.FACE_OVAL, 1].min(), lm[L.CHIN, 1]
        third = int(top + (chin - top) / 3)  # the face's upper third (forehead, brows) and all above it
        upper_third.append(_psnr(a[:third], b[:third]))
        eye_y = int(lm[[L.RIGHT_EYE_OUTER, L.LEFT_EYE_OUTER], 1].mean())
        nose_y = int(lm[L.NOSE_TIP, 1])
        above_nose.append(_psnr(a[:eye_y + (nose_y - eye_y) // 2], b[:eye_y + (nose_y - eye_y) // 2]))
        x0, y0 = lm[L.LIPS_OUTER, :2].min(0).astype(int)
        x1, y1 = lm[L.LIPS_OUTER, :2].max(0).astype(int)
        lips_change.append(np.abs(a[y0:y1, x0:x1].astype(float) - b[y0:y1, x0:x1]).mean())
    mesh.close()
    assert min(upper_third) > 34, upper_third  # encoding loss only
    assert min(above_nose) > 34, above_nose  # nothing above the nose is touched
    assert min(lips_change) > 8, lips_change  # the (random-weight) network re-rendered the mouth


def test_missing_checkpoint_names_file_and_folder(tmp_path, monkeypatch):
    from retalk.engines.wav2lip import Wav2LipEngine

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(empty))
    with pytest.raises(CheckpointError) as exc:
        Wav2LipEngine()
    msg = str(exc.value)
    assert "wav2lip_gan.pth" in msg and "wav2lip.pth" in msg and str(empty.resolve()) in msg
    assert len(msg.splitlines()) == 1
    with pytest.raises(CheckpointError) as exc:
        Wav2LipEngine(checkpoint="wav2lip_gan.pth")
    assert "wav2lip_gan.pth" in str(exc.value) and str(empty.resolve()) in str(exc.value)


def test_cli_missing_checkpoint_one_line(tmp_path, face_clip, short_wav):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out" / "result.mp4"
    out.parent.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "retalk", "sync", "--face", str(face_clip), "--audio", str(short_wav),
         "--outfile", str(out), "--engine", "wav2lip", "--checkpoints", str(empty), "-q", "--no-asr"],
        capture_output=True, text=True, timeout=300,
    )
    err = proc.stderr.strip()
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("retalk: error:") and "wav2lip" in err and str(empty.resolve()) in err
    assert list(out.parent.iterdir()) == []


def test_box_smoothing_matches_release():
    from retalk.engines.wav2lip import smooth_boxes

    rng = np.random.default_rng(0)
    boxes = rng.integers(0, 400, size=(13, 4))
    # the release: boxes[i] = mean of the forward window (the last T boxes at the end), in place, on ints
    ref = boxes.copy()
    for i in range(len(ref)):
        window = ref[len(ref) - 5:] if i + 5 > len(ref) else ref[i:i + 5]
        ref[i] = np.mean(window, axis=0)
    assert np.array_equal(smooth_boxes(boxes.copy()), ref)


def test_face_boxes_are_s3fd_like(photo):
    import cv2

    from retalk.engines.wav2lip import face_boxes

    img = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    mesh = FaceMesh(static=True)
    lm = mesh(img)[0]
    mesh.close()
    h, w = img.shape[:2]
    track = FaceTrack(lm[None], np.array([True]), np.zeros((1, 4), np.float32), np.zeros((1, 3), np.float32), (w, h))
    x1, y1, x2, y2 = face_boxes(track, pads=(0, 0, 0, 0))[0]
    assert 0.85 < (y2 - y1) / (x2 - x1) < 1.3  # near square, like s3fd
    brows = lm[[70, 63, 105, 66, 107, 336, 296, 334, 293, 300], 1].min()
    assert y1 < brows < lm[L.RIGHT_EYE_OUTER, 1]  # starts on the forehead, above the brows
    assert lm[L.LOWER_LIP_OUTER_MID, 1] < y2 <= lm[L.CHIN, 1] + 1  # ends at (or just above) the chin
    mid = (y1 + y2) / 2  # the release masks the crop from its middle row down: the mouth is below it
    assert lm[L.RIGHT_EYE_OUTER, 1] < mid < lm[L.UPPER_LIP_OUTER_MID, 1]
    padded = face_boxes(track, pads=(0, 10, 0, 0))[0]
    assert padded[3] == min(h, y2 + 10) and np.array_equal(padded[:3], [x1, y1, x2])
