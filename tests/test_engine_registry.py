"""The engine registry (retalk.engines): specs, lazy import, plugins, options, injected instances."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retalk.engines import ENGINES, EngineSpec, create_engine, discover, engine_class
from retalk.engines.base import Engine, RenderItem
from retalk.errors import InputError

PLUGIN_MODULE = '''
from retalk.engines.base import Engine


class FakeEngine(Engine):
    """Paints every face frame black."""

    name = "fake"
    needs_phones = False

    def __init__(self, level: int = 0) -> None:
        self.level = level

    def render(self, items):
        return [it.frame * 0 + self.level for it in items]


class NotAnEngine:
    pass
'''

ENTRY_POINTS = """\
[retalk.engines]
fake = fakeplugin_mod:FakeEngine
fakebroken = fakeplugin_missing_module:Thing
fakenotengine = fakeplugin_mod:NotAnEngine
fakebadvalue = not a target
builtin = fakeplugin_mod:FakeEngine
"""


@pytest.fixture()
def plugin_dir(tmp_path: Path) -> Path:
    """A folder that, on sys.path, holds an installed distribution 'fakeplugin' registering engines."""
    (tmp_path / "fakeplugin_mod.py").write_text(PLUGIN_MODULE)
    info = tmp_path / "fakeplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return tmp_path


def test_builtin_specs():
    assert {"builtin", "wav2lip", "passthrough"} <= set(ENGINES)
    assert ENGINES["builtin"].target == "retalk.engines.builtin.engine:BuiltinEngine"
    assert ENGINES["wav2lip"].target == "retalk.engines.wav2lip:Wav2LipEngine"
    assert ENGINES["passthrough"].target == "retalk.engines.passthrough:PassThroughEngine"
    assert ENGINES["wav2lip"].checkpoints == ("wav2lip",) and ENGINES["builtin"].checkpoints == ()
    assert [ENGINES[n].needs_phones for n in ("builtin", "wav2lip", "passthrough")] == [True, False, False]
    assert all(s.origin == "retalk" and s.description for s in ENGINES.values())
    with pytest.raises(TypeError):
        ENGINES["x"] = ENGINES["builtin"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        ENGINES["builtin"].target = "x:y"  # type: ignore[misc]


def test_importing_the_registry_imports_no_engine():
    code = ("import sys, retalk.engines as e; e.ENGINES['wav2lip']; "
            "print(sorted(m for m in ('torch', 'mediapipe', 'retalk.engines.base', 'retalk.engines.wav2lip') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_classes_load_on_use():
    from retalk.engines.builtin.engine import BuiltinEngine
    from retalk.engines.passthrough import PassThroughEngine

    assert engine_class("builtin") is BuiltinEngine
    assert engine_class("passthrough") is PassThroughEngine
    assert PassThroughEngine.needs_phones is False and BuiltinEngine.needs_phones is True


def test_the_interface_module_does_not_know_the_engines():
    from retalk.engines import base

    assert not hasattr(base, "ENGINES") and not hasattr(base, "create_engine")
    assert not hasattr(base, "PassThroughEngine")


def test_unknown_name_lists_the_choices():
    with pytest.raises(InputError,
                       match="unknown engine 'nonsense'; choose from builtin, passthrough, videoretalking, wav2lip"):
        create_engine("nonsense")


def test_misspelled_option_is_an_error():
    with pytest.raises(InputError, match="engine 'builtin' has no option jump_cots"):
        create_engine("builtin", jump_cots=3.0)
    with pytest.raises(InputError, match="engine 'passthrough' has no option level"):
        create_engine("passthrough", level=1)
    assert create_engine("builtin", jump_cost=3.0).jump_cost == 3.0


def test_wav2lip_rejects_unknown_options_before_loading_weights():
    pytest.importorskip("torch")
    with pytest.raises(InputError, match="engine 'wav2lip' has no option padz"):
        create_engine("wav2lip", padz=(0, 10, 0, 0))
    from retalk.engines.wav2lip import Wav2LipEngine

    with pytest.raises(TypeError):  # no longer swallowed with a warning
        Wav2LipEngine(padz=(0, 10, 0, 0))  # type: ignore[call-arg]


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1"])
def test_cpu_engines_ignore_the_device(device):
    assert create_engine("builtin", device=device).name == "builtin"
    assert create_engine("passthrough", device=device).name == "passthrough"


def test_an_instance_is_used_as_is():
    engine = create_engine("passthrough")
    assert create_engine(engine) is engine
    with pytest.raises(InputError, match="apply to an engine name"):
        create_engine(engine, device="cpu")
    with pytest.raises(InputError, match="name or an Engine instance"):
        create_engine(42)  # type: ignore[arg-type]


def test_plugins_are_discovered_and_broken_ones_warned(plugin_dir, monkeypatch, caplog):
    monkeypatch.syspath_prepend(str(plugin_dir))
    with caplog.at_level(logging.WARNING, logger="retalk.engines"):
        specs = discover()
    assert specs["fake"] == EngineSpec("fake", "fakeplugin_mod:FakeEngine", description="plugin from fakeplugin",
                                       origin="fakeplugin")
    assert "fakebroken" in specs and "fakenotengine" in specs  # found; they fail only when chosen
    assert "fakebadvalue" not in specs
    assert specs["builtin"].origin == "retalk"  # a plugin cannot take a built-in name
    text = caplog.text
    assert "'fakebadvalue' from fakeplugin ignored" in text
    assert "'builtin' from fakeplugin ignored: the name is taken" in text

    cls = engine_class("fake", specs)
    assert cls.__name__ == "FakeEngine" and issubclass(cls, Engine) and cls.needs_phones is False
    with pytest.raises(InputError, match=r"engine 'fakebroken' \(from fakeplugin\) cannot be loaded: "
                                         r"ModuleNotFoundError"):
        engine_class("fakebroken", specs)
    with pytest.raises(InputError, match="is not a retalk.engines.base.Engine subclass"):
        engine_class("fakenotengine", specs)


def test_plugins_reach_the_cli_and_doctor(plugin_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    code = ("from retalk.cli import build_parser; from retalk.engines import create_engine; "
            "a = build_parser().parse_args(['sync', '--face', 'f', '--audio', 'a', '-o', 'o.mp4', '--engine', 'fake']);"
            "print(a.engine, create_engine(a.engine, level=7).level)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["fake", "7"]
    proc = subprocess.run([sys.executable, "-m", "retalk", "doctor"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.startswith("  fake")}
    assert "plugin from fakeplugin" in lines["fake"] and "broken" not in lines["fake"]
    assert "broken: engine 'fakebroken' (from fakeplugin) cannot be loaded: ModuleNotFoundError" in lines["fakebroken"]


class _Recorder(Engine):
    """An injected engine: records what the pipeline gives it; darkens face frames by one level."""

    name = "recorder"

    def __init__(self, needs_phones: bool) -> None:
        self.needs_phones = needs_phones
        self.plans: list = []
        self.closed = False

    def prepare(self, plan):
        self.plans.append(plan)

    def render(self, items: list[RenderItem]) -> list[np.ndarray]:
        return [it.frame for it in items]

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("needs_phones", [False, True])
def test_sync_takes_an_instance_and_skips_phones_it_does_not_need(needs_phones, face_clip, short_wav, tmp_path,
                                                                  monkeypatch):
    import retalk.speech.phones as phones_mod
    from retalk.pipeline import SyncOptions, sync

    calls = []
    monkeypatch.setattr(phones_mod, "recognize_phones", lambda *a, **k: calls.append(1) or [])
    engine = _Recorder(needs_phones)
    res = sync(face_clip, short_wav, tmp_path / "o.mp4",
               SyncOptions(engine=engine, recognize=True, progress=False, preset="ultrafast", device="cpu"))
    assert res.frames == 30  # 1.2 s at 25 fps
    assert len(engine.plans) == 1 and len(engine.plans[0].schedule) == 30
    assert not engine.closed  # the caller owns an injected engine
    assert len(calls) == (1 if needs_phones else 0)


def test_engine_options_are_checked_before_decoding(face_clip, short_wav, tmp_path, monkeypatch):
    import retalk.pipeline as pipeline

    monkeypatch.setattr(pipeline, "iter_frames", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(InputError, match="no option jump_cots"):
        pipeline.sync(face_clip, short_wav, tmp_path / "o.mp4",
                      pipeline.SyncOptions(engine_options={"jump_cots": 1.0}, progress=False))
    assert not (tmp_path / "o.mp4").exists()
