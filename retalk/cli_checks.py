"""Checks the ``retalk`` commands make before any work.

* :func:`check_paths`: the ``--checkpoints`` folder exists, and ``--outfile`` is none of the inputs
  (the finished file would replace the user's footage);
* :func:`check_dub_checkpoints`: every checkpoint file a dub needs (engine and ``--enhancer``) named in one
  :class:`~retalk.errors.CheckpointError`, instead of one file per run.

Nothing here imports torch, mediapipe or PyAV at import time.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from retalk.errors import CheckpointError, InputError


def check_paths(outfile: str | Path, inputs: dict[str, str | Path | None], checkpoints: str | None = None) -> None:
    """Raise :class:`InputError` for a ``--checkpoints`` folder that does not exist or an output that is an input.

    ``inputs`` maps each input flag (``--face``) to the path given (None: not given).
    """
    if checkpoints:
        folder = Path(checkpoints).expanduser()
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "folder not found"
            raise InputError(f"--checkpoints {checkpoints}: {what}")
    from retalk.media.sink import check_not_an_input

    check_not_an_input(outfile, inputs)


def _engine_problem(engine: str, options: dict[str, Any]) -> CheckpointError | None:
    """The missing-file error of a registered neural ``engine``, or None (all there, or nothing to check)."""
    try:
        if engine == "wav2lip":
            from retalk.checkpoints import resolve

            resolve("wav2lip")
        elif engine == "videoretalking":
            from retalk.engines.videoretalking.release import check_release

            exp_img = str(options.get("exp_img", "neutral"))
            check_release(options.get("checkpoints"), up_face=str(options.get("up_face", "original")),
                          exp_img=exp_img)
    except CheckpointError as exc:
        return exc
    return None


def check_dub_checkpoints(engine: str, enhancer: str | None, options: dict[str, Any]) -> None:
    """Raise one :class:`CheckpointError` naming every file a dub with ``engine`` and ``enhancer`` lacks.

    Each part names the files, the folder searched and where to get them (the engines' own messages).
    Skipped without PyTorch: then that is the first thing to install (the engine says so).
    """
    if importlib.util.find_spec("torch") is None:
        return
    problems = []
    engine_problem = _engine_problem(engine, options)
    if engine_problem is not None:
        problems.append(str(engine_problem))
    # videoretalking's own list already holds GFPGAN (it restores every face with it)
    if enhancer and engine != "videoretalking":
        from retalk.checkpoints import resolve

        try:
            resolve(enhancer.lower())
        except CheckpointError as exc:
            problems.append(f"--enhancer {enhancer}: {exc}")
    if len(problems) == 1:
        raise CheckpointError(problems[0])
    if problems:
        raise CheckpointError(f"{len(problems)} checkpoints are missing: " + " | ".join(
            f"({k}) {text}" for k, text in enumerate(problems, 1)))
