"""Per-stage progress bars (with tqdm's time estimates) around the engine's runtime ops."""
from __future__ import annotations

from typing import Any

import numpy as np
from tqdm import tqdm

from retalk.runtime.stages import Slot

__all__ = ["CountedOp", "counted"]


class CountedOp:
    """An op that advances a progress bar by one frame each time it finishes one; otherwise the op itself."""

    def __init__(self, op: Any, bar: tqdm) -> None:
        self.op, self.bar = op, bar
        self.name, self.batch_size, self.device = op.name, op.batch_size, op.device

    def prepare_item(self, slot: Slot) -> Any | None:
        return self.op.prepare_item(slot)

    def run_batch(self, inputs: list[Any]) -> list[Any]:
        return self.op.run_batch(inputs)

    def finish_item(self, slot: Slot, prepared: Any, output: Any) -> np.ndarray:
        frame = self.op.finish_item(slot, prepared, output)
        self.bar.update(1)
        return frame

    def close(self) -> None:
        self.bar.close()


def counted(ops: list[Any], total: int, progress: bool) -> list[Any]:
    """``ops`` each with its own bar of ``total`` frames (one line per stage); unchanged when ``progress`` is off."""
    if not progress:
        return ops
    return [CountedOp(op, tqdm(total=total, desc=f"{op.name:>13s}", unit="frame", position=k + 1, leave=False))
            for k, op in enumerate(ops)]
