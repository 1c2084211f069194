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

from retalk import __version__
from retalk.errors import RetalkError

log = logging.getLogger("retalk")


def _box(text: str) -> tuple[float, float, float, float]:
    parts = [float(p) for p in text.replace(",", " ").split()]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("--box takes four numbers: X0 Y0 X1 Y1 (pixels)")
    return tuple(parts)  # type: ignore[return-value]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outfile", "-o", required=True, help="output video (.mp4, .mov or .mkv); written atomically")
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
    p.add_argument("--expression-scale", "--expression_scale", type=float, default=1.0, dest="expression_scale",
                   help="mouth amplitude; 1 = natural, <1 subtler, >1 more pronounced")
    p.add_argument("--crf", type=int, default=17, help="H.264 quality, lower = better (default 17, visually lossless)")
    p.add_argument("--preset", default="veryfast", help="x264 speed preset (default veryfast)")
    p.add_argument("--no-asr", action="store_true",
                   help="do not run the English phone recognizer; mouth motion from acoustics only")


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
    for a in common._actions:
        parser._add_action(a)
    parser.set_defaults(verbose=0, quiet=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("sync", parents=[common], help="lip-sync a talking-head video (or photo) to new speech",
                       description="Re-render the mouth of the speaker in --face so it speaks --audio. The output keeps "
                                   "the input's size and frame rate, has the audio's duration (the video plays back and "
                                   "forth if the audio is longer) and the new speech as its sound.")
    p.add_argument("--face", required=True, help="talking-head video, or a still image of a face")
    p.add_argument("--audio", required=True, help="speech: any audio file, or a video whose sound to use")
    _add_common(p)

    sub.add_parser("doctor", parents=[common], help="show versions, found checkpoints and the compute device",
                   description="Print what is installed, which checkpoints are found (with sizes and sha256) "
                               "and which device neural engines would use.")
    return parser


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
                       preset=args.preset, progress=not args.quiet and sys.stderr.isatty())
    res = sync(args.face, args.audio, args.outfile, opts)
    print(f"{res.path}  ({res.frames} frames, {res.fps:.3f} fps, {res.duration:.2f} s)")
    return 0


def _run_doctor(args: argparse.Namespace) -> int:
    from retalk.doctor import report

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
        if args.command == "doctor":
            return _run_doctor(args)
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
