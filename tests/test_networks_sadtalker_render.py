"""SadTalker's face-renderer networks against the public reference (OpenTalker/SadTalker).

* layout: the reference modules' state dicts at the released configuration
  (``tests/data/keys/sadtalker_*.txt.gz``) equal retalk's;
* loading: random-weight files in the release containers (the multi-network ``.safetensors``
  bundle at 256 and 512, the legacy ``facevid2vid_00189-model.pth.tar``, both mapping files) load
  strictly through :func:`retalk.checkpoints.load`; a wrong file is a one-line CheckpointError;
* golden: outputs of the reference modules on seeded weights and inputs
  (``tests/data/sadtalker_*.npz``, see ``tests/data/README.md``), on narrow configurations of the
  same classes where the released one is too slow for CI;
* the generator's split path (``encode_source`` once, ``render`` per frame batch) equals ``forward``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _golden import assert_layout, check_golden, fill_seeded, read_key_list

from retalk import checkpoints
from retalk.errors import CheckpointError

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.networks.sadtalker_generator import OcclusionAwareSPADEGenerator  # noqa: E402
from retalk.networks.sadtalker_kp import KPDetector  # noqa: E402
from retalk.networks.sadtalker_mapping import MappingNet  # noqa: E402

SEED_KP, SEED_GEN, SEED_MAP = 41, 42, 43

#: Narrow key-point detector for the numbers: same class and switches as the release (anti-alias
#: ×1/4, 2-D encoder → 3-D decoder, depth 16), 3 blocks instead of 5 and at most 64 channels,
#: so that a 64×64 image works.
KP_SMALL: dict[str, Any] = {
    "block_expansion": 8, "feature_channel": 32, "num_kp": 15, "image_channel": 3, "max_features": 64,
    "reshape_channel": 1024, "reshape_depth": 16, "num_blocks": 3, "temperature": 0.1, "scale_factor": 0.25,
}
#: Narrow generator: the SPADE decoder's widths are hard-coded in the release (256 → 512 → 64),
#: so block_expansion stays 64; the source volume is 8×16 channels and the dense-motion
#: hourglass has 2 blocks of ≤ 32 channels; 64×64 images (16×16 feature maps).
GEN_SMALL: dict[str, Any] = {
    "image_channel": 3, "feature_channel": 8, "num_kp": 15, "block_expansion": 64, "max_features": 128,
    "num_down_blocks": 2, "reshape_channel": 8, "reshape_depth": 16, "num_resblocks": 2,
    "estimate_occlusion_map": True,
    "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 2, "reshape_depth": 16,
                            "compress": 2},
}


def kp_inputs() -> dict[str, np.ndarray]:
    """``image`` (2, 3, 64, 64) RGB in [0, 1]."""
    rng = np.random.default_rng(SEED_KP)
    return {"image": rng.uniform(0.0, 1.0, (2, 3, 64, 64)).astype(np.float32)}


def gen_inputs() -> dict[str, np.ndarray]:
    """``source`` (2, 3, 64, 64) in [0, 1]; ``kp_driving``, ``kp_source`` (2, 15, 3) in [-0.8, 0.8]."""
    rng = np.random.default_rng(SEED_GEN)
    source = rng.uniform(0.0, 1.0, (2, 3, 64, 64)).astype(np.float32)
    kp_source = rng.uniform(-0.8, 0.8, (2, 15, 3)).astype(np.float32)
    kp_driving = (kp_source + rng.normal(0.0, 0.1, (2, 15, 3))).astype(np.float32)
    return {"source": source, "kp_driving": kp_driving, "kp_source": kp_source}


def map_inputs(coeff_nc: int = 70) -> dict[str, np.ndarray]:
    """``window`` (2, coeff_nc, 27): 3DMM coefficients of order one."""
    rng = np.random.default_rng(SEED_MAP)
    return {"window": rng.normal(0.0, 1.0, (2, coeff_nc, 27)).astype(np.float32)}


def consistent_spectral_vectors(model: Any) -> Any:
    """Make each spectral-normed conv's stored ``u``, ``v`` a consistent pair (after :func:`fill_seeded`).

    Seeded ``u``, ``v`` are independent, so ``σ = uᵀ W v`` is near zero or negative and the image
    saturates.  Here ``u ← u / |u|`` and ``v ← Wᵀu / |Wᵀu|`` (one power-iteration half-step, in
    float64 numpy, state-dict names only), so σ = |Wᵀu| > 0.  Applied to the reference module too.
    """
    state = model.state_dict()
    with torch.no_grad():
        for key in [k for k in state if k.endswith(".weight_u")]:
            stem = key[: -len("weight_u")]
            w = state[stem + "weight_orig"].numpy().astype(np.float64)
            u = state[key].numpy().astype(np.float64)
            u = u / np.linalg.norm(u)
            v = w.reshape(w.shape[0], -1).T @ u
            state[key].copy_(torch.from_numpy(u.astype(np.float32)))
            state[stem + "weight_v"].copy_(torch.from_numpy((v / np.linalg.norm(v)).astype(np.float32)))
    return model


def small_generator(seed: int = SEED_GEN) -> OcclusionAwareSPADEGenerator:
    """The narrow generator with the golden's weights."""
    return consistent_spectral_vectors(fill_seeded(OcclusionAwareSPADEGenerator(**GEN_SMALL), seed))


