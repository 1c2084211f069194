"""Eye blinks for a still photo: when to blink, and how to draw a closed eye.

**Timing** (:func:`blink_curve`): eyelid closure per frame in [0, 1]. People at
rest or talking blink 15–20 times a minute at irregular intervals; the
intervals here are gamma-distributed around ``60 / rate`` seconds (never under
1.2 s), a blink is pulled towards a nearby pause in the speech (people blink at
phrase boundaries), about one in twelve is a double blink, and the shape is
asymmetric like a real one: the lid falls in ~90 ms, stays ~40 ms and rises
in ~180 ms.

**Drawing** (:class:`EyelidRenderer`): the upper lid slides down over a still
eyeball. For each eye a small triangle mesh over the lids, the brow and a fixed
outer ring is warped with the upper-lid contour moved down onto the lower lid
(which rises a little), the fold above the lid following part of the way; the
triangulation is fixed (computed on the open eye), so the mesh never flips.
What is left of the opening shows the eyeball unmoved (the iris is covered from
above, never squeezed); the band the lid swept over is painted opaque with the
lid's skin (its colour, darker towards the lashes, with the fine texture of the
skin above the eye), and one lash line, coloured from the photo's own darkest
lash pixels, is drawn along the lid margin. From closure ``SHUT`` on the lids
meet and no eyeball is left.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from retalk.compose.blend import feather, polygon_mask
from retalk.compose.warp import TriangleWarp
from retalk.face import landmarks as L
from retalk.speech.mouth import FEATURE_RATE, acoustic_features, aperture

log = logging.getLogger(__name__)

TEXTURE_GAIN = 0.5  # share of the skin's fine texture (sampled above the eye) kept on the closing lid ...
TEXTURE_CLIP = 12.0  # ... each channel's detail clipped to this many levels (a brow hair never becomes a lash)
SHUT = 0.97  # from this closure on, the lids meet and no eyeball shows between them ...
SHUT_RAMP = 0.07  # ... fading out over this much closure before it
TONE_CLIP = 20.0  # the lid's paint follows the local skin tone above the eye within this many levels of its median


@dataclass(frozen=True)
class EyeIndices:
    """Face-mesh indices of one eye, each list running from one eye corner to the other (same direction)."""

    corners: tuple[int, int]
    upper: tuple[int, ...]  # upper lid margin, between the corners
    lower: tuple[int, ...]  # lower lid margin, paired with ``upper``
    fold: tuple[int, ...]  # the ring just above the upper lid (lid fold)
    above: tuple[int, ...]  # the next ring up (under the brow)
    below: tuple[int, ...]  # the ring below the lower lid
    brow: tuple[int, ...]


RIGHT_EYE = EyeIndices(  # the subject's right eye: image-left
    corners=(33, 133),
    upper=(246, 161, 160, 159, 158, 157, 173),
    lower=(7, 163, 144, 145, 153, 154, 155),
    fold=(247, 30, 29, 27, 28, 56, 190),
    above=(113, 225, 224, 223, 222, 221, 189),
    below=(130, 25, 110, 24, 23, 22, 26, 112, 243),
    brow=(46, 53, 52, 65, 55, 70, 63, 105, 66, 107),
)
LEFT_EYE = EyeIndices(
    corners=(263, 362),
    upper=(466, 388, 387, 386, 385, 384, 398),
    lower=(249, 390, 373, 374, 380, 381, 382),
    fold=(467, 260, 259, 257, 258, 286, 414),
    above=(342, 445, 444, 443, 442, 441, 413),
    below=(359, 255, 339, 254, 253, 252, 256, 341, 463),
    brow=(276, 283, 282, 295, 285, 300, 293, 334, 296, 336),
)
EYES = (RIGHT_EYE, LEFT_EYE)

# eye aspect ratio points (Soukupová & Čech 2016): corner, two upper, corner, two lower
_EAR = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))


def eye_aspect_ratio(lm: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes, (|p2−p6| + |p3−p5|) / (2 |p1−p4|): ~0.25–0.3 open, < 0.1 closed."""
    vals = []
    for p1, p2, p3, p4, p5, p6 in _EAR:
        a = np.linalg.norm(lm[p2, :2] - lm[p6, :2]) + np.linalg.norm(lm[p3, :2] - lm[p5, :2])
        vals.append(a / max(2.0 * np.linalg.norm(lm[p1, :2] - lm[p4, :2]), 1e-6))
    return float(np.mean(vals))


