"""The one registry of lip-sync engines: :data:`ENGINES` and :func:`create_engine`.

Each engine is an :class:`EngineSpec` naming its class as ``"module:Class"``;
the module is imported only when the engine is created, so this package (and
``retalk --help``) never imports torch or mediapipe.

Third-party packages add engines through the entry-point group
``retalk.engines`` (see :data:`ENTRY_POINT_GROUP`), in their ``pyproject.toml``::

    [project.entry-points."retalk.engines"]
    myengine = "mypackage.engine:MyEngine"

The class subclasses :class:`retalk.engines.base.Engine`. Plugins are listed
from the installed packages' metadata when this package is imported and
imported only when chosen; a malformed or clashing entry is left out with a
warning naming it, and one that fails to import is an error only when chosen.

Engine options are the keyword parameters of the class's constructor (a
catch-all ``**kwargs`` does not make a misspelled option valid). ``device``
(``"cpu"``, ``"cuda"``, ``"cuda:N"``; None = automatic) may be given to every
engine: one whose constructor does not take it runs on the CPU and ignores it.
"""
from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from retalk.errors import InputError

if TYPE_CHECKING:
    from retalk.engines.base import Engine

__all__ = ["ENGINES", "ENTRY_POINT_GROUP", "EngineSpec", "create_engine", "discover", "engine_class"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "retalk.engines"
"""The entry-point group third-party engines register in (``name = "module:Class"``)."""

#: The option every engine accepts (engines without a ``device`` parameter ignore it).
COMMON_OPTIONS = ("device",)


@dataclass(frozen=True)
class EngineSpec:
    """One engine: its name, where its class lives, what it needs.

    Attributes:
        name: the ``--engine`` name, e.g. ``"wav2lip"``.
        target: ``"module:Class"``, imported on first use.
        checkpoints: names in :data:`retalk.checkpoints.REGISTRY` the engine loads (empty: no weights).
        description: one line for ``--help`` and ``retalk doctor``.
        needs_phones: whether the engine uses recognized phones (the pipeline skips the phone
            recognizer for engines that do not).
        observes: whether the engine watches the analysis pass (:meth:`Engine.observe`); one that
            does not is built in the background while that pass runs (its start-up overlaps it).
        origin: ``"retalk"`` for the engines shipped here, else the distribution that registered it.
    """

    name: str
    target: str
    checkpoints: tuple[str, ...] = ()
    description: str = ""
    needs_phones: bool = True
    observes: bool = True
    origin: str = "retalk"

    def load(self) -> type[Engine]:
        """Import and return the engine class; :class:`InputError` (naming the engine) if that fails."""
        from retalk.engines.base import Engine
        from retalk.errors import RetalkError

        module_name, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except RetalkError:  # e.g. MissingDependencyError: already one line for the user
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to import a plugin is reported, with its cause
            if self.origin == "retalk":
                raise
            raise InputError(f"engine {self.name!r} (from {self.origin}) cannot be loaded: "
                             f"{type(exc).__name__}: {exc}") from exc
        if not (isinstance(obj, type) and issubclass(obj, Engine)):
            raise InputError(f"engine {self.name!r} (from {self.origin}): {self.target} is not a "
                             f"retalk.engines.base.Engine subclass")
        return obj


_BUILTIN: tuple[EngineSpec, ...] = (
    EngineSpec("builtin", "retalk.engines.builtin.engine:BuiltinEngine",
               description="mouths from the video itself, CPU only, no weights", needs_phones=True),
    EngineSpec("wav2lip", "retalk.engines.wav2lip:Wav2LipEngine", checkpoints=("wav2lip",),
               description="the released Wav2Lip generator (needs retalk[neural] and wav2lip_gan.pth or wav2lip.pth)",
               needs_phones=False, observes=False),
    EngineSpec("videoretalking", "retalk.engines.videoretalking.engine:VideoReTalkingEngine",
               checkpoints=("dnet", "lnet", "enet", "face3d", "gpen", "parsenet", "gfpgan"),
               description="the released VideoReTalking networks: D-Net, L-Net/E-Net, GPEN, ParseNet, GFPGAN "
                           "(needs retalk[neural] and its release files)",
               needs_phones=False, observes=False),
    EngineSpec("passthrough", "retalk.engines.passthrough:PassThroughEngine",
               description="the original mouth with the new audio (a baseline)", needs_phones=False,
               observes=False),
)


def _valid_target(value: str) -> bool:
    module_name, colon, attr = value.partition(":")
    parts = module_name.split(".") + attr.split(".")
    return bool(colon) and all(p.isidentifier() for p in parts)


def discover(group: str = ENTRY_POINT_GROUP) -> Mapping[str, EngineSpec]:
    """The built-in engines plus those registered in the entry-point ``group`` (nothing is imported).

    A plugin entry whose value is not ``"module:Class"``, or whose name is taken, is left out
    with a warning naming it and its distribution. Returns a read-only mapping name → spec.
    """
    specs = {s.name: s for s in _BUILTIN}
    try:
        entries = metadata.entry_points(group=group)
    except Exception as exc:  # noqa: BLE001 - broken package metadata must not stop retalk
        log.warning("cannot list engine plugins (%s: %s); only the built-in engines are available",
                    type(exc).__name__, exc)
        entries = ()
    for ep in entries:
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an unknown package"
        if not _valid_target(ep.value):
            log.warning("engine plugin %r from %s ignored: %r is not 'module:Class'", ep.name, dist, ep.value)
            continue
        if ep.name in specs:
            log.warning("engine plugin %r from %s ignored: the name is taken by the engine from %s",
                        ep.name, dist, specs[ep.name].origin)
            continue
        specs[ep.name] = EngineSpec(ep.name, ep.value, description=f"plugin from {dist}", origin=dist)
    return MappingProxyType(specs)


ENGINES: Mapping[str, EngineSpec] = discover()
"""Engine name → :class:`EngineSpec`, read-only: the built-in engines and the installed plugins."""


def engine_class(name: str, registry: Mapping[str, EngineSpec] | None = None) -> type[Engine]:
    """The class of the engine called ``name``; an unknown name is an :class:`InputError` listing the choices."""
    specs = ENGINES if registry is None else registry
    try:
        spec = specs[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown engine {name!r}; choose from {', '.join(sorted(specs))}") from None
    return spec.load()


def _check_options(name: str, cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` the constructor takes; an :class:`InputError` naming any it does not."""
    params = inspect.signature(cls).parameters
    accepted = {p for p, v in params.items()
                if v.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    unknown = sorted(set(options) - accepted - set(COMMON_OPTIONS))
    if unknown:
        takes = ", ".join(sorted(accepted)) or "none"
        raise InputError(f"engine {name!r} has no option {', '.join(unknown)} (its options: {takes})")
    dropped = [k for k in COMMON_OPTIONS if k in options and k not in accepted]
    for k in dropped:
        log.debug("engine %r runs on the CPU; %s=%r ignored", name, k, options[k])
    return {k: v for k, v in options.items() if k not in dropped}


def create_engine(name_or_instance: str | Engine, **options: Any) -> Engine:
    """An engine: ``name_or_instance`` if it is already an :class:`Engine`, else a new one of that name.

    ``options`` go to the engine's constructor (see the module docstring); giving options with an
    instance, an unknown name or an option the engine does not have is an :class:`InputError`.
    """
    from retalk.engines.base import Engine

    if isinstance(name_or_instance, Engine):
        if options:
            raise InputError(f"engine options ({', '.join(sorted(options))}) apply to an engine name; "
                             f"configure the {type(name_or_instance).__name__} instance itself")
        return name_or_instance
    if not isinstance(name_or_instance, str):
        raise InputError(f"engine must be a name or an Engine instance, not {type(name_or_instance).__name__}")
    cls = engine_class(name_or_instance)
    return cls(**_check_options(name_or_instance, cls, dict(options)))
