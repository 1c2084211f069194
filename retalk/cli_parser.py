"""The ``retalk`` parser: every subcommand built from :mod:`retalk.cli_flags` pieces.

:func:`build_parser` is all :mod:`retalk.cli` needs to read a command line; the tables here say which
``say`` flags belong to which target (video or photo) and which flags belong to which engine, for the
checks :mod:`retalk.cli` makes after parsing. Importing this module imports neither torch nor mediapipe.
"""
from __future__ import annotations

import argparse
from typing import Any

from retalk import __version__
from retalk import cli_flags as flags
from retalk.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED_CLIPS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    InputError,
)

EXIT_STATUS = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_INTERNAL}    internal error (a bug; -vv shows the traceback)
  {EXIT_BAD_INPUT}    bad input or options (one line on stderr; no output file is left)
  {EXIT_FAILED_CLIPS}    retalk eval finished, but some clips failed (see its results.csv)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); no output file is left
  {EXIT_TERMINATED}  terminated (SIGTERM); cleaned up as for Ctrl-C
"""


# Flags of `say` that apply to one target only (dest -> flag as shown), and their defaults.
DUB_ONLY = {"hold_repeats": "--no-hold-repeats", "face_index": "--face-index", "box": "--box"}
DUB_DEFAULTS = {"engine": "builtin", "hold_repeats": True, "face_index": None, "box": None}
PORTRAIT_ONLY = {"size": "--size", "preprocess": "--preprocess", "still": "--still", "pose_style": "--pose-style",
                  "input_yaw": "--input-yaw", "input_pitch": "--input-pitch", "input_roll": "--input-roll",
                  "blink_rate": "--blink-rate", "seed": "--seed"}
PORTRAIT_DEFAULTS = {"size": None, "preprocess": "crop", "still": False, "pose_style": 0, "input_yaw": None,
                      "input_pitch": None, "input_roll": None, "blink_rate": 17.0, "seed": 0}
_PREPROCESS = ("crop", "extcrop", "resize", "full", "extfull")
ANIMATE_ENGINES = ("builtin", "sadtalker")  # as retalk.portrait.animate.ANIMATE_ENGINES (no heavy import here)


def _default(dest: str, defaults: dict[str, Any], given_only: bool) -> Any:
    """The default of ``dest``, or SUPPRESS (absent unless given) for a flag checked against the target."""
    return argparse.SUPPRESS if given_only else defaults[dest]


def _add_output(p: argparse.ArgumentParser) -> None:
    """The output file and its encoding (every rendering command)."""
    p.add_argument("--outfile", "-o", required=True, help="output video (.mp4, .mov or .mkv); written atomically")
    lo, hi = flags.CRF_RANGE
    p.add_argument("--crf", type=flags.crf, default=17, metavar="N",
                   help=f"H.264 quality {lo}-{hi}, lower = better (default 17, visually lossless)")
    p.add_argument("--preset", default="superfast", choices=flags.X264_PRESETS, metavar="NAME",
                   help=f"x264 speed preset: {', '.join(flags.X264_PRESETS)} (default superfast, with x264's "
                        f"macroblock tree kept on, so files stay nearly as small as veryfast's)")


def _add_speech(p: argparse.ArgumentParser) -> None:
    """The driving speech as a file (``sync``, ``animate``)."""
    p.add_argument("--audio", required=True, help="speech: any audio file, or a video whose sound to use")
    p.add_argument("--no-asr", action="store_true",
                   help="do not run the English phone recognizer; mouth motion from acoustics only")


def _add_mouth(p: argparse.ArgumentParser, what: str) -> None:
    """Mouth amplitude, face restoration and the device (every rendering command)."""
    flags.add_flag(p, "--expression-scale", "--expression_scale", type=flags.expression_scale, default=1.0,
                   metavar="X", help="mouth amplitude, 0 to 3; 1 = natural, <1 subtler, >1 more pronounced")
    p.add_argument("--enhancer", metavar="NAME", choices=flags.enhancer_names(),
                   help=f"restore the face of every rendered frame with a released network: "
                        f"{', '.join(flags.enhancer_names())} (needs pip install 'retalk[neural]' and its checkpoint, "
                        f"e.g. GFPGANv1.3.pth, in the checkpoints folder)")
    flags.add_device(p, what)


def _add_speaker(p: argparse.ArgumentParser, given_only: bool = False) -> None:
    """Which face speaks, and whether repeated source frames are repeated (dubbing a video)."""
    flags.add_flag(p, "--face-index", "--face_index", type=flags.face_index, metavar="N",
                   default=_default("face_index", DUB_DEFAULTS, given_only),
                   help="speaker = the N-th face from the left (0-based) instead of the largest")
    p.add_argument("--box", type=flags.box, metavar="'X0 Y0 X1 Y1'", default=_default("box", DUB_DEFAULTS, given_only),
                   help="speaker = the face overlapping this pixel box most")
    p.add_argument("--no-hold-repeats", dest="hold_repeats", action="store_false",
                   default=_default("hold_repeats", DUB_DEFAULTS, given_only),
                   help="render a new mouth on every output frame, even where the video repeats a frame (by default "
                        "a frame the video repeats, e.g. 24 fps footage converted to 30, is repeated in the output "
                        "too, so the mouth moves in step with the picture)")


def _add_portrait(p: argparse.ArgumentParser, references: bool = True, given_only: bool = False) -> None:
    """Flags of portrait animation (``animate``, and ``say --image``)."""
    def d(dest: str) -> Any:
        return _default(dest, PORTRAIT_DEFAULTS, given_only)

    p.add_argument("--size", type=int, metavar="PX", default=d("size"),
                   help="output size in pixels: the square's side for --preprocess crop (default 512), the longer "
                        "side for resize (default 512) and full (default: the picture's own, at most 1920); "
                        "--engine sadtalker: its render size, 256 (default) or 512")
    p.add_argument("--preprocess", choices=_PREPROCESS, default=d("preprocess"),
                   help="crop: a square around the face (default); resize: the whole picture scaled to --size; "
                        "full: the whole picture, everything but the head left as it is; extcrop, extfull "
                        "(--engine sadtalker): as crop and full with the wider crop around the face")
    p.add_argument("--still", action="store_true", default=d("still"),
                   help="no head motion (blinks and lips only); --input-yaw/-pitch/-roll still apply")
    flags.add_flag(p, "--pose-style", "--pose_style", type=int, default=d("pose_style"), metavar="N",
                   help="head-motion style: 0 calm, 1 nodding, 2 lively, 3 tilted, 4 turned, 5 reserved; "
                        "other numbers give further reproducible variants (default 0); --engine sadtalker: its "
                        "audio-to-pose styles 0-45")
    for axis in ("yaw", "pitch", "roll"):
        flags.add_flag(p, f"--input-{axis}", f"--input_{axis}", type=float, nargs="+", metavar="DEG",
                       default=d(f"input_{axis}"),
                       help=f"head {axis} in degrees: one value (constant) or several, spread evenly over the clip "
                            f"and interpolated smoothly; replaces the generated {axis}")
    if references:
        flags.add_flag(p, "--ref-eyeblink", "--ref_eyeblink", metavar="VIDEO",
                       help="take blink timing from this talking video (eye aspect ratio of the tracked face)")
        flags.add_flag(p, "--ref-pose", "--ref_pose", metavar="VIDEO",
                       help="take head motion from this talking video (tracked head pose and position)")
    flags.add_flag(p, "--blink-rate", "--blink_rate", type=flags.blink_rate, default=d("blink_rate"),
                   metavar="PER_MIN",
                   help="average generated blinks per minute, 1 to 120 (default 17; intervals are irregular; builtin "
                        "engine)")
    p.add_argument("--seed", type=int, default=d("seed"), metavar="N",
                   help="--engine sadtalker: seed of its random blinks and head-pose noise (default 0: the same "
                        "input gives the same video)")


def _add_animate_engine(p: argparse.ArgumentParser, default: Any = "builtin") -> None:
    """``--engine builtin|sadtalker`` for ``animate``."""
    p.add_argument("--engine", default=default, choices=ANIMATE_ENGINES, metavar="NAME",
                   help="builtin: mesh warp + the built-in lip renderer (CPU, no downloads; default); sadtalker: "
                        "SadTalker's released networks (needs pip install 'retalk[neural]' and its checkpoints, "
                        "see docs/sadtalker.md)")


VRT_FLAGS = {"exp_img": "--exp-img", "up_face": "--up-face", "cache_dir": "--cache-dir", "no_cache": "--no-cache"}


def _add_videoretalking(p: argparse.ArgumentParser) -> None:
    """Options of ``--engine videoretalking`` (refused with any other engine)."""
    g = p.add_argument_group("--engine videoretalking")
    flags.add_flag(g, "--exp-img", "--exp_img", metavar="neutral|smile|IMAGE", default=argparse.SUPPRESS,
                   help="the expression the face is stabilised to before the new mouth is drawn: neutral (default), "
                        "smile (both from expression.mat) or a picture of a face whose expression to use")
    flags.add_flag(g, "--up-face", "--up_face", choices=("original", "surprise", "angry"), default=argparse.SUPPRESS,
                   help="edit the upper face with GANimation (needs 30_net_gen.pth): surprise, angry, or original "
                        "(default: unchanged)")
    g.add_argument("--cache-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="folder of the per-clip cache (crop box, 3DMM coefficients, enhanced faces), default "
                        "~/.cache/retalk/videoretalking; safe to delete")
    g.add_argument("--no-cache", action="store_true", default=argparse.SUPPRESS,
                   help="neither read nor write the per-clip cache")


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """Engine options from the engine-specific flags; a flag given for another engine is an :class:`InputError`."""
    given = {dest: getattr(args, dest) for dest in VRT_FLAGS if hasattr(args, dest)}
    if not given:
        return {}
    if args.engine != "videoretalking":
        raise InputError(f"{VRT_FLAGS[next(iter(given))]} applies to --engine videoretalking, not {args.engine}")
    options: dict[str, Any] = {}
    if "exp_img" in given:
        options["exp_img"] = given["exp_img"]
    if "up_face" in given:
        options["up_face"] = given["up_face"]
    if "cache_dir" in given:
        options["cache_dir"] = given["cache_dir"]
    if given.get("no_cache"):
        options["cache"] = False
    if getattr(args, "checkpoints", None):
        options["checkpoints"] = args.checkpoints
    return options


def _add_checkpoints(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--checkpoints", metavar="DIR",
                   help=f"folder with released checkpoints for {what} (default ./checkpoints or $RETALK_CHECKPOINTS)")


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(
        prog="retalk",
        description="Audio-driven talking-head video: dub a video with new speech, animate a photo, evaluate engines.",
        epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"retalk {__version__}")
    # global flags are accepted before or after the command
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", "-v", action="count", default=argparse.SUPPRESS,
                        help="more log output (-v info, -vv debug, with tracebacks on errors)")
    common.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    # separate actions on the main parser (sharing them would let a sub-parser's default undo `retalk -v sync`)
    parser.add_argument("--verbose", "-v", action="count", default=0, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", "-q", action="store_true", default=False, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("sync", parents=[common], help="lip-sync a talking-head video (or photo) to new speech",
                       description="Re-render the mouth of the speaker in --face so it speaks --audio. The output keeps "
                                   "the input's size and frame rate, has the audio's duration (the video plays back and "
                                   "forth if the audio is longer) and the new speech as its sound.")
    p.add_argument("--face", required=True, help="talking-head video, or a still image of a face")
    _add_speech(p)
    _add_output(p)
    _add_mouth(p, "neural engines and --enhancer")
    flags.add_engine(p, "lip-sync engine")
    _add_checkpoints(p, "neural engines and --enhancer")
    p.add_argument("--fps", type=flags.fps, metavar="FPS",
                   help="frame rate when --face is a still image, 1 to 240 (default 25); a video keeps its own rate")
    _add_speaker(p)
    _add_videoretalking(p)

    p = sub.add_parser("animate", parents=[common], help="animate a photo: a talking video from one picture and speech",
                       description="Make a talking video from one photo: lips follow --audio, the eyes blink and the "
                                   "head moves with the speech's energy and phrasing. The output has the audio's "
                                   "duration and the speech as its sound.")
    p.add_argument("--image", required=True, help="a photo with a face (png, jpg, webp, ...; alpha is put on white)")
    _add_speech(p)
    _add_output(p)
    _add_mouth(p, "--engine sadtalker and --enhancer")
    _add_checkpoints(p, "--engine sadtalker and --enhancer")
    _add_animate_engine(p)
    _add_portrait(p)
    p.add_argument("--fps", type=flags.fps, default=25.0, metavar="FPS",
                   help="output frame rate, 1 to 240 (default 25)")

    p = sub.add_parser("say", parents=[common],
                       help="speak text: synthesize speech and lip-sync a video or animate a photo",
                       description="Synthesize --text with the bundled espeak-ng and make --face (a video) or --image "
                                   "(a photo) say it. The synthesizer's own phone timings drive the mouth. "
                                   "Flags of `sync` (--face-index, --box, --no-hold-repeats) apply to "
                                   "--face only, flags of `animate` (--size, --preprocess, --still, --pose-style, "
                                   "--input-yaw/-pitch/-roll, --blink-rate, --seed) to --image only; --engine "
                                   "names a lip-sync engine for --face, builtin or sadtalker for --image.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the text to speak")
    flags.add_flag(what, "--text-file", "--text_file", metavar="FILE", help="read the text to speak from this UTF-8 file")
    p.add_argument("--voice", help="espeak-ng voice or language (e.g. en-us, en-gb, de, en-us+f3); "
                                   "'+VARIANT' alone adds a variant to --lang (default en-us); see --list-voices")
    p.add_argument("--list-voices", action=flags.ListVoices, help="list the installed voices' language tags and exit")
    p.add_argument("--lang", help="language of the text as an espeak-ng language tag (e.g. en-us, fr, es); "
                                  "used when --voice is not given")
    p.add_argument("--rate", type=int, default=160, metavar="WPM",
                   help="speaking rate in words per minute (default 160)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--face", help="a talking-head video to dub (like `retalk sync`)")
    who.add_argument("--image", help="a photo to animate (like `retalk animate`)")
    _add_output(p)
    _add_mouth(p, "neural engines and --enhancer")
    p.add_argument("--engine", default=argparse.SUPPRESS, metavar="NAME",
                   choices=sorted(set(flags.engine_names()) | set(ANIMATE_ENGINES)),
                   help=flags.engine_help("with --face, the lip-sync engine") + " (default builtin); with --image, "
                        "builtin or sadtalker (SadTalker's networks, see `retalk animate --help`)")
    _add_checkpoints(p, "neural engines and --enhancer")
    p.add_argument("--fps", type=flags.fps, metavar="FPS",
                   help="frame rate of the output for --image, or when --face is a still image, 1 to 240 "
                        "(default 25)")
    _add_speaker(p, given_only=True)
    _add_portrait(p, references=False, given_only=True)
    _add_videoretalking(p)

    from retalk.evaluate.cli_eval import add_eval_parser

    add_eval_parser(sub, [common])
    _add_serve_parser(sub, [common])

    p = sub.add_parser("doctor", parents=[common], help="show versions, engines, found checkpoints and the device",
                       description="Print what is installed, which engines are registered, which checkpoints are "
                                   "found (with sizes and sha256) and which device neural engines would use.")
    _add_checkpoints(p, "engines and metrics")
    return parser


def _add_serve_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    from retalk.serve.cli import add_serve_parser

    add_serve_parser(sub, parents)
