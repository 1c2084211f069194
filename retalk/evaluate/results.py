"""The files of ``retalk eval``: reading and writing ``results.csv``, and the one atomic writer of every output.

:func:`write_atomic` writes a file next to its target and renames it into place, so a reader (or a
run that is interrupted) sees the old file or the new one, never half of one. The file gets the
usual permissions of a new file (``0o666`` less the process umask), not the ``0o600`` of a
``tempfile.mkstemp`` file. :class:`ResultsAppender` adds rows to ``results.csv`` as clips finish, so
an interrupted run keeps its work.
"""
from __future__ import annotations

import csv
import io
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from retalk.errors import InputError
from retalk.evaluate.columns import COLUMNS


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, with the mode a new file gets under the process umask."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    # O_EXCL: a fresh file, whose mode 0o666 the kernel narrows by the umask (no global umask change here)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def csv_text(rows: Iterable[Mapping[str, str]]) -> str:
    """``rows`` as the text of a ``results.csv`` (header and :data:`COLUMNS` in order; other keys ignored)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def write_results(path: Path, rows: Iterable[Mapping[str, str]]) -> None:
    """Write ``results.csv`` atomically."""
    write_atomic(path, csv_text(rows))


def read_results(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``results.csv`` (missing columns read as ''); [] when there is none.

    Raises :class:`InputError` for a file that is not such a table.
    """
    p = Path(path)
    if not p.is_file():
        return []
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            return [{c: (r.get(c) or "") for c in COLUMNS} for r in csv.DictReader(fh)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{p}: cannot read the previous results ({exc}); remove it or use another --out") from None


class ResultsAppender:
    """Appends rows to an existing ``results.csv`` (written by :func:`write_results`), flushing each one.

    Use as a context manager: ``with ResultsAppender(path) as add: add(row)``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> Self:
        self._fh = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=list(COLUMNS), extrasaction="ignore")
        return self

    def __call__(self, row: Mapping[str, str]) -> None:
        if self._fh is None:
            raise RuntimeError("ResultsAppender used outside its with block")
        self._writer.writerow(row)
        self._fh.flush()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def json_value(v: Any) -> Any:
    """``v`` with non-finite floats made JSON-safe: NaN → None, ±inf → ``"inf"``/``"-inf"`` (recursively)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    return v
