"""The videoretalking engine: missing files, the per-clip cache, faceless frames, a still image, --up-face,
and the whole pipeline with random-weight release files (one frame, the released networks at full size)."""
from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

import _vrt_engine_standins as standins  # noqa: E402

from retalk.cli import main  # noqa: E402
from retalk.errors import CheckpointError  # noqa: E402
from retalk.media import VideoSink, iter_frames, load_audio, probe_video, write_wav  # noqa: E402
from retalk.pipeline import SyncOptions, sync  # noqa: E402
from retalk.samples import moving_frames, vowel_speech  # noqa: E402

#: Every file the engine needs, as the release names them.
RELEASE = ["DNet.pt", "LNet.pth", "ENet.pth", "face3d_pretrain_epoch_20.pth", "GPEN-BFR-512.pth",
           "ParseNet-latest.pth", "GFPGANv1.3.pth", "BFM/similarity_Lm3D_all.mat", "expression.mat"]
#: The stages of one output frame, each a runtime op (its network step is timed as "<op>.network").
STAGES = ["vrt.dnet", "vrt.reference", "vrt.enet", "vrt.gfpgan", "vrt.parse"]


def _opts(engine, **kw) -> SyncOptions:
    return SyncOptions(engine=engine, progress=False, recognize=False, preset="ultrafast", crf=12, **kw)


def _engine(up_face: str = "original", **kw):
    from retalk.engines.videoretalking.engine import VideoReTalkingEngine

    return VideoReTalkingEngine.with_networks(standins.networks(), standins.lm3d(),
                                              np.linspace(-0.5, 0.5, 64, dtype=np.float32), up_face=up_face, **kw)


def _wav(path: Path, frames: int, fps: float = 25.0) -> Path:
    write_wav(path, vowel_speech(frames / fps + 1e-3), 16000)
    return path


def _frames(path: Path) -> list[np.ndarray]:
    return list(iter_frames(probe_video(path)))


@pytest.fixture(scope="module")
def mixed_clip(tmp_path_factory) -> Path:
    """5 frames at 25 fps, 256 × 256: the astronaut in frames 0-2, a plain grey picture (no face) in 3-4."""
    path = tmp_path_factory.mktemp("vrt_media") / "mixed.mp4"
    faces = list(moving_frames(3, 256, 256, 25.0))
    with VideoSink(path, 256, 256, Fraction(25), crf=12, preset="ultrafast") as sink:
        for f in faces + [np.full((256, 256, 3), 128, np.uint8)] * 2:
            sink.write(f)
    return path


# ----------------------------------------------------------------------------- missing files
def test_every_missing_file_in_one_message(tmp_path):
    from retalk.engines.videoretalking.release import check_release

    with pytest.raises(CheckpointError) as exc:
        check_release(tmp_path)
    text = str(exc.value)
    assert "\n" not in text and str(tmp_path.resolve()) in text
    for name in RELEASE:
        assert name in text, name
    assert "30_net_gen.pth" not in text  # only --up-face needs GANimation
    assert text.count("https://github.com/vinthony/video-retalking/releases/download/v0.0.1/") >= len(RELEASE)

    (tmp_path / "DNet.pt").write_bytes(b"x")
    (tmp_path / "BFM").mkdir()
    (tmp_path / "BFM" / "similarity_Lm3D_all.mat").write_bytes(b"x")
    with pytest.raises(CheckpointError) as exc:
        check_release(tmp_path, up_face="angry", exp_img="/some/picture.png")
    text = str(exc.value)
    assert "30_net_gen.pth" in text and "7 file(s)" in text
    assert "DNet.pt" not in text and "similarity_Lm3D_all.mat" not in text and "expression.mat" not in text


