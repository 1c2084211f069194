"""FID and KID over Inception-v3 pool3 features.

* :class:`FIDInceptionV3` — the FID Inception network (pytorch-fid's port of
  TensorFlow's graph), loaded from ``pt_inception-2015-12-05-6726825d.pth``
  with :func:`load_fid_inception`; defined in :mod:`retalk.networks.fid_inception`
  and imported lazily, so this module needs no torch until a network is used.
* :func:`inception_features` — 2048-d features of RGB frames (streamed in batches).
* :func:`fid`, :func:`frechet_distance`, :func:`kid` — set distances (numpy/scipy).

Images are preprocessed as pytorch-fid does: RGB scaled to [0, 1], resized to
299×299 bilinear (``align_corners=False``), mapped to [-1, 1].
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np


if TYPE_CHECKING:  # pragma: no cover
    from retalk.networks.fid_inception import FIDInceptionV3

log = logging.getLogger(__name__)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
"""File name of pytorch-fid's release of the FID Inception weights."""

__all__ = [
    "FID_WEIGHTS_FILE",
    "FIDInceptionV3",
    "KIDResult",
    "feature_stats",
    "fid",
    "frechet_distance",
    "inception_features",
    "kid",
    "load_fid_inception",
]


def __getattr__(name: str) -> Any:
    if name == "FIDInceptionV3":
        from retalk.networks.fid_inception import FIDInceptionV3 as cls

        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_fid_inception(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> FIDInceptionV3:
    """Load the FID Inception network in eval mode (registry name ``fid_inception``).

    ``path`` defaults to ``$RETALK_CHECKPOINTS`` (or ``./checkpoints``) /
    :data:`FID_WEIGHTS_FILE`. Goes through :func:`retalk.checkpoints.load`:
    ``torch.load(weights_only=True)``, strict keys; a missing, unreadable or
    non-matching file raises :class:`retalk.errors.CheckpointError` naming the file.
    """
    from retalk import checkpoints

    model = checkpoints.load("fid_inception", path=path, device=device)
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def _to_unit_float(batch: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 or float in [0, 1] → float32 (B, 3, H, W) in [0, 1]."""
    if np.issubdtype(batch.dtype, np.integer):
        arr = batch.astype(np.float32) / 255.0
    else:
        arr = batch.astype(np.float32)
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


def inception_features(frames: np.ndarray | Iterable[np.ndarray], model: Any, batch: int = 32) -> np.ndarray:
    """Pool3 features (N, 2048) float64 of RGB frames.

    ``frames``: an array (N, H, W, 3) or any iterable of (H, W, 3) frames (read
    lazily, ``batch`` at a time, so a whole video need not be in memory); uint8
    in 0..255 or float in [0, 1].  All frames of one batch must share a size.
    ``model``: a :class:`FIDInceptionV3` (e.g. from :func:`load_fid_inception`).
    """
    import torch

    try:
        device = next(iter(model.parameters())).device
    except (AttributeError, StopIteration, TypeError):
        device = "cpu"
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if not pending:
            return
        arr = np.stack(pending)
        if arr.ndim != 4 or arr.shape[3] != 3:
            raise ValueError(f"expected RGB frames (H, W, 3), got batch of shape {arr.shape}")
        with torch.no_grad():
            feats = model(torch.from_numpy(_to_unit_float(arr)).to(device))
        out.append(feats.detach().double().cpu().numpy().reshape(len(pending), -1))
        pending.clear()

    for frame in frames:
        pending.append(np.asarray(frame))
        if len(pending) >= batch:
            flush()
    flush()
    if not out:
        return np.zeros((0, 2048))
    return np.concatenate(out)


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), N ≥ 2."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features (N >= 2, D), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_factor(mat: np.ndarray) -> np.ndarray:
    """A factor F with F·Fᵀ = mat for a symmetric PSD matrix: Cholesky, or eigen-decomposition when singular."""
    sym = (mat + mat.T) / 2.0
    try:
        return np.linalg.cholesky(sym)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(sym)
        return vecs * np.sqrt(np.clip(vals, 0.0, None))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in squared feature units.

    ``‖mu1 − mu2‖² + tr(sigma1) + tr(sigma2) − 2·tr((sigma1·sigma2)^½)``.  The
    trace term is the sum of square roots of the eigenvalues of the symmetric
    matrix ``Fᵀ·sigma2·F`` with ``F·Fᵀ = sigma1`` (the same eigenvalues as
    ``sigma1·sigma2``), which stays real and stable for singular covariances.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    f1 = _psd_factor(s1)
    inner = f1.T @ s2 @ f1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet Inception Distance between two feature sets (N, D) (e.g. from :func:`inception_features`).

    The same number as :func:`frechet_distance` of the sets' means and unbiased
    covariances.  When a set has fewer samples than dimensions the trace term
    is computed from the samples (singular values of the N_a × N_b matrix of
    centred cross products), which is faster and exact on the covariances'
    null spaces.  Lower is better; 0 for identical sets.  FID is biased
    upwards for small sets: compare numbers computed on sets of equal size.
    """
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    for f in (a, b):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"need features (N >= 2, D), got shape {f.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if min(a.shape[0], b.shape[0]) >= a.shape[1]:
        mu1, s1 = feature_stats(a)
        mu2, s2 = feature_stats(b)
        return frechet_distance(mu1, s1, mu2, s2)
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    ca = (a - mu1) / np.sqrt(a.shape[0] - 1.0)  # sigma1 = caᵀ·ca
    cb = (b - mu2) / np.sqrt(b.shape[0] - 1.0)
    tr_covmean = float(np.linalg.svd(ca @ cb.T, compute_uv=False).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.sum(ca * ca) + np.sum(cb * cb) - 2.0 * tr_covmean)


@dataclass(frozen=True)
class KIDResult:
    """Kernel Inception Distance: mean and standard deviation over subsets (squared feature units)."""

    mean: float
    std: float


def kid(feats_a: np.ndarray, feats_b: np.ndarray, n_subsets: int = 100, subset_size: int = 1000,
        degree: int = 3, seed: int = 0) -> KIDResult:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a polynomial kernel.

    Kernel ``k(x, y) = (x·y / D + 1)^degree``.  Each of ``n_subsets`` draws
    ``m = min(subset_size, N_a, N_b)`` rows of each set without replacement
    (generator seeded with ``seed``) and computes the unbiased estimate
    ``mean_{i≠j} k(a_i, a_j) + mean_{i≠j} k(b_i, b_j) − 2·mean_{i,j} k(a_i, b_j)``.
    Unbiased, so it can be slightly negative for equal distributions.
    """
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need feature sets (N, D) of equal D, got {a.shape} and {b.shape}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for s in range(n_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1.0) ** degree
        kyy = (y @ y.T / d + 1.0) ** degree
        kxy = (x @ y.T / d + 1.0) ** degree
        values[s] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                     - 2.0 * kxy.mean())
    return KIDResult(mean=float(values.mean()), std=float(values.std()))
