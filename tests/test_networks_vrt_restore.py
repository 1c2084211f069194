"""VideoReTalking's restoration networks (GPEN-BFR-512, ParseNet, GANimation) against their references.

* layout: the reference modules' state dicts (``tests/data/keys/{gpen_bfr_512,parsenet,ganimation}.txt.gz``,
  dumped once from OpenTalker/video-retalking ``third_part``) equal retalk's at the released configuration;
* loading: random-weight files in the release containers load strictly through ``retalk.checkpoints.load``;
* golden: outputs on seeded weights equal what the reference modules computed once
  (``tests/data/{gpen_small,parsenet_small,ganimation}.npz``; see ``tests/data/README.md``).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _golden import assert_layout, check_golden, fill_seeded

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk import checkpoints  # noqa: E402
from retalk.errors import CheckpointError  # noqa: E402

#: Narrow configurations used for the numbers (the layout test uses the released ones).
GPEN_SMALL = {"size": 64, "style_dim": 32, "n_mlp": 2, "channel_multiplier": 1, "narrow": 0.125}
PARSENET_SMALL = {"in_size": 64, "out_size": 64, "min_feat_size": 16, "base_ch": 16, "parsing_ch": 19,
                  "res_depth": 2, "relu_type": "LeakyReLU", "norm_type": "bn", "ch_range": (8, 32)}


def _gpen_512() -> torch.nn.Module:
    from retalk.networks.gpen import FullGenerator

    return FullGenerator(512, 512, 8, channel_multiplier=2, narrow=1)


def _parsenet_512() -> torch.nn.Module:
    from retalk.networks.parsenet import ParseNet

    return ParseNet(512, 512, 32, 64, 19, norm_type="bn", relu_type="LeakyReLU", ch_range=(32, 256))


def _ganimation() -> torch.nn.Module:
    from retalk.networks.ganimation import SplitGenerator

    return SplitGenerator(3, 17, 64, norm="instance", n_blocks=6)


LAYOUTS: dict[str, tuple[Callable[[], torch.nn.Module], int, int]] = {  # key list → (builder, entries, buffers)
    "gpen_bfr_512": (_gpen_512, 163, 21),
    "parsenet": (_parsenet_512, 238, 3 * 36),
    "ganimation": (_ganimation, 36, 0),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_state_dict_equals_reference_layout(name: str) -> None:
    build, entries, n_buffers = LAYOUTS[name]
    model = build()
    buffers = assert_layout(model, name, entries)
    assert len(buffers) == n_buffers


def test_gpen_stored_kernels_start_as_the_binomial_blur() -> None:
    """Fresh GPEN blur kernels are [1,3,3,1]⊗[1,3,3,1]/64 (×4 after a ×2 upsampling): the released values."""
    model = _gpen_512()
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    base = np.outer(taps, taps) / 64.0
    kernels = {k: v.numpy() for k, v in model.state_dict().items() if k.endswith("kernel")}
    assert len(kernels) == 21
    for key, value in kernels.items():
        gain = 4.0 if key.startswith("generator.") else 1.0  # upsampling blurs vs encoder blurs
        np.testing.assert_allclose(value, gain * base, rtol=1e-7, err_msg=key)


_check = check_golden


def test_gpen_matches_reference() -> None:
    from retalk.networks.gpen import FullGenerator

    net = fill_seeded(FullGenerator(**GPEN_SMALL), 35)
    x = np.random.default_rng(35).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        image, latent = net(torch.from_numpy(x), return_latents=True)
    assert image.shape == (2, 3, 64, 64) and latent.shape == (2, 10, 32)
    _check("gpen_small", {"image": image, "latent": latent})
    with torch.no_grad():
        again, none = net(torch.from_numpy(x))
    assert none is None and torch.equal(again, image)  # deterministic: encoder features are the noise


def test_parsenet_matches_reference() -> None:
    from retalk.networks.parsenet import ParseNet

    net = fill_seeded(ParseNet(**PARSENET_SMALL), 36)
    x = np.random.default_rng(36).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        mask, image = net(torch.from_numpy(x))
    assert mask.shape == (2, 19, 64, 64) and image.shape == (2, 3, 64, 64)
    _check("parsenet_small", {"mask": mask, "image": image})


def test_ganimation_matches_reference() -> None:
    net = fill_seeded(_ganimation(), 37)
    rng = np.random.default_rng(37)
    img = rng.uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    au = rng.uniform(0, 1, (1, 17)).astype(np.float32)
    with torch.no_grad():
        color, attention, features = net(torch.from_numpy(img), torch.from_numpy(au))
    assert color.shape == (1, 3, 128, 128) and attention.shape == (1, 1, 128, 128)
    assert float(attention.min()) >= 0.0 and float(attention.max()) <= 1.0
    _check("ganimation", {"color": color, "attention": attention, "features": features})


# --------------------------------------------------------------------------- loading


def _assert_loaded(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key].cpu(), value), key


def test_gpen_release_loads_strictly(tmp_path: Path) -> None:
    from _release import write_release

    from retalk.networks.gpen import FullGenerator

    path = write_release("gpen", tmp_path, seed=35)
    assert path.name == "GPEN-BFR-512.pth"
    expected = torch.load(path, weights_only=True)
    model = checkpoints.load("gpen", tmp_path)  # found by its release name in the folder
    assert isinstance(model, FullGenerator) and not model.training
    _assert_loaded(model, expected)


@pytest.mark.parametrize("name", ["parsenet", "ganimation"])
@pytest.mark.parametrize("variant", ["bare", "module", "safetensors"])
def test_parsenet_and_ganimation_release_variants_load(tmp_path: Path, name: str, variant: str) -> None:
    from _release import seeded_release_state, write_release

    spec = checkpoints.get_spec(name)
    file = spec.files[0].rsplit(".", 1)[0] + ".safetensors" if variant == "safetensors" else None
    path = write_release(name, tmp_path, seed=36, file=file, module_prefix=variant == "module")
    model = checkpoints.load(name, path)
    _assert_loaded(model, seeded_release_state(name, seed=36))


def test_ganimation_drops_stray_norm_statistics(tmp_path: Path) -> None:
    """The reference keeps only keys its model has; instance-norm statistics from old saves are dropped."""
    from _release import seeded_release_state

    state = seeded_release_state("ganimation", seed=37)
    extra = dict(state, **{"model.1.running_mean": torch.zeros(64), "model.1.running_var": torch.ones(64)})
    torch.save(extra, tmp_path / "30_net_gen.pth")
    _assert_loaded(checkpoints.load("ganimation", tmp_path), state)


def test_wrong_files_are_one_line_errors(tmp_path: Path) -> None:
    from _release import write_release

    gan = write_release("ganimation", tmp_path / "gan", seed=1)
    with pytest.raises(CheckpointError, match=r"does not fit the 'parsenet' network ParseNet") as err:
        checkpoints.load("parsenet", gan)
    assert "\n" not in str(err.value)
    narrow = write_release("gpen", tmp_path / "narrow", seed=1, narrow=0.25)  # same keys, other widths
    with pytest.raises(CheckpointError, match=r"shape mismatches") as err:
        checkpoints.load("gpen", narrow)
    assert "\n" not in str(err.value)


def test_gpen_generator_alone_draws_noise_of_the_right_width() -> None:
    """Without encoder features, every concatenated noise map has the conv's width (random, so outputs differ)."""
    from retalk.networks.gpen import FullGenerator

    generator = fill_seeded(FullGenerator(**GPEN_SMALL), 35).generator
    style = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 32)).astype(np.float32))
    torch.manual_seed(0)
    with torch.no_grad():
        first, _ = generator([style])
        second, _ = generator([style])
    assert first.shape == (1, 3, 64, 64) and not torch.equal(first, second)
