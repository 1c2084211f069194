"""Signals around C code that calls back into Python.

A Python signal handler raises where the interpreter next runs Python code; inside a ctypes callback
(espeak-ng hands its audio to one) that exception is printed and dropped, and the run goes on.
:func:`deferred_signals` holds SIGINT and SIGTERM over such a call and acts on them once it returns.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["deferred_signals"]


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the body runs, then act on the first one that arrived.

    For a step that would swallow the exception a Python signal handler raises (a C library calling back
    into Python, where an exception is printed and dropped): the body runs to its end, then
    ``KeyboardInterrupt`` (SIGINT) or the SIGTERM handler that was installed runs. Outside the main
    thread it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        if current is not None and current != signal.SIG_IGN:  # an ignored signal stays ignored
            previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if arrived:
        handler = previous[arrived[0]]
        if callable(handler):
            handler(arrived[0], None)  # Python's SIGINT handler raises KeyboardInterrupt
        else:
            signal.raise_signal(arrived[0])  # SIG_DFL: the default action
