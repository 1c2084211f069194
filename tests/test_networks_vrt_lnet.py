"""VideoReTalking L-Net and E-Net against the reference (OpenTalker/video-retalking ``models/``).

* Layout: the released configurations' state dicts equal the reference key lists
  (``tests/data/keys/lnet.txt.gz``, ``enet.txt.gz``), built on the meta device (no memory, fast).
* Loading: random-weight files in the release containers load strictly through
  :func:`retalk.checkpoints.load` (a narrow L-Net stands in for the released one so that the files
  stay small; the loading rules do not depend on the widths).
* Goldens: outputs of the reference modules on :func:`_golden.fill_seeded` weights (seeds 31, 32)
  and inputs from ``np.random.default_rng(seed)``, computed once outside the repository
  (``tests/data/vrt_lnet_small.npz``, ``vrt_enet.npz``; see ``tests/data/README.md``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _golden import assert_matches, digest, fill_seeded, load_golden, read_key_list

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk import checkpoints  # noqa: E402
from retalk.errors import CheckpointError  # noqa: E402
from retalk.networks import vrt_enet, vrt_lnet  # noqa: E402

#: Narrow L-Net used for the numbers and the file round trips (same class, same switches).
LNET_SMALL: dict[str, Any] = {"descriptor_nc": 64, "base_nc": 16, "max_nc": 128, "num_res_blocks": 2}

LNET_SEED = 31
ENET_SEED = 32


def _layout(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    buffers = {k for k, _ in model.named_buffers()}
    return [(k, tuple(v.shape), "buffer" if k in buffers else "param") for k, v in model.state_dict().items()]


@pytest.mark.parametrize(("name", "entries"), [("lnet", 1721), ("enet", 1785)])
def test_release_layout_equals_reference(name: str, entries: int) -> None:
    expected = read_key_list(name)
    assert len(expected) == entries
    with torch.device("meta"):
        model = vrt_lnet.LNet() if name == "lnet" else vrt_enet.ENet()
    assert _layout(model) == expected


def test_spectral_norm_layout_and_eval_formula() -> None:
    """Classic hook layout; eval uses W / (u·Wv) with the stored u, v (no power iteration)."""
    from retalk.networks.vrt_blocks import SpectralNormConv2d

    conv = SpectralNormConv2d(4, 6, 3, padding=1).eval()
    assert list(conv.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert conv.weight_v.shape == (36,)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 4, 3, 3))
    u, v = rng.standard_normal(6), rng.standard_normal(36)
    with torch.no_grad():
        conv.weight_orig.copy_(torch.from_numpy(w))
        conv.weight_u.copy_(torch.from_numpy(u))
        conv.weight_v.copy_(torch.from_numpy(v))
    sigma = u @ (w.reshape(6, -1) @ v)
    np.testing.assert_allclose(conv.normalized_weight().detach().numpy(), w / sigma, rtol=1e-5)
    conv(torch.zeros(1, 4, 5, 5))
    np.testing.assert_allclose(conv.weight_u.numpy(), u, rtol=1e-6)  # eval: buffers untouched


# ----------------------------------------------------------------------------------------------
# loading


class _SmallLNet(vrt_lnet.LNet):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**LNET_SMALL, **kwargs})


@pytest.fixture()
def small_lnet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry (and E-Net's default ``low_res``) build the narrow L-Net."""
    monkeypatch.setattr(vrt_lnet, "LNet", _SmallLNet)
    monkeypatch.setattr(vrt_enet, "LNet", _SmallLNet)


def _assert_state(model: torch.nn.Module, expected: dict[str, torch.Tensor], prefix: str = "") -> None:
    state = model.state_dict()
    for key, value in expected.items():
        assert torch.equal(state[prefix + key], value), prefix + key


@pytest.mark.parametrize("variant", ["plain", "module", "safetensors", "with_low_res"])
def test_lnet_release_loads(tmp_path: Path, small_lnet: None, variant: str) -> None:
    from _release import seeded_release_state, write_release

    expected = seeded_release_state("lnet", seed=7)
    if variant == "safetensors":
        pytest.importorskip("safetensors")
        path = write_release("lnet", tmp_path, seed=7, file="LNet.safetensors")
    else:
        path = write_release("lnet", tmp_path, seed=7, module_prefix=variant == "module")
    if variant == "with_low_res":  # the reference drops such keys; so does retalk
        blob = torch.load(path, weights_only=True)
        blob["state_dict"]["low_res.extra.weight"] = torch.zeros(2)
        torch.save(blob, path)
    model = checkpoints.load("lnet", tmp_path)
    assert isinstance(model, vrt_lnet.LNet) and not model.training
    _assert_state(model, expected)


def test_lnet_wrong_file_is_one_line_error(tmp_path: Path, small_lnet: None) -> None:
    from _release import seeded_release_state

    state = seeded_release_state("lnet", seed=1)
    state.pop("decoder.final.model.0.weight_orig")
    torch.save({"state_dict": state}, tmp_path / "LNet.pth")
    with pytest.raises(CheckpointError) as err:
        checkpoints.load("lnet", tmp_path)
    message = str(err.value)
    assert "\n" not in message and "1 missing keys" in message and "decoder.final.model.0.weight_orig" in message


