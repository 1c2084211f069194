"""How many frames the face renderer draws per network call: from free GPU memory, fixed on the CPU.

GPU: ``batch = (min(free memory × 0.9, budget) − reserve) / per-frame memory``, clipped to
[1, :data:`MAX_BATCH`]. The per-frame figures (:data:`FRAME_BYTES`) are the cached-source render's
peak activations per frame (fp32, measured by the generator's author: 0.6 GB at 256 px, 2.4 GB at
512 px; they scale with S²). For comparison, the issue measured the reference generator (source
re-encoded in every call) on an H200 at 88 GiB for batch 64 at 256 px and 133 GiB for batch 8 at
512 px. The budget (default :data:`DEFAULT_BUDGET`, ``$RETALK_SADTALKER_GPU_GIB``) keeps a run within
the 16 GiB target whatever the card has free: 20 frames per call at 256, 5 at 512. Should a call
still run out of memory, :class:`retalk.sadtalker.render.RenderOp` splits it in halves and keeps the
smaller batch (never fails for memory while one frame fits).

CPU: :data:`CPU_BATCH` frames per call: large enough that per-call overhead vanishes, small enough
that a few batches stay in flight without much memory (~0.2 GB per frame at 256).
"""
from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["CPU_BATCH", "DEFAULT_BUDGET", "ENHANCER_BYTES", "FRAME_BYTES", "MAX_BATCH", "choose_batch"]

log = logging.getLogger(__name__)

GIB = 1 << 30
FRAME_BYTES = {256: int(0.6e9), 512: int(2.4e9)}
"""GPU memory per rendered frame at fp32 (bytes) by ``--size``; reduced precision roughly halves it."""
RESERVE = int(1.5 * GIB)
"""Held back for the weights (~0.6 GB for all SadTalker networks), the source features and the CUDA context."""
DEFAULT_BUDGET = 14 * GIB
"""Default cap on the renderer's GPU memory (``$RETALK_SADTALKER_GPU_GIB`` overrides, in GiB)."""
MAX_BATCH = 64
CPU_BATCH = 4


def _budget() -> int:
    text = os.environ.get("RETALK_SADTALKER_GPU_GIB", "").strip()
    try:
        return int(float(text) * GIB) if text else DEFAULT_BUDGET
    except ValueError:
        log.warning("RETALK_SADTALKER_GPU_GIB=%r is not a number; using %d GiB", text, DEFAULT_BUDGET // GIB)
        return DEFAULT_BUDGET


ENHANCER_BYTES = int(3.5 * GIB)
"""Left to GFPGAN when ``--enhancer`` runs beside the renderer (3.2 GB peak at its batch of 4 on an H200)."""


def choose_batch(device: Any, size: int, half: bool = False, budget: int | None = None, enhancer: bool = False) -> int:
    """Frames per renderer call on ``device`` (a ``torch.device``) at ``size`` px (256 or 512).

    ``half``: bf16/fp16 autocast (activations half as large). ``budget``: bytes the renderer may use
    (default :data:`DEFAULT_BUDGET` or the environment's); ``enhancer``: GFPGAN shares the budget
    (:data:`ENHANCER_BYTES` of it).
    """
    if getattr(device, "type", str(device)) != "cuda":
        return CPU_BATCH
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    per = FRAME_BYTES.get(int(size), FRAME_BYTES[512] * (int(size) / 512) ** 2)
    if half:
        per = per / 2
    room = min(0.9 * free, budget if budget is not None else _budget()) - RESERVE - (ENHANCER_BYTES if enhancer else 0)
    batch = int(max(1, min(MAX_BATCH, room // per)))
    log.info("face renderer: batch %d (%.1f GiB free, %.2f GiB per frame at %d px)", batch, free / GIB, per / GIB,
             size)
    return batch
