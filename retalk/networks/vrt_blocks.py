"""Building blocks shared by VideoReTalking's D-Net and L-Net (``models/base_blocks.py``).

Contents, each matching the released state-dict names and shapes:

* :class:`SpectralNormConv2d` — a ``Conv2d`` carrying the classic spectral-norm
  hook's layout (``bias``, ``weight_orig`` parameters; ``weight_u``, ``weight_v``
  buffers; no ``weight`` entry), and :func:`conv2d` choosing it or a plain conv.
* :class:`LayerNorm2d` — layer norm over (C, H, W) per sample, affine (C, 1, 1).
* :class:`ADAIN` — instance norm modulated by a feature vector.
* Conv blocks ``model.0`` (conv) / ``model.1`` (LayerNorm2d) / LeakyReLU:
  :class:`FirstBlock2d`, :class:`DownBlock2d`, :class:`UpBlock2d`, :class:`Jump`,
  and :class:`FinalBlock2d` (conv → tanh or sigmoid).
* :class:`FineADAINResBlock2d` / :class:`FineADAINResBlocks`,
  :class:`FineEncoder`, :class:`FineDecoder` (D-Net's editing network).

Every normalised block here uses :class:`LayerNorm2d` (the only norm both
networks configure) and ``LeakyReLU(negative_slope)`` (0.1 in both networks).
Feature maps are float tensors (B, C, H, W); feature vectors (B, F) or anything
that flattens to it (e.g. (B, F, 1, 1)).  No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "SpectralNormConv2d",
    "conv2d",
    "LayerNorm2d",
    "ADAIN",
    "FirstBlock2d",
    "DownBlock2d",
    "UpBlock2d",
    "Jump",
    "FinalBlock2d",
    "FineADAINResBlock2d",
    "FineADAINResBlocks",
    "FineEncoder",
    "FineDecoder",
    "VRT_SLOPE",
]

VRT_SLOPE = 0.1
"""Negative slope of the LeakyReLU that D-Net and L-Net pass to their blocks."""

_SN_EPS = 1e-12


class SpectralNormConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose kernel is divided by its largest singular value (classic spectral norm).

    State layout equals ``torch.nn.utils.spectral_norm(nn.Conv2d(...))``:
    ``bias`` (C_out,), ``weight_orig`` (C_out, C_in, k, k) parameters and the
    power-iteration vectors ``weight_u`` (C_out,), ``weight_v`` (C_in·k·k,) as
    buffers.  The kernel used is ``weight_orig / σ`` with
    ``σ = u · (W v)`` and ``W`` = ``weight_orig`` reshaped to (C_out, −1).

    In eval mode (inference) u and v are used as stored — no power iteration,
    as the reference hook does.  In training mode one power iteration
    (eps 1e-12) updates u and v in place first, again as the hook does.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        weight = self.weight
        del self.weight
        self.weight_orig = nn.Parameter(weight.detach())
        rows = weight.shape[0]
        cols = weight[0].numel()
        self.register_buffer("weight_u", F.normalize(torch.randn(rows), dim=0, eps=_SN_EPS))
        self.register_buffer("weight_v", F.normalize(torch.randn(cols), dim=0, eps=_SN_EPS))

    def normalized_weight(self) -> Tensor:
        """The spectrally normalised kernel (C_out, C_in, k, k)."""
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(torch.mv(matrix.t(), u), dim=0, eps=_SN_EPS, out=v)
                u = F.normalize(torch.mv(matrix, v), dim=0, eps=_SN_EPS, out=u)
            u, v = u.clone(), v.clone()
        sigma = torch.dot(u, torch.mv(matrix, v))
        return self.weight_orig / sigma

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)


def conv2d(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, use_spect: bool = False
) -> nn.Conv2d:
    """A biased ``Conv2d``, spectrally normalised (:class:`SpectralNormConv2d`) when ``use_spect``."""
    cls = SpectralNormConv2d if use_spect else nn.Conv2d
    return cls(in_channels, out_channels, kernel_size, stride=stride, padding=padding)


class LayerNorm2d(nn.Module):
    """``F.layer_norm`` over (C, H, W) of each sample (eps 1e-5).

    With ``affine``: ``weight`` (C, 1, 1) initialised to 1 and ``bias`` (C, 1, 1)
    to 0, broadcast over H, W.
    """

    def __init__(self, n_out: int, affine: bool = True) -> None:
        super().__init__()
        self.n_out = n_out
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(n_out, 1, 1))
            self.bias = nn.Parameter(torch.zeros(n_out, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[1:]
        if self.affine:
            return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape))
        return F.layer_norm(x, shape)


class ADAIN(nn.Module):
    """Adaptive instance norm: ``IN(x) · (1 + γ(f)) + β(f)``.

    ``IN`` = InstanceNorm2d (no affine, no running stats, eps 1e-5);
    ``mlp_shared`` = Linear(F, 128) + ReLU; ``mlp_gamma`` / ``mlp_beta`` = Linear(128, C).
    ``x`` (B, C, H, W); ``feature`` flattened to (B, F).
    """

    def __init__(self, norm_nc: int, feature_nc: int) -> None:
        super().__init__()
        hidden = 128
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Linear(feature_nc, hidden), nn.ReLU())
        self.mlp_gamma = nn.Linear(hidden, norm_nc)
        self.mlp_beta = nn.Linear(hidden, norm_nc)

    def forward(self, x: Tensor, feature: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        hidden = self.mlp_shared(feature.reshape(feature.shape[0], -1))
        gamma = self.mlp_gamma(hidden)[:, :, None, None]
        beta = self.mlp_beta(hidden)[:, :, None, None]
        return normalized * (1 + gamma) + beta


def _normed(conv: nn.Module, channels: int, negative_slope: float, *tail: nn.Module) -> nn.Sequential:
    """``conv`` → LayerNorm2d(channels) → LeakyReLU(negative_slope) → ``tail``."""
    return nn.Sequential(conv, LayerNorm2d(channels), nn.LeakyReLU(negative_slope), *tail)


class FirstBlock2d(nn.Module):
    """Conv 7×7 (stride 1, pad 3) → LayerNorm2d → LeakyReLU; keeps H, W."""

    def __init__(
        self, input_nc: int, output_nc: int, negative_slope: float = VRT_SLOPE, use_spect: bool = False
    ) -> None:
        super().__init__()
        self.model = _normed(conv2d(input_nc, output_nc, 7, 1, 3, use_spect), output_nc, negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class DownBlock2d(nn.Module):
    """Conv 3×3 (pad 1) → LayerNorm2d → LeakyReLU → AvgPool 2×2; (B, in, H, W) → (B, out, H/2, W/2)."""

    def __init__(
        self, input_nc: int, output_nc: int, negative_slope: float = VRT_SLOPE, use_spect: bool = False
    ) -> None:
        super().__init__()
        self.model = _normed(
            conv2d(input_nc, output_nc, 3, 1, 1, use_spect), output_nc, negative_slope, nn.AvgPool2d(2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class UpBlock2d(nn.Module):
    """Nearest ×2 upsample → conv 3×3 → LayerNorm2d → LeakyReLU; (B, in, H, W) → (B, out, 2H, 2W)."""

    def __init__(
        self, input_nc: int, output_nc: int, negative_slope: float = VRT_SLOPE, use_spect: bool = False
    ) -> None:
        super().__init__()
        self.model = _normed(conv2d(input_nc, output_nc, 3, 1, 1, use_spect), output_nc, negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(F.interpolate(x, scale_factor=2))


class Jump(nn.Module):
    """Skip-connection block: conv 3×3 (C → C) → LayerNorm2d → LeakyReLU."""

    def __init__(self, input_nc: int, negative_slope: float = VRT_SLOPE, use_spect: bool = False) -> None:
        super().__init__()
        self.model = _normed(conv2d(input_nc, input_nc, 3, 1, 1, use_spect), input_nc, negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class FinalBlock2d(nn.Module):
    """Conv 7×7 (pad 3) → tanh (values in (−1, 1)) or sigmoid (values in (0, 1))."""

    def __init__(
        self, input_nc: int, output_nc: int, use_spect: bool = False, tanh_or_sigmoid: str = "tanh"
    ) -> None:
        super().__init__()
        if tanh_or_sigmoid not in ("tanh", "sigmoid"):
            raise ValueError(f"tanh_or_sigmoid must be 'tanh' or 'sigmoid', got {tanh_or_sigmoid!r}")
        activation: nn.Module = nn.Sigmoid() if tanh_or_sigmoid == "sigmoid" else nn.Tanh()
        self.model = nn.Sequential(conv2d(input_nc, output_nc, 7, 1, 3, use_spect), activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class FineADAINResBlock2d(nn.Module):
    """Residual ADAIN block with the reference's quirk: ``out = x + norm2(conv2(x), z)``.

    ``conv1`` / ``norm1`` exist (state-dict entries) but the reference's forward
    overwrites their result, so they do not affect the output; they are not
    evaluated here.  Convs are 3×3 C → C.  ``x`` (B, C, H, W), ``z`` (B, F, ...).
    """

    def __init__(
        self, input_nc: int, feature_nc: int, negative_slope: float = VRT_SLOPE, use_spect: bool = False
    ) -> None:
        super().__init__()
        self.conv1 = conv2d(input_nc, input_nc, 3, 1, 1, use_spect)
        self.conv2 = conv2d(input_nc, input_nc, 3, 1, 1, use_spect)
        self.norm1 = ADAIN(input_nc, feature_nc)
        self.norm2 = ADAIN(input_nc, feature_nc)
        self.actvn = nn.LeakyReLU(negative_slope)  # used only by the dead conv1/norm1 branch

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.norm2(self.conv2(x), z) + x


class FineADAINResBlocks(nn.Module):
    """``num_block`` :class:`FineADAINResBlock2d` named ``res0`` … applied in order."""

    def __init__(
        self,
        num_block: int,
        input_nc: int,
        feature_nc: int,
        negative_slope: float = VRT_SLOPE,
        use_spect: bool = False,
    ) -> None:
        super().__init__()
        self.num_block = num_block
        for i in range(num_block):
            self.add_module(f"res{i}", FineADAINResBlock2d(input_nc, feature_nc, negative_slope, use_spect))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        for i in range(self.num_block):
            x = getattr(self, f"res{i}")(x, z)
        return x


class FineEncoder(nn.Module):
    """``first`` FirstBlock2d(image_nc → ngf), then ``down0`` … ``down{layers-1}`` DownBlock2d.

    Channels of level i+1: ``min(ngf·2^(i+1), img_f)``.  Returns the list of
    ``layers + 1`` features, full resolution first (each level halves H, W).
    """

    def __init__(
        self,
        image_nc: int,
        ngf: int,
        img_f: int,
        layers: int,
        negative_slope: float = VRT_SLOPE,
        use_spect: bool = False,
    ) -> None:
        super().__init__()
        self.layers = layers
        self.first = FirstBlock2d(image_nc, ngf, negative_slope, use_spect)
        out_channels = ngf
        for i in range(layers):
            in_channels = min(ngf * 2**i, img_f)
            out_channels = min(ngf * 2 ** (i + 1), img_f)
            self.add_module(f"down{i}", DownBlock2d(in_channels, out_channels, negative_slope, use_spect))
        self.output_nc = out_channels

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.first(x)
        out = [x]
        for i in range(self.layers):
            x = getattr(self, f"down{i}")(x)
            out.append(x)
        return out


class FineDecoder(nn.Module):
    """U-Net decoder over a :class:`FineEncoder` feature list, conditioned on ``z`` by ADAIN.

    For i = layers−1 … 0 (modules registered in that order as ``up{i}``,
    ``res{i}``, ``jump{i}``): ``out = jump{i}(skip_i) + up{i}(res{i}(out, z))``,
    starting from the deepest feature; then ``final`` FinalBlock2d(ngf →
    image_nc, tanh).  Output (B, image_nc, H, W) in (−1, 1) at the resolution of
    the first feature.
    """

    def __init__(
        self,
        image_nc: int,
        feature_nc: int,
        ngf: int,
        img_f: int,
        layers: int,
        num_block: int,
        negative_slope: float = VRT_SLOPE,
        use_spect: bool = False,
    ) -> None:
        super().__init__()
        self.layers = layers
        out_channels = ngf
        for i in reversed(range(layers)):
            in_channels = min(ngf * 2 ** (i + 1), img_f)
            out_channels = min(ngf * 2**i, img_f)
            self.add_module(f"up{i}", UpBlock2d(in_channels, out_channels, negative_slope, use_spect))
            self.add_module(
                f"res{i}", FineADAINResBlocks(num_block, in_channels, feature_nc, negative_slope, use_spect)
            )
            self.add_module(f"jump{i}", Jump(out_channels, negative_slope, use_spect))
        self.final = FinalBlock2d(out_channels, image_nc, use_spect, "tanh")
        self.output_nc = out_channels

    def forward(self, x: Sequence[Tensor], z: Tensor) -> Tensor:
        """``x``: the encoder's feature list (not modified); ``z``: (B, feature_nc, ...)."""
        return decode_skips(self, x, z)


def decode_skips(decoder: nn.Module, x: Sequence[Tensor], z: Tensor) -> Tensor:
    """The U-Net decoding loop D-Net's and L-Net's decoders share.

    From the deepest feature of ``x`` (the encoder's list, not modified), for ``i = layers-1 … 0``:
    ``out = jump{i}(skip) + up{i}(res{i}(out, z))``, then ``final(out)``.  ``decoder`` has the attributes
    ``layers``, ``res{i}``, ``up{i}``, ``jump{i}`` and ``final``.
    """
    skips = list(x)
    out = skips.pop()
    for i in reversed(range(decoder.layers)):
        out = getattr(decoder, f"res{i}")(out, z)
        out = getattr(decoder, f"up{i}")(out)
        out = getattr(decoder, f"jump{i}")(skips.pop()) + out
    return decoder.final(out)
