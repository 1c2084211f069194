"""The job queue of ``retalk serve`` with stand-in workers: lanes, crashes, cancellation, expiry."""
from __future__ import annotations

import os
import time

import pytest

from retalk.serve.jobs import JobQueue
from retalk.serve.tasks import JobSpec


def sleeper(spec, work, out, conn):
    """Stand-in job: 0.6 s of 'rendering', then a result file."""
    conn.send(("progress", 0.5, "rendering"))
    time.sleep(0.6)
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "result.mp4"), "wb").write(b"x")
    conn.send(("done", {"file": "result.mp4"}))


def crasher(spec, work, out, conn):
    """Stand-in job whose process dies without a word (like a native crash)."""
    os._exit(3)


def _spec(engine="builtin"):
    return JobSpec(kind="dub", inputs=(("face", "f.mp4"),), text="hi", engine=engine)


def _run(q: JobQueue, spec: JobSpec) -> str:
    job_id, folder = q.new_folder()
    q.submit(job_id, folder, spec)
    return job_id


@pytest.fixture
def queue_factory(tmp_path):
    made = []

    def make(**kw):
        q = JobQueue(tmp_path / f"jobs{len(made)}", **{"cpu_workers": 2, **kw})
        made.append(q)
        return q

    yield make
    for q in made:
        q.close()


def test_gpu_lane_runs_one_at_a_time(queue_factory):
    q = queue_factory(target=sleeper)
    assert _spec("wav2lip").lane == "gpu" and _spec().lane == "cpu"
    gpu = [_run(q, _spec("wav2lip")) for _ in range(2)]
    cpu = [_run(q, _spec()) for _ in range(2)]
    done = [q.wait(j, 30) for j in gpu + cpu]
    assert all(s.state == "done" for s in done), done
    g0, g1 = done[0], done[1]
    assert g1.started >= g0.finished - 0.05  # the second GPU job waited for the first
    c0, c1 = done[2], done[3]
    assert c1.started < c0.finished and c0.started < c1.finished  # the two CPU jobs overlapped


def test_crashed_worker_fails_the_job_only(queue_factory):
    q = queue_factory(target=crasher)
    st = q.wait(_run(q, _spec()), 30)
    assert st.state == "failed" and st.error == "the worker process died (exit code 3)"
    q2 = queue_factory(target=sleeper)
    assert q2.wait(_run(q2, _spec()), 30).state == "done"


def test_cancel_and_expiry(queue_factory):
    q = queue_factory(target=sleeper, cpu_workers=1, result_ttl_s=1.0)
    first, second = _run(q, _spec()), _run(q, _spec())
    assert q.cancel(second).state == "cancelled"  # still queued behind the first
    st = q.wait(first, 30)
    assert st.state == "done" and q.result_path(first).read_bytes() == b"x"
    folder = q.result_path(first).parents[1]
    deadline = time.monotonic() + 10
    while q.get(first) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert q.get(first) is None and not folder.exists()  # expired 1 s after it ended, files gone
