"""Portrait animation: one photo + speech → a talking video.

How a frame is made (all on a working picture at output scale, see :mod:`retalk.portrait.geometry`):

1. **Head motion** (:mod:`retalk.portrait.head_motion`): a pose per frame from the
   speech's energy and phrasing (``pose_style``), a reference video
   (``ref_pose``), explicit key angles (``input_yaw`` …) or none (``still``); the
   head is moved by a mesh warp whose outer ring stays fixed. The same mesh
   moves the landmarks.
2. **Blinks** (:mod:`retalk.portrait.blink`): eyelid closure per frame (generated,
   or from ``ref_eyeblink``); the lids are closed by a mesh warp and a lid fill.
3. **Lips**: the built-in engine renders the mouth, exactly as for ``retalk sync``
   on a photo. It is given a face track whose frame 0 is the rest photo (its
   library of one mouth) and whose frame *i*+1 holds the moved landmarks of output
   frame *i*, with the head-moved, blinking frames as the background stream.

Frames are produced in a background thread (warps) while the main thread
renders lips; :class:`VideoSink` encodes in a third and renames the file into
place only on success.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from retalk.engines import create_engine
from retalk.engines.base import Plan, render_slots
from retalk.errors import InputError
from retalk.face import landmarks as L
from retalk.face.tracker import FaceTrack
from retalk.media import VideoSink, check_not_silent, load_audio, read_image
from retalk.media.audio import ANALYSIS_RATE
from retalk.media.sink import check_output
from retalk.media.video import prefetch
from retalk.portrait.blink import EyelidRenderer, blink_curve
from retalk.portrait.geometry import PREPROCESS_MODES, PhotoLayout, find_face, layout_photo
from retalk.portrait.head_motion import POSE_LIMITS, HeadWarp, keyframe_curve, speech_pose, style_for
from retalk.runtime.profile import Timings
from retalk.runtime.stages import Slot
from retalk.speech.mouth import mouth_track, timed_phones
from retalk.speech.types import Phone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnimateOptions:
    """Options of :func:`animate`.

    ``fps``: output frame rate. ``size``: output size in pixels (``crop``: the square's
    side, default 512; ``resize``: the longer side, default 512; ``full``: the longer
    side, default the picture's own up to 1920). ``preprocess``: ``crop`` | ``resize`` | ``full``.
    ``still``: no generated head motion. ``pose_style``: head-motion style (0–5 named,
    any other integer a reproducible variant). ``expression_scale``: mouth amplitude
    (1 = natural). ``input_yaw``/``input_pitch``/``input_roll``: key angles in degrees
    spread evenly over the clip (one value: constant), replacing that axis of the
    generated motion. ``ref_eyeblink``/``ref_pose``: a talking video to take blink
    timing / head motion from. ``blink_rate``: generated blinks per minute.
    ``enhancer``: name of a face restorer from :mod:`retalk.enhance` (needs the neural
    extra). ``phones``: exact phone timings of the speech (synthesizer), skipping
    recognition, in ``phone_notation`` ("espeak" for :mod:`retalk.speech.tts`, "arpabet", "ipa");
    ``recognize``: run the English phone recognizer otherwise.
    ``crf``/``preset``: H.264 quality and speed. ``device``: where the enhancer runs ("cpu", "cuda",
    "cuda:N"; None: CUDA if available); the lips are rendered on the CPU.
    ``engine``: ``builtin`` (mesh warp + lip renderer, CPU) or ``sadtalker`` (SadTalker's released networks,
    :mod:`retalk.sadtalker.engine`; needs the neural extra and its checkpoints, see ``docs/sadtalker.md``).
    SadTalker only: ``seed`` (blinks and the pose network's noise), ``precision`` ("fp32", "bf16", "fp16"
    autocast of the renderer on CUDA; None: fp16, the one within 2/255 of fp32), ``batch_size`` (frames per
    renderer call; None: from free GPU memory), ``concurrent`` (False: the runtime's sequential reference path).
    """

    fps: float = 25.0
    size: int | None = None
    preprocess: str = "crop"
    still: bool = False
    pose_style: int = 0
    expression_scale: float = 1.0
    input_yaw: tuple[float, ...] | None = None
    input_pitch: tuple[float, ...] | None = None
    input_roll: tuple[float, ...] | None = None
    ref_eyeblink: str | Path | None = None
    ref_pose: str | Path | None = None
    blink_rate: float = 17.0
    enhancer: str | None = None
    phones: Sequence[Phone] | None = None
    phone_notation: str | None = "espeak"
    recognize: bool = True
    crf: int = 17
    preset: str = "superfast"
    progress: bool = True
    device: str | None = None
    engine: str = "builtin"
    seed: int = 0
    precision: str | None = None
    batch_size: int | None = None
    concurrent: bool = True


ANIMATE_ENGINES = ("builtin", "sadtalker")
"""``--engine`` choices of ``animate`` and ``say --image``: the built-in mesh warp, or SadTalker's networks."""


@dataclass(frozen=True)
class AnimateResult:
    """What :func:`animate` wrote: path, frame count, rate (fps), duration (s), frame size (width, height),
    and the blinks per minute and largest head rotation (degrees) it used; ``timings``: per-stage times
    (``--engine sadtalker``; None for the builtin engine)."""

    path: Path
    frames: int
    fps: float
    duration: float
    size: tuple[int, int]
    blinks_per_minute: float
    max_rotation: float
    timings: Timings | None = None


def _check_options(opt: AnimateOptions) -> None:
    if opt.preprocess not in PREPROCESS_MODES:
        ext = " (extcrop and extfull are --engine sadtalker's)" if opt.preprocess.startswith("ext") else ""
        raise InputError(f"--preprocess {opt.preprocess!r}: choose from {', '.join(PREPROCESS_MODES)}{ext}")
    if opt.size is not None and not 64 <= int(opt.size) <= 4096:
        raise InputError(f"--size {opt.size}: choose between 64 and 4096 pixels")
    if not 1.0 <= float(opt.fps) <= 120.0:
        raise InputError(f"--fps {opt.fps}: choose between 1 and 120")
    if not 0.0 <= float(opt.expression_scale) <= 3.0:
        raise InputError(f"--expression-scale {opt.expression_scale}: choose between 0 and 3")
    for name in ("input_yaw", "input_pitch", "input_roll"):
        vals = getattr(opt, name)
        if vals is not None and not all(np.isfinite(float(v)) for v in vals):
            raise InputError(f"--{name.replace('_', '-')}: angles must be finite numbers (degrees)")


def load_enhancer(name: str, device: str | None = None) -> Any:
    """The face restorer called ``name`` on ``device`` (see :func:`retalk.enhance.create_restorer`; needs the
    neural extra)."""
    from retalk.enhance import create_restorer

    return create_restorer(name, device=device)


def head_poses(samples: np.ndarray, fps: float, n: int, opt: AnimateOptions) -> np.ndarray:
    """Head pose per frame (n, 5) for ``opt``: generated, from a reference, or still; key angles override."""
    if opt.ref_pose is not None:
        from retalk.portrait.reference import analyse_reference, reference_pose

        pose = reference_pose(analyse_reference(opt.ref_pose, opt.progress), fps, n).astype(np.float64)
    elif opt.still:
        pose = np.zeros((n, 5))
    else:
        pose = speech_pose(samples, ANALYSIS_RATE, fps, n, opt.pose_style).astype(np.float64)
    for axis, keys in enumerate((opt.input_yaw, opt.input_pitch, opt.input_roll)):
        if keys:
            curve = keyframe_curve(keys, n)
            if np.any(np.abs(curve) > POSE_LIMITS[axis]):
                log.warning("%s angles beyond ±%.0f° are clipped (a photo cannot turn further)",
                            ("yaw", "pitch", "roll")[axis], POSE_LIMITS[axis])
            pose[:, axis] = curve
    return np.clip(pose, -POSE_LIMITS, POSE_LIMITS).astype(np.float32)


def blink_track(samples: np.ndarray, fps: float, n: int, opt: AnimateOptions) -> np.ndarray:
    """Eyelid closure per frame (n,) in [0, 1]: from the reference video, else generated."""
    if opt.ref_eyeblink is not None:
        from retalk.portrait.reference import analyse_reference, reference_blinks

        return reference_blinks(analyse_reference(opt.ref_eyeblink, opt.progress), fps, n)
    return blink_curve(n, fps, samples, ANALYSIS_RATE, seed=opt.pose_style, rate_per_min=opt.blink_rate)


def _count_blinks(closure: np.ndarray) -> int:
    shut = closure > 0.6
    return int(np.sum(shut[1:] & ~shut[:-1]) + (1 if len(shut) and shut[0] else 0))


def prepare_photo(image: str | Path, opt: AnimateOptions) -> PhotoLayout:
    """Read the photo, find the face and build the working picture (the full-size original is then dropped)."""
    img = read_image(image)
    lm = find_face(img, name=str(image))
    return layout_photo(img, lm, opt.preprocess, opt.size)


def animate(image: str | Path, audio: str | Path, outfile: str | Path,
            options: AnimateOptions | None = None) -> AnimateResult:
    """Make a talking video of the face in ``image`` speaking ``audio``; write ``outfile`` (mp4/mov/mkv).

    Raises :class:`retalk.errors.RetalkError` subclasses (one line) for bad input,
    :class:`NoFaceError` when the photo shows no face. Never leaves a partial ``outfile``.
    """
    opt = options or AnimateOptions()
    if opt.engine not in ANIMATE_ENGINES:
        raise InputError(f"--engine {opt.engine!r}: animate uses {' or '.join(ANIMATE_ENGINES)}")
    if opt.engine == "sadtalker":
        from retalk.sadtalker.engine import animate_sadtalker

        return animate_sadtalker(image, audio, outfile, opt)
    _check_options(opt)
    check_output(outfile)
    restorer = load_enhancer(opt.enhancer, opt.device) if opt.enhancer else None
    speech = load_audio(audio)
    check_not_silent(speech)
    layout = prepare_photo(image, opt)
    work, lm0 = layout.work, layout.landmarks.astype(np.float32)
    fps = float(opt.fps)
    n = max(1, int(round(speech.duration * fps)))

    # motion, blinks, mouth
    pose = head_poses(speech.samples, fps, n, opt)
    closure = blink_track(speech.samples, fps, n, opt)
    phones, exact, notation = timed_phones(speech.samples, speech.sample_rate, opt.phones, opt.phone_notation,
                                           opt.recognize)
    mouth = mouth_track(speech.samples, speech.sample_rate, fps, n, phones, exact, opt.expression_scale, notation)
    head = HeadWarp(work.shape[:2], lm0)
    lms = np.empty((n + 1, L.N_POINTS, 3), np.float32)
    lms[0] = lm0
    for i in range(n):
        lms[i + 1] = head.move_points(lm0, pose[i])
    valid = np.ones(n + 1, bool)
    boxes = np.concatenate([lms[..., :2].min(1), lms[..., :2].max(1)], axis=1).astype(np.float32)
    track_pose = np.concatenate([np.zeros((1, 3), np.float32), pose[:, :3]])
    track = FaceTrack(lms, valid, boxes, track_pose, (work.shape[1], work.shape[0]))
    motion = "reference" if opt.ref_pose else "still" if opt.still else f"style {style_for(opt.pose_style).name}"
    log.info("animating %s: %d frames at %.2f fps, %s motion, %d blinks, head up to %.1f°",
             image, n, fps, motion, _count_blinks(closure),
             float(np.abs(pose[:, :3]).max()) if n else 0.0)

    # the one lip renderer: the built-in engine with the rest photo as its library
    engine = create_engine("builtin")
    eyelids = EyelidRenderer(work, lm0)
    ox, oy, ow, oh = layout.out_rect
    out_path = Path(outfile)

    def background() -> Iterator[np.ndarray]:
        for i in range(n):
            frame = head.render(work, pose[i])
            yield eyelids.apply(frame, lms[i + 1], float(closure[i]))

    try:
        engine.observe(0, work, lm0)
        plan = Plan(track=track, mouth=mouth, schedule=np.arange(1, n + 1), fps=fps, audio=speech.samples,
                    sample_rate=speech.sample_rate, still=True)
        engine.prepare(plan)
        rate = Fraction(fps).limit_denominator(1001)
        with VideoSink(out_path, ow, oh, rate, audio_path=audio, duration=speech.duration, crf=opt.crf,
                       preset=opt.preset) as sink:
            bar = tqdm(total=n, desc="animating", unit="frame", disable=not opt.progress, leave=False)

            for slot in render_slots(engine, (Slot(i, i + 1, f) for i, f in enumerate(prefetch(background())))):
                out = np.ascontiguousarray(slot.frame[oy:oy + oh, ox:ox + ow])
                if restorer is not None:
                    out = restorer.restore(out, lms[slot.src_index, :, :2] - (ox, oy))
                sink.write(out)
                bar.update(1)
            bar.close()
            if sink.frames_written != n:
                raise InputError(f"{image}: expected {n} frames, rendered {sink.frames_written}")
    finally:
        engine.close()
    duration = n / fps
    blinks = _count_blinks(closure)
    res = AnimateResult(out_path, n, fps, duration, (ow, oh), 60.0 * blinks / max(duration, 1e-6),
                        float(np.abs(pose[:, :3]).max()) if n else 0.0)
    log.info("wrote %s: %d frames %dx%d at %.3f fps (%.2f s), %d blinks", out_path, n, ow, oh, fps, duration, blinks)
    return res
