"""face3d (Deep3DFaceRecon ResNet-50): reference layout, every release container, reference outputs.

The key list ``tests/data/keys/face3d.txt.gz`` is the state dict of the reference
``ReconNetWrapper('resnet50', use_last_fc=False)``; ``tests/data/face3d.npz`` is the reference
forward on ``fill_seeded(net, 34)`` and a seeded 224x224 input (see ``tests/data/README.md``).
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

SEED = 34
RELEASE_SEED = 7


def _net() -> torch.nn.Module:
    from retalk.networks.face3d import ReconNet

    return ReconNet()


def _inputs() -> torch.Tensor:
    rng = np.random.default_rng(SEED)  # aligned face crop, RGB in [0, 1]
    return torch.from_numpy(rng.uniform(0.0, 1.0, (1, 3, 224, 224)).astype(np.float32))


def test_state_dict_equals_reference_layout() -> None:
    model = _net()
    assert_layout(model, "face3d", 332)


def test_forward_matches_reference() -> None:
    net = fill_seeded(_net(), SEED)
    with torch.no_grad():
        out = net(_inputs())
    assert out.shape == (1, 257)
    assert_matches(digest(out.numpy()), load_golden("face3d")["coeffs"], "face3d:coeffs")
    # The comparison is sharp: moving one expression bias by 0.05 breaks it.
    with torch.no_grad():
        net.final_layers[1].bias[0] += 0.05
        moved = net(_inputs())
    with pytest.raises(AssertionError):
        assert_matches(digest(moved.numpy()), load_golden("face3d")["coeffs"], "face3d:coeffs")


def test_coefficient_split_is_deep3dfacerecon_s() -> None:
    from retalk.networks.face3d import COEFF_SLICES, split_coeffs

    widths = {name: cols.stop - cols.start for name, cols in COEFF_SLICES.items()}
    assert widths == {"id": 80, "exp": 64, "tex": 80, "angle": 3, "gamma": 27, "trans": 3}
    coeffs = torch.arange(2 * 257, dtype=torch.float32).reshape(2, 257)
    parts = split_coeffs(coeffs)
    assert torch.equal(torch.cat(list(parts.values()), dim=1), coeffs)
    assert parts["exp"][0, 0] == 80 and parts["trans"][1, -1] == 257 + 256
    with pytest.raises(ValueError, match="257"):
        split_coeffs(coeffs[:, :73])


# --------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def expected_state() -> dict[str, torch.Tensor]:
    return seeded_release_state("face3d", RELEASE_SEED)


def _assert_loaded(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    from retalk.networks.face3d import ReconNet

    assert isinstance(model, ReconNet) and not model.training
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize("file,module_prefix", [
    ("face3d_pretrain_epoch_20.pth", False),  # VideoReTalking: {'net_recon': sd}
    ("face3d_pretrain_epoch_20.pth", True),
    ("epoch_20.pth", False),  # SadTalker legacy: {'net_recon': sd}
])
def test_release_files_load_strictly(tmp_path: Path, expected_state, file: str, module_prefix: bool) -> None:
    write_release("face3d", tmp_path, seed=RELEASE_SEED, file=file, module_prefix=module_prefix)
    _assert_loaded(checkpoints.load("face3d", tmp_path / file), expected_state)
    assert checkpoints.resolve("face3d", tmp_path) == tmp_path / file


def test_safetensors_twin_loads(tmp_path: Path, expected_state) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in expected_state.items()},
              str(tmp_path / "face3d_pretrain_epoch_20.safetensors"))
    _assert_loaded(checkpoints.load("face3d", tmp_path), expected_state)


@pytest.mark.parametrize("bundle", ["SadTalker_V0.0.2_256.safetensors", "SadTalker_V0.0.2_512.safetensors"])
def test_sadtalker_bundle_loads_its_face_3drecon_keys(tmp_path: Path, expected_state, bundle: str) -> None:
    from safetensors.torch import save_file

    # Other networks of the bundle sit beside face3d's keys (kp_extractor.down.weight is a
    # (3, 1, 13, 13) buffer in the release; a generator key with a clashing tail name too).
    save_file({"kp_extractor.down.weight": torch.ones(3, 1, 13, 13),
               "generator.backbone.conv1.weight": torch.zeros(2, 2)}, str(tmp_path / bundle))
    write_release("face3d", tmp_path, seed=RELEASE_SEED, file=bundle)
    _assert_loaded(checkpoints.load("face3d", tmp_path), expected_state)  # found by the folder search


def test_wrong_files_give_one_line_errors(tmp_path: Path, expected_state) -> None:
    from safetensors.torch import save_file

    # A bundle without face3d's keys (e.g. another SadTalker file renamed).
    save_file({"generator.first.conv.weight": torch.zeros(4, 3, 7, 7)},
              str(tmp_path / "SadTalker_V0.0.2_256.safetensors"))
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("face3d", tmp_path / "SadTalker_V0.0.2_256.safetensors")
    assert "\n" not in str(exc.value) and "missing keys" in str(exc.value)
    # A net_recon file from a network with another head (use_last_fc=True: a 'backbone.fc').
    state = dict(expected_state)
    state["backbone.fc.weight"] = torch.zeros(257, 2048)
    del state["final_layers.6.bias"]
    torch.save({"net_recon": state}, tmp_path / "epoch_20.pth")
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("face3d", tmp_path / "epoch_20.pth")
    message = str(exc.value)
    assert "\n" not in message
    assert "final_layers.6.bias" in message and "backbone.fc.weight" in message