@pytest.fixture(scope="module")
def small_gen() -> OcclusionAwareSPADEGenerator:
    """:func:`small_generator`, built once (about 50M weights: the decoder's widths are fixed); read-only."""
    return small_generator()


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


_check = check_golden


# ---------------------------------------------------------------- layout

LAYOUTS = {
    "sadtalker_kp_extractor": (KPDetector, {}, 75),
    "sadtalker_generator": (OcclusionAwareSPADEGenerator, {}, 386),
    "sadtalker_mapping": (MappingNet, {}, 18),
    "sadtalker_mapping_73": (MappingNet, {"coeff_nc": 73}, 18),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_state_dict_equals_reference_layout(name: str) -> None:
    cls, kwargs, entries = LAYOUTS[name]
    model = cls(**kwargs)
    assert_layout(model, name, entries)


def test_generator_spectral_norm_and_gaussian_buffer() -> None:
    gen_keys = [k for k, _, _ in read_key_list("sadtalker_generator")]
    assert sum(k.endswith(".weight_orig") for k in gen_keys) == 18
    kp = KPDetector()
    # σ = 1.5, 13 taps, normalised: the centre tap of the 2-D kernel is g(0)² / (Σ g)²
    g = np.exp(-((np.arange(13) - 6.0) ** 2) / (2 * 1.5 ** 2))
    assert kp.down.weight.shape == (3, 1, 13, 13)
    np.testing.assert_allclose(kp.down.weight[0, 0, 6, 6].item(), 1.0 / g.sum() ** 2, rtol=1e-6)


# ---------------------------------------------------------------- golden

def test_kp_detector_matches_reference() -> None:
    net = fill_seeded(KPDetector(**KP_SMALL), SEED_KP)
    with torch.no_grad():
        out = net(_t(kp_inputs()["image"]))
    assert set(out) == {"value"} and out["value"].shape == (2, 15, 3)
    _check("sadtalker_kp_small", {"value": out["value"]})


def test_generator_matches_reference(small_gen: OcclusionAwareSPADEGenerator) -> None:
    net = small_gen
    x = gen_inputs()
    with torch.no_grad():
        out = net(_t(x["source"]), kp_driving={"value": _t(x["kp_driving"])}, kp_source={"value": _t(x["kp_source"])})
    assert out["prediction"].shape == (2, 3, 64, 64)
    assert out["mask"].shape == (2, 16, 16, 16, 16) and out["occlusion_map"].shape == (2, 1, 16, 16)
    _check("sadtalker_generator_small", out)


def test_mapping_matches_reference() -> None:
    net = fill_seeded(MappingNet(), SEED_MAP)
    with torch.no_grad():
        out = net(_t(map_inputs()["window"]))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "yaw": (2, 66), "pitch": (2, 66), "roll": (2, 66), "t": (2, 3), "exp": (2, 45)}
    _check("sadtalker_mapping", out)


