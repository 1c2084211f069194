"""The ``passthrough`` engine: the source frames unchanged (the original video with the new audio).

A baseline for evaluation, and what the pipeline renders when no face is found.
"""
from __future__ import annotations

import numpy as np

from retalk.engines.base import Engine, RenderItem

__all__ = ["PassThroughEngine"]


class PassThroughEngine(Engine):
    """Returns source frames unchanged: the 'do-nothing' baseline."""

    name = "passthrough"
    needs_phones = False

    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        """The items' frames as they are (RGB uint8, (H, W, 3) each)."""
        return [it.frame for it in items]
