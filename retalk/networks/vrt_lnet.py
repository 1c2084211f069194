"""VideoReTalking's L-Net (``models/LNet.py``, ``models/transformer.py``): lip sync at 96×96.

An audio encoder (Wav2Lip's, ending in ``descriptor_nc`` channels) turns a mel window into a
descriptor; a two-stream visual encoder reads the masked target face and the reference face
(cross-attention between them at the deepest level); an FFC decoder conditioned on the audio
descriptor (ADAIN) renders the lower face.

Conventions (release configuration ``LNet()``):

* ``audio_sequences``: (B, 1, 80, 16) float — one 16-column mel window
  (:func:`retalk.speech.mel.melspectrogram`, values in [−4, 4]).
* ``face_sequences``: (B, 6, 96, 96) float, **BGR**, values in [0, 1]: channels 0–2 the masked
  original (lower half blanked), 3–5 the reference face.
* Output: (B, 3, 96, 96) **BGR** in (0, 1) (sigmoid).

5-D inputs (audio (B, T, 1, 80, 16), faces (B, 6, T, H, W)) are folded time-major into the
batch and unfolded to (B, 3, T, H, W), as the reference does.  State-dict names and shapes
equal the reference's (1721 entries, spectral-norm convs as ``weight_orig/_u/_v``).  No I/O.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from retalk.networks.vrt_blocks import (VRT_SLOPE, DownBlock2d, FinalBlock2d, FirstBlock2d, Jump, UpBlock2d,
                                        decode_skips)
from retalk.networks.vrt_ffc import FFCADAINResBlocks
from retalk.networks.wav2lip import ConvBlock, audio_encoder

__all__ = ["LNet", "CrossAttentionTransformer", "VisualEncoder", "LNetDecoder"]


class _TanhGELU(nn.Module):
    """GELU, tanh approximation: ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``."""

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


class _PreNorm(nn.Module):
    """``fn(LayerNorm(x))`` (names ``norm``, ``fn``)."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(self.norm(x))


class _DualPreNorm(nn.Module):
    """``fn(LayerNorm_x(x), LayerNorm_y(y))`` (names ``normx``, ``normy``, ``fn``)."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.normx = nn.LayerNorm(dim)
        self.normy = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.fn(self.normx(x), self.normy(y))


class _FeedForward(nn.Module):
    """Linear(dim → hidden) → tanh-GELU → Linear(hidden → dim) (keys ``net.0``, ``net.3``; dropout 0)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), _TanhGELU(), nn.Dropout(0.0), nn.Linear(hidden_dim, dim), nn.Dropout(0.0)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _CrossAttention(nn.Module):
    """Multi-head attention whose queries and keys come from ``x`` and values from ``y``.

    ``x``, ``y``: (B, N, dim) → (B, N, dim).  ``to_q/to_k/to_v``: bias-free Linear(dim → heads·dim_head);
    weights ``softmax(q·kᵀ / √dim_head)``; ``to_out.0``: Linear(heads·dim_head → dim).
    """

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head**-0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        if heads == 1 and dim_head == dim:
            raise ValueError("the reference drops to_out for heads=1, dim_head=dim; not supported here")
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def _split(self, t: Tensor) -> Tensor:
        batch, tokens, inner = t.shape
        return t.reshape(batch, tokens, self.heads, inner // self.heads).transpose(1, 2)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(x)), self._split(self.to_v(y))
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(attn, v)  # (B, heads, N, dim_head)
        out = out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)
        return self.to_out(out)


class CrossAttentionTransformer(nn.Module):
    """Cross-attention transformer over feature maps: x (B, C, H, W), y (B, C, H, W) → (B, C, H, W).

    Tokens are the H·W positions (row-major).  Per layer ``layers.i``:
    ``x = attn(LN_x(x), LN_y(y)) + x`` then ``x = FF(LN(x)) + x``.  ``y`` (the reference features)
    only supplies the attention values.
    """

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    _DualPreNorm(dim, _CrossAttention(dim, heads, dim_head)),
                    _PreNorm(dim, _FeedForward(dim, mlp_dim)),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        x = x.reshape(batch, channels, -1).transpose(1, 2)
        y = y.reshape(batch, channels, -1).transpose(1, 2)
        for attn, ff in self.layers:  # type: ignore[misc]
            x = attn(x, y) + x
            x = ff(x) + x
        return x.reshape(batch, height, width, channels).permute(0, 3, 1, 2)


