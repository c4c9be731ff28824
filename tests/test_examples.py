"""Examples are runnable scripts: run each with a user's arguments.

The fits run as __main__ in this process (runpy), not in a fresh one: with the suite's NUTS
settings on 81 runs they reuse conftest's compiled samplers, where a fresh interpreter paid
~25 s of compiles per example. That each script starts in a fresh interpreter is checked with
--help. examples/figures.py has its own module, tests/test_examples_figures.py.
"""

from __future__ import annotations

import contextlib
import io
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import CI_FIT

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", ["quickstart.py", "figures.py"])
def test_example_starts_in_a_fresh_interpreter(script):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--chains" in done.stdout and "--draws" in done.stdout


def test_quickstart_runs(synthetic_runs, chinchilla_fit, tmp_path, monkeypatch):
    # On a table of runs from a CSV, as the README runs it on Epoch's: the session's ladder,
    # the shape of chinchilla_fit.
    data = tmp_path / "runs.csv"
    synthetic_runs.to_frame()[["N", "D", "C", "loss"]].to_csv(data, index=False)
    out = tmp_path / "fit.nc"
    settings = [f"--{name}={value}" for name, value in CI_FIT.items()]
    script = str(EXAMPLES / "quickstart.py")
    monkeypatch.setattr(sys, "argv", [script, "--data", str(data), *settings, "--out", str(out)])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(script, run_name="__main__")
    stdout = printed.getvalue()
    assert "alpha" in stdout and "diagnostics:" in stdout
    assert out.is_file()
