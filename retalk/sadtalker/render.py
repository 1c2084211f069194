"""SadTalker's face renderer on the neural runtime: the source computed once, frames in large batches.

The reference (``make_animation``) renders 2 frames per generator call and, inside every call,
encodes the source picture again (source encoder, 4 % of the generator's FLOPs), with the key points
of the source and its mapping recomputed per clip at batch 2. Here:

* :meth:`FaceRenderer.encode_source` runs once per photo: the canonical key points
  ``kp_extractor(src)``, the source key points ``X(kp_c, mapping(source window))`` and the generator's
  source features (``generator.encode_source``);
* :meth:`FaceRenderer.driving_keypoints` runs the mapping net and the key-point transform ``X`` for
  every frame of the clip in a few large calls (0.2 GFLOP per frame);
* :class:`RenderOp` (a :class:`retalk.runtime.BatchOp`) renders many frames per generator call from the
  cached source (``generator.render``), converts to uint8 on the device, and resizes or pastes back in
  the CPU pool while the device renders the next batch.

:meth:`FaceRenderer.render_reference` is the reference's way (source recomputed in every call, batch 2),
kept for the equality test and the benchmark. Reduced precision: ``half`` (a torch dtype) wraps the
generator call in CUDA autocast; it is used only on CUDA (see ``docs/sadtalker.md`` for the tolerance), and a
batch whose output is not finite (fp16 overflow) is rendered again in fp32, which is then kept.

Images: RGB; network inputs float32 [0, 1] (B, 3, S, S); outputs uint8 (S, S, 3) = ``rint(255·x)``
(the reference's ``img_as_ubyte``).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from retalk.runtime.device import upload
from retalk.runtime.stages import Slot

if TYPE_CHECKING:
    import torch

__all__ = ["FaceRenderer", "RenderOp", "SourceState", "set_channels_last"]

log = logging.getLogger(__name__)

MAPPING_CHUNK = 256
"""Frames per mapping-net call in :meth:`FaceRenderer.driving_keypoints`."""


@dataclass(frozen=True)
class SourceState:
    """What every frame of one clip shares, computed once: on the renderer's device.

    ``image``: (1, 3, S, S) float32 [0, 1]; ``kp_canonical``: (1, 15, 3); ``kp_source``: (1, 15, 3);
    ``features``: the generator's source encoding (``generator.encode_source(image)``).
    """

    image: torch.Tensor
    kp_canonical: torch.Tensor
    kp_source: torch.Tensor
    features: Any


def _to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(S, S, 3) uint8 RGB → (1, 3, S, S) float32 [0, 1] on ``device`` (÷255 as the reference's img_as_float32)."""
    t = upload(np.ascontiguousarray(image[None]), device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def _overrides(yaw: np.ndarray | None, pitch: np.ndarray | None, roll: np.ndarray | None,
               index: slice | np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    import torch

    out = {}
    for name, series in (("yaw", yaw), ("pitch", pitch), ("roll", roll)):
        if series is not None:
            out[name] = torch.as_tensor(np.asarray(series, np.float32)[index], device=device)
    return out


def _to_uint8(pred: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) float in [0, 1] → (B, S, S, 3) uint8 rint(255·x), converted on the device."""
    import torch

    x = (pred.float() * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def set_channels_last(module: Any, on: bool = True) -> None:
    """Store every 2-D convolution's weight of ``module`` channels-last (``on``) or contiguous, in place.

    On the CPU, oneDNN runs the SPADE decoder's 2-D convolutions (three quarters of the generator's FLOPs)
    faster in that layout: 1.4x for the whole generator at 128 px, batch 2, output within 2.4e-4 of the
    contiguous layout (measured on this 2-core machine). 3-D convolutions keep their layout.
    """
    import torch

    fmt = torch.channels_last if on else torch.contiguous_format
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.to(memory_format=fmt)


class FaceRenderer:
    """The key-point extractor, generator and mapping net on one device.

    Args:
        kp_extractor, generator, mapping: loaded networks (registry ``sadtalker_kp_extractor``,
            ``sadtalker_generator``, ``sadtalker_mapping``), in eval mode on ``device``.
        device: their torch device.
        half: None (fp32) or a torch dtype for CUDA autocast of the generator (ignored on the CPU).
    """

    def __init__(self, kp_extractor: Any, generator: Any, mapping: Any, device: torch.device,
                 half: torch.dtype | None = None) -> None:
        self.kp_extractor, self.generator, self.mapping = kp_extractor, generator, mapping
        self.device = device
        self.half = half if device.type == "cuda" else None

    def _autocast(self) -> Any:
        """CUDA autocast to ``half`` around the generator, or nothing."""
        import torch

        return torch.autocast("cuda", dtype=self.half) if self.half is not None else contextlib.nullcontext()

    def _transform(self, kp_canonical: torch.Tensor, mapped: dict[str, torch.Tensor],
                   overrides: dict[str, torch.Tensor]) -> torch.Tensor:
        from retalk.sadtalker.keypoints import keypoint_transform

        return keypoint_transform(kp_canonical, mapped, **overrides)

    def encode_source(self, image: np.ndarray, source_window: np.ndarray) -> SourceState:
        """Cache the source: ``image`` (S, S, 3) uint8 RGB, ``source_window`` (C, 27) float32 (its coefficients ×27)."""
        import torch

        with torch.inference_mode():
            img = _to_tensor(image, self.device)
            kp_c = self.kp_extractor(img)["value"]
            win = torch.as_tensor(np.asarray(source_window, np.float32)[None], device=self.device)
            kp_s = self._transform(kp_c, self.mapping(win), {})
            feats = self.generator.encode_source(img)
        return SourceState(img, kp_c, kp_s, feats)

    def driving_keypoints(self, state: SourceState, windows: np.ndarray, yaw: np.ndarray | None = None,
                          pitch: np.ndarray | None = None, roll: np.ndarray | None = None) -> torch.Tensor:
        """(T, 15, 3) driving key points on the device for ``windows`` (T, C, 27) and optional degrees (T,)."""
        import torch

        out = []
        with torch.inference_mode():
            for a in range(0, len(windows), MAPPING_CHUNK):
                part = slice(a, min(a + MAPPING_CHUNK, len(windows)))
                win = torch.as_tensor(np.ascontiguousarray(windows[part], np.float32), device=self.device)
                kp_c = state.kp_canonical.expand(win.shape[0], -1, -1)
                out.append(self._transform(kp_c, self.mapping(win), _overrides(yaw, pitch, roll, part, self.device)))
        return torch.cat(out) if out else torch.zeros((0, 15, 3), device=self.device)

    def render(self, state: SourceState, kp_driving: torch.Tensor) -> np.ndarray:
        """(B, S, S, 3) uint8 frames for driving key points (B, 15, 3), from the cached source."""
        import torch

        with torch.inference_mode():
            with self._autocast():
                pred = self.generator.render(state.features, kp_driving, state.kp_source)
            if self.half is not None and not bool(torch.isfinite(pred).all()):
                # fp16's range overflowed somewhere: this batch again in fp32, and fp32 from now on
                log.warning("face renderer: %s overflowed; rendering in fp32 from here on", self.half)
                self.half = None
                pred = self.generator.render(state.features, kp_driving, state.kp_source)
        return _to_uint8(pred)

    def render_reference(self, image: np.ndarray, source_window: np.ndarray, windows: np.ndarray,
                         yaw: np.ndarray | None = None, pitch: np.ndarray | None = None,
                         roll: np.ndarray | None = None, batch: int = 2) -> np.ndarray:
        """(T, S, S, 3) uint8 as the reference renders them: ``batch`` frames per full generator call.

        The generator runs the release's op sequence (``plain=True``). The source picture is
        re-encoded inside every call; its key points and mapping are computed once at the batch size
        (``make_animation``). Frames are taken in order (the reference's
        interleaving only changes which frames share a call, not their values).
        """
        import torch

        frames = []
        with torch.inference_mode():
            src = _to_tensor(image, self.device).expand(batch, -1, -1, -1).contiguous()
            kp_c = self.kp_extractor(src)["value"]
            win_s = torch.as_tensor(np.repeat(np.asarray(source_window, np.float32)[None], batch, 0),
                                    device=self.device)
            kp_s = self._transform(kp_c, self.mapping(win_s), {})
            n = len(windows)
            for a in range(0, n, batch):
                idx = np.minimum(np.arange(a, a + batch), n - 1)  # the last call padded with the last frame
                win = torch.as_tensor(np.ascontiguousarray(windows[idx], np.float32), device=self.device)
                kp_d = self._transform(kp_c, self.mapping(win), _overrides(yaw, pitch, roll, idx, self.device))
                with self._autocast():
                    pred = self.generator(src, kp_driving={"value": kp_d}, kp_source={"value": kp_s},
                                          plain=True)["prediction"]
                frames.append(_to_uint8(pred)[: min(batch, n - a)])
        return np.concatenate(frames) if frames else np.zeros((0,) + image.shape, np.uint8)


class RenderOp:
    """Render frames from cached source features: a :class:`retalk.runtime.BatchOp`.

    Each slot's ``out_index`` is its frame number (row of ``kp_driving``); ``finish(crop)`` turns the
    (S, S, 3) uint8 render into the output frame (resize to the crop box's aspect, or paste-back).
    A batch that runs out of GPU memory is split in halves, and the smaller size kept.
    """

    name = "render"

    def __init__(self, renderer: FaceRenderer, state: SourceState, kp_driving: torch.Tensor,
                 finish: Callable[[np.ndarray], np.ndarray], batch_size: int) -> None:
        self.renderer, self.state, self.kp_driving, self.finish = renderer, state, kp_driving, finish
        self.batch_size = max(1, int(batch_size))
        self.device = renderer.device
        self._limit = self.batch_size  # lowered for good after a call runs out of memory (run_batch: one thread)

    def prepare_item(self, slot: Slot) -> int:
        """The frame's row in ``kp_driving``."""
        return int(slot.out_index)

    def _render(self, rows: Sequence[int]) -> list[np.ndarray]:
        import torch

        out: list[np.ndarray] = []
        a = 0
        while a < len(rows):
            part = list(rows[a:a + self._limit])
            try:
                out.extend(self.renderer.render(self.state, self.kp_driving[part]))
            except torch.cuda.OutOfMemoryError:
                if len(part) == 1:
                    raise
                torch.cuda.empty_cache()
                self._limit = max(1, len(part) // 2)
                log.warning("face renderer ran out of GPU memory at batch %d; continuing at %d", len(part),
                            self._limit)
                continue
            a += len(part)
        return out

    def run_batch(self, inputs: list[int]) -> list[np.ndarray]:
        """(S, S, 3) uint8 renders of the frames ``inputs``."""
        return self._render(inputs)

    def finish_item(self, slot: Slot, prepared: int, output: np.ndarray) -> np.ndarray:
        """The output frame made from the render."""
        return self.finish(output)
