"""Mesh-driven piecewise-affine warping.

A :class:`TriangleWarp` is built once per output frame from the *target*
control points (where things should end up, in ROI pixels) and can then pull
pixels from any number of source images whose matching control points are
known, so the background frame and a library mouth share one triangulation.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle (positive = counter-clockwise in x-right, y-down pixels)."""
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def consistent(points: np.ndarray, triangles: np.ndarray, min_area: float = 0.5) -> bool:
    """True when ``triangles`` (from an earlier frame) still tile ``points`` without flips.

    Reusing one triangulation across frames keeps the warp's creases in the same
    places, which avoids the shimmer of a topology that changes every frame.
    """
    if len(triangles) == 0 or int(triangles.max()) >= len(points):
        return False
    area = signed_areas(points, triangles)
    return bool(np.all(area > min_area) or np.all(area < -min_area))


class TriangleWarp:
    """Piecewise-affine map from target ROI pixels to source pixels.

    ``target``: (n, 2) control points in ROI pixel coordinates; ``size``: (width, height) of the ROI.
    Pixels outside the points' convex hull map to themselves (identity).
    ``step``: the map is evaluated every ``step`` pixels and interpolated linearly in
    between; a piecewise-affine map is continuous, so only creases are approximated.
    ``triangles``: a triangulation to reuse (e.g. the previous frame's); it is kept while it
    still tiles the points without flips, or always with ``keep_triangles`` (a closing eyelid
    must keep its topology even as triangles collapse).
    """

    def __init__(self, target: np.ndarray, size: tuple[int, int], step: int = 2,
                 triangles: np.ndarray | None = None, keep_triangles: bool = False) -> None:
        self.target = np.asarray(target, np.float64)
        self.size = size
        self.step = max(1, int(step))
        if triangles is None or not (keep_triangles or consistent(self.target, triangles)):
            triangles = Delaunay(self.target).simplices
        self.tri = np.asarray(triangles, np.int32)
        w, h = size
        gw, gh = -(-w // self.step), -(-h // self.step)
        # grid sample (u, v) sits at full-resolution position (step*u + (step-1)/2, ...)
        off = (self.step - 1) / 2.0
        grid_pts = (self.target - off) / self.step
        ids = np.zeros((gh, gw), np.uint16)
        corners = np.round(grid_pts[self.tri] * 16).astype(np.int32)  # (T, 3, 2), 4 fractional bits
        for t, pts in enumerate(corners, start=1):
            cv2.fillConvexPoly(ids, pts, t, lineType=cv2.LINE_8, shift=4)
        self.ids = ids
        ys, xs = np.mgrid[0:gh, 0:gw]
        self._x = (xs * self.step + off).astype(np.float32)
        self._y = (ys * self.step + off).astype(np.float32)
        # inverse of each target triangle's barycentric frame: [x y 1] @ inv -> barycentric coords
        tri_pts = self.target[self.tri]  # (T, 3, 2)
        m = np.concatenate([tri_pts, np.ones((len(self.tri), 3, 1))], axis=2)  # (T, 3, 3)
        det = np.linalg.det(m)
        m[np.abs(det) < 1e-9] += np.eye(3) * 1e-6
        self._inv = np.linalg.inv(m)  # (T, 3, 3)

    def maps(self, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` maps (float32 x, y) pulling from a source whose control points are ``source`` (n, 2)."""
        source = np.asarray(source, np.float64)
        # per triangle: affine A (3x2) with [x y 1] @ A = source point
        aff = self._inv @ source[self.tri]  # (T, 3, 2)
        aff = np.concatenate([np.zeros((1, 3, 2)), aff], axis=0).astype(np.float32)
        a = aff[self.ids]  # (h, w, 3, 2)
        mx = self._x * a[..., 0, 0] + self._y * a[..., 1, 0] + a[..., 2, 0]
        my = self._x * a[..., 0, 1] + self._y * a[..., 1, 1] + a[..., 2, 1]
        outside = self.ids == 0
        mx[outside] = self._x[outside]
        my[outside] = self._y[outside]
        if self.step > 1:
            w, h = self.size
            gh, gw = mx.shape
            # resize so that grid sample u lands on its full-resolution position
            mx = cv2.resize(mx, (gw * self.step, gh * self.step), interpolation=cv2.INTER_LINEAR)[:h, :w]
            my = cv2.resize(my, (gw * self.step, gh * self.step), interpolation=cv2.INTER_LINEAR)[:h, :w]
        return np.ascontiguousarray(mx), np.ascontiguousarray(my)

    def warp(self, image: np.ndarray, source: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """Warp ``image`` (whose control points are ``source``) onto the target geometry (ROI-sized result)."""
        mx, my = self.maps(source)
        return cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=border)
