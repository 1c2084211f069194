"""argparse building blocks shared by the ``retalk`` subcommands.

* :class:`Parser`: an ``ArgumentParser`` whose errors are one line (``retalk: error: …``, exit 2);
* :func:`add_flag`: one option in the dash style, its underscore spellings (SadTalker's,
  VideoReTalking's) accepted as hidden aliases;
* :class:`ListVoices`: ``say --list-voices`` (prints and exits, like ``--version``);
* checked value types (:func:`crf`, :func:`expression_scale`, :func:`fps`, :func:`blink_rate`,
  :func:`face_index`, :func:`device`, :func:`box`, :func:`positive`) and the choices of ``--engine``,
  ``--enhancer`` and ``--preset``, read from their registries.

Nothing here imports torch, mediapipe or PyAV.
"""
from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from retalk.errors import EXIT_BAD_INPUT, EXIT_OK, RetalkError

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
"""x264's speed presets, fastest first (``--preset``)."""

CRF_RANGE = (0, 51)
"""Valid H.264 CRF values for 8-bit x264 (0 lossless, 51 worst)."""

EXPRESSION_SCALE_RANGE = (0.0, 3.0)
"""Valid ``--expression-scale`` values, inclusive (as :data:`retalk.pipeline.EXPRESSION_SCALE_RANGE` and
``animate``'s check; kept here so the parser needs no heavy import)."""

FPS_RANGE = (1.0, 240.0)
"""Valid ``--fps`` values, inclusive (frames per second; as :func:`retalk.media.probe_video` trusts a file's rate)."""

BLINK_RATE_RANGE = (1.0, 120.0)
"""Valid ``--blink-rate`` values, inclusive (blinks per minute; people blink about 10-30 times a minute)."""

_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


_COULD_MATCH = re.compile(r"(could match )(.*)$")


def _shown_names(message: str) -> str:
    """``message`` with hidden underscore aliases (``--face_index``) named by their shown dash spelling, once."""
    def dashes(m: re.Match[str]) -> str:
        names = [n.strip().replace("_", "-") for n in m.group(2).split(",")]
        return m.group(1) + ", ".join(dict.fromkeys(names))

    return _COULD_MATCH.sub(dashes, message)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-parsers of ``parser`` by command name (empty when it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _shown_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The long options ``parser`` shows in its help (hidden aliases left out)."""
    return [o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings if o.startswith("--")]


def unrecognized(extras: Sequence[str], command: str | None, parser: argparse.ArgumentParser) -> str:
    """The error for arguments ``command`` does not take: for each unknown flag, the commands that do take it
    or the closest flag of this command (``did you mean --outfile?``)."""
    subs = _subcommands(parser)
    hints = []
    for word in extras:
        if not word.startswith("--"):
            continue
        flag = word.split("=", 1)[0].replace("_", "-")
        owners = [f"retalk {name}" for name, sub in subs.items() if name != command and flag in _shown_flags(sub)]
        mine = _shown_flags(subs[command]) if command in subs else _shown_flags(parser)
        close = difflib.get_close_matches(flag, mine, n=1, cutoff=0.75)
        if flag in mine:
            continue
        if owners:
            hints.append(f"{flag} is a flag of {', '.join(owners)}" + (f", not of retalk {command}" if command else ""))
        elif close:
            hints.append(f"did you mean {close[0]}?")
    text = f"unrecognized arguments: {' '.join(extras)}"
    return text + ("; " + "; ".join(hints) if hints else "")


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit with :data:`EXIT_BAD_INPUT`.

    An argument the chosen command does not take is reported by that command (``see 'retalk sync --help'``),
    with the commands that do take it or the closest flag it has; hidden underscore aliases are never named.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"retalk: error: {_shown_names(message)} (see '{self.prog} --help')\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            reporter = _subcommands(self).get(command, self) if command else self
            reporter.error(unrecognized(extras, command, self))
        return parsed


def add_flag(container: Any, *names: str, **kwargs: Any) -> argparse.Action:
    """Add an option to ``container`` (a parser or group); names with ``_`` become hidden aliases.

    ``add_flag(p, "--pose-style", "--pose_style", type=int, default=0)`` shows ``--pose-style``
    in the help and accepts ``--pose_style`` as the same option. Returns the shown option's action.
    """
    shown = [n for n in names if "_" not in n]
    aliases = [n for n in names if "_" in n]
    if not shown:
        raise ValueError(f"{names}: give the dash spelling first")
    action = container.add_argument(*shown, **kwargs)
    if aliases:
        hidden = {k: v for k, v in kwargs.items() if k not in ("help", "default", "required")}
        hidden["dest"] = action.dest
        container.add_argument(*aliases, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **hidden)
    return action


def crf(text: str) -> int:
    """``--crf``: a whole number in :data:`CRF_RANGE`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    lo, hi = CRF_RANGE
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"{value} is out of range: choose {lo} (lossless) to {hi} (worst)")
    return value


