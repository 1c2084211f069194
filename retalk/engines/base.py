"""The interface every engine implements (the registry is :mod:`retalk.engines`).

The pipeline owns input/output, face tracking, speech analysis, scheduling
and muxing. An engine sees:

1. :meth:`Engine.observe` for every source frame during the analysis pass
   (frames stream past once; an engine may keep small crops, never all frames);
2. :meth:`Engine.prepare` once, with the whole :class:`Plan` (face track,
   speech, which source frame each output frame shows);
3. :meth:`Engine.render` for batches of output frames, in order. Frames
   whose source has no face never reach the engine: the pipeline passes them through.

An engine that also implements the three steps of :class:`retalk.runtime.BatchOp`
(``prepare_item`` per frame on the CPU, ``run_batch`` for the network, ``finish_item`` per
frame on the CPU) is run by the neural runtime instead of through ``render``: the steps of
different frames overlap (a CPU pool, the network in its own thread). ``render`` must give
the same frames (the Wav2Lip engine's ``render`` simply runs the three steps in turn).

An engine's options are its constructor's keyword parameters (see
:func:`retalk.engines.create_engine`); a neural engine takes ``device``.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

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
    #: Whether :attr:`Plan.mouth` should use recognized phones; False lets the pipeline skip the recognizer.
    needs_phones: bool = True

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

