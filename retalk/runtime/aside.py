"""One function call run in a child Python process while this process works on (a call "aside").

Some steps hold the GIL for their whole length, so a thread cannot run them beside other work: pocketsphinx's
phone recognition (about 0.045 s per second of speech) is one. During ``sync``'s analysis pass this process
leaves part of a core idle (the face mesh and the decoder together keep about 1.3 of 2 cores busy), so the
recognizer runs there in a child process and its result is picked up when planning needs it.

:class:`Aside` starts ``python -m retalk.runtime.aside``, hands it ``(module, function name, arguments)``
pickled on its stdin (from a thread, so a large argument never blocks the caller) and reads the pickled
result from its stdout. Both ends are this program, so unpickling the child's answer is as safe as calling the
function here. Only a function the child can import by its module and name runs aside; anything else
(a lambda, a test double put in a module's place) runs here when :meth:`Aside.result` is called, so the
answer is always that of ``fn(*args)`` in this process. A child that fails in any way (cannot start, cannot
import ``fn``, crashes, is killed) also falls back to calling ``fn`` here; an exception ``fn`` raises in the
child is raised again. The child gets this process's ``sys.path`` and finds this ``retalk`` first.
:meth:`Aside.close` kills a child still running (an error or Ctrl-C in the caller) and leaves no process behind.
"""
from __future__ import annotations

import importlib
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def importable(fn: Callable[..., Any]) -> bool:
    """Whether a child process can find ``fn`` as ``module.name`` (and it is the same object here)."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in name or "." in name:
        return False
    mod = sys.modules.get(module)
    return mod is not None and getattr(mod, name, None) is fn


class Aside:
    """``fn(*args)`` computed in a child process; :meth:`result` returns it (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._reply: bytes | None = None
        if not importable(fn):
            return
        payload = pickle.dumps((list(sys.path), fn.__module__, fn.__qualname__, args), protocol=pickle.HIGHEST_PROTOCOL)
        env = dict(os.environ)  # the child finds this retalk first, however this process found it
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "retalk.runtime.aside"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:
            log.debug("could not start a child process for %s (%s); it runs here", fn.__qualname__, exc)
            return
        self._thread = threading.Thread(target=self._talk, args=(payload,), name="retalk-aside", daemon=True)
        self._thread.start()

    def _talk(self, payload: bytes) -> None:
        assert self._proc is not None
        try:
            self._reply, _ = self._proc.communicate(payload)
        except (OSError, ValueError):  # the child was killed and its pipes closed by close()
            self._reply = None

    @property
    def in_child(self) -> bool:
        """Whether the call was handed to a child process."""
        return self._proc is not None

    def result(self) -> Any:
        """``fn(*args)``: the child's answer, waiting for it; computed here where there is no child or it failed."""
        if self._thread is not None:
            self._thread.join()
            proc, reply = self._proc, self._reply
            self._proc = self._thread = None
            status, value = "failed", f"exit {None if proc is None else proc.returncode}"
            if proc is not None and proc.returncode == 0 and reply:
                try:
                    status, value = pickle.loads(reply)
                except Exception:  # noqa: BLE001 - a garbled answer: computed here instead
                    status, value = "failed", "an answer that could not be read"
            if status == "ok":
                return value
            if status == "error":
                raise value
            log.debug("the child process for %s did not answer (%s: %s); it runs here", self.fn.__qualname__,
                      status, value)
        return self.fn(*self.args)

    def close(self) -> None:
        """Stop a child still running (its answer is no longer wanted)."""
        proc, thread = self._proc, self._thread
        self._proc = self._thread = None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if thread is not None:
            thread.join()
        if proc is not None:
            proc.wait()


def _main() -> None:
    """The child: read ``(parent's sys.path, module, name, args)``, call, write ``("ok", value)``,
    ``("error", exception)`` or ``("missing", why)`` (the function could not be imported here) on stdout.
    Whatever the call itself prints goes to stderr, so it cannot garble the answer."""
    paths, module, name, args = pickle.loads(sys.stdin.buffer.read())
    sys.path[:] = [*paths, *(p for p in sys.path if p not in paths)]
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        reply: tuple[str, Any] = ("missing", f"{type(exc).__name__}: {exc}")
    else:
        try:
            reply = ("ok", fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
            reply = ("error", exc)
    try:
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an exception that cannot be pickled
        data = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    answer.write(data)
    answer.flush()


if __name__ == "__main__":
    _main()
