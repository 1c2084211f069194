"""Shapes and calling conventions of the Wav2Lip-family and SyncNet networks (random weights).

The full state-dict layouts and outputs against the references are in test_network_goldens.py."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.networks.syncnet import SyncNetV2  # noqa: E402
from retalk.networks.wav2lip import SyncNetColor, Wav2Lip  # noqa: E402


@pytest.fixture(scope="module")
def wav2lip() -> Wav2Lip:
    torch.manual_seed(0)
    return Wav2Lip().eval()


@pytest.fixture(scope="module")
def expert() -> SyncNetColor:
    torch.manual_seed(0)
    return SyncNetColor().eval()


@pytest.fixture(scope="module")
def syncnet() -> SyncNetV2:
    torch.manual_seed(0)
    return SyncNetV2().eval()


def _count(model: torch.nn.Module) -> tuple[int, int, int]:
    sd = model.state_dict()
    counters = sum(k.endswith("num_batches_tracked") for k in sd)
    return len(sd), counters, sum(v.numel() for v in sd.values())


def test_state_dict_sizes_match_release(wav2lip: Wav2Lip, expert: SyncNetColor, syncnet: SyncNetV2) -> None:
    assert _count(wav2lip) == (352, 50, 36_320_837)
    assert _count(syncnet) == (102, 14, 13_640_270)
    assert _count(expert) == (217, 31, 16_449_183)


def test_some_release_keys(wav2lip: Wav2Lip, expert: SyncNetColor, syncnet: SyncNetV2) -> None:
    w = wav2lip.state_dict()
    assert tuple(w["face_encoder_blocks.0.0.conv_block.0.weight"].shape) == (16, 6, 7, 7)
    assert tuple(w["face_decoder_blocks.1.0.conv_block.0.weight"].shape) == (1024, 512, 3, 3)
    assert tuple(w["audio_encoder.12.conv_block.1.running_var"].shape) == (512,)
    assert tuple(w["output_block.1.weight"].shape) == (3, 32, 1, 1)
    e = expert.state_dict()
    assert tuple(e["face_encoder.1.conv_block.0.weight"].shape) == (64, 32, 5, 5)
    assert tuple(e["audio_encoder.13.conv_block.0.weight"].shape) == (512, 512, 1, 1)
    s = syncnet.state_dict()
    assert tuple(s["netcnnaud.18.weight"].shape) == (512, 256, 5, 4)
    assert tuple(s["netcnnlip.0.weight"].shape) == (96, 3, 5, 7, 7)
    assert tuple(s["netfcaud.3.weight"].shape) == (1024, 512)


def test_wav2lip_forward_4d(wav2lip: Wav2Lip) -> None:
    with torch.no_grad():
        out = wav2lip(torch.randn(1, 1, 80, 16), torch.rand(1, 6, 96, 96))
    assert out.shape == (1, 3, 96, 96)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_wav2lip_forward_5d_folds_time(wav2lip: Wav2Lip) -> None:
    audio = torch.randn(2, 2, 1, 80, 16)  # (B, T, 1, 80, 16)
    faces = torch.rand(2, 6, 2, 96, 96)  # (B, C, T, H, W)
    with torch.no_grad():
        out = wav2lip(audio, faces)
        assert out.shape == (2, 3, 2, 96, 96)
        for t in range(2):
            step = wav2lip(audio[:, t], faces[:, :, t])
            torch.testing.assert_close(out[:, :, t], step, rtol=1e-5, atol=1e-5)


def test_expert_embeddings(expert: SyncNetColor) -> None:
    with torch.no_grad():
        a, f = expert(torch.randn(3, 1, 80, 16), torch.rand(3, 15, 48, 96))
    assert a.shape == f.shape == (3, 512)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(f.norm(dim=1), torch.ones(3))


def test_syncnet_streams(syncnet: SyncNetV2) -> None:
    with torch.no_grad():
        aud = syncnet.forward_aud(torch.randn(2, 1, 13, 20))
        video = torch.rand(1, 3, 5, 224, 224) * 255
        lip = syncnet.forward_lip(video)
        feat = syncnet.forward_lipfeat(video)
        both = syncnet(torch.randn(1, 1, 13, 20), video)
    assert aud.shape == (2, 1024)
    assert lip.shape == (1, 1024)
    assert feat.shape == (1, 512)
    assert both[0].shape == both[1].shape == (1, 1024)
    torch.testing.assert_close(both[1], lip)


def test_networks_package_exports() -> None:
    import retalk.networks as nets

    assert nets.Wav2Lip is Wav2Lip
    assert nets.SyncNetV2 is SyncNetV2
    with pytest.raises(AttributeError):
        _ = nets.NoSuchNetwork
