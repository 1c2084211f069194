"""pytest plugin: a skip summary for every run, and ``--skip-allowlist=FILE`` to fail on unlisted skips.

Every skipped test or module (``pytest.skip``, ``skipif``, ``importorskip``) is recorded with its
reason.  At the end of the run the plugin prints one line per distinct reason with its count.
With ``--skip-allowlist=FILE`` (``.ci/run`` passes ``tests/skip_allowlist.txt``) the run fails
(exit status 1) when any skip's reason is not covered by an allow-list entry.

Allow-list format: one entry per line, ``<reason text> :: <why this skip is acceptable>``; a skip
is covered when its reason contains ``<reason text>``.  Blank lines and ``#`` comments are ignored;
an entry without a justification after ``::`` is a usage error.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list line: a reason substring and why such a skip is acceptable."""

    reason: str
    why: str


def read_allowlist(path: Path) -> list[AllowEntry]:
    """Parse an allow-list file; raises :class:`pytest.UsageError` on an entry without a justification."""
    if not path.is_file():
        raise pytest.UsageError(f"skip allow-list not found: {path}")
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        reason, sep, why = line.partition("::")
        if not sep or not reason.strip() or not why.strip():
            raise pytest.UsageError(f"{path}:{number}: expected '<reason text> :: <why it is acceptable>'")
        entries.append(AllowEntry(reason.strip(), why.strip()))
    return entries


def _reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    """The skip message of a report (``longrepr`` is ``(file, line, 'Skipped: reason')`` for skips)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text.removeprefix("Skipped: ").strip()


@dataclass(eq=False)  # identity-hashed: pluggy keeps plugins in sets
class SkipAudit:
    """Collects skips during the run (one instance per pytest session, registered by ``conftest``)."""

    allowlist: list[AllowEntry] | None
    skips: list[tuple[str, str]] = field(default_factory=list)  # (node id, reason)

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skips.append((report.nodeid, _reason(report)))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def unlisted(self) -> list[tuple[str, str]]:
        """Skips whose reason no allow-list entry covers (empty without an allow-list)."""
        if self.allowlist is None:
            return []
        return [(node, why) for node, why in self.skips
                if not any(entry.reason in why for entry in self.allowlist)]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.unlisted() and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        counts = Counter(reason for _, reason in self.skips)
        terminalreporter.section("skip summary")
        if not counts:
            terminalreporter.write_line("no test skipped")
        for reason, n in counts.most_common():
            terminalreporter.write_line(f"{n:4d} skipped: {reason}")
        bad = self.unlisted()
        if bad:
            terminalreporter.write_line(f"{len(bad)} skip(s) not in the allow-list (run fails):", red=True)
            for node, reason in bad:
                terminalreporter.write_line(f"  {node}: {reason}", red=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--skip-allowlist", metavar="FILE", default=None,
                     help="fail the run when a test is skipped for a reason not listed in FILE")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--skip-allowlist")
    allowlist = read_allowlist(Path(path)) if path else None
    config.pluginmanager.register(SkipAudit(allowlist), "retalk-skip-audit")
