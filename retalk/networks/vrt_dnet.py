"""VideoReTalking's D-Net (PIRenderer-style expression editing), as released in ``DNet.pt``.

Three parts, each conditioned on one 256-d motion descriptor:

* :class:`MappingNet` (``mapping_net``): a 1-D temporal conv net over a window of
  3DMM coefficients → descriptor (B, 256, 1).
* :class:`WarpingNet` (``warpping_net``, the reference's spelling): an ADAIN
  hourglass predicts a flow field (B, 2, 64, 64) in pixels of the 64x64 grid;
  the source image is warped by it with ``grid_sample`` (bilinear, zero
  padding, ``align_corners=False``) after the normalised grid is upsampled
  bilinearly to the image size.
* :class:`EditingNet` (``editing_net``): a U-Net over (source ‖ warped image)
  whose decoder is modulated by the descriptor (FineADAINResBlock2d with the
  reference's dead first branch, see :mod:`retalk.networks.vrt_blocks`).

Tensor conventions (VideoReTalking step 3):

* source image: (B, 3, 256, 256) float32, **RGB in [-1, 1]**
  (``uint8 / 255``, then ``(x - 0.5) / 0.5``);
* driving coefficients: (B, 73, 26) float32 — channels = exp 64 ‖ angle 3 ‖
  trans 3 ‖ crop (s, tx, ty) 3, time = frames idx-13 … idx+12 (column 13 is
  the current frame); the window length must be 26 (the mapping net shrinks
  it 26 → 20 → 14 → 8 → 2 before averaging).

No I/O here: load the network with ``retalk.checkpoints.load("dnet")``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from retalk.networks.vrt_blocks import ADAIN, VRT_SLOPE, FineDecoder, FineEncoder, LayerNorm2d

__all__ = [
    "MappingNet",
    "ADAINEncoderBlock",
    "ADAINDecoderBlock",
    "ADAINEncoder",
    "ADAINDecoder",
    "ADAINHourglass",
    "WarpingNet",
    "EditingNet",
    "DNet",
    "flow_to_deformation",
    "warp_image",
]


class MappingNet(nn.Module):
    """Coefficient window (B, coeff_nc, T) → descriptor (B, descriptor_nc, 1).

    ``first.0`` Conv1d(coeff_nc, descriptor_nc, 7) (no padding), then for each
    layer ``encoder{i}`` = [LeakyReLU(0.1), Conv1d(k3, dilation 3)] (key ``.1``)
    with the residual ``out = enc(out) + out[:, :, 3:-3]``; finally the mean over
    time.  Each step shortens the window by 6 (T = 26: 20, 14, 8, 2 → 1).
    """

    def __init__(self, coeff_nc: int = 73, descriptor_nc: int = 256, layer: int = 3) -> None:
        super().__init__()
        self.layer = layer
        self.first = nn.Sequential(nn.Conv1d(coeff_nc, descriptor_nc, kernel_size=7, padding=0))
        for i in range(layer):
            self.add_module(f"encoder{i}", nn.Sequential(
                nn.LeakyReLU(VRT_SLOPE),
                nn.Conv1d(descriptor_nc, descriptor_nc, kernel_size=3, padding=0, dilation=3),
            ))
        self.pooling = nn.AdaptiveAvgPool1d(1)
        self.output_nc = descriptor_nc

    def forward(self, input_3dmm: Tensor) -> Tensor:
        out = self.first(input_3dmm)
        for i in range(self.layer):
            out = getattr(self, f"encoder{i}")(out) + out[:, :, 3:-3]
        return self.pooling(out)


class ADAINEncoderBlock(nn.Module):
    """``conv_0(act(norm_0(x, z)))`` (4x4 stride 2: halves H, W) then ``conv_1(act(norm_1(·, z)))`` (3x3)."""

    def __init__(self, input_nc: int, output_nc: int, feature_nc: int) -> None:
        super().__init__()
        self.conv_0 = nn.Conv2d(input_nc, output_nc, kernel_size=4, stride=2, padding=1)
        self.conv_1 = nn.Conv2d(output_nc, output_nc, kernel_size=3, stride=1, padding=1)
        self.norm_0 = ADAIN(input_nc, feature_nc)
        self.norm_1 = ADAIN(output_nc, feature_nc)
        self.actvn = nn.LeakyReLU(VRT_SLOPE)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        x = self.conv_0(self.actvn(self.norm_0(x, z)))
        return self.conv_1(self.actvn(self.norm_1(x, z)))


class ADAINDecoderBlock(nn.Module):
    """Residual upsampling block (doubles H, W), ADAIN-modulated.

    ``x_s = conv_s(act(norm_s(x)))``; ``dx = conv_1(act(norm_1(conv_0(act(norm_0(x))))))``;
    output ``x_s + dx``.  ``conv_0`` is a 3x3 conv (input → hidden); ``conv_1`` and
    ``conv_s`` are ConvTranspose2d(k3, stride 2, pad 1, output_padding 1).
    """

    def __init__(self, input_nc: int, output_nc: int, hidden_nc: int, feature_nc: int) -> None:
        super().__init__()
        self.actvn = nn.LeakyReLU(VRT_SLOPE)
        up = {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}
        self.conv_0 = nn.Conv2d(input_nc, hidden_nc, kernel_size=3, stride=1, padding=1)
        self.conv_1 = nn.ConvTranspose2d(hidden_nc, output_nc, **up)
        self.conv_s = nn.ConvTranspose2d(input_nc, output_nc, **up)
        self.norm_0 = ADAIN(input_nc, feature_nc)
        self.norm_1 = ADAIN(hidden_nc, feature_nc)
        self.norm_s = ADAIN(input_nc, feature_nc)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        x_s = self.conv_s(self.actvn(self.norm_s(x, z)))
        dx = self.conv_0(self.actvn(self.norm_0(x, z)))
        dx = self.conv_1(self.actvn(self.norm_1(dx, z)))
        return x_s + dx


class ADAINEncoder(nn.Module):
    """``input_layer`` Conv 7x7 (image_nc → ngf), then ``encoder0..layers-1`` (channels ``min(ngf·2^(i+1), img_f)``).

    Returns ``layers + 1`` features, full resolution first, each level halving H, W.
    """

    def __init__(self, image_nc: int, pose_nc: int, ngf: int, img_f: int, layers: int) -> None:
        super().__init__()
        self.layers = layers
        self.input_layer = nn.Conv2d(image_nc, ngf, kernel_size=7, stride=1, padding=3)
        out_channels = ngf
        for i in range(layers):
            in_channels = min(ngf * 2**i, img_f)
            out_channels = min(ngf * 2 ** (i + 1), img_f)
            self.add_module(f"encoder{i}", ADAINEncoderBlock(in_channels, out_channels, pose_nc))
        self.output_nc = out_channels

    def forward(self, x: Tensor, z: Tensor) -> list[Tensor]:
        out = self.input_layer(x)
        features = [out]
        for i in range(self.layers):
            out = getattr(self, f"encoder{i}")(out, z)
            features.append(out)
        return features


class ADAINDecoder(nn.Module):
    """``decoder{i}`` for i = encoder_layers-1 … encoder_layers-decoder_layers, each followed by
    concatenation with the next-shallower encoder feature (skip connections always on).

    Block i maps ``min(ngf·2^(i+1), img_f)`` channels (doubled by the skip except for the
    deepest) to ``min(ngf·2^i, img_f)``; the output has twice that many channels.
    """

    def __init__(self, pose_nc: int, ngf: int, img_f: int, encoder_layers: int, decoder_layers: int) -> None:
        super().__init__()
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        out_channels = ngf
        for i in reversed(range(encoder_layers - decoder_layers, encoder_layers)):
            in_channels = min(ngf * 2 ** (i + 1), img_f)
            if i != encoder_layers - 1:
                in_channels *= 2
            out_channels = min(ngf * 2**i, img_f)
            self.add_module(f"decoder{i}", ADAINDecoderBlock(in_channels, out_channels, out_channels, pose_nc))
        self.output_nc = out_channels * 2

    def forward(self, x: list[Tensor], z: Tensor) -> Tensor:
        """``x``: the encoder's feature list (not modified); ``z``: descriptor (B, pose_nc, ...)."""
        skips = list(x)
        out = skips.pop()
        for i in reversed(range(self.encoder_layers - self.decoder_layers, self.encoder_layers)):
            out = getattr(self, f"decoder{i}")(out, z)
            out = torch.cat([out, skips.pop()], 1)
        return out


