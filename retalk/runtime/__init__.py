"""The neural runtime: overlapping stages, batched networks, per-stage timing.

* :mod:`retalk.runtime.stages`: :class:`BatchOp` (prepare on CPU, one batched network call,
  finish on CPU), :func:`run_ops` (concurrent, bounded, ordered) and
  :func:`run_ops_sequential` (the same calls in one thread, the reference);
* :mod:`retalk.runtime.profile`: :class:`StageClock` and frozen :class:`Timings`;
* :mod:`retalk.runtime.device`: ``--device`` parsing, pinned asynchronous uploads.

Importing this package does not import torch.
"""
from retalk.runtime.device import check_device_name, resolve_device
from retalk.runtime.profile import StageClock, StageTime, Timings
from retalk.runtime.stages import BatchOp, Slot, default_workers, ordered_map, run_ops, run_ops_sequential

__all__ = [
    "BatchOp",
    "Slot",
    "StageClock",
    "StageTime",
    "Timings",
    "check_device_name",
    "default_workers",
    "ordered_map",
    "resolve_device",
    "run_ops",
    "run_ops_sequential",
]
