"""Where the clips of ``retalk eval`` run: in this process, in a spawn process pool, or as Ray tasks.

Every backend calls :func:`retalk.evaluate.clip.run_clip` on each task and yields the rows in the
order the clips finish, so all give the same rows (only the timing columns differ).

A worker that dies (killed for memory, a crashed process or node) costs only its clip: that clip
gets ``status=error``. An exception raised by :func:`run_clip` itself is a bug (run_clip records
every bad input as a row): it propagates and stops the run.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from retalk.errors import InputError, MissingDependencyError
from retalk.evaluate.clip import ClipTask, error_row, run_clip
from retalk.evaluate.progress import quiet_worker

log = logging.getLogger(__name__)


def run_serial(tasks: Sequence[ClipTask], syncnet: Any = None) -> Iterator[dict[str, str]]:
    """Run the clips one after another in this process, sharing a loaded ``syncnet``."""
    for t in tasks:
        yield run_clip(t, syncnet)


def run_pool(tasks: Sequence[ClipTask], workers: int) -> Iterator[dict[str, str]]:
    """Run the clips in a pool of ``workers`` spawn processes (MediaPipe is not fork-safe).

    Workers are quiet (:func:`~retalk.evaluate.progress.quiet_worker`) unless this process logs at INFO.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ex = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=quiet_worker, initargs=(logging.getLogger().getEffectiveLevel(),))
    try:
        futures = {ex.submit(run_clip, t): t for t in tasks}
        for fut in as_completed(futures):
            try:
                row = fut.result()
            except BrokenProcessPool as exc:  # a worker died (e.g. out of memory): record and go on
                row = error_row(futures[fut], exc)
            yield row
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def run_local(tasks: Sequence[ClipTask], workers: int, syncnet: Any = None) -> Iterator[dict[str, str]]:
    """:func:`run_serial` for one worker or one clip, else :func:`run_pool` (each worker loads its own SyncNet)."""
    if workers <= 1 or len(tasks) <= 1:
        return run_serial(tasks, syncnet)
    return run_pool(tasks, workers)


def import_ray() -> Any:
    """The ``ray`` module; :class:`MissingDependencyError` (one line) when it is not installed."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--ray needs Ray, an optional extra: pip install 'retalk[ray]'") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str, workers: int) -> Iterator[Any]:
    """Connect to Ray (``local``: start a runtime here; ``auto``/an address: join a cluster); disconnect after.

    A Ray connection the caller already made is used as it is and left open.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": log.isEnabledFor(logging.INFO)}
    if address == "local":
        ray.init(num_cpus=workers if workers > 1 else None, **kwargs)
    else:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:  # Ray's own ways of saying "no cluster there"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"--ray {address}: cannot connect to a Ray cluster ({first[:200]}); start one with "
                             "`ray start --head` or use --ray local") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_ray(ray: Any, tasks: Sequence[ClipTask]) -> Iterator[dict[str, str]]:
    """Run :func:`run_clip` as Ray tasks of one CPU each; rows in the order they finish.

    A task whose worker or node died (a Ray system error) gets an error row; an exception raised
    inside :func:`run_clip` (``RayTaskError``) is re-raised.
    """
    from ray.exceptions import RayError, RayTaskError

    remote = ray.remote(num_cpus=1, max_retries=0)(run_clip)
    refs = {remote.remote(t): t for t in tasks}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                row = ray.get(ref)
            except RayTaskError:
                for other in pending:
                    ray.cancel(other)
                raise
            except RayError as exc:  # the worker or its node died: record and go on
                row = error_row(refs[ref], exc)
            yield row
