"""Random-weight checkpoint files written in a release's container format, for end-to-end tests.

``write_release("lnet", folder)`` builds the registered network, fills it with seeded values
(:func:`_golden.seeded_state`: numpy, independent of torch's RNG) and saves it the way the
release stores it: wrapped in the spec's first ``state_keys`` entry, optionally with a
``module.`` prefix, or added to a flat ``.safetensors`` bundle under the spec's
``select_prefix``.  Companion files (E-Net's L-Net) are not written implicitly: write both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from _golden import seeded_state


def seeded_release_state(name: str, seed: int = 0, **build_kwargs: Any) -> dict[str, Any]:
    """The state dict (torch tensors, network key names) of a seeded network ``name``."""
    import torch

    from retalk.checkpoints import get_spec

    spec = get_spec(name)
    model = spec.factory(**build_kwargs) if build_kwargs else spec.build()
    own = model.state_dict()
    values = seeded_state([(k, tuple(v.shape), bool(v.is_floating_point())) for k, v in own.items()], seed)
    return {k: (torch.from_numpy(values[k]) if k in values else v.clone()) for k, v in own.items()}


def write_release(name: str, folder: str | Path, *, seed: int = 0, file: str | None = None,
                  module_prefix: bool = False, **build_kwargs: Any) -> Path:
    """Write a random-weight release file for registry entry ``name`` into ``folder``.

    Args:
        name: registry name.
        folder: destination folder (created).
        seed: seed of the weights.
        file: file name (default: the spec's first release file).  A ``.safetensors`` name for a
            spec with ``select_prefix`` is treated as a bundle: the keys are added to the file.
        module_prefix: prefix every key with ``module.`` (DataParallel-saved releases).
        build_kwargs: constructor arguments (e.g. ``coeff_nc=73``).

    Returns:
        The path written.
    """
    import torch

    from retalk.checkpoints import get_spec

    spec = get_spec(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (file or spec.files[0])
    state = seeded_release_state(name, seed, **build_kwargs)
    if module_prefix:
        state = {"module." + k: v for k, v in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file, save_file

        bundle = load_file(str(path)) if path.exists() else {}
        bundle.update({spec.select_prefix + k: v.contiguous() for k, v in state.items()})
        save_file(bundle, str(path))
        return path
    obj: Any = {spec.state_keys[0]: state} if spec.state_keys else state
    torch.save(obj, path)
    return path