def test_cli_missing_files_is_one_line(tmp_path, capsys, photo):
    wav = _wav(tmp_path / "a.wav", 2)
    out = tmp_path / "out.mp4"
    code = main(["sync", "--engine", "videoretalking", "--checkpoints", str(tmp_path), "--face", str(photo),
                 "--audio", str(wav), "-o", str(out), "--up-face", "surprise"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("retalk: error: ")
    for name in RELEASE + ["30_net_gen.pth"]:
        assert name in err, name
    assert not out.exists()


def test_exp_img_must_be_a_template_or_a_picture(tmp_path, capsys, photo):
    wav = _wav(tmp_path / "a.wav", 2)
    code = main(["sync", "--engine", "videoretalking", "--face", str(photo), "--audio", str(wav),
                 "-o", str(tmp_path / "o.mp4"), "--exp-img", "grumpy"])
    assert code == 2 and "--exp-img 'grumpy': not neutral, smile or an existing picture" in capsys.readouterr().err


def test_engine_flags_need_the_engine(tmp_path, capsys, photo):
    wav = _wav(tmp_path / "a.wav", 2)
    code = main(["sync", "--face", str(photo), "--audio", str(wav), "-o", str(tmp_path / "o.mp4"),
                 "--exp-img", "smile"])
    assert code == 2 and "--exp-img applies to --engine videoretalking" in capsys.readouterr().err


def test_doctor_lists_the_files(tmp_path, monkeypatch):
    from retalk.doctor import report

    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    (tmp_path / "expression.mat").write_bytes(b"x")
    text = report(check=False)
    section = text[text.index("videoretalking files"):]
    for name in RELEASE + ["30_net_gen.pth"]:
        line = next(ln for ln in section.splitlines() if ln.strip().startswith(name))
        assert ("found" if name == "expression.mat" else "missing") in line, line


# ----------------------------------------------------------------------------- pieces
def test_coefficient_window_is_26_frames_with_the_template():
    from retalk.engines.videoretalking.analysis import ClipAnalysis

    n = 30
    coeffs = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 257), np.float32)
    trans = np.arange(n, dtype=np.float32)[:, None] * 10 + np.arange(5, dtype=np.float32)[None]
    a = ClipAnalysis((0, 0, 10, 10), coeffs, trans, np.ones(n, bool))
    template = np.full(64, 7.0, np.float32)
    w = a.window(3, template)
    assert w.shape == (73, 26)
    assert (w[:64] == 7.0).all()
    frames = [max(0, min(n - 1, k)) for k in range(3 - 13, 3 + 13)]  # idx-13 .. idx+12, clamped
    assert w[64:70].T.tolist() == [[float(f)] * 6 for f in frames]
    assert w[70:].T.tolist() == [[10.0 * f + 2, 10.0 * f + 3, 10.0 * f + 4] for f in frames]  # s, tx, ty
    assert w[64, 13] == 3.0  # column 13 is the frame itself


def test_reference_frame_replaces_only_the_quad():
    from retalk.engines.videoretalking.lipsync import reference_frame

    frame = np.zeros((100, 120, 3), np.uint8)
    face = np.full((256, 256, 3), 200, np.uint8)
    quad = np.array([[30, 20], [30, 80], [90, 80], [90, 20]], np.float64)
    out = reference_frame(frame, face, (20, 10, 100, 90), quad)
    assert (out[30:70, 40:80] == 200).all()  # inside the quad
    assert (out[:15] == 0).all() and (out[:, :25] == 0).all() and (out[85:] == 0).all()  # outside it


def test_upper_face_fades_into_the_lower():
    from retalk.engines.videoretalking.upface import FADE_ROWS, blend_upper

    up, low = np.full((384, 384, 3), 200, np.uint8), np.full((384, 384, 3), 100, np.uint8)
    out = blend_upper(up, low)
    assert (out[:FADE_ROWS[0]] == 200).all() and (out[FADE_ROWS[1]:] == 100).all()
    middle = out[(FADE_ROWS[0] + FADE_ROWS[1]) // 2, 0, 0]
    assert 140 <= middle <= 160


def test_released_ganimation_edits_only_the_upper_rows(tmp_path):
    """The real (random-weight) GANimation through the op: rows above the fade change, rows below are E-Net's."""
    from _release import write_release

    from retalk.checkpoints import load
    from retalk.runtime.stages import Slot
    from retalk.engines.videoretalking.store import FrameStore
    from retalk.engines.videoretalking.upface import FADE_ROWS, UpFaceOp

    gan = load("ganimation", write_release("ganimation", tmp_path))
    nets = standins.networks()
    from dataclasses import replace

    store = FrameStore()
    op = UpFaceOp("surprise", replace(nets, ganimation=gan), store, 1)
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (384, 384, 3), dtype=np.uint8)
    pred = rng.integers(0, 255, (384, 384, 3), dtype=np.uint8)
    store.put(0, face=face, pred=pred)
    slot = Slot(0, 0, np.zeros((8, 8, 3), np.uint8))
    prepared = op.prepare_item(slot)
    op.finish_item(slot, prepared, op.run_batch([prepared])[0])
    out = store.get(0, "pred")
    assert (out[FADE_ROWS[1]:] == pred[FADE_ROWS[1]:]).all()
    upper = np.abs(out[:FADE_ROWS[0]].astype(int) - pred[:FADE_ROWS[0]]).mean()
    assert upper > 20, upper  # the upper face is the edited original, not E-Net's


