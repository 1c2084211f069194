"""Stage 4, geometry: where the lips, jaw and lower face go on each output frame.

The chosen entry's whole lip and jaw shape is moved onto the background frame by a similarity fitted
on stable points (eyes, nose), plus a small residual (lower lip and jaw drop, width) so the opening meets
the target exactly; a closure target always closes. The jaw keeps the background frame's own sideways
placement (an entry's head turn would swing the chin), and its offset from the frame's own jaw is
averaged over a few output frames either side (the lips are not: they meet the target exactly).

Units: pixels for landmarks; "face units" (inter-ocular distance = 1, x along the eyes, y down the face)
for shapes and offsets.
"""
from __future__ import annotations

import numpy as np

from retalk.engines.builtin.library import Library, entry_points
from retalk.face import landmarks as L

# Points the mouth moves: lips, lower face and jaw line (not its ends beside the ears).
MOBILE = np.array(sorted(set(L.LIPS) | set(L.LOWER_FACE_INNER) | (set(L.JAW) - set(L.JAW_ENDS))))
# Points that hold the warp still around them: under the nose, jaw ends, cheeks and nose.
ANCHORS = np.array(sorted(set(L.NOSE_BASE) | set(L.JAW_ENDS) | set(L.MOUTH_SURROUND)))
# The warp's control points (the renderer adds its region's border).
CONTROL = np.array(sorted(set(MOBILE) | set(ANCHORS)))
# Lower-face region the mouth may change: lips, chin and the cheeks beside the mouth.
MASK_POINTS = np.array(sorted(set(L.LIPS) | set(L.LOWER_FACE_INNER) | set(L.LOWER_JAW) | set(L.NOSE_BASE)))
# The moving points that are not lips: their placement is averaged over neighbouring frames.
JAW_ONLY = np.array(sorted(set(MOBILE) - set(L.LIPS)))

OPEN_SOURCE_MIN = 0.02  # face units: a source mouth opened at least this much is scaled; a closed one opens
MIN_PAIR_GAP = 0.002  # face units: every inner-lip pair keeps at least this gap (the lips never cross)
ARCH_EXPONENT = 0.8  # a closed mouth opens along sin(corner to corner) ** this
LOWER_LIP_SHARE = 0.85  # of a change in opening, the lower lip (and the jaw with it) takes this ...
UPPER_LIP_SHARE = 0.15  # ... and the upper lip this
WIDTH_SHARE = 0.7  # of the width error between target and entry, the residual makes up this much
JAW_REACH_MIN = 0.02  # face units: least distance from the mouth corners' height to the lower lip
CHIN_REACH_MIN = 0.05  # face units: least distance from the lower lip to the chin
CHIN_FOLLOW_LOSS = 0.3  # the chin follows the lower lip's drop less by this much than the lip itself
BELOW_CHIN = 0.05  # face units: points further below the chin (neck) do not move
LATERAL_FLOOR = 0.2  # at the face's sides, the drop is this fraction of the middle's
MIN_HALF_WIDTH = 0.1  # face units: least half mouth width for spreading a widening
MIN_JAW_HALF = 0.3  # face units: least half face width for fading the drop towards the sides
WIDEN_REACH = 0.35  # face units: a widening moves points within this height of the mouth corners
WIDEN_MAX = 1.3  # sideways offsets beyond this multiple of the half width move no further


def residual(lm_j: np.ndarray, t_open: float, d_width: float) -> np.ndarray:
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
    mid = float(gap[L.MID_LIP_PAIRS].mean())
    arch = np.sin(np.linspace(0.0, np.pi, len(gap))) ** ARCH_EXPONENT
    arch /= arch[L.MID_LIP_PAIRS].mean()
    if mid > OPEN_SOURCE_MIN:
        new_gap = gap * (t_open / mid)
    else:
        new_gap = gap + np.maximum(t_open - mid, 0.0) * arch
    new_gap = np.maximum(new_gap, MIN_PAIR_GAP)
    change = new_gap - gap  # per pair, face units (+ opens)
    d_mid = float(change[L.MID_LIP_PAIRS].mean())
    # chin, jaw and lower face follow the middle of the lower lip
    y_m = 0.5 * (f[L.MOUTH_LEFT, 1] + f[L.MOUTH_RIGHT, 1])
    x_mid = 0.5 * (f[L.MOUTH_LEFT, 0] + f[L.MOUTH_RIGHT, 0])
    y_li = f[lo_in[2:-2], 1].mean()  # the lower inner lip, two points in from either corner
    y_chin = f[L.CHIN, 1]
    half_w = max(0.5 * abs(f[L.MOUTH_RIGHT, 0] - f[L.MOUTH_LEFT, 0]), MIN_HALF_WIDTH)
    jaw_half = max(0.5 * abs(f[L.CHEEK_EDGE_RIGHT, 0] - f[L.CHEEK_EDGE_LEFT, 0]), MIN_JAW_HALF)
    yr = f[:, 1] - y_m
    g = np.clip(yr / max(y_li - y_m, JAW_REACH_MIN), 0.0, 1.0)
    below = np.clip((yr - (y_li - y_m)) / max(y_chin - y_li, CHIN_REACH_MIN), 0.0, 1.0)
    g = np.where(yr > (y_li - y_m), 1.0 - CHIN_FOLLOW_LOSS * below, g)
    g = np.where(f[:, 1] > y_chin + BELOW_CHIN, 0.0, g)
    lat = np.clip(1.0 - ((f[:, 0] - x_mid) / jaw_half) ** 2, 0.0, 1.0)
    dy = LOWER_LIP_SHARE * d_mid * g * (LATERAL_FLOOR + (1.0 - LATERAL_FLOOR) * lat)
    # the lips themselves: exact per-pair changes (outer contour follows its inner partner)
    dy[lo_in] = LOWER_LIP_SHARE * change
    dy[L.LOWER_OUTER] = LOWER_LIP_SHARE * change
    dy[up_in[1:-1]] = -UPPER_LIP_SHARE * change[1:-1]
    dy[L.UPPER_OUTER[1:-1]] = -UPPER_LIP_SHARE * change[1:-1]
    # widening: lip points move sideways in proportion to their offset from the centre
    lip_w = np.clip(1.0 - (np.abs(yr) / WIDEN_REACH) ** 2, 0.0, 1.0)
    dx = d_width * 0.5 * np.clip((f[:, 0] - x_mid) / half_w, -WIDEN_MAX, WIDEN_MAX) * lip_w
    mob = np.zeros(len(f), bool)
    mob[MOBILE] = True
    disp = (np.outer(dy, ey) + np.outer(dx, ex)) * iod
    disp[~mob] = 0.0
    return disp


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
    w = np.clip((fb[MOBILE, 1] - y_lip) / max(y_chin - y_lip, CHIN_REACH_MIN), 0.0, 1.0)
    d = tgt[MOBILE] - lb[MOBILE]
    tgt[MOBILE] -= (w * (d @ ex))[:, None] * ex[None, :]
    return tgt


