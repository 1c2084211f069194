"""The Wav2Lip engine: the released Wav2Lip generator, with retalk's tracking and compositing.

What follows the release (Rudrabha/Wav2Lip ``inference.py``):

* one face box per source frame, padded by ``pads`` = (top, bottom, left, right)
  pixels (default ``0 10 0 0``), clipped to the frame, then smoothed over time
  with a 5-frame forward mean, computed in place on integer boxes;
* the box is cut out and resized to 96 × 96 (bilinear), **BGR**; the network's
  input is ``concat[masked, reference]`` on the channel axis, divided by 255,
  where ``masked`` is the crop with rows 48..95 set to zero and ``reference``
  is the same crop unmasked;
* audio: one (1, 80, 16) mel window (0.2 s) per output frame, cut with the
  release's chunking rule (:func:`retalk.speech.mel.mel_windows`);
* the output (BGR in [0, 1]) is scaled by 255, truncated to uint8 and resized
  back to the box.

What differs:

* **Face boxes come from the tracked mediapipe landmarks** instead of the s3fd
  detector (see :func:`s3fd_like_box` for the mapping).
* **Compositing**: instead of pasting the whole box back (which leaves the
  well-known visible rectangle), only the lower face is replaced, under a
  feathered mask built from the landmarks, with a Laplacian-pyramid blend, after
  matching the generated skin's mean colour to the frame's.

Pipeline frames are RGB; conversion to and from the network's BGR happens here.
torch is imported when this module is imported, which happens only when the
``wav2lip`` engine is chosen.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from retalk.checkpoints import candidate_files, default_checkpoints_dir, get_spec, load
from retalk.compose.blend import feather, laplacian_blend, match_mean_colour, polygon_mask
from retalk.engines.base import Engine, Plan, RenderItem
from retalk.face.smoothing import shot_runs
from retalk.errors import CheckpointError, InputError, MissingDependencyError
from retalk.face import landmarks as L
from retalk.face.tracker import FaceTrack
from retalk.runtime.device import download, resolve_device, upload
from retalk.runtime.stages import Slot
from retalk.speech.mel import SAMPLE_RATE, melspectrogram, mel_windows

try:
    import torch
except ImportError:  # pragma: no cover - depends on the installation
    raise MissingDependencyError("the wav2lip engine needs PyTorch: pip install 'retalk[neural]'") from None

log = logging.getLogger(__name__)

__all__ = [
    "Wav2LipEngine",
    "s3fd_like_box",
    "face_boxes",
    "smooth_boxes",
    "IMG_SIZE",
    "SMOOTH_FRAMES",
]

#: Side of the network's square face input, in pixels.
IMG_SIZE = 96
#: Length of the release's forward moving-average window over face boxes, in frames.
SMOOTH_FRAMES = 5

# s3fd-like box from the face-oval bounding box of the mesh (fractions of the oval's height H,
# measured from its top T = forehead point 10, to its bottom B = chin point 152):
#   top    = T + 0.12 H   (on the forehead, a little above the brows, which sit near T + 0.18 H)
#   bottom = B - 0.02 H   (just above the bottom of the chin)
#   left / right = the oval's own extent (cheek to cheek at ear level)
# See s3fd_like_box for why.
_S3FD_TOP = 0.12
_S3FD_BOTTOM = 0.02
_S3FD_SIDE = 0.0

# Lower-face region the generated mouth may replace: lips, chin, the cheeks beside the mouth,
# the middle of the jaw line and the base of the nose.
_MASK_POINTS = np.array(sorted(set(L.LIPS) | set(L.LOWER_FACE_INNER) | set(L.JAW[3:-3]) | set(L.NOSE_BASE)))


#: ``precision`` values → autocast dtype (None: plain float32).
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class _Crop:
    """One frame's network input: ``face`` (96, 96, 3) uint8 BGR, its ``box`` (x1, y1, x2, y2) px, the output frame."""

    face: np.ndarray
    box: tuple[int, int, int, int]
    out_index: int


