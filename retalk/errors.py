"""Errors that reach the user as one line.

Every failure the user can cause (a missing file, an unreadable video, silent
audio, a missing checkpoint) is raised as a :class:`RetalkError`.  The command
line prints ``retalk: error: <message>`` and exits with :data:`EXIT_BAD_INPUT`;
it never shows a traceback for these.

The exit statuses of the ``retalk`` command are defined here, in one place.
"""
from __future__ import annotations

EXIT_OK = 0
"""Success."""
EXIT_INTERNAL = 1
"""An internal error (a bug): one line, or the traceback with ``-vv``."""
EXIT_BAD_INPUT = 2
"""Bad input or options (a :class:`RetalkError`, or a usage error)."""
EXIT_FAILED_CLIPS = 3
"""``retalk eval`` finished, but some clips failed (their errors are in results.csv)."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C, SIGINT): 128 + 2, as shells report it; no partial output is left."""
EXIT_TERMINATED = 143
"""Terminated (SIGTERM: ``kill``, a container or job scheduler stopping): 128 + 15; cleaned up as for Ctrl-C."""


class RetalkError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code: int = EXIT_BAD_INPUT


class InputError(RetalkError):
    """An input file is missing, unreadable or unusable."""


class NoFaceError(RetalkError):
    """No face was found where one is required (e.g. a photo to animate)."""


class CheckpointError(RetalkError):
    """A checkpoint is missing, corrupt, unsafe or does not fit its network."""


class MissingDependencyError(RetalkError):
    """An optional extra (e.g. ``retalk[neural]``) is needed but not installed."""
