"""Benchmark: how long the CLI's commands take on a saved fit, each in a fresh process.

Fits Epoch AI's 245 Chinchilla runs once with the default model (``scalebayes fit``), then runs
``show``, ``predict``, ``optimal``, ``chance``, ``plan``, ``plot`` and ``report`` on the saved
file, each in a new process with an empty JAX compile cache (``SCALEBAYES_COMPILE_CACHE=0``):
what a newcomer waits for the first time. Prints a table and writes
benchmarks/results/cli_latency.json. Targets (issue 18, 2 cores): show <= 1 s; predict,
optimal, chance <= 3 s; plan <= 5 s; report <= 20 s; judged on the median of ``--repeat``
calls. ``--python`` times another installation's scalebayes, e.g. the one
``scripts/bootstrap`` makes for a newcomer (the development install also has pyarrow, which
pandas imports whenever it is there: ~0.1 s on every command).

    python benchmarks/cli_latency.py [--data DIR] [--fit FILE] [--repeat 3] [--python PY]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, add_data_argument, chinchilla_csv, machine, missing, write_results

TARGETS = {"show": 1.0, "predict": 3.0, "optimal": 3.0, "chance": 3.0, "plan": 5.0, "report": 20.0}


def commands(fit: Path, out: Path) -> dict[str, list[str]]:
    """Each timed command line (without the ``scalebayes`` program name)."""
    return {
        "show": ["show", str(fit)],
        "predict": ["predict", str(fit), "--N", "70e9", "--D", "1.4e12"],
        "optimal": ["optimal", str(fit), "--compute", "5.76e23", "1e24", "1e25"],
        "chance": ["chance", str(fit), "--N", "70e9", "--D", "1.4e12", "--target", "1.97"],
        "plan": ["plan", str(fit), "--target", "1.95"],
        "plot bands": ["plot", str(fit), "--kind", "bands", "--out", str(out / "bands.png")],
        "plot frontier": ["plot", str(fit), "--kind", "frontier", "--out", str(out / "f.png")],
        "report": ["report", str(fit), "--out", str(out / "report")],
    }


def timed(python: str, argv: list[str]) -> tuple[float, int, str]:
    """Seconds one CLI call takes in a fresh process with no compile cache, its exit code, output."""
    env = {**os.environ, "SCALEBAYES_COMPILE_CACHE": "0"}
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-m", "scalebayes", *argv], capture_output=True, text=True, env=env
    )
    return time.perf_counter() - started, done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(parser)
    parser.add_argument("--fit", type=Path, help="time this saved fit instead of fitting Epoch's")
    parser.add_argument(
        "--repeat", type=int, default=3, help="calls per command (the median is judged)"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter whose scalebayes is timed (default: this one), e.g. the "
        ".venv/bin/python of a fresh clone after scripts/bootstrap",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "cli_latency.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scalebayes-latency-"))
    try:
        fit = args.fit
        fit_s = None
        if fit is None:
            csv = chinchilla_csv(args.data)
            if missing(csv):
                return 0
            fit = work / "fit.nc"
            fit_s, code, text = timed(args.python, ["fit", str(csv), "--out", str(fit)])
            if code != 0:
                print(text)
                return 1
        rows = {}
        for name, argv in commands(fit, work).items():
            calls = [timed(args.python, argv) for _ in range(max(args.repeat, 1))]
            for _, code, text in calls:
                if code != 0:
                    print(f"{name} failed (exit {code}):\n{text}")
            seconds = [t for t, _, _ in calls]
            target = TARGETS.get(name.split()[0] if name != "report" else name)
            rows[name] = {
                "seconds": statistics.median(seconds),
                "all_seconds": seconds,
                "exit": max(code for _, code, _ in calls),
                "target_s": target,
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'command':16s} {'median s':>8s} {'range':>11s} {'target':>7s}")
    for name, row in rows.items():
        target = row["target_s"]
        verdict = "" if target is None else ("PASS" if row["seconds"] <= target else "FAIL")
        shown = "" if target is None else f"{target:g} s"
        spread = f"{min(row['all_seconds']):.2f}-{max(row['all_seconds']):.2f}"
        print(f"{name:16s} {row['seconds']:8.2f} {spread:>11s} {shown:>7s} {verdict}")
    if fit_s is not None:
        print(f"(the fit itself: {fit_s:.1f} s)")
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_1min']:.1f}")
    print(f"python: {args.python}")
    record = {
        "machine": info,
        "python": args.python,
        "fit_s": fit_s,
        "fit": str(args.fit or "epoch"),
    }
    write_results(args.out, {**record, "repeat": args.repeat, **rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
