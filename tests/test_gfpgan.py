"""GFPGAN v1.3 network (forward contract) and the landmark-driven restorer.

Layout and outputs against the reference: test_network_goldens.py; without torch: test_light_install.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")

from retalk.enhance import FFHQ_TEMPLATE_512, FaceRestorer, GFPGANRestorer, five_points_from_mesh  # noqa: E402
from retalk.networks.gfpgan import GFPGANv1Clean  # noqa: E402



@pytest.fixture(scope="module")
def net512() -> GFPGANv1Clean:
    torch.manual_seed(0)
    return GFPGANv1Clean().eval()


def _small_net(seed: int = 0, out_size: int = 64) -> GFPGANv1Clean:
    """A narrow GFPGAN with non-zero noise strengths and biases (they are zero-initialised)."""
    torch.manual_seed(seed)
    net = GFPGANv1Clean(out_size=out_size, channel_multiplier=1, narrow=0.25, num_style_feat=32, num_mlp=2).eval()
    with torch.no_grad():
        for p in net.parameters():
            if bool((p == 0).all()):
                p.normal_(0.0, 0.1)
    return net


# --------------------------------------------------------------------------- network


def test_forward_512(net512: GFPGANv1Clean) -> None:
    torch.manual_seed(1)
    x = torch.rand(1, 3, 512, 512) * 2 - 1
    with torch.inference_mode():
        image, rgbs = net512(x, return_rgb=True, randomize_noise=False, weight=0.5)
    assert image.shape == (1, 3, 512, 512)
    assert torch.isfinite(image).all()
    assert [tuple(r.shape) for r in rgbs] == [(1, 3, s, s) for s in (8, 16, 32, 64, 128, 256, 512)]


def test_return_rgb_and_noise_small() -> None:
    net = _small_net()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        a, rgbs_a = net(x, return_rgb=True, randomize_noise=False)
        b, rgbs_b = net(x, return_rgb=False, randomize_noise=False)
        assert rgbs_b == [] and len(rgbs_a) == 4
        assert a.shape == (2, 3, 64, 64)
        assert torch.equal(a, b)  # stored noise: deterministic, independent of return_rgb
        torch.manual_seed(3)
        c, _ = net(x, return_rgb=False)
        torch.manual_seed(3)
        d, _ = net(x, return_rgb=False)
        e, _ = net(x, return_rgb=False)
    assert torch.equal(c, d)  # fresh noise comes from the global RNG
    assert not torch.allclose(c, e)
    assert not torch.allclose(c, a)


def test_constructor_rejects_decoder_path() -> None:
    with pytest.raises(ValueError):
        GFPGANv1Clean(out_size=32, decoder_load_path="stylegan2.pth")


# --------------------------------------------------------------------------- restorer

CANON = {  # mediapipe index → (x, y) in inter-ocular units around the face centre, upright, unmirrored
    468: (-0.5, -0.35),
    473: (0.5, -0.35),  # iris centres: subject's right eye is image-left
    33: (-0.75, -0.33),
    133: (-0.25, -0.36),
    362: (0.25, -0.36),
    263: (0.75, -0.33),
    1: (0.0, 0.25),
    61: (-0.4, 0.75),
    291: (0.4, 0.75),
}


def _mesh(cx: float, cy: float, iod: float, angle_deg: float = 0.0, n: int = 478) -> np.ndarray:
    rng = np.random.default_rng(0)
    lm = np.array([cx, cy]) + rng.normal(0.0, 0.3 * iod, (n, 2))
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    for idx, xy in CANON.items():
        if idx < n:
            lm[idx] = np.array([cx, cy]) + rot @ (np.array(xy) * iod)
    return lm


def _frame(h: int = 240, w: int = 320) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(xx / 31.0), 128 + 100 * np.cos(yy / 27.0), (xx + yy) / (h + w) * 255], -1)
    return img.clip(0, 255).astype(np.uint8)


def _face_box(restorer: GFPGANRestorer, frame: np.ndarray, lm: np.ndarray) -> tuple[int, int, int, int]:
    _, affine = restorer.align(frame, lm)
    inv = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
    s = restorer.face_size
    pts = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], float) @ inv.T
    x0, y0 = np.floor(pts.min(0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    return int(x0), int(y0), int(x1), int(y1)


def test_five_points_order_and_fallback() -> None:
    lm = _mesh(100.0, 80.0, 40.0)
    p = five_points_from_mesh(lm)
    np.testing.assert_allclose(p[0], lm[468])
    np.testing.assert_allclose(p[1], lm[473])
    np.testing.assert_allclose(p[2:], lm[[1, 61, 291]])
    # same orientation as the template: first eye and first mouth corner on the image left
    assert p[0, 0] < p[1, 0] and p[3, 0] < p[4, 0]
    assert FFHQ_TEMPLATE_512[0, 0] < FFHQ_TEMPLATE_512[1, 0] and FFHQ_TEMPLATE_512[3, 0] < FFHQ_TEMPLATE_512[4, 0]
    p468 = five_points_from_mesh(lm[:468])
    np.testing.assert_allclose(p468[0], lm[[33, 133]].mean(0))
    np.testing.assert_allclose(p468[1], lm[[362, 263]].mean(0))
    with pytest.raises(ValueError):
        five_points_from_mesh(lm[:468], eyes="iris")


def test_alignment_maps_points_to_template() -> None:
    from retalk.enhance import alignment_matrix

    # the five points are an exact similarity image of the template → recovered exactly
    t = np.deg2rad(20.0)
    rot = 0.3 * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    pts = FFHQ_TEMPLATE_512 @ rot.T + np.array([40.0, 25.0])
    m = alignment_matrix(pts, 512)
    mapped = np.c_[pts, np.ones(5)] @ m.T
    np.testing.assert_allclose(mapped, FFHQ_TEMPLATE_512, atol=1e-3)


def test_restorer_identity_roundtrip_and_colour_order() -> None:
    class Identity(torch.nn.Module):
        out_size = 128

        def __init__(self) -> None:
            super().__init__()
            self.seen: list[torch.Tensor] = []

        def forward(self, x: torch.Tensor, **kwargs: object) -> tuple[torch.Tensor, list]:
            self.seen.append(x.clone())
            return x, []

    net = Identity()
    restorer = GFPGANRestorer(net)
    assert isinstance(restorer, FaceRestorer)
    frame = _frame()
    lm = _mesh(170.0, 120.0, 40.0, angle_deg=15.0)
    x0, y0, x1, y1 = _face_box(restorer, frame, lm)
    frame[max(y0, 0) : y1, max(x0, 0) : x1] = frame[max(y0, 0) : y1, max(x0, 0) : x1] // 4 + np.array(
        [180, 0, 0], np.uint8
    )
    out = restorer.restore(frame, lm)
    assert out.shape == frame.shape and out.dtype == np.uint8
    # the network sees RGB in [-1, 1]: the red face region makes channel 0 the largest
    x = net.seen[0]
    assert x.shape == (1, 3, 128, 128) and x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    centre = x[0, :, 40:90, 40:90].mean(dim=(1, 2))
    assert centre[0] > centre[1] + 0.5 and centre[0] > centre[2] + 0.5
    # warp there and back reproduces the face region up to interpolation
    core = (slice(105, 140), slice(150, 190))
    diff = np.abs(out[core].astype(int) - frame[core].astype(int))
    assert diff.mean() < 3.0, diff.mean()


def test_restorer_small_net_roundtrip() -> None:
    net = _small_net(out_size=64)
    restorer = GFPGANRestorer(net, "cpu", randomize_noise=False)
    assert restorer.face_size == 64
    frame = _frame()
    lm = _mesh(160.0, 110.0, 30.0, angle_deg=-10.0)
    out = restorer.restore(frame, lm)
    assert out.shape == frame.shape and out.dtype == np.uint8
    x0, y0, x1, y1 = _face_box(restorer, frame, lm)
    outside = np.ones(frame.shape[:2], bool)
    outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
    assert outside.sum() > 0.5 * outside.size
    np.testing.assert_array_equal(out[outside], frame[outside])
    changed = np.abs(out.astype(int) - frame.astype(int)).max(-1) > 0
    assert changed[y0 + 10 : y1 - 10, x0 + 10 : x1 - 10].mean() > 0.5
    # deterministic noise → batch == one by one; unusable landmarks leave the frame as is
    again = restorer.restore_batch([frame, frame, frame], [lm, None, np.full((478, 2), np.nan)])
    np.testing.assert_array_equal(again[0], out)
    np.testing.assert_array_equal(again[1], frame)
    np.testing.assert_array_equal(again[2], frame)
    assert again[1] is not frame


def test_enhancer_runs_in_the_pipeline(tmp_path, monkeypatch, face_clip, short_wav):
    """--enhancer gfpgan: a random-weight GFPGANv1.3 file in the released format restores faces end to end."""
    from retalk.media import iter_frames, probe_video
    from retalk.networks.gfpgan import GFPGANv1Clean
    from retalk.pipeline import SyncOptions, sync

    torch.manual_seed(0)
    net = GFPGANv1Clean()
    torch.save({"params_ema": net.state_dict()}, tmp_path / "GFPGANv1.3.pth")
    monkeypatch.setenv("RETALK_CHECKPOINTS", str(tmp_path))
    out = tmp_path / "enh.mp4"
    short = tmp_path / "s.wav"
    from retalk.media import load_audio, write_wav

    a = load_audio(short_wav)
    write_wav(short, a.samples[int(0.1 * a.sample_rate): int(0.18 * a.sample_rate)], a.sample_rate)  # 2 frames
    res = sync(face_clip, short, out, SyncOptions(progress=False, recognize=False, enhancer="gfpgan", preset="ultrafast"))
    frames = list(iter_frames(probe_video(out)))
    assert len(frames) == res.frames == 2
    src = list(iter_frames(probe_video(face_clip)))[:2]
    # random weights: the face region is garbage but the frame corners are untouched
    assert np.abs(frames[0][:20, :20].astype(int) - src[0][:20, :20]).mean() < 4
    assert np.abs(frames[0][100:200, 100:200].astype(int) - src[0][100:200, 100:200]).mean() > 5
