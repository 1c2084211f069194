"""SadTalker's audio-to-head-pose network (``Audio2Pose``), as released.

State-dict keys and shapes equal the ``audio2pose.`` entries of
``SadTalker_V0.0.2_{256,512}.safetensors`` and the ``['model']`` dict of the
legacy ``auido2pose_00140-model.pth`` (419 entries), so
:func:`retalk.checkpoints.load` loads them with ``strict=True``.

Inference (:meth:`Audio2Pose.test`) uses ``audio_encoder.*`` (Wav2Lip's
audio encoder layout, SadTalker's own weights) and ``netG.decoder.*`` (the
conditional VAE decoder: class bias, audio projection, MLP, ResUnet).
``netG.encoder.*`` (the CVAE encoder) and ``netD_motion.*`` (a pose-sequence
discriminator) are training-only; they are built with the release's shapes
only so that the files load strictly.  The encoder's first MLP layer takes
454 inputs: the reference adds ``latent + 32 * 6 + 6`` to the configured 192
*in place* on its config list.

Pose vectors are the 6 3DMM pose coefficients ``[pitch, yaw, roll, tx, ty,
tz]`` (radians, then translation), columns 64:70 of a coefficient row.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from retalk.networks.sadtalker_resunet import ResUnet
from retalk.networks.wav2lip import audio_encoder

__all__ = ["Audio2Pose", "AudioEncoder", "CVAE", "PoseSequenceDiscriminator",
           "SEQ_LEN", "LATENT_SIZE", "NUM_CLASSES", "POSE_DIM"]

#: Frames decoded per call of the CVAE decoder.
SEQ_LEN = 32
#: Size of the latent code ``z``.
LATENT_SIZE = 64
#: Number of pose styles (``--pose-style`` 0..45).
NUM_CLASSES = 46
#: Pose coefficients per frame.
POSE_DIM = 6
_AUDIO_IN = 512
_AUDIO_OUT = 6


class AudioEncoder(nn.Module):
    """Wav2Lip's audio encoder applied to a sequence of mel windows.

    ``forward(audio_sequences)``: ``(B, T, 1, 80, 16)`` -> ``(B, T, 512)``.
    As in the reference, the windows are stacked time-major and the result
    is reshaped batch-major, so for ``B > 1`` frames and batch entries are
    interleaved exactly as the reference does (identical for ``B = 1``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = audio_encoder(res_after_256=1)

    def forward(self, audio_sequences: torch.Tensor) -> torch.Tensor:
        b, t = audio_sequences.shape[:2]
        stacked = audio_sequences.transpose(0, 1).reshape(b * t, *audio_sequences.shape[2:])
        emb = self.audio_encoder(stacked)  # (T*B, 512, 1, 1), time-major
        return emb.reshape(b, -1, emb.shape[1])


def _mlp(sizes: list[int], last: nn.Module | None) -> nn.Sequential:
    """Linear layers ``L<i>`` with ReLU ``A<i>`` between them, ``last`` (named ``sigmoid``) or ReLU at the end."""
    mlp = nn.Sequential()
    for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:])):
        mlp.add_module(f"L{i}", nn.Linear(cin, cout))
        if i + 2 < len(sizes) or last is None:
            mlp.add_module(f"A{i}", nn.ReLU())
        else:
            mlp.add_module("sigmoid", last)
    return mlp


class PoseEncoder(nn.Module):
    """The CVAE encoder (training only; present for strict loading).  Not callable at inference."""

    def __init__(self) -> None:
        super().__init__()
        self.resunet = ResUnet()
        first = 192 + LATENT_SIZE + SEQ_LEN * _AUDIO_OUT + POSE_DIM  # 454: the reference's in-place cfg edit
        self.MLP = _mlp([first, 128], last=None)
        self.linear_means = nn.Linear(128, LATENT_SIZE)
        self.linear_logvar = nn.Linear(128, LATENT_SIZE)
        self.linear_audio = nn.Linear(_AUDIO_IN, _AUDIO_OUT)
        self.classbias = nn.Parameter(torch.zeros(NUM_CLASSES, LATENT_SIZE))

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("the Audio2Pose CVAE encoder is training-only and is not ported")