def closure_from_ear(ear: np.ndarray) -> np.ndarray:
    """Eyelid closure in [0, 1] from a per-frame eye-aspect-ratio series (NaN = unknown → open).

    Open is the series' 80th percentile; fully closed is 35% of that.
    """
    e = np.asarray(ear, np.float64)
    ok = np.isfinite(e)
    if ok.sum() < 3:
        return np.zeros(len(e), np.float32)
    open_ = float(np.percentile(e[ok], 80))
    shut = 0.35 * open_
    c = np.clip((open_ - np.where(ok, e, open_)) / max(open_ - shut, 1e-6), 0, 1)
    c = np.where(c < 0.2, 0.0, (c - 0.2) / 0.8)  # ignore tracker jitter and glances
    return c.astype(np.float32)


def _shape(t: np.ndarray, peak: float, depth: float) -> np.ndarray:
    """One blink centred at ``peak`` s: fall 90 ms, hold 40 ms, rise 180 ms (smoothstep edges)."""
    fall, hold, rise = 0.09, 0.04, 0.18
    a = np.clip((t - (peak - hold / 2 - fall)) / fall, 0, 1)
    b = np.clip(((peak + hold / 2 + rise) - t) / rise, 0, 1)
    s = np.minimum(a, b)
    return depth * s * s * (3 - 2 * s)


def blink_curve(n: int, fps: float, samples: np.ndarray | None = None, sample_rate: int = 16000, seed: int = 0,
                rate_per_min: float = 17.0) -> np.ndarray:
    """Eyelid closure per frame (n,) in [0, 1]: irregular blinks at ``rate_per_min`` on average.

    ``samples``: the speech (16 kHz mono), used to pull blinks towards pauses. Deterministic per ``seed``.
    """
    rng = np.random.default_rng([abs(int(seed)), 0xB11C])
    duration = n / fps
    pauses = np.zeros(0)
    if samples is not None and len(samples):
        _, speech = aperture(acoustic_features(samples, sample_rate))
        s = speech.astype(np.int8)
        pauses = (np.flatnonzero(np.diff(s) == -1) + 1) / FEATURE_RATE  # speech → pause boundaries
    mean = 60.0 / max(rate_per_min, 1.0)
    times: list[float] = []
    t = rng.uniform(0.5, min(mean * 0.7, 2.4))
    while t < duration - 0.15:
        # pull towards a pause that begins within half a second
        if len(pauses):
            near = pauses[np.abs(pauses - t) < 0.5]
            if len(near) and rng.random() < 0.7:
                t = float(near[np.argmin(np.abs(near - t))]) + 0.08
        if times and t - times[-1] < 1.2:
            t = times[-1] + 1.2
        if t >= duration - 0.15:
            break
        times.append(t)
        if rng.random() < 0.08:  # double blink
            times.append(t + rng.uniform(0.32, 0.45))
        t = times[-1] + max(1.2, rng.gamma(4.0, 1.08 * mean / 4.0))
    tt = (np.arange(n)) / fps
    c = np.zeros(n)
    for p in times:
        # put the peak on a frame so the eye is seen fully shut
        p = round(p * fps) / fps
        c = np.maximum(c, _shape(tt, p, rng.uniform(0.93, 1.0)))
    log.debug("%d blinks in %.1f s (%.1f / min)", len(times), duration, 60 * len(times) / max(duration, 1e-6))
    return c.astype(np.float32)


@dataclass
class _EyeModel:
    eye: EyeIndices
    points: np.ndarray  # control point indices (into the mesh) in a fixed order
    n_ring: int  # number of extra fixed ring points appended after the mesh points
    triangles: np.ndarray
    skin: np.ndarray  # RGB
    lash: np.ndarray  # RGB