class VisualEncoder(nn.Module):
    """Two-stream encoder (reference ``Visual_Encoder``): masked face and reference face.

    ``first_inp`` / ``first_ref`` FirstBlock2d(image_nc → ngf); per level i ``inp_down{i}`` /
    ``ref_down{i}`` DownBlock2d (channels ``min(ngf·2^(i+1), img_f)``); ``ca{i}`` is the identity for
    i < 2 (no parameters) and a :class:`CrossAttentionTransformer` (dim ``ngf·2^(i+1)``, depth 2,
    4 heads of ``ngf``, MLP ``4·ngf``) from i = 2 on, applied to the masked stream with the reference
    stream as values.  LayerNorm2d + LeakyReLU(0.1), spectral norm when ``use_spect``.

    ``forward(maskGT, ref)`` with both (B, image_nc, H, W) → list of ``layers + 1`` features:
    masked-stream features at H, H/2, …, and last ``concat(masked, reference)`` at H/2^layers.
    """

    def __init__(
        self, image_nc: int, ngf: int, img_f: int, layers: int, negative_slope: float = VRT_SLOPE,
        use_spect: bool = False,
    ) -> None:
        super().__init__()
        self.layers = layers
        self.first_inp = FirstBlock2d(image_nc, ngf, negative_slope, use_spect)
        self.first_ref = FirstBlock2d(image_nc, ngf, negative_slope, use_spect)
        out_channels = ngf
        for i in range(layers):
            in_channels = min(ngf * 2**i, img_f)
            out_channels = min(ngf * 2 ** (i + 1), img_f)
            if i >= 2:
                self.add_module(f"ca{i}", CrossAttentionTransformer(2 ** (i + 1) * ngf, 2, 4, ngf, ngf * 4))
            self.add_module(f"ref_down{i}", DownBlock2d(in_channels, out_channels, negative_slope, use_spect))
            self.add_module(f"inp_down{i}", DownBlock2d(in_channels, out_channels, negative_slope, use_spect))
        self.output_nc = out_channels * 2

    def forward(self, maskGT: Tensor, ref: Tensor) -> list[Tensor]:  # noqa: N803 - reference argument name
        x_inp, x_ref = self.first_inp(maskGT), self.first_ref(ref)
        out = [x_inp]
        for i in range(self.layers):
            x_inp = getattr(self, f"inp_down{i}")(x_inp)
            x_ref = getattr(self, f"ref_down{i}")(x_ref)
            if i >= 2:
                x_inp = getattr(self, f"ca{i}")(x_inp, x_ref)
            out.append(x_inp if i < self.layers - 1 else torch.cat([x_inp, x_ref], dim=1))
        return out


class LNetDecoder(nn.Module):
    """FFC U-Net decoder (reference ``Decoder``), conditioned on the audio descriptor ``z``.

    For i = layers−1 … 0 (registered as ``up{i}``, ``res{i}``, ``jump{i}``):
    ``out = jump{i}(skip_i) + up{i}(res{i}(out, z))``; ``res{i}`` = ``num_block`` FFCResnetBlocks on
    C_in channels, C_in = ``2·ngf·2^layers`` at the deepest level (the concatenated streams), else
    ``min(ngf·2^(i+1), img_f)``; ``final`` FinalBlock2d(ngf → image_nc, sigmoid).
    Output (B, image_nc, H, W) in (0, 1).
    """

    def __init__(
        self, image_nc: int, feature_nc: int, ngf: int, img_f: int, layers: int, num_block: int,
        negative_slope: float = VRT_SLOPE, use_spect: bool = False,
    ) -> None:
        super().__init__()
        self.layers = layers
        out_channels = ngf
        for i in reversed(range(layers)):
            in_channels = ngf * 2 ** (i + 1) * 2 if i == layers - 1 else min(ngf * 2 ** (i + 1), img_f)
            out_channels = min(ngf * 2**i, img_f)
            self.add_module(f"up{i}", UpBlock2d(in_channels, out_channels, negative_slope, use_spect))
            self.add_module(f"res{i}", FFCADAINResBlocks(num_block, in_channels, feature_nc))
            self.add_module(f"jump{i}", Jump(out_channels, negative_slope, use_spect))
        self.final = FinalBlock2d(out_channels, image_nc, use_spect, "sigmoid")
        self.output_nc = out_channels

    def forward(self, x: list[Tensor], z: Tensor) -> Tensor:
        """``x``: the encoder's feature list (not modified); ``z``: (B, feature_nc, 1, 1)."""
        return decode_skips(self, x, z)


def _fold(x: Tensor, time_dim: int) -> Tensor:
    """Merge ``time_dim`` into the batch, time-major (index ``t·B + b``)."""
    x = x.movedim(time_dim, 0)
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class LNet(nn.Module):
    """VideoReTalking L-Net; see the module docstring for inputs and output.

    Args (reference names and release defaults): ``image_nc`` 3, ``descriptor_nc`` 512 (audio
    descriptor), ``layer`` 3 (encoder/decoder levels), ``base_nc`` 64, ``max_nc`` 512,
    ``num_res_blocks`` 9 (FFC blocks per decoder level), ``use_spect`` True.  Narrower settings
    build the same architecture (used for cheap numerical tests); the cross-attention width is
    ``base_nc·2^layer`` and the deepest decoder width twice that, as in the reference.
    """

    def __init__(
        self, image_nc: int = 3, descriptor_nc: int = 512, layer: int = 3, base_nc: int = 64, max_nc: int = 512,
        num_res_blocks: int = 9, use_spect: bool = True,
    ) -> None:
        super().__init__()
        self.descriptor_nc = descriptor_nc
        self.encoder = VisualEncoder(image_nc, base_nc, max_nc, layer, VRT_SLOPE, use_spect)
        self.decoder = LNetDecoder(image_nc, descriptor_nc, base_nc, max_nc, layer, num_res_blocks, VRT_SLOPE,
                                   use_spect)
        audio = audio_encoder(res_after_256=1)
        audio[-1] = ConvBlock(512, descriptor_nc, 1, 1, 0)
        self.audio_encoder = audio

    def forward(self, audio_sequences: Tensor, face_sequences: Tensor) -> Tensor:
        """(B, 1, 80, 16) mel, (B, 6, H, W) BGR [0, 1] faces → (B, 3, H, W) BGR in (0, 1); 5-D: see module doc."""
        batch = audio_sequences.shape[0]
        sequence = face_sequences.dim() > 4
        if sequence:
            audio_sequences = _fold(audio_sequences, 1)
            face_sequences = _fold(face_sequences, 2)
        cropped, ref = torch.split(face_sequences, 3, dim=1)
        features = self.encoder(cropped, ref)
        descriptor = self.audio_encoder(audio_sequences)
        out = self.decoder(features, descriptor)
        if sequence:
            out = torch.stack(torch.split(out, batch, dim=0), dim=2)
        return out
