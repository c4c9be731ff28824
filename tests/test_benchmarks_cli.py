"""Every benchmark script takes --data DIR and skips cleanly (exit 0) when its tables are absent."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(
    p.name
    for p in BENCHMARKS.glob("*.py")
    if not p.name.startswith("_") and p.name != "baselines.py"
)
# Scripts that do real work without data: batch_cpu, calibration and discrepancy_truth simulate,
# gp_geometry runs its simulated half.
SIMULATED = {
    "batch_cpu.py",
    "calibration.py",
    "discrepancy_truth.py",
    "gp_geometry.py",
    "hierarchy_truth.py",
}


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_every_result_is_written_by_a_listed_script():
    listed = (BENCHMARKS / "README.md").read_text()
    for result in (BENCHMARKS / "results").glob("*.json"):
        assert f"`{result.name}`" in listed, f"{result.name}: no command in benchmarks/README.md"
    for script in SCRIPTS:
        assert f"`{script}`" in listed, f"{script} is not in benchmarks/README.md"


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_data_dir(script):
    done = run(script, "--help")
    assert done.returncode == 0, done.stderr
    assert "--data DIR" in done.stdout


@pytest.mark.parametrize("script", sorted(set(SCRIPTS) - SIMULATED))
def test_skips_without_data(script, tmp_path):
    done = run(script, "--data", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stdout
    assert not list(tmp_path.iterdir())