# ----------------------------------------------------------------------------- face boxes
def s3fd_like_box(lm: np.ndarray) -> np.ndarray:
    """The face box the release's s3fd detector would give, estimated from mesh landmarks.

    Wav2Lip was trained on, and runs on, crops cut by the s3fd box (no padding when the
    training crops were made; ``--pads 0 10 0 0`` at inference). s3fd boxes follow the
    WIDER FACE convention: roughly square (the detector's anchors are square), tight on the
    cheeks, starting on the forehead somewhat above the brows, and ending at or a little above
    the bottom of the chin; the release's own advice to add bottom padding "to include the
    chin" (and its issue #83, "many cropped faces did not contain a chin") shows the bottom
    edge often stops short of the chin. The mesh's face oval instead runs from high on the
    forehead (point 10) to the chin (point 152). The mapping, in fractions of the oval's
    height ``H``: top = oval top + 0.12 H, bottom = chin − 0.02 H, sides = the oval's
    extent. For a frontal face this gives a box about 0.86 H tall and as wide as the
    face (≈ 0.85 H), i.e. near square like s3fd's, with the 96-pixel crop's middle row
    (where the release's mask starts) at the nose tip, as in the training crops.

    Args:
        lm: (478, >=2) landmarks in pixels (x right, y down).

    Returns:
        float32 ``[x1, y1, x2, y2]`` in pixels, not yet padded, rounded or clipped.
    """
    pts = np.asarray(lm, np.float32)[L.FACE_OVAL, :2]
    x1, y1 = pts.min(0)
    x2, y2 = pts.max(0)
    h = float(y2 - y1)
    w = float(x2 - x1)
    return np.array([x1 - _S3FD_SIDE * w, y1 + _S3FD_TOP * h, x2 + _S3FD_SIDE * w, y2 - _S3FD_BOTTOM * h],
                    np.float32)


def smooth_boxes(boxes: np.ndarray, window: int = SMOOTH_FRAMES) -> np.ndarray:
    """The release's temporal smoothing of integer boxes (n, 4): a forward mean over ``window`` frames.

    Box ``i`` becomes the mean of boxes ``i .. i + window - 1``; the last ``window - 1``
    boxes use the final ``window`` boxes instead. As in the release, the array is
    updated in place (so those final windows see already-smoothed values) and every mean
    is truncated to an integer. Returns ``boxes`` (int64).
    """
    n = len(boxes)
    if n == 0:
        return boxes
    window = max(1, min(window, n))
    for i in range(n):
        win = boxes[n - window:] if i + window > n else boxes[i:i + window]
        boxes[i] = np.mean(win, axis=0)  # assignment into an int array truncates, as upstream
    return boxes


def face_boxes(track: FaceTrack, pads: Sequence[int] = (0, 10, 0, 0), smooth: bool = True) -> np.ndarray:
    """Integer face boxes ``[x1, y1, x2, y2]`` (end-exclusive pixels) per source frame.

    :func:`s3fd_like_box` of each valid frame, truncated to integers, padded by ``pads``
    = (top, bottom, left, right) pixels and clipped to the frame, then smoothed with
    :func:`smooth_boxes` within each run of consecutive frames of one shot that have a face.
    Frames without a face get ``[0, 0, 0, 0]``.
    """
    top, bottom, left, right = (int(p) for p in pads)
    width, height = track.size
    n = len(track)
    boxes = np.zeros((n, 4), np.int64)
    for i in np.flatnonzero(track.valid):
        b = s3fd_like_box(track.landmarks[i])
        x1, y1 = max(0, int(b[0])), max(0, int(b[1]))  # s3fd clips at 0 and truncates
        x2, y2 = int(b[2]), int(b[3])
        boxes[i] = (max(0, x1 - left), max(0, y1 - top), min(width, x2 + right), min(height, y2 + bottom))
    if smooth:
        for a, b in shot_runs(track.valid, track.shot):  # runs of faces, split at cuts: no box smoothed across one
            boxes[a:b] = smooth_boxes(boxes[a:b])
    return boxes


