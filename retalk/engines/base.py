"""The interface every engine implements, and the registry of engines.

The pipeline owns input/output, face tracking, speech analysis, scheduling
and muxing. An engine sees:

1. :meth:`Engine.observe` for every source frame during the analysis pass
   (frames stream past once; an engine may keep small crops, never all frames);
2. :meth:`Engine.prepare` once, with the whole :class:`Plan` (face track,
   speech, which source frame each output frame shows);
3. :meth:`Engine.render` for batches of output frames, in order. Frames
   whose source has no face never reach the engine: the pipeline passes them through.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from retalk.errors import InputError
from retalk.face.tracker import FaceTrack
from retalk.speech.mouth import MouthTrack


@dataclass(frozen=True)
class Plan:
    """Everything known about one job before rendering.

    ``schedule[i]`` is the source frame shown as output frame *i* (ping-pong over
    the source when the audio is longer). ``audio`` is 16 kHz mono float32 speech.
    ``mouth`` is the per-output-frame mouth target. ``fps`` is the output rate.
    ``still`` marks a one-photo source.
    """

    track: FaceTrack
    mouth: MouthTrack
    schedule: np.ndarray
    fps: float
    audio: np.ndarray
    sample_rate: int
    still: bool = False
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RenderItem:
    """One output frame to render: its index, the source frame index, and the frame (RGB uint8, writable copy)."""

    out_index: int
    src_index: int
    frame: np.ndarray


class Engine(abc.ABC):
    """Base class for lip-sync engines. Subclasses set :attr:`name` and implement :meth:`render`."""

    name: str = ""
    batch_size: int = 1

    def observe(self, index: int, frame: np.ndarray, landmarks: np.ndarray | None) -> None:  # noqa: B027 - optional hook
        """Called for each source frame during analysis with its raw landmarks (or None)."""

    def prepare(self, plan: Plan) -> None:  # noqa: B027 - optional hook
        """Called once after analysis."""

    @abc.abstractmethod
    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        """Return the output frames (RGB uint8, same size) for ``items``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


def render_in_order(engine: Engine, stream: Iterable[RenderItem | np.ndarray | None],
                    emit: Callable[[RenderItem | None, np.ndarray | None], None]) -> None:
    """Render a stream in the engine's batches and hand every frame to ``emit`` in stream order.

    ``stream`` yields :class:`RenderItem` (frames to render) or bare frames (to pass through
    unchanged, e.g. without a face) or None (nothing to render: ``emit`` decides, e.g. repeats
    the previous frame); ``emit(item, frame)`` gets the item (None for a bare frame or a None).
    """
    batch: list[RenderItem] = []
    pending: list[tuple[RenderItem | None, np.ndarray | None]] = []

    def flush() -> None:
        rendered = iter(engine.render(batch) if batch else ())
        for item, frame in pending:
            emit(item, next(rendered) if item is not None else frame)
        batch.clear()
        pending.clear()

    for x in stream:
        if isinstance(x, RenderItem):
            batch.append(x)
            pending.append((x, None))
        else:
            pending.append((None, x))
        if len(batch) >= max(1, engine.batch_size):
            flush()
    flush()


EngineFactory = Callable[..., Engine]


def _builtin(**kw) -> Engine:
    from retalk.engines.builtin.engine import BuiltinEngine

    return BuiltinEngine(**kw)


def _passthrough(**kw) -> Engine:
    return PassThroughEngine()


def _wav2lip(**kw) -> Engine:
    from retalk.engines.wav2lip import Wav2LipEngine

    return Wav2LipEngine(**kw)


ENGINES: dict[str, EngineFactory] = {
    "builtin": _builtin,
    "wav2lip": _wav2lip,
    "passthrough": _passthrough,
}
"""Engine names → factories. ``passthrough`` keeps the original mouth (a baseline for evaluation)."""


def create_engine(name: str, **options) -> Engine:
    """Instantiate the engine called ``name`` (see :data:`ENGINES`)."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise InputError(f"unknown engine {name!r}; choose from {', '.join(sorted(ENGINES))}") from None
    return factory(**options)


class PassThroughEngine(Engine):
    """Returns source frames unchanged: the 'do-nothing' baseline (original video with the new audio)."""

    name = "passthrough"

    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        return [it.frame for it in items]