# ----------------------------------------------------------------------------- the engine on stand-in networks
def test_faceless_frames_pass_through_and_every_stage_runs(tmp_path, mixed_clip):
    wav = _wav(tmp_path / "a.wav", 5)
    res = sync(mixed_clip, wav, tmp_path / "out.mp4", _opts(_engine()))
    assert res.frames == 5 and 0.5 < res.face_fraction < 0.7
    for stage in STAGES:
        assert res.timings.stages[f"{stage}.network"].items == 3, stage  # the three frames with a face
    assert res.timings.stages["vrt.coefficients"].items == 5
    src, out = _frames(mixed_clip), _frames(tmp_path / "out.mp4")
    for k in (3, 4):
        assert np.abs(src[k].astype(int) - out[k]).mean() < 1.0, k  # passed through (encoding loss only)
    for k in (0, 1, 2):
        assert np.abs(src[k].astype(int) - out[k]).mean() > 2.0, k  # re-rendered
        assert np.abs(src[k][:30].astype(int) - out[k][:30]).mean() < 3.0, k  # top of the frame: encoding loss only


def test_still_image(tmp_path, photo):
    wav = _wav(tmp_path / "a.wav", 4)
    out = tmp_path / "still.mp4"
    res = sync(photo, wav, out, _opts(_engine()))
    assert res.frames == 4 and res.face_fraction == 1.0
    frames = _frames(out)
    assert len(frames) == 4 and frames[0].shape == (384, 384, 3)
    assert load_audio(out).duration > 0.1
    sync(photo, wav, tmp_path / "plain.mp4", _opts("passthrough"))
    plain = _frames(tmp_path / "plain.mp4")[0].astype(int)  # the photo through the same encoder
    assert np.abs(plain - frames[0]).mean() > 1.0
    assert np.abs(plain[:, :40] - frames[0][:, :40]).mean() < 0.5  # the background stays


def test_up_face_changes_the_upper_face(tmp_path, photo):
    from retalk.face.tracker import FaceMesh
    from retalk.face import landmarks as L

    wav = _wav(tmp_path / "a.wav", 2)
    outs = {}
    for up in ("original", "surprise"):
        sync(photo, wav, tmp_path / f"{up}.mp4", _opts(_engine(up)))
        outs[up] = _frames(tmp_path / f"{up}.mp4")[0].astype(int)
    mesh = FaceMesh(static=True)
    lm = mesh(_frames(photo)[0])[0]
    mesh.close()
    eyes_y = int(lm[[L.RIGHT_EYE_OUTER, L.LEFT_EYE_OUTER], 1].mean())
    x0, x1 = (int(v) for v in lm[[L.RIGHT_EYE_OUTER, L.LEFT_EYE_OUTER], 0])
    band = slice(eyes_y - 10, eyes_y + 10)
    diff = np.abs(outs["original"][band, min(x0, x1):max(x0, x1)] - outs["surprise"][band, min(x0, x1):max(x0, x1)])
    assert diff.mean() > 5.0, diff.mean()  # eyes and brows edited
    assert np.abs(outs["original"][:, :40] - outs["surprise"][:, :40]).mean() < 0.5  # background the same


def test_cache_keeps_coefficients_and_faces(tmp_path, mixed_clip):
    wav = _wav(tmp_path / "a.wav", 3)
    cache = tmp_path / "cache"
    first = _engine(cache=True, cache_dir=cache)
    res1 = sync(mixed_clip, wav, tmp_path / "1.mp4", _opts(first))
    assert first.nets.face3d.calls > 0 and res1.timings.stages["vrt.dnet.network"].items == 3
    assert len(list(cache.glob("*.npz"))) == 1
    faces = list(cache.glob("*-faces-*/*.png"))
    assert sorted(p.name for p in faces) == ["0000000.png", "0000001.png", "0000002.png"]  # the frames with a face
    second = _engine(cache=True, cache_dir=cache)
    res2 = sync(mixed_clip, wav, tmp_path / "2.mp4", _opts(second))
    assert second.nets.face3d.calls == 0  # coefficients read from the cache
    assert "vrt.dnet.network" not in res2.timings.stages and "vrt.reference.network" not in res2.timings.stages
    assert res2.timings.stages["vrt.enet.network"].items == 3
    a, b = _frames(tmp_path / "1.mp4"), _frames(tmp_path / "2.mp4")
    assert max(np.abs(x.astype(int) - y).mean() for x, y in zip(a, b)) < 0.5  # the same picture
    smile = _engine_with_template(np.full(64, 0.3, np.float32), cache_dir=cache)
    sync(mixed_clip, wav, tmp_path / "3.mp4", _opts(smile))
    assert len(list(cache.glob("*-faces-*"))) == 2  # another template, other faces
    off = _engine(cache=False, cache_dir=tmp_path / "unused")
    sync(mixed_clip, wav, tmp_path / "4.mp4", _opts(off))
    assert off.nets.face3d.calls > 0 and not (tmp_path / "unused").exists()


