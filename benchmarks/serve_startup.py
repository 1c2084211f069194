"""Seconds from ``retalk serve`` starting until its page answers, best of ``--repeat`` runs.

    python benchmarks/serve_startup.py [--repeat 3]

The start-up target (a few seconds on two cores) lives here, not in the tests: the tests check that the
server answers and that building its app imports no media or network library.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_page(work: Path, limit: float = 120.0) -> float:
    """Seconds until ``retalk serve``'s page answers 200 (inf if it never does within ``limit``)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "retalk", "serve", "--port", str(port), "--no-examples",
                             "--work-dir", str(work)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - t0 < limit and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                time.sleep(0.05)
        return float("inf")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [time_to_page(Path(tmp) / f"work{i}") for i in range(args.repeat)]
    load = os.getloadavg()[0]
    print(f"retalk serve: page after {min(runs):.2f} s (best of {len(runs)}: "
          f"{', '.join(f'{r:.2f}' for r in runs)}), load average {load:.1f}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
