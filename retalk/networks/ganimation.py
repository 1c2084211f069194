"""GANimation expression generator (``30_net_gen.pth``; VideoReTalking's ``--up_face`` option).

:class:`SplitGenerator` takes a face and a target action-unit (AU) vector,
tiles the AUs over the image, and runs a ResNet-style encoder/decoder whose
last features feed two heads: a colour image (tanh) and an attention mask
(sigmoid).  The caller blends them: ``fake = A·src + (1 − A)·color``.

Released configuration: ``SplitGenerator(3, 17, 64, InstanceNorm(affine=False),
n_blocks=6)``, zero padding.  AU order: AU01, 02, 04, 05, 06, 07, 09, 10, 12, 14,
15, 17, 20, 23, 25, 26, 45.  Images (B, 3, H, W) RGB in [-1, 1], H and W
multiples of 4 (VideoReTalking uses 128×128).  Parameter names and shapes match
the reference, so the release loads with ``strict=True``.  No I/O.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SplitGenerator", "ResnetBlock", "NUM_AUS"]

NUM_AUS = 17


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":  # affine=False, no running statistics: no state-dict entries
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    raise ValueError(f"unsupported norm {kind!r} (expected 'instance' or 'batch')")


class ResnetBlock(nn.Module):
    """``x + [conv3×3 → norm → ReLU → conv3×3 → norm](x)`` in ``conv_block`` (zero padding 1)."""

    def __init__(self, dim: int, norm: str = "instance", use_bias: bool = True) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=use_bias),
            _norm(norm, dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=use_bias),
            _norm(norm, dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class SplitGenerator(nn.Module):
    """GANimation generator with separate colour and attention heads.

    ``model``: conv7×7 → norm → ReLU, two [conv4×4 stride 2 → norm → ReLU],
    ``n_blocks`` :class:`ResnetBlock`, two [transposed conv4×4 stride 2 → norm →
    ReLU]; ``color_top``: conv7×7 (no bias) → tanh; ``au_top``: conv7×7 (no
    bias) → sigmoid.  Convs have biases exactly when the norm is instance norm.
    """

    def __init__(self, img_nc: int = 3, aus_nc: int = NUM_AUS, ngf: int = 64, norm: str = "instance",
                 n_blocks: int = 6) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError("n_blocks must be >= 0")
        self.input_nc = img_nc + aus_nc
        self.ngf = ngf
        bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.Conv2d(self.input_nc, ngf, kernel_size=7, stride=1, padding=3, bias=bias),
            _norm(norm, ngf),
            nn.ReLU(),
        ]
        for i in range(2):
            ch = ngf * 2**i
            layers += [nn.Conv2d(ch, ch * 2, kernel_size=4, stride=2, padding=1, bias=bias),
                       _norm(norm, ch * 2), nn.ReLU()]
        layers += [ResnetBlock(ngf * 4, norm=norm, use_bias=bias) for _ in range(n_blocks)]
        for i in range(2):
            ch = ngf * 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ch, ch // 2, kernel_size=4, stride=2, padding=1, bias=bias),
                       _norm(norm, ch // 2), nn.ReLU()]
        self.model = nn.Sequential(*layers)
        self.color_top = nn.Sequential(nn.Conv2d(ngf, img_nc, kernel_size=7, stride=1, padding=3, bias=False),
                                       nn.Tanh())
        self.au_top = nn.Sequential(nn.Conv2d(ngf, 1, kernel_size=7, stride=1, padding=3, bias=False),
                                    nn.Sigmoid())

    def forward(self, img: Tensor, au: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Generate the colour image and attention mask for target AUs.

        Args:
            img: (B, img_nc, H, W) RGB in [-1, 1].
            au: (B, aus_nc) target AU intensities (VideoReTalking: 0 … 0.3).

        Returns:
            ``(color (B, img_nc, H, W) in [-1, 1], attention (B, 1, H, W) in [0, 1],
            features (B, ngf, H, W))`` — the reference's three outputs; the result
            image is ``attention·img + (1 − attention)·color``.
        """
        tiled = au[:, :, None, None].expand(au.shape[0], au.shape[1], img.shape[2], img.shape[3])
        feats = self.model(torch.cat([img, tiled], dim=1))
        return self.color_top(feats), self.au_top(feats), feats
