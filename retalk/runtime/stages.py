"""Overlapping stages over an ordered stream of frames.

A *batch op* is a piece of per-frame work split into three steps:

1. ``prepare_item(slot)``: CPU work on one frame (crop, align, colour conversion); runs in
   a pool of threads, several frames at once (OpenCV and NumPy release the GIL);
2. ``run_batch(inputs)``: one call of a network on many prepared frames; runs in the op's
   own thread, so the device works while the pool prepares the next batch and finishes
   the previous one;
3. ``finish_item(slot, prepared, output)``: CPU work that puts the result back into the
   frame (resize, paste, blend); in the pool again.

:func:`run_ops` chains ops (an engine, then an enhancer) over a stream of :class:`Slot`
and yields the slots in their original order with their frames replaced. Every stage
keeps at most ``window`` items in flight, so memory is bounded whatever the clip's
length. :func:`run_ops_sequential` runs exactly the same calls with the same batch
boundaries one after another in the caller's thread: the reference the concurrent path
is tested against, frame for frame.

Errors: the first exception raised in any stage is re-raised in the caller's thread;
work not yet started is cancelled, work in progress finishes, and nothing more is
yielded (so a sink the caller writes to is aborted by the caller's own ``with``).
``KeyboardInterrupt`` in the caller takes the same path.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from retalk.runtime.profile import StageClock

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Slot:
    """One output frame on its way through the ops.

    ``frame``: the frame as it stands (RGB uint8, (H, W, 3)); ``None`` for a frame that
    repeats the previous output (nothing to compute). ``work``: whether the ops should act
    on it (False for frames without a face, which pass through unchanged). ``out_index``,
    ``src_index``: the output frame's number and the source frame it shows.
    """

    out_index: int
    src_index: int
    frame: np.ndarray | None
    work: bool = True


@runtime_checkable
class BatchOp(Protocol):
    """Per-frame work with a batched middle step (see the module docstring).

    ``prepare_item`` and ``finish_item`` must be thread-safe (they are called for several
    frames at once); ``run_batch`` is called from one thread at a time, in stream order.
    ``prepare_item`` returns None for a frame it leaves alone (e.g. a face too small).
    """

    name: str
    batch_size: int

    def prepare_item(self, slot: Slot) -> Any | None: ...

    def run_batch(self, inputs: list[Any]) -> list[Any]: ...

    def finish_item(self, slot: Slot, prepared: Any, output: Any) -> np.ndarray: ...


#: Most threads the CPU steps get by default. The steps hold the GIL between their OpenCV and NumPy calls; on
#: the 16-core H100/H200 machines 15 threads made each frame's blend 5-7 times slower than alone (30-46 ms
#: against 6 ms) and starved the network's and the encoder's threads, so that the whole rendering pass ran
#: slower than one thread doing everything in turn (10 s 720p clip, wav2lip: 13.3 s against 5.7 s).
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """Threads for the CPU steps: the cores but one, at least 2, at most :data:`MAX_DEFAULT_WORKERS`."""
    return max(2, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 2) - 1))


def _done(value: Any) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


def ordered_map(fn: Callable[[T], R], items: Iterable[T], executor: Executor | None, window: int,
                skip: Callable[[T], bool] | None = None, identity: Callable[[T], R] | None = None) -> Iterator[R]:
    """``map(fn, items)`` run in ``executor``, at most ``window`` calls in flight, results in input order.

    Items for which ``skip(item)`` is true are not submitted: ``identity(item)`` is their result.
    With ``executor=None`` every call runs in the caller's thread (the sequential reference).
    On any exception (or when the consumer stops), calls not yet started are cancelled.
    """
    pending: deque[Future] = deque()
    try:
        for x in items:
            if skip is not None and skip(x):
                assert identity is not None
                pending.append(_done(identity(x)))
            elif executor is None:
                pending.append(_done(fn(x)))
            else:
                pending.append(executor.submit(fn, x))
            while len(pending) >= window or (pending and pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


@dataclass(frozen=True)
class _Prepared:
    slot: Slot
    value: Any  # what prepare_item returned; None: nothing to compute for this frame


def _batches(items: Iterable[_Prepared], size: int) -> Iterator[list[_Prepared]]:
    """Group consecutive items so that each group holds ``size`` items with work (the last may hold fewer).

    Items without work travel in whichever group they fall into, so order is kept and a group
    is never held back waiting for a frame that needs nothing.
    """
    group: list[_Prepared] = []
    n_work = 0
    for p in items:
        group.append(p)
        if p.value is not None:
            n_work += 1
            if n_work >= size:
                yield group
                group, n_work = [], 0
        elif n_work == 0:  # nothing waits on the device: let it go on at once
            yield group
            group = []
    if group:
        yield group


class _OpRunner:
    """The three steps of one op, with timing, as plain functions for :func:`ordered_map`."""

    def __init__(self, op: BatchOp, clock: StageClock) -> None:
        self.op, self.clock = op, clock
        self.name = getattr(op, "name", type(op).__name__)

    def prepare(self, slot: Slot) -> _Prepared:
        with self.clock.time(f"{self.name}.prepare"):
            return _Prepared(slot, self.op.prepare_item(slot))

    def run(self, group: list[_Prepared]) -> list[tuple[_Prepared, Any]]:
        inputs = [p.value for p in group if p.value is not None]
        if not inputs:
            return [(p, None) for p in group]
        with self.clock.time(f"{self.name}.network", items=len(inputs)):
            outputs = iter(self.op.run_batch(inputs))
        return [(p, next(outputs) if p.value is not None else None) for p in group]

    def finish(self, pair: tuple[_Prepared, Any]) -> Slot:
        p, out = pair
        if p.value is None:
            return p.slot
        with self.clock.time(f"{self.name}.finish"):
            return replace(p.slot, frame=self.op.finish_item(p.slot, p.value, out))


def _no_work(slot: Slot) -> bool:
    return not slot.work or slot.frame is None


def _chain(slots: Iterable[Slot], ops: Sequence[BatchOp], pool: Executor | None,
           devices: Sequence[Executor | None], window: int, clock: StageClock) -> Iterator[Slot]:
    stream: Iterable[Slot] = slots
    for op, device in zip(ops, devices):
        r = _OpRunner(op, clock)
        batch = max(1, int(op.batch_size))
        prepared = ordered_map(r.prepare, stream, pool, window, skip=_no_work, identity=lambda s: _Prepared(s, None))
        groups = ordered_map(r.run, _batches(prepared, batch), device, 2)
        pairs = (pair for group in groups for pair in group)
        stream = ordered_map(r.finish, pairs, pool, window, skip=lambda pr: pr[0].value is None,
                             identity=lambda pr: pr[0].slot)
    yield from stream


def run_ops(slots: Iterable[Slot], ops: Sequence[BatchOp], *, workers: int | None = None,
            window: int | None = None, clock: StageClock | None = None) -> Iterator[Slot]:
    """Run ``ops`` over ``slots`` concurrently; yield the slots in order with their frames replaced.

    ``workers``: threads for the CPU steps (default :func:`default_workers`). ``window``: items
    in flight per stage (default: one batch of the largest op, and at least ``2 × workers``).
    While it runs, OpenCV calls are single-threaded (the pool gives the parallelism). The networks run in one thread per device (``op.device``; an op without
    that attribute gets its own thread).
    """
    clock = clock if clock is not None else StageClock()
    if not ops:
        yield from slots
        return
    workers = workers or default_workers()
    window = window or max(2 * workers, max(max(1, int(op.batch_size)) for op in ops))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="retalk-cpu")
    cv_threads = _one_cv2_thread() if workers > 1 else None
    # one thread per device: two networks on one GPU queue up there anyway, and two on the CPU would
    # fight over its cores (each torch call already uses them all)
    by_device: dict[str, ThreadPoolExecutor] = {}
    for op in ops:
        key = str(getattr(op, "device", f"op-{id(op)}"))
        if key not in by_device:
            by_device[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"retalk-{key}")
    devices = [by_device[str(getattr(op, "device", f"op-{id(op)}"))] for op in ops]
    gen = _chain(slots, ops, pool, devices, window, clock)
    try:
        yield from gen
    finally:
        gen.close()  # cancels what has not started, in every stage
        for ex in (pool, *by_device.values()):
            ex.shutdown(wait=True, cancel_futures=True)
        if cv_threads is not None:
            import cv2

            cv2.setNumThreads(cv_threads)


def _one_cv2_thread() -> int:
    """Make each OpenCV call single-threaded while the pool runs (returns the setting to restore).

    The pool already keeps every core busy; OpenCV's own per-call threads on top of it
    multiplied the threads by the core count and made each frame's blend about 7 times
    slower on 16 cores (measured: 6 ms per frame alone, 40-46 ms in a 15-thread pool).
    """
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return before


def run_ops_sequential(slots: Iterable[Slot], ops: Sequence[BatchOp], *,
                       clock: StageClock | None = None) -> Iterator[Slot]:
    """The same calls and batch boundaries as :func:`run_ops`, one after another in the caller's thread."""
    clock = clock if clock is not None else StageClock()
    yield from _chain(slots, ops, None, [None] * len(ops), 1, clock)


class Prefetcher:
    """A source iterator drained by a background thread into a bounded queue (timed as one stage).

    Unlike :func:`retalk.media.video.prefetch` it records the time spent producing items
    under ``name`` in ``clock``.
    """

    def __init__(self, items: Iterable[T], clock: StageClock, name: str, depth: int = 8) -> None:
        self.items, self.clock, self.name, self.depth = items, clock, name, depth

    def __iter__(self) -> Iterator[Any]:
        from retalk.media.video import prefetch

        def timed() -> Iterator[Any]:
            it = iter(self.items)
            while True:
                t = time.perf_counter()
                try:
                    x = next(it)
                except StopIteration:
                    return
                self.clock.add(self.name, time.perf_counter() - t, thread=threading.get_ident())
                yield x

        yield from prefetch(timed(), depth=self.depth)