# ----------------------------------------------------------------------------- checkpoint
def _default_checkpoint(directory: Path) -> Path | None:
    """The first of wav2lip_gan.(safetensors|pth), wav2lip.(safetensors|pth) in ``directory``, or None."""
    names = sorted(candidate_files(get_spec("wav2lip")), key=lambda f: 0 if "gan" in f else 1)
    for fname in names:
        if (directory / fname).is_file():
            return directory / fname
    return None


def _checkpoint_path(checkpoint: str | Path | None) -> Path | None:
    """Where to load from; None lets the registry search (and explain what is missing)."""
    directory = default_checkpoints_dir()
    if checkpoint is None:
        return _default_checkpoint(directory)
    p = Path(checkpoint).expanduser()
    if p.is_dir():
        found = _default_checkpoint(p)
        return found if found is not None else p  # the registry names the files it looked for
    if p.is_file():
        return p
    if len(p.parts) == 1:  # a bare file name: look in the checkpoints folder
        if (directory / p).is_file():
            return directory / p
        raise CheckpointError(
            f"checkpoint '{p.name}' not found in {directory.resolve()}; get it from "
            f"{get_spec('wav2lip').source} and put it there "
            "(or point --checkpoints / $RETALK_CHECKPOINTS at its folder)"
        )
    return p  # the registry reports the missing file


