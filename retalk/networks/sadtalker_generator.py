"""SadTalker's face renderer ``OcclusionAwareSPADEGenerator`` (``generator`` in the release).

A plain :class:`torch.nn.Module` whose state dict matches ``generator.*`` of
``SadTalker_V0.0.2_256.safetensors`` / ``_512`` and ``generator`` of the legacy
``facevid2vid_00189-model.pth.tar`` (386 entries).  No I/O here: see :mod:`retalk.checkpoints`.

Reference call (same arguments and return structure as the release's module)::

    gen(source_image, kp_driving={'value': kd}, kp_source={'value': ks})['prediction']

* ``source_image`` ``(B, 3, S, S)`` RGB in ``[0, 1]``, S = 256 or 512 (divisible by 4·2**5 for the
  released dense-motion hourglass: S/4 must be divisible by 32);
* ``kd``, ``ks`` ``(B, 15, 3)`` key points ``(x, y, z)`` in ``[-1, 1]``;
* returns ``prediction`` ``(B, 3, S, S)`` RGB in ``[0, 1]``, plus ``mask`` ``(B, 16, 16, S/4, S/4)``
  and ``occlusion_map`` ``(B, 1, S/4, S/4)``.

Fast path (identical numbers, see :meth:`OcclusionAwareSPADEGenerator.render`): the source
encoder (and the dense-motion compression of its volume) depends on the photo only, so
:meth:`~OcclusionAwareSPADEGenerator.encode_source` runs once per photo and
:meth:`~OcclusionAwareSPADEGenerator.render` renders any number of frames from it, in chunks of
``max_batch`` frames, without copying the source per frame.

Memory (fp32, CPU inference, measured peak of activations per frame of a chunk at S = 128:
166 MB, scaling with S²): about 0.7 GB per frame at S = 256 and 2.7 GB at S = 512, on top of
the weights (0.4 GB) and the encoded source (9 MB at 256); choose ``max_batch`` accordingly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from retalk.networks.sadtalker_blocks import DownBlock2d, ResBlock3d, SameBlock2d
from retalk.networks.sadtalker_dense_motion import DenseMotionNetwork, sample_volume
from retalk.networks.sadtalker_spade import SPADEDecoder

__all__ = ["GeneratorSource", "OcclusionAwareSPADEGenerator", "RELEASE_DENSE_MOTION"]

#: ``dense_motion_params`` of the release (``facerender.yaml``).
RELEASE_DENSE_MOTION: dict[str, int] = {
    "block_expansion": 32, "max_features": 1024, "num_blocks": 5, "reshape_depth": 16, "compress": 4,
}


@dataclass(frozen=True, eq=False)
class GeneratorSource:
    """What the renderer needs from one source photo (or n photos), computed once.

    Attributes:
        feature_3d: ``(n, reshape_channel, reshape_depth, S/4, S/4)`` appearance volume.
        compressed: ``(n, compress, reshape_depth, S/4, S/4)`` its dense-motion compression.
    """

    feature_3d: torch.Tensor
    compressed: torch.Tensor

    @property
    def batch(self) -> int:
        """Number of source photos n."""
        return int(self.feature_3d.shape[0])

    def select(self, start: int, stop: int) -> GeneratorSource:
        """Rows ``start:stop`` (views, no copy)."""
        return GeneratorSource(self.feature_3d[start:stop], self.compressed[start:stop])


class OcclusionAwareSPADEGenerator(nn.Module):
    """Warp a source photo's 3-D features to driving key points, then decode with SPADE.

    Defaults are the released configuration.  The SPADE decoder's widths are fixed by the release
    (256 input channels), so ``block_expansion * 2**num_down_blocks`` must be 256.
    """

    def __init__(self, image_channel: int = 3, feature_channel: int = 32, num_kp: int = 15,
                 block_expansion: int = 64, max_features: int = 512, num_down_blocks: int = 2,
                 reshape_channel: int = 32, reshape_depth: int = 16, num_resblocks: int = 6,
                 estimate_occlusion_map: bool = True, dense_motion_params: dict[str, int] | None = None,
                 estimate_jacobian: bool = False) -> None:
        super().__init__()
        if estimate_jacobian:
            raise ValueError("OcclusionAwareSPADEGenerator: Jacobians are not part of SadTalker's release")
        if block_expansion * 2 ** num_down_blocks != 256:
            raise ValueError("the SPADE decoder takes 256 channels: block_expansion * 2**num_down_blocks must be 256")
        params = dict(RELEASE_DENSE_MOTION if dense_motion_params is None else dense_motion_params)
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, feature_channel=feature_channel,
                                                      estimate_occlusion_map=estimate_occlusion_map, **params)
        self.first = SameBlock2d(image_channel, block_expansion, kernel_size=(3, 3), padding=(1, 1))
        widths = [min(max_features, block_expansion * 2 ** i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            DownBlock2d(widths[i], widths[i + 1], kernel_size=(3, 3), padding=(1, 1)) for i in range(num_down_blocks)
        )
        self.second = nn.Conv2d(widths[-1], max_features, kernel_size=1, stride=1)
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))
        out_features = block_expansion * 2 ** num_down_blocks
        self.third = SameBlock2d(max_features, out_features, kernel_size=(3, 3), padding=(1, 1), lrelu=True)
        self.fourth = nn.Conv2d(out_features, out_features, kernel_size=1, stride=1)
        self.estimate_occlusion_map = estimate_occlusion_map
        self.image_channel = image_channel
        self.decoder = SPADEDecoder()

    def encode_source(self, source_image: torch.Tensor) -> GeneratorSource:
        """The per-photo half: ``(n, 3, S, S)`` RGB in [0, 1] → :class:`GeneratorSource`."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        bs, _, h, w = out.shape
        feature_3d = self.resblocks_3d(out.view(bs, self.reshape_channel, self.reshape_depth, h, w))
        return GeneratorSource(feature_3d, self.dense_motion_network.compress_feature(feature_3d))

    @staticmethod
    def _warp(volume: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """``(n, C, D, H, W)`` sampled at ``(B, D', H', W', 3)`` → ``(B, C, D, H, W)``."""
        _, d_old, h_old, w_old, _ = deformation.shape
        d, h, w = volume.shape[2:]
        if (d_old, h_old, w_old) != (d, h, w):  # never with the release's shapes
            deformation = F.interpolate(deformation.permute(0, 4, 1, 2, 3), size=(d, h, w), mode="trilinear",
                                        align_corners=False).permute(0, 2, 3, 4, 1)
        return sample_volume(volume, deformation)

    def render_dict(self, source: GeneratorSource, kp_driving: torch.Tensor,
                    kp_source: torch.Tensor, plain: bool = False) -> dict[str, torch.Tensor]:
        """The per-frame half, all frames at once; returns the reference's output dict.

        Args:
            source: from :meth:`encode_source`, batch n = 1 (one photo for all frames) or B.
            kp_driving: ``(B, K, 3)`` driving key points.
            kp_source: ``(n, K, 3)`` or ``(B, K, 3)`` source key points.
            plain: decode with the release's op sequence (``SPADEDecoder.forward_plain``, the
                reference's cost) instead of the fast path (same maths, see ``sadtalker_spade_fast``).
        """
        dense = self.dense_motion_network.motion(source.compressed, kp_driving, kp_source)
        out = self._warp(source.feature_3d, dense["deformation"])
        bs, c, d, h, w = out.shape
        out = self.fourth(self.third(out.reshape(bs, c * d, h, w)))
        result = {"mask": dense["mask"]}
        occlusion = dense.get("occlusion_map")
        if occlusion is not None:
            result["occlusion_map"] = occlusion
            if out.shape[2:] != occlusion.shape[2:]:  # never with the release's shapes
                occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear", align_corners=False)
            out = out * occlusion
        result["prediction"] = self.decoder.forward_plain(out) if plain else self.decoder(out)
        return result

    def render(self, source: GeneratorSource, kp_driving: torch.Tensor, kp_source: torch.Tensor,
               max_batch: int | None = None) -> torch.Tensor:
        """Render B frames of the source photo(s), at most ``max_batch`` frames per network call.

        Args:
            source: from :meth:`encode_source`; batch 1 (shared by all frames, not copied) or B.
            kp_driving: ``(B, K, 3)`` driving key points (x, y, z) in [-1, 1].
            kp_source: ``(1, K, 3)`` or ``(B, K, 3)`` source key points.
            max_batch: frames per chunk (``None``: all at once); bounds the memory, see the module doc.

        Returns:
            ``(B, 3, S, S)`` RGB in [0, 1]; equal to :meth:`forward`'s ``prediction``.
        """
        total = int(kp_driving.shape[0])
        if total == 0:
            raise ValueError("render: no frames (kp_driving has batch 0)")
        if source.batch not in (1, total) or kp_source.shape[0] not in (1, total):
            raise ValueError(f"source batch {source.batch} and kp_source batch {kp_source.shape[0]} "
                             f"must be 1 or the number of frames {total}")
        step = total if max_batch is None else max(1, int(max_batch))
        parts = []
        for start in range(0, total, step):
            stop = min(total, start + step)
            src = source if source.batch == 1 else source.select(start, stop)
            ks = kp_source if kp_source.shape[0] == 1 else kp_source[start:stop]
            parts.append(self.render_dict(src, kp_driving[start:stop], ks)["prediction"])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def forward(self, source_image: torch.Tensor, kp_driving: dict[str, Any],
                kp_source: dict[str, Any], plain: bool = False) -> dict[str, torch.Tensor]:
        """Reference call; ``= render_dict(encode_source(source_image), kd, ks, plain)``."""
        return self.render_dict(self.encode_source(source_image), kp_driving["value"], kp_source["value"], plain)
