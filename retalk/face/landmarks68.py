"""The 68-point (iBUG 300-W / dlib / FAN) landmark layout, read off retalk's 478-point face mesh.

VideoReTalking and SadTalker crop and align faces with 68 landmarks (dlib, the FAN of the
``face-alignment`` package, or facexlib's 98-point AWing FAN reduced to 68). retalk ships none of
those detectors: it tracks mediapipe's 478-point face mesh (:mod:`retalk.face.tracker`) and picks,
for every one of the 68 points, the mesh vertex that sits where the iBUG annotation guide puts it.

How the vertices were chosen (measured on a frontal mesh of a real photo, ``retalk.samples.astronaut``):

* Jaw 0–16, image-left ear → chin → image-right ear. iBUG spaces the 17 jaw points about evenly along
  the contour from eye height down to the chin. On the mesh the contour from the vertex at outer-eye
  height (127 / 356) to the chin (152) was divided by arc length into 8 equal steps and the nearest
  contour vertex taken: 127, 234, 132, 58, 172, 136, 149, 148, 152 and the mirror vertices on the other side.
* Brows 17–21 and 22–26, image-left to image-right along the upper brow edge: 70, 63, 105, 66, 107 and
  336, 296, 334, 293, 300 (the mesh's upper brow line; iBUG marks the brow's upper middle).
* Nose ridge 27–30, top to bottom: nasion between the eyes at eye height (168), then 197, 5 at even steps
  and the tip 4 (the mesh's 1 lies on the tip's forward-most point, which in a frontal view falls on the
  nostril base; iBUG's point 30 sits clearly above the base, as 4 does).
* Nose base 31–35, image-left to image-right: alar base 98, nostril 97, subnasale 2, 326, 327.
* Eyes 36–41 / 42–47: outer corner, two upper-lid points, inner corner, two lower-lid points, clockwise in
  the image as iBUG does: 33, 160, 158, 133, 153, 144 and 362, 385, 387, 263, 373, 380.
* Outer lips 48–59 from the image-left corner clockwise: 61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181
  (37 / 267 are the cupid's-bow peaks beside the philtrum, as iBUG's 50 / 52).
* Inner lips 60–67: corners 78 / 308, mid upper 13, mid lower 14, and halfway points 81, 311, 402, 178.

Every left/right pair of the 68 layout maps to a mirror pair of mesh vertices, so a horizontally flipped
face gives the flipped, re-labelled 68 points (tests check this on a real face).
"""
from __future__ import annotations

import numpy as np

#: Mesh vertex (of 478) for each of the 68 points, in iBUG order.
MESH_68 = np.array([
    # jaw 0-16
    127, 234, 132, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 361, 454, 356,
    # brows 17-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose ridge 27-30, nose base 31-35
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # eyes 36-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips 48-59
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # inner lips 60-67
    78, 81, 13, 311, 308, 402, 14, 178,
], dtype=np.int64)

#: For each of the 68 points, the index of its mirror partner under a horizontal flip (itself on the midline).
MIRROR_68 = np.array([
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
    27, 28, 29, 30, 35, 34, 33, 32, 31,
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
    64, 63, 62, 61, 60, 67, 66, 65,
], dtype=np.int64)

#: Index groups of the 68 layout.
JAW = slice(0, 17)
EYE_LEFT = slice(36, 42)   # image-left eye (the subject's right)
EYE_RIGHT = slice(42, 48)  # image-right eye
NOSE_TIP_68 = 30
MOUTH_LEFT_68, MOUTH_RIGHT_68 = 48, 54


def mesh_to_68(points: np.ndarray) -> np.ndarray:
    """The 68 iBUG landmarks from face-mesh landmarks.

    ``points``: (478, 2|3) or (N, 478, 2|3) mesh landmarks in pixels (x right, y down; z ignored).
    Returns (68, 2) or (N, 68, 2) float32 pixels in the same frame.
    """
    pts = np.asarray(points)
    if pts.ndim not in (2, 3) or pts.shape[-2] < int(MESH_68.max()) + 1 or pts.shape[-1] < 2:
        raise ValueError(f"mesh_to_68 expects (478, 2|3) or (N, 478, 2|3) landmarks, got {pts.shape}")
    return np.ascontiguousarray(pts[..., MESH_68, :2], dtype=np.float32)


def five_points(lm68: np.ndarray) -> np.ndarray:
    """Five alignment points from 68: image-left eye centre, image-right eye centre, nose tip, mouth corners.

    ``lm68``: (..., 68, 2) pixels → (..., 5, 2) float32 (the order RetinaFace and GPEN's template use).
    """
    lm = np.asarray(lm68, dtype=np.float32)
    return np.stack([
        lm[..., EYE_LEFT, :].mean(axis=-2), lm[..., EYE_RIGHT, :].mean(axis=-2),
        lm[..., NOSE_TIP_68, :], lm[..., MOUTH_LEFT_68, :], lm[..., MOUTH_RIGHT_68, :],
    ], axis=-2).astype(np.float32)