# ----------------------------------------------------------------------------- engine
class Wav2LipEngine(Engine):
    """Lip sync with the released Wav2Lip generator (96 × 96 lower face); see the module docstring.

    Args:
        checkpoint: a file name in the checkpoints folder (``--checkpoints`` /
            ``$RETALK_CHECKPOINTS`` / ``./checkpoints``), a path to a file or a folder;
            ``None`` uses ``wav2lip_gan.pth`` if present, else ``wav2lip.pth``.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; default CUDA when available.
        batch_size: frames per network call; default 64 on CUDA, 16 on the CPU.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` (autocast); default fp16 on CUDA, fp32 on the CPU.
            fp16 moved the output by 0.027 grey levels on average, at most 1, on an H100
            (``benchmarks/wav2lip_speed.py``).
        pads: (top, bottom, left, right) pixels added to the face box, as the release's ``--pads``.
        smooth: smooth face boxes over 5 frames (the release's default; its ``--nosmooth`` is False).

    Raises:
        CheckpointError: the checkpoint is missing, unsafe, corrupt or does not fit,
            raised here, before any video is read.
    """

    name = "wav2lip"
    needs_phones = False  # the network hears the audio itself

    def __init__(self, checkpoint: str | Path | None = None, device: str | None = None, batch_size: int | None = None,
                 precision: str | None = None, pads: Sequence[int] = (0, 10, 0, 0), smooth: bool = True) -> None:
        if len(pads) != 4:
            raise InputError(f"wav2lip engine: pads must be (top, bottom, left, right), got {pads!r}")
        self.device = resolve_device(device)
        if batch_size is None:
            batch_size = 64 if self.device.type == "cuda" else 16
        if batch_size < 1:
            raise InputError(f"wav2lip engine: batch_size must be >= 1, got {batch_size}")
        if precision is None:
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision not in PRECISIONS:
            raise InputError(f"wav2lip engine: precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        self.precision = precision
        self.autocast_dtype = PRECISIONS[precision]
        self.batch_size = int(batch_size)
        self.pads = tuple(int(p) for p in pads)
        self.smooth = smooth
        self.net = load("wav2lip", _checkpoint_path(checkpoint), device=self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: autotuned kernels pay off at once
        self.boxes: np.ndarray | None = None
        self.mels: np.ndarray | None = None
        self.plan: Plan | None = None

    # ---------------------------------------------------------------- planning
    def prepare(self, plan: Plan) -> None:
        """Cut one mel window per output frame and one smoothed face box per source frame."""
        self.plan = plan
        audio = np.asarray(plan.audio, np.float32)
        if plan.sample_rate != SAMPLE_RATE:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(int(plan.sample_rate), SAMPLE_RATE)
            audio = resample_poly(audio, SAMPLE_RATE // g, int(plan.sample_rate) // g).astype(np.float32)
        mel = melspectrogram(audio)
        self.mels = mel_windows(mel, plan.fps, len(plan.schedule))
        self.boxes = face_boxes(plan.track, self.pads, self.smooth)
        valid = self.boxes[plan.track.valid]
        if len(valid):
            side = np.median(np.maximum(valid[:, 2] - valid[:, 0], valid[:, 3] - valid[:, 1]))
            log.info("wav2lip: %d mel windows at %.3f fps, median face box %d px, %s %s",
                     len(self.mels), plan.fps, int(side), self.device, self.precision)

    # ---------------------------------------------------------------- rendering (a BatchOp)
    def prepare_item(self, slot: Slot) -> _Crop | None:
        """Cut the frame's face box and shrink it to 96 × 96 BGR (None: no usable box). Thread-safe."""
        assert self.boxes is not None
        x1, y1, x2, y2 = (int(v) for v in self.boxes[slot.src_index])
        if x2 - x1 < 4 or y2 - y1 < 4:
            return None
        crop = cv2.cvtColor(slot.frame[y1:y2, x1:x2], cv2.COLOR_RGB2BGR)
        return _Crop(cv2.resize(crop, (IMG_SIZE, IMG_SIZE)), (x1, y1, x2, y2), slot.out_index)

    def run_batch(self, inputs: list[_Crop]) -> list[np.ndarray]:
        """The generator on a batch of crops; returns (96, 96, 3) uint8 BGR mouths, one per crop."""
        if self.mels is None:
            raise RuntimeError("Wav2LipEngine.run_batch called before prepare")
        idx = np.minimum([c.out_index for c in inputs], len(self.mels) - 1)
        return list(self._infer(np.stack([c.face for c in inputs]), self.mels[idx]))

    def finish_item(self, slot: Slot, prepared: _Crop, output: np.ndarray) -> np.ndarray:
        """Resize the generated mouth back to the box and blend its lower face into the frame. Thread-safe."""
        assert self.plan is not None
        x1, y1, x2, y2 = prepared.box
        patch = cv2.cvtColor(cv2.resize(output, (x2 - x1, y2 - y1)), cv2.COLOR_BGR2RGB)
        return self._composite(slot.frame, patch, prepared.box, self.plan.track.landmarks[slot.src_index])

    def _infer(self, faces: np.ndarray, mels: np.ndarray) -> np.ndarray:
        """Run the generator.

        Args:
            faces: (B, 96, 96, 3) uint8 BGR crops.
            mels: (B, 80, 16) float32 mel windows.

        Returns:
            (B, 96, 96, 3) uint8 BGR, the release's ``(out * 255).astype(uint8)`` (truncation).

        The crops travel to the device as uint8 (a quarter of the bytes), and masking, scaling to
        [0, 1], the channel concatenation and the conversion back to uint8 happen there; the
        arithmetic is the release's, in float32, so the CPU result is unchanged.
        """
        with torch.inference_mode():
            f = upload(faces, self.device).permute(0, 3, 1, 2).float().div_(255.0)
            m = upload(np.ascontiguousarray(mels, np.float32), self.device).unsqueeze(1)
            masked = f.clone()
            masked[:, :, IMG_SIZE // 2:] = 0.0
            x = torch.cat([masked, f], dim=1).contiguous()  # NCHW, as the release feeds it (channels-last ran slower on the CPU)
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype,
                                enabled=self.autocast_dtype is not None):
                y = self.net(m, x)
            out = (y.float().clamp_(0.0, 1.0) * 255.0).to(torch.uint8).permute(0, 2, 3, 1)
            return download(out)

    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        """Return the frames (RGB uint8) of ``items`` with the lower face re-rendered by Wav2Lip.

        The same three steps the neural runtime overlaps (:meth:`prepare_item`, :meth:`run_batch`,
        :meth:`finish_item`), one after another.
        """
        if self.plan is None or self.boxes is None or self.mels is None:
            raise RuntimeError("Wav2LipEngine.render called before prepare")
        slots = [Slot(it.out_index, it.src_index, it.frame) for it in items]
        crops = [self.prepare_item(s) for s in slots]
        work = [c for c in crops if c is not None]
        outs = iter(self.run_batch(work) if work else ())
        return [s.frame if c is None else self.finish_item(s, c, next(outs)) for s, c in zip(slots, crops)]

    @staticmethod
    def _composite(frame: np.ndarray, patch: np.ndarray, box: tuple[int, int, int, int],
                   lm: np.ndarray) -> np.ndarray:
        """Blend the lower face of ``patch`` (RGB uint8, the box's size) into ``frame`` (RGB uint8).

        The mask is the lower face (lips, chin, cheeks beside the mouth, up to the nose
        base) from the landmarks, limited to the generated half of the box (below its
        middle row) and kept inside the box, feathered over ~6% of the inter-ocular
        distance. The patch's mean colour over the masked skin is matched to the frame's,
        then a Laplacian-pyramid blend runs over the box plus a margin in which the
        foreground equals the frame, so the result meets the untouched frame seamlessly.
        """
        x1, y1, x2, y2 = box
        h, w = frame.shape[:2]
        bw, bh = x2 - x1, y2 - y1
        margin = max(4, int(0.15 * max(bw, bh)))
        rx0, ry0 = max(0, x1 - margin), max(0, y1 - margin)
        rx1, ry1 = min(w, x2 + margin), min(h, y2 + margin)
        bg = frame[ry0:ry1, rx0:rx1].astype(np.float32)
        bx0, by0 = x1 - rx0, y1 - ry0  # the box inside the region
        pts = lm[:, :2].astype(np.float64) - (rx0, ry0)
        iod = max(float(L.interocular(lm)), 1.0)
        sigma = max(1.0, 0.06 * iod)
        reach = int(np.ceil(2.5 * sigma))
        hull = cv2.convexHull(pts[_MASK_POINTS].astype(np.float32)).reshape(-1, 2)
        mask_u8 = polygon_mask(bg.shape[:2], hull)
        # only the half the network generates, and never up to the box edge (the feather must stay inside)
        inside = np.zeros(bg.shape[:2], np.uint8)
        top = by0 + bh // 2 + reach // 2
        inside[top:by0 + bh - reach, bx0 + reach:bx0 + bw - reach] = 255
        mask_u8 = cv2.bitwise_and(mask_u8, inside)
        if not mask_u8.any():
            return frame
        lips = polygon_mask(bg.shape[:2], pts[L.LIPS_OUTER])
        lips = cv2.dilate(lips, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
        skin = (mask_u8 > 128) & (lips == 0)
        region = skin[by0:by0 + bh, bx0:bx0 + bw]
        fg = bg.copy()
        fg[by0:by0 + bh, bx0:bx0 + bw] = match_mean_colour(patch, bg[by0:by0 + bh, bx0:bx0 + bw], region)
        mask = feather(mask_u8.astype(np.float32) / 255.0, sigma)
        blended = laplacian_blend(fg, bg, mask, levels=4)
        result = frame if frame.flags.writeable else frame.copy()
        result[ry0:ry1, rx0:rx1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return result

    def close(self) -> None:
        """Drop the network and per-clip data (frees GPU memory)."""
        self.net = None
        self.boxes = self.mels = None
        self.plan = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