class ADAINHourglass(nn.Module):
    """:class:`ADAINEncoder` then :class:`ADAINDecoder`; (B, image_nc, H, W) → (B, output_nc, H / 2^(enc-dec), ...)."""

    def __init__(self, image_nc: int, pose_nc: int, ngf: int, img_f: int,
                 encoder_layers: int, decoder_layers: int) -> None:
        super().__init__()
        self.encoder = ADAINEncoder(image_nc, pose_nc, ngf, img_f, encoder_layers)
        self.decoder = ADAINDecoder(pose_nc, ngf, img_f, encoder_layers, decoder_layers)
        self.output_nc = self.decoder.output_nc

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.decoder(self.encoder(x, z), z)


def flow_to_deformation(flow: Tensor) -> Tensor:
    """Sampling grid (B, h, w, 2) in [-1, 1] (x, y order) from a flow (B, 2, h, w) in grid pixels.

    ``grid = 2·(i / (n−1)) − 1`` per axis plus ``2·flow / (n−1)`` (x uses w, y uses h).
    """
    _, _, h, w = flow.shape
    xs = 2 * (torch.arange(w, dtype=flow.dtype, device=flow.device) / (w - 1)) - 1
    ys = 2 * (torch.arange(h, dtype=flow.dtype, device=flow.device) / (h - 1)) - 1
    grid = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], dim=2)
    flow_norm = 2 * torch.cat([flow[:, :1] / (w - 1), flow[:, 1:] / (h - 1)], 1)
    return grid.unsqueeze(0) + flow_norm.permute(0, 2, 3, 1)


