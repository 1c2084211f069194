"""The built-in engine fed as :func:`retalk.pipeline.sync` feeds it, on frames held in memory (no encoder).

Shared by the checksum test and the expression-scale test: track the source frames, build the mouth track
and the ping-pong plan, let the engine observe, prepare and render (through ``engines.base.render_slots``,
in the engine's batches).
"""
from __future__ import annotations

import cv2
import numpy as np

from retalk.engines.base import Plan, render_slots
from retalk.face.tracker import FaceTrack, FaceTracker
from retalk.pipeline import ping_pong
from retalk.runtime.stages import Slot
from retalk.speech.mouth import MouthTrack, mouth_track
from retalk.speech.types import Phone


def render_in_memory(frames: list[np.ndarray], static: bool, samples: np.ndarray, rate: int, fps: float, *,
                     phones: list[Phone] | None = None, scale: float = 1.0,
                     ) -> tuple[FaceTrack, MouthTrack, list[np.ndarray]]:
    """Render ``frames`` (RGB uint8) to ``samples`` (``rate`` Hz speech) at ``fps`` with default engine options.

    ``phones``: exact ARPAbet timings (None: acoustics only). Returns the track, the mouth track and the frames.
    """
    from retalk.engines.builtin.engine import BuiltinEngine

    engine = BuiltinEngine()
    tracker = FaceTracker(static=static)
    for k, frame in enumerate(frames):
        engine.observe(k, frame, tracker.update(frame))
    track = tracker.finish()
    n_out = int(round(len(samples) / rate * fps))
    mouth = mouth_track(samples, rate, fps, n_out, phones, phones is not None, scale, "arpabet" if phones else None)
    schedule = ping_pong(len(frames), n_out)
    engine.prepare(Plan(track=track, mouth=mouth, schedule=schedule, fps=fps, audio=samples, sample_rate=rate,
                        still=static))
    slots = (Slot(i, int(schedule[i]), frames[int(schedule[i])].copy()) for i in range(n_out))
    out = [s.frame for s in render_slots(engine, slots)]
    engine.close()
    return track, mouth, out


def head_motion(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame moved by a small sub-pixel translation and rotation (a gentle head motion)."""
    out = []
    for k, f in enumerate(frames):
        h, w = f.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0 * np.sin(0.21 * k), 1.0)
        m[:, 2] += (3.0 * np.sin(0.17 * k), 2.0 * np.sin(0.13 * k + 1.0))
        out.append(cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out
