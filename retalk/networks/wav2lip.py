"""Wav2Lip generator and its lip-sync expert (``SyncNet_color``), as released.

Plain :class:`torch.nn.Module` definitions whose parameter names and shapes
match the released ``wav2lip.pth`` / ``wav2lip_gan.pth`` and
``lipsync_expert.pth`` state dicts (after removing the ``module.`` prefix),
so they load with ``strict=True``.  No I/O here: see
:mod:`retalk.checkpoints`.

Tensor conventions (both networks):

* audio: ``(B, 1, 80, 16)`` float32, a 16-column (0.2 s) window of
  :func:`retalk.speech.mel.melspectrogram` (values in ``[-4, 4]``);
* faces: **BGR** images scaled to ``[0, 1]`` (``uint8 / 255``), NCHW.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvBlock", "ConvTransposeBlock", "Wav2Lip", "SyncNetColor", "audio_encoder"]

_IntOr2 = int | tuple[int, int]


class ConvBlock(nn.Module):
    """Conv2d (with bias) -> BatchNorm2d -> optional identity skip -> ReLU.

    State-dict names: ``conv_block.0`` (the convolution) and ``conv_block.1``
    (the batch norm), as in the released checkpoints.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: _IntOr2,
        stride: _IntOr2 = 1,
        padding: _IntOr2 = 0,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if residual and (cin != cout):
            raise ValueError("a residual block needs cin == cout")
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size, stride, padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_block(x)
        if self.residual:
            y = y + x
        return self.act(y)


class ConvTransposeBlock(nn.Module):
    """ConvTranspose2d (with bias) -> BatchNorm2d -> ReLU (``conv_block.0/1``)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int,
        padding: int,
        output_padding: int = 0,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _stage(cin: int, cout: int, n_res: int, kernel_size: _IntOr2 = 3, stride: _IntOr2 = 2,
           padding: _IntOr2 = 1) -> list[nn.Module]:
    """One down-sampling conv followed by ``n_res`` 3x3 residual blocks at ``cout`` channels."""
    layers: list[nn.Module] = [ConvBlock(cin, cout, kernel_size, stride, padding)]
    layers += [ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(n_res)]
    return layers


def audio_encoder(res_after_256: int = 1) -> nn.Sequential:
    """The mel-window encoder shared by the generator and the expert.

    ``(B, 1, 80, 16)`` -> ``(B, 512, 1, 1)``; the mel grid shrinks
    80x16 -> 27x16 -> 9x6 -> 3x3 -> 1x1.  The generator has one residual
    block after the 128->256 layer, the expert two (``res_after_256``).
    """
    layers: list[nn.Module] = []
    layers += _stage(1, 32, 2, stride=1)
    layers += _stage(32, 64, 2, stride=(3, 1))
    layers += _stage(64, 128, 2, stride=3)
    layers += _stage(128, 256, res_after_256, stride=(3, 2))
    layers += [ConvBlock(256, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)]
    return nn.Sequential(*layers)


def _fold_time(x: torch.Tensor, time_dim: int) -> torch.Tensor:
    """Move the time axis in front of the batch and merge them (time-major order)."""
    x = x.movedim(time_dim, 0)
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class Wav2Lip(nn.Module):
    """The Wav2Lip generator (``models/wav2lip.py::Wav2Lip`` in the reference).

    ``forward(audio_sequences, face_sequences)``:

    * 4-D inputs: audio ``(B, 1, 80, 16)``, faces ``(B, 6, 96, 96)`` =
      [target with rows 48..95 zeroed || reference], BGR in ``[0, 1]``;
      returns ``(B, 3, 96, 96)`` BGR in ``[0, 1]`` (sigmoid).
    * 5-D inputs (training layout): audio ``(B, T, 1, 80, 16)``, faces
      ``(B, 6, T, 96, 96)``; the T steps are folded into the batch
      (time-major) and the result is ``(B, 3, T, 96, 96)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),            # 96x96
            nn.Sequential(*_stage(16, 32, 2)),                   # 48x48
            nn.Sequential(*_stage(32, 64, 3)),                   # 24x24
            nn.Sequential(*_stage(64, 128, 2)),                  # 12x12
            nn.Sequential(*_stage(128, 256, 2)),                 # 6x6
            nn.Sequential(*_stage(256, 512, 1)),                 # 3x3
            nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1x1
        ])
        self.audio_encoder = audio_encoder(res_after_256=1)

        def up(cin: int, cout: int, n_res: int, stride: int = 2, padding: int = 1,
               output_padding: int = 1) -> nn.Sequential:
            layers: list[nn.Module] = [ConvTransposeBlock(cin, cout, 3, stride, padding, output_padding)]
            layers += [ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(n_res)]
            return nn.Sequential(*layers)

        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),                   # 1x1 (+512 skip)
            up(1024, 512, 1, stride=1, padding=0, output_padding=0),        # 3x3 (+512)
            up(1024, 512, 2),                                              # 6x6 (+256)
            up(768, 384, 2),                                               # 12x12 (+128)
            up(512, 256, 2),                                               # 24x24 (+64)
            up(320, 128, 2),                                               # 48x48 (+32)
            up(160, 64, 2),                                                # 96x96 (+16)
        ])
        self.output_block = nn.Sequential(
            ConvBlock(80, 32, 3, 1, 1),
            nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        batch = audio_sequences.size(0)
        sequence_input = face_sequences.dim() > 4
        if sequence_input:
            audio_sequences = _fold_time(audio_sequences, 1)   # (T*B, 1, 80, 16)
            face_sequences = _fold_time(face_sequences, 2)     # (T*B, 6, 96, 96)

        audio_embedding = self.audio_encoder(audio_sequences)  # (N, 512, 1, 1)

        skips: list[torch.Tensor] = []
        x = face_sequences
        for block in self.face_encoder_blocks:
            x = block(x)
            skips.append(x)

        x = audio_embedding
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), skips.pop()), dim=1)

        x = self.output_block(x)
        if sequence_input:
            steps = x.size(0) // batch
            x = x.reshape(steps, batch, *x.shape[1:]).movedim(0, 2)  # (B, 3, T, H, W)
        return x


