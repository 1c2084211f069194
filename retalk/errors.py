"""Errors that reach the user as one line.

Every failure the user can cause (a missing file, an unreadable video, silent
audio, a missing checkpoint) is raised as a :class:`RetalkError`.  The command
line prints ``retalk: error: <message>`` and exits non-zero; it never shows a
traceback for these.
"""
from __future__ import annotations


class RetalkError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code: int = 2


class InputError(RetalkError):
    """An input file is missing, unreadable or unusable."""


class NoFaceError(RetalkError):
    """No face was found where one is required (e.g. a photo to animate)."""


class CheckpointError(RetalkError):
    """A checkpoint is missing, corrupt, unsafe or does not fit its network."""


class MissingDependencyError(RetalkError):
    """An optional extra (e.g. ``retalk[neural]``) is needed but not installed."""
