"""What one output frame carries from one VideoReTalking step to the next while it is in flight.

The runtime's ops hand each other only the frame (:class:`retalk.runtime.Slot`); the steps of this
engine need more (the stabilised face, the synthesised mouth, the pasted frame). Each step puts its
result here under the output frame's index and the next one takes it; the last step removes the
entry. The runtime keeps a bounded number of frames in flight, so the store stays bounded too.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["FrameStore"]


class FrameStore:
    """A thread-safe ``out_index → {name: array}`` map (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, dict[str, Any]] = {}

    def put(self, index: int, **values: np.ndarray | Any) -> None:
        """Add ``values`` to frame ``index``'s entry."""
        with self._lock:
            self._items.setdefault(index, {}).update(values)

    def get(self, index: int, name: str) -> Any | None:
        """Frame ``index``'s ``name``, or None."""
        with self._lock:
            return self._items.get(index, {}).get(name)

    def pop(self, index: int) -> dict[str, Any]:
        """Remove and return frame ``index``'s entry (empty if none)."""
        with self._lock:
            return self._items.pop(index, {})

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        """Forget every frame (after a run stopped early)."""
        with self._lock:
            self._items.clear()
