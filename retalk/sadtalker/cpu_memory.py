"""Keep freed memory in the process while the face renderer runs on the CPU (glibc only).

The generator allocates and frees tensors of 16–64 MB per frame at 256 px (more in a batch). glibc
serves blocks over 32 MB (and, by its adaptive threshold, many smaller ones) with ``mmap`` and returns
them with ``munmap``, so every frame faults its working set in again, a page at a time: measured on the
generator at 256 px, 865 000 page faults and 2.2 s of system time per frame against 5.8 s of user time
(2-core machine, one thread). :func:`keep_freed_memory` asks glibc (``mallopt``) to take large blocks
from the heap and never trim it: the pages are faulted once and reused (0.7 s of system time).

The setting is the process's: freed memory stays with the process until it exits (its RSS stays at
its peak), which suits a command-line render; a long-lived server that renders on the CPU keeps its
peak. Elsewhere than glibc this does nothing.
"""
from __future__ import annotations

import ctypes
import logging

__all__ = ["keep_freed_memory"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # bytes of free heap top before glibc gives memory back (the largest int mallopt takes)


def keep_freed_memory() -> bool:
    """glibc ``mallopt``: no ``mmap`` for large blocks, heap trimmed only past 2 GiB free. True when applied.

    Idempotent (calling it again changes nothing).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
    log.debug("glibc mallopt (no mmap, no trim below 2 GiB): %s", "applied" if ok else "refused")
    return ok
