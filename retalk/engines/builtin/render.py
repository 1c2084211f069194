"""Stage 5, rendering: one output frame composited from its background frame and its chosen mouth.

The background frame's own lower face and neck are warped to the frame's target geometry (so the chin
moves with the jaw), the chosen mouth is warped onto it with the same triangulation, colour-matched on
the skin, and blended with a Laplacian pyramid under a feathered lower-face mask. Where the target opens
wider than the chosen mouth ever did (a still photo), the mouth interior is synthesized; where it closes
a mouth that was parted, the lips are drawn meeting (:func:`retalk.compose.lip_contact.lip_contact`), and
where it closes a mouth that was wide open, each lip is first repainted in its own colour
(:func:`retalk.compose.lip_contact.refill_lips`: no tongue or teeth on the closed lips).

Sizes scale with the background face's inter-ocular distance ("iod", pixels); shapes are in face units
(inter-ocular distance = 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from retalk.compose.blend import feather, laplacian_blend, match_mean_colour, polygon_mask
from retalk.compose.interior import synthesize_interior
from retalk.compose.lip_contact import lip_contact, refill_lips
from retalk.compose.specks import remove_bright_specks
from retalk.compose.warp import TriangleWarp
from retalk.engines.base import Plan, RenderItem
from retalk.engines.builtin.geometry import ANCHORS, CONTROL, MASK_POINTS, FrameTargets
from retalk.engines.builtin.library import Library, LibraryEntry, entry_points, measure_teeth
from retalk.engines.builtin.selection import Selection
from retalk.engines.builtin.targets import Targets
from retalk.face import landmarks as L

ROI_MARGIN_SIDE_IOD = 0.3  # the region rendered: the lower-face points' box grown sideways by this ...
ROI_MARGIN_TOP_IOD = 0.1  # ... upwards by this ...
ROI_MARGIN_BOTTOM_IOD = 0.5  # ... and downwards by this (the neck follows the chin)
MIN_ROI_PX = 16  # a smaller region (pixels, either side) is not rendered
BORDER_POINTS = 6  # control points along each side of the region, corners included (they stay put)
MASK_ERODE_IOD = 0.05  # the lower-face mask is eroded by this ...
MASK_FEATHER_IOD = 0.06  # ... and feathered by a Gaussian of this sigma (at least 1 pixel)
SKIN_GAP_IOD = 0.06  # colour matching reads the skin at least this far from the lips
PYRAMID_LEVELS = 4  # Laplacian blend levels
# Repairs fade in from zero as the mismatch between the chosen mouth and the target grows, so they
# never switch on or off between two frames (that read as flicker):
REVEAL_SLACK = 0.01  # face units: an inner-lip pair opened this much wider than the chosen mouth's shows nothing ...
REVEAL_RAMP = 0.04  # ... and this much further, a fully painted interior (it reaches full strength quickly:
#                     half of it over stretched teeth reads as a grey band)
MIN_INTERIOR_OPENING = 0.03  # face units: no interior is painted for a target opening below this
CONTACT_SLACK = 0.01  # face units: a chosen mouth parted this much more than the target gets no contact line ...
CONTACT_RAMP = 0.05  # ... and this much further, the full lip-contact repair
REFILL_SLACK = 0.08  # face units: a chosen mouth open this much wider than the target keeps its warped lips ...
REFILL_RAMP = 0.08  # ... and this much further, each lip is repainted in its own colour (no tongue on the lips)
DEFAULT_LIP_RGB = (150, 80, 80)  # colours to paint an interior with where no lip or skin pixels are seen
DEFAULT_SKIN_RGB = (180, 140, 120)
CROSSFADE_SHARE = 0.5  # at a jump, this share of the mouth that would have come next is mixed in


@dataclass(frozen=True)
class Prepared:
    """What :meth:`BuiltinEngine.prepare` settles for a job; rendering only reads it.

    ``plan``: the pipeline's plan (face track, schedule); ``library``: the mouths to choose from;
    ``targets``: the mouth shape per output frame; ``selection``: the library entry per output frame.
    """

    plan: Plan
    library: Library
    targets: Targets
    selection: Selection


def mix_source(entry: np.ndarray, library: Library, i: int, crossfade: bool,
               temporal_blend: float, entry_shot: np.ndarray | None = None) -> tuple[int, float] | None:
    """The earlier library mouth to mix into output frame ``i`` and its share, or None.

    ``entry``: int (n,), the selection (-1: a frame shown unchanged). At a jump to another part of the clip
    (with ``crossfade``): half of the mouth that would have come next, so the jump does not pop. Otherwise,
    whenever the selection moves on: ``temporal_blend`` of the previous frame's mouth, which evens out texture
    flicker from one source frame to the next. Both are warped to the current shape. ``entry_shot``: int (k,),
    each library entry's shot (None: one shot); no mouth of another shot is mixed in.
    """
    if i == 0:
        return None
    a, b = int(entry[i - 1]), int(entry[i])
    if b == a or a < 0:
        return None
    if entry_shot is not None and entry_shot[a] != entry_shot[b]:
        return None  # a cut between the two output frames
    entries = library.entries
    natural = b == a + 1 and entries[b].index - entries[a].index == library.stride
    if crossfade and not natural:
        nxt = a + 1 if a + 1 < len(entries) else a
        if entry_shot is not None and entry_shot[nxt] != entry_shot[b]:
            nxt = a  # the mouth after a is the next shot's: mix in a's own
        if nxt != b:
            return nxt, CROSSFADE_SHARE
    return (a, temporal_blend) if temporal_blend > 0 else None


def warp_entry(entry: LibraryEntry, lj: np.ndarray, to_frame: np.ndarray, warp: TriangleWarp,
               border_frame: np.ndarray) -> np.ndarray:
    """Warp an entry's crop onto the target geometry of ``warp`` (float32 ROI).

    ``lj``: the entry's landmarks in its crop (478, 2); ``to_frame``: the similarity (2, 3) from crop to frame
    coordinates; the ROI border points (``border_frame``, frame pixels) are carried back into the crop by its inverse.
    """
    src = np.concatenate([lj[CONTROL], L.apply_affine(cv2.invertAffineTransform(to_frame), border_frame)])
    return warp.warp(entry.crop, src).astype(np.float32)


class MouthRenderer:
    """Renders the output frames of one :class:`Prepared` job, in order.

    Per-job caches only: the previous frame's triangulation (kept while it still fits, so the warp's
    creases stay put), each entry's teeth colour, and the geometry of the frames around the current one.
    ``crossfade``, ``temporal_blend``, ``jaw_smoothing``: see :class:`~retalk.engines.builtin.engine.BuiltinEngine`.
    """

    def __init__(self, prepared: Prepared, *, crossfade: bool, temporal_blend: float, jaw_smoothing: int) -> None:
        self.prepared = prepared
        self.crossfade = crossfade
        self.temporal_blend = temporal_blend
        p = prepared
        shot = p.plan.track.shots()
        self.out_shot = shot[p.plan.schedule]  # each output frame's shot
        self.entry_shot = shot[p.library.frames] if len(p.library) else np.zeros(0, np.int32)
        self.geometry = FrameTargets(p.plan.track.landmarks, p.plan.schedule, p.library, p.selection.entry,
                                     p.targets.opening, p.targets.width, jaw_smoothing, self.out_shot)
        self._triangles: np.ndarray | None = None
        self._triangles_shot = -1  # the shot the kept triangulation was made in
        self._teeth: dict[int, np.ndarray | None] = {}

    def _teeth_colour(self, entry: LibraryEntry, lj: np.ndarray) -> np.ndarray | None:
        """:func:`measure_teeth`, once per entry."""
        if entry.index not in self._teeth:
            self._teeth[entry.index] = measure_teeth(entry, lj)
        return self._teeth[entry.index]

    def render_one(self, item: RenderItem) -> np.ndarray:
        """Output frame ``item.out_index`` (RGB uint8, the size of ``item.frame``)."""
        p = self.prepared
        landmarks = p.plan.track.landmarks
        i, k, frame = item.out_index, item.src_index, item.frame
        sel = int(p.selection.entry[i])
        if sel < 0 or not p.plan.track.valid[k]:  # near a cut, no mouth of this shot, or no (sure) face: as it is
            return frame
        lb = landmarks[k, :, :2].astype(np.float64)
        entry = p.library.entries[sel]
        lj = entry_points(entry, landmarks)
        dj = p.library.descriptors[sel]
        tgt, t = self.geometry.frame(i, lb)
        iod = float(L.interocular(lb))
        # region of interest: lower face of background and target, plus neck
        pts = np.concatenate([lb[MASK_POINTS], tgt[MASK_POINTS], lb[ANCHORS]])
        h, w = frame.shape[:2]
        x0 = int(max(0, np.floor(pts[:, 0].min() - ROI_MARGIN_SIDE_IOD * iod)))
        x1 = int(min(w, np.ceil(pts[:, 0].max() + ROI_MARGIN_SIDE_IOD * iod)))
        y0 = int(max(0, np.floor(pts[:, 1].min() - ROI_MARGIN_TOP_IOD * iod)))
        y1 = int(min(h, np.ceil(pts[:, 1].max() + ROI_MARGIN_BOTTOM_IOD * iod)))
        if x1 - x0 < MIN_ROI_PX or y1 - y0 < MIN_ROI_PX:
            return frame
        rw, rh = x1 - x0, y1 - y0
        off = np.array([x0, y0], np.float64)
        border = _border(rw, rh)
        dst = np.concatenate([tgt[CONTROL] - off, border])
        if self.out_shot[i] != self._triangles_shot:  # another shot, another face: triangulate afresh
            self._triangles, self._triangles_shot = None, int(self.out_shot[i])
        warp = TriangleWarp(dst, (rw, rh), triangles=self._triangles)
        self._triangles = warp.tri
        # 1. the background's own lower face and neck follow the new jaw
        src_bg = np.concatenate([lb[CONTROL] - off, border])
        bg = warp.warp(frame, src_bg + off, border=cv2.BORDER_REFLECT)
        # 2. the chosen mouth, warped with the same triangles
        t_gap = float(self.geometry.opening[i])
        # per inner-lip pair (corner to corner): how far the target opens past the chosen mouth's own gap there;
        # a mouth parted on one side only gets a painted interior on the side it never opened
        f_src, f_tgt = L.to_face_coords(lj), L.to_face_coords(tgt)
        gap_src = np.maximum(f_src[L.LOWER_INNER, 1] - f_src[L.UPPER_INNER, 1], 0.0)
        gap_tgt = np.maximum(f_tgt[L.LOWER_INNER, 1] - f_tgt[L.UPPER_INNER, 1], 0.0)
        reveal = np.clip((gap_tgt - gap_src - REVEAL_SLACK) / REVEAL_RAMP, 0.0, 1.0)
        interior_alpha = float(reveal.max())
        contact = float(np.clip((dj[0] - t_gap - CONTACT_SLACK) / CONTACT_RAMP, 0.0, 1.0))
        fg = warp_entry(entry, lj, t, warp, border + off)
        mix = mix_source(p.selection.entry, p.library, i, self.crossfade, self.temporal_blend,
                         self.entry_shot)
        if mix is not None:
            prev, beta = mix
            pe = p.library.entries[prev]
            lp = entry_points(pe, landmarks)
            fg = (1 - beta) * fg + beta * warp_entry(
                pe, lp, L.similarity_transform(lp[L.STABLE], lb[L.STABLE]), warp, border + off)
        # mask: lower face, feathered
        hull = cv2.convexHull((tgt[MASK_POINTS] - off).astype(np.float32)).reshape(-1, 2)
        mask_u8 = polygon_mask((rh, rw), hull)
        er = max(1, int(MASK_ERODE_IOD * iod))
        mask_u8 = cv2.erode(mask_u8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * er + 1, 2 * er + 1)))
        mouth_u8 = polygon_mask((rh, rw), tgt[L.LIPS_OUTER] - off)
        near_lips = cv2.dilate(mouth_u8, np.ones((3, 3), np.uint8), iterations=max(1, int(SKIN_GAP_IOD * iod)))
        skin = (mask_u8 > 128) & (near_lips == 0)
        fg = match_mean_colour(fg, bg, skin)
        # 3. mouth interior where the target opens wider than the chosen mouth
        if t_gap > MIN_INTERIOR_OPENING and interior_alpha > 0:
            lip_px = fg[(mouth_u8 > 128)]
            lip_rgb = lip_px.mean(0) if len(lip_px) else np.array(DEFAULT_LIP_RGB)
            skin_rgb = bg[skin].mean(0) if skin.any() else np.array(DEFAULT_SKIN_RGB)
            up, lo = tgt[L.UPPER_INNER] - off, tgt[L.LOWER_INNER] - off
            teeth = self._teeth_colour(entry, lj)
            inner, alpha = synthesize_interior((rh, rw), up, lo, lip_rgb, skin_rgb, iod, teeth, reveal=reveal)
            fg = fg * (1 - alpha[..., None]) + inner * alpha[..., None]
        elif contact > 0:
            # closing a parted mouth squeezes its interior into a line: draw where the lips meet instead
            up_c = np.concatenate([tgt[[L.MOUTH_LEFT]], tgt[L.UPPER_INNER], tgt[[L.MOUTH_RIGHT]]]) - off
            lo_c = np.concatenate([tgt[[L.MOUTH_LEFT]], tgt[L.LOWER_INNER], tgt[[L.MOUTH_RIGHT]]]) - off
            refill = float(np.clip((dj[0] - t_gap - REFILL_SLACK) / REFILL_RAMP, 0.0, 1.0))
            fg = refill_lips(fg, tgt[L.UPPER_OUTER] - off, up_c, lo_c, tgt[L.LOWER_OUTER] - off, iod, refill)
            fg = lip_contact(fg, up_c, lo_c, mouth_u8, iod, contact)
        # teeth pixels carried past the inner lip contour by the warp: white specks on the lips
        fg = remove_bright_specks(fg, tgt[L.LIPS_INNER] - off, tgt[L.LIPS_OUTER] - off, iod)
        m = feather(mask_u8.astype(np.float32) / 255.0, max(1.0, MASK_FEATHER_IOD * iod))
        out = laplacian_blend(fg, bg.astype(np.float32), m, levels=PYRAMID_LEVELS)
        result = frame.copy() if not frame.flags.writeable else frame
        result[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return result


def _border(rw: int, rh: int) -> np.ndarray:
    """Control points (float64 (4 * BORDER_POINTS - 4, 2)) along the border of a ``rw`` × ``rh`` region."""
    bx = np.linspace(0, rw - 1, BORDER_POINTS)
    by = np.linspace(0, rh - 1, BORDER_POINTS)
    return np.concatenate([
        np.stack([bx, np.zeros_like(bx)], 1), np.stack([bx, np.full_like(bx, rh - 1)], 1),
        np.stack([np.zeros_like(by[1:-1]), by[1:-1]], 1), np.stack([np.full_like(by[1:-1], rw - 1), by[1:-1]], 1),
    ])
