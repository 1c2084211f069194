"""Stage 1, the library: this speaker's mouth appearances, collected from the source video.

During the analysis pass a :class:`LibraryBuilder` keeps the lower face of one frame every
``stride`` frames, at full resolution; whenever the set would exceed its memory budget or its
entry limit the stride doubles and every other entry goes, so memory does not grow with the
clip's length. After analysis it becomes a frozen :class:`Library`, each entry described by its
mouth shape. :func:`mouth_patches` and :func:`pairwise_rms` measure how alike two entries look.

Units: pixels for crops and landmarks; "face units" (inter-ocular distance = 1) for mouth shapes.
"""
from __future__ import annotations

import logging
import mmap
from dataclasses import dataclass

import cv2
import numpy as np

from retalk.compose.blend import polygon_mask
from retalk.face import landmarks as L

log = logging.getLogger(__name__)

CROP_MARGIN_IOD = 0.45  # margin around the lower face kept in a crop, inter-ocular distances
MIN_CROP_PX = 8  # a crop narrower or lower than this (pixels) is not kept
PATCH_SIZE = (48, 36)  # (width, height) of the grey mouth patches that compare appearances, pixels
PATCH_SPAN_IOD = 1.2  # a patch's width in inter-ocular distances (its height follows from PATCH_SIZE)
TEETH_MIN_PX = 12  # fewest pixels inside the inner lips to look for teeth among
TEETH_PERCENTILE = 70  # teeth candidates: pixels brighter than this percentile of the mouth's inside ...
TEETH_MIN_LEVEL = 110  # ... whose mean (0-255) is at least this; else no teeth are visible
TEETH_OVER_LIPS = 1.15  # teeth pixels are this much brighter than the lips' median ...
TEETH_CHROMA_SHARE = 0.7  # ... and less colourful (max - min channel) than this share of the lips' own


@dataclass(frozen=True)
class LibraryEntry:
    """A source frame's lower face: ``crop`` (RGB uint8) whose top-left is at (``x0``, ``y0``) in the frame."""

    index: int
    x0: int
    y0: int
    crop: np.ndarray


@dataclass(frozen=True)
class Library:
    """The mouths the renderer may choose from.

    ``entries``: in source order, one every ``stride`` source frames (where a face was found).
    ``descriptors``: float32 (k, 5), each entry's :func:`retalk.face.landmarks.mouth_descriptor`
    (opening, width, upper lip, lower lip, chin; face units).
    """

    entries: tuple[LibraryEntry, ...]
    stride: int
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def frames(self) -> np.ndarray:
        """Source frame index of each entry: int (k,)."""
        return np.array([e.index for e in self.entries])

    @classmethod
    def from_entries(cls, entries: list[LibraryEntry], stride: int, landmarks: np.ndarray,
                     valid: np.ndarray) -> Library:
        """The entries whose frame has a face in the final track (``landmarks`` (n, 478, 3), ``valid`` (n,) bool)."""
        kept = tuple(e for e in entries if valid[e.index])
        desc = np.array([L.mouth_descriptor(landmarks[e.index]) for e in kept])
        return cls(kept, stride, desc)


class LibraryBuilder:
    """Collects library entries during the analysis pass, within ``budget_bytes`` and ``max_entries``."""

    def __init__(self, budget_bytes: float, max_entries: int) -> None:
        self.budget_bytes = budget_bytes
        self.max_entries = max_entries
        self.stride = 1
        self.entries: list[LibraryEntry] = []
        self._bytes = 0

    def add(self, index: int, frame: np.ndarray, landmarks: np.ndarray | None) -> None:
        """Offer source frame ``index`` (RGB uint8 (h, w, 3)) with its landmarks (478, >=2) or None (no face)."""
        if landmarks is None or index % self.stride:
            return
        x0, y0, x1, y1 = lower_face_box(landmarks, CROP_MARGIN_IOD, frame.shape[:2])
        if x1 - x0 < MIN_CROP_PX or y1 - y0 < MIN_CROP_PX:
            return
        crop = own_pages(frame[y0:y1, x0:x1])
        self.entries.append(LibraryEntry(index, x0, y0, crop))
        self._bytes += crop.nbytes
        while self._bytes > self.budget_bytes or len(self.entries) > self.max_entries:
            self.stride *= 2
            self.entries = [e for e in self.entries if e.index % self.stride == 0]
            self._bytes = sum(e.crop.nbytes for e in self.entries)
            log.debug("mouth library thinned to every %d frames (%d entries)", self.stride, len(self.entries))


