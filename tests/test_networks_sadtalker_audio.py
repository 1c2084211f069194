"""SadTalker's audio2exp and audio2pose networks: layout, loading from the release containers, goldens.

Key lists (``tests/data/keys/sadtalker_audio2{exp,pose}.txt.gz``) and outputs
(``tests/data/sadtalker_audio2{exp,pose}.npz``) come from the SadTalker reference modules, run
once outside the repository on :func:`_golden.fill_seeded` weights (seeds 44 and 45) and the
inputs made here; see ``tests/data/README.md``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _golden import assert_layout, assert_matches, digest, fill_seeded, load_golden
from _release import seeded_release_state, write_release

from retalk import checkpoints
from retalk.errors import CheckpointError

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.networks.sadtalker_audio2exp import SimpleWrapperV2  # noqa: E402
from retalk.networks.sadtalker_audio2pose import Audio2Pose  # noqa: E402
from retalk.sadtalker.motion import predict_expression  # noqa: E402

SEED_EXP, SEED_POSE = 44, 45


@pytest.mark.parametrize(("name", "build", "entries"), [
    ("sadtalker_audio2exp", SimpleWrapperV2, 93),
    ("sadtalker_audio2pose", Audio2Pose, 419),
])
def test_state_dict_equals_reference_layout(name: str, build, entries: int) -> None:
    model = build()
    assert_layout(model, name, entries)


def test_audio2pose_encoder_mlp_takes_454_inputs() -> None:
    state = Audio2Pose().state_dict()
    assert tuple(state["netG.encoder.MLP.L0.weight"].shape) == (128, 454)
    assert tuple(state["netG.decoder.MLP.L0.weight"].shape) == (128, 262)


# --------------------------------------------------------------------------- loading


def _same(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize("name", ["sadtalker_audio2exp", "sadtalker_audio2pose"])
def test_loads_from_both_bundles_and_the_legacy_file(tmp_path: Path, name: str) -> None:
    other = "sadtalker_audio2pose" if name == "sadtalker_audio2exp" else "sadtalker_audio2exp"
    want = seeded_release_state(name, seed=3)
    bundle = tmp_path / "256" / "SadTalker_V0.0.2_256.safetensors"
    write_release(other, bundle.parent, seed=9, file=bundle.name)  # the other network's keys share the file
    write_release(name, bundle.parent, seed=3, file=bundle.name)
    (tmp_path / "512").mkdir()
    (tmp_path / "512" / "SadTalker_V0.0.2_512.safetensors").write_bytes(bundle.read_bytes())
    for size in (256, 512):
        model = checkpoints.load(name, tmp_path / str(size))  # found in the folder by its release name
        assert isinstance(model, SimpleWrapperV2 if name == "sadtalker_audio2exp" else Audio2Pose)
        assert not model.training
        _same(model, want)
    legacy = checkpoints.get_spec(name).files[-1]
    assert legacy.startswith("auido2")
    path = write_release(name, tmp_path / "legacy", seed=3, file=legacy)  # {'model': state}
    _same(checkpoints.load(name, path), want)


def test_legacy_container_keeps_epoch_beside_model(tmp_path: Path) -> None:
    want = seeded_release_state("sadtalker_audio2exp", seed=5)
    torch.save({"model": want, "epoch": 300}, tmp_path / "auido2exp_00300-model.pth")
    _same(checkpoints.load("sadtalker_audio2exp", tmp_path), want)


def test_the_other_networks_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write_release("sadtalker_audio2exp", tmp_path, file="auido2pose_00140-model.pth")
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("sadtalker_audio2pose", path)
    text = str(exc.value)
    assert "\n" not in text and "does not fit the 'sadtalker_audio2pose' network" in text


# --------------------------------------------------------------------------- goldens


def test_audio2exp_matches_reference() -> None:
    model = fill_seeded(SimpleWrapperV2(), SEED_EXP)
    rng = np.random.default_rng(SEED_EXP)
    frames = 12
    mel = rng.standard_normal((1, frames, 1, 80, 16)).astype(np.float32)
    ref = (0.5 * rng.standard_normal((1, frames, 70))).astype(np.float32)
    ratio = rng.uniform(0, 1, (1, frames, 1)).astype(np.float32)
    golden = load_golden("sadtalker_audio2exp")
    with torch.no_grad():
        out = model(torch.from_numpy(mel[0]), torch.from_numpy(ref[:, :, :64]), torch.from_numpy(ratio))
    assert out.shape == (1, frames, 64)
    assert_matches(digest(out.numpy()), golden["exp"], "audio2exp")
    chunked = predict_expression(model, mel[0, :, 0], ref[0, :, :64], ratio[0])  # 10 + 2 frames
    assert_matches(digest(chunked), golden["exp"], "audio2exp in chunks")


def _pose_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED_POSE)
    mel = rng.standard_normal((1, 40, 1, 80, 16)).astype(np.float32)
    ref = (0.5 * rng.standard_normal((1, 40, 70))).astype(np.float32)
    return mel, ref


@pytest.mark.parametrize("frames", [40, 12])  # 1 chunk + a remainder of 7; 11 frames front-padded
def test_audio2pose_matches_reference(frames: int) -> None:
    model = fill_seeded(Audio2Pose(), SEED_POSE)
    mel, ref = _pose_inputs()
    x = {"indiv_mels": torch.from_numpy(mel[:, :frames]), "ref": torch.from_numpy(ref[:, :frames]),
         "class": torch.tensor([7]), "num_frames": frames}
    golden = load_golden("sadtalker_audio2pose")
    with torch.no_grad():
        torch.manual_seed(SEED_POSE)
        out = model.test(x)
        again = model.test(x, generator=torch.Generator().manual_seed(SEED_POSE))
    assert out["pose_pred"].shape == out["pose_motion_pred"].shape == (1, frames, 6)
    assert torch.equal(out["pose_motion_pred"][:, 0], torch.zeros(1, 6))
    assert_matches(digest(out["pose_pred"].numpy()), golden[f"pose_pred_{frames}"], f"pose_pred {frames}")
    assert_matches(digest(out["pose_motion_pred"].numpy()), golden[f"pose_motion_pred_{frames}"],
                   f"pose_motion_pred {frames}")
    assert torch.equal(again["pose_pred"], out["pose_pred"])  # an explicit generator: the same draws


def test_audio2pose_style_and_seed_change_the_motion() -> None:
    model = fill_seeded(Audio2Pose(), SEED_POSE)
    mel, ref = _pose_inputs()
    x = {"indiv_mels": torch.from_numpy(mel[:, :20]), "ref": torch.from_numpy(ref[:, :20]),
         "class": torch.tensor([0]), "num_frames": 20}
    with torch.no_grad():
        a = model.test(x, generator=torch.Generator().manual_seed(1))["pose_pred"]
        b = model.test(x, generator=torch.Generator().manual_seed(2))["pose_pred"]
        c = model.test({**x, "class": torch.tensor([45])}, generator=torch.Generator().manual_seed(1))["pose_pred"]
    assert not torch.allclose(a[:, 1:], b[:, 1:]) and not torch.allclose(a[:, 1:], c[:, 1:])
    assert torch.equal(a[:, 0], b[:, 0])  # frame 0 is the source pose
