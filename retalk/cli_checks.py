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


def _missing(name: str) -> CheckpointError | None:
    """The registry's missing-file error for checkpoint ``name``, or None when its file is there."""
    from retalk.checkpoints import resolve

    try:
        resolve(name)
    except CheckpointError as exc:
        return exc
    return None


def _videoretalking_missing(options: dict[str, Any]) -> CheckpointError | None:
    """The engine's own list of every missing release file, or None when all are there.

    A bad ``--exp-img`` is raised first (an :class:`InputError`): an option error comes before files.
    """
    from retalk.engines.videoretalking.engine import check_exp_img  # imports torch: only on this error path
    from retalk.engines.videoretalking.release import check_release

    exp_img = check_exp_img(str(options.get("exp_img", "neutral")))
    try:
        check_release(options.get("checkpoints"), up_face=str(options.get("up_face", "original")), exp_img=exp_img)
    except CheckpointError as exc:
        return exc
    return None


def check_dub_checkpoints(engine: str, enhancer: str | None, options: dict[str, Any]) -> None:
    """Raise one :class:`CheckpointError` naming every file a dub with ``engine`` and ``enhancer`` lacks.

    The pipeline builds the enhancer first and the engine while the video is analysed, so without this the
    user learns of one missing file per run. Each part is the registry's or the engine's own message (the
    files, the folder searched, where to get them). Skipped without PyTorch: the engine says to install it.
    """
    if importlib.util.find_spec("torch") is None:
        return
    problems: list[str] = []
    if engine == "wav2lip":
        missing = _missing("wav2lip")
        if missing is not None:
            problems.append(str(missing))
    enhancer_missing = _missing(enhancer.lower()) if enhancer else None
    if enhancer_missing is not None and engine == "videoretalking":
        release = _videoretalking_missing(options)
        if release is not None:  # its list names GFPGAN too (it restores every face with it)
            problems.append(str(release))
            enhancer_missing = None
    if enhancer_missing is not None:
        problems.append(f"--enhancer {enhancer}: {enhancer_missing}")
    if len(problems) == 1:
        raise CheckpointError(problems[0])
    if problems:
        raise CheckpointError(f"{len(problems)} checkpoints are missing: " + " | ".join(
            f"({k}) {text}" for k, text in enumerate(problems, 1)))
