"""``--engine sadtalker`` end to end and its parts: files, crop, cached-source batched render, paste-back, enhancer.

Two end-to-end runs use random-weight checkpoints in the released containers (the five networks in one
``SadTalker_V0.0.2_256.safetensors``, both mapping files, a stand-in ``similarity_Lm3D_all.mat``) through the
command line; the released renderer costs ~20-30 s per frame on this CPU, so they render 2 frames each.
The other runs use small stand-in renderer networks with the released calls, so paste-back, enhancer and
reference videos are exercised in seconds.
"""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from _bfm import write_bfm  # noqa: E402
from _release import write_release  # noqa: E402

from retalk import cli  # noqa: E402
from retalk.errors import EXIT_BAD_INPUT, EXIT_OK, CheckpointError  # noqa: E402
from retalk.media import write_wav  # noqa: E402
from retalk.samples import vowel_speech  # noqa: E402
from retalk.sadtalker.files import find_files  # noqa: E402

BUNDLE = "SadTalker_V0.0.2_256.safetensors"


def _probe(path: Path) -> tuple[int, int, int, bool]:
    """(width, height, frames, has audio) of a video, read with PyAV."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        return v.codec_context.width, v.codec_context.height, frames, len(c.streams.audio) > 0


def _frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoints folder as a SadTalker user has it, with seeded random weights."""
    folder = tmp_path_factory.mktemp("sadtalker_ck")
    for name, seed in [("sadtalker_kp_extractor", 41), ("sadtalker_generator", 42), ("sadtalker_audio2exp", 44),
                       ("sadtalker_audio2pose", 45), ("face3d", 34)]:
        write_release(name, folder, seed=seed, file=BUNDLE)
    write_release("sadtalker_mapping", folder, seed=43, file="mapping_00229-model.pth.tar")
    write_release("sadtalker_mapping", folder, seed=43, file="mapping_00109-model.pth.tar", coeff_nc=73)
    write_bfm(folder, expression=False)
    return folder


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.09 s of voiced sound: 2 frames at SadTalker's 640 samples per frame."""
    p = tmp_path_factory.mktemp("sad_speech") / "speech.wav"
    write_wav(p, vowel_speech(0.09), 16000)
    return p


# --------------------------------------------------------------------------- files


