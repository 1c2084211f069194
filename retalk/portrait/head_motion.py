"""Head motion for a still photo: pose curves from speech, and the mesh warp that applies them.

**Pose curves** (:func:`speech_pose`): a head pose per output frame,
``(yaw, pitch, roll)`` in degrees plus a translation ``(tx, ty)`` in
inter-ocular distances. Three layers, each seeded by the pose style:

* *idle sway*: a few slow sinusoids (0.05–0.35 Hz) per axis, always present;
* *phrasing*: at each phrase onset (speech after a pause, and every ~2 s in a
  long phrase) the head settles into a new orientation, eased over ~0.4 s;
* *emphasis*: the band-passed speech level (syllable stress, ~1–5 Hz) drives
  small nods (pitch) and a little yaw, so the head moves with the voice's energy.

During pauses the speech-driven layers relax towards rest. The style number
picks amplitudes and tempo from :data:`STYLES` (styles beyond the table draw
them from the seed), so every style is distinct and reproducible.

**Warp** (:class:`HeadWarp`): the head is treated as a 3-D surface, a
paraboloid cap over the head ellipse plus the face mesh's own relief (nose,
brows, lips), rotated and projected orthographically. A regular control mesh
(one node every few pixels) carries the displacement; its weight is 1 on the
head and falls smoothly (smoothstep over the elliptical radius 1 → 1.8, → 1.5 below the head) to 0,
so the neck stretches a little and the outer ring (shoulders, background, the
frame border) stays exactly where it is. The picture is pulled through the
inverse of that mesh (fixed-point iteration, which converges because the
displacement's gradient stays well below 1), and landmarks are pushed through
the same mesh, so the lip renderer sees exactly where the moved mouth is.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import gaussian_filter1d

from retalk.face import landmarks as L
from retalk.speech.mouth import FEATURE_RATE, acoustic_features, aperture

log = logging.getLogger(__name__)

POSE_LIMITS = np.array([25.0, 20.0, 20.0, 0.6, 0.6])
"""Largest |yaw|, |pitch|, |roll| (degrees) and |tx|, |ty| (inter-ocular distances) the warp is asked for."""


@dataclass(frozen=True)
class PoseStyle:
    """Amplitudes (degrees, or inter-ocular distances for shifts) and tempo of one head-motion style.

    ``sway``: idle sinusoid amplitude (yaw, pitch, roll). ``phrase``: spread of the
    per-phrase orientation (yaw, pitch, roll). ``nod``: pitch per unit of speech
    emphasis. ``bias``: constant offset (yaw, pitch, roll). ``shift``: translation
    amplitude. ``tempo``: multiplies the sway frequencies and shortens the eases.
    """

    name: str
    sway: tuple[float, float, float]
    phrase: tuple[float, float, float]
    nod: float
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shift: float = 0.03
    tempo: float = 1.0


STYLES: tuple[PoseStyle, ...] = (
    PoseStyle("calm", sway=(1.0, 0.6, 0.5), phrase=(3.0, 1.4, 1.1), nod=1.6),
    PoseStyle("nodding", sway=(0.6, 0.8, 0.4), phrase=(1.5, 1.8, 0.8), nod=3.2, tempo=1.15),
    PoseStyle("lively", sway=(1.4, 0.9, 0.9), phrase=(4.0, 2.0, 2.0), nod=2.4, shift=0.05, tempo=1.35),
    PoseStyle("tilted", sway=(0.8, 0.6, 0.7), phrase=(2.0, 1.2, 1.4), nod=1.8, bias=(0.0, 0.0, 3.0)),
    PoseStyle("turned", sway=(0.8, 0.6, 0.5), phrase=(2.0, 1.2, 1.0), nod=1.8, bias=(-4.0, 0.5, 0.0)),
    PoseStyle("reserved", sway=(0.5, 0.4, 0.3), phrase=(1.0, 0.7, 0.5), nod=1.0, shift=0.015, tempo=0.8),
)
"""Built-in styles, selected by ``--pose_style`` 0–5."""


def style_for(index: int) -> PoseStyle:
    """The style for ``--pose_style index``: the table's, else parameters drawn from the index (reproducible)."""
    if 0 <= index < len(STYLES):
        return STYLES[index]
    rng = np.random.default_rng([abs(int(index)), 0x5EED])
    u = rng.uniform
    return PoseStyle(f"style-{index}", sway=(u(0.5, 1.4), u(0.4, 0.9), u(0.3, 0.9)),
                     phrase=(u(1.0, 4.0), u(0.7, 2.0), u(0.5, 2.0)), nod=u(1.0, 3.2),
                     bias=(u(-3, 3), u(-1, 1), u(-2, 2)), shift=u(0.015, 0.05), tempo=u(0.8, 1.35))


