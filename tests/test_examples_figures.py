"""examples/figures.py with a user's arguments, run as __main__ in this process.

In this process, not a fresh one (tests/test_examples.py runs quickstart.py that way): with the
suite's NUTS settings its fit of the synthetic ladder has the shape of conftest's chinchilla_fit,
so it reuses that fit's two compiled samplers instead of paying ~30 s of compiles again.
"""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from tests.conftest import CI_FIT

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIGURES = str(EXAMPLES / "figures.py")


@pytest.fixture(scope="module")
def example_output(tmp_path_factory, chinchilla_fit):
    out = tmp_path_factory.mktemp("figures")
    readme = out / "readme" / "frontier.png"
    settings = [f"--{name}={value}" for name, value in CI_FIT.items()]
    argv = ["--data", "synthetic", *settings, "--kinds", "bands", "--out", str(out)]
    before = set(plt.get_fignums())
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(printed):
        monkeypatch.setattr(sys, "argv", [FIGURES, *argv, "--readme", str(readme)])
        runpy.run_path(FIGURES, run_name="__main__")
    assert set(plt.get_fignums()) == before  # every figure it drew is closed
    return out, readme, printed.getvalue()


def test_figures_example_writes_figures_and_readme_png(example_output):
    out, readme, stdout = example_output
    assert (out / "bands.png").stat().st_size > 1000
    assert readme.stat().st_size < 150_000  # small enough to commit
    assert stdout.strip().splitlines()[-1].startswith("diagnostics:")


def test_figures_example_falls_back_to_synthetic_data(monkeypatch):
    # Without Epoch's CSV beside the checkout, the example says so and uses the synthetic ladder.
    monkeypatch.setattr(sys, "argv", [FIGURES])
    load = runpy.run_path(FIGURES, run_name="example")["load"]
    monkeypatch.setitem(load.__globals__, "CHINCHILLA_CSV", Path("/nonexistent.csv"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print(load(None).source)
    assert "not found: using the synthetic ladder" in printed.getvalue()
    assert "<simulated from chinchilla" in printed.getvalue()
