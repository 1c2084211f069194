"""The ``retalk`` command line.

Every user-caused failure prints one line (``retalk: error: …``) and exits
with status 2; nothing half-written is left behind. Ctrl-C and SIGTERM unwind
the run (exit 130 and 143); :func:`deferred_signals` holds them over a step
that would swallow them (espeak-ng's callbacks). Flags use dashes
(``--pose-style``); the underscore spellings of SadTalker and VideoReTalking
(``--pose_style``) are accepted as hidden aliases (see :mod:`retalk.cli_flags`).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retalk.cli_checks import check_dub_checkpoints, check_paths
from retalk.cli_parser import (
    ANIMATE_ENGINES,
    DUB_DEFAULTS,
    DUB_ONLY,
    PORTRAIT_DEFAULTS,
    PORTRAIT_ONLY,
    VRT_FLAGS,
    build_parser,
    engine_options,
)
from retalk.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    InputError,
    RetalkError,
)
from retalk.signals import deferred_signals

if TYPE_CHECKING:
    from retalk.portrait import AnimateOptions

log = logging.getLogger(__name__)

def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="retalk: %(levelname)s: %(message)s")
    if verbose < 2:
        os.environ.setdefault("GLOG_minloglevel", "3")
        warnings.filterwarnings("ignore")


def _set_checkpoints(args: argparse.Namespace) -> None:
    if getattr(args, "checkpoints", None):
        os.environ["RETALK_CHECKPOINTS"] = str(Path(args.checkpoints))


def _run_sync(args: argparse.Namespace) -> int:
    from retalk.pipeline import SyncOptions, sync

    _set_checkpoints(args)
    check_paths(args.outfile, {"--face": args.face, "--audio": args.audio}, args.checkpoints)
    check_dub_checkpoints(args.engine, args.enhancer, engine_options(args))
    opts = SyncOptions(engine=args.engine, fps=args.fps, face_index=args.face_index, box=args.box,
                       recognize=not args.no_asr, expression_scale=args.expression_scale, crf=args.crf,
                       preset=args.preset, enhancer=args.enhancer, hold_repeats=args.hold_repeats,
                       device=args.device, progress=not args.quiet and sys.stderr.isatty(),
                       engine_options=engine_options(args))
    res = sync(args.face, args.audio, args.outfile, opts)
    print(f"{res.path}  ({res.frames} frames, {res.fps:.3f} fps, {res.duration:.2f} s)")
    return EXIT_OK


def _animate_options(args: argparse.Namespace, **extra: Any) -> AnimateOptions:
    from retalk.portrait import AnimateOptions

    def keys(v: Sequence[float] | None) -> tuple[float, ...] | None:
        return tuple(v) if v else None

    return AnimateOptions(
        fps=args.fps or 25.0, size=args.size, preprocess=args.preprocess, still=args.still,
        pose_style=args.pose_style, expression_scale=args.expression_scale, input_yaw=keys(args.input_yaw),
        input_pitch=keys(args.input_pitch), input_roll=keys(args.input_roll),
        ref_eyeblink=getattr(args, "ref_eyeblink", None), ref_pose=getattr(args, "ref_pose", None),
        blink_rate=args.blink_rate, enhancer=args.enhancer, crf=args.crf, preset=args.preset, device=args.device,
        progress=not args.quiet and sys.stderr.isatty(), engine=args.engine, seed=args.seed, **extra)


def _run_animate(args: argparse.Namespace) -> int:
    from retalk.portrait import animate

    _set_checkpoints(args)
    check_paths(args.outfile, {"--image": args.image, "--audio": args.audio, "--ref-eyeblink": args.ref_eyeblink,
                               "--ref-pose": args.ref_pose}, args.checkpoints)
    res = animate(args.image, args.audio, args.outfile, _animate_options(args, recognize=not args.no_asr))
    print(f"{res.path}  ({res.frames} frames, {res.size[0]}x{res.size[1]}, {res.fps:.3f} fps, {res.duration:.2f} s)")
    return EXIT_OK


def _speech_voice(voice: str | None, lang: str | None) -> str:
    if voice and voice.startswith("+"):
        return (lang or "en-us") + voice
    return voice or lang or "en-us"


def check_say_target(args: argparse.Namespace) -> argparse.Namespace:
    """Refuse ``say`` flags that do not apply to its target (--face or --image); fill in the defaults of the rest.

    Raises :class:`InputError` naming the first such flag.
    """
    wrong, right = (PORTRAIT_ONLY, "--image") if args.face else (DUB_ONLY, "--face")
    target = "--face" if args.face else "--image"
    for dest, flag in wrong.items():
        if hasattr(args, dest):
            raise InputError(f"{flag} applies to {right}, not to {target}")
    if not args.face:
        for dest, flag in VRT_FLAGS.items():
            if hasattr(args, dest):
                raise InputError(f"{flag} applies to --face, not to --image")
    engine = getattr(args, "engine", None)
    if engine is not None:
        from retalk.engines import ENGINES

        allowed = sorted(ENGINES) if args.face else list(ANIMATE_ENGINES)
        if engine not in allowed:
            raise InputError(f"--engine {engine} does not apply to {target}: choose {', '.join(allowed)}")
    filled = {**DUB_DEFAULTS, **PORTRAIT_DEFAULTS}
    filled.update(vars(args))
    return argparse.Namespace(**filled)


def _run_say(args: argparse.Namespace) -> int:
    import tempfile

    from retalk.media import check_file, write_wav
    from retalk.media.sink import check_output
    from retalk.speech.tts import synthesize

    args = check_say_target(args)
    check_output(args.outfile)
    check_paths(args.outfile, {"--face": args.face, "--image": args.image, "--text-file": args.text_file},
                args.checkpoints)
    _set_checkpoints(args)
    if args.face:
        check_dub_checkpoints(args.engine, args.enhancer, engine_options(args))
    if args.text_file is not None:
        path = check_file(args.text_file, "text file")
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            raise InputError(f"{path}: cannot read the text ({type(exc).__name__}); give a UTF-8 text file") from None
    else:
        text = args.text
    with deferred_signals():  # espeak-ng calls back into Python, which would drop a Ctrl-C raised there
        speech = synthesize(text, voice=_speech_voice(args.voice, args.lang), rate_wpm=args.rate)
    with tempfile.TemporaryDirectory(prefix="retalk-say-") as tmp:
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, speech.samples, speech.sample_rate)
        if args.face:
            from retalk.pipeline import SyncOptions, sync

            opts = SyncOptions(engine=args.engine, fps=args.fps, face_index=args.face_index, box=args.box,
                               phones=speech.phones, expression_scale=args.expression_scale, crf=args.crf,
                               preset=args.preset, enhancer=args.enhancer, hold_repeats=args.hold_repeats,
                               device=args.device, progress=not args.quiet and sys.stderr.isatty(),
                               engine_options=engine_options(args))
            res = sync(args.face, wav, args.outfile, opts)
            size = ""
        else:
            from retalk.portrait import animate

            res = animate(args.image, wav, args.outfile, _animate_options(args, phones=speech.phones))
            size = f"{res.size[0]}x{res.size[1]}, "
    print(f"{res.path}  ({res.frames} frames, {size}{res.fps:.3f} fps, {res.duration:.2f} s)")
    return EXIT_OK


def _run_doctor(args: argparse.Namespace) -> int:
    from retalk.doctor import report

    _set_checkpoints(args)
    print(report())
    return EXIT_OK


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
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


class _Terminated(BaseException):
    """SIGTERM arrived: unwound like Ctrl-C, so every ``finally`` and ``with`` cleans up (no partial output)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run the ``retalk`` command line; return the exit status (see :mod:`retalk.errors`).

    SIGTERM (``kill``, a container stopping) is handled as Ctrl-C is: the partial output and temporary
    files are removed, and the exit status is 143 (128 + 15).
    """
    verbose = 0
    checkpoints_env = os.environ.get("RETALK_CHECKPOINTS")  # --checkpoints sets it for this run only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        verbose = args.verbose
        _configure_logging(verbose)
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        return _dispatch(parser, args)
    except RetalkError as exc:
        if verbose >= 2:
            log.exception("details")
        print(f"retalk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("retalk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print("retalk: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless asked for the traceback
        if verbose >= 2:
            raise
        print(f"retalk: internal error: {type(exc).__name__}: {exc} (run with -vv for details)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if checkpoints_env is None:
            os.environ.pop("RETALK_CHECKPOINTS", None)
        else:
            os.environ["RETALK_CHECKPOINTS"] = checkpoints_env