class PoseDecoder(nn.Module):
    """The CVAE decoder: ``[ref, z + classbias[class], audio]`` -> 32 frames of pose motion.

    ``forward(batch)`` reads ``z`` ``(B, 64)``, ``class`` ``(B,)`` int64,
    ``ref`` ``(B, 6)`` and ``audio_emb`` ``(B, 32, 512)``; returns a new dict
    with those entries and ``pose_motion_pred`` ``(B, 32, 6)`` (pose change
    relative to ``ref``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.resunet = ResUnet()
        self.MLP = _mlp([LATENT_SIZE + SEQ_LEN * _AUDIO_OUT + POSE_DIM, 128, SEQ_LEN * POSE_DIM], nn.Sigmoid())
        self.pose_linear = nn.Linear(POSE_DIM, POSE_DIM)
        self.linear_audio = nn.Linear(_AUDIO_IN, _AUDIO_OUT)
        self.classbias = nn.Parameter(torch.zeros(NUM_CLASSES, LATENT_SIZE))

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        z = batch["z"]
        bs = z.shape[0]
        audio_out = self.linear_audio(batch["audio_emb"]).reshape(bs, -1)  # (B, 32*6)
        z = z + self.classbias[batch["class"]]
        x_out = self.MLP(torch.cat([batch["ref"], z, audio_out], dim=-1)).reshape(bs, SEQ_LEN, -1)
        pose_emb = self.resunet(x_out.unsqueeze(1))  # (B, 1, 32, 6)
        return {**batch, "pose_motion_pred": self.pose_linear(pose_emb.squeeze(1))}


class CVAE(nn.Module):
    """Container of the CVAE encoder (load-only) and decoder (``netG``)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = PoseEncoder()
        self.decoder = PoseDecoder()

    def test(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Decode ``batch['z']`` (drawn by the caller): see :class:`PoseDecoder`."""
        return self.decoder(batch)


class _ConvNormRelu1d(nn.Module):
    """Conv1d (no bias) -> BatchNorm1d -> ReLU (``conv``, ``norm``, ``act``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel_size, stride, padding, bias=False)
        self.norm = nn.BatchNorm1d(cout)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class PoseSequenceDiscriminator(nn.Module):
    """The motion discriminator (training only; present for strict loading).

    ``forward(x)``: ``(B, T, 6)`` pose motion -> ``(B, T // 4)`` scores.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            _ConvNormRelu1d(POSE_DIM, 256, 4, 2, 1),
            _ConvNormRelu1d(256, 512, 4, 2, 1),
            _ConvNormRelu1d(512, 1024, 3, 1, 1),
            nn.Conv1d(1024, 1, kernel_size=3, stride=1, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.size(0), x.size(1), -1).transpose(1, 2)
        return self.seq(x).squeeze(1)


class Audio2Pose(nn.Module):
    """Audio + pose style -> head-pose sequence (SadTalker ``Audio2Pose``, inference part).

    Call :meth:`test` (as the reference's pipeline does); the reference's
    ``forward`` is its training step and is not ported.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seq_len = SEQ_LEN
        self.latent_dim = LATENT_SIZE
        self.audio_encoder = AudioEncoder()
        self.netG = CVAE()
        self.netD_motion = PoseSequenceDiscriminator()

    def forward(self, x: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Any]:
        """Same as :meth:`test`."""
        return self.test(x, generator=generator)

    def _z(self, bs: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        # Drawn on the CPU (the reference's torch.randn(...).to(device)), so a seed means the same on any device.
        return torch.randn(bs, self.latent_dim, generator=generator).to(device)

    def test(self, x: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, Any]:
        """Predict ``num_frames`` head poses from mel windows.

        Args:
            x: ``indiv_mels`` ``(B, T, 1, 80, 16)`` mel windows (one per frame,
                see :mod:`retalk.sadtalker.audio`); ``ref`` ``(B, T', 70)``
                source coefficients (only ``ref[:, 0, 64:70]``, the source
                pose, is read); ``class`` ``(B,)`` int64 pose style in
                ``0..45``; ``num_frames`` (int or 0-d tensor) ``T``.
            generator: CPU :class:`torch.Generator` for the latent codes; ``None``
                draws from torch's global CPU RNG like the reference (so
                ``torch.manual_seed(s)`` before the call reproduces a
                reference run).  One ``z`` ``(B, 64)`` ~ N(0, 1) is drawn per
                32-frame chunk, in chunk order, then one for the remainder.

        Returns:
            dict with ``pose_motion_pred`` ``(B, T, 6)`` (frame 0 is zero:
            the source frame) and ``pose_pred`` ``(B, T, 6)`` = source pose
            + motion, plus the inputs ``ref`` ``(B, 6)`` and ``class``.

        Frames ``1..T-1`` are decoded in chunks of 32.  A remainder of
        ``re`` frames re-decodes the *last* 32 windows and keeps the last
        ``re`` outputs; with fewer than 32 windows in all, the first
        embedding is repeated in front to fill the chunk.
        """
        ref = x["ref"]
        batch: dict[str, Any] = {"ref": ref[:, 0, -POSE_DIM:], "class": x["class"]}
        bs = ref.shape[0]
        mels = x["indiv_mels"][:, 1:]  # frame 0 is the source frame
        num_frames = int(x["num_frames"]) - 1
        div, re = divmod(num_frames, self.seq_len)
        motions = [torch.zeros_like(batch["ref"]).unsqueeze(1)]
        for i in range(div):
            batch["z"] = self._z(bs, ref.device, generator)
            batch["audio_emb"] = self.audio_encoder(mels[:, i * self.seq_len:(i + 1) * self.seq_len])
            batch = self.netG.test(batch)
            motions.append(batch["pose_motion_pred"])
        if re != 0:
            batch["z"] = self._z(bs, ref.device, generator)
            emb = self.audio_encoder(mels[:, -self.seq_len:])
            if emb.shape[1] != self.seq_len:
                emb = torch.cat([emb[:, :1].repeat(1, self.seq_len - emb.shape[1], 1), emb], dim=1)
            batch["audio_emb"] = emb
            batch = self.netG.test(batch)
            motions.append(batch["pose_motion_pred"][:, -re:])
        motion = torch.cat(motions, dim=1)
        return {"ref": batch["ref"], "class": batch["class"], "pose_motion_pred": motion,
                "pose_pred": ref[:, :1, -POSE_DIM:] + motion}
