"""A bounded queue of jobs, each run in its own worker process.

Two lanes: ``gpu`` (jobs with a neural engine or enhancer; ``gpu_workers`` at once, 1 by default) and
``cpu`` (everything else; up to ``cpu_workers`` at once). Jobs start in submission order within a lane.
A job can be cancelled while queued or running (its process is terminated and its output deleted);
a finished job and its files are deleted ``result_ttl_s`` seconds after it ended.
"""
from __future__ import annotations

import logging
import multiprocessing
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from retalk.serve.tasks import JobSpec, child_main

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job, as the API reports it.

    ``progress``: 0..1. ``stage``: what the job is doing (the library's progress-bar name).
    ``error``: one-line reason when failed or cancelled. ``result``: what the job reported when done
    (``file``: name of the result file; frames, fps, duration in seconds...). Times are Unix seconds.
    """

    id: str
    kind: str
    lane: str
    state: str
    progress: float = 0.0
    stage: str = ""
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    expires: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Job:
    status: JobStatus
    spec: JobSpec
    folder: Path
    process: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)


class JobQueue:
    """Submit, poll, cancel and expire jobs; see the module docstring. Thread-safe."""

    def __init__(self, jobs_dir: Path, cpu_workers: int, gpu_workers: int = 1, result_ttl_s: float = 3600.0,
                 target: Callable[..., None] = child_main) -> None:
        """``target(spec, work_dir, out_dir, conn)`` runs one job in the worker process (a module-level function)."""
        self.jobs_dir = Path(jobs_dir)
        self._target = target
        self.slots = {"cpu": cpu_workers, "gpu": gpu_workers}
        self.result_ttl_s = result_ttl_s
        self._jobs: dict[str, _Job] = {}
        self._pending: deque[str] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._ctx = multiprocessing.get_context("spawn")
        self._dispatcher = threading.Thread(target=self._dispatch, name="retalk-jobs", daemon=True)
        self._dispatcher.start()

    # ------------------------------------------------------------ public
    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its folder (``<jobs_dir>/<id>``, with ``in/`` for stored inputs)."""
        job_id = uuid.uuid4().hex[:16]
        folder = self.jobs_dir / job_id
        (folder / "in").mkdir(parents=True)
        return job_id, folder

    def submit(self, job_id: str, folder: Path, spec: JobSpec) -> JobStatus:
        """Queue ``spec`` under ``job_id`` (from :meth:`new_folder`)."""
        status = JobStatus(id=job_id, kind=spec.kind, lane=spec.lane, state=QUEUED, created=time.time())
        with self._cond:
            if self._closed:
                raise RuntimeError("the job queue is closed")
            self._jobs[job_id] = _Job(status, spec, folder)
            self._pending.append(job_id)
            self._cond.notify_all()
        log.info("job %s queued (%s, %s lane)", job_id, spec.kind, spec.lane)
        return status

    def get(self, job_id: str) -> JobStatus | None:
        with self._cond:
            job = self._jobs.get(job_id)
            return job.status if job else None

    def list(self) -> list[JobStatus]:
        with self._cond:
            return [j.status for j in self._jobs.values()]

    def result_path(self, job_id: str) -> Path | None:
        """The result file of a finished job, or None."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.status.state != DONE or not job.status.result:
                return None
            return job.folder / "out" / str(job.status.result["file"])

    def output_dir(self, job_id: str) -> Path | None:
        with self._cond:
            job = self._jobs.get(job_id)
            return job.folder / "out" if job and job.status.state == DONE else None

    def cancel(self, job_id: str) -> JobStatus | None:
        """Cancel a queued or running job (a finished one is left as it is). None if unknown."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status.state == QUEUED:
                self._pending.remove(job_id)
                self._finish(job, CANCELLED, error="cancelled before it started")
            elif job.status.state == RUNNING:
                job.cancel.set()
            status = job.status
        if status.state == RUNNING:
            # the monitor thread terminates the process, deletes the output and marks it cancelled
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.get(job_id).state == RUNNING:  # type: ignore[union-attr]
                time.sleep(0.05)
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float) -> JobStatus | None:
        """Block until the job has finished or ``timeout`` seconds passed; its status then."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                job = self._jobs.get(job_id)
                if job is None or job.status.state in FINISHED:
                    return job.status if job else None
                left = deadline - time.monotonic()
                if left <= 0:
                    return job.status
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        """Stop accepting jobs, cancel the queued and running ones."""
        with self._cond:
            self._closed = True
            ids = list(self._jobs)
            self._cond.notify_all()
        for job_id in ids:
            self.cancel(job_id)

    # ------------------------------------------------------------ internals
    def _update(self, job: _Job, **changes: Any) -> None:
        with self._cond:
            job.status = replace(job.status, **changes)
            self._cond.notify_all()

    def _finish(self, job: _Job, state: str, **changes: Any) -> None:
        """Mark finished (call with the lock held or via _update)."""
        now = time.time()
        job.status = replace(job.status, state=state, finished=now, expires=now + self.result_ttl_s, **changes)
        job.process = None
        self._cond.notify_all()
        log.info("job %s %s%s", job.status.id, state, f": {job.status.error}" if job.status.error else "")

    def _running(self, lane: str) -> int:
        return sum(1 for j in self._jobs.values() if j.status.state == RUNNING and j.status.lane == lane)

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._expire()
                for job_id in list(self._pending):
                    job = self._jobs[job_id]
                    if self._running(job.status.lane) < self.slots[job.status.lane]:
                        self._pending.remove(job_id)
                        job.status = replace(job.status, state=RUNNING, started=time.time(), stage="starting")
                        threading.Thread(target=self._monitor, args=(job,), name=f"job-{job_id}",
                                         daemon=True).start()
                self._cond.wait(1.0)

    def _expire(self) -> None:
        now = time.time()
        for job_id, job in list(self._jobs.items()):
            if job.status.expires is not None and job.status.expires <= now:
                del self._jobs[job_id]
                shutil.rmtree(job.folder, ignore_errors=True)
                log.info("job %s expired", job_id)

    def _monitor(self, job: _Job) -> None:
        """Run one job's process to its end, forwarding progress; never raises."""
        out = job.folder / "out"
        try:
            recv, send = self._ctx.Pipe(duplex=False)
            proc = self._ctx.Process(target=self._target, args=(job.spec, str(job.folder), str(out), send),
                                     name=f"retalk-job-{job.status.id}", daemon=True)
            proc.start()
            send.close()
            job.process = proc
            outcome: tuple | None = None
            while outcome is None:
                if job.cancel.is_set():
                    break
                if recv.poll(0.1):
                    try:
                        msg = recv.recv()
                    except EOFError:
                        break
                    if msg[0] == "progress":
                        self._update(job, progress=float(msg[1]), stage=str(msg[2]))
                    else:
                        outcome = msg
                elif not proc.is_alive() and not recv.poll(0):
                    break
            if job.cancel.is_set():
                proc.terminate()
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
                shutil.rmtree(out, ignore_errors=True)
                with self._cond:
                    self._finish(job, CANCELLED, error="cancelled while running", stage="")
                return
            proc.join(10)
            with self._cond:
                if outcome is None:
                    shutil.rmtree(out, ignore_errors=True)
                    self._finish(job, FAILED, error=f"the worker process died (exit code {proc.exitcode})")
                elif outcome[0] == "done":
                    self._finish(job, DONE, progress=1.0, stage="done", result=outcome[1])
                else:
                    shutil.rmtree(out, ignore_errors=True)
                    self._finish(job, FAILED, error=str(outcome[1]))
        except Exception as exc:  # noqa: BLE001 - one job's failure never takes the server down
            log.exception("job %s: monitor failed", job.status.id)
            shutil.rmtree(out, ignore_errors=True)
            with self._cond:
                self._finish(job, FAILED, error=f"internal error: {type(exc).__name__}: {exc}")
