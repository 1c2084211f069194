"""Expression templates: the 64 expression coefficients D-Net / the renderers are driven with.

VideoReTalking's ``--exp_img``: ``neutral`` (default) takes ``expression.mat['expression_center']``,
``smile`` takes ``['expression_mouth']`` (row 0, first 64 values); an image path takes the expression of the
face in that image (68 landmarks → align → face3d → ``exp``). retalk finds the landmarks with its own face
mesh (:mod:`retalk.face.tracker`) instead of FAN. ``expression.mat`` is not shipped with retalk.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from retalk.errors import CheckpointError, InputError, NoFaceError
from retalk.face3d.align import find_support_file
from retalk.face3d.coeffs import SLICES, extract_coeffs

log = logging.getLogger(__name__)

EXPRESSION_FILE = "expression.mat"
EXPRESSION_SOURCE = "VideoReTalking's checkpoints release (expression.mat, in <checkpoints>/)"
N_EXP = 64
#: Template name → the variable of expression.mat that holds it.
TEMPLATES = {"neutral": "expression_center", "smile": "expression_mouth"}


def expression_template(name: str = "neutral", checkpoints: str | os.PathLike[str] | None = None) -> np.ndarray:
    """A named expression (``neutral`` or ``smile``) from ``expression.mat``: (64,) float32.

    Looked for in ``<checkpoints>/BFM/`` then ``<checkpoints>/``; missing → :class:`CheckpointError`.
    """
    from scipy.io import loadmat

    if name not in TEMPLATES:
        raise InputError(f"unknown expression template {name!r} (choose from {', '.join(TEMPLATES)} or an image)")
    path = find_support_file(EXPRESSION_FILE, checkpoints, EXPRESSION_SOURCE)
    try:
        value = np.asarray(loadmat(str(path))[TEMPLATES[name]], np.float32)
    except KeyError:
        raise CheckpointError(f"{path}: has no {TEMPLATES[name]!r} entry") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's
        raise CheckpointError(f"{path}: not a readable {EXPRESSION_FILE} ({type(exc).__name__}: {exc})") from None
    row = value.reshape(value.shape[0], -1)[0] if value.ndim > 1 else value
    if row.size < N_EXP:
        raise CheckpointError(f"{path}: {TEMPLATES[name]!r} has {row.size} values, expected at least {N_EXP}")
    return np.ascontiguousarray(row[:N_EXP], np.float32)


def image_landmarks68(image: np.ndarray, mesh: Any | None = None) -> np.ndarray | None:
    """68 landmarks (68, 2) float32 pixels of the largest face in an RGB uint8 image, None without a face.

    ``mesh``: a :class:`retalk.face.tracker.FaceMesh` (or any callable image → list of (478, 3) arrays);
    None makes a static one and closes it.
    """
    from retalk.face.landmarks68 import mesh_to_68

    own = mesh is None
    if own:
        from retalk.face.tracker import FaceMesh

        mesh = FaceMesh(static=True)
    try:
        faces = mesh(image)
    finally:
        if own:
            mesh.close()
    if not faces:
        return None
    areas = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
    return mesh_to_68(faces[int(np.argmax(areas))])


def expression_from_image(image: np.ndarray, net: Any, lm3d: np.ndarray, mesh: Any | None = None,
                          name: str = "expression image") -> np.ndarray:
    """The expression (64,) float32 of the face in ``image`` (RGB uint8, any size, not cropped first).

    ``net``: the face3d network; ``lm3d``: (5, 3) standard landmarks. No face → :class:`NoFaceError` (the
    reference would silently use the standard points, which gives an arbitrary expression).
    """
    lm = image_landmarks68(image, mesh)
    if lm is None:
        raise NoFaceError(f"no face found in the {name}")
    coeffs = extract_coeffs(net, [image], lm[None], lm3d, batch_size=1)
    return np.ascontiguousarray(coeffs.coeffs[0, SLICES.exp], np.float32)


def expression_for(spec: str | os.PathLike[str], net: Any = None, lm3d: np.ndarray | None = None,
                   checkpoints: str | os.PathLike[str] | None = None, mesh: Any | None = None) -> np.ndarray:
    """VideoReTalking's ``--exp_img``: ``neutral`` / ``smile`` from ``expression.mat``, or an image file's expression.

    ``net`` and ``lm3d`` are needed only for an image. The reference treats any other word as ``neutral``;
    retalk refuses it (:class:`InputError`), and an unreadable image too. Returns (64,) float32.
    """
    text = os.fspath(spec)
    if text in TEMPLATES:
        return expression_template(text, checkpoints)
    path = Path(text).expanduser()
    if not path.is_file():
        raise InputError(f"expression {text!r} is neither {' nor '.join(TEMPLATES)} nor an image file")
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    if net is None or lm3d is None:
        raise ValueError("expression_for needs the face3d network and the standard landmarks for an image")
    return expression_from_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), net, lm3d, mesh, name=f"expression image {path}")
