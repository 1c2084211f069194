"""The light install (no torch): modules that must import and fail cleanly without the neural extra.

These tests simulate a missing torch in a subprocess (``sys.modules['torch'] = None``), so they run
whether or not torch is installed, and no file-level ``importorskip("torch")`` can hide them.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def test_checkpoints_import_without_torch() -> None:
    out = _run(
        "import sys; sys.modules['torch'] = None\n"
        "import retalk.checkpoints as c, retalk.networks\n"
        "from retalk.errors import MissingDependencyError\n"
        "assert 'wav2lip' in c.REGISTRY\n"
        "try:\n    c.load('wav2lip')\nexcept MissingDependencyError as e:\n    print('OK', e)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK") and "retalk[neural]" in out.stdout


def test_import_enhance_without_torch() -> None:
    out = _run("import sys, retalk.enhance; assert 'torch' not in sys.modules, 'torch imported'")
    assert out.returncode == 0, out.stderr


def test_enhance_import_survives_a_missing_torch() -> None:
    out = _run("import sys; sys.modules['torch'] = None\nimport retalk.enhance\nprint('OK')")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"