def _phrase_onsets(speech: np.ndarray, rate: float, min_pause: float = 0.25, max_len: float = 2.2) -> list[int]:
    """Indices (at ``rate``) where a phrase starts: speech after ≥ ``min_pause`` s of pause, and every ``max_len`` s."""
    onsets: list[int] = []
    quiet = 0
    last = -10**9
    for i, s in enumerate(speech):
        if s:
            if quiet >= min_pause * rate or not onsets or i - last >= max_len * rate:
                onsets.append(i)
                last = i
            quiet = 0
        else:
            quiet += 1
    return onsets


def speech_pose(samples: np.ndarray, sample_rate: int, fps: float, n: int, style_index: int = 0) -> np.ndarray:
    """Head pose per frame (n, 5): yaw, pitch, roll (degrees; yaw + turns the face to image-right,
    pitch + tilts it down, roll + clockwise) and tx, ty (inter-ocular distances), from the speech.

    Deterministic for a given speech and ``style_index``.
    """
    st = style_for(style_index)
    rng = np.random.default_rng([abs(int(style_index)), 0xA11CE])
    t = np.arange(n) / fps
    pose = np.zeros((n, 5))
    # 1. idle sway
    for axis in range(3):
        for k in range(3):
            f = rng.uniform(0.05, 0.35) * st.tempo
            phase = rng.uniform(0, 2 * np.pi)
            pose[:, axis] += st.sway[axis] / (k + 1) ** 0.5 * np.sin(2 * np.pi * f * t + phase) / 1.6
    for axis in (3, 4):
        f = rng.uniform(0.04, 0.2) * st.tempo
        pose[:, axis] += st.shift * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    if len(samples) == 0 or n == 0:
        return _finish(pose + np.r_[st.bias, 0, 0], fps)
    # speech level and activity at the frame rate
    feats = acoustic_features(samples, sample_rate)
    _, speech100 = aperture(feats)
    idx = np.clip(((t + 0.5 / fps) * FEATURE_RATE).astype(int), 0, len(speech100) - 1)
    speech = speech100[idx]
    band = feats.band_db[idx]
    active = gaussian_filter1d(speech.astype(float), 0.3 * fps)
    # 2. phrasing: a new orientation at each phrase onset, eased
    targets = np.zeros((n, 3))
    current = np.zeros(3)
    onsets = set(_phrase_onsets(speech, fps))
    for i in range(n):
        if i in onsets:
            current = rng.normal(0.0, 1.0, 3) * np.asarray(st.phrase)
            current = np.clip(current, -2.2 * np.asarray(st.phrase), 2.2 * np.asarray(st.phrase))
        targets[i] = current
    targets = gaussian_filter1d(targets, 0.16 * fps / st.tempo, axis=0, mode="nearest")
    # 3. emphasis: band-passed speech level (syllables and stress)
    lev = np.where(speech, band, np.nan)
    ref = np.nanmedian(lev) if np.isfinite(lev).any() else 0.0
    lev = np.nan_to_num(lev - ref, nan=-12.0)
    emph = gaussian_filter1d(lev, 0.09 * fps) - gaussian_filter1d(lev, 0.5 * fps)
    emph = np.clip(emph / 6.0, -1.5, 1.5) * active
    pose[:, :3] += targets * active[:, None]
    pose[:, 1] += st.nod * emph
    pose[:, 0] += 0.3 * st.nod * gaussian_filter1d(emph, 0.12 * fps) * rng.choice([-1.0, 1.0])
    # the body follows the head a little
    pose[:, 3] += 0.004 * pose[:, 0]
    pose[:, 4] += 0.003 * pose[:, 1]
    pose[:, :3] += np.asarray(st.bias)
    return _finish(pose, fps)


