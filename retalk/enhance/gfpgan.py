"""GFPGAN face restoration driven by mediapipe face-mesh landmarks.

Pipeline per face (the same steps as the reference ``GFPGANer.enhance`` with
facexlib's ``FaceRestoreHelper``, except that the five points come from the
face mesh the tracker already computed instead of a RetinaFace detection):

1. five points from the mesh (pixels): image-left eye centre, image-right eye
   centre, nose tip, image-left and image-right mouth corners;
2. a similarity transform onto facexlib's FFHQ five-point template (scaled to
   the network's side, 512 for the release), estimated with
   ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)``;
3. ``cv2.warpAffine`` of the frame to a ``face_size``² crop (bilinear, constant
   grey border);
4. the network on the crop as RGB in [-1, 1] (``return_rgb=False``), output
   clamped to [-1, 1] and mapped to uint8 with rounding;
5. paste-back: the restored crop and a square ones-mask are warped back with the
   inverse transform; the mask is eroded (2×2), its edge width
   ``w = int(sqrt(area)) // 20`` sets a second erosion (2w × 2w) and a Gaussian
   blur (kernel 2w+1); ``out = soft · (mask · face) + (1 − soft) · frame``,
   truncated to uint8.  Only the face's bounding region (plus a margin larger
   than the blur) is touched; every other pixel is returned bit-for-bit.

All images here are **RGB uint8** (H, W, 3); landmarks are **pixels** in the
same frame (x right, y down).  torch is imported lazily, so importing this
module does not need it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "FFHQ_TEMPLATE_512",
    "CROP_BORDER_RGB",
    "GFPGANRestorer",
    "five_points_from_mesh",
    "alignment_matrix",
    "warp_face",
    "paste_face",
]

logger = logging.getLogger(__name__)

#: facexlib's standard five FFHQ landmarks for a 512×512 face, (x, y) pixels, in the order
#: image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)

#: Fill colour outside the frame when cropping.  The reference uses (135, 133, 132) on BGR
#: frames; this is the same grey in RGB order.
CROP_BORDER_RGB = (132, 133, 135)

# mediapipe face-mesh indices ("right"/"left" are the subject's; the subject's right eye is image-left).
_IRIS_RIGHT, _IRIS_LEFT = 468, 473
_RIGHT_EYE_CORNERS = (33, 133)
_LEFT_EYE_CORNERS = (362, 263)
_NOSE_TIP = 1
_MOUTH_RIGHT, _MOUTH_LEFT = 61, 291  # subject's right corner (image-left), subject's left (image-right)

# Network input lookup: uint8 value → float32 in [-1, 1], computed like the reference
# (v / 255 in float64, cast to float32, then (x - 0.5) / 0.5 in float32).
_INPUT_LUT = ((np.arange(256, dtype=np.float64) / 255.0).astype(np.float32) - np.float32(0.5)) / np.float32(0.5)


def five_points_from_mesh(landmarks: np.ndarray, eyes: str = "auto") -> np.ndarray:
    """The five alignment points from mediapipe face-mesh landmarks.

    Args:
        landmarks: (478, 2+) or (468, 2+) pixel coordinates (extra columns such as z are ignored).
        eyes: ``"iris"`` (iris centres 468 / 473, needs 478 points), ``"corners"`` (mean of the two
            corners of each eye: 33/133 and 362/263) or ``"auto"`` (iris when present).

    Returns:
        (5, 2) float64: image-left eye, image-right eye, nose tip (1), image-left mouth corner (61),
        image-right mouth corner (291) — the subject's right eye/mouth corner first, matching the
        order of :data:`FFHQ_TEMPLATE_512`.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] < 2 or lm.shape[0] < 468:
        raise ValueError(f"expected face-mesh landmarks of shape (478, 2) or (468, 2), got {lm.shape}")
    lm = lm[:, :2]
    if eyes not in ("auto", "iris", "corners"):
        raise ValueError(f"eyes must be 'auto', 'iris' or 'corners', got {eyes!r}")
    use_iris = eyes == "iris" or (eyes == "auto" and lm.shape[0] > _IRIS_LEFT)
    if use_iris:
        if lm.shape[0] <= _IRIS_LEFT:
            raise ValueError("eyes='iris' needs the 478-point mesh (refine_landmarks=True)")
        eye_img_left, eye_img_right = lm[_IRIS_RIGHT], lm[_IRIS_LEFT]
    else:
        eye_img_left = lm[list(_RIGHT_EYE_CORNERS)].mean(axis=0)
        eye_img_right = lm[list(_LEFT_EYE_CORNERS)].mean(axis=0)
    return np.stack([eye_img_left, eye_img_right, lm[_NOSE_TIP], lm[_MOUTH_RIGHT], lm[_MOUTH_LEFT]])


