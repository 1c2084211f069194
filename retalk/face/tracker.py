"""Per-frame face landmarks with mediapipe's face mesh (:mod:`retalk.face.mesh`): speaker selection, shots.

The tracker is fed frames one at a time (streaming) and keeps only landmarks
(478 × 3 float32 per frame) and one cut flag per frame. :meth:`FaceTracker.finish` smooths them over time
within each shot (:mod:`retalk.face.smoothing`) and returns a :class:`FaceTrack`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from retalk.face import landmarks as L
from retalk.face.drift import DRIFT_LIMIT, accumulated_drift, aligned_picture, drift_step, picture_shift
from retalk.face.mesh import FaceMesh, _import_face_mesh, _quiet_native_stderr  # noqa: F401  (their home before)
from retalk.face.search import SMALL_FACE_SHARE, RegionTracker, search_tiles
from retalk.face.shots import CutDetector, shot_index
from retalk.face.smoothing import smooth_landmarks, unsure_frames

log = logging.getLogger(__name__)


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
    ``shot``: (n,) int32, the shot each frame belongs to (0, 1, … : a new number after each hard cut,
    :mod:`retalk.face.shots`); None: one shot. Smoothing never crosses a cut, and the tracker starts
    afresh at each one.
    """

    landmarks: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray
    pose: np.ndarray
    size: tuple[int, int]
    repeat: np.ndarray | None = None
    shot: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.valid)

    def shots(self) -> np.ndarray:
        """:attr:`shot`, or zeros (one shot) where it was not measured: int32 (n,)."""
        return np.zeros(len(self.valid), np.int32) if self.shot is None else np.asarray(self.shot, np.int32)


@dataclass(frozen=True)
class RawTrack:
    """What a tracker recorded, per frame, before :meth:`FaceTracker.finish`: ``frames``, the speaker's raw
    landmarks (478, 3) or None; ``change``, the face thumbnail's change (:func:`repeated_frames`, NaN: not
    measured); ``cuts``, the frame starts a new shot; ``drift``, how far the landmarks moved unlike the picture
    (:func:`retalk.face.drift.drift_step`, (dx, dy) inter-ocular distances, NaN: not measured)."""

    frames: list[np.ndarray | None]
    change: list[float]
    cuts: list[bool]
    drift: list[tuple[float, float]]


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


def _response(before: np.ndarray, frame: np.ndarray, box: np.ndarray) -> float:
    """The phase correlation's peak between ``before`` (the previous frame's :func:`aligned_picture` at ``box``)
    and the same region of ``frame``: near 1 where the picture there only moved (:mod:`retalk.face.shots`)."""
    return picture_shift(before, aligned_picture(frame, box))[1]


def _area(b: np.ndarray) -> float:
    return float(max(b[2] - b[0], 0) * max(b[3] - b[1], 0))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x1 - x0, 0) * max(y1 - y0, 0)
    return inter / max(_area(a) + _area(b) - inter, 1e-6)


SEARCH_GAP_MAX = 100  # while no face is tracked, tiles are searched on frames ever further apart, up to this


