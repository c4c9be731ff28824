"""Examples are runnable scripts: run each with tiny arguments, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs(tmp_path):
    out = tmp_path / "fit.nc"
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "quickstart.py"),
            "--chains",
            "2",
            "--draws",
            "60",
            "--warmup",
            "60",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "alpha" in done.stdout and "diagnostics:" in done.stdout
    assert out.is_file()