class EyelidRenderer:
    """Close the eyes of frames of one photo by ``closure`` in [0, 1]; see the module docstring.

    ``image``/``landmarks``: the rest photo and its (478, 3) mesh (colours are sampled there).
    """

    RING = 12  # fixed points around each eye region

    def __init__(self, image: np.ndarray, landmarks: np.ndarray) -> None:
        lm = landmarks[:, :2].astype(np.float64)
        self.iod = float(L.interocular(lm))
        self.models = [self._model(image, lm, e) for e in EYES]

    def _ring(self, lm: np.ndarray, eye: EyeIndices) -> np.ndarray:
        """Fixed points on an ellipse around the eye region (outside brow and under-eye rings)."""
        pts = lm[list(eye.corners) + list(eye.upper) + list(eye.lower) + list(eye.below) + list(eye.brow)]
        c = 0.5 * (lm[eye.corners[0]] + lm[eye.corners[1]])
        half_w = 0.5 * np.linalg.norm(lm[eye.corners[0]] - lm[eye.corners[1]])
        d = pts - c
        rx = max(np.abs(d[:, 0]).max(), half_w) + 0.22 * self.iod
        ry = max(np.abs(d[:, 1]).max(), 0.1 * self.iod) + 0.18 * self.iod
        a = np.linspace(0, 2 * np.pi, self.RING, endpoint=False)
        return c + np.stack([rx * np.cos(a), ry * np.sin(a)], 1)

    def _control(self, lm: np.ndarray, eye: EyeIndices) -> np.ndarray:
        idx = list(eye.corners) + list(eye.upper) + list(eye.lower) + list(eye.fold) + list(eye.above) + \
            list(eye.below) + list(eye.brow)
        return np.array(idx)

    def _model(self, image: np.ndarray, lm: np.ndarray, eye: EyeIndices) -> _EyeModel:
        idx = self._control(lm, eye)
        pts = np.concatenate([lm[idx], self._ring(lm, eye)])
        tri = Delaunay(pts).simplices
        # skin of the lid: between the fold and the ring above it, brighter half (no lashes, no brow)
        lid_poly = np.concatenate([lm[list(eye.fold)], lm[list(eye.above)][::-1]])
        mask = polygon_mask(image.shape[:2], lid_poly) > 128
        px = image[mask].astype(np.float32)
        if len(px) >= 8:
            lum = px.mean(1)
            lo_, hi_ = np.percentile(lum, [35, 85])
            skin = np.median(px[(lum >= lo_) & (lum <= hi_)], axis=0)
        else:
            skin = np.array([190.0, 150.0, 130.0])
        # lashes: the darkest pixels (by brightness, so never the iris's colour) between the lid margin and the fold
        margin_poly = np.concatenate([lm[[eye.corners[0]]], lm[list(eye.upper)], lm[[eye.corners[1]]],
                                      lm[list(eye.fold)][::-1]])
        lpx = image[polygon_mask(image.shape[:2], margin_poly) > 128].astype(np.float32)
        if len(lpx) >= 8:
            llum = lpx.mean(1)
            lash = lpx[llum <= np.percentile(llum, 15)].mean(0)
            lash = 0.8 * lash + 0.2 * lash.mean()  # lashes are dark and less colourful than the skin
        else:
            lash = skin * 0.3
        lash = np.minimum(lash, skin * 0.45)
        return _EyeModel(eye, idx, self.RING, tri, skin, lash)

    def apply(self, frame: np.ndarray, landmarks: np.ndarray, closure: float) -> np.ndarray:
        """Close both eyes of ``frame`` (RGB uint8, modified in place and returned) whose mesh is ``landmarks``."""
        b = float(np.clip(closure, 0.0, 1.0))
        if b < 0.02:
            return frame
        lm = landmarks[:, :2].astype(np.float64)
        for m in self.models:
            self._close(frame, lm, m, b)
        return frame

    def _close(self, frame: np.ndarray, lm: np.ndarray, m: _EyeModel, b: float) -> None:
        eye = m.eye
        n_up = len(eye.upper)
        src = np.concatenate([lm[m.points], self._ring(lm, eye)])
        tgt = src.copy()
        up, lo = lm[list(eye.upper)], lm[list(eye.lower)]
        gap = lo - up  # per pair (pixels), along the face's vertical
        k = 2  # first upper point in ``points`` (after two corners)
        s = b * 0.985
        tgt[k:k + n_up] = up + gap * (s * 0.86)  # upper lid falls
        tgt[k + n_up:k + 2 * n_up] = lo - gap * (s * 0.125)  # lower lid rises a little
        f0 = k + 2 * n_up
        tgt[f0:f0 + n_up] = lm[list(eye.fold)] + gap * (0.42 * s)  # the fold follows, stretching the lid
        tgt[f0 + n_up:f0 + 2 * n_up] = lm[list(eye.above)] + gap * (0.12 * s)
        # region of interest
        x0, y0 = np.floor(np.minimum(src.min(0), tgt.min(0))).astype(int) - 2
        x1, y1 = np.ceil(np.maximum(src.max(0), tgt.max(0))).astype(int) + 3
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        off = np.array([x0, y0], np.float64)
        still = frame[y0:y1, x0:x1].astype(np.float32)  # the eye as it is: the lid slides over a still eyeball
        warp = TriangleWarp(tgt - off, (x1 - x0, y1 - y0), step=1, triangles=m.triangles, keep_triangles=True)
        roi = warp.warp(frame, src, border=cv2.BORDER_REFLECT).astype(np.float32)
        # outside the mesh (beyond the fixed ring) the picture is unchanged
        outside = warp.ids == 0
        roi[outside] = still[outside]
        rh, rw = y1 - y0, x1 - x0
        new_up = tgt[k:k + n_up] - off
        new_lo = tgt[k + n_up:k + 2 * n_up] - off
        c0, c1 = lm[eye.corners[0]] - off, lm[eye.corners[1]] - off
        old_up = up - off
        edge = max(0.5, 0.006 * self.iod)  # anti-aliasing of the lid margins (pixels)
        # what is left of the opening shows the eyeball unmoved (the warp would squeeze the iris into it)
        opening = feather(polygon_mask((rh, rw), np.concatenate([[c0], new_up, [c1], new_lo[::-1]])) / np.float32(255), edge)
        opening *= np.float32(np.clip((SHUT - b) / SHUT_RAMP, 0.0, 1.0))  # the lids meet: no eyeball left
        roi = roi * (1 - opening[..., None]) + still * opening[..., None]
        # the band the upper lid swept over is lid skin, opaque: the lid's colour, darker towards the lashes,
        # with the fine texture of the skin above the eye (the warped picture there holds stretched lashes)
        swept = polygon_mask((rh, rw), np.concatenate([[c0], old_up, [c1], new_up[::-1]])) / np.float32(255)
        swept = feather(swept, edge) * (1 - opening)
        ys, xs = np.mgrid[0:rh, 0:rw].astype(np.float32)
        lash_y = np.interp(xs, *_sorted_xy(np.concatenate([[c0], new_up, [c1]])))
        top_y = np.interp(xs, *_sorted_xy(np.concatenate([[c0], old_up, [c1]])))
        fold_y = np.interp(xs, *_sorted_xy(lm[list(eye.fold)] - off))
        depth = np.clip((ys - top_y) / np.maximum(lash_y - top_y, 1.0), 0, 1)
        cx0, cx1 = sorted([c0[0], c1[0]])
        across = np.clip(np.abs(xs - 0.5 * (cx0 + cx1)) / max(0.5 * (cx1 - cx0), 1.0), 0, 1)
        shade = (1.0 - 0.14 * depth ** 2) * (1.0 - 0.10 * across ** 2)
        map_y = (ys - np.maximum(lash_y - fold_y, 0.0) - 1.0).astype(np.float32)
        skin_src = cv2.remap(still, xs, map_y, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        smooth = cv2.GaussianBlur(skin_src, (0, 0), max(1.0, 0.03 * self.iod))
        detail = np.clip(skin_src - smooth, -TEXTURE_CLIP, TEXTURE_CLIP)
        # the local skin tone above the eye, kept near the lid's own colour (a brow never darkens the lid)
        base = m.skin[None, None, :] + np.clip(smooth - m.skin[None, None, :], -TONE_CLIP, TONE_CLIP)
        paint = base * shade[..., None] + TEXTURE_GAIN * detail
        roi = roi * (1 - swept[..., None]) + paint * swept[..., None]
        # one lash line along the lid margin, fading in as the lid covers the eye's own lashes
        line = np.zeros((rh, rw), np.float32)
        pts = np.concatenate([[c0], new_up, [c1]])
        thick = max(1, int(round(0.028 * self.iod)))
        cv2.polylines(line, [np.round(pts * 16).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, shift=4)
        # thicker towards the outer corner, faint at the inner one
        ramp = np.clip((xs - cx0) / max(cx1 - cx0, 1.0), 0, 1)
        ramp = 1 - ramp if c0[0] < c1[0] else ramp  # corners[0] is the outer corner
        line = cv2.GaussianBlur(line, (0, 0), max(0.5, 0.01 * self.iod)) * (0.45 + 0.55 * ramp)
        la = np.clip(line * 1.3, 0, 1) * np.clip(b / 0.3, 0, 1) * 0.85
        roi = roi * (1 - la[..., None]) + m.lash[None, None, :] * la[..., None]
        frame[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)


def _sorted_xy(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = np.argsort(pts[:, 0])
    return pts[o, 0], pts[o, 1]
