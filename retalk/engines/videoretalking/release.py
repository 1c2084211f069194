"""Which release files the VideoReTalking engine needs, where they were looked for, which are missing.

One check (:func:`check_release`) lists *every* missing file in one message, with the folder searched
and where users get each file, so a user fixes them all at once instead of one per run.
``retalk doctor`` prints the same list (:func:`release_report`). Nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retalk.checkpoints import candidate_files, default_checkpoints_dir, get_spec
from retalk.errors import CheckpointError

__all__ = ["ReleaseFiles", "REQUIRED_NETWORKS", "UP_FACE_NETWORK", "BFM_FILE", "EXPRESSION_FILE", "RELEASE_URL",
           "find_release", "check_release", "release_report"]

RELEASE_URL = "https://github.com/vinthony/video-retalking/releases/download/v0.0.1/"
"""Where the VideoReTalking authors publish every file below (``quick_demo.ipynb``)."""

#: Registry names of the networks every run loads (D-Net, L-Net, E-Net, 3DMM regressor, GPEN, ParseNet, GFPGAN).
REQUIRED_NETWORKS = ("dnet", "lnet", "enet", "face3d", "gpen", "parsenet", "gfpgan")
#: The network ``--up-face surprise|angry`` loads (GANimation).
UP_FACE_NETWORK = "ganimation"
#: The standard 3-D landmarks (``lm``) the coefficient alignment reads, inside ``BFM/`` (or beside the networks).
BFM_FILE = "similarity_Lm3D_all.mat"
#: The expression templates (``expression_center`` = neutral, ``expression_mouth`` = smile).
EXPRESSION_FILE = "expression.mat"

_BFM_SOURCE = RELEASE_URL + "BFM.zip (unzip it into the checkpoints folder as BFM/)"
_EXPRESSION_SOURCE = RELEASE_URL + EXPRESSION_FILE


@dataclass(frozen=True)
class ReleaseFiles:
    """The files one run uses: ``networks`` maps a registry name to its file; ``bfm`` and ``expression``
    are the data files (``expression`` is None when the template comes from the user's image)."""

    folder: Path
    networks: dict[str, Path]
    bfm: Path
    expression: Path | None


def _network_file(name: str, folder: Path) -> Path | None:
    for fname in candidate_files(get_spec(name)):
        if (folder / fname).is_file():
            return folder / fname
    return None


def _bfm_file(folder: Path) -> Path | None:
    for path in (folder / "BFM" / BFM_FILE, folder / BFM_FILE):
        if path.is_file():
            return path
    return None


def _expression_file(folder: Path) -> Path | None:
    for path in (folder / "BFM" / EXPRESSION_FILE, folder / EXPRESSION_FILE):
        if path.is_file():
            return path
    return None


def needed(up_face: str = "original", exp_img: str = "neutral") -> list[str]:
    """Registry names and data-file names a run with these options needs, in the order they are reported."""
    names = list(REQUIRED_NETWORKS)
    if up_face != "original":
        names.append(UP_FACE_NETWORK)
    names.append("BFM/" + BFM_FILE)
    if exp_img in ("neutral", "smile"):
        names.append(EXPRESSION_FILE)
    return names


def find_release(folder: str | Path | None = None, up_face: str = "original",
                 exp_img: str = "neutral") -> tuple[ReleaseFiles | None, list[tuple[str, str]]]:
    """Look for every file a run needs in ``folder`` (default: ``$RETALK_CHECKPOINTS`` or ``./checkpoints``).

    Returns:
        ``(files, missing)``: ``files`` when nothing is missing (else None), and per missing file
        ``(file name, where users get it)``.
    """
    root = default_checkpoints_dir(folder)
    networks: dict[str, Path] = {}
    missing: list[tuple[str, str]] = []
    bfm = expression = None
    for item in needed(up_face, exp_img):
        if item.startswith("BFM/"):
            bfm = _bfm_file(root)
            if bfm is None:
                missing.append((item, _BFM_SOURCE))
        elif item == EXPRESSION_FILE:
            expression = _expression_file(root)
            if expression is None:
                missing.append((item, _EXPRESSION_SOURCE))
        else:
            found = _network_file(item, root)
            if found is None:
                spec = get_spec(item)
                missing.append((spec.files[0], spec.source))
            else:
                networks[item] = found
    if missing or bfm is None:
        return None, missing
    return ReleaseFiles(root, networks, bfm, expression), missing


def check_release(folder: str | Path | None = None, up_face: str = "original",
                  exp_img: str = "neutral") -> ReleaseFiles:
    """The files of a run; one :class:`CheckpointError` listing every missing file if any is missing."""
    files, missing = find_release(folder, up_face, exp_img)
    if files is None:
        root = default_checkpoints_dir(folder).resolve()
        listed = "; ".join(f"{name} (get it from {source})" for name, source in missing)
        raise CheckpointError(
            f"the videoretalking engine is missing {len(missing)} file(s) in {root}: {listed}. "
            f"Put them there, or point --checkpoints / $RETALK_CHECKPOINTS at the folder that has them")
    return files


def release_report(folder: str | Path | None = None) -> list[str]:
    """Lines for ``retalk doctor``: each file the engine can use, found (with its path) or missing (with its source)."""
    root = default_checkpoints_dir(folder)
    lines = [f"videoretalking files (in {root.resolve()}):"]
    for item in needed("surprise", "neutral"):
        optional = " (only for --up-face surprise|angry)" if item == UP_FACE_NETWORK else ""
        if item.startswith("BFM/"):
            path, name, source = _bfm_file(root), item, _BFM_SOURCE
        elif item == EXPRESSION_FILE:
            path = _expression_file(root)
            name, source = item, _EXPRESSION_SOURCE + " (not needed with --exp-img IMAGE)"
        else:
            spec = get_spec(item)
            path, name, source = _network_file(item, root), spec.files[0], spec.source
        state = f"found: {path}" if path is not None else f"missing; get it from {source}"
        lines.append(f"  {name:30s} {state}{optional}")
    return lines