def test_golden_check_detects_a_changed_spectral_vector(small_gen: OcclusionAwareSPADEGenerator) -> None:
    """The stored u of one spectral-normed conv is used: changing it changes the image."""
    u = small_gen.decoder.G_middle_0.conv_1.weight_u  # (conv_0 feeds an instance norm: σ cancels there)
    saved = u.clone()
    x = gen_inputs()
    try:
        with torch.no_grad():
            u.mul_(1.05)
            out = small_gen(_t(x["source"]), kp_driving={"value": _t(x["kp_driving"])},
                            kp_source={"value": _t(x["kp_source"])})
    finally:
        with torch.no_grad():
            u.copy_(saved)
    with pytest.raises(AssertionError):
        _check("sadtalker_generator_small", out)


# ---------------------------------------------------------------- split render path

def _split_inputs(frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One 32×32 source (cheaper than the golden's 64×64), its key points, ``frames`` driving sets."""
    rng = np.random.default_rng(7)
    source = rng.uniform(0.0, 1.0, (1, 3, 32, 32)).astype(np.float32)
    ks = rng.uniform(-0.8, 0.8, (1, 15, 3)).astype(np.float32)
    kd = (ks + rng.normal(0.0, 0.1, (frames, 15, 3))).astype(np.float32)
    return _t(source), _t(kd), _t(ks)


def test_render_of_encoded_source_equals_forward(small_gen: OcclusionAwareSPADEGenerator) -> None:
    net = small_gen
    src, kd, ks = _split_inputs(2)
    src2, ks2 = src.expand(2, -1, -1, -1).contiguous(), ks.expand(2, -1, -1).contiguous()
    with torch.no_grad():
        ref = net(src2, kp_driving={"value": kd}, kp_source={"value": ks2})
        encoded = net.encode_source(src2)
        assert encoded.batch == 2 and encoded.feature_3d.shape == (2, 8, 16, 8, 8)
        split = net.render_dict(encoded, kd, ks2)
        rendered = net.render(encoded, kd, ks2)
    for key in ("prediction", "mask", "occlusion_map"):
        torch.testing.assert_close(split[key], ref[key], rtol=0, atol=0)
    torch.testing.assert_close(rendered, ref["prediction"], rtol=0, atol=0)


def test_batched_frames_of_one_source_equal_single_calls(small_gen: OcclusionAwareSPADEGenerator) -> None:
    """B frames rendered from one encoded photo (not copied) = B separate forward calls."""
    net = small_gen
    src, kd, ks = _split_inputs(3)
    with torch.no_grad():
        singles = torch.cat([net(src, kp_driving={"value": kd[i:i + 1]}, kp_source={"value": ks})["prediction"]
                             for i in range(3)])
        encoded = net.encode_source(src)
        assert encoded.batch == 1
        batched = net.render(encoded, kd, ks)
        chunked = net.render(encoded, kd, ks, max_batch=2)
    # batch-1 and batch-3 convolutions round differently in float32: ~1e-5 on [0, 1] values
    torch.testing.assert_close(batched, singles, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(chunked, singles, rtol=1e-4, atol=1e-4)
    assert (batched[1:] - singles[:-1]).abs().max() > 1e-3  # the frames do differ
    with pytest.raises(ValueError, match="must be 1 or the number of frames"):
        net.render(net.encode_source(src.expand(2, -1, -1, -1)), kd, ks)


# ---------------------------------------------------------------- loading

def _write(name: str, folder: Path, file: str | None = None, **kwargs: Any) -> Path:
    from _release import write_release

    return write_release(name, folder, file=file, **kwargs)


def _same_weights(model: torch.nn.Module, name: str, seed: int, **build: Any) -> None:
    from _release import seeded_release_state

    _equal_state(model, seeded_release_state(name, seed, **build))


def _equal_state(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    got = model.state_dict()
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def _with_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256 bundle holding the key-point detector, the generator and another network's keys."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("sadtalker")
    path = _write("sadtalker_kp_extractor", folder, "SadTalker_V0.0.2_256.safetensors", seed=1)
    _write("sadtalker_generator", folder, path.name, seed=2)
    flat = load_file(str(path))
    flat["audio2exp.netG.mapping1.weight"] = torch.zeros(64, 577)
    save_file(flat, str(path))
    return path


@pytest.mark.parametrize("size", [256, 512])
def test_bundle_loads_each_network(bundle: Path, tmp_path: Path, size: int) -> None:
    """One bundle holding several networks' keys: each name takes its own prefix (256 found in a
    folder, 512 given as a file)."""
    import shutil

    from safetensors.torch import load_file

    path = bundle
    if size == 512:
        path = Path(shutil.copy(bundle, tmp_path / "SadTalker_V0.0.2_512.safetensors"))
    flat = load_file(str(path))
    kp = checkpoints.load("sadtalker_kp_extractor", path)
    gen = checkpoints.load("sadtalker_generator", path.parent if size == 256 else path)
    _equal_state(kp, _with_prefix(flat, "kp_extractor."))
    _equal_state(gen, _with_prefix(flat, "generator."))
    assert isinstance(gen, OcclusionAwareSPADEGenerator) and not gen.training
    assert isinstance(kp, KPDetector) and not kp.training


def test_legacy_facevid2vid_file(bundle: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    flat = load_file(str(bundle))
    gen_state, kp_state = _with_prefix(flat, "generator."), _with_prefix(flat, "kp_extractor.")
    torch.save({"generator": gen_state, "kp_detector": kp_state,
                "he_estimator": {"fc_yaw.weight": torch.zeros(66, 2048)}, "epoch": 189},
               tmp_path / "facevid2vid_00189-model.pth.tar")
    _equal_state(checkpoints.load("sadtalker_generator", tmp_path), gen_state)
    _equal_state(checkpoints.load("sadtalker_kp_extractor", tmp_path), kp_state)


@pytest.mark.parametrize(("file", "coeff_nc"), [("mapping_00229-model.pth.tar", 70),
                                                ("mapping_00109-model.pth.tar", 73)])
def test_mapping_files_and_coeff_nc(tmp_path: Path, file: str, coeff_nc: int) -> None:
    path = _write("sadtalker_mapping", tmp_path, file, seed=5, coeff_nc=coeff_nc)
    assert "mapping" in torch.load(path, weights_only=True)
    net = checkpoints.load("sadtalker_mapping", tmp_path)
    assert net.first[0].weight.shape == (1024, coeff_nc, 7)
    _same_weights(net, "sadtalker_mapping", 5, coeff_nc=coeff_nc)


def test_mapping_module_prefix_and_safetensors_twin(tmp_path: Path) -> None:
    """``x.pth.tar``'s safetensors twin is ``x.safetensors`` (the double suffix removed)."""
    from safetensors.torch import save_file

    from _release import seeded_release_state
    from retalk.checkpoints import candidate_files

    assert candidate_files(checkpoints.get_spec("sadtalker_mapping"))[:2] == (
        "mapping_00229-model.safetensors", "mapping_00229-model.pth.tar")
    state = seeded_release_state("sadtalker_mapping", 6, coeff_nc=73)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "mapping_00109-model.safetensors"))
    net = checkpoints.load("sadtalker_mapping", tmp_path)
    assert net.first[0].weight.shape == (1024, 73, 7)
    _write("sadtalker_mapping", tmp_path / "dp", seed=6, module_prefix=True)
    _same_weights(checkpoints.load("sadtalker_mapping", tmp_path / "dp"), "sadtalker_mapping", 6)


def test_wrong_file_is_one_line_error(tmp_path: Path) -> None:
    path = _write("sadtalker_mapping", tmp_path, "SadTalker_V0.0.2_256.safetensors", seed=1)
    with pytest.raises(CheckpointError) as err:
        checkpoints.load("sadtalker_generator", path)
    assert "\n" not in str(err.value) and "sadtalker_generator" in str(err.value)
    with pytest.raises(CheckpointError, match="not found"):
        checkpoints.load("sadtalker_kp_extractor", tmp_path / "empty")
