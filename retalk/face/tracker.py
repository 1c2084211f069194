"""Per-frame face landmarks with mediapipe's face mesh, speaker selection and smoothing.

The tracker is fed frames one at a time (streaming) and keeps only landmarks
(478 × 3 float32 per frame). :meth:`FaceTracker.finish` smooths them over time
and returns a :class:`FaceTrack`.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from retalk.dsp import runs, savgol
from retalk.face import landmarks as L

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class FaceTrack:
    """Landmarks of the chosen speaker over a clip.

    ``landmarks``: (n, 478, 3) float32 pixels (x, y, and mediapipe's relative depth z
    in pixel units) in the upright frame, smoothed over time; undefined where not ``valid``.
    ``valid``: (n,) bool, a face was found. ``boxes``: (n, 4) x0, y0, x1, y1 of the landmarks.
    ``pose``: (n, 3) yaw, pitch, roll in degrees (see :func:`landmarks.head_pose`).
    ``size``: (width, height) of the frames.
    ``repeat``: (n,) bool, the face shows the same picture as in the previous frame (e.g. a
    frame repeated by a frame-rate conversion; see :func:`repeated_frames`); None where not measured.
    """

    landmarks: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray
    pose: np.ndarray
    size: tuple[int, int]
    repeat: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.valid)


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

    def __call__(self, frame: np.ndarray) -> list[np.ndarray]:
        """All faces in an RGB frame, each (478, 3) float32 pixels."""
        h, w = frame.shape[:2]
        k = max(1, -(-max(h, w) // max(int(self.max_side), 1)))
        if k > 1:
            h, w = h // k * k, w // k * k
            img = cv2.resize(frame[:h, :w], (w // k, h // k), interpolation=cv2.INTER_AREA)
        else:
            img = frame
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

    def close(self) -> None:
        self._mesh.close()


def _box(lm: np.ndarray) -> np.ndarray:
    return np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float32)


def repeated_frames(change: np.ndarray, level: float = 0.3, dip: float = 0.3, dip_cap: float = 1.0) -> np.ndarray:
    """Which frames repeat the previous picture, from ``change[k]``: the mean absolute grey-level difference
    between the face thumbnails (:func:`face_thumbnail`) of frames *k*−1 and *k* (NaN where not measured).

    A repeat either barely changes (under ``level``: an encoder coded the duplicate as "no change")
    or changes far less than both neighbours (under ``dip`` times the smaller one, and under
    ``dip_cap``: an encoder re-coded the duplicate, which adds noise). Measured on real clips:
    duplicates from rate conversions 0–0.3 and dips to 0.44 between changes of 2 and more, a
    talking face's changes mostly 0.4 and more.
    """
    d = np.nan_to_num(np.asarray(change, np.float64), nan=np.inf)
    neighbours = np.minimum(np.r_[np.inf, d[:-1]], np.r_[d[1:], np.inf])
    return (d < level) | ((d < dip_cap) & (d < dip * neighbours))


def face_thumbnail(frame: np.ndarray, box: np.ndarray, size: int = 64) -> np.ndarray:
    """The grey picture inside ``box`` (x0, y0, x1, y1 pixels) shrunk to ``size``², float32."""
    h, w = frame.shape[:2]
    x0, y0 = int(np.clip(box[0], 0, w - 1)), int(np.clip(box[1], 0, h - 1))
    x1, y1 = int(np.clip(np.ceil(box[2]), x0 + 1, w)), int(np.clip(np.ceil(box[3]), y0 + 1, h))
    small = cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _area(b: np.ndarray) -> float:
    return float(max(b[2] - b[0], 0) * max(b[3] - b[1], 0))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x1 - x0, 0) * max(y1 - y0, 0)
    return inter / max(_area(a) + _area(b) - inter, 1e-6)


class FaceTracker:
    """Follow one speaker through a stream of frames.

    Speaker choice: the largest face (default), the ``face_index``-th face from
    the left in the first frame with faces, or the face overlapping ``box``
    (x0, y0, x1, y1 pixels) most. Once chosen, the face nearest the previous
    position is followed. ``static`` treats every frame independently (photos).

    Speed: the first frame is searched at up to 1920 px; tracking then runs on
    frames shrunk to ``max_side`` pixels, by default as small as keeps the face at
    least 256 px wide and the frame at least 640 px (the mesh itself works on a
    192 px face crop, so this loses no measurable precision and saves most of the time).
    """

    def __init__(self, face_index: int | None = None, box: tuple[float, float, float, float] | None = None,
                 static: bool = False, max_side: int | None = None) -> None:
        self.face_index = face_index
        self.box = None if box is None else np.asarray(box, np.float32)
        self.static = static
        self.max_side = max_side
        self._mesh: FaceMesh | None = None
        self._probe: FaceMesh | None = None
        self._last: np.ndarray | None = None
        self._frames: list[np.ndarray | None] = []
        self._change: list[float] = []  # face thumbnail change from the previous frame (NaN: not measured)
        self._thumb: tuple[np.ndarray, np.ndarray] | None = None  # (box, thumbnail) of the previous frame's face
        self._size: tuple[int, int] | None = None
        self.faces_at_start: int | None = None  # faces the first look found (None: no face seen yet)

    @classmethod
    def from_raw(cls, frames: list[np.ndarray | None], change: list[float], size: tuple[int, int]) -> FaceTracker:
        """A finished-looking tracker holding raw per-frame landmarks (478, 3) or None and the thumbnail
        changes (see :func:`repeated_frames`), e.g. gathered from several trackers over consecutive parts of
        a clip; call :meth:`finish` on it."""
        t = cls()
        t._frames, t._change, t._size = list(frames), list(change), size
        return t

    def raw(self) -> tuple[list[np.ndarray | None], list[float]]:
        """The raw per-frame landmarks (or None) and thumbnail changes recorded so far (for :meth:`from_raw`)."""
        return list(self._frames), list(self._change)

    def _choose(self, faces: list[np.ndarray]) -> np.ndarray:
        boxes = [_box(f) for f in faces]
        if self._last is not None:
            prev = _box(self._last)
            return faces[int(np.argmax([_iou(prev, b) for b in boxes]))]
        if self.box is not None:
            return faces[int(np.argmax([_iou(self.box, b) for b in boxes]))]
        if self.face_index is not None:
            order = np.argsort([b[0] for b in boxes])
            if self.face_index >= len(faces):
                log.warning("--face-index %d: only %d face(s) found; using the largest", self.face_index, len(faces))
            else:
                return faces[int(order[self.face_index])]
        return faces[int(np.argmax([_area(b) for b in boxes]))]

    def update(self, frame: np.ndarray) -> np.ndarray | None:
        """Track one RGB frame; returns the speaker's raw landmarks (478, 3) or None."""
        self._size = (frame.shape[1], frame.shape[0])
        if self._mesh is None:
            # Look at the frame once with a multi-face detector to learn whether there are several faces;
            # a single-face clip then runs the much cheaper one-face tracking graph.
            if self._probe is None:
                self._probe = FaceMesh(static=True, max_faces=5, max_side=1920)
            faces = self._probe(frame)
            if not faces:
                self._frames.append(None)
                self._note_repeat(frame, None)
                return None
            self.faces_at_start = len(faces)
            multi = len(faces) > 1 or self.box is not None or self.face_index is not None
            self._probe.close()
            self._probe = None
            side = self.max_side
            if side is None:
                longest = max(frame.shape[:2])
                face_w = min(float(_box(f)[2] - _box(f)[0]) for f in faces)
                side = int(min(longest, max(640.0, longest * 256.0 / max(face_w, 1.0))))
                side = -(-longest // max(1, longest // side))  # a whole shrink factor, at least ``side`` px
            self._mesh = FaceMesh(static=self.static, max_faces=5 if multi else 1, max_side=side)
        faces = self._mesh(frame)
        lm = self._choose(faces) if faces else None
        if lm is not None and self._last is not None:
            # a jump to another face (tracking lost and re-acquired elsewhere) is treated as a miss
            if _iou(_box(self._last), _box(lm)) < 0.05 and not self.static:
                lm = None
        if lm is not None:
            self._last = lm
        self._frames.append(lm)
        self._note_repeat(frame, lm)
        return lm

    def _note_repeat(self, frame: np.ndarray, lm: np.ndarray | None) -> None:
        """Record how much the face's picture changed since the previous frame (see :func:`repeated_frames`)."""
        change = np.nan
        if lm is not None and self._thumb is not None and not self.static:
            box, thumb = self._thumb
            change = float(np.abs(face_thumbnail(frame, box) - thumb).mean())
        self._change.append(change)
        if lm is None or self.static:
            self._thumb = None
        else:
            box = _box(lm)
            self._thumb = (box, face_thumbnail(frame, box))

    def close(self) -> None:
        """Release the face-mesh graphs (called by :meth:`finish`; alone when only :meth:`raw` is wanted)."""
        if self._mesh is not None:
            self._mesh.close()
        if self._probe is not None:
            self._probe.close()

    def finish(self, smooth: bool = True) -> FaceTrack:
        """Return the track, smoothed over time unless ``smooth`` is False (measurement wants raw points)."""
        self.close()
        n = len(self._frames)
        lms = np.zeros((n, L.N_POINTS, 3), np.float32)
        valid = np.zeros(n, bool)
        for i, f in enumerate(self._frames):
            if f is not None:
                lms[i] = f
                valid[i] = True
        if smooth:
            lms = smooth_landmarks(lms, valid)
        boxes = np.zeros((n, 4), np.float32)
        pose = np.zeros((n, 3), np.float32)
        for i in np.flatnonzero(valid):
            boxes[i] = _box(lms[i])
            pose[i] = L.head_pose(lms[i])
        repeat = repeated_frames(np.array(self._change, np.float64)) & valid
        self._frames, self._change, self._thumb = [], [], None
        return FaceTrack(lms, valid, boxes, pose, self._size or (0, 0), repeat)


def smooth_landmarks(lms: np.ndarray, valid: np.ndarray, rigid_window: int = 9, lip_window: int = 5) -> np.ndarray:
    """Savitzky–Golay smoothing over time within each run of valid frames.

    The face outline, eyes and nose get a wide window (``rigid_window`` frames,
    order 2) to remove jitter; the lips and jaw a short one (``lip_window``,
    order 3), which passes a mouth closing within one frame almost unchanged.
    """
    out = lms.copy()
    mobile = np.zeros(L.N_POINTS, bool)
    mobile[L.LIPS] = True
    mobile[L.JAW] = True
    mobile[L.LOWER_FACE_INNER] = True
    for a, b in runs(valid):
        m = b - a
        for sel, win, order in ((~mobile, rigid_window, 2), (mobile, lip_window, 3)):
            w = min(win, m if m % 2 else m - 1)
            if w <= order:
                continue
            out[a:b, sel] = savgol(lms[a:b, sel], w, order)
    return out
