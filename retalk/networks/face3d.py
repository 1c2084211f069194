"""Deep3DFaceRecon's 3DMM coefficient regressor (ResNet-50), as released.

One network serves VideoReTalking (``face3d_pretrain_epoch_20.pth``,
``['net_recon']``) and SadTalker (legacy ``epoch_20.pth`` ``['net_recon']``,
or the ``face_3drecon.`` keys of ``SadTalker_V0.0.2_256/512.safetensors``).
It is the reference's ``ReconNetWrapper('resnet50', use_last_fc=False)``:
a torchvision-layout ResNet-50 (``backbone.*``, see
:mod:`retalk.networks.resnet`) followed by seven 1x1 convolution heads
(``final_layers.0..6``) on the pooled 2048-d feature, whose outputs are
concatenated.  No I/O here: load it with ``retalk.checkpoints.load("face3d")``.

Input: an aligned face crop, (B, 3, 224, 224) float32, **RGB in [0, 1]**
(``uint8 / 255``, no mean/std), cut by the reference's ``align_img``
(5-point POS fit, rescale factor 102, bicubic resize, 224x224 crop).

Output: (B, 257) coefficients, split as :data:`COEFF_SLICES`:

=========  =========  ===============================================
name       columns    meaning
=========  =========  ===============================================
id         0:80       identity (BFM shape basis)
exp        80:144     expression (64 basis weights)
tex        144:224    albedo texture
angle      224:227    head rotation (pitch, yaw, roll; radians)
gamma      227:254    spherical-harmonics lighting (9 x RGB)
trans      254:257    translation (tx, ty from head 5; tz from head 6)
=========  =========  ===============================================
"""
from __future__ import annotations

from types import MappingProxyType

import torch
from torch import nn

from retalk.networks.resnet import ResNet50

__all__ = ["COEFF_SLICES", "ReconNet", "split_coeffs"]

#: Output widths of the seven heads, in order: id, exp, tex, angle, gamma, (tx, ty), tz.
_HEADS = (80, 64, 80, 3, 27, 2, 1)

#: Column ranges of the 257 coefficients (see the module docstring).
COEFF_SLICES: MappingProxyType[str, slice] = MappingProxyType({
    "id": slice(0, 80),
    "exp": slice(80, 144),
    "tex": slice(144, 224),
    "angle": slice(224, 227),
    "gamma": slice(227, 254),
    "trans": slice(254, 257),
})


class ReconNet(nn.Module):
    """ResNet-50 3DMM regressor: (B, 3, 224, 224) RGB [0, 1] -> (B, 257).

    State-dict keys: ``backbone.*`` (torchvision ResNet-50 without ``fc``)
    and ``final_layers.{0..6}.{weight,bias}`` (1x1 convs 2048 -> 80, 64, 80,
    3, 27, 2, 1); 332 entries including 53 BatchNorm ``num_batches_tracked``.
    """

    #: Number of coefficients produced.
    fc_dim = 257

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50()
        self.final_layers = nn.ModuleList(nn.Conv2d(2048, width, 1, bias=True) for width in _HEADS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients (B, 257) of face crops ``x`` (B, 3, 224, 224), RGB in [0, 1]."""
        feature = self.backbone(x)
        heads = [layer(feature) for layer in self.final_layers]
        return torch.flatten(torch.cat(heads, dim=1), 1)


def split_coeffs(coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Name the columns of ``coeffs`` (..., 257): id, exp, tex, angle, gamma, trans (views)."""
    if coeffs.shape[-1] != ReconNet.fc_dim:
        raise ValueError(f"expected {ReconNet.fc_dim} coefficients in the last dimension, got {coeffs.shape[-1]}")
    return {name: coeffs[..., cols] for name, cols in COEFF_SLICES.items()}
