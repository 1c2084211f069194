"""``retalk animate --engine sadtalker``: one photo + speech → a talking video with SadTalker's released networks.

Stages (each timed in a :class:`retalk.runtime.StageClock`; the result carries the frozen timings):

1. ``files``: every file the run needs, or one error naming all that are missing (:mod:`.files`);
2. ``audio``: 16 kHz speech → T = ⌊samples / 640⌋ frames at 25 fps and their mel windows;
3. ``photo``: the face found, ``--preprocess`` crop → source image (:mod:`.preprocess`);
4. ``load``: the networks on the device (:func:`retalk.checkpoints.load`, strictly), once the inputs are known good;
5. ``3dmm``: the source's 73 coefficients; ``--ref-eyeblink`` / ``--ref-pose`` videos' rows (:mod:`.coeffs3d`);
6. ``motion``: blinks (seeded), audio2exp, audio2pose (:mod:`retalk.sadtalker.motion`);
7. ``source`` + ``mapping``: the source encoded once, driving key points of all frames (:mod:`.render`);
8. ``render`` (the runtime: generator batches on the device, resize / paste-back in the CPU pool),
   then ``enhance`` (``--enhancer gfpgan``, batched), then the encoder (:class:`retalk.media.VideoSink`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from tqdm import tqdm

from retalk.errors import InputError, MissingDependencyError
from retalk.runtime.profile import StageClock
from retalk.runtime.stages import Slot, run_ops, run_ops_sequential
from retalk.sadtalker.files import PREPROCESS_MODES, SIZES, SadTalkerFiles, find_files

if TYPE_CHECKING:
    import torch

    from retalk.portrait.animate import AnimateOptions, AnimateResult

__all__ = ["FPS", "Networks", "animate_sadtalker", "autocast_dtype", "check_options", "load_networks"]

log = logging.getLogger(__name__)

FPS = 25.0
"""SadTalker's frame rate (its audio windows assume it)."""


@dataclass(frozen=True)
class Networks:
    """The loaded SadTalker networks (eval mode, on ``device``); ``gfpgan``: the enhancer's restorer or None."""

    kp_extractor: Any
    generator: Any
    mapping: Any
    audio2exp: Any
    audio2pose: Any
    face3d: Any
    lm3d: np.ndarray
    device: torch.device
    restorer: Any = None


def check_options(opt: AnimateOptions) -> tuple[int, str]:
    """``(size, preprocess)`` for SadTalker from ``opt``; :class:`InputError` for values it cannot do."""
    from retalk.sadtalker.motion import check_pose_style

    size = 256 if opt.size is None else int(opt.size)
    if size not in SIZES:
        raise InputError(f"--size {size}: --engine sadtalker renders at 256 or 512")
    if opt.preprocess not in PREPROCESS_MODES:
        raise InputError(f"--preprocess {opt.preprocess!r}: choose from {', '.join(PREPROCESS_MODES)}")
    if abs(float(opt.fps) - FPS) > 1e-6:
        raise InputError(f"--fps {opt.fps:g}: --engine sadtalker makes 25 fps video (its audio windows assume it)")
    check_pose_style(opt.pose_style)
    if abs(float(opt.blink_rate) - 17.0) > 1e-9:
        log.warning("--blink-rate applies to the builtin engine; SadTalker draws its own blink gaps")
    return size, opt.preprocess


def load_networks(files: SadTalkerFiles, device: torch.device, clock: StageClock | None = None) -> Networks:
    """Load every network of ``files`` strictly onto ``device``."""
    from retalk import checkpoints
    from retalk.face3d.align import load_lm3d

    clock = clock or StageClock()
    with clock.time("load"):
        nets = {name: checkpoints.load(name, path, device) for name, path in files.networks.items()}
        mapping = checkpoints.load("sadtalker_mapping", files.mapping, device)
        lm3d = load_lm3d(files.lm3d_dir)
        restorer = None
        if files.gfpgan is not None:
            from retalk.enhance.gfpgan import GFPGANRestorer

            # batch 4 on CUDA too: 8.3 ms a face against 7.7 at batch 16, in 3.2 GB instead of 11.7 (H200)
            restorer = GFPGANRestorer(checkpoints.load("gfpgan", files.gfpgan, device), device=device,
                                      randomize_noise=False, batch_size=4)
    return Networks(nets["sadtalker_kp_extractor"], nets["sadtalker_generator"], mapping,
                    nets["sadtalker_audio2exp"], nets["sadtalker_audio2pose"], nets["face3d"], lm3d, device, restorer)