@pytest.fixture(scope="module")
def enet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ENet.pth (seed 5, its own low_res.* included, as a full ENet save would) and no LNet.pth."""
    from _release import write_release

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vrt_lnet, "LNet", _SmallLNet)
        mp.setattr(vrt_enet, "LNet", _SmallLNet)
        folder = tmp_path_factory.mktemp("enet_release")
        write_release("enet", folder, seed=5, module_prefix=True)
    return folder


def test_enet_takes_low_res_from_lnet_beside_it(enet_folder: Path, tmp_path: Path, small_lnet: None) -> None:
    from _release import seeded_release_state, write_release

    os.symlink(enet_folder / "ENet.pth", tmp_path / "ENet.pth")
    write_release("lnet", tmp_path, seed=6)
    model = checkpoints.load("enet", tmp_path / "ENet.pth")
    assert isinstance(model, vrt_enet.ENet) and not model.training
    own = {k: v for k, v in seeded_release_state("enet", seed=5).items() if not k.startswith("low_res.")}
    _assert_state(model, own)
    _assert_state(model, seeded_release_state("lnet", seed=6), prefix="low_res.")


def test_enet_without_lnet_names_the_missing_file(enet_folder: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        checkpoints.load("enet", enet_folder)
    message = str(err.value)
    assert "\n" not in message
    assert "LNet.pth" in message and str(enet_folder.resolve()) in message
    assert checkpoints.get_spec("lnet").source in message


# ----------------------------------------------------------------------------------------------
# goldens


def _logits_hook(model: vrt_lnet.LNet) -> dict[str, torch.Tensor]:
    """Capture the final conv's output (the pre-sigmoid logits)."""
    box: dict[str, torch.Tensor] = {}
    model.decoder.final.model[0].register_forward_hook(lambda m, i, o: box.__setitem__("logits", o))
    return box


def _lnet_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(LNET_SEED)
    audio = rng.standard_normal((2, 1, 80, 16)).astype(np.float32)  # mel windows
    faces = rng.uniform(0.0, 1.0, (2, 6, 96, 96)).astype(np.float32)  # masked ‖ reference, BGR [0, 1]
    return torch.from_numpy(audio), torch.from_numpy(faces)


def test_lnet_matches_reference() -> None:
    net = fill_seeded(vrt_lnet.LNet(**LNET_SMALL), LNET_SEED)
    box = _logits_hook(net)
    audio, faces = _lnet_inputs()
    with torch.no_grad():
        out = net(audio, faces)
    golden = load_golden("vrt_lnet_small")
    assert_matches(digest(out.numpy()), golden["out"], "lnet:out")
    assert_matches(digest(box["logits"].numpy()), golden["logits"], "lnet:logits")


def test_lnet_golden_detects_a_changed_weight() -> None:
    net = fill_seeded(vrt_lnet.LNet(**LNET_SMALL), LNET_SEED)
    with torch.no_grad():
        net.state_dict()["decoder.res2.res0.conv1.bn_g.mlp_beta.bias"][0] += 0.05
    box = _logits_hook(net)
    with torch.no_grad():
        net(*_lnet_inputs())
    with pytest.raises(AssertionError):
        assert_matches(digest(box["logits"].numpy()), load_golden("vrt_lnet_small")["logits"], "lnet:logits")


def test_lnet_sequence_input_folds_time_into_batch() -> None:
    net = fill_seeded(vrt_lnet.LNet(**LNET_SMALL), LNET_SEED)
    rng = np.random.default_rng(3)
    audio = torch.from_numpy(rng.standard_normal((2, 2, 1, 80, 16)).astype(np.float32))
    faces = torch.from_numpy(rng.uniform(0.0, 1.0, (2, 6, 2, 48, 48)).astype(np.float32))
    with torch.no_grad():
        seq = net(audio, faces)
        frames = [net(audio[:, t], faces[:, :, t]) for t in range(2)]
    assert seq.shape == (2, 3, 2, 48, 48)
    for t in range(2):  # batched convs round differently; the frames themselves differ by O(1)
        torch.testing.assert_close(seq[:, :, t], frames[t], rtol=1e-4, atol=1e-3)
    assert (seq[:, :, 0] - seq[:, :, 1]).abs().max() > 0.1


def test_enet_noise_maps_follow_the_reference_draw_order() -> None:
    """make_noise(generator seeded s) == what the reference draws after torch.manual_seed(s)."""
    with torch.random.fork_rng():
        torch.manual_seed(11)
        drawn = [torch.empty(2, 1, s, s).normal_() for s in vrt_enet.NOISE_SIZES]
    with torch.device("meta"):
        enet = vrt_enet.ENet(lnet=vrt_lnet.LNet(**LNET_SMALL))
    maps = enet.make_noise(2, generator=torch.Generator().manual_seed(11))
    assert [tuple(m.shape) for m in maps] == [(2, 1, s, s) for s in vrt_enet.NOISE_SIZES]
    for a, b in zip(maps, drawn):
        assert torch.equal(a, b)


def test_enet_matches_reference() -> None:
    """Released E-Net widths around the narrow L-Net, B=1; the golden's noise came from torch.manual_seed(32)."""
    net = fill_seeded(vrt_enet.ENet(lnet=vrt_lnet.LNet(**LNET_SMALL)), ENET_SEED)
    rng = np.random.default_rng(ENET_SEED)
    audio = torch.from_numpy(rng.standard_normal((1, 1, 80, 16)).astype(np.float32))
    faces = torch.from_numpy(rng.uniform(0.0, 1.0, (1, 6, 384, 384)).astype(np.float32))
    gt = torch.from_numpy(rng.uniform(0.0, 1.0, (1, 3, 384, 384)).astype(np.float32))
    with pytest.raises(ValueError, match="4 maps"):
        net(audio, faces, gt, noise=[])
    noise = net.make_noise(1, generator=torch.Generator().manual_seed(ENET_SEED))
    with torch.no_grad():
        out, low_res = net(audio, faces, gt, noise=noise)
    assert out.shape == (1, 3, 384, 384) and low_res.shape == (1, 3, 96, 96)
    golden = load_golden("vrt_enet")
    assert_matches(digest(out.numpy()), golden["out"], "enet:out")
    assert_matches(digest(low_res.numpy()), golden["low_res"], "enet:low_res")
