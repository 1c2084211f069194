"""mediapipe's face mesh, wrapped: pixel landmarks from RGB frames, quiet start-up, a reset between shots."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what mediapipe's C++ side (TFLite, glog) prints to file descriptor 2 while it starts up."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured by a test runner)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _Deferred(types.ModuleType):
    """Stands in for a module not imported yet; any attribute imports the real one and comes from it."""

    def __getattr__(self, name: str) -> object:
        return getattr(importlib.import_module(self.__name__), name)


def _import_face_mesh():  # noqa: ANN202 - a module
    """mediapipe's face-mesh solution module (a heavy import, done once per tracker).

    mediapipe's ``solutions`` package imports ``matplotlib.pyplot`` for plotting
    helpers that face mesh never uses (about 0.3 s). Unless pyplot is loaded
    already, a stand-in that imports it on first use is in ``sys.modules`` for
    the duration of this import only; afterwards ``import matplotlib.pyplot``
    anywhere gets the real module, and mediapipe's helpers reach it through
    the stand-in.
    """
    name = "matplotlib.pyplot"
    stand_in = None
    if name not in sys.modules and importlib.util.find_spec("matplotlib") is not None:
        stand_in = sys.modules[name] = _Deferred(name)
    try:
        from mediapipe.python.solutions import face_mesh
    finally:
        if stand_in is not None and sys.modules.get(name) is stand_in:
            del sys.modules[name]
    return face_mesh


class FaceMesh:
    """Thin wrapper over ``mediapipe.solutions.face_mesh`` returning pixel landmarks.

    ``max_side``: frames are shrunk by the smallest whole factor that brings their
    longer side to at most this many pixels before detection (landmarks are
    scaled back); the mesh itself runs on a 192 px face crop, so this costs no
    precision for faces under ~40% of the frame. A whole factor (the last few
    rows and columns dropped so it divides the size) takes OpenCV's fast
    area-averaging path: 1.1 ms for 1080p to 540p, where a fractional factor
    such as 1280 to 960 px takes 6 ms, more than the mesh itself.
    """

    def __init__(self, static: bool = False, max_faces: int = 1, max_side: int = 960, min_confidence: float = 0.5) -> None:
        with _quiet_native_stderr():
            face_mesh = _import_face_mesh()
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=static,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=0.5,
            )
            # The graph starts its native threads asynchronously and they log as they load the models;
            # one blank frame (no face, so no tracking state is kept) makes that happen while stderr is quiet.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self.max_side = max_side
        self._started = False
        self._shape: tuple[int, ...] | None = None  # the last picture's shape as the mesh saw it

    def __call__(self, frame: np.ndarray) -> list[np.ndarray]:
        """All faces in an RGB frame, each (478, 3) float32 pixels."""
        h, w = frame.shape[:2]
        k = max(1, -(-max(h, w) // max(int(self.max_side), 1)))
        if k > 1:
            h, w = h // k * k, w // k * k
            img = cv2.resize(frame[:h, :w], (w // k, h // k), interpolation=cv2.INTER_AREA)
        else:
            img = frame
        self._shape = img.shape
        if not self._started:  # the first call loads the models and logs from C++
            with _quiet_native_stderr():
                res = self._mesh.process(np.ascontiguousarray(img))
            self._started = True
        else:
            res = self._mesh.process(np.ascontiguousarray(img))
        faces: list[np.ndarray] = []
        for fl in res.multi_face_landmarks or []:
            a = np.array([(p.x, p.y, p.z) for p in fl.landmark], np.float32)
            a[:, 0] *= w
            a[:, 1] *= h
            a[:, 2] *= w
            faces.append(a)
        return faces

    def reset(self) -> None:
        """Forget the face being tracked (the next picture is searched afresh), e.g. at a cut: one blank
        picture of the last size makes the mesh drop its tracking state."""
        if self._shape is not None:
            self._mesh.process(np.zeros(self._shape, np.uint8))

    def close(self) -> None:
        self._mesh.close()
