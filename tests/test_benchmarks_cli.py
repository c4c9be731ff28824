"""Every benchmark script takes --data DIR and skips cleanly (exit 0) when its tables are absent.

The scripts run one after another inside one driver process per check (not one process per
script: each would import JAX and the library again, ~1 s apiece on 2 cores), each as
``__main__`` with its own ``sys.argv`` and its output captured.
"""

import json
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
# Scripts that do real work without data: batch_cpu, calibration, discrepancy_truth and
# grouped_curvature_truth simulate, gp_geometry runs its simulated half.
SIMULATED = {
    "allocation_drift_truth.py",
    "batch_cpu.py",
    "calibration.py",
    "design_truth.py",
    "discrepancy_truth.py",
    "gp_geometry.py",
    "grouped_curvature_truth.py",
    "hierarchy_truth.py",
}

DRIVER = """\
import contextlib, io, json, runpy, sys
benchmarks, scripts, args = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, benchmarks)
results = {}
for script in scripts:
    sys.argv = [script, *args]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(f"{benchmarks}/{script}", run_name="__main__")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (stop.code is not None)
            if not isinstance(stop.code, int) and stop.code is not None:
                print(stop.code, file=err)
        except BaseException as error:
            code = 1
            print(repr(error), file=err)
    results[script] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
print(json.dumps(results))
"""


def run_all(scripts: list[str], *args: str) -> dict[str, dict]:
    """Each script's exit code, stdout and stderr when run with ``args``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(BENCHMARKS), json.dumps(scripts), json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def helps() -> dict[str, dict]:
    return run_all(SCRIPTS, "--help")


@pytest.fixture(scope="module")
def skips(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    empty = tmp_path_factory.mktemp("no-data")
    return empty, run_all(sorted(set(SCRIPTS) - SIMULATED), "--data", str(empty))


def test_every_result_is_written_by_a_listed_script():
    listed = (BENCHMARKS / "README.md").read_text()
    for result in (BENCHMARKS / "results").glob("*.json"):
        assert f"`{result.name}`" in listed, f"{result.name}: no command in benchmarks/README.md"
    for script in SCRIPTS:
        assert f"`{script}`" in listed, f"{script} is not in benchmarks/README.md"


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_data_dir(script, helps):
    done = helps[script]
    assert done["code"] == 0, done["stderr"]
    assert "--data DIR" in done["stdout"]


@pytest.mark.parametrize("script", sorted(set(SCRIPTS) - SIMULATED))
def test_skips_without_data(script, skips):
    empty, results = skips
    done = results[script]
    assert done["code"] == 0, done["stderr"]
    assert "skipped" in done["stdout"]
    assert not list(empty.iterdir())