def _engine_with_template(template: np.ndarray, **kw):
    from retalk.engines.videoretalking.engine import VideoReTalkingEngine

    return VideoReTalkingEngine.with_networks(standins.networks(), standins.lm3d(), template, cache=True, **kw)


# ----------------------------------------------------------------------------- the released networks
def test_cli_end_to_end_with_released_networks(tmp_path, caplog, photo):
    """`retalk sync --engine videoretalking` on random-weight release files; the timing report names every stage.

    One output frame from a two-frame clip: the full-size networks cost tens of seconds per frame on a CPU.
    The expression comes from a picture and the upper face is edited, so every flag's path runs.
    """
    from _bfm import write_bfm
    from _release import write_release

    folder = tmp_path / "checkpoints"
    for name in ("dnet", "lnet", "enet", "face3d", "gpen", "parsenet", "gfpgan", "ganimation"):
        write_release(name, folder)
    write_bfm(folder, expression=False)  # not needed with --exp-img IMAGE
    clip = tmp_path / "clip.mp4"
    with VideoSink(clip, 256, 256, Fraction(25), crf=12, preset="ultrafast") as sink:
        for f in moving_frames(2, 256, 256, 25.0):
            sink.write(f)
    wav = _wav(tmp_path / "a.wav", 1)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="retalk"):
        code = main(["sync", "--engine", "videoretalking", "--checkpoints", str(folder), "--face", str(clip),
                     "--audio", str(wav), "-o", str(out), "--device", "cpu", "--no-asr", "--preset", "ultrafast",
                     "--cache-dir", str(tmp_path / "cache"), "--exp-img", str(photo), "--up-face", "surprise", "-v"])
    assert code == 0
    report = "\n".join(r.getMessage() for r in caplog.records if "critical path" in r.getMessage())
    items = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*(\S+)\s+busy .*?(\d+) items", report, re.M)}
    assert items.get("vrt.coefficients") == 2, report  # both source frames
    for stage in STAGES + ["vrt.upface"]:
        assert items.get(f"{stage}.network") == 1, (stage, report)  # the one output frame
    frames = _frames(out)
    assert len(frames) == 1 and frames[0].shape == (256, 256, 3)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_say_takes_the_engine_flags():
    from retalk.cli import engine_options, build_parser, check_say_target

    args = build_parser().parse_args(["say", "--text", "hi", "--face", "v.mp4", "-o", "o.mp4", "--engine",
                                      "videoretalking", "--exp_img", "smile", "--up-face", "angry", "--no-cache",
                                      "--checkpoints", "ck"])
    assert engine_options(check_say_target(args)) == {"exp_img": "smile", "up_face": "angry", "cache": False,
                                                       "checkpoints": "ck"}
    args = build_parser().parse_args(["say", "--text", "hi", "--image", "p.png", "-o", "o.mp4", "--up-face", "angry"])
    with pytest.raises(Exception, match="--up-face applies to --face"):
        check_say_target(args)


def test_overlapped_stages_equal_one_after_another(tmp_path, mixed_clip):
    """The six ops share per-frame state through the store: overlapping them must not change a pixel."""
    wav = _wav(tmp_path / "a.wav", 8)  # longer than the clip: ping-pong back over frames 4..0
    res = {}
    for concurrent in (True, False):
        out = tmp_path / f"{concurrent}.mp4"
        sync(mixed_clip, wav, out, _opts(_engine(), concurrent=concurrent))
        res[concurrent] = _frames(out)
    assert len(res[True]) == 8
    for a, b in zip(res[True], res[False]):
        assert np.array_equal(a, b)
