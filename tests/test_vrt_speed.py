"""The VideoReTalking networks as the engine runs them on a CPU (channels-last, ParseNet's parsing head only,
TorchInductor-compiled) still give the reference implementations' outputs: the committed golden digests of the
plain ports (computed once by the reference code, see ``tests/data/README.md``) are checked again through
the fast wrappers."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from _golden import GFPGAN_SMALL, assert_matches, check_golden, digest, fill_seeded, load_golden, seeded_inputs

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.networks import vrt_enet, vrt_lnet  # noqa: E402
from retalk.networks.stylegan2_ops import make_kernel, upfirdn2d  # noqa: E402
from retalk.networks.vrt_speed import ChannelsLast, ParseLogits, compile_network  # noqa: E402

GPEN_SMALL = {"size": 64, "style_dim": 32, "n_mlp": 2, "channel_multiplier": 1, "narrow": 0.125}
PARSENET_SMALL = {"in_size": 64, "out_size": 64, "min_feat_size": 16, "base_ch": 16, "parsing_ch": 19,
                  "res_depth": 2, "relu_type": "LeakyReLU", "norm_type": "bn", "ch_range": (8, 32)}


def _gpen_small() -> torch.nn.Module:
    from retalk.networks.gpen import FullGenerator

    return fill_seeded(FullGenerator(**GPEN_SMALL), 35)


def _gpen_input() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(35).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32))


def test_fir_filter_of_an_impulse_is_its_kernel_per_channel() -> None:
    """The depthwise FIR filter: an impulse in every channel comes out as the (flipped) kernel, channels apart."""
    kernel = torch.outer(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 0.0, 0.0, 5.0]))
    x = torch.zeros(2, 3, 9, 9)
    x[:, :, 4, 4] = torch.tensor([1.0, 2.0, -1.0])
    out = upfirdn2d(x, kernel, pad=(2, 1))
    assert out.shape == (2, 3, 9, 9)
    for c, scale in enumerate((1.0, 2.0, -1.0)):
        torch.testing.assert_close(out[1, c, 3:7, 3:7], scale * kernel, rtol=0, atol=0)  # a true convolution
        assert float(out[1, c].abs().sum()) == pytest.approx(abs(scale) * float(kernel.sum()))
    up = upfirdn2d(torch.ones(1, 2, 4, 4), make_kernel((1, 3, 3, 1)) * 4, up=2, pad=(2, 1))
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.ones(1, 2, 4, 4))  # x2 upsampling keeps a constant


def test_channels_last_gpen_matches_reference() -> None:
    net = ChannelsLast(_gpen_small())
    with torch.no_grad():
        image, latent = net(_gpen_input(), return_latents=True)
    assert net.net.ecd0[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    check_golden("gpen_small", {"image": image, "latent": latent})


def test_parse_logits_channels_last_matches_reference() -> None:
    from retalk.networks.parsenet import ParseNet

    plain = fill_seeded(ParseNet(**PARSENET_SMALL), 36)
    net = ChannelsLast(ParseLogits(plain))
    x = torch.from_numpy(np.random.default_rng(36).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32))
    with torch.no_grad():
        (mask,) = net(x)
        image = plain(x)[1]
    check_golden("parsenet_small", {"mask": mask, "image": image})


def test_channels_last_gfpgan_matches_reference() -> None:
    from retalk.networks.gfpgan import GFPGANv1Clean

    net = ChannelsLast(fill_seeded(GFPGANv1Clean(**GFPGAN_SMALL), 4))
    x = seeded_inputs("gfpgan_small")
    with torch.no_grad():
        image, rgbs = net(torch.from_numpy(x["face"]), return_rgb=True, randomize_noise=False)
    check_golden("gfpgan_small", {"image": image, **{f"rgb{r.shape[-1]}": r for r in rgbs}})


def test_channels_last_enet_matches_reference() -> None:
    from test_networks_vrt_lnet import ENET_SEED, LNET_SMALL

    net = ChannelsLast(fill_seeded(vrt_enet.ENet(lnet=vrt_lnet.LNet(**LNET_SMALL)), ENET_SEED))
    rng = np.random.default_rng(ENET_SEED)
    audio = torch.from_numpy(rng.standard_normal((1, 1, 80, 16)).astype(np.float32))
    faces = torch.from_numpy(rng.uniform(0.0, 1.0, (1, 6, 384, 384)).astype(np.float32))
    gt = torch.from_numpy(rng.uniform(0.0, 1.0, (1, 3, 384, 384)).astype(np.float32))
    noise = net.net.make_noise(1, generator=torch.Generator().manual_seed(ENET_SEED))
    with torch.no_grad():
        out, low_res = net(audio, faces, gt, noise=noise)
    golden = load_golden("vrt_enet")
    assert_matches(digest(out.numpy()), golden["out"], "enet:out")
    assert_matches(digest(low_res.numpy()), golden["low_res"], "enet:low_res")


def test_compiled_gpen_matches_reference() -> None:
    """TorchInductor (constant-folded weights, fused element-wise loops) on the small GPEN: the reference's digest,
    compiled once however it is called afterwards (no_grad or inference mode, NCHW or strided input)."""
    x = _gpen_input()
    net = ChannelsLast(_gpen_small())
    seconds = compile_network(net, lambda n: n(x), "gpen test")
    if not net.compiled:
        pytest.skip("torch.compile is not available here (no C++ compiler?)")
    assert seconds > 0
    from torch._dynamo import config as dynamo_config

    with dynamo_config.patch(error_on_recompile=True):  # one compile serves every caller
        with torch.no_grad():
            image, _ = net(x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2))
        with torch.inference_mode():
            again, _ = net(x)
    with torch.no_grad():
        _, latent = _gpen_small()(x, return_latents=True)
    check_golden("gpen_small", {"image": image, "latent": latent})
    assert torch.equal(again, image)
    from torch._dynamo.eval_frame import OptimizedModule

    compiled = net.__dict__["_compiled"]
    assert isinstance(compiled, OptimizedModule)


def test_compile_failure_falls_back_to_the_eager_network(caplog: pytest.LogCaptureFixture) -> None:
    net = ChannelsLast(torch.nn.Conv2d(3, 4, 3))

    def broken(net: torch.nn.Module) -> None:
        raise RuntimeError("no compiler here")

    with caplog.at_level(logging.WARNING):
        compile_network(net, broken, "test net")
    assert not net.compiled
    assert "no compiler here" in caplog.text and "uncompiled" in caplog.text


def test_engine_compiles_only_on_the_cpu_and_for_long_clips() -> None:
    from retalk.engines.videoretalking.speed import COMPILE_MIN_FRAMES, should_compile

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert should_compile(None, cpu, COMPILE_MIN_FRAMES) and not should_compile(None, cpu, COMPILE_MIN_FRAMES - 1)
    assert not should_compile(None, gpu, 10_000) and not should_compile(True, gpu, 10_000)
    assert should_compile(True, cpu, 1) and not should_compile(False, cpu, 10_000)


def test_engine_cpu_networks_keep_the_calls_and_outputs() -> None:
    """The stand-in networks wrapped for the CPU answer the engine's calls with the same values."""
    import _vrt_engine_standins as standins

    from retalk.engines.videoretalking.speed import cpu_networks

    nets = standins.networks()
    fast, spent = cpu_networks(nets, compile_them=False)
    assert spent == 0.0 and fast.face3d is nets.face3d
    x = torch.rand(1, 3, 512, 512) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(fast.gpen(x)[0], nets.gpen(x)[0], rtol=0, atol=0)
        torch.testing.assert_close(fast.parsenet(x)[0], nets.parsenet(x)[0], rtol=0, atol=0)
    crops = np.random.default_rng(0).integers(0, 256, (1, 512, 512, 3), dtype=np.uint8)
    np.testing.assert_array_equal(fast.restorer.run_network(crops), nets.restorer.run_network(crops))
    assert fast.restorer.net is not nets.restorer.net and fast.restorer.batch_size == nets.restorer.batch_size
