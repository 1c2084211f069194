"""SadTalker's dense motion network (``generator.dense_motion_network.*``).

From the source's 3-D feature volume and two key-point sets it predicts a dense backward warp
(driving → source coordinates) and an occlusion map.  Steps (release behaviour):

1. ``compress``: 1×1×1 conv to ``compress`` channels, BatchNorm, ReLU (depends on the source only:
   :meth:`DenseMotionNetwork.compress_feature`, so a renderer can do it once per photo);
2. K+1 sparse motions: the identity grid and, per key point k, ``grid − kd_k + ks_k``;
3. the compressed volume sampled with each motion (``grid_sample``, trilinear, zero padding,
   ``align_corners=False``), plus heat maps ``G(kd) − G(ks)`` (variance 0.01; zeros for the
   identity) → a 3-D hourglass;
4. ``mask``: 7×7×7 conv to K+1 channels, softmax over them, values below 1e-3 set to 0 and
   **not renormalised**; deformation = Σ mask · motion;
5. ``occlusion``: the hourglass output viewed as 2-D ``(C·D, H, W)`` → 7×7 conv → sigmoid.

Batching: the source volume may have batch 1 while the key points have batch B (many frames of
one photo).  The source is then never copied B·(K+1) times: the frames' sampling grids are folded
into the depth axis of a single ``grid_sample`` call, which samples every point exactly as B
separate calls would.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from retalk.networks.sadtalker_blocks import Hourglass, coordinate_grid_3d, kp2gaussian

__all__ = ["DenseMotionNetwork", "sample_volume"]


def sample_volume(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` of ``n`` volumes with ``B`` grids, ``B`` a multiple of ``n``.

    Args:
        volume: ``(n, C, D, H, W)``.
        grid: ``(B, D', H', W', 3)`` normalised ``(x, y, z)``; grid ``b`` samples volume
            ``b // (B // n)``.

    Returns:
        ``(B, C, D', H', W')``, trilinear, zero padding, ``align_corners=False``.
    """
    n, c = volume.shape[:2]
    b, d, h, w, _ = grid.shape
    if b % n:
        raise ValueError(f"{b} sampling grids for {n} volumes")
    per = b // n
    folded = grid.reshape(n, per * d, h, w, 3)
    out = F.grid_sample(volume, folded, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(n, c, per, d, h, w).transpose(1, 2).reshape(b, c, d, h, w)


class DenseMotionNetwork(nn.Module):
    """Dense 3-D motion and occlusion from key points (released arguments in ``facerender.yaml``:
    ``block_expansion=32, num_blocks=5, max_features=1024, num_kp=15, feature_channel=32,
    reshape_depth=16, compress=4, estimate_occlusion_map=True``).
    """

    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int,
                 feature_channel: int, reshape_depth: int, compress: int,
                 estimate_occlusion_map: bool = False) -> None:
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion, in_features=(num_kp + 1) * (compress + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.occlusion: nn.Conv2d | None = (
            nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3)
            if estimate_occlusion_map else None
        )
        self.num_kp = num_kp

    def compress_feature(self, feature: torch.Tensor) -> torch.Tensor:
        """``(n, feature_channel, D, H, W)`` → ``(n, compress, D, H, W)`` (source-only step 1)."""
        return F.relu(self.norm(self.compress(feature)))

    def _sparse_motions(self, shape: tuple[int, int, int], kp_driving: torch.Tensor,
                        kp_source: torch.Tensor) -> torch.Tensor:
        """``(B, K+1, D, H, W, 3)``: identity, then ``grid − kd_k + ks_k`` per key point."""
        d, h, w = shape
        bs, k = kp_driving.shape[:2]
        identity = coordinate_grid_3d(d, h, w, like=kp_source).view(1, 1, d, h, w, 3)
        to_source = (identity - kp_driving.view(bs, k, 1, 1, 1, 3)) + kp_source.view(-1, k, 1, 1, 1, 3)
        return torch.cat([identity.expand(bs, 1, d, h, w, 3), to_source], dim=1)

    def motion(self, compressed: torch.Tensor, kp_driving: torch.Tensor,
               kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Steps 2-5 on an already compressed source volume.

        Args:
            compressed: ``(n, compress, D, H, W)`` from :meth:`compress_feature`, n = 1 or B.
            kp_driving: ``(B, K, 3)``.
            kp_source: ``(n, K, 3)`` (or ``(B, K, 3)``).

        Returns:
            ``mask`` ``(B, K+1, D, H, W)`` (softmax, before thresholding), ``deformation``
            ``(B, D, H, W, 3)`` and, with the occlusion head, ``occlusion_map`` ``(B, 1, H, W)`` in [0, 1].
        """
        n, _, d, h, w = compressed.shape
        bs, k = kp_driving.shape[:2]
        sparse = self._sparse_motions((d, h, w), kp_driving, kp_source)
        deformed = sample_volume(compressed, sparse.reshape(bs, (k + 1) * d, h, w, 3))
        deformed = deformed.view(bs, -1, k + 1, d, h, w).transpose(1, 2)  # (B, K+1, c, D, H, W)

        heat = kp2gaussian(kp_driving, (d, h, w), 0.01) - kp2gaussian(kp_source, (d, h, w), 0.01)
        heat = torch.cat([heat.new_zeros(bs, 1, d, h, w), heat], dim=1).unsqueeze(2)
        hourglass_in = torch.cat([heat, deformed], dim=2).reshape(bs, -1, d, h, w)

        prediction = self.hourglass(hourglass_in)
        mask = F.softmax(self.mask(prediction), dim=1)
        out = {"mask": mask}
        kept = torch.where(mask < 1e-3, torch.zeros_like(mask), mask).unsqueeze(2)
        deformation = (sparse.permute(0, 1, 5, 2, 3, 4) * kept).sum(dim=1)
        out["deformation"] = deformation.permute(0, 2, 3, 4, 1)
        if self.occlusion is not None:
            pb, pc, pd, ph, pw = prediction.shape
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction.view(pb, pc * pd, ph, pw)))
        return out

    def forward(self, feature: torch.Tensor, kp_driving: dict[str, torch.Tensor],
                kp_source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Reference call: ``feature`` ``(B, feature_channel, D, H, W)``, key points as ``{'value': (B, K, 3)}``."""
        return self.motion(self.compress_feature(feature), kp_driving["value"], kp_source["value"])