def _finish(pose: np.ndarray, fps: float) -> np.ndarray:
    """Smooth (Gaussian, 60 ms) and clip to :data:`POSE_LIMITS`."""
    if len(pose) > 2:
        pose = gaussian_filter1d(pose, max(0.5, 0.06 * fps), axis=0, mode="nearest")
    return np.clip(pose, -POSE_LIMITS, POSE_LIMITS).astype(np.float32)


def keyframe_curve(values: Sequence[float], n: int) -> np.ndarray:
    """Degrees per frame from a list of key values spread evenly over ``n`` frames (monotone cubic between keys)."""
    v = np.asarray([float(x) for x in values], np.float64)
    if len(v) == 0:
        return np.zeros(n)
    if len(v) == 1 or n <= 1:
        return np.full(n, v[0])
    x = np.linspace(0, n - 1, len(v))
    return PchipInterpolator(x, v)(np.arange(n))


def resample_series(values: np.ndarray, src_fps: float, fps: float, n: int, mode: str = "pingpong") -> np.ndarray:
    """Resample a per-frame series (m, ...) at ``src_fps`` to ``n`` frames at ``fps``.

    A shorter series is extended by playing it back and forth (``pingpong``) or repeating it (``loop``).
    """
    m = len(values)
    if m == 0:
        return np.zeros((n,) + values.shape[1:], values.dtype)
    t = np.arange(n) / fps * src_fps  # source frame position
    if m > 1:
        if mode == "pingpong":
            period = 2 * (m - 1)
            p = np.mod(t, period)
            t = np.where(p <= m - 1, p, period - p)
        else:
            t = np.mod(t, m)
    t = np.clip(t, 0, m - 1)
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, m - 1)
    a = (t - i0).reshape((-1,) + (1,) * (values.ndim - 1))
    return (values[i0] * (1 - a) + values[i1] * a).astype(np.float32)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    u = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return u * u * (3 - 2 * u)


