"""The skip audit plugin (tests/_skip_audit.py): skip summary, and failing on skips not in the allow-list."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SAMPLE = '''
import pytest

def test_runs():
    assert True

def test_skips_for_a_reason():
    pytest.skip("needs the moon")

@pytest.mark.skipif(True, reason="not on Tuesdays")
def test_skipif():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail_is_not_a_skip():
    assert False
'''


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "test_gone.py").write_text('import pytest\npytest.importorskip("no_such_module_xyz")\n')
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "_skip_audit", "-p", "no:cacheprovider",
                           "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path), *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_summary_lists_every_skip_reason(tmp_path: Path) -> None:
    out = _pytest(tmp_path)
    assert out.returncode == 0, out.stdout  # without an allow-list skips are only reported
    assert "skip summary" in out.stdout
    assert "1 skipped: needs the moon" in out.stdout
    assert "1 skipped: not on Tuesdays" in out.stdout
    assert "no_such_module_xyz" in out.stdout
    assert "known bug" not in out.stdout.split("skip summary")[1].split("short test summary")[0]


@pytest.mark.parametrize(
    ("allow", "code"),
    [
        ("", 1),
        ("needs the moon :: the moon is optional\nnot on Tuesdays :: calendar\n", 1),
        ("needs the moon :: the moon is optional\nnot on Tuesdays :: calendar\nno_such_module :: plugin\n", 0),
    ],
)
def test_unlisted_skip_fails_the_run(tmp_path: Path, allow: str, code: int) -> None:
    (tmp_path / "allow.txt").write_text("# comment\n\n" + allow)
    out = _pytest(tmp_path, "--skip-allowlist", str(tmp_path / "allow.txt"))
    assert out.returncode == code, out.stdout
    assert ("not in the allow-list" in out.stdout) == (code == 1)


def test_entry_without_a_reason_is_refused(tmp_path: Path) -> None:
    (tmp_path / "allow.txt").write_text("needs the moon\n")
    out = _pytest(tmp_path, "--skip-allowlist", str(tmp_path / "allow.txt"))
    assert out.returncode == pytest.ExitCode.USAGE_ERROR
    assert "allow.txt:1" in out.stderr


def test_committed_allowlist_parses_and_every_entry_has_a_reason() -> None:
    from _skip_audit import read_allowlist

    entries = read_allowlist(TESTS / "skip_allowlist.txt")
    assert all(e.reason and e.why for e in entries)
