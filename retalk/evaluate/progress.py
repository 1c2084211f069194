"""What a running ``retalk eval`` tells the user: a progress bar in frames and clips, each warning once.

* :class:`RunProgress` — one bar whose unit is the video frame (so its rate and ETA follow the
  work, not the clip count: a 10 s clip weighs ten 1 s clips) with ``clips done/total`` and the
  failures in its postfix.  Frame counts come from the container headers (no decoding).
* :func:`warn_once` — while a run lasts, a log message repeated word for word (the same
  "unavailable … get it from …" from every clip or worker) is shown only the first time.
* :func:`quiet_worker` — the initializer of pool workers: they log nothing below ERROR and
  ignore Python warnings (e.g. protobuf deprecations from MediaPipe) unless the parent logs at
  INFO or below; every per-clip problem reaches the user as its row anyway.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Self

from tqdm import tqdm

from retalk.errors import RetalkError

log = logging.getLogger(__name__)


def frame_count(video: str) -> int:
    """Frames of ``video`` from its header (an estimate; 0 when it cannot be read)."""
    from retalk.media.video import probe_video

    try:
        return max(int(probe_video(video).n_frames), 0)
    except (RetalkError, OSError):
        return 0


class RunProgress:
    """A tqdm bar over frames for ``frames`` (clip id → frames), ``done`` of them already finished.

    Use as a context manager; call :meth:`finished` with each clip's id and status.
    """

    def __init__(self, frames: Mapping[str, int], done: Sequence[str], desc: str, enabled: bool = True) -> None:
        self._frames = dict(frames)
        self._n_clips = len(self._frames)
        self._done = len(done)
        self._failed = 0
        self._frames_done = sum(self._frames.get(i, 0) for i in done)
        self._bar = tqdm(total=sum(self._frames.values()), initial=self._frames_done,
                         desc=desc, unit="frame", disable=not enabled)
        self._postfix(refresh=True)

    def _postfix(self, refresh: bool = False) -> None:
        text = f"{self._done}/{self._n_clips} clips"
        if self._failed:
            text += f", {self._failed} failed"
        self._bar.set_postfix_str(text, refresh=refresh)

    def finished(self, clip_id: str, ok: bool) -> None:
        """Count clip ``clip_id`` (its frames and one clip) as done; ``ok`` False counts a failure."""
        self._done += 1
        self._failed += not ok
        self._postfix()
        self._frames_done += self._frames.get(clip_id, 0)
        self._bar.update(self._frames.get(clip_id, 0))

    @property
    def clips_done(self) -> int:
        """Clips finished, counting those done before this run."""
        return self._done

    @property
    def frames_done(self) -> int:
        """Frames of the finished clips."""
        return self._frames_done

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.close()


class _Once(logging.Filter):
    """Lets each (level, message) through once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.levelno, record.getMessage())
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


@contextlib.contextmanager
def warn_once() -> Iterator[None]:
    """While the block runs, each distinct warning or error message reaches the log handlers once."""
    handlers = [h for h in (logging.getLogger().handlers or [logging.lastResort]) if h is not None]
    filters = [(h, _Once()) for h in handlers]  # one each: a record passes every handler in turn
    for h, once in filters:
        h.addFilter(once)
    try:
        yield
    finally:
        for h, once in filters:
            h.removeFilter(once)


def quiet_worker(parent_level: int) -> None:
    """Initializer of a spawn pool worker; ``parent_level``: the parent's effective log level."""
    if parent_level <= logging.INFO:
        logging.basicConfig(level=parent_level, format="retalk: %(levelname)s: %(message)s")
        return
    os.environ.setdefault("GLOG_minloglevel", "3")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR, format="retalk: %(levelname)s: %(message)s")
