"""Helpers for the golden-value tests: seeded weights, seeded inputs, committed reference outputs.

The golden files under ``tests/data/`` were written once, outside the repository, by running the
public reference implementations (Wav2Lip, joonson/syncnet_python, GFPGAN, pytorch-fid, librosa,
python_speech_features, cpbd) on exactly the weights and inputs these helpers make.  The tests
rebuild retalk's networks with the same weights and compare.  Only outputs are committed (as a
digest: a strided subset of the values plus a few statistics), never third-party code or weights.

Weights come from numpy's ``default_rng`` (PCG64, stable across numpy releases) in state-dict key
order, so they do not depend on torch's RNG or on the order modules were constructed in.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"

#: Relative tolerance of every numerical comparison with a reference output.
RTOL = 1e-4

#: Largest number of values kept from one output array in a digest.
DIGEST_VALUES = 256


def seeded_state(named_shapes: list[tuple[str, tuple[int, ...], bool]], seed: int) -> dict[str, np.ndarray]:
    """Deterministic float32 values for ``(key, shape, is_floating)`` entries, in the given order.

    Rules (chosen so that random networks keep activations of order one):
    ``running_var`` ~ U(0.5, 1.5); ``running_mean`` ~ N(0, 0.1²); tensors of two or more
    dimensions ~ N(0, 1/fan_in) with ``fan_in = prod(shape[1:])``; other 1-D ``weight``s (norm
    gains, noise strengths) ~ U(0.5, 1.5); every other floating tensor (biases) ~ N(0, 0.1²).
    Non-floating entries (``num_batches_tracked``) are left out.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for key, shape, floating in named_shapes:
        if not floating:
            continue
        size = int(np.prod(shape)) if shape else 1
        if key.endswith("running_var"):
            values = rng.uniform(0.5, 1.5, size)
        elif key.endswith("running_mean"):
            values = rng.normal(0.0, 0.1, size)
        elif len(shape) >= 2:
            values = rng.standard_normal(size) / np.sqrt(float(np.prod(shape[1:])))
        elif key.endswith("weight"):
            values = rng.uniform(0.5, 1.5, size)
        else:
            values = rng.normal(0.0, 0.1, size)
        out[key] = values.astype(np.float32).reshape(shape)
    return out


def fill_seeded(model: Any, seed: int) -> Any:
    """Overwrite every floating parameter and buffer of a torch module with :func:`seeded_state`."""
    import torch

    state = model.state_dict()
    entries = [(k, tuple(v.shape), bool(v.is_floating_point())) for k, v in state.items()]
    values = seeded_state(entries, seed)
    with torch.no_grad():
        for key, arr in values.items():
            state[key].copy_(torch.from_numpy(arr))
    return model.eval()


def seeded_inputs(name: str) -> dict[str, np.ndarray]:
    """The float32 inputs fed to network ``name`` for its golden output (shapes in the comments)."""
    rng = np.random.default_rng(1000 + sum(map(ord, name)))

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)

    if name == "wav2lip":  # mel window (B, 1, 80, 16); masked + reference face (B, 6, 96, 96) in [0, 1]
        return {"audio": normal(2, 1, 80, 16), "face": uniform(2, 6, 96, 96)}
    if name == "syncnet_color":  # mel window (B, 1, 80, 16); 5 lower-half faces (B, 15, 48, 96) in [0, 1]
        return {"audio": normal(2, 1, 80, 16), "face": uniform(2, 15, 48, 96)}
    if name == "syncnet_v2":  # MFCC window (B, 1, 13, 20); 5 frames (B, 3, 5, 224, 224) in [0, 255]
        return {"audio": 10.0 * normal(2, 1, 13, 20), "video": 255.0 * uniform(1, 3, 5, 224, 224)}
    if name == "gfpgan_small":  # aligned face (B, 3, 64, 64) in [-1, 1]
        return {"face": 2.0 * uniform(1, 3, 64, 64) - 1.0}
    if name == "fid_inception":  # RGB (B, 3, 64, 64) in [0, 1], resized to 299 inside
        return {"image": uniform(2, 3, 64, 64)}
    raise KeyError(name)


#: Constructor arguments of the narrow GFPGAN used for the numerical check (the layout check uses
#: the released 512 configuration).  Same switches as GFPGANv1.3: latent input, one W per layer,
#: SFT on half the channels.
GFPGAN_SMALL = {
    "out_size": 64, "num_style_feat": 32, "channel_multiplier": 1, "decoder_load_path": None,
    "fix_decoder": False, "num_mlp": 2, "input_is_latent": True, "different_w": True, "narrow": 0.25,
    "sft_half": True,
}


def digest(values: np.ndarray) -> np.ndarray:
    """Float64 summary of an array: mean, std, mean |x|, then at most 256 values taken at a stride."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    stride = max(1, -(-flat.size // DIGEST_VALUES))
    return np.concatenate([[flat.mean(), flat.std(), np.abs(flat).mean()], flat[::stride]])


def load_golden(name: str) -> dict[str, np.ndarray]:
    """The committed arrays of ``tests/data/<name>.npz``."""
    with np.load(DATA / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def assert_matches(actual: np.ndarray, expected: np.ndarray, what: str, rtol: float = RTOL) -> None:
    """``actual`` within ``rtol`` of ``expected`` (absolute slack ``rtol`` × the largest |expected|)."""
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = float(np.abs(expected).max()) or 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def read_key_list(name: str) -> list[tuple[str, tuple[int, ...], str]]:
    """``(key, shape, 'param'|'buffer')`` rows of ``tests/data/keys/<name>.txt.gz``, in file order."""
    rows = []
    with gzip.open(DATA / "keys" / f"{name}.txt.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            key, shape, kind = line.rstrip("\n").split("\t")
            dims = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
            rows.append((key, dims, kind))
    return rows


def assert_layout(model: Any, name: str, entries: int) -> set[str]:
    """``model``'s state dict equals the reference key list ``name`` (order, names, shapes, buffers).

    Returns the names of the model's buffers (for extra checks by the caller).
    """
    expected = read_key_list(name)
    assert len(expected) == entries, (name, len(expected))
    state = model.state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == [(k, s) for k, s, _ in expected]
    buffers = {k for k, _ in model.named_buffers()}
    assert buffers == {k for k, _, kind in expected if kind == "buffer"}
    return buffers


def check_golden(name: str, outputs: dict[str, Any]) -> None:
    """Digests of ``outputs`` (torch tensors) equal the committed reference digests ``tests/data/<name>.npz``."""
    golden = load_golden(name)
    assert sorted(golden) == sorted(outputs)
    for key, value in outputs.items():
        assert_matches(digest(value.detach().numpy()), golden[key], f"{name}:{key}")