def own_pages(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` in memory pages of its own (an anonymous mapping, returned to the system when the copy is
    freed), for arrays kept a long time among many short-lived large ones.

    Library crops live for the whole job while decoded frames (2.7 MB at 720p) come and go around them; on the
    heap each crop can land in a freed frame's hole, which then no longer fits a frame, and the heap grows with
    the clip's length (measured, 720p: peak RSS 502-509 MB for a 60 s clip against 481-487 MB with crops in their
    own pages; 409-428 MB for 10 s either way).
    """
    buf = mmap.mmap(-1, max(1, a.nbytes))
    out = np.frombuffer(buf, a.dtype, count=a.size).reshape(a.shape)
    out[...] = a
    return out


def lower_face_box(lm: np.ndarray, margin: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` around jaw, lips, nose base and lower face of ``lm`` (478, >=2), grown by
    ``margin`` inter-ocular distances and clipped to a frame of ``shape`` (height, width)."""
    pts = lm[np.concatenate([L.JAW, L.LIPS, L.NOSE_BASE, L.LOWER_FACE_INNER]), :2]
    iod = float(L.interocular(lm))
    m = margin * iod
    x0, y0 = np.floor(pts.min(0) - m).astype(int)
    x1, y1 = np.ceil(pts.max(0) + m).astype(int)
    h, w = shape
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def entry_points(entry: LibraryEntry, landmarks: np.ndarray) -> np.ndarray:
    """The entry's landmarks, float64 (478, 2), in its crop's pixel coordinates (``landmarks``: the track's)."""
    return landmarks[entry.index, :, :2].astype(np.float64) - (entry.x0, entry.y0)


def mouth_patches(entries: list[LibraryEntry] | tuple[LibraryEntry, ...], landmarks: np.ndarray,
                  size: tuple[int, int] = PATCH_SIZE) -> np.ndarray:
    """Each entry's mouth as a small grey patch in a common face frame: (n, h * w) float32, mean removed.

    Entries are aligned by a similarity on the stable points (eyes, nose), so two
    patches differ where the mouths look different: opening, teeth, lip shading.
    The patch spans 1.2 × 0.9 inter-ocular distances around the mouth.
    """
    w, h = size
    ref = landmarks[entries[0].index, :, :2].astype(np.float64)
    iod = float(L.interocular(ref))
    centre = ref[L.LIPS_OUTER].mean(0)
    scale = w / (PATCH_SPAN_IOD * iod)
    to_patch = np.array([[scale, 0.0, w / 2 - scale * centre[0]], [0.0, scale, h / 2 - scale * centre[1]]])
    out = np.empty((len(entries), h * w), np.float32)
    for n, e in enumerate(entries):
        pts = landmarks[e.index, :, :2].astype(np.float64) - (e.x0, e.y0)
        m = L.similarity_transform(pts[L.STABLE], ref[L.STABLE])  # crop -> reference frame
        m = to_patch @ np.vstack([m, [0.0, 0.0, 1.0]])
        grey = cv2.cvtColor(e.crop, cv2.COLOR_RGB2GRAY)
        patch = cv2.warpAffine(grey, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        v = patch.astype(np.float32).ravel()
        out[n] = v - v.mean()
    return out


def pairwise_rms(x: np.ndarray) -> np.ndarray:
    """Root-mean-square difference between every pair of rows of ``x`` (n, d) -> (n, n)."""
    x = np.asarray(x, np.float64)
    sq = (x**2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    return np.sqrt(np.maximum(d2, 0.0) / x.shape[1])


def measure_teeth(entry: LibraryEntry, points: np.ndarray) -> np.ndarray | None:
    """Mean colour (RGB, 0-255) of the bright pixels inside the entry's own inner lips (its visible teeth),
    or None where it shows none; ``points``: the entry's landmarks in its crop (see :func:`entry_points`)."""
    inside = polygon_mask(entry.crop.shape[:2], points[L.LIPS_INNER]) > 128
    px = entry.crop[inside].astype(np.float32)
    if len(px) < TEETH_MIN_PX:
        return None
    lum = px.mean(1)
    bright = px[lum > np.percentile(lum, TEETH_PERCENTILE)]
    # teeth are brighter and greyer than the lips around them (a closed mouth's inside is lip)
    lips = entry.crop[(polygon_mask(entry.crop.shape[:2], points[L.LIPS_OUTER]) > 128) & ~inside].astype(np.float32)
    if len(lips) >= TEETH_MIN_PX:
        lip = np.median(lips, axis=0)
        chroma = bright.max(1) - bright.min(1)
        bright = bright[(bright.mean(1) > TEETH_OVER_LIPS * lip.mean())
                        & (chroma < TEETH_CHROMA_SHARE * max(float(lip.max() - lip.min()), 1.0))]
    if len(bright) < TEETH_MIN_PX // 2:
        return None
    return bright.mean(0) if bright.mean() > TEETH_MIN_LEVEL else None
