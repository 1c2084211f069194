"""benchmarks/neural_speed.py keeps working: a CPU-sized run (1 s clip) prints a row per engine."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "neural_speed.py"


def test_neural_speed_runs_on_the_cpu() -> None:
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "1", "--skip-long", "--size", "320x240",
                           "--engines", "passthrough", "wav2lip", "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("320x240")]
    assert [r[3] for r in rows] == ["passthrough", "wav2lip"], proc.stdout
    for r in rows:
        wall, fps = float(r[4]), float(r[5])
        assert wall > 0 and fps > 0
        assert fps == pytest.approx(25 / wall, rel=0.05)  # 25 frames of output over the wall time
