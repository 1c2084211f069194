"""retalk.checkpoints: registry, safe strict loading, clear one-line errors.

Checkpoints are written here with random weights in the released container
formats; no real release file is needed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from retalk import checkpoints
from retalk.errors import CheckpointError, RetalkError

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.networks.syncnet import SyncNetV2  # noqa: E402
from retalk.networks.wav2lip import SyncNetColor, Wav2Lip  # noqa: E402


def _random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            out[key] = torch.randn(value.shape, generator=gen) * 0.05
            if key.endswith("running_var"):
                out[key] = out[key].abs() + 0.5
        else:
            out[key] = torch.full_like(value, 7)  # num_batches_tracked
    return out


@pytest.fixture(scope="module")
def w2l_state() -> dict[str, torch.Tensor]:
    return _random_state(Wav2Lip(), seed=1)


@pytest.fixture(scope="module")
def sync_state() -> dict[str, torch.Tensor]:
    return _random_state(SyncNetV2(), seed=2)


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory: pytest.TempPathFactory, w2l_state, sync_state) -> Path:
    """A checkpoints folder laid out like a user's, files in the release formats."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.save(
        {
            "state_dict": {"module." + k: v for k, v in w2l_state.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
            "global_step": 123,
            "global_epoch": 4,
        },
        folder / "wav2lip.pth",
    )
    torch.save(dict(sync_state), folder / "syncnet_v2.model")
    expert = _random_state(SyncNetColor(), seed=3)
    torch.save({"state_dict": {"module." + k: v for k, v in expert.items()}}, folder / "lipsync_expert.pth")
    return folder


def _assert_loaded(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key].cpu(), value), key


# --------------------------------------------------------------------------- happy paths


def test_wav2lip_release_format_loads_strictly(release_dir: Path, w2l_state) -> None:
    model = checkpoints.load("wav2lip", release_dir / "wav2lip.pth")
    assert isinstance(model, Wav2Lip)
    assert not model.training
    _assert_loaded(model, w2l_state)
    with torch.no_grad():
        out = model(torch.randn(1, 1, 80, 16), torch.rand(1, 6, 96, 96))
    assert out.shape == (1, 3, 96, 96)


def test_syncnet_bare_dict_loads(release_dir: Path, sync_state) -> None:
    model = checkpoints.load("syncnet", checkpoints_dir=release_dir)
    assert isinstance(model, SyncNetV2) and not model.training
    _assert_loaded(model, sync_state)
    with torch.no_grad():
        assert model.forward_aud(torch.randn(2, 1, 13, 20)).shape == (2, 1024)


def test_lipsync_expert_loads(release_dir: Path) -> None:
    model = checkpoints.load("lipsync_expert", release_dir)  # a folder as `path`
    assert isinstance(model, SyncNetColor)
    with torch.no_grad():
        a, f = model(torch.randn(2, 1, 80, 16), torch.rand(2, 15, 48, 96))
    assert a.shape == f.shape == (2, 512)


def test_directory_resolution_env_and_default(release_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(checkpoints.ENV_VAR, str(release_dir))
    assert checkpoints.resolve("syncnet") == release_dir / "syncnet_v2.model"
    # An explicit folder beats the environment variable.
    with pytest.raises(CheckpointError, match=str(tmp_path.resolve())):
        checkpoints.resolve("syncnet", checkpoints_dir=tmp_path)
    monkeypatch.delenv(checkpoints.ENV_VAR)
    monkeypatch.chdir(tmp_path)
    assert checkpoints.default_checkpoints_dir() == Path("checkpoints")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "syncnet_v2.model").write_bytes(
        (release_dir / "syncnet_v2.model").read_bytes()
    )
    assert checkpoints.resolve("syncnet") == Path("checkpoints") / "syncnet_v2.model"


def test_wav2lip_gan_file_name_is_found(release_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "wav2lip_gan.pth").write_bytes((release_dir / "wav2lip.pth").read_bytes())
    assert checkpoints.resolve("wav2lip", tmp_path) == tmp_path / "wav2lip_gan.pth"


def test_missing_num_batches_tracked_is_filled(tmp_path: Path, sync_state) -> None:
    state = {k: v for k, v in sync_state.items() if not k.endswith("num_batches_tracked")}
    assert len(state) == len(sync_state) - 14
    torch.save(state, tmp_path / "syncnet_v2.model")
    model = checkpoints.load("syncnet", tmp_path)
    loaded = model.state_dict()
    for key in sync_state:
        if key.endswith("num_batches_tracked"):
            assert int(loaded[key]) == 0  # the network's own value, not invented
        else:
            assert torch.equal(loaded[key], sync_state[key])


