"""Which released files ``--engine sadtalker`` needs, where they are, and one message for all that are missing.

SadTalker's networks come from one of two layouts in the checkpoints folder (as the reference's
``init_path`` chooses them):

* **bundle** (current release): ``SadTalker_V0.0.2_256.safetensors`` or ``_512`` (``--size``) holds the
  key-point extractor, the face renderer, audio-to-expression, audio-to-pose and the 3DMM network;
* **legacy** (256 only): ``facevid2vid_00189-model.pth.tar`` (key points + renderer),
  ``auido2exp_00300-model.pth``, ``auido2pose_00140-model.pth`` and ``epoch_20.pth`` (3DMM).

Beside them: the mapping net chosen by ``--preprocess`` (``mapping_00229-model.pth.tar`` for
crop/extcrop/resize, ``mapping_00109-model.pth.tar`` for full/extfull, at both sizes), the 3DMM
alignment landmarks ``similarity_Lm3D_all.mat`` (in ``BFM/``, ``BFM_Fitting/`` or the folder
itself) and, for ``--enhancer gfpgan``, the GFPGAN weights. :func:`find_files` returns them all
as a frozen :class:`SadTalkerFiles` or raises one :class:`CheckpointError` naming every missing
file, the folder searched and where users get it. Nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retalk.errors import CheckpointError

__all__ = ["RELEASE", "LM3D_FILE", "SIZES", "PREPROCESS_MODES", "SadTalkerFiles", "bundle_name", "mapping_name",
           "find_files", "describe"]

RELEASE = "https://github.com/OpenTalker/SadTalker/releases (tag v0.0.2-rc; legacy .pth files: tag v0.0.2)"
"""Where users get the SadTalker checkpoints (``scripts/download_models.sh`` of the SadTalker repository)."""

LM3D_SOURCE = "SadTalker's repository (src/config/similarity_Lm3D_all.mat) or VideoReTalking's BFM.zip"
LM3D_FILE = "similarity_Lm3D_all.mat"
LM3D_FOLDERS = ("BFM", "BFM_Fitting", ".")
"""Sub-folders of the checkpoints folder searched for :data:`LM3D_FILE`, in order."""

SIZES = (256, 512)
PREPROCESS_MODES = ("crop", "extcrop", "resize", "full", "extfull")

LEGACY = {
    "sadtalker_kp_extractor": "facevid2vid_00189-model.pth.tar",
    "sadtalker_generator": "facevid2vid_00189-model.pth.tar",
    "sadtalker_audio2exp": "auido2exp_00300-model.pth",
    "sadtalker_audio2pose": "auido2pose_00140-model.pth",
    "face3d": "epoch_20.pth",
}
"""Registry name → legacy file (the spelling ``auido`` is the release's)."""

NETWORKS = tuple(LEGACY)
"""The registry names loaded from the bundle (or the legacy files)."""


def bundle_name(size: int) -> str:
    """The bundle file for ``--size`` (256 or 512)."""
    return f"SadTalker_V0.0.2_{int(size)}.safetensors"


def mapping_name(preprocess: str) -> str:
    """The mapping-net file for ``--preprocess``: the 73-channel net for full/extfull, else the 70-channel one."""
    return "mapping_00109-model.pth.tar" if "full" in preprocess else "mapping_00229-model.pth.tar"


@dataclass(frozen=True)
class SadTalkerFiles:
    """Every file one SadTalker run loads (absolute paths).

    ``networks``: registry name → file (the bundle for all five, or the legacy files);
    ``mapping``: the mapping-net file; ``lm3d_dir``: the folder holding :data:`LM3D_FILE`;
    ``gfpgan``: the enhancer's weights (None unless asked for); ``layout``: ``"bundle"`` or ``"legacy"``.
    """

    networks: dict[str, Path]
    mapping: Path
    lm3d_dir: Path
    gfpgan: Path | None
    layout: str


GFPGAN_FOLDERS = (".", "../gfpgan/weights")
"""Where the GFPGAN weights are looked for, relative to the checkpoints folder (SadTalker keeps them in
``gfpgan/weights/`` beside ``checkpoints/``)."""


def _gfpgan_file(folder: Path) -> Path | None:
    from retalk.checkpoints import resolve

    for sub in GFPGAN_FOLDERS:
        if (folder / sub).is_dir():
            try:
                return resolve("gfpgan", folder / sub)
            except CheckpointError:
                pass
    return None


def _gfpgan_wanted() -> tuple[str, str]:
    from retalk.checkpoints import get_spec

    spec = get_spec("gfpgan")
    return " or ".join(spec.files), spec.source


def find_files(folder: str | Path, size: int = 256, preprocess: str = "crop",
               enhancer: str | None = None) -> SadTalkerFiles:
    """The files for one run, or one :class:`CheckpointError` listing every missing file.

    Args:
        folder: the checkpoints folder (``--checkpoints``, ``$RETALK_CHECKPOINTS`` or ``./checkpoints``).
        size: ``--size`` (256 or 512): which bundle; the legacy files are 256 only.
        preprocess: ``--preprocess``: which mapping file.
        enhancer: ``--enhancer`` (``gfpgan``) or None.
    """
    folder = Path(folder).expanduser()
    missing: list[str] = []
    bundle = folder / bundle_name(size)
    layout = "bundle"
    networks: dict[str, Path] = {}
    if bundle.is_file():
        networks = {name: bundle for name in NETWORKS}
    else:
        legacy = {name: folder / f for name, f in LEGACY.items()}
        absent = sorted({p.name for p in legacy.values() if not p.is_file()})
        if int(size) == 256 and not absent:
            networks, layout = legacy, "legacy"
        elif int(size) == 256:
            everything = sorted(set(LEGACY.values()))
            missing.append(f"{bundle.name} (or the legacy files {', '.join(everything)}"
                           + (f"; of those {', '.join(absent)} absent)" if len(absent) < len(everything) else ")"))
        else:
            missing.append(f"{bundle.name} (the legacy .pth files are 256 px only)")
    mapping = folder / mapping_name(preprocess)
    if not mapping.is_file():
        missing.append(f"{mapping.name} (the mapping net for --preprocess {preprocess})")
    lm3d_dir = next((folder / sub for sub in LM3D_FOLDERS if (folder / sub / LM3D_FILE).is_file()), None)
    if lm3d_dir is None:
        missing.append(f"{LM3D_FILE} (in {', '.join(s + '/' for s in LM3D_FOLDERS if s != '.')} or the folder itself; "
                       f"from {LM3D_SOURCE})")
    gfpgan = None
    if enhancer:
        gfpgan = _gfpgan_file(folder)
        if gfpgan is None:
            wanted, source = _gfpgan_wanted()
            missing.append(f"{wanted} (for --enhancer {enhancer}, also looked for in ../gfpgan/weights/; "
                           f"from {source})")
    if missing:
        raise CheckpointError(
            f"--engine sadtalker is missing {len(missing)} file(s) in {folder.resolve()}: " + "; ".join(missing)
            + f". Get the SadTalker files from {RELEASE} and put them there "
              f"(or point --checkpoints / $RETALK_CHECKPOINTS at the folder that has them)")
    assert lm3d_dir is not None
    return SadTalkerFiles({k: v.resolve() for k, v in networks.items()}, mapping.resolve(), lm3d_dir.resolve(),
                          gfpgan.resolve() if gfpgan is not None else None, layout)


def describe(folder: str | Path) -> list[str]:
    """Lines for ``retalk doctor``: for each size and mapping, whether ``--engine sadtalker`` has its files."""
    lines = []
    for size in SIZES:
        for pre in ("crop", "full"):
            try:
                found = find_files(folder, size, pre)
                state = f"ready ({found.layout} files)"
            except CheckpointError as exc:
                state = "missing " + str(exc).split(": ", 1)[1].split(". Get", 1)[0]
            modes = "crop/extcrop/resize" if pre == "crop" else "full/extfull"
            lines.append(f"  sadtalker --size {size} --preprocess {modes}: {state}")
    return lines
