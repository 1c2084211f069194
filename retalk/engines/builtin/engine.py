"""The built-in engine: photoreal lip sync with no weights, after Video Rewrite (Bregler et al. 1997).

The source video is the library of this speaker's mouth appearances.

1. **Library** (analysis pass): a bounded set of lower-face crops at full
   resolution, one every ``stride`` frames (the stride doubles whenever the
   set would exceed its memory budget, so memory does not grow with length).
2. **Targets**: the speech's mouth track (0 = closed … 1 = wide) is mapped into
   this speaker's own range of lip openings and widths (quantiles over the clip).
3. **Selection**: dynamic programming (Viterbi) over library entries for every
   output frame: close to the target shape and to the background frame's head
   pose, preferring to play real consecutive frames and penalising jumps, which
   avoids stutter between a few entries. A jump costs more the more the mouth
   jumped to looks unlike the one that would have come next (small aligned grey
   patches), so the mouth's appearance changes frame to frame about as much as
   the speaker's own.
4. **Geometry**: the chosen entry's whole lip and jaw shape, moved onto the
   background frame by a similarity fitted on stable points (eyes, nose), plus a
   small residual (lower lip and jaw drop, width) so the opening meets the target
   exactly; a closure target always closes. The jaw keeps the background frame's
   own sideways placement (an entry's head turn would swing the chin), and its
   offset from the frame's own jaw is averaged over a few frames either side
   (the lips are not: they meet the target exactly).
5. **Rendering**: the background frame's own lower face and neck are warped to
   that geometry (so the chin moves with the jaw), the chosen mouth is warped
   onto it with the same triangulation, colour-matched on the skin, and
   blended with a Laplacian pyramid under a feathered lower-face mask. Where the
   target opens wider than the chosen mouth ever did (a still photo), the mouth
   interior is synthesized.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from retalk.compose.blend import feather, laplacian_blend, match_mean_colour, polygon_mask
from retalk.compose.interior import synthesize_interior
from retalk.compose.warp import TriangleWarp
from retalk.engines.base import Engine, Plan, RenderItem
from retalk.face import landmarks as L

log = logging.getLogger(__name__)

_UPPER_JAW = {234, 93, 454, 323}
MOBILE = np.array(sorted(set(L.LIPS) | set(L.LOWER_FACE_INNER) | (set(L.JAW) - _UPPER_JAW)))
ANCHORS = np.array(sorted(set(L.NOSE_BASE) | {234, 93, 454, 323, 205, 425, 50, 280, 36, 266, 129, 358, 187, 411, 147, 376, 4, 5}))
CONTROL = np.array(sorted(set(MOBILE) | set(ANCHORS)))
_MOBILE_IN_CONTROL = np.isin(CONTROL, MOBILE)
# Lower-face region the mouth may change: lips, chin and the cheeks beside the mouth.
MASK_POINTS = np.array(sorted(set(L.LIPS) | set(L.LOWER_FACE_INNER) | set(L.JAW[3:-3]) | {203, 423, 98, 327, 2, 97, 326}))
_JAW_ONLY = np.array(sorted(set(MOBILE) - set(L.LIPS)))
_UPPER_LIP = np.array(sorted((set(L.UPPER_INNER) | set(L.UPPER_OUTER)) - {61, 291, 78, 308}))


@dataclass(frozen=True)
class LibraryEntry:
    """A source frame's lower face: ``crop`` (RGB uint8) whose top-left is at (``x0``, ``y0``) in the frame."""

    index: int
    x0: int
    y0: int
    crop: np.ndarray


