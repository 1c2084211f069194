"""``retalk doctor``: what is installed, which checkpoints are found (and whether each one loads), which device.

Every checkpoint found is opened the way it will be used (:func:`retalk.checkpoints.load`: weights-only
``torch.load`` or safetensors, unwrapped, keys and shapes checked strictly against its registered
network) and reported as ``OK`` or the one-line reason it would be rejected.
"""
from __future__ import annotations

import importlib
import platform
from pathlib import Path

_PACKAGES = ["numpy", "cv2", "av", "mediapipe", "scipy", "skimage", "pocketsphinx", "espeakng_loader", "torch",
             "safetensors", "ray"]


_DISTRIBUTIONS = {"cv2": "opencv-contrib-python", "skimage": "scikit-image", "espeakng_loader": "espeakng-loader"}


def _import_problem(exc: BaseException, name: str) -> str:
    """``not installed`` when ``name`` itself is missing, else the real error, on one line."""
    if isinstance(exc, ModuleNotFoundError) and exc.name is not None and exc.name.split(".")[0] == name:
        return "not installed"
    text = " ".join(str(exc).split())
    return f"broken: {type(exc).__name__}: {text[:200]}"


def _version(name: str) -> str:
    from importlib import metadata

    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"; say which
        return _import_problem(exc, name)
    try:
        return metadata.version(_DISTRIBUTIONS.get(name, name))
    except metadata.PackageNotFoundError:
        return "installed"


def _engines(found: set[str], usable: set[str] | None = None) -> list[str]:
    """One line per registered engine: name, description, its checkpoints (found, unusable or missing); plugins
    are imported so that a broken one shows its error.  ``usable``: the names of ``found`` that load (None: all)."""
    from retalk.engines import ENGINES

    lines = []
    for spec in ENGINES.values():
        state = ""
        if spec.checkpoints:
            def word(c: str) -> str:
                if c not in found:
                    return "missing"
                return "found" if usable is None or c in usable else "found but unusable (see below)"

            state = "; checkpoints: " + ", ".join(f"{_files(c)} {word(c)}" for c in spec.checkpoints)
        if spec.origin != "retalk":
            try:
                spec.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not raised
                state += f"; broken: {' '.join(str(exc).split())[:200]}"
        lines.append(f"  {spec.name:15s} {spec.description}{state}")
    return lines


def _files(name: str) -> str:
    """The release file names of registry entry ``name`` (``wav2lip.pth or wav2lip_gan.pth``; two at most)."""
    from retalk.checkpoints import get_spec

    try:
        files = get_spec(name).files
        return " or ".join(files[:2]) + (" or …" if len(files) > 2 else "")
    except Exception:  # noqa: BLE001 - a plugin naming an unknown entry: show the name
        return name


# Release files not covered by the videoretalking and sadtalker sections: registry name -> what uses it.
_OTHER_USES = {"wav2lip": "sync --engine wav2lip", "gfpgan": "--enhancer gfpgan",
               "syncnet": "eval: LSE-D/LSE-C", "fid_inception": "eval: FID/KID"}


def _other_files(found: set[str], usable: set[str] | None) -> list[str]:
    """Lines for the release files of :data:`_OTHER_USES`: found (usable or not), or missing with where to get
    them.  ``usable``: the names of ``found`` that load (None: not checked)."""
    from retalk.checkpoints import get_spec

    lines = []
    for name, use in _OTHER_USES.items():
        spec = get_spec(name)
        if name not in found:
            state = f"missing; get it from {spec.source}"
        else:
            state = "found" if usable is None or name in usable else "found but unusable (see above)"
        lines.append(f"  {_files(name):38s} ({use}) {state}")
    return lines


def check_checkpoint(name: str, path: Path) -> str:
    """``OK`` when ``path`` loads into registered network ``name``, else the one-line reason it does not.

    A network retalk does not implement yet is only opened safely and unwrapped (its keys cannot be checked).
    """
    from retalk.checkpoints import get_spec, load, read_state_dict
    from retalk.errors import RetalkError

    try:
        spec = get_spec(name)
        if not spec.implemented:
            n = len(read_state_dict(spec, Path(path)))
            return f"opened ({n} tensors); keys not checked: the '{name}' network is not in retalk yet"
        load(name, path)
        return "OK"
    except RetalkError as exc:
        return " ".join(str(exc).split())


def report(check: bool = True) -> str:
    """A human-readable report, one fact per line; ``check``: open every checkpoint found (see the module doc)."""
    from retalk import __version__

    lines = [f"retalk {__version__} on Python {platform.python_version()} ({platform.machine()})", "", "packages:"]
    for name in _PACKAGES:
        lines.append(f"  {name:16s} {_version(name)}")
    lines.append("")
    device = "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        problem = _import_problem(exc, "torch")
        device = (f"cpu (torch {problem}: neural engines unavailable; pip install 'retalk[neural]')"
                  if problem == "not installed" else f"cpu (torch {problem})")
    lines.append(f"device for neural engines: {device} (choose with --device)")
    from retalk.checkpoints import default_checkpoints_dir, find_checkpoints

    ckdir = Path(default_checkpoints_dir())
    found = find_checkpoints(ckdir) if ckdir.is_dir() else []
    checks = [check_checkpoint(item.name, Path(item.path)) if check else "" for item in found]
    usable = {item.name for item, state in zip(found, checks) if state == "OK"} if check else None
    lines += ["", "engines (--engine):"] + _engines({item.name for item in found}, usable) + [""]
    where = "" if ckdir.is_dir() else ", which does not exist"
    lines.append(f"checkpoints folder: {ckdir.resolve()}{where} (set with --checkpoints or RETALK_CHECKPOINTS)")
    if not found:
        lines.append("  (no released checkpoints found; the built-in engine needs none)")
    for item, state in zip(found, checks):
        lines.append(f"  {item.name:15s} {Path(item.path).name:28s} {item.size / 1e6:9.1f} MB  sha256 {item.sha256}"
                     + (f"  {state}" if state else ""))
    from retalk.engines.videoretalking.release import release_report
    from retalk.sadtalker.files import describe

    lines += ["", "other release files (in the checkpoints folder):"]
    lines += _other_files({item.name for item in found}, usable)
    lines += [""] + release_report(ckdir)
    lines += ["", "animate --engine sadtalker (files in the checkpoints folder):"] + describe(ckdir)
    return "\n".join(lines)
