"""Where the clips of ``retalk eval`` run: in this process, in a spawn process pool, or as Ray tasks.

Every backend calls :func:`retalk.evaluate.clip.run_clip` on each task and yields the rows in the
order the clips finish, so all give the same rows (only the timing columns differ).

A worker that dies (killed for memory, a crashed process or node) costs only its clip: that clip
gets ``status=error`` (on Ray, after one retry on another worker: :func:`ray_task_options`). An
exception raised by :func:`run_clip` itself is a bug (run_clip records every bad input as a row): it
propagates and stops the run, and Ray never retries it.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
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


RAY_MAX_RETRIES = 1
"""Times Ray runs a clip again after its worker process or node died (a system failure, not an exception)."""


def engine_uses_gpu(engine: str, device: str | None) -> bool:
    """Whether a clip of ``engine`` on ``device`` needs a GPU: ``device`` is ``cuda``/``cuda:N`` and the engine
    takes a ``device`` (one that does not runs on the CPU, see :mod:`retalk.engines`)."""
    if device is None or not device.startswith("cuda"):
        return False
    import inspect

    from retalk.engines import engine_class

    return "device" in inspect.signature(engine_class(engine)).parameters


def ray_task_options(task: ClipTask) -> dict[str, Any]:
    """The Ray resource request and retry policy of one clip's task.

    One CPU, plus one GPU when :func:`engine_uses_gpu`; retried :data:`RAY_MAX_RETRIES` time(s) when its
    worker dies, never when :func:`run_clip` raises (``retry_exceptions=False``: that is a bug, it stops the run).
    """
    gpus = 1 if engine_uses_gpu(task.engine, task.device) else 0
    return {"num_cpus": 1, "num_gpus": gpus, "max_retries": RAY_MAX_RETRIES, "retry_exceptions": False}


def _on_gpu_worker(task: ClipTask) -> ClipTask:
    """``task`` as sent to a task holding one GPU: Ray shows a task only its own GPU, as ``cuda`` (index 0)."""
    if task.device is not None and task.device != "cuda":
        log.debug("clip %s: --device %s runs on the GPU Ray assigns (cuda)", task.clip_id, task.device)
        return replace(task, device="cuda")
    return task


def run_ray(ray: Any, tasks: Sequence[ClipTask],
            clip_fn: Callable[[ClipTask], dict[str, str]] | None = None) -> Iterator[dict[str, str]]:
    """Run each clip as a Ray task (:func:`ray_task_options`); yield the rows in the order the tasks finish.

    ``clip_fn``: the function each task runs (default :func:`run_clip`; tests wrap it). A task whose
    worker or node died is run again once by Ray; if the retry dies too, the clip gets an error row.
    An exception raised inside the task (``RayTaskError``) cancels the other tasks and is re-raised.
    Raises :class:`InputError` when the clips need a GPU and the cluster has none (they would wait forever).
    """
    from ray.exceptions import RayError, RayTaskError

    fn = clip_fn if clip_fn is not None else run_clip
    options = [ray_task_options(t) for t in tasks]
    if any(o["num_gpus"] for o in options) and not _cluster_has_gpu(ray):
        device = next(t.device for t, o in zip(tasks, options, strict=True) if o["num_gpus"])
        raise InputError(f"--device {device}: the Ray cluster has no GPU; start the GPU nodes with `ray start` "
                         "(it counts their GPUs) or use --device cpu")
    remotes: dict[tuple[tuple[str, Any], ...], Any] = {}  # one remote function per distinct set of options
    refs: dict[Any, ClipTask] = {}
    for t, opts in zip(tasks, options, strict=True):
        key = tuple(sorted(opts.items()))
        if key not in remotes:
            remotes[key] = ray.remote(**opts)(fn)
        refs[remotes[key].remote(_on_gpu_worker(t) if opts["num_gpus"] else t)] = t
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
            except RayError as exc:  # the worker or its node died, and so did the retry: record and go on
                row = error_row(refs[ref], exc)
            yield row


def _cluster_has_gpu(ray: Any) -> bool:
    """Whether the connected Ray cluster counts at least one GPU."""
    return float(ray.cluster_resources().get("GPU", 0)) >= 1
