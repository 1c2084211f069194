"""The SPADE decoder's fast path (``retalk.networks.sadtalker_spade_fast``) against torch's own ops and the
release's op sequence (``SPADEDecoder.forward_plain``), and the CPU allocator setting of the renderer."""
from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")
import torch.nn.functional as F  # noqa: E402
from _golden import fill_seeded  # noqa: E402

from retalk.networks.sadtalker_spade import SPADEDecoder  # noqa: E402
from retalk.networks.sadtalker_spade_fast import instance_norm, phase_kernels, upsampled_conv3x3  # noqa: E402


def _cl(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsampled_conv_equals_conv_of_the_nearest_upsampling(factor: int, channels_last: bool) -> None:
    g = torch.Generator().manual_seed(factor)
    seg = torch.randn(2, 5, 6, 7, generator=g)
    weight, bias = torch.randn(4, 5, 3, 3, generator=g), torch.randn(4, generator=g)
    if channels_last:
        seg = _cl(seg)
    expected = F.conv2d(F.interpolate(seg, scale_factor=factor, mode="nearest"), weight, bias, padding=1)
    got = upsampled_conv3x3(seg, phase_kernels(weight, factor), bias, factor)
    assert got.shape == (2, 4, 6 * factor, 7 * factor)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_phase_kernels_hold_fewer_taps() -> None:
    """×2: four 2×2 kernels (16 taps per 2×2 cell against 36); ×4: nine kernels, 25 taps against 144."""
    w = torch.ones(1, 1, 3, 3)
    two = phase_kernels(w, 2)
    assert sorted(two) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(k.shape[2:] == (2, 2) for _, k in two.values())
    four = phase_kernels(w, 4)
    assert len(four) == 9 and sum(k.shape[2] * k.shape[3] for _, k in four.values()) == 25
    for (pad, k) in four.values():  # the taps of an all-ones kernel add up to the 9 original ones
        assert float(k.sum()) == 9.0 and len(pad) == 4


@pytest.mark.parametrize("channels_last", [False, True])
def test_instance_norm_keeps_the_layout(channels_last: bool) -> None:
    x = torch.randn(2, 6, 5, 4, generator=torch.Generator().manual_seed(3)) * 3 + 1
    if channels_last:
        x = _cl(x)
    got = instance_norm(x, 1e-5)
    torch.testing.assert_close(got, F.instance_norm(x.contiguous(), eps=1e-5), rtol=1e-5, atol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.fixture(scope="module")
def decoder() -> SPADEDecoder:
    from test_networks_sadtalker_render import consistent_spectral_vectors

    return consistent_spectral_vectors(fill_seeded(SPADEDecoder(), 42)).eval()


@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_decoder_equals_the_release_op_sequence(decoder: SPADEDecoder, channels_last: bool) -> None:
    from retalk.sadtalker.render import set_channels_last

    feature = torch.randn(2, 256, 8, 8, generator=torch.Generator().manual_seed(5))
    try:
        set_channels_last(decoder, channels_last)
        x = _cl(feature) if channels_last else feature
        with torch.inference_mode():
            plain, fast = decoder.forward_plain(x), decoder(x)
    finally:
        set_channels_last(decoder, False)
    assert fast.shape == (2, 3, 32, 32)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    assert float(plain.std()) > 0.01  # not a saturated picture


def test_fast_decoder_under_autocast_is_no_less_accurate(decoder: SPADEDecoder) -> None:
    """Under reduced-precision autocast (bf16 on the CPU, as fp16 on CUDA) the fast path keeps its
    normalisations and sums in float32: no further from float32 than the release's op sequence is."""
    feature = torch.randn(1, 256, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        exact = decoder.forward_plain(feature)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain, fast = decoder.forward_plain(feature), decoder(feature)
    assert fast.shape == plain.shape and bool(torch.isfinite(fast).all())
    err_plain = float((plain.float() - exact).abs().max())
    err_fast = float((fast.float() - exact).abs().max())
    assert 0 < err_fast <= 1.5 * err_plain


def test_fast_decoder_sees_changed_weights(decoder: SPADEDecoder) -> None:
    """Derived kernels are cached; an in-place change of a weight or spectral vector is seen at the next call."""
    feature = torch.randn(1, 256, 8, 8, generator=torch.Generator().manual_seed(6))
    shared = decoder.up_1.norm_1.mlp_shared[0].weight
    u = decoder.G_middle_2.conv_1.weight_u
    saved = shared.detach().clone(), u.detach().clone()
    try:
        with torch.inference_mode():
            before = decoder(feature)
        with torch.no_grad():
            shared.mul_(1.5)
            u.mul_(1.1)
        with torch.inference_mode():
            after, plain = decoder(feature), decoder.forward_plain(feature)
    finally:
        with torch.no_grad():
            shared.copy_(saved[0])
            u.copy_(saved[1])
    assert float((after - before).abs().max()) > 1e-3
    torch.testing.assert_close(after, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt: Linux only")
def test_keep_freed_memory_stops_page_faults_of_reused_blocks() -> None:
    import resource

    from retalk.sadtalker.cpu_memory import keep_freed_memory

    def faults() -> int:
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):  # 64 MB allocated, written, freed
            np.ones(16 * 2**20, np.float32).sum()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

    if not keep_freed_memory():
        pytest.skip("not glibc")
    faults()  # the heap grows once
    assert faults() < 1000  # without the setting: 3 × 16384 pages faulted in again
    assert keep_freed_memory()  # idempotent
