"""examples/figures.py with tiny arguments, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def example_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    readme = out / "readme" / "frontier.png"
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "figures.py"),
            "--data",
            "synthetic",
            "--chains",
            "2",
            "--draws",
            "60",
            "--warmup",
            "60",
            "--kinds",
            "bands",
            "--out",
            str(out),
            "--readme",
            str(readme),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, readme, done.stdout


def test_figures_example_writes_figures_and_readme_png(example_output):
    out, readme, stdout = example_output
    assert (out / "bands.png").stat().st_size > 1000
    assert readme.stat().st_size < 150_000  # small enough to commit
    assert stdout.strip().splitlines()[-1].startswith("diagnostics:")


def test_figures_example_falls_back_to_synthetic_data():
    # Without Epoch's CSV beside the checkout, the example says so and uses the synthetic ladder.
    code = (
        "import runpy, pathlib; "
        f"load = runpy.run_path({str(EXAMPLES / 'figures.py')!r}, run_name='example')['load']; "
        "load.__globals__['CHINCHILLA_CSV'] = pathlib.Path('/nonexistent.csv'); "
        "print(load(None).source)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not found: using the synthetic ladder" in done.stdout
    assert "<simulated from chinchilla" in done.stdout