class SyncNetColor(nn.Module):
    """Wav2Lip's lip-sync expert (``models/syncnet.py::SyncNet_color``; ``lipsync_expert.pth``).

    ``forward(audio_sequences, face_sequences) -> (audio_embedding, face_embedding)``:

    * audio ``(B, 1, 80, 16)`` mel window;
    * faces ``(B, 15, 48, 96)``: 5 consecutive frames, each the **lower half**
      (rows 48..95) of a 96x96 BGR face in ``[0, 1]``, stacked on channels;
    * both embeddings ``(B, 512)``, L2-normalised; their dot product is the
      sync score (cosine similarity).
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            ConvBlock(15, 32, 7, 1, 3),                                    # 48x96
            *_stage(32, 64, 2, kernel_size=5, stride=(1, 2), padding=1),   # 46x47
            *_stage(64, 128, 3),                                           # 23x24
            *_stage(128, 256, 2),                                          # 12x12
            *_stage(256, 512, 2),                                          # 6x6
            ConvBlock(512, 512, 3, 2, 1),                                  # 3x3
            ConvBlock(512, 512, 3, 1, 0),                                  # 1x1
            ConvBlock(512, 512, 1, 1, 0),
        ]
        self.face_encoder = nn.Sequential(*layers)
        self.audio_encoder = audio_encoder(res_after_256=2)

    def forward(self, audio_sequences: torch.Tensor,
                face_sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        face_embedding = self.face_encoder(face_sequences).flatten(1)
        audio_embedding = self.audio_encoder(audio_sequences).flatten(1)
        return F.normalize(audio_embedding, p=2, dim=1), F.normalize(face_embedding, p=2, dim=1)