def test_missing_files_one_message(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        find_files(tmp_path, 256, "full", "gfpgan")
    msg = str(exc.value)
    assert "\n" not in msg and "missing 4 file(s)" in msg and str(tmp_path.resolve()) in msg
    for name in ("SadTalker_V0.0.2_256.safetensors", "facevid2vid_00189-model.pth.tar", "auido2exp_00300-model.pth",
                 "mapping_00109-model.pth.tar", "similarity_Lm3D_all.mat", "GFPGANv1.3.pth",
                 "github.com/OpenTalker/SadTalker/releases"):
        assert name in msg, name
    with pytest.raises(CheckpointError, match=r"missing 3 file\(s\).*SadTalker_V0.0.2_512.safetensors \(the legacy"):
        find_files(tmp_path, 512, "crop")


def test_bundle_legacy_and_mapping_choice(tmp_path: Path) -> None:
    write_bfm(tmp_path, expression=False)
    for f in ("facevid2vid_00189-model.pth.tar", "auido2exp_00300-model.pth", "auido2pose_00140-model.pth",
              "epoch_20.pth", "mapping_00229-model.pth.tar", "mapping_00109-model.pth.tar"):
        (tmp_path / f).write_bytes(b"x")
    legacy = find_files(tmp_path, 256, "crop")
    assert legacy.layout == "legacy" and legacy.networks["face3d"].name == "epoch_20.pth"
    assert legacy.mapping.name == "mapping_00229-model.pth.tar"
    assert find_files(tmp_path, 256, "extfull").mapping.name == "mapping_00109-model.pth.tar"
    (tmp_path / "SadTalker_V0.0.2_512.safetensors").write_bytes(b"x")
    big = find_files(tmp_path, 512, "resize")
    assert big.layout == "bundle" and {p.name for p in big.networks.values()} == {"SadTalker_V0.0.2_512.safetensors"}


def test_cli_missing_files(tmp_path: Path, photo: Path, speech: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.mp4"
    code = cli.main(["animate", "--engine", "sadtalker", "--image", str(photo), "--audio", str(speech), "-o", str(out),
                     "--checkpoints", str(tmp_path), "--preprocess", "extfull", "--enhancer", "gfpgan"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1 and not out.exists()
    for name in ("mapping_00109-model.pth.tar", "GFPGANv1.3.pth", "similarity_Lm3D_all.mat"):
        assert name in err[0], name


@pytest.mark.parametrize("extra, message", [
    (["--size", "384"], "--size 384: --engine sadtalker renders at 256 or 512"),
    (["--pose-style", "46"], "--pose-style must be an integer from 0 to 45"),
    (["--fps", "30"], "--engine sadtalker makes 25 fps video"),
])
def test_cli_refuses_what_sadtalker_cannot_do(extra: list[str], message: str, tmp_path: Path, photo: Path,
                                             speech: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["animate", "--engine", "sadtalker", "--image", str(photo), "--audio", str(speech), "-o",
                     str(tmp_path / "o.mp4"), "--checkpoints", str(tmp_path), *extra])
    assert code == EXIT_BAD_INPUT and message in capsys.readouterr().err


# --------------------------------------------------------------------------- end to end, released networks


def test_cli_animate_end_to_end(release: Path, photo: Path, speech: Path, tmp_path: Path,
                                caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "talk.mp4"
    with caplog.at_level(logging.INFO, logger="retalk.sadtalker.engine"):
        code = cli.main(["animate", "--engine", "sadtalker", "--image", str(photo), "--audio", str(speech), "-o",
                         str(out), "--checkpoints", str(release), "--input-yaw", "-5", "5",
                         "--expression-scale", "1.5"])
    assert code == EXIT_OK
    assert _probe(out) == (256, 256, 2, True)
    report = "\n".join(r.getMessage() for r in caplog.records if "timings" in r.getMessage())
    for stage in ("load", "audio", "photo", "3dmm", "motion", "source", "mapping", "render.network", "render.finish"):
        assert stage in report, stage


def test_cli_say_image_end_to_end(release: Path, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "say.mp4"
    code = cli.main(["say", "--text", "a", "--rate", "450", "--image", str(photo), "--engine", "sadtalker", "-o",
                     str(out), "--checkpoints", str(release), "--still", "--preprocess", "extcrop", "--seed", "3"])
    assert code == EXIT_OK
    w, h, n, audio = _probe(out)
    assert (w, h, audio) == (256, 256, True) and 1 <= n <= 4


# --------------------------------------------------------------------------- stand-in renderer networks


class _KP(torch.nn.Module):
    """Key points from the picture's mean (the released call: ``m(img)['value']``, (B, 15, 3))."""

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        grid = torch.linspace(-0.5, 0.5, 45).view(1, 15, 3)
        return {"value": grid * (0.5 + img.mean((1, 2, 3)).view(-1, 1, 1))}


class _Mapping(torch.nn.Module):
    """A fixed linear map of the window to the mapping net's outputs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.weight = torch.nn.Parameter(torch.randn(channels * 27, 66 * 3 + 48, generator=g) * 0.01)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        o = x.flatten(1) @ self.weight
        return {"yaw": o[:, :66], "pitch": o[:, 66:132], "roll": o[:, 132:198], "t": o[:, 198:201], "exp": o[:, 201:]}


class _Generator(torch.nn.Module):
    """Draws the source, darkened by how far the driving key points moved (``identity``: the source itself)."""

    def __init__(self, identity: bool = False) -> None:
        super().__init__()
        self.identity = identity

    def encode_source(self, img: torch.Tensor) -> torch.Tensor:
        return img

    def render(self, src: torch.Tensor, kd: torch.Tensor, ks: torch.Tensor,
               max_batch: int | None = None) -> torch.Tensor:
        shift = torch.tanh((kd - ks).abs().mean((1, 2))).view(-1, 1, 1, 1)
        return src.expand(kd.shape[0], -1, -1, -1) * (1.0 if self.identity else 1.0 - 0.3 * shift)

    def forward(self, img: torch.Tensor, kp_driving: dict[str, Any], kp_source: dict[str, Any]) -> dict[str, Any]:
        return {"prediction": self.render(self.encode_source(img), kp_driving["value"], kp_source["value"])}


class _Restorer(torch.nn.Module):
    """GFPGAN's call (``net(x, return_rgb, randomize_noise) -> (image, rgbs)``) on 64 px faces: inverts them."""

    out_size = 64

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor, return_rgb: bool = False, randomize_noise: bool = False) -> tuple[Any, list]:
        self.calls.append(int(x.shape[0]))
        return -x * self.scale, []


def _standin_nets(folder: Path, full: bool, identity: bool = False, enhance: bool = False) -> Any:
    from retalk.checkpoints import get_spec
    from retalk.enhance.gfpgan import GFPGANRestorer
    from retalk.face3d.align import load_lm3d
    from retalk.sadtalker.engine import Networks

    write_bfm(folder, expression=False)
    torch.manual_seed(0)
    nets = {n: get_spec(n).build().eval() for n in ("sadtalker_audio2exp", "sadtalker_audio2pose", "face3d")}
    restorer = GFPGANRestorer(_Restorer(), batch_size=3) if enhance else None
    return Networks(_KP(), _Generator(identity), _Mapping(73 if full else 70), nets["sadtalker_audio2exp"],
                    nets["sadtalker_audio2pose"], nets["face3d"], load_lm3d(folder), torch.device("cpu"), restorer)


@pytest.fixture(scope="module")
def speech_long(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("sad_speech_long") / "speech.wav"
    write_wav(p, vowel_speech(0.6), 16000)
    return p


def _animate(photo: Path, audio: Path, out: Path, nets: Any, **options: Any) -> Any:
    from retalk.portrait import AnimateOptions
    from retalk.sadtalker.engine import animate_sadtalker

    opts = AnimateOptions(engine="sadtalker", progress=False, **options)
    return animate_sadtalker(photo, audio, out, opts, nets=nets)


@pytest.fixture()
def written(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The frames handed to the encoder (exact, before H.264)."""
    import retalk.media
    from retalk.media import VideoSink

    frames: list[np.ndarray] = []

    class Capture(VideoSink):
        def write(self, frame: np.ndarray) -> None:
            frames.append(frame.copy())
            super().write(frame)

    monkeypatch.setattr(retalk.media, "VideoSink", Capture)
    return frames


@pytest.mark.parametrize("preprocess", ["full", "extfull"])
def test_full_pastes_into_the_photo(preprocess: str, photo: Path, speech_long: Path, tmp_path: Path,
                                    written: list[np.ndarray]) -> None:
    from retalk.face.landmarks68 import mesh_to_68
    from retalk.media import read_image
    from retalk.portrait.geometry import find_face
    from retalk.sadtalker.preprocess import prepare_source

    nets = _standin_nets(tmp_path, full=True, identity=True)
    out = tmp_path / "full.mp4"
    res = _animate(photo, speech_long, out, nets, preprocess=preprocess, batch_size=4)
    img = read_image(photo)
    assert res.frames == 15 and res.size == (img.shape[1], img.shape[0])
    src = prepare_source(img, mesh_to_68(find_face(img)), preprocess, 256)
    x1, y1, x2, y2 = src.paste_box
    outside = np.ones(img.shape[:2], bool)
    outside[max(y1, 0):y2, max(x1, 0):x2] = False
    assert len(written) == 15 and _probe(out)[:3] == (img.shape[1], img.shape[0], 15)
    for frame in written[::7]:
        diff = np.abs(frame.astype(np.int16) - img.astype(np.int16)).max(-1)
        assert diff[outside].max() == 0  # the photo itself, bit for bit
        assert diff[~outside].mean() < 6  # the source drawn back where it was cut: no visible box
        edges = [diff[y, max(x1, 0):x2] for y in (y1, y2 - 1) if 0 <= y < img.shape[0]]
        edges += [diff[max(y1, 0):y2, x] for x in (x1, x2 - 1) if 0 <= x < img.shape[1]]
        assert edges and max(e.max() for e in edges) == 0  # the box's outermost pixels: weight 0, no seam
    assert res.timings.stages["render.finish"].items == 15


def test_enhancer_runs_batched_after_the_renderer(photo: Path, speech_long: Path, tmp_path: Path) -> None:
    nets = _standin_nets(tmp_path, full=False, identity=True, enhance=True)
    res = _animate(photo, speech_long, tmp_path / "enh.mp4", nets, batch_size=5, enhancer="gfpgan")
    calls = nets.restorer.net.calls
    assert sum(calls) == res.frames == 15 and max(calls) == 3  # every frame's face found and restored, 3 per call
    assert res.timings.stages["enhance.network"].items == 15
    plain = _animate(photo, speech_long, tmp_path / "plain.mp4", _standin_nets(tmp_path, full=False, identity=True))
    a = _frames(tmp_path / "enh.mp4")[0].astype(np.int16)
    b = _frames(tmp_path / "plain.mp4")[0].astype(np.int16)
    assert plain.frames == 15
    assert np.abs(a - b)[96:160, 96:160].mean() > 40  # the stand-in restorer inverted the face ...
    assert np.abs(a - b)[:16, :16].mean() < 3  # ... and nothing in the corner


def test_reference_videos_and_angles(photo: Path, speech_long: Path, face_clip: Path, tmp_path: Path) -> None:
    nets = _standin_nets(tmp_path, full=False)
    res = _animate(photo, speech_long, tmp_path / "ref.mp4", nets, ref_eyeblink=face_clip, ref_pose=face_clip,
                   input_pitch=(4.0,), preprocess="resize", still=True)
    assert res.size == (256, 256) and res.frames == 15
    assert res.max_rotation >= 4.0 and res.blinks_per_minute == 0.0  # blinks come from the video's expression
    assert res.timings.stages["3dmm"].busy > 0


def test_concurrent_equals_sequential(photo: Path, speech_long: Path, tmp_path: Path) -> None:
    nets = _standin_nets(tmp_path, full=False)
    a = _animate(photo, speech_long, tmp_path / "a.mp4", nets, batch_size=4, crf=0, seed=1)
    b = _animate(photo, speech_long, tmp_path / "b.mp4", nets, batch_size=3, crf=0, seed=1, concurrent=False)
    assert a.frames == b.frames == 15
    for x, y in zip(_frames(tmp_path / "a.mp4"), _frames(tmp_path / "b.mp4")):
        assert np.array_equal(x, y)


# --------------------------------------------------------------------------- renderer


def test_cached_batched_render_equals_reference_render() -> None:
    """The cached source, one call for all frames = the reference's per-call source encoding at batch 2."""
    from _golden import fill_seeded

    from retalk.networks.sadtalker_kp import KPDetector
    from retalk.networks.sadtalker_mapping import MappingNet
    from retalk.sadtalker.render import FaceRenderer, set_channels_last

    from test_networks_sadtalker_render import KP_SMALL, small_generator

    # the renderer helper's narrow configurations of the released classes (64 px images)
    kp = fill_seeded(KPDetector(**KP_SMALL), 41).eval()
    gen = small_generator().eval()
    mapping = fill_seeded(MappingNet(coeff_nc=70), 43).eval()
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    source = rng.normal(0, 0.3, (70, 27)).astype(np.float32)
    windows = rng.normal(0, 0.3, (3, 70, 27)).astype(np.float32)
    yaw = np.linspace(-10, 10, 3).astype(np.float32)
    r = FaceRenderer(kp, gen, mapping, torch.device("cpu"))
    reference = r.render_reference(image, source, windows, yaw=yaw, batch=2)
    set_channels_last(gen)  # as the engine runs it on the CPU
    state = r.encode_source(image, source)
    fast = r.render(state, r.driving_keypoints(state, windows, yaw=yaw))
    assert fast.shape == reference.shape == (3, 64, 64, 3)
    diff = np.abs(fast.astype(np.int16) - reference)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # float32 reordering may move a value across .5


def test_render_op_halves_a_batch_that_runs_out_of_memory() -> None:
    from retalk.runtime.stages import Slot, run_ops_sequential
    from retalk.sadtalker.render import RenderOp

    class Renderer:
        device = torch.device("cpu")
        sizes: list[int] = []

        def render(self, state: Any, kp: torch.Tensor) -> np.ndarray:
            if kp.shape[0] > 2:
                raise torch.cuda.OutOfMemoryError("out of memory")
            self.sizes.append(int(kp.shape[0]))
            return np.stack([np.full((4, 4, 3), int(v), np.uint8) for v in kp[:, 0, 0]])

    kp = torch.arange(7, dtype=torch.float32).view(7, 1, 1).expand(7, 15, 3)
    op = RenderOp(Renderer(), None, kp, lambda crop: crop, batch_size=6)  # type: ignore[arg-type]
    out = [s.frame[0, 0, 0] for s in run_ops_sequential((Slot(i, i, np.zeros((1, 1, 3), np.uint8)) for i in range(7)),
                                                        [op])]
    assert out == list(range(7)) and max(Renderer.sizes) <= 2  # 6 failed, 3 failed, then 1 at a time


def test_batch_from_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from retalk.sadtalker import budget

    assert budget.choose_batch(torch.device("cpu"), 512) == budget.CPU_BATCH
    gib = 1 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (80 * gib, 80 * gib))
    cuda = torch.device("cuda")
    # the 14 GiB budget, less 1.5 GiB reserve: 12.5 GiB / 0.6 GB = 22 frames at 256, / 2.4 GB = 5 at 512
    assert budget.choose_batch(cuda, 256) == 22 and budget.choose_batch(cuda, 512) == 5
    assert budget.choose_batch(cuda, 512, half=True) == 11
    assert budget.choose_batch(cuda, 256, enhancer=True) == 16  # GFPGAN keeps 3.5 GiB: 9 GiB / 0.6 GB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * gib, 80 * gib))
    assert budget.choose_batch(cuda, 512) == 1  # never below one frame
    monkeypatch.setenv("RETALK_SADTALKER_GPU_GIB", "40")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (80 * gib, 80 * gib))
    assert budget.choose_batch(cuda, 256) == 64  # capped


# --------------------------------------------------------------------------- crop geometry and paste-back


def test_source_crops_follow_the_reference_slicing(photo: Path) -> None:
    from retalk.face.landmarks68 import mesh_to_68
    from retalk.face3d.crop import croper_box
    from retalk.media import read_image
    from retalk.portrait.geometry import find_face
    from retalk.sadtalker.preprocess import prepare_source

    img = read_image(photo)
    lm68 = mesh_to_68(find_face(img))
    box = croper_box(lm68, img.shape[1], img.shape[0])
    clx, cly, crx, cry = box.border
    lx, ly, rx, ry = box.inner
    expected = {  # src/utils/croper.py and preprocess.py, written out
        "crop": img[cly:cry, clx:crx][ly:ry, lx:rx], "extcrop": img[cly:cry, clx:crx], "resize": img,
    }
    for mode, region in expected.items():
        src = prepare_source(img, lm68, mode, 256)
        assert np.array_equal(src.image, cv2.resize(np.ascontiguousarray(region), (256, 256))), mode
    big = cv2.resize(img, (7200, 7200))  # a face quad over 2048 px: the reference shrinks the picture first
    big_lm = lm68 * (7200 / img.shape[1])
    big_box = croper_box(big_lm, 7200, 7200)
    assert big_box.shrink > 1
    for mode in ("crop", "extcrop"):
        src = prepare_source(big, big_lm, mode, 256)
        cut = big_box.cut_resized(big, inner=mode == "crop")
        assert np.array_equal(src.image, cv2.resize(cut, (256, 256))), mode
    src = prepare_source(img, lm68, "crop", 256)
    # the 68 points follow the crop: an eye corner lands on the same picture content
    x, y = lm68[36]
    sx, sy = src.landmarks[36]
    assert abs(sx - (x - clx - lx) * 256 / (min(clx + rx, crx) - clx - lx)) < 1e-3
    assert abs(sy - (y - cly - ly) * 256 / (min(cly + ry, cry) - cly - ly)) < 1e-3


def test_large_photo_full_is_capped(photo: Path) -> None:
    from retalk.face.landmarks68 import mesh_to_68
    from retalk.media import read_image
    from retalk.portrait.geometry import find_face
    from retalk.sadtalker.preprocess import FULL_MAX_SIDE, prepare_source

    img = cv2.resize(read_image(photo), (4000, 4000))
    src = prepare_source(img, mesh_to_68(find_face(img)), "full", 512)
    assert src.background.shape == (FULL_MAX_SIDE, FULL_MAX_SIDE, 3) and src.image.shape == (512, 512, 3)
    x1, y1, x2, y2 = src.paste_box
    assert 0 <= x1 < x2 <= FULL_MAX_SIDE and 0 <= y1 < y2 <= FULL_MAX_SIDE


def test_paste_blends_only_inside_the_box() -> None:
    from retalk.sadtalker.paste import Paster, feather_mask

    bg = np.full((100, 120, 3), 50, np.uint8)
    paster = Paster.create(bg, (-10, 20, 60, 90))  # reaches past the left edge
    out = paster.paste(np.full((35, 35, 3), 250, np.uint8))
    assert np.array_equal(out[:20], bg[:20]) and np.array_equal(out[:, 60:], bg[:, 60:])
    assert out[55, 25, 0] == 250 and np.all(out[20, :, 0] == 50)  # centre: the crop; the box edge: the photo
    m = feather_mask(40, 40, 0.25)
    assert m[0].max() == 0 and m[20, 20] == 1 and np.allclose(m, m[::-1]) and np.allclose(m, m.T)
    assert np.all(np.diff(m[20, :20]) >= 0)


def test_doctor_lists_the_sadtalker_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from retalk.doctor import report

    (tmp_path / "mapping_00229-model.pth.tar").write_bytes(b"x")
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    text = report(check=False)
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("sadtalker --size")]
    assert len(lines) == 4
    assert "mapping_00229" not in lines[0] and "mapping_00109-model.pth.tar" in lines[1]
    assert all("similarity_Lm3D_all.mat" in ln for ln in lines)


def test_cli_photo_without_face_fails_before_loading(release: Path, speech: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 128, np.uint8))
    with caplog.at_level(logging.INFO, logger="retalk.checkpoints"):
        code = cli.main(["animate", "--engine", "sadtalker", "--image", str(blank), "--audio", str(speech), "-o",
                         str(tmp_path / "o.mp4"), "--checkpoints", str(release)])
    assert code == EXIT_BAD_INPUT and "no face found" in capsys.readouterr().err
    assert not any("loaded" in r.getMessage() for r in caplog.records)  # no network was loaded for it