class HeadWarp:
    """Move the head of a still picture; see the module docstring.

    ``shape``: (height, width) of the picture. ``landmarks``: (478, 3) rest face mesh
    in its pixels. ``falloff``: elliptical radius where the motion has faded to 0
    (1 = the head ellipse). ``step``: control-mesh spacing in pixels (default ~ 1/20
    of the inter-ocular distance, at least 2).
    """

    def __init__(self, shape: tuple[int, int], landmarks: np.ndarray, falloff: float = 1.8, step: int | None = None,
                 relief: float = 0.8) -> None:
        h, w = shape
        lm = landmarks.astype(np.float64)
        self.iod = float(L.interocular(lm))
        _, ex, ey = L.face_frame(lm)
        self.ex, self.ey = ex, ey
        top, chin = lm[10, :2], lm[152, :2]
        face_h = float(np.linalg.norm(chin - top))
        face_w = float(np.linalg.norm(lm[454, :2] - lm[234, :2]))
        self.face_h, self.face_w = face_h, face_w
        centre = 0.5 * (top + chin) - 0.08 * face_h * ey
        self.centre = centre
        self.axes = np.array([0.66 * face_w, 0.62 * face_h])  # head ellipse semi-axes (face frame)
        self.depth = 0.55 * face_w  # paraboloid height: face front above the rotation centre
        self.neck = chin + 0.35 * face_h * ey  # pivot of roll
        self.falloff = falloff
        self.size = (w, h)
        g = step or max(2, int(round(self.iod / 20.0)))
        self.step = g
        # region the motion can reach: bounding box of the falloff ellipse (plus a margin)
        rx, ry = self.axes * falloff
        half = np.sqrt((rx * ex) ** 2 + (ry * ey) ** 2) + 2 * g
        x0, y0 = np.floor(centre - half).astype(int)
        x1, y1 = np.ceil(centre + half).astype(int)
        self.roi = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
        rx0, ry0, rx1, ry1 = self.roi
        rw, rh = rx1 - rx0, ry1 - ry0
        gw, gh = -(-rw // g), -(-rh // g)
        off = (g - 1) / 2.0
        ys, xs = np.mgrid[0:gh, 0:gw]
        self._gx = (xs * g + off + rx0).astype(np.float64)
        self._gy = (ys * g + off + ry0).astype(np.float64)
        self._grid_shape = (gh, gw)
        nodes = np.stack([self._gx, self._gy], -1)
        self._weight, self._dz, self._uv = self._fields(nodes, lm, relief)
        # the frame border never moves
        border = np.minimum.reduce([self._gx, self._gy, (w - 1) - self._gx, (h - 1) - self._gy])
        self._weight *= _smoothstep(0.0, max(4.0, 0.03 * min(w, h)), border)

    # ---------------------------------------------------------------- geometry
    def _face_uv(self, pts: np.ndarray) -> np.ndarray:
        d = pts - self.centre
        return np.stack([d @ self.ex, d @ self.ey], -1)

    def _fields(self, nodes: np.ndarray, lm: np.ndarray, relief: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per node: motion weight, depth towards the camera (pixels) and face-frame coordinates."""
        uv = self._face_uv(nodes)
        r = np.sqrt(((uv / self.axes) ** 2).sum(-1))
        # below the head the fall-off is shorter: the neck meets the shoulders, which stay still
        end = self.falloff - (self.falloff - 1.0) * 0.4 * _smoothstep(0.0, 1.0, uv[..., 1] / self.axes[1])
        u = np.clip((r - 1.0) / (end - 1.0), 0.0, 1.0)
        weight = 1.0 - u * u * (3 - 2 * u)
        dz = self.depth * np.clip(1.0 - r**2, 0.0, None)
        # the face's own relief (nose, brows, lips) beyond the paraboloid, from the mesh's depth
        uv_lm = self._face_uv(lm[:, :2])
        r_lm = np.sqrt(((uv_lm / self.axes) ** 2).sum(-1))
        model = self.depth * np.clip(1.0 - r_lm**2, 0.0, None)
        z_cam = -lm[:, 2]
        a = np.vstack([model, np.ones_like(model)]).T
        coef, *_ = np.linalg.lstsq(a, z_cam, rcond=None)
        resid = (z_cam - (coef[0] * model + coef[1])) / max(coef[0], 0.3)
        resid = np.clip(resid, -0.35 * self.face_w, 0.35 * self.face_w)
        gh, gw = self._grid_shape
        acc = np.zeros((gh, gw))
        cnt = np.zeros((gh, gw))
        gi = np.clip(np.round((lm[:, 1] - self._gy[0, 0]) / self.step).astype(int), 0, gh - 1)
        gj = np.clip(np.round((lm[:, 0] - self._gx[0, 0]) / self.step).astype(int), 0, gw - 1)
        np.add.at(acc, (gi, gj), resid)
        np.add.at(cnt, (gi, gj), 1.0)
        sigma = max(1.0, 0.05 * self.face_w / self.step)
        acc = cv2.GaussianBlur(acc, (0, 0), sigma)
        cnt = cv2.GaussianBlur(cnt, (0, 0), sigma)
        rel = acc / np.maximum(cnt, 1e-6)
        # only inside the face outline, fading at its edge
        inside = np.zeros((gh, gw), np.float32)
        oval = np.stack([(lm[L.FACE_OVAL, 0] - self._gx[0, 0]) / self.step,
                         (lm[L.FACE_OVAL, 1] - self._gy[0, 0]) / self.step], -1)
        cv2.fillPoly(inside, [np.round(oval * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
        inside = cv2.GaussianBlur(inside, (0, 0), sigma) * np.clip(cnt / max(cnt.max() * 0.05, 1e-6), 0, 1)
        dz = dz + relief * rel * inside
        return weight, dz, uv

    def _forward(self, pose: np.ndarray) -> np.ndarray:
        """Displacement (gh, gw, 2) of every control node for ``pose`` (yaw, pitch, roll, tx, ty)."""
        yaw, pitch, roll = np.radians(pose[:3])
        u, v = self._uv[..., 0], self._uv[..., 1]
        z = self._dz
        # rotate the surface (face frame, orthographic): yaw about the vertical axis, then pitch
        u1 = u * np.cos(yaw) + z * np.sin(yaw)
        z1 = -u * np.sin(yaw) + z * np.cos(yaw)
        v1 = v * np.cos(pitch) + z1 * np.sin(pitch)
        # pitch also swings the head about the neck a little
        v1 = v1 + 0.25 * self.face_h * (1 - np.cos(pitch)) + 0.12 * self.face_h * np.sin(pitch)
        p = self.centre + u1[..., None] * self.ex + v1[..., None] * self.ey
        # roll about the neck
        c, s = np.cos(roll), np.sin(roll)
        q = p - self.neck
        p = self.neck + np.stack([c * q[..., 0] - s * q[..., 1], s * q[..., 0] + c * q[..., 1]], -1)
        p = p + np.asarray(pose[3:5], np.float64) * self.iod
        nodes = np.stack([self._gx, self._gy], -1)
        return ((p - nodes) * self._weight[..., None]).astype(np.float32)

    def _sample(self, field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear samples of a node field at image positions (x, y) (any shape, float32)."""
        gx = ((x - self._gx[0, 0]) / self.step).astype(np.float32)
        gy = ((y - self._gy[0, 0]) / self.step).astype(np.float32)
        return cv2.remap(field, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    @staticmethod
    def is_rest(pose: np.ndarray) -> bool:
        return bool(np.all(np.abs(pose) < 1e-4))

    def move_points(self, pts: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Where points (k, >=2) of the rest picture go for ``pose`` (same shape; extra columns kept)."""
        out = np.array(pts, np.float64, copy=True)
        if self.is_rest(pose):
            return out
        d = self._forward(pose)
        x = out[:, 0].astype(np.float32).reshape(1, -1)
        y = out[:, 1].astype(np.float32).reshape(1, -1)
        out[:, :2] += self._sample(d, x, y).reshape(-1, 2)
        return out

    def source_maps(self, pose: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` maps (ROI-sized, absolute picture coordinates) pulling the moved picture from the rest one."""
        d = self._forward(pose)
        qx, qy = self._gx.astype(np.float32), self._gy.astype(np.float32)
        px, py = qx - d[..., 0], qy - d[..., 1]
        for _ in range(iterations):  # p = q - d(p): the inverse of the forward mesh
            dp = self._sample(d, px, py)
            px, py = qx - dp[..., 0], qy - dp[..., 1]
        x0, y0, x1, y1 = self.roi
        g = self.step
        gh, gw = self._grid_shape
        mx = cv2.resize(px, (gw * g, gh * g), interpolation=cv2.INTER_LINEAR)[: y1 - y0, : x1 - x0]
        my = cv2.resize(py, (gw * g, gh * g), interpolation=cv2.INTER_LINEAR)[: y1 - y0, : x1 - x0]
        return np.ascontiguousarray(mx), np.ascontiguousarray(my)

    def render(self, image: np.ndarray, pose: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The rest picture with the head moved to ``pose`` (a new array, or written into ``out``)."""
        res = np.array(image, copy=True) if out is None else out
        if out is not None and out is not image:
            np.copyto(res, image)
        if self.is_rest(pose):
            return res
        mx, my = self.source_maps(pose)
        x0, y0, x1, y1 = self.roi
        res[y0:y1, x0:x1] = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return res
