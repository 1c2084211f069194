"""Generated footage of the kinds people film: a cut to another person, a small face, a whip pan.

Everything is made from the astronaut photo (``retalk.samples.astronaut``); the "other person" is the
photo mirrored, framed tighter and colour-graded (another face shape on screen, another palette), so a
mouth taken from the first shot would be visibly out of place in the second. Every generator also returns
where things are, for the tests to check against: known translations, not the tracker's opinion.
"""
from __future__ import annotations

import cv2
import numpy as np

from retalk.samples import astronaut, moving_frames


def other_person(size: int = 512) -> np.ndarray:
    """A second "person": the astronaut mirrored, zoomed in on the face by 1.25 and colour-graded
    (hue turned by 25 degrees, warmer and darker), RGB uint8 (size, size, 3)."""
    img = np.ascontiguousarray(astronaut(size)[:, ::-1])
    m = cv2.getRotationMatrix2D((size * 0.5, size * 0.3), 0.0, 1.25)
    img = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.int32)
    hsv[..., 0] = (hsv[..., 0] + 12) % 180
    hsv[..., 2] = hsv[..., 2] * 85 // 100
    img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return img


def two_shots(n_a: int, n_b: int, size: int = 320) -> list[np.ndarray]:
    """``n_a`` frames of the astronaut, then a hard cut to ``n_b`` frames of :func:`other_person`; both move gently."""
    a = list(moving_frames(n_a, size, size, 25.0))
    b = list(moving_frames(n_b, size, size, 25.0, motion=0.7, image=other_person()))
    return a + b


def small_face(n: int, width: int = 720, height: int = 1080, face_px: int = 60,
               at: tuple[int, int] = (420, 300)) -> list[np.ndarray]:
    """``n`` frames of a full-body-like shot: a plain backdrop (a vertical gradient with a "body") and the
    astronaut's head scaled so the face is about ``face_px`` wide, its photo centred at ``at`` (x, y), drifting
    by a pixel or two."""
    scale = face_px / 91.0  # the astronaut's face (the mesh's outline) is about 91 px wide in the 512 px photo
    side = int(round(512 * scale))
    head = cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    back = np.zeros((height, width, 3), np.uint8)
    back[..., 0] = np.linspace(60, 140, height)[:, None].astype(np.uint8)
    back[..., 1] = np.linspace(80, 120, height)[:, None].astype(np.uint8)
    back[..., 2] = np.linspace(110, 70, height)[:, None].astype(np.uint8)
    x, y = at
    cv2.rectangle(back, (x - side // 2, y + side // 2), (x + side // 2, min(height - 1, y + 6 * side)),
                  (40, 50, 90), -1)  # a body below the head
    out = []
    for k in range(n):
        f = back.copy()
        dx, dy = int(round(2 * np.sin(0.3 * k))), int(round(1.5 * np.sin(0.2 * k + 1)))
        x0, y0 = x - side // 2 + dx, y - side // 2 + dy
        f[y0:y0 + side, x0:x0 + side] = head
        out.append(f)
    return out


def whip_pan(n: int, width: int = 480, height: int = 320, travel: float = 160.0, start: int = 10, frames: int = 8,
             ) -> tuple[list[np.ndarray], np.ndarray]:
    """A still shot of the astronaut, then a whip pan: the camera swings ``travel`` pixels sideways over
    ``frames`` frames from frame ``start`` (an S-curve: accelerating, then braking), then holds. The face
    (about 140 px wide) goes from ``travel / 2`` right of the frame's centre to as far left of it, whole in view.

    Returns the frames (RGB uint8, no motion blur so the face stays trackable) and the picture's horizontal
    shift per frame (pixels, float (n,)): a point at x in frame 0 is at x + shift[k] in frame k.
    """
    side = 800
    base = astronaut(side)
    u = np.clip((np.arange(n) - start) / frames, 0.0, 1.0)
    shift = -travel * (0.5 - 0.5 * np.cos(np.pi * u))  # the view moves right: the picture moves left
    x0 = width / 2 + travel / 2 - 0.46 * side  # the face's centre (46% across the photo) starts right of centre
    y0 = 0.22 * side - 0.4 * height  # ... and 22% down the photo, at 40% of the frame's height
    out = []
    for s in shift:
        m = np.float32([[1, 0, x0 + s], [0, 1, -y0]])
        out.append(cv2.warpAffine(base, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out, shift