class FrameTargets:
    """Target landmarks of each output frame, computed on demand and cached for the frames around the one
    being rendered (the jaw is averaged over ``jaw_smoothing`` frames either side).

    ``landmarks``: the face track's (n_src, 478, >=2) pixels; ``schedule``: int (n,), each output frame's
    background source frame; ``entry``: int (n,), each output frame's library entry (-1: shown unchanged);
    ``opening``/``width``: (n,) target opening and width (face units; used at float32 precision);
    ``out_shot``: int (n,), each output frame's shot (None: one shot): the jaw is averaged only over
    rendered frames of the frame's own shot.
    """

    def __init__(self, landmarks: np.ndarray, schedule: np.ndarray, library: Library, entry: np.ndarray,
                 opening: np.ndarray, width: np.ndarray, jaw_smoothing: int,
                 out_shot: np.ndarray | None = None) -> None:
        self.landmarks = landmarks
        self.schedule = schedule
        self.library = library
        self.entry = entry
        self.opening = np.asarray(opening).astype(np.float32)
        self.width = np.asarray(width).astype(np.float32)
        self.jaw_smoothing = int(jaw_smoothing)
        self.out_shot = out_shot
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def background(self, i: int) -> np.ndarray:
        """Output frame ``i``'s background landmarks, float64 (478, 2) pixels."""
        return self.landmarks[int(self.schedule[i]), :, :2].astype(np.float64)

    def target(self, i: int, lb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Target landmarks (478, 2) of output frame ``i``: its chosen entry's mouth and jaw, given the residual
        that meets the frame's target opening and width, placed on the frame's own face (``lb``; looked up when
        None); and the similarity (2, 3) from the entry's crop to the frame."""
        hit = self._cache.get(i)
        if hit is not None:
            return hit[0], hit[2]
        if lb is None:
            lb = self.background(i)
        sel = int(self.entry[i])
        lj = entry_points(self.library.entries[sel], self.landmarks)
        d_width = float(self.width[i] - self.library.descriptors[sel][1]) * WIDTH_SHARE
        lj_res = lj + residual(lj, float(self.opening[i]), d_width)
        t = L.similarity_transform(lj[L.STABLE], lb[L.STABLE])
        tgt = place(lb, lj_res, t)
        # the jaw's offset from the frame's own, in face units (scale- and rotation-free, for averaging over frames)
        offset = L.to_face_coords(tgt)[JAW_ONLY] - L.to_face_coords(lb)[JAW_ONLY]
        self._cache[i] = (tgt, offset, t)
        if len(self._cache) > 4 * self.jaw_smoothing + 8:
            for key in sorted(self._cache)[: len(self._cache) // 2]:
                if abs(key - i) > self.jaw_smoothing:
                    del self._cache[key]
        return tgt, t

    def smoothed_jaw(self, i: int, lb: np.ndarray) -> np.ndarray:
        """Frame ``i``'s :data:`JAW_ONLY` points (pixels): the frame's own (``lb``) plus the jaw offset averaged
        over ``jaw_smoothing`` output frames either side (triangular weights).

        Each output frame takes its jaw from whichever library mouth the selection chose; from one entry
        to the next the jaw line differs a little (head pose, the speaker's own jaw), which shook the skin
        around the mouth more than the speaker's own (lips are not smoothed: closures stay exact).
        """
        r = self.jaw_smoothing
        n = len(self.entry)
        acc = np.zeros((len(JAW_ONLY), 2))
        total = 0.0
        for j in range(max(0, i - r), min(n, i + r + 1)):
            if self.out_shot is not None and (self.entry[j] < 0 or self.out_shot[j] != self.out_shot[i]):
                continue  # across a cut, or a frame shown unchanged
            weight = float(r + 1 - abs(j - i))
            self.target(j, lb if j == i else None)
            acc += weight * self._cache[j][1]
            total += weight
        _, ex, ey = L.face_frame(lb)
        off = acc / total * float(L.interocular(lb))
        return lb[JAW_ONLY] + off[:, :1] * ex[None, :] + off[:, 1:] * ey[None, :]

    def frame(self, i: int, lb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`target` with the jaw smoothed (when ``jaw_smoothing`` > 0): ``(landmarks (478, 2), similarity)``."""
        tgt, t = self.target(i, lb)
        if self.jaw_smoothing > 0:
            tgt = tgt.copy()
            tgt[JAW_ONLY] = self.smoothed_jaw(i, lb)
        return tgt, t