def test_safetensors_accepted(tmp_path: Path, sync_state, w2l_state) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sync_state.items()}, str(tmp_path / "syncnet_v2.safetensors"))
    _assert_loaded(checkpoints.load("syncnet", tmp_path), sync_state)
    # A converted wav2lip file is flat (no 'state_dict'), possibly still prefixed.
    save_file({"module." + k: v.contiguous() for k, v in w2l_state.items()}, str(tmp_path / "w.safetensors"))
    _assert_loaded(checkpoints.load("wav2lip", tmp_path / "w.safetensors"), w2l_state)


def test_gfpgan_container_prefers_params_ema(tmp_path: Path) -> None:
    spec = checkpoints.get_spec("gfpgan")
    a, b = torch.zeros(2), torch.ones(2)
    torch.save({"params": {"x": a}, "params_ema": {"x": b}}, tmp_path / "both.pth")
    torch.save({"params": {"x": a}}, tmp_path / "params.pth")
    assert torch.equal(checkpoints.read_state_dict(spec, tmp_path / "both.pth")["x"], b)
    assert torch.equal(checkpoints.read_state_dict(spec, tmp_path / "params.pth")["x"], a)


def test_device_argument(release_dir: Path) -> None:
    model = checkpoints.load("syncnet", release_dir, device=torch.device("cpu"))
    assert all(p.device.type == "cpu" for p in model.parameters())


# --------------------------------------------------------------------------- registry


def test_registry_entries() -> None:
    expected = {"wav2lip", "lipsync_expert", "syncnet", "fid_inception", "gfpgan", "lnet", "enet", "dnet",
                "face3d", "gpen", "parsenet", "ganimation", "sadtalker_audio2exp", "sadtalker_audio2pose",
                "sadtalker_kp_extractor", "sadtalker_generator", "sadtalker_mapping"}
    assert set(checkpoints.names()) == expected
    assert checkpoints.REGISTRY["wav2lip"].files == ("wav2lip.pth", "wav2lip_gan.pth")
    assert checkpoints.REGISTRY["syncnet"].files == ("syncnet_v2.model",)
    assert checkpoints.REGISTRY["gfpgan"].state_keys == ("params_ema", "params")
    for spec in checkpoints.REGISTRY.values():
        assert spec.files and spec.source
        with pytest.raises(AttributeError):
            spec.name = "x"  # type: ignore[misc]  # frozen
    with pytest.raises(TypeError):
        checkpoints.REGISTRY["x"] = None  # type: ignore[index]  # read-only


def test_placeholders_say_not_implemented(tmp_path: Path) -> None:
    for name in [n for n in checkpoints.names() if not checkpoints.REGISTRY[n].implemented]:
        with pytest.raises(RetalkError, match="not implemented yet"):
            checkpoints.load(name, tmp_path)


def test_unknown_name() -> None:
    with pytest.raises(CheckpointError, match="unknown checkpoint name 'nope'.*wav2lip"):
        checkpoints.load("nope")


# --------------------------------------------------------------------------- errors


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("wav2lip", checkpoints_dir=tmp_path)
    text = _one_line(exc)
    assert "wav2lip.pth" in text and "wav2lip_gan.pth" in text
    assert str(tmp_path.resolve()) in text
    assert "github.com/Rudrabha/Wav2Lip" in text
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("syncnet", tmp_path / "nothere.model")
    text = _one_line(exc)
    assert "nothere.model" in text and "robots.ox.ac.uk" in text


def test_wrong_file_lists_missing_and_unexpected_keys(tmp_path: Path, sync_state) -> None:
    torch.save({"state_dict": dict(sync_state)}, tmp_path / "wav2lip.pth")
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("wav2lip", tmp_path)
    text = _one_line(exc)
    assert "302 missing keys" in text  # 352 entries, 50 counters filled
    assert "102 unexpected keys" in text
    assert "netcnnaud.0.weight" in text and "face_encoder_blocks.0.0.conv_block.0.weight" in text


def test_missing_real_tensor_is_not_filled(tmp_path: Path, sync_state) -> None:
    state = dict(sync_state)
    del state["netcnnaud.1.running_mean"]
    torch.save(state, tmp_path / "syncnet_v2.model")
    with pytest.raises(CheckpointError, match=r"1 missing keys \(netcnnaud.1.running_mean\)"):
        checkpoints.load("syncnet", tmp_path)


def test_shape_mismatch_message(tmp_path: Path, sync_state) -> None:
    state = dict(sync_state)
    state["netfcaud.3.weight"] = torch.zeros(512, 512)
    state["netfcaud.3.bias"] = torch.zeros(512)
    torch.save(state, tmp_path / "syncnet_v2.model")
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("syncnet", tmp_path)
    text = _one_line(exc)
    assert "2 shape mismatches" in text
    assert "netfcaud.3.weight: file (512, 512) vs network (1024, 512)" in text


