"""Per-stage timing: how long each stage worked, and which one set the pace.

Stages run in different threads at once, so their times add up to more than the wall
time. :class:`StageClock` records, per stage name, the seconds spent working, the number
of calls and items, and how many threads took part; :meth:`StageClock.timings` freezes
that into :class:`Timings`. The stage whose busy time divided by its threads is largest
is the *critical path*: making any other stage faster cannot shorten the run.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageTime:
    """One stage's totals: ``busy`` seconds of work, ``calls``, ``items`` (frames) and ``threads`` used."""

    busy: float
    calls: int
    items: int
    threads: int

    @property
    def pace(self) -> float:
        """Seconds this stage needs if its threads work side by side: ``busy / threads``."""
        return self.busy / max(1, self.threads)


@dataclass(frozen=True)
class Timings:
    """Frozen per-stage times of one job (see :class:`StageClock`); ``passes`` are wall times in seconds."""

    stages: dict[str, StageTime] = field(default_factory=dict)
    passes: dict[str, float] = field(default_factory=dict)

    def critical_path(self, prefix: str = "") -> str | None:
        """Name of the stage (optionally only those starting with ``prefix``) with the largest pace."""
        cands = {k: v for k, v in self.stages.items() if k.startswith(prefix)}
        return max(cands, key=lambda k: cands[k].pace) if cands else None

    def report(self) -> str:
        """A few lines for the log: each pass's wall time, each stage's busy time and ms per item."""
        lines = ["wall time per pass: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.passes.items())]
        for name, st in sorted(self.stages.items(), key=lambda kv: -kv[1].pace):
            per = 1000.0 * st.busy / st.items if st.items else 0.0
            lines.append(f"  {name:<24} busy {st.busy:7.2f} s in {st.threads:2d} thread(s) "
                         f"-> {st.pace:6.2f} s; {st.items:6d} items, {per:7.2f} ms/item")
        crit = self.critical_path()
        if crit is not None:
            lines.append(f"critical path: {crit}")
        return "\n".join(lines)


class StageClock:
    """Thread-safe accumulator of busy time per stage name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[str, float] = {}
        self._calls: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._threads: dict[str, set[int]] = {}
        self._passes: dict[str, float] = {}

    def add(self, name: str, seconds: float, items: int = 1, thread: int | None = None) -> None:
        """Record ``seconds`` of work on ``items`` items by stage ``name`` (from thread ``thread``)."""
        tid = threading.get_ident() if thread is None else thread
        with self._lock:
            self._busy[name] = self._busy.get(name, 0.0) + seconds
            self._calls[name] = self._calls.get(name, 0) + 1
            self._items[name] = self._items.get(name, 0) + items
            self._threads.setdefault(name, set()).add(tid)

    @contextmanager
    def time(self, name: str, items: int = 1) -> Iterator[None]:
        """Time the ``with`` block as work of stage ``name``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t, items)

    @contextmanager
    def wall(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as the wall time of pass ``name``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._passes[name] = self._passes.get(name, 0.0) + time.perf_counter() - t

    def timings(self) -> Timings:
        """A frozen copy of what was recorded so far."""
        with self._lock:
            stages = {k: StageTime(self._busy[k], self._calls[k], self._items[k], len(self._threads[k]))
                      for k in self._busy}
            return Timings(stages, dict(self._passes))
