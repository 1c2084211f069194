"""Released network checkpoints: one registry, one safe loading path.

>>> from retalk import checkpoints
>>> net = checkpoints.load("wav2lip")                  # ./checkpoints/wav2lip.pth
>>> net = checkpoints.load("syncnet", "weights/")      # a folder or a file

* :data:`REGISTRY` maps a name (``wav2lip``, ``lipsync_expert``, ``syncnet``,
  ``gfpgan``, ``fid_inception``; VideoReTalking's ``lnet``, ``enet``, ``dnet``,
  ``face3d``, ``gpen``, ``parsenet``, ``ganimation``; SadTalker's
  ``sadtalker_kp_extractor``, ``sadtalker_generator``, ``sadtalker_mapping``,
  ``sadtalker_audio2exp``, ``sadtalker_audio2pose`` and ``face3d`` again) to a
  :class:`CheckpointSpec`: network factory, release file names, how the
  release wraps its state dict (a key, a ``module.`` prefix, a bundle prefix,
  companion files beside it), and where users get it.
* :func:`load` reads with ``weights_only=True`` (or safetensors), unwraps,
  loads with ``strict=True`` and returns the network in eval mode.
* :func:`find_checkpoints` lists the release files present in a folder
  (for ``retalk doctor``).

Three modules, one job each: :mod:`~retalk.checkpoints.files` (where files are and which names
count), :mod:`~retalk.checkpoints.containers` (reading a file safely and unwrapping the release's
container), :mod:`~retalk.checkpoints.loading` (building the network and loading it strictly).

The search folder is ``./checkpoints`` unless ``$RETALK_CHECKPOINTS`` or an
explicit argument says otherwise.  Importing this package does not import
torch; loading without torch raises
:class:`~retalk.errors.MissingDependencyError`.
"""
from __future__ import annotations

from retalk.checkpoints.containers import read_state_dict, read_with_companions
from retalk.checkpoints.files import (
    DEFAULT_DIR,
    ENV_VAR,
    FoundCheckpoint,
    candidate_files,
    default_checkpoints_dir,
    find_checkpoints,
    resolve,
)
from retalk.checkpoints.loading import load
from retalk.checkpoints.registry import REGISTRY, CheckpointSpec, get_spec, names

__all__ = [
    "REGISTRY",
    "CheckpointSpec",
    "FoundCheckpoint",
    "DEFAULT_DIR",
    "ENV_VAR",
    "load",
    "resolve",
    "read_state_dict",
    "read_with_companions",
    "find_checkpoints",
    "default_checkpoints_dir",
    "candidate_files",
    "get_spec",
    "names",
]
