"""ParseNet: 19-class face parsing (GPEN's ``ParseNet-latest``; facexlib's ``parsing_parsenet``).

An encoder of residual blocks that halve the resolution down to
``min_feat_size``, a body of ``res_depth`` same-size residual blocks with an
outer skip, and a decoder of residual blocks that double it back to
``out_size``; two 3×3 heads give the parsing logits and a reconstructed image.
Every conv is preceded by reflection padding.

Released configuration: ``ParseNet(512, 512, 32, 64, 19, norm_type='bn',
relu_type='LeakyReLU', ch_range=(32, 256))``.  Input (B, 3, in_size, in_size)
**RGB** in [-1, 1] (``rgb/255·2 − 1``).  Classes: 0 background, 1 skin, 2 nose,
3 eyeglasses, 4 left eye, 5 right eye, 6 left brow, 7 right brow, 8 left ear,
9 right ear, 10 mouth, 11 upper lip, 12 lower lip, 13 hair, 14 hat, 15 earring,
16 necklace, 17 neck, 18 cloth.  Parameter names, shapes and order match the
reference, so the release loads with ``strict=True``.  No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["ParseNet", "ConvLayer", "ResidualBlock", "NUM_CLASSES"]

NUM_CLASSES = 19


class _Identity(nn.Module):
    """``x`` unchanged (no parameters): a norm or activation of type ``'none'``."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class NormLayer(nn.Module):
    """Normalisation of ``channels`` feature maps held in ``norm``: ``'bn'``, ``'in'``, ``'gn'`` or ``'none'``."""

    def __init__(self, channels: int, norm_type: str = "bn") -> None:
        super().__init__()
        kind = norm_type.lower()
        self.norm_type = kind
        if kind == "bn":
            self.norm: nn.Module = nn.BatchNorm2d(channels, affine=True)
        elif kind == "in":
            self.norm = nn.InstanceNorm2d(channels, affine=False)
        elif kind == "gn":
            self.norm = nn.GroupNorm(32, channels, affine=True)
        elif kind == "none":
            self.norm = _Identity()
        else:
            raise ValueError(f"unsupported norm_type {norm_type!r}")

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x)


class ReluLayer(nn.Module):
    """Activation held in ``func``: ``'relu'``, ``'leakyrelu'`` (slope 0.2), ``'prelu'``, ``'selu'`` or ``'none'``."""

    def __init__(self, channels: int, relu_type: str = "relu") -> None:
        super().__init__()
        kind = relu_type.lower()
        if kind == "relu":
            self.func: nn.Module = nn.ReLU()
        elif kind == "leakyrelu":
            self.func = nn.LeakyReLU(0.2)
        elif kind == "prelu":
            self.func = nn.PReLU(channels)
        elif kind == "selu":
            self.func = nn.SELU()
        elif kind == "none":
            self.func = _Identity()
        else:
            raise ValueError(f"unsupported relu_type {relu_type!r}")

    def forward(self, x: Tensor) -> Tensor:
        return self.func(x)


class ConvLayer(nn.Module):
    """[nearest ×2 when ``scale='up'``] → reflection pad → conv (stride 2 when ``'down'``) → norm → activation.

    The conv has a bias unless ``norm_type='bn'``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, scale: str = "none",
                 norm_type: str = "none", relu_type: str = "none", use_pad: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        if scale not in ("none", "up", "down"):
            raise ValueError(f"unknown scale {scale!r}")
        self.use_pad = use_pad
        self.upsample = scale == "up"
        self.reflection_pad = nn.ReflectionPad2d(int(math.ceil((kernel_size - 1) / 2)))
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, 2 if scale == "down" else 1,
                                bias=bias and norm_type != "bn")
        self.relu = ReluLayer(out_channels, relu_type)
        self.norm = NormLayer(out_channels, norm_type=norm_type)

    def forward(self, x: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.use_pad:
            x = self.reflection_pad(x)
        return self.relu(self.norm(self.conv2d(x)))


class ResidualBlock(nn.Module):
    """``shortcut(x) + conv2(conv1(x))``; the shortcut is the identity unless resampling or changing channels.

    ``scale='down'``: conv2 has stride 2; ``'up'``: conv1 upsamples first; the
    shortcut (a plain 3×3 :class:`ConvLayer` with bias) resamples the same way.
    conv2 has no activation.
    """

    def __init__(self, c_in: int, c_out: int, relu_type: str = "prelu", norm_type: str = "bn",
                 scale: str = "none") -> None:
        super().__init__()
        if scale == "none" and c_in == c_out:
            self.shortcut_func: nn.Module = _Identity()
        else:
            self.shortcut_func = ConvLayer(c_in, c_out, 3, scale)
        first, second = {"down": ("none", "down"), "up": ("up", "none"), "none": ("none", "none")}[scale]
        self.conv1 = ConvLayer(c_in, c_out, 3, first, norm_type=norm_type, relu_type=relu_type)
        self.conv2 = ConvLayer(c_out, c_out, 3, second, norm_type=norm_type, relu_type="none")

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut_func(x) + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """Face parsing network (see the module docstring for the released configuration)."""

    def __init__(self, in_size: int = 128, out_size: int = 128, min_feat_size: int = 32, base_ch: int = 64,
                 parsing_ch: int = NUM_CLASSES, res_depth: int = 10, relu_type: str = "prelu",
                 norm_type: str = "bn", ch_range: Sequence[int] = (32, 512)) -> None:
        super().__init__()
        self.res_depth = res_depth
        min_ch, max_ch = ch_range

        def clip(ch: int) -> int:
            return max(min_ch, min(ch, max_ch))

        min_feat_size = min(in_size, min_feat_size)
        down_steps = int(math.log2(in_size // min_feat_size))
        up_steps = int(math.log2(out_size // min_feat_size))
        act = {"norm_type": norm_type, "relu_type": relu_type}

        encoder: list[nn.Module] = [ConvLayer(3, base_ch, 3, "none")]
        head = base_ch
        for _ in range(down_steps):
            encoder.append(ResidualBlock(clip(head), clip(head * 2), scale="down", **act))
            head *= 2
        body = [ResidualBlock(clip(head), clip(head), **act) for _ in range(res_depth)]
        decoder: list[nn.Module] = []
        for _ in range(up_steps):
            decoder.append(ResidualBlock(clip(head), clip(head // 2), scale="up", **act))
            head //= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(*body)
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = ConvLayer(clip(head), 3)
        self.out_mask_conv = ConvLayer(clip(head), parsing_ch)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Parse faces.

        Args:
            x: (B, 3, in_size, in_size) RGB in [-1, 1].

        Returns:
            ``(mask_logits (B, parsing_ch, out_size, out_size), image (B, 3, out_size, out_size))``;
            the class map is ``mask_logits.argmax(1)``; the image is unbounded.
        """
        feat = self.encoder(x)
        x = feat + self.body(feat)
        x = self.decoder(x)
        return self.out_mask_conv(x), self.out_img_conv(x)

