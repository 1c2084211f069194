"""The interface every engine implements (the registry is :mod:`retalk.engines`).

The pipeline owns input/output, face tracking, speech analysis, scheduling
and muxing. An engine sees:

1. :meth:`Engine.observe` for every source frame during the analysis pass
   (frames stream past once; an engine may keep small crops, never all frames);
2. :meth:`Engine.prepare` once, with the whole :class:`Plan` (face track,
   speech, which source frame each output frame shows);
3. :meth:`Engine.render` for batches of output frames, in order. Frames
   whose source has no face never reach the engine: the pipeline passes them through.

An engine whose work is several such steps (several networks, e.g. VideoReTalking) returns
them from ``batch_ops()``; the runtime chains them like an engine op followed by the enhancer.

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
from contextlib import nullcontext
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from retalk.face.tracker import FaceTrack
from retalk.runtime.profile import StageClock
from retalk.runtime.stages import Slot
from retalk.speech.mouth import MouthTrack


@dataclass(frozen=True)
class Plan:
    """Everything known about one job before rendering.

    ``schedule[i]`` is the source frame shown as output frame *i* (ping-pong over
    the source when the audio is longer). ``audio`` is 16 kHz mono float32 speech.
    ``mouth`` is the per-output-frame mouth target. ``fps`` is the output rate.
    ``still`` marks a one-photo source. ``source`` is the face input's path (engines that read
    the source again, e.g. to cache per-clip work by its hash); ``clock`` times an engine's own
    stages into the job's :class:`~retalk.runtime.Timings`; ``progress``: whether progress bars may be shown.
    """

    track: FaceTrack
    mouth: MouthTrack
    schedule: np.ndarray
    fps: float
    audio: np.ndarray
    sample_rate: int
    still: bool = False
    options: dict = field(default_factory=dict)
    source: str | None = None
    clock: StageClock | None = None
    progress: bool = True


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


def render_slots(engine: Engine, slots: Iterable[Slot], clock: StageClock | None = None) -> Iterator[Slot]:
    """Render a stream of slots with ``engine.render`` in the engine's batches; yield them in stream order.

    Slots with work and a frame are rendered (their frame replaced by the engine's); the others (no face,
    or ``frame=None`` for a held frame) pass through in place. A batch is handed over as soon as it holds
    ``engine.batch_size`` frames to render. With a ``clock``, each call is timed as ``<engine>.render``.
    This is how engines that are not :class:`retalk.runtime.BatchOp`\ s run (the built-in engine, in
    ``sync`` and ``animate``).
    """
    size = max(1, engine.batch_size)
    name = f"{engine.name or 'engine'}.render"
    batch: list[Slot] = []
    n_work = 0

    def flush() -> Iterator[Slot]:
        items = [RenderItem(s.out_index, s.src_index, s.frame) for s in batch if _renders(s)]
        with clock.time(name, items=len(items)) if clock is not None else nullcontext():
            rendered = iter(engine.render(items) if items else ())
        for s in batch:
            yield replace(s, frame=next(rendered)) if _renders(s) else s
        batch.clear()

    for slot in slots:
        batch.append(slot)
        n_work += _renders(slot)
        if n_work >= size:
            yield from flush()
            n_work = 0
    yield from flush()


def _renders(slot: Slot) -> bool:
    return slot.work and slot.frame is not None