def warp_image(source_image: Tensor, deformation: Tensor) -> Tensor:
    """Warp ``source_image`` (B, C, H, W) by ``deformation`` (B, h, w, 2).

    A grid of another size is first resized bilinearly (``align_corners=False``) to (H, W);
    then ``grid_sample`` (bilinear, zero padding, ``align_corners=False``).
    """
    _, h_old, w_old, _ = deformation.shape
    _, _, h, w = source_image.shape
    if (h_old, w_old) != (h, w):
        deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                    align_corners=False).permute(0, 2, 3, 1)
    return F.grid_sample(source_image, deformation, mode="bilinear", padding_mode="zeros", align_corners=False)


class WarpingNet(nn.Module):
    """Flow prediction and warping of the source image.

    ``hourglass`` (ADAIN, 5 encoder / 3 decoder levels, 32 → 256 channels) gives
    (B, 256, H/4, W/4); ``flow_out`` = LayerNorm2d → LeakyReLU(0.1) → Conv 7x7 → 2
    channels (keys ``flow_out.0``, ``flow_out.2``).
    """

    def __init__(self, image_nc: int = 3, descriptor_nc: int = 256, base_nc: int = 32, max_nc: int = 256,
                 encoder_layer: int = 5, decoder_layer: int = 3) -> None:
        super().__init__()
        self.descriptor_nc = descriptor_nc
        self.hourglass = ADAINHourglass(image_nc, descriptor_nc, base_nc, max_nc, encoder_layer, decoder_layer)
        channels = self.hourglass.output_nc
        self.flow_out = nn.Sequential(LayerNorm2d(channels), nn.LeakyReLU(VRT_SLOPE),
                                      nn.Conv2d(channels, 2, kernel_size=7, stride=1, padding=3))

    def forward(self, input_image: Tensor, descriptor: Tensor) -> dict[str, Tensor]:
        """``{'flow_field': (B, 2, H/4, W/4), 'warp_image': (B, C, H, W)}``."""
        flow = self.flow_out(self.hourglass(input_image, descriptor))
        return {"flow_field": flow, "warp_image": warp_image(input_image, flow_to_deformation(flow))}


class EditingNet(nn.Module):
    """U-Net refining the warped image: FineEncoder(2·image_nc → 64 … 256, 3 levels) and a
    FineDecoder modulated by the descriptor; output (B, image_nc, H, W) in (-1, 1) (tanh)."""

    def __init__(self, image_nc: int = 3, descriptor_nc: int = 256, layer: int = 3, base_nc: int = 64,
                 max_nc: int = 256, num_res_blocks: int = 2) -> None:
        super().__init__()
        self.descriptor_nc = descriptor_nc
        self.encoder = FineEncoder(image_nc * 2, base_nc, max_nc, layer)
        self.decoder = FineDecoder(image_nc, descriptor_nc, base_nc, max_nc, layer, num_res_blocks)

    def forward(self, input_image: Tensor, warp_image: Tensor, descriptor: Tensor) -> Tensor:
        return self.decoder(self.encoder(torch.cat([input_image, warp_image], 1)), descriptor)


class DNet(nn.Module):
    """VideoReTalking D-Net: ``DNet()(source, coeffs)``.

    Args of :meth:`forward`:
        input_image: (B, 3, 256, 256) RGB in [-1, 1].
        driving_source: (B, 73, 26) coefficient window (see the module docstring).
        stage: ``'warp'`` runs only the mapping and warping nets (no
            ``fake_image``), anything else the whole network.

    Returns:
        dict with ``flow_field`` (B, 2, 64, 64), ``warp_image`` (B, 3, 256, 256)
        and, unless ``stage == 'warp'``, ``fake_image`` (B, 3, 256, 256) RGB in
        (-1, 1) — the edited face the pipeline keeps.

    304 state-dict entries, all parameters (no buffers).
    """

    def __init__(self) -> None:
        super().__init__()
        self.mapping_net = MappingNet()
        self.warpping_net = WarpingNet()
        self.editing_net = EditingNet()

    def forward(self, input_image: Tensor, driving_source: Tensor, stage: str | None = None) -> dict[str, Tensor]:
        descriptor = self.mapping_net(driving_source)
        output = self.warpping_net(input_image, descriptor)
        if stage != "warp":
            output["fake_image"] = self.editing_net(input_image, output["warp_image"], descriptor)
        return output
