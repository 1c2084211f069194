"""SadTalker's audio-to-expression network (``SimpleWrapperV2``), as released.

State-dict keys and shapes equal the ``audio2exp.`` entries of
``SadTalker_V0.0.2_{256,512}.safetensors`` and the ``['model']`` dict of the
legacy ``auido2exp_00300-model.pth`` (93 entries), so
:func:`retalk.checkpoints.load` loads them with ``strict=True``.

The audio encoder is Wav2Lip's generator audio encoder (same layers, same
key names ``audio_encoder.<i>.conv_block.{0,1}``; SadTalker trained its own
weights), reused from :func:`retalk.networks.wav2lip.audio_encoder`.
"""
from __future__ import annotations

import torch
from torch import nn

from retalk.networks.wav2lip import audio_encoder

__all__ = ["SimpleWrapperV2", "EXP_DIM"]

#: Number of 3DMM expression coefficients predicted per frame.
EXP_DIM = 64
_AUDIO_DIM = 512


class SimpleWrapperV2(nn.Module):
    """Mel window + reference expression + blink ratio -> 3DMM expression, per frame.

    ``forward(x, ref, ratio)``:

    * ``x``: ``(N, 1, 80, 16)`` float32 mel windows (Wav2Lip's normalised
      log-mel, values in ``[-4, 4]``; one 0.2 s window per video frame),
      ``N = B * T`` in batch-major order;
    * ``ref``: ``(B, T, 64)`` the source image's expression coefficients
      (repeated per frame, or a reference video's per-frame expression);
    * ``ratio``: ``(B, T, 1)`` eye-blink ratio in ``[0, 1]`` (0 = open);
    * returns ``(B, T, 64)`` absolute expression coefficients (the
      reference's ``+ ref`` residual is disabled in the release).

    ``mapping1`` is ``Linear(512 + 64 + 1, 64)`` on ``[audio, ref, ratio]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = audio_encoder(res_after_256=1)
        self.mapping1 = nn.Linear(_AUDIO_DIM + EXP_DIM + 1, EXP_DIM)

    def forward(self, x: torch.Tensor, ref: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        audio = self.audio_encoder(x).view(n, -1)  # (N, 512)
        y = self.mapping1(torch.cat([audio, ref.reshape(n, -1), ratio.reshape(n, -1)], dim=1))
        return y.reshape(ref.shape[0], ref.shape[1], -1)