def test_wrong_container(tmp_path: Path) -> None:
    torch.save({"model": {"a": torch.zeros(1)}, "epoch": 3}, tmp_path / "wav2lip.pth")
    with pytest.raises(CheckpointError, match="expected 'state_dict'.*found keys 'model', 'epoch'"):
        checkpoints.load("wav2lip", tmp_path)
    torch.save([torch.zeros(1)], tmp_path / "syncnet_v2.model")
    with pytest.raises(CheckpointError, match="holds a list"):
        checkpoints.load("syncnet", tmp_path)


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_file_is_corrupt(tmp_path: Path, release_dir: Path, legacy: bool) -> None:
    src = tmp_path / "full.model"
    torch.save(torch.load(release_dir / "syncnet_v2.model", weights_only=True), src,
               _use_new_zipfile_serialization=not legacy)
    data = src.read_bytes()
    (tmp_path / "syncnet_v2.model").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("syncnet", tmp_path)
    assert "corrupt" in _one_line(exc)


def test_empty_and_html_files_are_corrupt(tmp_path: Path) -> None:
    (tmp_path / "syncnet_v2.model").write_bytes(b"")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoints.load("syncnet", tmp_path)
    (tmp_path / "syncnet_v2.model").write_bytes(b"<!DOCTYPE html><html><body>quota exceeded</body></html>")
    with pytest.raises(CheckpointError, match="corrupt.*HTML page"):
        checkpoints.load("syncnet", tmp_path)
    (tmp_path / "syncnet_v2.model").unlink()
    (tmp_path / "syncnet_v2.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoints.load("syncnet", tmp_path)


class _Payload:
    """Unpickling this would create a marker file (stands in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused(tmp_path: Path, sync_state, legacy: bool) -> None:
    marker = tmp_path / "PWNED"
    state = dict(sync_state)
    torch.save({"state_dict": state, "extra": _Payload(marker)}, tmp_path / "wav2lip.pth",
               _use_new_zipfile_serialization=not legacy)
    assert not marker.exists()
    with pytest.raises(CheckpointError) as exc:
        checkpoints.load("wav2lip", tmp_path)
    text = _one_line(exc)
    assert "unsafe" in text and "open" in text
    assert not marker.exists()


# --------------------------------------------------------------------------- doctor support


def test_find_checkpoints(release_dir: Path, tmp_path: Path) -> None:
    found = checkpoints.find_checkpoints(release_dir)
    assert [f.name for f in found] == ["wav2lip", "lipsync_expert", "syncnet"]
    for _name, path, size, sha in found:
        assert path.parent == release_dir
        assert size == path.stat().st_size
        assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert all(f.sha256 == "" for f in checkpoints.find_checkpoints(release_dir, hashes=False))
    assert checkpoints.find_checkpoints(tmp_path / "absent") == []


def _spec_like(**fields) -> checkpoints.CheckpointSpec:
    base = checkpoints.get_spec("syncnet")
    from dataclasses import replace
    return replace(base, **fields)


def test_bundle_prefix_selects_and_strips(tmp_path: Path) -> None:
    """A flat bundle keeps only the keys with the prefix, without it; a per-network file is used as is."""
    spec = _spec_like(select_prefix="kp_extractor.")
    bundle = {"kp_extractor.down.weight": torch.ones(2), "generator.first.weight": torch.zeros(3),
              "kp_extractor.kp.bias": torch.full((1,), 2.0)}
    torch.save(bundle, tmp_path / "b.pth")
    got = checkpoints.read_state_dict(spec, tmp_path / "b.pth")
    assert sorted(got) == ["down.weight", "kp.bias"]
    assert float(got["kp.bias"]) == 2.0
    torch.save({"down.weight": torch.ones(2)}, tmp_path / "legacy.pth")
    assert list(checkpoints.read_state_dict(spec, tmp_path / "legacy.pth")) == ["down.weight"]


def test_drop_substrings_and_build_args(tmp_path: Path) -> None:
    spec = _spec_like(drop_substrings=("low_res",))
    torch.save({"module.a.weight": torch.ones(1), "module.low_res.b": torch.ones(1)}, tmp_path / "x.pth")
    assert list(checkpoints.read_state_dict(spec, tmp_path / "x.pth")) == ["a.weight"]
    seen = {}

    def factory(**kwargs):
        seen.update(kwargs)
        return "net"

    spec = _spec_like(factory=factory, build_args=lambda st: {"channels": int(st["w"].shape[1])})
    assert spec.build({"w": torch.zeros(4, 73, 7)}) == "net" and seen == {"channels": 73}
    seen.clear()
    assert spec.build() == "net" and seen == {}


def test_release_writer_round_trip(tmp_path: Path) -> None:
    """tests/_release.py writes what the loader accepts (wrapped, module-prefixed)."""
    from _release import seeded_release_state, write_release

    path = write_release("wav2lip", tmp_path, seed=5, module_prefix=True)
    model = checkpoints.load("wav2lip", path)
    _assert_loaded(model, seeded_release_state("wav2lip", seed=5))