def _ramp(keys: tuple[float, ...] | None, n: int) -> np.ndarray | None:
    from retalk.sadtalker.head_angles import camera_ramp

    return None if not keys else camera_ramp(keys, n)


def _finisher(source: Any) -> Any:
    """The render → output-frame step: resize to the crop box's aspect, or paste into the photo."""
    if source.background is not None:
        from retalk.sadtalker.paste import Paster

        return Paster.create(source.background, source.paste_box).paste
    w, h = source.out_size
    if (w, h) == (source.size, source.size):
        return lambda crop: crop
    return lambda crop: cv2.resize(crop, (w, h))


def animate_sadtalker(image: str | Path, audio: str | Path, outfile: str | Path, opt: AnimateOptions,
                      nets: Networks | None = None) -> AnimateResult:
    """Make ``outfile`` with SadTalker (see the module docstring); ``nets``: loaded networks (tests, benchmarks).

    Raises :class:`retalk.errors.RetalkError` subclasses for bad input and missing files. Never leaves a
    partial ``outfile``.
    """
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("--engine sadtalker needs PyTorch: pip install 'retalk[neural]'") from None

    from retalk.checkpoints import default_checkpoints_dir
    from retalk.face.landmarks68 import mesh_to_68
    from retalk.media import VideoSink, check_not_silent, load_audio, read_image
    from retalk.media.sink import check_output
    from retalk.portrait.animate import AnimateResult
    from retalk.portrait.geometry import find_face
    from retalk.runtime.device import resolve_device
    from retalk.sadtalker import audio as sad_audio
    from retalk.sadtalker import blinks, motion, windows
    from retalk.sadtalker.budget import choose_batch
    from retalk.sadtalker.coeffs3d import photo_row, video_rows
    from retalk.sadtalker.cpu_memory import keep_freed_memory
    from retalk.sadtalker.enhance import FrameLandmarks, restore_op
    from retalk.sadtalker.preprocess import prepare_source
    from retalk.sadtalker.render import FaceRenderer, RenderOp, set_channels_last

    size, preprocess = check_options(opt)
    check_output(outfile)
    clock = StageClock()
    full = "full" in preprocess
    with clock.wall("total"):
        files = None
        if nets is None:
            with clock.time("files"):
                files = find_files(default_checkpoints_dir(), size, preprocess, opt.enhancer)
            device = resolve_device(opt.device)
        elif opt.enhancer and nets.restorer is None:
            raise InputError("--enhancer: the networks given were loaded without the enhancer")
        # the inputs are checked before the networks load: a wrong file or a photo without a face fails at once
        with clock.time("audio"):
            speech = load_audio(audio)
            check_not_silent(speech)
            mels = sad_audio.mel_windows(speech.samples)
        n = int(mels.shape[0])
        with clock.time("photo"):
            photo = read_image(image)
            lm68 = mesh_to_68(find_face(photo, name=str(image)))
            source = prepare_source(photo, lm68, preprocess, size)
            del photo
        if files is not None:
            nets = load_networks(files, device, clock)
        assert nets is not None
        dev = nets.device
        with clock.time("3dmm"):
            src_row = photo_row(nets.face3d, source.image, source.landmarks, nets.lm3d)
            blink_rows = pose_rows = None
            if opt.ref_eyeblink is not None:
                blink_rows = video_rows(opt.ref_eyeblink, nets.face3d, nets.lm3d, preprocess, opt.progress)
            if opt.ref_pose is not None:
                pose_rows = (blink_rows if opt.ref_pose == opt.ref_eyeblink and blink_rows is not None
                             else video_rows(opt.ref_pose, nets.face3d, nets.lm3d, preprocess, opt.progress))
        with clock.time("motion", items=n):
            rng = np.random.default_rng(opt.seed)
            ratio = blinks.blink_ratio(n, rng) if blink_rows is None else np.zeros((n, 1), np.float32)
            ref_exp = blinks.reference_expression(src_row, n, None if blink_rows is None else blink_rows[:, :64])
            gen = torch.Generator().manual_seed(int(opt.seed))
            coeffs = motion.generate_motion(nets.audio2exp, nets.audio2pose, mels, src_row, ratio,
                                            pose_style=opt.pose_style, ref_exp=ref_exp,
                                            ref_pose=None if pose_rows is None else pose_rows[:, 64:70], generator=gen)
            wins = windows.target_windows(coeffs.coeffs(), src_row, expression_scale=opt.expression_scale,
                                          full=full, still=opt.still)
        if dev.type == "cpu":
            set_channels_last(nets.generator)
            keep_freed_memory()
        renderer = FaceRenderer(nets.kp_extractor, nets.generator, nets.mapping, dev, half=autocast_dtype(opt, dev))
        with clock.time("source"):
            state = renderer.encode_source(source.image, windows.source_window(src_row, full=full))
        with clock.time("mapping", items=n):
            kp_driving = renderer.driving_keypoints(state, wins, _ramp(opt.input_yaw, n), _ramp(opt.input_pitch, n),
                                                    _ramp(opt.input_roll, n))
        batch = opt.batch_size or choose_batch(dev, size, half=renderer.half is not None,
                                               enhancer=nets.restorer is not None)
        ops: list[Any] = [RenderOp(renderer, state, kp_driving, _finisher(source), batch)]
        marks = None
        if nets.restorer is not None:
            marks = FrameLandmarks()
            ops.append(restore_op(nets.restorer, marks))
        out_w, out_h = (source.background.shape[1], source.background.shape[0]) if source.background is not None \
            else source.out_size
        placeholder = np.zeros((1, 1, 3), np.uint8)  # the ops need no input picture: the render makes the frame

        def slots() -> Iterator[Slot]:
            for i in range(n):
                yield Slot(i, i, placeholder)

        out_path = Path(outfile)
        log.info("sadtalker: %d frames at %d px, %s, batch %d on %s, output %dx%d", n, size, preprocess, batch, dev,
                 out_w, out_h)
        try:
            with clock.wall("render"), VideoSink(out_path, out_w, out_h, Fraction(25), audio_path=audio,
                                                 duration=n / FPS, crf=opt.crf, preset=opt.preset) as sink:
                bar = tqdm(total=n, desc="sadtalker", unit="frame", disable=not opt.progress, leave=False)
                run = run_ops if opt.concurrent else run_ops_sequential
                for slot in run(slots(), ops, clock=clock):
                    with clock.time("encode.write"):
                        sink.write(slot.frame)
                    bar.update(1)
                bar.close()
        finally:
            if marks is not None:
                marks.close()
    timings = clock.timings()
    log.info("sadtalker timings:\n%s", timings.report())
    blinks_per_min = 60.0 * float(np.sum(ratio[:, 0] >= 1.0)) / max(n / FPS, 1e-6)  # one fully shut frame a blink
    return AnimateResult(out_path, n, FPS, n / FPS, (out_w, out_h), blinks_per_min, _max_rotation(coeffs.pose, opt),
                         timings=timings)


def autocast_dtype(opt: AnimateOptions, dev: torch.device) -> torch.dtype | None:
    """The autocast dtype for the generator on ``dev``: ``opt.precision`` ("fp32", "bf16", "fp16"; None: fp16 on CUDA).

    fp16 autocast stays within 2/255 of fp32 (mean 0.2/255); bf16 does not (up to 15/255): see ``docs/sadtalker.md``.
    """
    import torch

    if dev.type != "cuda":
        return None
    choice = opt.precision or "fp16"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[choice]


def _max_rotation(pose: np.ndarray, opt: AnimateOptions) -> float:
    """Largest head rotation in degrees: the generated angles (radians) or the explicit ``--input-*`` ones."""
    deg = float(np.degrees(np.abs(pose[:, :3]).max())) if len(pose) else 0.0
    for keys in (opt.input_yaw, opt.input_pitch, opt.input_roll):
        if keys:
            deg = max(deg, float(np.abs(np.asarray(keys, np.float64)).max()))
    return deg