def expression_scale(text: str) -> float:
    """``--expression-scale``: a number in :data:`EXPRESSION_SCALE_RANGE`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    lo, hi = EXPRESSION_SCALE_RANGE
    if not lo <= value <= hi:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text} is out of range: choose {lo:g} to {hi:g} (1 = natural)")
    return value


def _number_in(text: str, lo: float, hi: float, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not lo <= value <= hi:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text} is out of range: choose {lo:g} to {hi:g} {unit}")
    return value


def fps(text: str) -> float:
    """``--fps``: frames per second in :data:`FPS_RANGE`."""
    return _number_in(text, *FPS_RANGE, "frames per second")


def blink_rate(text: str) -> float:
    """``--blink-rate``: blinks per minute in :data:`BLINK_RATE_RANGE`."""
    return _number_in(text, *BLINK_RATE_RANGE, "blinks per minute")


def _whole(text: str, minimum: int, below: str) -> int:
    """``text`` as a whole number of at least ``minimum``; ``below`` (formatted with ``value``) says why not."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(below.format(value=value))
    return value


def face_index(text: str) -> int:
    """``--face-index``: 0 (the leftmost face) or more."""
    return _whole(text, 0, "{value}: faces are counted from the left, starting at 0")


def device(text: str) -> str | None:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (returned lower-case), or ``auto`` (None)."""
    value = text.strip().lower()
    if value == "auto":
        return None
    if not _DEVICE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    return value


def box(text: str) -> tuple[float, float, float, float]:
    """``--box``: four pixel coordinates X0 Y0 X1 Y1 (spaces or commas)."""
    try:
        parts = [float(p) for p in text.replace(",", " ").split()]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("--box takes four numbers: X0 Y0 X1 Y1 (pixels)")
    if not (parts[2] > parts[0] and parts[3] > parts[1]):
        raise argparse.ArgumentTypeError(f"{text!r}: X0 Y0 is the top-left corner and X1 Y1 the bottom-right one, "
                                         f"so X1 > X0 and Y1 > Y0")
    return parts[0], parts[1], parts[2], parts[3]


def positive(text: str) -> int:
    """A whole number of at least 1."""
    return _whole(text, 1, "must be at least 1, got {value}")


def engine_names() -> list[str]:
    """The ``--engine`` choices: every name in :data:`retalk.engines.ENGINES`."""
    from retalk.engines import ENGINES

    return sorted(ENGINES)


def engine_help(what: str) -> str:
    """``--engine`` help: ``what`` and each engine's one-line description, from the registry."""
    from retalk.engines import ENGINES

    return f"{what}: " + "; ".join(f"{s.name}: {s.description}" for s in ENGINES.values())


def enhancer_names() -> Sequence[str]:
    """The ``--enhancer`` choices (:data:`retalk.enhance.ENHANCERS`)."""
    from retalk.enhance import ENHANCERS

    return ENHANCERS


def add_engine(p: argparse.ArgumentParser, what: str, default: Any = "builtin") -> None:
    """``--engine NAME`` with the registry's names as choices."""
    p.add_argument("--engine", default=default, choices=engine_names(), metavar="NAME",
                   help=engine_help(what) + " (default builtin)")


def add_device(p: argparse.ArgumentParser, what: str) -> None:
    """``--device``: where neural networks run."""
    p.add_argument("--device", type=device, default=None, metavar="DEV",
                   help=f"device for {what}: cpu, cuda or cuda:N (default auto: the first CUDA GPU if PyTorch "
                        f"sees one, else the CPU); the builtin engine always runs on the CPU")


class ListVoices(argparse.Action):
    """``--list-voices``: print the installed espeak-ng voices and exit (like ``--version``)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from retalk.speech.tts import list_voices

        try:
            voices = list_voices()
        except RetalkError as exc:
            parser.exit(exc.exit_code, f"retalk: error: {exc}\n")
        print("\n".join(voices))
        parser.exit(EXIT_OK)
