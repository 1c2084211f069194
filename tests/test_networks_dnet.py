"""VideoReTalking D-Net: reference layout, the DNet.pt container, reference outputs.

``tests/data/keys/dnet.txt.gz`` is the state dict of the reference ``models/DNet.py`` ``DNet()``;
``tests/data/dnet.npz`` holds the reference forward's three outputs on ``fill_seeded(net, 33)``
with a seeded 256x256 source and a (1, 73, 26) coefficient window (see ``tests/data/README.md``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _golden import assert_matches, digest, fill_seeded, load_golden, read_key_list
from _release import seeded_release_state, write_release

from retalk import checkpoints
from retalk.errors import CheckpointError

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

SEED = 33
RELEASE_SEED = 8


def _net() -> torch.nn.Module:
    from retalk.networks.vrt_dnet import DNet

    return DNet()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(SEED)
    image = rng.uniform(-1.0, 1.0, (1, 3, 256, 256)).astype(np.float32)  # RGB in [-1, 1]
    coeffs = rng.standard_normal((1, 73, 26)).astype(np.float32)  # 26-frame coefficient window
    return torch.from_numpy(image), torch.from_numpy(coeffs)


@pytest.fixture(scope="module")
def seeded_net() -> torch.nn.Module:
    return fill_seeded(_net(), SEED)


def test_state_dict_equals_reference_layout() -> None:
    expected = read_key_list("dnet")
    assert len(expected) == 304
    model = _net()
    state = model.state_dict()
    assert {(k, tuple(v.shape)) for k, v in state.items()} == {(k, s) for k, s, _ in expected}
    assert len(state) == len(expected)
    assert all(kind == "param" for _, _, kind in expected)
    assert not list(model.buffers())


def test_forward_matches_reference(seeded_net: torch.nn.Module) -> None:
    image, coeffs = _inputs()
    with torch.no_grad():
        out = seeded_net(image, coeffs)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "flow_field": (1, 2, 64, 64), "warp_image": (1, 3, 256, 256), "fake_image": (1, 3, 256, 256)}
    golden = load_golden("dnet")
    assert sorted(golden) == sorted(out)
    for key, value in out.items():
        assert_matches(digest(value.numpy()), golden[key], f"dnet:{key}")


def test_warp_stage_skips_the_editing_net(seeded_net: torch.nn.Module) -> None:
    image, coeffs = _inputs()
    with torch.no_grad():
        out = seeded_net(image, coeffs, stage="warp")
    assert sorted(out) == ["flow_field", "warp_image"]
    assert_matches(digest(out["warp_image"].numpy()), load_golden("dnet")["warp_image"], "dnet:warp_image")


def test_first_branch_of_fine_res_blocks_is_dead(seeded_net: torch.nn.Module) -> None:
    """The reference overwrites conv1/norm1's result: changing them must not change the output,
    while changing norm2 must.  (64x64 input: the network is fully convolutional.)"""
    image, coeffs = _inputs()
    image = image[:, :, ::4, ::4].contiguous()
    block = seeded_net.editing_net.decoder.res2.res0
    with torch.no_grad():
        before = seeded_net(image, coeffs)["fake_image"]
        saved = block.conv1.weight.clone(), block.norm1.mlp_beta.bias.clone(), block.norm2.mlp_beta.bias.clone()
        block.conv1.weight.normal_()
        block.norm1.mlp_beta.bias.add_(0.5)
        unchanged = seeded_net(image, coeffs)["fake_image"]
        block.norm2.mlp_beta.bias.add_(0.5)
        changed = seeded_net(image, coeffs)["fake_image"]
        block.conv1.weight.copy_(saved[0])
        block.norm1.mlp_beta.bias.copy_(saved[1])
        block.norm2.mlp_beta.bias.copy_(saved[2])
    assert torch.equal(before, unchanged)
    assert not torch.allclose(before, changed, atol=1e-3)


def test_flow_grid_and_warp_conventions() -> None:
    """The grid spans [-1, 1] corner to corner (pixel i at 2i/(n-1) - 1), one flow pixel moves it
    by 2/(n-1), and grid_sample reads it with align_corners=False and zero padding."""
    from retalk.networks.vrt_dnet import flow_to_deformation, warp_image

    grid = flow_to_deformation(torch.zeros(1, 2, 4, 5))
    assert torch.allclose(grid[0, 0, :, 0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    assert torch.allclose(grid[0, :, 0, 1], torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]))
    # One pixel of flow along x moves the sampling point by 2 / (w - 1) in grid units.
    shifted = flow_to_deformation(torch.cat([torch.ones(1, 1, 4, 5), torch.zeros(1, 1, 4, 5)], 1))
    assert torch.allclose(shifted[..., 0] - grid[..., 0], torch.full((1, 4, 5), 0.5))
    image = torch.rand(1, 3, 8, 8)
    warped = warp_image(image, flow_to_deformation(torch.zeros(1, 2, 8, 8)))
    # With align_corners=False the grid point (-1, -1) is the outer corner of pixel (0, 0), half a
    # pixel outside its centre on both axes: a quarter of that pixel plus three zero-padded ones.
    assert torch.allclose(warped[0, :, 0, 0], image[0, :, 0, 0] * 0.25)


# --------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def expected_state() -> dict[str, torch.Tensor]:
    return seeded_release_state("dnet", RELEASE_SEED)


def _assert_loaded(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    from retalk.networks.vrt_dnet import DNet

    assert isinstance(model, DNet) and not model.training
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_release_file_loads_strictly(tmp_path: Path, expected_state) -> None:
    write_release("dnet", tmp_path, seed=RELEASE_SEED)  # {'net_G_ema': sd} in DNet.pt
    assert checkpoints.resolve("dnet", tmp_path) == tmp_path / "DNet.pt"
    _assert_loaded(checkpoints.load("dnet", tmp_path), expected_state)


def test_training_checkpoint_uses_net_g_ema(tmp_path: Path, expected_state) -> None:
    """PIRenderer-style training files also hold 'net_G' (non-averaged) and optimiser state."""
    torch.save({"net_G": {k: torch.zeros_like(v) for k, v in expected_state.items()},
                "net_G_ema": expected_state, "epoch": 3}, tmp_path / "DNet.pt")
    _assert_loaded(checkpoints.load("dnet", tmp_path / "DNet.pt"), expected_state)


def test_module_prefixed_and_safetensors_variants(tmp_path: Path, expected_state) -> None:
    from safetensors.torch import save_file

    write_release("dnet", tmp_path / "a", seed=RELEASE_SEED, module_prefix=True)
    _assert_loaded(checkpoints.load("dnet", tmp_path / "a" / "DNet.pt"), expected_state)
    (tmp_path / "b").mkdir()
    save_file({k: v.contiguous() for k, v in expected_state.items()}, str(tmp_path / "b" / "DNet.safetensors"))
    _assert_loaded(checkpoints.load("dnet", tmp_path / "b"), expected_state)


def test_wrong_files_give_one_line_errors(tmp_path: Path, expected_state) -> None:
    torch.save({"net_recon": {"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}}, tmp_path / "DNet.pt")
    with pytest.raises(CheckpointError, match="expected 'net_G_ema'.*'net_recon'") as exc:
        checkpoints.load("dnet", tmp_path / "DNet.pt")
    assert "\n" not in str(exc.value)
    # A PIRenderer D-Net with a 70-channel mapping net (no crop parameters) does not fit.
    state = dict(expected_state)
    state["mapping_net.first.0.weight"] = torch.zeros(256, 70, 7)
    torch.save({"net_G_ema": state}, tmp_path / "DNet.pt")
    with pytest.raises(CheckpointError, match=r"1 shape mismatches \(mapping_net.first.0.weight") as exc:
        checkpoints.load("dnet", tmp_path / "DNet.pt")
    assert "\n" not in str(exc.value)
