"""The ``retalk`` command line.

Every user-caused failure prints one line (``retalk: error: …``) and exits
with status 2; nothing half-written is left behind.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from retalk import __version__
from retalk.errors import RetalkError

if TYPE_CHECKING:
    from retalk.portrait import AnimateOptions

log = logging.getLogger("retalk")


def _box(text: str) -> tuple[float, float, float, float]:
    parts = [float(p) for p in text.replace(",", " ").split()]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("--box takes four numbers: X0 Y0 X1 Y1 (pixels)")
    return tuple(parts)  # type: ignore[return-value]


def _add_output(p: argparse.ArgumentParser) -> None:
    """The output file and its encoding (every rendering command)."""
    p.add_argument("--outfile", "-o", required=True, help="output video (.mp4, .mov or .mkv); written atomically")
    p.add_argument("--crf", type=int, default=17, help="H.264 quality, lower = better (default 17, visually lossless)")
    p.add_argument("--preset", default="superfast",
                   help="x264 speed preset: ultrafast … veryslow (default superfast, with x264's macroblock tree kept "
                        "on, so files stay nearly as small as veryfast's)")


def _add_speech(p: argparse.ArgumentParser) -> None:
    """The driving speech as a file (``sync``, ``animate``)."""
    p.add_argument("--audio", required=True, help="speech: any audio file, or a video whose sound to use")
    p.add_argument("--no-asr", action="store_true",
                   help="do not run the English phone recognizer; mouth motion from acoustics only")


def _add_mouth(p: argparse.ArgumentParser) -> None:
    """Mouth amplitude and face restoration (every rendering command)."""
    p.add_argument("--expression-scale", "--expression_scale", type=float, default=1.0, dest="expression_scale",
                   help="mouth amplitude; 1 = natural, <1 subtler, >1 more pronounced")
    p.add_argument("--enhancer", metavar="NAME",
                   help="restore the face of every rendered frame with a released network: gfpgan "
                        "(needs pip install 'retalk[neural]' and GFPGANv1.3.pth in the checkpoints folder)")


def _add_common(p: argparse.ArgumentParser) -> None:
    """Flags of dubbing a video (``sync``)."""
    _add_speech(p)
    _add_output(p)
    _add_mouth(p)
    p.add_argument("--engine", default="builtin",
                   help="lip-sync engine: builtin (default, CPU, no weights), wav2lip (needs checkpoints), "
                        "passthrough (original mouth; a baseline)")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="folder with released checkpoints for neural engines (default ./checkpoints or $RETALK_CHECKPOINTS)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate when --face is a still image (default 25)")
    p.add_argument("--face-index", "--face_index", type=int, dest="face_index", metavar="N",
                   help="speaker = the N-th face from the left (0-based) instead of the largest")
    p.add_argument("--box", type=_box, metavar="'X0 Y0 X1 Y1'",
                   help="speaker = the face overlapping this pixel box most")
    _add_cadence(p)


def _add_cadence(p: argparse.ArgumentParser) -> None:
    """Whether a frame the source repeats is repeated in the output (dubbing a video)."""
    p.add_argument("--no-hold-repeats", dest="hold_repeats", action="store_false",
                   help="render a new mouth on every output frame, even where the video repeats a frame (by default "
                        "a frame the video repeats, e.g. 24 fps footage converted to 30, is repeated in the output "
                        "too, so the mouth moves in step with the picture)")


def _add_portrait(p: argparse.ArgumentParser, references: bool = True) -> None:
    """Flags of portrait animation (``animate``, and ``say --image``)."""
    p.add_argument("--size", type=int, metavar="PX",
                   help="output size in pixels: the square's side for --preprocess crop (default 512), the longer "
                        "side for resize (default 512) and full (default: the picture's own, at most 1920)")
    p.add_argument("--preprocess", choices=["crop", "resize", "full"], default="crop",
                   help="crop: a square around the face (default); resize: the whole picture scaled to --size; "
                        "full: the whole picture, everything but the head left as it is")
    p.add_argument("--still", action="store_true",
                   help="no head motion (blinks and lips only); --input_yaw/pitch/roll still apply")
    p.add_argument("--pose-style", "--pose_style", type=int, default=0, dest="pose_style", metavar="N",
                   help="head-motion style: 0 calm, 1 nodding, 2 lively, 3 tilted, 4 turned, 5 reserved; "
                        "other numbers give further reproducible variants (default 0)")
    for axis in ("yaw", "pitch", "roll"):
        p.add_argument(f"--input-{axis}", f"--input_{axis}", type=float, nargs="+", dest=f"input_{axis}",
                       metavar="DEG",
                       help=f"head {axis} in degrees: one value (constant) or several, spread evenly over the clip "
                            f"and interpolated smoothly; replaces the generated {axis}")
    if references:
        p.add_argument("--ref-eyeblink", "--ref_eyeblink", dest="ref_eyeblink", metavar="VIDEO",
                       help="take blink timing from this talking video (eye aspect ratio of the tracked face)")
        p.add_argument("--ref-pose", "--ref_pose", dest="ref_pose", metavar="VIDEO",
                       help="take head motion from this talking video (tracked head pose and position)")
    p.add_argument("--blink-rate", "--blink_rate", type=float, default=17.0, dest="blink_rate", metavar="PER_MIN",
                   help="average generated blinks per minute (default 17; intervals are irregular)")
    p.add_argument("--fps", type=float, default=25.0, help="output frame rate (default 25)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retalk",
        description="Audio-driven talking-head video: dub a video with new speech, animate a photo, evaluate engines.",
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
    _add_common(p)

    p = sub.add_parser("animate", parents=[common], help="animate a photo: a talking video from one picture and speech",
                       description="Make a talking video from one photo: lips follow --audio, the eyes blink and the "
                                   "head moves with the speech's energy and phrasing. The output has the audio's "
                                   "duration and the speech as its sound.")
    p.add_argument("--image", required=True, help="a photo with a face (png, jpg, webp, ...; alpha is put on white)")
    _add_speech(p)
    _add_output(p)
    _add_mouth(p)
    p.add_argument("--checkpoints", metavar="DIR",
                   help="folder with released checkpoints for --enhancer "
                        "(default ./checkpoints or $RETALK_CHECKPOINTS)")
    _add_portrait(p)

    p = sub.add_parser("say", parents=[common],
                       help="speak text: synthesize speech and lip-sync a video or animate a photo",
                       description="Synthesize --text with the bundled espeak-ng and make --face (a video) or --image "
                                   "(a photo) say it. The synthesizer's own phone timings drive the mouth.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the text to speak")
    what.add_argument("--text-file", "--text_file", dest="text_file", metavar="FILE",
                      help="read the text to speak from this UTF-8 file")
    p.add_argument("--voice", help="espeak-ng voice or language (e.g. en-us, en-gb, de, en-us+f3); "
                                   "'+VARIANT' alone adds a variant to --lang (default en-us)")
    p.add_argument("--lang", help="language of the text as an espeak-ng language tag (e.g. en-us, fr, es); "
                                  "used when --voice is not given")
    p.add_argument("--rate", type=int, default=160, metavar="WPM",
                   help="speaking rate in words per minute (default 160)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--face", help="a talking-head video to dub (like `retalk sync`)")
    who.add_argument("--image", help="a photo to animate (like `retalk animate`)")
    _add_output(p)
    _add_mouth(p)
    p.add_argument("--engine", default="builtin",
                   help="lip-sync engine for --face: builtin (default), wav2lip (needs checkpoints), passthrough")
    _add_cadence(p)
    p.add_argument("--checkpoints", metavar="DIR",
                   help="folder with released checkpoints for neural engines and --enhancer "
                        "(default ./checkpoints or $RETALK_CHECKPOINTS)")
    _add_portrait(p, references=False)

    from retalk.evaluate.cli_eval import add_eval_parser

    add_eval_parser(sub, [common])
    _add_serve_parser(sub, [common])

    p = sub.add_parser("doctor", parents=[common], help="show versions, found checkpoints and the compute device",
                       description="Print what is installed, which checkpoints are found (with sizes and sha256) "
                                   "and which device neural engines would use.")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="folder to look in (default ./checkpoints or $RETALK_CHECKPOINTS)")
    return parser


def _add_serve_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    from retalk.serve.cli import add_serve_parser

    add_serve_parser(sub, parents)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="retalk: %(levelname)s: %(message)s")
    if verbose < 2:
        os.environ.setdefault("GLOG_minloglevel", "3")
        warnings.filterwarnings("ignore")


def _run_sync(args: argparse.Namespace) -> int:
    from retalk.pipeline import SyncOptions, sync

    if args.checkpoints:
        os.environ["RETALK_CHECKPOINTS"] = str(Path(args.checkpoints))
    opts = SyncOptions(engine=args.engine, fps=args.fps, face_index=args.face_index, box=args.box,
                       recognize=not args.no_asr, expression_scale=args.expression_scale, crf=args.crf,
                       preset=args.preset, enhancer=args.enhancer, hold_repeats=args.hold_repeats,
                       progress=not args.quiet and sys.stderr.isatty())
    res = sync(args.face, args.audio, args.outfile, opts)
    print(f"{res.path}  ({res.frames} frames, {res.fps:.3f} fps, {res.duration:.2f} s)")
    return 0


def _animate_options(args: argparse.Namespace, **extra) -> AnimateOptions:
    from retalk.portrait import AnimateOptions

    def keys(v):
        return tuple(v) if v else None

    return AnimateOptions(
        fps=args.fps, size=args.size, preprocess=args.preprocess, still=args.still, pose_style=args.pose_style,
        expression_scale=args.expression_scale, input_yaw=keys(args.input_yaw), input_pitch=keys(args.input_pitch),
        input_roll=keys(args.input_roll), ref_eyeblink=getattr(args, "ref_eyeblink", None),
        ref_pose=getattr(args, "ref_pose", None), blink_rate=args.blink_rate, enhancer=args.enhancer, crf=args.crf,
        preset=args.preset, progress=not args.quiet and sys.stderr.isatty(), **extra)


def _run_animate(args: argparse.Namespace) -> int:
    from retalk.portrait import animate

    if args.checkpoints:
        os.environ["RETALK_CHECKPOINTS"] = str(Path(args.checkpoints))
    res = animate(args.image, args.audio, args.outfile, _animate_options(args, recognize=not args.no_asr))
    print(f"{res.path}  ({res.frames} frames, {res.size[0]}x{res.size[1]}, {res.fps:.3f} fps, {res.duration:.2f} s)")
    return 0


def _speech_voice(voice: str | None, lang: str | None) -> str:
    if voice and voice.startswith("+"):
        return (lang or "en-us") + voice
    return voice or lang or "en-us"


def _run_say(args: argparse.Namespace) -> int:
    import tempfile

    from retalk.errors import InputError
    from retalk.media import check_file, write_wav
    from retalk.media.video import check_output
    from retalk.speech.tts import synthesize

    check_output(args.outfile)
    if args.text_file is not None:
        path = check_file(args.text_file, "text file")
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            raise InputError(f"{path}: cannot read the text ({type(exc).__name__}); give a UTF-8 text file") from None
    else:
        text = args.text
    if args.checkpoints:
        os.environ["RETALK_CHECKPOINTS"] = str(Path(args.checkpoints))
    speech = synthesize(text, voice=_speech_voice(args.voice, args.lang), rate_wpm=args.rate)
    with tempfile.TemporaryDirectory(prefix="retalk-say-") as tmp:
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, speech.samples, speech.sample_rate)
        if args.face:
            from retalk.pipeline import SyncOptions, sync

            opts = SyncOptions(engine=args.engine, fps=args.fps, phones=speech.phones,
                               expression_scale=args.expression_scale, crf=args.crf, preset=args.preset,
                               enhancer=args.enhancer, hold_repeats=args.hold_repeats,
                               progress=not args.quiet and sys.stderr.isatty())
            res = sync(args.face, wav, args.outfile, opts)
            size = ""
        else:
            from retalk.portrait import animate

            res = animate(args.image, wav, args.outfile, _animate_options(args, phones=speech.phones))
            size = f"{res.size[0]}x{res.size[1]}, "
    print(f"{res.path}  ({res.frames} frames, {size}{res.fps:.3f} fps, {res.duration:.2f} s)")
    return 0


def _run_doctor(args: argparse.Namespace) -> int:
    from retalk.doctor import report

    if args.checkpoints:
        os.environ["RETALK_CHECKPOINTS"] = str(Path(args.checkpoints))
    print(report())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "sync":
            return _run_sync(args)
        if args.command == "animate":
            return _run_animate(args)
        if args.command == "say":
            return _run_say(args)
        if args.command == "doctor":
            return _run_doctor(args)
        if args.command == "eval":
            from retalk.evaluate.cli_eval import run_eval

            return run_eval(args)
        if args.command == "serve":
            from retalk.serve.cli import run_serve

            return run_serve(args)
        parser.error(f"unknown command {args.command}")
    except RetalkError as exc:
        if args.verbose >= 2:
            log.exception("details")
        print(f"retalk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("retalk: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for the traceback
        if args.verbose >= 2:
            raise
        print(f"retalk: internal error: {type(exc).__name__}: {exc} (run with -vv for details)", file=sys.stderr)
        return 1
    return 0