def _least_squares_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Closed-form least-squares similarity src → dst as a 2×3 matrix (None if degenerate)."""
    s_mean, d_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - s_mean, dst - d_mean
    var = float((s**2).sum())
    if var < 1e-12:
        return None
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / var
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var
    rot = np.array([[a, -b], [b, a]])
    return np.concatenate([rot, (d_mean - rot @ s_mean)[:, None]], axis=1)


def alignment_matrix(points5: np.ndarray, face_size: int = 512) -> np.ndarray | None:
    """Similarity transform (2×3, float64) mapping frame pixels onto the FFHQ template of side ``face_size``.

    Uses ``cv2.estimateAffinePartial2D`` with LMEDS, as the reference; falls back to a plain
    least-squares fit if OpenCV finds no model.  Returns None for degenerate points.
    """
    src = np.asarray(points5, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(src).all():
        return None
    dst = FFHQ_TEMPLATE_512 * (face_size / 512.0)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if matrix is None or not np.isfinite(matrix).all():
        matrix = _least_squares_similarity(src, dst)
    if matrix is None or abs(np.linalg.det(matrix[:, :2])) < 1e-12:
        return None
    return matrix.astype(np.float64)


def warp_face(frame_rgb: np.ndarray, affine: np.ndarray, face_size: int = 512) -> np.ndarray:
    """Aligned ``face_size``² RGB uint8 crop of ``frame_rgb`` (bilinear, grey constant border)."""
    return cv2.warpAffine(
        frame_rgb, affine, (face_size, face_size), borderMode=cv2.BORDER_CONSTANT, borderValue=CROP_BORDER_RGB
    )


def paste_face(frame_rgb: np.ndarray, face_rgb: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Blend an aligned (restored) face back into a copy of the frame with a soft square mask.

    Args:
        frame_rgb: (H, W, 3) uint8 frame.
        face_rgb: (S, S, 3) uint8 face in the aligned space of ``affine``.
        affine: the 2×3 frame → aligned-face transform used to crop it.

    Returns:
        (H, W, 3) uint8; pixels outside the face's bounding region are bit-identical to the input.
    """
    out = frame_rgb.copy()
    height, width = frame_rgb.shape[:2]
    size = face_rgb.shape[0]
    inverse = cv2.invertAffineTransform(affine)

    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    mapped = corners @ inverse.T
    side = size * math.sqrt(abs(np.linalg.det(inverse[:, :2])))
    # The margin exceeds the mask's blur reach (about side / 20), so cropping to this region
    # gives the same result as working on the whole frame.
    pad = int(side / 10) + 4
    x0 = max(int(math.floor(mapped[:, 0].min())) - pad, 0)
    y0 = max(int(math.floor(mapped[:, 1].min())) - pad, 0)
    x1 = min(int(math.ceil(mapped[:, 0].max())) + pad + 1, width)
    y1 = min(int(math.ceil(mapped[:, 1].max())) + pad + 1, height)
    if x1 <= x0 or y1 <= y0:
        return out
    # The two warps cover the whole frame: OpenCV's fixed-point source coordinates depend on the
    # destination origin, so warping into a shifted window moves some samples by 1/32 px (±1-2
    # grey levels) against the reference's whole-frame paste.  Everything after them is local.
    restored = cv2.warpAffine(face_rgb, inverse, (width, height))[y0:y1, x0:x1]
    mask = cv2.warpAffine(np.ones((size, size), np.float32), inverse, (width, height))[y0:y1, x0:x1]
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
    area = float(mask.sum())
    edge = int(math.sqrt(area)) // 20
    if edge >= 1:
        center = cv2.erode(mask, np.ones((2 * edge, 2 * edge), np.uint8))
        soft = cv2.GaussianBlur(center, (2 * edge + 1, 2 * edge + 1), 0)
    else:
        soft = mask
    soft = soft[:, :, None]
    background = out[y0:y1, x0:x1].astype(np.float32)
    blended = soft * (mask[:, :, None] * restored) + (1.0 - soft) * background
    out[y0:y1, x0:x1] = blended.astype(np.uint8)  # truncation, as the reference
    return out


