"""Every network against its public reference: state-dict layout and outputs on seeded weights.

Key lists (``tests/data/keys/*.txt.gz``) are the reference models' state dicts (names, shapes,
parameter or buffer).  Outputs (``tests/data/*.npz``) are what the reference implementations
computed, once, on the weights of :func:`_golden.fill_seeded` and the inputs of
:func:`_golden.seeded_inputs`; see ``tests/data/README.md``.  Nothing here reads files outside
the repository.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from _golden import GFPGAN_SMALL, assert_layout, check_golden, fill_seeded, seeded_inputs

torch = pytest.importorskip("torch", reason="torch (retalk[neural]) not installed")


def _wav2lip() -> torch.nn.Module:
    from retalk.networks.wav2lip import Wav2Lip

    return Wav2Lip()


def _syncnet_color() -> torch.nn.Module:
    from retalk.networks.wav2lip import SyncNetColor

    return SyncNetColor()


def _syncnet_v2() -> torch.nn.Module:
    from retalk.networks.syncnet import SyncNetV2

    return SyncNetV2()


def _gfpgan_512() -> torch.nn.Module:
    from retalk.networks.gfpgan import GFPGANv1Clean

    return GFPGANv1Clean()


def _fid_inception() -> torch.nn.Module:
    from retalk.networks.fid_inception import FIDInceptionV3

    return FIDInceptionV3()


LAYOUTS: dict[str, tuple[Callable[[], torch.nn.Module], int]] = {  # key list → (builder, entries)
    "wav2lip": (_wav2lip, 352),
    "syncnet_color": (_syncnet_color, 217),
    "syncnet_v2": (_syncnet_v2, 102),
    "gfpgan_v1.3": (_gfpgan_512, 285),
    "fid_inception": (_fid_inception, 566),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_state_dict_equals_reference_layout(name: str) -> None:
    build, entries = LAYOUTS[name]
    model = build()
    assert_layout(model, name, entries)
    assert all(v.dtype == torch.float32 for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


_check = check_golden


def test_wav2lip_matches_reference() -> None:
    net = fill_seeded(_wav2lip(), 1)
    x = seeded_inputs("wav2lip")
    with torch.no_grad():
        _check("wav2lip", {"output": net(_t(x["audio"]), _t(x["face"]))})


def test_syncnet_color_matches_reference() -> None:
    net = fill_seeded(_syncnet_color(), 2)
    x = seeded_inputs("syncnet_color")
    with torch.no_grad():
        a, f = net(_t(x["audio"]), _t(x["face"]))
    _check("syncnet_color", {"audio_embedding": a, "face_embedding": f})


def test_syncnet_v2_matches_reference() -> None:
    net = fill_seeded(_syncnet_v2(), 3)
    x = seeded_inputs("syncnet_v2")
    video = _t(x["video"])
    with torch.no_grad():
        _check("syncnet_v2", {"aud": net.forward_aud(_t(x["audio"])), "lip": net.forward_lip(video),
                              "lipfeat": net.forward_lipfeat(video)})


def test_gfpgan_matches_reference() -> None:
    from retalk.networks.gfpgan import GFPGANv1Clean

    net = fill_seeded(GFPGANv1Clean(**GFPGAN_SMALL), 4)
    x = seeded_inputs("gfpgan_small")
    with torch.no_grad():
        image, rgbs = net(_t(x["face"]), return_rgb=True, randomize_noise=False)
    _check("gfpgan_small", {"image": image, **{f"rgb{r.shape[-1]}": r for r in rgbs}})


def test_fid_inception_matches_reference() -> None:
    net = fill_seeded(_fid_inception(), 5)
    x = seeded_inputs("fid_inception")
    with torch.no_grad():
        _check("fid_inception", {"pool3": net(_t(x["image"]))})


def test_golden_check_detects_a_changed_weight() -> None:
    """The comparison is sharp: one bias moved by 0.05 in the last layer breaks it."""
    net = fill_seeded(_wav2lip(), 1)
    with torch.no_grad():
        net.state_dict()["output_block.1.bias"][0] += 0.05
    x = seeded_inputs("wav2lip")
    with torch.no_grad(), pytest.raises(AssertionError):
        _check("wav2lip", {"output": net(_t(x["audio"]), _t(x["face"]))})
