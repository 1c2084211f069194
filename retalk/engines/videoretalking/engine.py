"""The VideoReTalking engine: the published pipeline on retalk's tracking, runtime and cache.

Steps (FACTSHEET §1; each module of this package documents what it follows and what
differs):

* planning (:meth:`VideoReTalkingEngine.prepare`): 68 points from the face mesh, the FFHQ crop box,
  3DMM coefficients of every source frame (batched, cached by input hash), the face boxes, the mel
  windows;
* rendering, one runtime op per network (CPU steps in the pool, networks batched in the device
  thread, all overlapping): D-Net stabilisation (``vrt.dnet``) → GPEN + ParseNet reference
  enhancement (``vrt.reference``) → E-Net lip sync (``vrt.enet``) → GANimation upper face
  (``vrt.upface``, only with ``up_face`` surprise/angry) → GFPGAN (``vrt.gfpgan``) → ParseNet masks and
  the Laplacian blends (``vrt.parse``).

Frames without a face never reach the ops (they pass through); a still image is a one-frame clip.
torch is imported when this module is, which happens only when the engine is chosen.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from retalk.checkpoints import load
from retalk.engines.base import Engine, Plan, RenderItem
from retalk.errors import InputError, MissingDependencyError
from retalk.runtime.stages import Slot, run_ops_sequential

try:
    import torch
except ImportError:  # pragma: no cover - depends on the installation
    raise MissingDependencyError("the videoretalking engine needs PyTorch: pip install 'retalk[neural]'") from None

from retalk.runtime.device import resolve_device
from retalk.engines.videoretalking.analysis import ClipAnalysis, analyse_frames
from retalk.engines.videoretalking.cache import ClipCache, clip_key, default_cache_dir, faces_key
from retalk.engines.videoretalking.context import ClipContext, Networks
from retalk.engines.videoretalking.release import ReleaseFiles, check_release
from retalk.engines.videoretalking.store import FrameStore
from retalk.engines.videoretalking.upface import UP_FACES

__all__ = ["VideoReTalkingEngine", "EXP_IMG_NAMES", "UP_FACE_NAMES", "PADS"]

log = logging.getLogger(__name__)

#: ``exp_img`` values that name a template in expression.mat (anything else is a picture's path).
EXP_IMG_NAMES = ("neutral", "smile")
#: ``up_face`` choices.
UP_FACE_NAMES = tuple(UP_FACES)
#: Face-box padding (top, bottom, left, right) in pixels, the reference's ``--pads``.
PADS = (0, 20, 0, 0)

# frames per network call: (CUDA, CPU); on the CPU a larger batch is no faster per frame, only later (and
# the compiled networks are compiled for batch 1: another batch size would compile them again)
_BATCH = {"vrt.dnet": (8, 1), "vrt.reference": (8, 1), "vrt.enet": (16, 1), "vrt.upface": (16, 1),
          "vrt.gfpgan": (8, 1), "vrt.parse": (8, 1), "face3d": (32, 8)}


def check_exp_img(value: str) -> str:
    """``neutral``, ``smile`` or the path of an existing picture; else an :class:`InputError`."""
    if value in EXP_IMG_NAMES:
        return value
    from retalk.media.probe import is_image

    p = Path(value).expanduser()
    if not p.is_file():
        raise InputError(f"--exp-img {value!r}: not neutral, smile or an existing picture")
    if not is_image(p):
        raise InputError(f"--exp-img {value!r}: not a picture (png, jpg, ...)")
    return str(p)


class VideoReTalkingEngine(Engine):
    """Lip sync with the released VideoReTalking networks; see the module docstring.

    Args:
        checkpoints: folder with the release files (default ``$RETALK_CHECKPOINTS`` or ``./checkpoints``);
            every missing file is named in one :class:`~retalk.errors.CheckpointError`.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; default CUDA when available.
        exp_img: the expression D-Net stabilises to: ``"neutral"``, ``"smile"`` (from ``expression.mat``)
            or a picture's path (its face's expression).
        up_face: ``"original"``, ``"surprise"`` or ``"angry"`` (GANimation on the upper face).
        cache_dir: folder of the per-clip cache (default: see :func:`retalk.engines.videoretalking.cache.default_cache_dir`).
        cache: read and write the per-clip cache.
        batch_size: frames per network call for every network (default per network and device).
        progress: per-stage progress bars with time estimates.
        compile: compile the networks with TorchInductor on the CPU (None: when the clip has at least
            :data:`~retalk.engines.videoretalking.speed.COMPILE_MIN_FRAMES` frames to render); see
            :mod:`retalk.engines.videoretalking.speed`.
    """

    name = "videoretalking"
    needs_phones = False  # the networks hear the audio themselves

    def __init__(self, checkpoints: str | Path | None = None, device: str | None = None, exp_img: str = "neutral",
                 up_face: str = "original", cache_dir: str | Path | None = None, cache: bool = True,
                 batch_size: int | None = None, progress: bool = True, compile: bool | None = None) -> None:
        if up_face not in UP_FACES:
            raise InputError(f"--up-face {up_face!r}: choose from {', '.join(UP_FACES)}")
        if batch_size is not None and batch_size < 1:
            raise InputError(f"videoretalking engine: batch_size must be >= 1, got {batch_size}")
        exp_img = check_exp_img(exp_img)
        files = check_release(checkpoints, up_face, exp_img)
        self._setup(files, resolve_device(device), exp_img, up_face, cache_dir, cache, batch_size, progress)
        self.compile = compile
        self.nets = self._load_networks()
        from retalk.face3d.align import load_lm3d

        self.lm3d = load_lm3d(files.folder)
        self.template = self._template()

    @classmethod
    def with_networks(cls, nets: Networks, lm3d: np.ndarray, template: np.ndarray, *, up_face: str = "original",
                      cache_dir: str | Path | None = None, cache: bool = False, batch_size: int | None = None,
                      progress: bool = False, compile: bool = False) -> VideoReTalkingEngine:
        """An engine on networks already loaded (or stand-ins with the same calls, for tests and benchmarks).

        ``lm3d``: (5, 3) standard landmarks; ``template``: (64,) expression.
        """
        if up_face not in UP_FACES:
            raise InputError(f"--up-face {up_face!r}: choose from {', '.join(UP_FACES)}")
        engine = cls.__new__(cls)
        engine._setup(None, torch.device(nets.device), "neutral", up_face, cache_dir, cache, batch_size, progress)
        engine.nets, engine.lm3d = nets, np.asarray(lm3d)
        engine.compile = compile
        engine.template = np.asarray(template, np.float32)
        return engine

    def _setup(self, files: ReleaseFiles | None, device: torch.device, exp_img: str, up_face: str,
               cache_dir: str | Path | None, cache: bool, batch_size: int | None, progress: bool) -> None:
        self.files = files
        self.device = device
        self.up_face, self.exp_img = up_face, exp_img
        self.batch_override = batch_size
        self.progress = progress
        self.cache = ClipCache((Path(cache_dir) if cache_dir else default_cache_dir()) if cache else None)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.clip: ClipContext | None = None
        self.compile: bool | None = None
        self._cpu_ready = False
        self.store = FrameStore()
        self._ops: list[Any] = []

    # ---------------------------------------------------------------- start-up
    def _batch(self, name: str) -> int:
        if self.batch_override is not None:
            return self.batch_override
        return _BATCH[name][0 if self.device.type == "cuda" else 1]

    def _load_networks(self) -> Networks:
        from retalk.enhance.gfpgan import GFPGANRestorer

        assert self.files is not None
        f, dev = self.files.networks, self.device
        gan = load("ganimation", f["ganimation"], device=dev) if self.up_face != "original" else None
        restorer = GFPGANRestorer(load("gfpgan", f["gfpgan"], device=dev), dev, batch_size=self._batch("vrt.gfpgan"))
        nets = {name: load(name, f[name], device=dev) for name in ("face3d", "dnet", "enet", "gpen", "parsenet")}
        return Networks(device=dev, restorer=restorer, ganimation=gan, **nets)

    def _template(self) -> np.ndarray:
        """The (64,) expression D-Net stabilises to."""
        from retalk.face3d import templates

        assert self.files is not None
        if self.exp_img in EXP_IMG_NAMES:
            return templates.expression_template(self.exp_img, self.files.folder)
        from retalk.media.video import read_image

        return templates.expression_from_image(read_image(self.exp_img), self.nets.face3d, self.lm3d,
                                               name=f"--exp-img picture {self.exp_img}")

    # ---------------------------------------------------------------- planning
    def prepare(self, plan: Plan) -> None:
        """Everything per clip before rendering: coefficients (cached), face boxes, mel windows; then the ops."""
        from retalk.engines.wav2lip import face_boxes
        from retalk.face.landmarks68 import mesh_to_68
        from retalk.speech.mel import melspectrogram, mel_windows

        track = plan.track
        lm68 = mesh_to_68(track.landmarks)
        if plan.clock is not None:
            with plan.clock.time("vrt.coefficients", items=len(track)):
                analysis, key = self._analysis(plan, lm68)
        else:
            analysis, key = self._analysis(plan, lm68)
        faces = None
        if key is not None:
            weights = [] if self.files is None else [self.files.networks[n] for n in ("dnet", "gpen", "parsenet")]
            faces = self.cache.faces(key, faces_key(self.template, weights))
        mels = mel_windows(melspectrogram(_audio_16k(plan)), plan.fps, len(plan.schedule))
        self.clip = ClipContext(analysis=analysis, template=self.template, mesh=track.landmarks, lm68=lm68,
                                face_boxes=face_boxes(track, PADS, smooth=True), mels=mels, up_face=self.up_face,
                                faces=faces)
        self.store.clear()
        shown = plan.schedule
        total = int(np.count_nonzero(analysis.valid[shown] & track.valid[shown]))
        if not self._cpu_ready:  # once per engine: channels-last networks, compiled for long clips
            from retalk.engines.videoretalking.speed import cpu_networks, should_compile

            compile_them = should_compile(self.compile, self.device, total)
            timed = compile_them and plan.clock is not None
            with plan.clock.time("vrt.compile") if timed else contextlib.nullcontext():
                self.nets, _ = cpu_networks(self.nets, compile_them)
            self._cpu_ready = True
        self._ops = self._build_ops(progress=plan.progress and self.progress, total=total)
        log.info("videoretalking: %d source frames (%d with a face), crop box %s, %d output frames, %s",
                 len(track), int(analysis.valid.sum()), analysis.box, len(mels), self.device)

    def _analysis(self, plan: Plan, lm68: np.ndarray) -> tuple[ClipAnalysis, str | None]:
        """The clip's crop box and coefficients, from the cache or computed (and cached); and the cache key."""
        from retalk.face3d.coeffs import extract_coeffs
        from retalk.face3d.crop import croper_box
        from retalk.media import iter_frames, probe_video

        track = plan.track
        valid = np.asarray(track.valid, bool)
        first = int(np.flatnonzero(valid)[0])
        width, height = track.size
        oy1, oy2, ox1, ox2 = croper_box(lm68[first], width, height).region(height, width)
        box = (int(ox1), int(oy1), int(ox2), int(oy2))
        key = None
        if plan.source is not None and self.cache.folder is not None:
            weights = [] if self.files is None else [self.files.networks["face3d"], self.files.bfm]
            key = clip_key(plan.source, track.landmarks, valid, weights)
            cached = self.cache.load(key)
            if cached is not None:
                found = ClipAnalysis.from_arrays(cached, len(track))
                if found is not None:
                    log.info("videoretalking: coefficients from the cache (%s)", self.cache.path(key))
                    return found, key
        if plan.source is None:
            raise InputError("the videoretalking engine needs the face input's path (Plan.source)")
        info = probe_video(plan.source, image_fps=plan.fps)
        batch = self._batch("face3d")

        def extract(crops: np.ndarray, lms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            got = extract_coeffs(self.nets.face3d, list(crops), lms, self.lm3d, batch_size=batch)
            return got.coeffs, got.trans_params

        analysis = analyse_frames(iter_frames(info), lm68, valid, box, extract, batch, plan.progress and self.progress)
        if key is not None:
            self.cache.save(key, analysis.to_arrays())
        return analysis, key

    def _build_ops(self, progress: bool, total: int) -> list[Any]:
        from retalk.engines.videoretalking.lipsync import LipSyncOp
        from retalk.engines.videoretalking.paste import MaskBlendOp, RestoreOp
        from retalk.engines.videoretalking.progress import counted
        from retalk.engines.videoretalking.reference import ReferenceOp
        from retalk.engines.videoretalking.stabilise import StabiliseOp
        from retalk.engines.videoretalking.upface import UpFaceOp

        assert self.clip is not None
        c, n, s = self.clip, self.nets, self.store
        ops: list[Any] = [StabiliseOp(c, n, s, self._batch("vrt.dnet")),
                          ReferenceOp(c, n, s, self._batch("vrt.reference")),
                          LipSyncOp(c, n, s, self._batch("vrt.enet"))]
        if self.up_face != "original":
            ops.append(UpFaceOp(self.up_face, n, s, self._batch("vrt.upface")))
        ops += [RestoreOp(c, n, s, self._batch("vrt.gfpgan")), MaskBlendOp(c, n, s, self._batch("vrt.parse"))]
        return counted(ops, total, progress)

    # ---------------------------------------------------------------- rendering
    def batch_ops(self) -> list[Any]:
        """The runtime ops of this clip, in order (after :meth:`prepare`)."""
        if self.clip is None:
            raise RuntimeError("VideoReTalkingEngine.batch_ops called before prepare")
        return list(self._ops)

    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        """The frames of ``items`` with the new mouth: the same ops, one after another in this thread."""
        slots = [Slot(it.out_index, it.src_index, it.frame) for it in items]
        return [s.frame for s in run_ops_sequential(slots, self.batch_ops())]

    def close(self) -> None:
        """Drop the networks and per-clip data (frees GPU memory)."""
        for op in self._ops:
            close = getattr(op, "close", None)
            if close is not None:
                close()
        self._ops = []
        self.store.clear()
        self.clip = None
        self.nets = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _audio_16k(plan: Plan) -> np.ndarray:
    """The plan's speech as 16 kHz float32 (the mel front-end's rate)."""
    from retalk.speech.mel import SAMPLE_RATE

    audio = np.asarray(plan.audio, np.float32)
    if plan.sample_rate == SAMPLE_RATE:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(plan.sample_rate), SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, int(plan.sample_rate) // g).astype(np.float32)