class FaceTracker:
    """Follow one speaker through a stream of frames.

    Speaker choice: the largest face (default), the ``face_index``-th face from
    the left in the first frame with faces, or the face overlapping ``box``
    (x0, y0, x1, y1 pixels) most. Once chosen, the face nearest the previous
    position is followed. ``static`` treats every frame independently (photos).

    Shots: each frame is first checked for a hard cut (:class:`retalk.face.shots.CutDetector`); at a cut the
    tracker forgets the face it followed and chooses the speaker again, as on the first frame.

    Small faces: when the whole frame shows no face, overlapping tiles of it are searched at full
    resolution (:func:`retalk.face.search.search_tiles`; on the first frame without a face, then on frames
    ever further apart, up to :data:`SEARCH_GAP_MAX`, and again at each cut); a face found there, or one
    narrower than a sixth of the frame that the tracking loses, is followed on a region around it
    (:class:`retalk.face.search.RegionTracker`).

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
        self._box_warned = False  # --box overlapping no face: said once
        self._multi = False  # the tracking mesh follows several faces (the speaker is chosen among them)
        self._probe: FaceMesh | None = None
        self._tiles: FaceMesh | None = None  # per-picture mesh for tile searches (made on first need)
        self._region: RegionTracker | None = None
        self._regions: FaceMesh | None = None  # the mesh regions are tracked with (made on first need)
        self._last: np.ndarray | None = None
        self._velocity = np.zeros(2, np.float32)  # the face box's last move, pixels per frame
        self._frames: list[np.ndarray | None] = []
        self._change: list[float] = []  # face thumbnail change from the previous frame (NaN: not measured)
        self._cuts: list[bool] = []  # the frame starts a new shot
        self._drift: list[tuple[float, float]] = []  # landmarks' move unlike the picture's (dx, dy iod; NaN: none)
        # the previous frame's face box and its picture around it (retalk.face.drift)
        self._context: tuple[np.ndarray, np.ndarray] | None = None
        self._shots = CutDetector()
        self._next_search = 0  # while no face is tracked: the frame of the next tile search ...
        self._search_gap = 1  # ... and the gap after it (doubles up to SEARCH_GAP_MAX)
        self._thumb: tuple[np.ndarray, np.ndarray] | None = None  # (box, thumbnail) of the previous frame's face
        self._size: tuple[int, int] | None = None
        self.faces_at_start: int | None = None  # faces the first look found (None: no face seen yet)

    @classmethod
    def from_raw(cls, raw: RawTrack, size: tuple[int, int]) -> FaceTracker:
        """A finished-looking tracker holding what trackers recorded (e.g. several trackers over consecutive
        parts of a clip, joined); call :meth:`finish` on it."""
        t = cls()
        t._frames, t._change, t._cuts, t._drift = list(raw.frames), list(raw.change), list(raw.cuts), list(raw.drift)
        t._size = size
        return t

    def raw(self) -> RawTrack:
        """What was recorded so far (for :meth:`from_raw`)."""
        return RawTrack(list(self._frames), list(self._change), list(self._cuts), list(self._drift))

    def _choose(self, faces: list[np.ndarray]) -> np.ndarray:
        boxes = [_box(f) for f in faces]
        if self._last is not None:
            prev = _box(self._last)
            return faces[int(np.argmax([_iou(prev, b) for b in boxes]))]
        if self.box is not None:
            overlap = [_iou(self.box, b) for b in boxes]
            if max(overlap) > 0:
                return faces[int(np.argmax(overlap))]
            if not self._box_warned:
                log.warning("--box %s overlaps none of the %d face(s) found; using the nearest",
                            " ".join(f"{v:g}" for v in self.box), len(faces))
                self._box_warned = True
            centre = (self.box[:2] + self.box[2:]) / 2
            return faces[int(np.argmin([np.hypot(*((b[:2] + b[2:]) / 2 - centre)) for b in boxes]))]
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
        k = len(self._frames)
        change = np.nan  # the picture's change inside the previous frame's face box
        if self._thumb is not None and not self.static:
            box, thumb = self._thumb
            change = float(np.abs(face_thumbnail(frame, box) - thumb).mean())
        response = None  # does the picture around the previous face only move (a strong peak) or change?
        if self._context is not None and not self.static:
            box, before = self._context
            response = partial(_response, before, frame, box)  # measured only where the histogram finds a cut
        cut = False
        if not self.static:
            cut = self._shots.update(frame, None if np.isnan(change) else change, response)
            if cut:
                self._new_shot(k)
        seen_before = self._frames[-1] is not None if self._frames and not cut else False
        lm = self._track(frame, k)
        if lm is not None and self._last is not None and seen_before and self._multi and not self.static:
            # a jump to another face (tracking lost and re-acquired elsewhere) is treated as a miss
            prev = _box(self._last)
            moved = prev + np.tile(self._velocity, 2)
            if max(_iou(prev, _box(lm)), _iou(moved, _box(lm))) < 0.05:
                lm = None
        if lm is not None:
            if self._last is not None and seen_before:
                self._velocity = (_box(lm) - _box(self._last))[:2]
            else:
                self._velocity = np.zeros(2, np.float32)
            self._last = lm
        drift = (np.nan, np.nan)
        context = None
        if lm is not None and not self.static:
            box = _box(lm)
            context = (box, aligned_picture(frame, box))
            if seen_before and self._context is not None:
                step = drift_step(self._context[1], context[1], box, lm)
                drift = (np.nan, np.nan) if step is None else (float(step[0]), float(step[1]))
        self._context = context
        self._frames.append(lm)
        self._cuts.append(cut)
        self._drift.append(drift)
        self._change.append(change if lm is not None and self._thumb is not None and not cut else np.nan)
        if lm is None or self.static:
            self._thumb = None
        else:
            box = _box(lm)
            self._thumb = (box, face_thumbnail(frame, box))
        return lm

    def _new_shot(self, k: int) -> None:
        """Frame ``k`` starts a new shot: forget the face followed so far, look afresh."""
        self._last, self._thumb, self._context = None, None, None
        if self._mesh is not None:
            self._mesh.reset()
        self._drop_region()
        self._next_search, self._search_gap = k, 1

    def _drop_region(self) -> None:
        self._region = None

    def _track(self, frame: np.ndarray, k: int) -> np.ndarray | None:
        """The speaker's raw landmarks in frame ``k``: followed on its region (small faces), by the tracking
        mesh, or searched for (whole frame, then tiles); None where no face is found."""
        if self._region is not None:
            lm = self._region.track(frame)
            if lm is not None:
                return lm
            self._drop_region()  # lost: look at the whole frame, then in tiles
        if self._mesh is None:
            # Look at the frame once with a multi-face detector to learn whether there are several faces;
            # a single-face clip then runs the much cheaper one-face tracking graph.
            if self._probe is None:
                self._probe = FaceMesh(static=True, max_faces=5, max_side=1920)
            faces = self._probe(frame)
            if not faces:
                return self._search(frame, k)
            self.faces_at_start = len(faces)
            self._multi = len(faces) > 1 or self.box is not None or self.face_index is not None
            self._probe.close()
            self._probe = None
            side = self.max_side
            if side is None:
                longest = max(frame.shape[:2])
                face_w = min(float(_box(f)[2] - _box(f)[0]) for f in faces)
                side = int(min(longest, max(640.0, longest * 256.0 / max(face_w, 1.0))))
                side = -(-longest // max(1, longest // side))  # a whole shrink factor, at least ``side`` px
            self._mesh = FaceMesh(static=self.static, max_faces=5 if self._multi else 1, max_side=side)
        faces = self._mesh(frame)
        if faces:
            self._search_gap, self._next_search = 1, 0  # once it is lost, search at once
            return self._choose(faces)
        if self._last is not None and (_box(self._last)[2] - _box(self._last)[0]) < SMALL_FACE_SHARE * max(
                frame.shape[:2]) and self._frames and self._frames[-1] is not None and not self.static:
            # a small face the tracking just lost: follow it on a region around where it was
            self._region = RegionTracker(self._region_mesh(), _box(self._last), frame.shape)
            lm = self._region.track(frame)
            if lm is not None:
                return lm
            self._drop_region()
        return self._search(frame, k)

    def _region_mesh(self) -> FaceMesh:
        """The one-face tracking mesh for regions (made once, reset for each new region)."""
        if self._regions is None:
            self._regions = FaceMesh(max_side=1 << 16)
        else:
            self._regions.reset()
        return self._regions

    def _search(self, frame: np.ndarray, k: int) -> np.ndarray | None:
        """Tiles of frame ``k`` searched for a small face, on the frames due (see the class docstring);
        a face found is then followed on a region around it."""
        if self.static or k < self._next_search:
            return None
        self._next_search = k + self._search_gap
        self._search_gap = min(2 * self._search_gap, SEARCH_GAP_MAX)
        if self._tiles is None:
            self._tiles = FaceMesh(static=True, max_faces=5, max_side=1 << 16)
        faces = search_tiles(self._tiles, frame)
        if not faces:
            return None
        if self.faces_at_start is None:
            self.faces_at_start = len(faces)
        lm = self._choose(faces)
        log.info("frame %d: a small face (%.0f px wide) found in tiles; following it on a region around it",
                 k, float(_box(lm)[2] - _box(lm)[0]))
        self._region = RegionTracker(self._region_mesh(), _box(lm), frame.shape)
        found = self._region.track(frame)
        self._search_gap, self._next_search = 1, 0
        return lm if found is None else found

    def close(self) -> None:
        """Release the face-mesh graphs (called by :meth:`finish`; alone when only :meth:`raw` is wanted)."""
        for mesh in (self._mesh, self._probe, self._tiles, self._regions):
            if mesh is not None:
                mesh.close()
        self._mesh = self._probe = self._tiles = self._regions = None
        self._drop_region()

    def finish(self, smooth: bool = True) -> FaceTrack:
        """Return the track, smoothed over time unless ``smooth`` is False (measurement wants raw points).

        Frames whose tracking is unsure (:func:`retalk.face.smoothing.unsure_frames`: a one-frame jump of the
        landmarks; or landmarks moving unlike the picture, :mod:`retalk.face.drift`) are marked not valid, so
        they pass through rather than get a misplaced mouth."""
        self.close()
        n = len(self._frames)
        lms = np.zeros((n, L.N_POINTS, 3), np.float32)
        valid = np.zeros(n, bool)
        for i, f in enumerate(self._frames):
            if f is not None:
                lms[i] = f
                valid[i] = True
        shot = shot_index(np.array(self._cuts, bool)) if self._cuts else np.zeros(n, np.int32)
        if smooth:
            unsure = unsure_frames(lms, valid, shot)
            steps = np.array(self._drift if len(self._drift) == n else [(np.nan, np.nan)] * n, np.float64)
            unsure |= accumulated_drift(steps.reshape(n, 2), valid, shot) > DRIFT_LIMIT
            if unsure.any():
                log.info("%d frame(s) where the face tracking is unsure (a one-frame jump, or landmarks not moving "
                         "with the picture): passed through", int(unsure.sum()))
                valid &= ~unsure
            lms = smooth_landmarks(lms, valid, shot=shot)
        if shot[-1:].any():
            log.info("%d hard cut(s): %d shots, each tracked and dubbed on its own", int(shot[-1]), int(shot[-1]) + 1)
        boxes = np.zeros((n, 4), np.float32)
        pose = np.zeros((n, 3), np.float32)
        for i in np.flatnonzero(valid):
            boxes[i] = _box(lms[i])
            pose[i] = L.head_pose(lms[i])
        repeat = repeated_frames(np.array(self._change, np.float64)) & valid
        self._frames, self._change, self._cuts, self._drift, self._thumb = [], [], [], [], None
        return FaceTrack(lms, valid, boxes, pose, self._size or (0, 0), repeat, shot)