class GFPGANRestorer:
    """Restores the face in RGB frames with an already-loaded GFPGAN network.

    Args:
        net: a ``retalk.networks.gfpgan.GFPGANv1Clean`` (or any module with the same
            ``forward(x, return_rgb=..., randomize_noise=...) -> (image, ...)`` contract, input and
            output RGB in [-1, 1]).  It is moved to ``device`` and put in eval mode.
        device: torch device for the network.
        randomize_noise: fresh StyleGAN noise on every call (reference behaviour) or the network's
            stored noise maps (deterministic output).
        eyes: how eye centres are taken from the mesh, see :func:`five_points_from_mesh`.
        min_eye_distance: faces whose eye centres are closer than this (pixels) are left untouched
            (the reference skips detections under 5 px).
        batch_size: faces per network call in :meth:`restore_batch`.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        device: str | torch.device = "cpu",
        *,
        randomize_noise: bool = True,
        eyes: str = "auto",
        min_eye_distance: float = 5.0,
        batch_size: int = 4,
    ) -> None:
        import torch

        if eyes not in ("auto", "iris", "corners"):
            raise ValueError(f"eyes must be 'auto', 'iris' or 'corners', got {eyes!r}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.face_size = int(getattr(net, "out_size", 512))
        self.randomize_noise = randomize_noise
        self.eyes = eyes
        self.min_eye_distance = float(min_eye_distance)
        self.batch_size = max(int(batch_size), 1)
        param = next(iter(net.parameters()), None)
        self._dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        self._lut: torch.Tensor | None = None

    def with_network(self, net: torch.nn.Module) -> GFPGANRestorer:
        """A restorer with the same settings running ``net`` instead (e.g. a channels-last or compiled
        wrapper of this one's network, with the same call contract and output)."""
        import copy

        other = copy.copy(self)
        other.net = net
        other._lut = None
        return other

    # -- steps ---------------------------------------------------------------------------------

    def align(self, frame_rgb: np.ndarray, landmarks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """``(crop (S, S, 3) uint8 RGB, affine 2×3)`` for the face given by ``landmarks``, or None.

        None when the landmarks are missing, not finite, the eyes are too close, or the fit fails.
        """
        if landmarks is None:
            return None
        points = five_points_from_mesh(landmarks, self.eyes)
        if not np.isfinite(points).all():
            return None
        if float(np.linalg.norm(points[1] - points[0])) < self.min_eye_distance:
            logger.debug("face skipped: eye distance below %.1f px", self.min_eye_distance)
            return None
        affine = alignment_matrix(points, self.face_size)
        if affine is None:
            logger.debug("face skipped: no alignment transform")
            return None
        return warp_face(frame_rgb, affine, self.face_size), affine

    def run_network(self, crops: np.ndarray) -> np.ndarray:
        """Restore aligned crops: (B, S, S, 3) uint8 RGB → (B, S, S, 3) uint8 RGB."""
        import torch

        from retalk.runtime.device import upload

        crops = np.asarray(crops, np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        with torch.inference_mode():
            # uint8 crops travel to the device (a quarter of float32's bytes); the table lookup there
            # gives exactly the values of the host-side _INPUT_LUT[crops]
            if self._lut is None:
                self._lut = torch.from_numpy(_INPUT_LUT).to(self.device)
            x = self._lut[upload(crops, self.device).long()].permute(0, 3, 1, 2).contiguous().to(self._dtype)
            out = self.net(x, return_rgb=False, randomize_noise=self.randomize_noise)
            image = out[0] if isinstance(out, (tuple, list)) else out
            image = ((image.float().clamp(-1.0, 1.0) + 1.0) / 2.0 * 255.0).round()
        return image.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    # -- public API ----------------------------------------------------------------------------

    def restore(self, frame_rgb: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
        """Restore one face in one frame.

        Args:
            frame_rgb: (H, W, 3) uint8 RGB frame.
            landmarks: (478, 2) (or (468, 2)) face-mesh points in pixels of this frame; None or
                non-finite values leave the frame unchanged.

        Returns:
            A new (H, W, 3) uint8 RGB frame; only the face region differs from the input.
        """
        return self.restore_batch([frame_rgb], [landmarks])[0]

    def restore_batch(
        self, frames_rgb: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None]
    ) -> list[np.ndarray]:
        """Restore one face per frame, running the network on up to ``batch_size`` faces at once.

        Frames may differ in size.  Returns new uint8 RGB frames in the input order.
        """
        from retalk.enhance.op import RestoreOp
        from retalk.runtime.stages import Slot, run_ops_sequential

        if len(frames_rgb) != len(landmarks):
            raise ValueError(f"{len(frames_rgb)} frames but {len(landmarks)} landmark sets")
        frames = [_check_frame(f) for f in frames_rgb]
        # the runtime's steps and batching, in this thread: align, the network on batch_size faces, paste
        op = RestoreOp(self, lambda slot: landmarks[slot.out_index])
        done = run_ops_sequential((Slot(i, i, f) for i, f in enumerate(frames)), [op])
        return [s.frame.copy() if s.frame is frames[s.out_index] else s.frame for s in done]

    def __call__(self, frame_rgb: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
        return self.restore(frame_rgb, landmarks)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(face_size={self.face_size}, device={self.device}, "
            f"randomize_noise={self.randomize_noise}, eyes={self.eyes!r})"
        )


def _check_frame(frame: Any) -> np.ndarray:
    """Validate an (H, W, 3) uint8 frame and return it as a C-contiguous array."""
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got shape {arr.shape} dtype {arr.dtype}")
    return np.ascontiguousarray(arr)