def _lower_face_box(lm: np.ndarray, margin: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    pts = lm[np.concatenate([L.JAW, L.LIPS, L.NOSE_BASE, L.LOWER_FACE_INNER]), :2]
    iod = float(L.interocular(lm))
    m = margin * iod
    x0, y0 = np.floor(pts.min(0) - m).astype(int)
    x1, y1 = np.ceil(pts.max(0) + m).astype(int)
    h, w = shape
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def mouth_patches(entries: list[LibraryEntry], landmarks: np.ndarray, size: tuple[int, int] = (48, 36)) -> np.ndarray:
    """Each entry's mouth as a small grey patch in a common face frame: (n, h * w) float32, mean removed.

    Entries are aligned by a similarity on the stable points (eyes, nose), so two
    patches differ where the mouths look different: opening, teeth, lip shading.
    The patch spans 1.2 × 0.9 inter-ocular distances around the mouth.
    """
    w, h = size
    ref = landmarks[entries[0].index, :, :2].astype(np.float64)
    iod = float(L.interocular(ref))
    centre = ref[L.LIPS_OUTER].mean(0)
    scale = w / (1.2 * iod)
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


def _mean_step(series: np.ndarray, frames: np.ndarray) -> float:
    """Mean absolute change between consecutive source frames (only pairs that are both valid)."""
    consecutive = np.diff(frames) == 1
    return float(np.abs(np.diff(series))[consecutive].mean()) if consecutive.any() else 0.0


def smooth_pinned(x: np.ndarray, pinned: np.ndarray, weight: float) -> np.ndarray:
    """Minimise sum (y - x)^2 + weight * sum (y[i+1] - y[i])^2 with y = x at ``pinned`` frames.

    A tridiagonal solve; pinned frames (closures) keep their value exactly and the
    frames around them approach it smoothly.
    """
    n = len(x)
    if n < 3 or weight <= 0:
        return x.copy()
    from scipy.linalg import solve_banded

    # banded storage: ab[0, j] = A[j-1, j], ab[1, j] = A[j, j], ab[2, j] = A[j+1, j]
    ab = np.zeros((3, n))
    ab[1] = 1.0 + 2 * weight
    ab[1, 0] = ab[1, -1] = 1.0 + weight
    ab[0, 1:] = -weight
    ab[2, :-1] = -weight
    rhs = x.astype(np.float64).copy()
    for i in np.flatnonzero(pinned):  # a pinned row reads y_i = x_i
        ab[1, i] = 1.0
        if i + 1 < n:
            ab[0, i + 1] = 0.0
        if i > 0:
            ab[2, i - 1] = 0.0
    return solve_banded((1, 1), ab, rhs)


def match_smoothness(x: np.ndarray, pinned: np.ndarray, target_step: float) -> np.ndarray:
    """Smooth ``x`` (pinned frames fixed) just enough that its mean frame-to-frame change between
    unpinned frames is ``target_step`` (closing and opening around a closure stay as sharp as they are)."""
    free = ~pinned[1:] & ~pinned[:-1]
    if target_step <= 0 or len(x) < 3 or not free.any():
        return x

    def step(y: np.ndarray) -> float:
        return float(np.abs(np.diff(y))[free].mean())

    if step(x) <= target_step:
        return x
    lo, hi = 0.0, 1.0
    while step(smooth_pinned(x, pinned, hi)) > target_step and hi < 256:
        lo, hi = hi, hi * 2
    for _ in range(12):  # bisection on the weight: the change falls monotonically as it grows
        mid = 0.5 * (lo + hi)
        if step(smooth_pinned(x, pinned, mid)) > target_step:
            lo = mid
        else:
            hi = mid
    return smooth_pinned(x, pinned, hi).astype(x.dtype)


class BuiltinEngine(Engine):
    """Photoreal lip sync from the speaker's own footage; see the module docstring.

    ``library_budget_mb`` bounds the memory of stored mouth crops; ``max_entries``
    bounds the selection problem's size. ``jump_cost``: the price of leaving the
    source's own frame order; ``appearance_weight``: what a jump costs per unit of
    visual difference (in the speaker's own frame-to-frame change) between the
    mouth jumped to and the one that would have come next; ``temporal_blend``:
    the share of the previous frame's mouth (warped to the current shape) mixed
    into each frame; ``crossfade``: mix half of the previous mouth in at a jump; ``jaw_smoothing``: output
    frames either side over which the jaw's placement is averaged (0: none).
    """

    name = "builtin"
    batch_size = 8

    def __init__(self, library_budget_mb: float = 320.0, max_entries: int = 300, jump_cost: float = 5.0,
                 shape_tolerance: float = 0.1, crossfade: bool = True, appearance_weight: float = 5.0,
                 temporal_blend: float = 0.3, jaw_smoothing: int = 3, **_: object) -> None:
        self.budget = library_budget_mb * 1e6
        self.max_entries = max_entries
        self.jump_cost = jump_cost
        self.shape_tolerance = shape_tolerance
        self.crossfade = crossfade
        self.appearance_weight = appearance_weight
        self.temporal_blend = temporal_blend
        self.jaw_smoothing = int(jaw_smoothing)
        self._targets: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.stride = 1
        self.entries: list[LibraryEntry] = []
        self._bytes = 0
        self._triangles: np.ndarray | None = None
        self._teeth: dict[int, np.ndarray | None] = {}
        self.plan: Plan | None = None

    # ---------------------------------------------------------------- analysis
    def observe(self, index: int, frame: np.ndarray, landmarks: np.ndarray | None) -> None:
        if landmarks is None or index % self.stride:
            return
        x0, y0, x1, y1 = _lower_face_box(landmarks, 0.45, frame.shape[:2])
        if x1 - x0 < 8 or y1 - y0 < 8:
            return
        crop = np.array(frame[y0:y1, x0:x1])
        self.entries.append(LibraryEntry(index, x0, y0, crop))
        self._bytes += crop.nbytes
        while self._bytes > self.budget or len(self.entries) > self.max_entries:
            self.stride *= 2
            self.entries = [e for e in self.entries if e.index % self.stride == 0]
            self._bytes = sum(e.crop.nbytes for e in self.entries)
            log.debug("mouth library thinned to every %d frames (%d entries)", self.stride, len(self.entries))

    # ---------------------------------------------------------------- planning
    def prepare(self, plan: Plan) -> None:
        self.plan = plan
        self._targets = {}
        track = plan.track
        self.entries = [e for e in self.entries if track.valid[e.index]]
        if not self.entries:
            return
        lms = track.landmarks
        valid_idx = np.flatnonzero(track.valid)
        desc_all = np.array([L.mouth_descriptor(lms[k]) for k in valid_idx])
        lib = np.array([L.mouth_descriptor(lms[e.index]) for e in self.entries])
        self.lib_desc = lib
        o_lo, o_hi = np.quantile(desc_all[:, 0], [0.05, 0.95])
        w_lo, w_hi = np.quantile(desc_all[:, 1], [0.05, 0.95])
        # a clip that barely moves its mouth (or a photo) gets a typical human range instead
        rich_range = o_hi - o_lo >= 0.08
        if not rich_range:
            # one mouth shape (a photo): rest nearly closed even if the picture's mouth is open
            o_lo = min(o_lo, 0.06)
            o_hi = o_lo + 0.17
        w_mid = 0.5 * (w_lo + w_hi)
        w_half = max(0.5 * (w_hi - w_lo), 0.06 * w_mid)
        self.range = (float(o_lo), float(o_hi))
        m = plan.mouth
        t_open = o_lo + m.opening * (o_hi - o_lo)
        if rich_range:
            # quantile mapping: the speech's openings take this speaker's own distribution of openings
            open_frames = ~m.closed & (m.opening > 0)
            src = desc_all[:, 0][desc_all[:, 0] > o_lo + 0.1 * (o_hi - o_lo)]
            if open_frames.sum() >= 5 and len(src) >= 5:
                o = m.opening[open_frames]
                ranks = (np.argsort(np.argsort(o)) + 0.5) / len(o)
                quiet = np.clip(o / max(float(np.median(o)), 1e-6), 0.0, 1.0) ** 0.25  # soft syllables stay small
                t_open[open_frames] = np.quantile(src, ranks) * quiet
        # a closure always brings the lips together, even for a speaker whose rest pose is parted (a smile)
        t_open = np.where(m.closed, min(o_lo, float(desc_all[:, 0].min()), 0.005), t_open)
        if rich_range:
            # move like this speaker moves: as smooth frame to frame as their own lips, closures kept shut
            t_open = match_smoothness(t_open, m.closed, _mean_step(desc_all[:, 0], valid_idx))
        t_width = w_mid + m.width * w_half
        self.t_open, self.t_width = t_open.astype(np.float32), t_width.astype(np.float32)
        self.selection = self._select(t_open, t_width, m.closed, (o_hi - o_lo), w_half)
        log.info("built-in engine: %d library mouths (every %d frames), %s; opening range %.3f–%.3f",
                 len(self.entries), self.stride,
                 "varied" if rich_range else "few shapes: warping + synthesized interior", o_lo, o_hi)

    def _select(self, t_open: np.ndarray, t_width: np.ndarray, closed: np.ndarray, o_range: float,
                w_half: float) -> np.ndarray:
        """Viterbi over library entries; returns the entry index per output frame."""
        plan = self.plan
        assert plan is not None
        lib = self.lib_desc
        k = len(lib)
        pose_lib = plan.track.pose[[e.index for e in self.entries]][:, :2]
        pose_bg = plan.track.pose[plan.schedule][:, :2]
        d_open = (lib[None, :, 0] - t_open[:, None]) / (self.shape_tolerance * o_range)
        d_width = (lib[None, :, 1] - t_width[:, None]) / (0.5 * w_half)
        d_pose = (pose_lib[None, :, :] - pose_bg[:, None, :]) / 8.0
        unary = d_open**2 + 0.5 * d_width**2 + (d_pose**2).sum(-1)
        open_frac = (lib[:, 0] - self.range[0]) / o_range
        unary += np.where(closed[:, None] & (open_frac[None, :] > 0.12), 20.0, 0.0)
        unary = np.minimum(unary, 200.0)
        idx = np.array([e.index for e in self.entries])
        dd = (lib[:, None, 0] - lib[None, :, 0]) / (0.2 * o_range)
        trans = self.jump_cost + dd**2
        succ = np.flatnonzero(idx[1:] - idx[:-1] == self.stride)
        if self.appearance_weight > 0 and len(succ):
            # A jump from a to b shows b where a's successor would have come: the jump costs in
            # proportion to how different those two mouths look, in units of the speaker's own
            # change from one frame to the next, so the selection jumps between look-alikes.
            look = pairwise_rms(mouth_patches(self.entries, plan.track.landmarks))
            natural = float(np.median(look[succ, succ + 1]))
            nxt = np.arange(k)
            nxt[succ] = succ + 1
            trans += self.appearance_weight * look[nxt] / max(natural, 1e-3)
        np.fill_diagonal(trans, 0.8)
        trans[succ, succ + 1] = 0.0
        n = len(t_open)
        back = np.zeros((n, k), np.int32)
        cost = unary[0].copy()
        for i in range(1, n):
            tot = cost[:, None] + trans
            back[i] = np.argmin(tot, axis=0)
            cost = tot[back[i], np.arange(k)] + unary[i]
        sel = np.zeros(n, np.int32)
        sel[-1] = int(np.argmin(cost))
        for i in range(n - 1, 0, -1):
            sel[i - 1] = back[i, sel[i]]
        jumps = int(np.sum((np.diff(sel) != 0) & (trans[sel[:-1], sel[1:]] > 0)))
        log.debug("selection: %d jumps over %d frames", jumps, n)
        return sel

    # ---------------------------------------------------------------- rendering
    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        return [self.render_one(it) for it in items]

    def _residual(self, lm_j: np.ndarray, t_open: float, d_width: float) -> np.ndarray:
        """Displacements (478, 2) in pixels that give the mouth of ``lm_j`` an inner-lip opening of ``t_open``
        (face units, mid-lip gap) and widen it by ``d_width``.

        Each inner-lip point pair gets its own gap: an open source mouth is scaled
        (so closing brings every pair together without the lips crossing), a closed
        one opens along an arch. The lower lip takes 85% of the change, the upper
        lip 15%; the chin and jaw follow the lower lip's middle, fading towards the ears.
        """
        _, ex, ey = L.face_frame(lm_j)
        iod = float(L.interocular(lm_j))
        f = L.to_face_coords(lm_j)
        up_in, lo_in = L.UPPER_INNER, L.LOWER_INNER
        gap = np.maximum(f[lo_in, 1] - f[up_in, 1], 0.0)
        mid = float(gap[3:8].mean())
        arch = np.sin(np.linspace(0.0, np.pi, len(gap))) ** 0.8
        arch /= arch[3:8].mean()
        if mid > 0.02:
            new_gap = gap * (t_open / mid)
        else:
            new_gap = gap + np.maximum(t_open - mid, 0.0) * arch
        new_gap = np.maximum(new_gap, 0.002)
        change = new_gap - gap  # per pair, face units (+ opens)
        d_mid = float(change[3:8].mean())
        # chin, jaw and lower face follow the middle of the lower lip
        y_m = 0.5 * (f[L.MOUTH_LEFT, 1] + f[L.MOUTH_RIGHT, 1])
        x_mid = 0.5 * (f[L.MOUTH_LEFT, 0] + f[L.MOUTH_RIGHT, 0])
        y_li = f[lo_in[2:-2], 1].mean()
        y_chin = f[L.CHIN, 1]
        half_w = max(0.5 * abs(f[L.MOUTH_RIGHT, 0] - f[L.MOUTH_LEFT, 0]), 0.1)
        jaw_half = max(0.5 * abs(f[454, 0] - f[234, 0]), 0.3)
        yr = f[:, 1] - y_m
        g = np.clip(yr / max(y_li - y_m, 0.02), 0.0, 1.0)
        below = np.clip((yr - (y_li - y_m)) / max(y_chin - y_li, 0.05), 0.0, 1.0)
        g = np.where(yr > (y_li - y_m), 1.0 - 0.3 * below, g)
        g = np.where(f[:, 1] > y_chin + 0.05, 0.0, g)
        lat = np.clip(1.0 - ((f[:, 0] - x_mid) / jaw_half) ** 2, 0.0, 1.0)
        dy = 0.85 * d_mid * g * (0.2 + 0.8 * lat)
        # the lips themselves: exact per-pair changes (outer contour follows its inner partner)
        dy[lo_in] = 0.85 * change
        dy[L.LOWER_OUTER] = 0.85 * change
        dy[up_in[1:-1]] = -0.15 * change[1:-1]
        dy[L.UPPER_OUTER[1:-1]] = -0.15 * change[1:-1]
        # widening: lip points move sideways in proportion to their offset from the centre
        lip_w = np.clip(1.0 - (np.abs(yr) / 0.35) ** 2, 0.0, 1.0)
        dx = d_width * 0.5 * np.clip((f[:, 0] - x_mid) / half_w, -1.3, 1.3) * lip_w
        mob = np.zeros(len(f), bool)
        mob[MOBILE] = True
        disp = (np.outer(dy, ey) + np.outer(dx, ex)) * iod
        disp[~mob] = 0.0
        return disp

    def _teeth_colour(self, entry: LibraryEntry, lj: np.ndarray) -> np.ndarray | None:
        """Mean colour of bright pixels inside the entry's own inner lips (its visible teeth), if any; once per entry."""
        if entry.index not in self._teeth:
            self._teeth[entry.index] = self._measure_teeth(entry, lj)
        return self._teeth[entry.index]

    @staticmethod
    def _measure_teeth(entry: LibraryEntry, lj: np.ndarray) -> np.ndarray | None:
        inside = polygon_mask(entry.crop.shape[:2], lj[L.LIPS_INNER]) > 128
        px = entry.crop[inside].astype(np.float32)
        if len(px) < 12:
            return None
        lum = px.mean(1)
        bright = px[lum > np.percentile(lum, 70)]
        return bright.mean(0) if bright.mean() > 110 else None

    def _mix_from(self, i: int) -> tuple[int, float] | None:
        """The earlier library mouth to mix into output frame ``i`` and its share, or None.

        At a jump to another part of the clip (with ``crossfade``): half of the mouth that
        would have come next, so the jump does not pop. Otherwise, whenever the selection
        moves on: ``temporal_blend`` of the previous frame's mouth, which evens out texture
        flicker from one source frame to the next. Both are warped to the current shape.
        """
        if i == 0:
            return None
        a, b = int(self.selection[i - 1]), int(self.selection[i])
        if b == a:
            return None
        natural = b == a + 1 and self.entries[b].index - self.entries[a].index == self.stride
        if self.crossfade and not natural:
            nxt = a + 1 if a + 1 < len(self.entries) else a
            if nxt != b:
                return nxt, 0.5
        return (a, self.temporal_blend) if self.temporal_blend > 0 else None

    @staticmethod
    def _lip_contact(fg: np.ndarray, upper: np.ndarray, lower: np.ndarray, mouth_u8: np.ndarray, iod: float,
                     strength: float) -> np.ndarray:
        """Close a parted mouth's gap with lip colour and paint a soft dark line where the lips meet.

        Closing squeezes the picture's teeth and mouth interior into a thin band between the lips, which
        reads as a dotted line with dark specks; the band (the inner-lip outline, slightly widened) is
        covered with the lips' own colour first.
        """
        ys, xs = np.nonzero(mouth_u8 > 128)
        if len(ys) == 0:
            return fg
        # work on the mouth's bounding box (all the filters below reach a few pixels at most)
        m = int(max(8, np.ceil(0.1 * iod)))
        H, W = fg.shape[:2]
        y0, y1 = max(0, int(ys.min()) - m), min(H, int(ys.max()) + m + 1)
        x0, x1 = max(0, int(xs.min()) - m), min(W, int(xs.max()) + m + 1)
        off = np.array([x0, y0], np.float64)
        out = fg.copy()
        out[y0:y1, x0:x1] = BuiltinEngine._lip_contact_box(fg[y0:y1, x0:x1], upper - off, lower - off,
                                                            mouth_u8[y0:y1, x0:x1], iod, strength)
        return out

    @staticmethod
    def _lip_contact_box(fg: np.ndarray, upper: np.ndarray, lower: np.ndarray, mouth_u8: np.ndarray, iod: float,
                         strength: float) -> np.ndarray:
        lips_px = fg[mouth_u8 > 128]
        h, w = fg.shape[:2]
        band = polygon_mask((h, w), np.concatenate([upper, lower[::-1]]))
        grow = max(1, int(round(0.025 * iod)))
        band = cv2.dilate(band, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        outside = (mouth_u8 > 128) & (band < 128)
        lip_rgb = np.median(fg[outside], axis=0) if outside.sum() >= 12 else np.median(lips_px, axis=0)
        cover = feather(band.astype(np.float32) / 255.0, max(0.6, 0.01 * iod)) * strength
        fg = fg * (1 - cover[..., None]) + lip_rgb * cover[..., None]
        # collapsed triangles of the squeezed interior can still leave single dark pixels on the lips
        # (far darker than their neighbourhood): replace those by the local median
        u8 = np.clip(fg + 0.5, 0, 255).astype(np.uint8)
        med = cv2.medianBlur(u8, 5)
        speck = (med.astype(np.int16).sum(2) - u8.astype(np.int16).sum(2)) > 90
        speck &= cv2.dilate(mouth_u8, np.ones((3, 3), np.uint8)) > 128
        if speck.any():
            fg[speck] += (med[speck].astype(np.float32) - fg[speck]) * strength
        colour = np.percentile(lips_px, 30, axis=0) * 0.55
        mid = 0.5 * (upper + lower)
        line = np.zeros((h, w), np.float32)
        thick = max(1, int(round(0.035 * iod)))
        cv2.polylines(line, [np.round(mid * 16).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, shift=4)
        line = cv2.GaussianBlur(line, (0, 0), max(0.6, 0.012 * iod)) * strength
        return fg * (1 - line[..., None]) + colour * line[..., None]

    def _entry_points(self, entry: LibraryEntry) -> np.ndarray:
        """The entry's landmarks (478, 2) in its crop's pixel coordinates."""
        assert self.plan is not None
        return self.plan.track.landmarks[entry.index, :, :2].astype(np.float64) - (entry.x0, entry.y0)

    @staticmethod
    def _warp_entry(entry: LibraryEntry, lj: np.ndarray, to_frame: np.ndarray, warp: TriangleWarp,
                    border_frame: np.ndarray) -> np.ndarray:
        """Warp an entry's crop onto the target geometry of ``warp`` (float32 ROI).

        ``to_frame``: the similarity from crop to frame coordinates; the ROI border
        points (``border_frame``, frame pixels) are carried back into the crop by its inverse.
        """
        src = np.concatenate([lj[CONTROL], L.apply_affine(cv2.invertAffineTransform(to_frame), border_frame)])
        return warp.warp(entry.crop, src).astype(np.float32)

    @staticmethod
    def place(lb: np.ndarray, lj_res: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Target landmarks: the background frame's ``lb`` with the mouth and jaw of an entry (``lj_res``,
        already given its residual) carried over by the similarity ``t`` (entry crop -> frame).

        The jaw's sideways placement stays the background frame's own: an entry recorded with the head
        turned a little carries its chin off to one side, and taking that over would swing the chin
        sideways at every change of entry. Sideways displacements fade out from the lower lip (kept,
        so the lips widen as chosen) to the chin (dropped); everything moves up and down as the entry says.
        """
        tgt = lb.copy()
        tgt[MOBILE] = L.apply_affine(t, lj_res[MOBILE])
        _, ex, _ = L.face_frame(lb)
        fb = L.to_face_coords(lb)
        y_lip, y_chin = float(fb[L.LOWER_OUTER, 1].max()), float(fb[L.CHIN, 1])
        w = np.clip((fb[MOBILE, 1] - y_lip) / max(y_chin - y_lip, 0.05), 0.0, 1.0)
        d = tgt[MOBILE] - lb[MOBILE]
        tgt[MOBILE] -= (w * (d @ ex))[:, None] * ex[None, :]
        return tgt

    def _target(self, i: int, lb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Target landmarks (478, 2) of output frame ``i``: its chosen entry's mouth and jaw, given the residual
        that meets the frame's target opening and width, placed on the frame's own face (``lb``; looked up when
        None); and the similarity (2, 3) from the entry's crop to the frame. Cached for the few frames around
        the one being rendered."""
        hit = self._targets.get(i)
        if hit is not None:
            return hit[0], hit[2]
        plan = self.plan
        assert plan is not None
        if lb is None:
            lb = plan.track.landmarks[int(plan.schedule[i]), :, :2].astype(np.float64)
        sel = int(self.selection[i])
        lj = self._entry_points(self.entries[sel])
        d_width = float(self.t_width[i] - self.lib_desc[sel][1]) * 0.7
        lj_res = lj + self._residual(lj, float(self.t_open[i]), d_width)
        t = L.similarity_transform(lj[L.STABLE], lb[L.STABLE])
        tgt = self.place(lb, lj_res, t)
        # the jaw's offset from the frame's own, in face units (scale- and rotation-free, for averaging over frames)
        offset = L.to_face_coords(tgt)[_JAW_ONLY] - L.to_face_coords(lb)[_JAW_ONLY]
        self._targets[i] = (tgt, offset, t)
        if len(self._targets) > 4 * self.jaw_smoothing + 8:
            for key in sorted(self._targets)[: len(self._targets) // 2]:
                if abs(key - i) > self.jaw_smoothing:
                    del self._targets[key]
        return tgt, t

    def _smoothed_jaw(self, i: int, lb: np.ndarray) -> np.ndarray:
        """Frame ``i``'s jaw and lower-face points: the frame's own plus the jaw offset averaged over
        ``jaw_smoothing`` output frames either side (triangular weights).

        Each output frame takes its jaw from whichever library mouth the selection chose; from one entry
        to the next the jaw line differs a little (head pose, the speaker's own jaw), which shook the skin
        around the mouth more than the speaker's own (lips are not smoothed: closures stay exact).
        """
        r = int(self.jaw_smoothing)
        n = len(self.selection)
        acc = np.zeros((len(_JAW_ONLY), 2))
        total = 0.0
        for j in range(max(0, i - r), min(n, i + r + 1)):
            weight = float(r + 1 - abs(j - i))
            self._target(j, lb if j == i else None)
            acc += weight * self._targets[j][1]
            total += weight
        _, ex, ey = L.face_frame(lb)
        off = acc / total * float(L.interocular(lb))
        return lb[_JAW_ONLY] + off[:, :1] * ex[None, :] + off[:, 1:] * ey[None, :]

    def render_one(self, item: RenderItem) -> np.ndarray:
        plan = self.plan
        if plan is None or not self.entries:
            return item.frame
        i, k, frame = item.out_index, item.src_index, item.frame
        lb = plan.track.landmarks[k, :, :2].astype(np.float64)
        entry = self.entries[int(self.selection[i])]
        lj = self._entry_points(entry)
        dj = self.lib_desc[int(self.selection[i])]
        tgt, t = self._target(i, lb)
        if self.jaw_smoothing > 0:
            tgt = tgt.copy()
            tgt[_JAW_ONLY] = self._smoothed_jaw(i, lb)
        iod = float(L.interocular(lb))
        # region of interest: lower face of background and target, plus neck
        pts = np.concatenate([lb[MASK_POINTS], tgt[MASK_POINTS], lb[ANCHORS]])
        h, w = frame.shape[:2]
        x0 = int(max(0, np.floor(pts[:, 0].min() - 0.3 * iod)))
        x1 = int(min(w, np.ceil(pts[:, 0].max() + 0.3 * iod)))
        y0 = int(max(0, np.floor(pts[:, 1].min() - 0.1 * iod)))
        y1 = int(min(h, np.ceil(pts[:, 1].max() + 0.5 * iod)))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return frame
        rw, rh = x1 - x0, y1 - y0
        off = np.array([x0, y0], np.float64)
        bx = np.linspace(0, rw - 1, 6)
        by = np.linspace(0, rh - 1, 6)
        border = np.concatenate([
            np.stack([bx, np.zeros_like(bx)], 1), np.stack([bx, np.full_like(bx, rh - 1)], 1),
            np.stack([np.zeros_like(by[1:-1]), by[1:-1]], 1), np.stack([np.full_like(by[1:-1], rw - 1), by[1:-1]], 1),
        ])
        dst = np.concatenate([tgt[CONTROL] - off, border])
        warp = TriangleWarp(dst, (rw, rh), triangles=self._triangles)
        self._triangles = warp.tri
        # 1. the background's own lower face and neck follow the new jaw
        src_bg = np.concatenate([lb[CONTROL] - off, border])
        bg = warp.warp(frame, src_bg + off, border=cv2.BORDER_REFLECT)
        # 2. the chosen mouth, warped with the same triangles
        t_gap = float(self.t_open[i])
        # Both repairs below fade in from zero as the mismatch between the chosen mouth and the target
        # grows, so they never switch on or off between two frames (that read as flicker).
        # (the interior reaches full strength quickly: half of it over stretched teeth reads as a grey band)
        # per inner-lip pair (corner to corner): how far the target opens past the chosen mouth's own gap there;
        # a mouth parted on one side only gets a painted interior on the side it never opened
        f_src, f_tgt = L.to_face_coords(lj), L.to_face_coords(tgt)
        gap_src = np.maximum(f_src[L.LOWER_INNER, 1] - f_src[L.UPPER_INNER, 1], 0.0)
        gap_tgt = np.maximum(f_tgt[L.LOWER_INNER, 1] - f_tgt[L.UPPER_INNER, 1], 0.0)
        reveal = np.clip((gap_tgt - gap_src - 0.01) / 0.04, 0.0, 1.0)
        interior_alpha = float(reveal.max())
        contact = float(np.clip((dj[0] - t_gap - 0.01) / 0.05, 0.0, 1.0))
        fg = self._warp_entry(entry, lj, t, warp, border + off)
        mix = self._mix_from(i)
        if mix is not None:
            prev, beta = mix
            pe = self.entries[prev]
            lp = self._entry_points(pe)
            fg = (1 - beta) * fg + beta * self._warp_entry(
                pe, lp, L.similarity_transform(lp[L.STABLE], lb[L.STABLE]), warp, border + off)
        # mask: lower face, feathered
        hull = cv2.convexHull((tgt[MASK_POINTS] - off).astype(np.float32)).reshape(-1, 2)
        mask_u8 = polygon_mask((rh, rw), hull)
        er = max(1, int(0.05 * iod))
        mask_u8 = cv2.erode(mask_u8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * er + 1, 2 * er + 1)))
        mouth_u8 = polygon_mask((rh, rw), tgt[L.LIPS_OUTER] - off)
        skin = (mask_u8 > 128) & (cv2.dilate(mouth_u8, np.ones((3, 3), np.uint8), iterations=max(1, int(0.06 * iod))) == 0)
        fg = match_mean_colour(fg, bg, skin)
        # 3. mouth interior where the target opens wider than the chosen mouth
        if t_gap > 0.03 and interior_alpha > 0:
            lip_px = fg[(mouth_u8 > 128)]
            lip_rgb = lip_px.mean(0) if len(lip_px) else np.array([150, 80, 80])
            skin_rgb = bg[skin].mean(0) if skin.any() else np.array([180, 140, 120])
            up, lo = tgt[L.UPPER_INNER] - off, tgt[L.LOWER_INNER] - off
            teeth = self._teeth_colour(entry, lj)
            inner, alpha = synthesize_interior((rh, rw), up, lo, lip_rgb, skin_rgb, iod, teeth, reveal=reveal)
            fg = fg * (1 - alpha[..., None]) + inner * alpha[..., None]
        elif contact > 0:
            # closing a parted mouth squeezes its interior into a line: draw where the lips meet instead
            up_c = np.concatenate([tgt[[L.MOUTH_LEFT]], tgt[L.UPPER_INNER], tgt[[L.MOUTH_RIGHT]]]) - off
            lo_c = np.concatenate([tgt[[L.MOUTH_LEFT]], tgt[L.LOWER_INNER], tgt[[L.MOUTH_RIGHT]]]) - off
            fg = self._lip_contact(fg, up_c, lo_c, mouth_u8, iod, contact)
        m = feather(mask_u8.astype(np.float32) / 255.0, max(1.0, 0.06 * iod))
        out = laplacian_blend(fg, bg.astype(np.float32), m, levels=4)
        result = frame.copy() if not frame.flags.writeable else frame
        result[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return result
