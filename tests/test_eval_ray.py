"""`retalk eval` on Ray: GPU requests, rows streamed to results.csv, a dead worker's clip retried once, bugs never.

The tests start a local Ray runtime of two worker CPUs (this machine only, no dashboard) once for the
module and shut it down after. Clips run through a wrapper of :func:`run_clip` that notes each
attempt (a line with the worker's pid in a file per clip) and, for the chosen clips, kills its own
worker process with SIGKILL, as the kernel's out-of-memory killer would.
"""
from __future__ import annotations

import functools
import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from retalk.evaluate import runner
from retalk.evaluate.backends import ray_task_options, run_ray
from retalk.evaluate.clip import ClipTask
from retalk.evaluate.results import read_results

ray = pytest.importorskip("ray", reason="ray (retalk[ray]) not installed")

CLIPS = ("c0", "c1", "c2", "c3")
LIMIT_S = 120
"""Each test fails after this many seconds instead of waiting forever on a task that never finishes (~10 s alone)."""


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """Interrupt a test still running after :data:`LIMIT_S` (SIGALRM; Ray's waits let the handler raise)."""
    def expire(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"Ray test still running after {LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray runtime with two worker CPUs, for the whole module."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 1 s 160×160 astronaut clips with vowel speech as their sound."""
    from retalk.media import write_wav
    from retalk.samples import vowel_speech, write_face_clip

    root = tmp_path_factory.mktemp("rayset")
    d = root / "clips"
    d.mkdir()
    for i, name in enumerate(CLIPS):
        wav = root / f"{name}.wav"
        write_wav(wav, vowel_speech(1.0, syllable_rate=3.0 + i, seed=i), 16000)
        write_face_clip(d / f"{name}.mp4", 1.0, width=160, height=160, motion=1.0, audio_path=wav)
    return d


def _attempting(attempts: Path, kill: dict[str, int], raise_in: tuple[str, ...] = (),
                waits: str | None = None) -> Callable[..., Any]:
    """A clip function for Ray tasks: note the attempt in ``attempts/<id>``, then kill this worker while the
    clip has had at most ``kill[id]`` attempts, raise ``ValueError`` for ``raise_in``, else run :func:`run_clip`.

    Clip ``waits`` first waits (up to 60 s) until the run's ``results.csv`` holds another clip's row, and
    notes the ids it saw in ``attempts/<id>.seen``: rows must reach the file while the run goes on.

    A nested function, so Ray pickles it by value (the workers cannot import this test module).
    """
    def clip_fn(task: ClipTask, syncnet: Any = None) -> dict[str, str]:
        import os
        import signal

        from retalk.evaluate.clip import run_clip

        log = attempts / task.clip_id
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        n = len(log.read_text(encoding="utf-8").split())
        if n <= kill.get(task.clip_id, 0):
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-run, like an out-of-memory kill
        if task.clip_id in raise_in:
            raise ValueError(f"a bug in clip {task.clip_id}")
        if task.clip_id == waits:
            import csv
            import time

            results = Path(task.output).parent.parent / "results.csv"
            seen: list[str] = []
            deadline = time.monotonic() + 60.0
            while not seen and time.monotonic() < deadline:
                time.sleep(0.2)
                with results.open(newline="", encoding="utf-8") as fh:
                    seen = [r["id"] for r in csv.DictReader(fh)]
            (attempts / f"{task.clip_id}.seen").write_text(" ".join(seen), encoding="utf-8")
        return run_clip(task, syncnet)

    return clip_fn


def _pids(attempts: Path, clip_id: str) -> list[int]:
    path = attempts / clip_id
    return [int(x) for x in path.read_text(encoding="utf-8").split()] if path.is_file() else []


def test_ray_task_options_ask_for_a_gpu_only_for_a_cuda_engine():
    task = ClipTask(clip_id="a", video="a.mp4", audio="a.wav", audio_id="a", output="o/a.mp4", engine="passthrough",
                    protocol="paired", groups=("sharpness",), lse=False)
    cpu_only = {"num_cpus": 1, "num_gpus": 0, "max_retries": 1, "retry_exceptions": False}
    assert ray_task_options(task) == cpu_only
    assert ray_task_options(replace(task, device="cuda")) == cpu_only  # passthrough takes no device: CPU
    assert ray_task_options(replace(task, engine="builtin", device="cuda:1")) == cpu_only
    pytest.importorskip("torch", reason="wav2lip needs torch (retalk[neural])")
    wav2lip = replace(task, engine="wav2lip")
    assert ray_task_options(replace(wav2lip, device="cuda:1"))["num_gpus"] == 1
    assert ray_task_options(replace(wav2lip, device="cuda"))["num_gpus"] == 1
    assert ray_task_options(replace(wav2lip, device="cpu"))["num_gpus"] == 0
    assert ray_task_options(wav2lip)["num_gpus"] == 0  # automatic: whatever the worker has, no request


def test_a_killed_worker_is_retried_and_the_run_has_every_row(ray_cluster, clips_dir, tmp_path, monkeypatch):
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    victim = "c1"
    clip_fn = _attempting(attempts, kill={victim: 1}, waits="c3")
    monkeypatch.setattr(runner, "run_ray", functools.partial(run_ray, clip_fn=clip_fn))
    out = tmp_path / "run"
    summary = runner.evaluate(clips_dir, "passthrough", out, ray="local", workers=2, metrics=("sharpness", "mouth"),
                              frame_step=5, progress=False)

    rows = read_results(out / "results.csv")
    assert [r["id"] for r in rows] == list(CLIPS)
    assert [r["status"] for r in rows] == ["ok"] * len(CLIPS), [r["error"] for r in rows]
    assert all(int(r["frames"]) >= 25 and r["cpbd"] and r["mouth_open_mean"] for r in rows)  # 1 s at 25 fps, scored
    assert (summary.n_ok, summary.n_error) == (len(CLIPS), 0)
    assert all((out / "videos" / f"{c}.mp4").is_file() for c in CLIPS)
    killed = _pids(attempts, victim)
    assert len(killed) == 2 and killed[0] != killed[1]  # the retry ran in a new worker process
    assert all(len(_pids(attempts, c)) == 1 for c in CLIPS if c != victim)
    assert json.loads((out / "summary.json").read_text())["backend"] == "ray:local"
    seen = (attempts / "c3.seen").read_text(encoding="utf-8").split()
    assert seen and set(seen) <= {"c0", "c1", "c2"}  # a finished row was in results.csv while c3 was running


def _tasks(clips_dir: Path, out: Path, ids: tuple[str, ...]) -> list[ClipTask]:
    return [ClipTask(clip_id=c, video=str(clips_dir / f"{c}.mp4"), audio=str(clips_dir / f"{c}.mp4"), audio_id=c,
                     output=str(out / f"{c}.mp4"), engine="passthrough", protocol="paired", groups=("mouth",),
                     lse=False, frame_step=5) for c in ids]


def test_a_clip_whose_worker_dies_twice_is_an_error_row(ray_cluster, clips_dir, tmp_path):
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    clip_fn = _attempting(attempts, kill={"c0": 99})
    rows = list(run_ray(ray_cluster, _tasks(clips_dir, tmp_path, ("c0",)), clip_fn=clip_fn))
    assert [(r["id"], r["status"]) for r in rows] == [("c0", "error")]
    assert rows[0]["error"]
    assert len(_pids(attempts, "c0")) == 2  # the first run and exactly one retry


def test_an_exception_in_a_clip_is_not_retried_and_stops_the_run(ray_cluster, clips_dir, tmp_path):
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    clip_fn = _attempting(attempts, kill={}, raise_in=("c0",))
    with pytest.raises(ValueError, match="a bug in clip c0"):
        list(run_ray(ray_cluster, _tasks(clips_dir, tmp_path, ("c0",)), clip_fn=clip_fn))
    assert len(_pids(attempts, "c0")) == 1


def test_gpu_clips_on_a_cluster_without_gpus_are_a_one_line_error(ray_cluster, clips_dir, tmp_path):
    pytest.importorskip("torch", reason="wav2lip needs torch (retalk[neural])")
    from retalk.errors import InputError

    tasks = [replace(t, engine="wav2lip", device="cuda") for t in _tasks(clips_dir, tmp_path, ("c0",))]
    with pytest.raises(InputError, match="no GPU"):
        list(run_ray(ray_cluster, tasks))


def test_progress_on_ray_counts_frames_and_clips(ray_cluster, clips_dir, tmp_path, capsys):
    """The bar of a Ray run, captured: frames reach 100/100 (four 1 s clips at 25 fps), clips reach 4/4."""
    import re

    capsys.readouterr()
    runner.evaluate(clips_dir, "passthrough", tmp_path / "run", ray="local", workers=2, metrics="mouth",
                    frame_step=5, progress=True)
    err = capsys.readouterr().err
    last = [s for s in re.split(r"[\r\n]", err) if s.startswith("eval passthrough")][-1]
    assert "100/100" in last and "4/4 clips" in last, last
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", last), last  # elapsed<remaining: the ETA
