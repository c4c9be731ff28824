"""What every benchmark script shares: where the real data live, skipping without them, writing JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The default --data: the public datasets in ../shared/data, beside the repository.
SHARED_DATA = HERE.parent.parent / "shared" / "data"
RESULTS = HERE / "results"
# The public tables, relative to the data directory.
CHINCHILLA = "chinchilla_svg_extracted.csv"  # Epoch AI's digitised Chinchilla runs
OPEN_ATHENA = "open-athena-isoflops/isoflops_extract.csv"  # the Open-Athena isoFLOP sweeps
MISFITTING = "misfitting-curves/scaling_results.csv"  # (Mis)Fitting's learning curves


def add_data_argument(parser: argparse.ArgumentParser, *, reads: bool = True) -> None:
    """Add ``--data DIR``, the directory of the public datasets (default ``../shared/data``).

    ``reads=False``: the benchmark simulates its runs; the option is accepted all the same, so
    every script takes the same command line.
    """
    text = "directory of the public datasets (default: %(default)s)"
    if not reads:
        text = "accepted for a common command line; this benchmark simulates its runs"
    parser.add_argument("--data", type=Path, default=SHARED_DATA, metavar="DIR", help=text)


def chinchilla_csv(data: Path) -> Path:
    """Epoch AI's digitised Chinchilla runs in the data directory ``data``."""
    return Path(data) / CHINCHILLA


def open_athena_csv(data: Path) -> Path:
    """The Open-Athena isoFLOP extract in the data directory ``data``."""
    return Path(data) / OPEN_ATHENA


def misfitting_csv(data: Path) -> Path:
    """(Mis)Fitting's learning curves (every checkpoint) in the data directory ``data``."""
    return Path(data) / MISFITTING


def missing(path: Path) -> bool:
    """Say the benchmark is skipped when its data are absent (exit 0: absence is not failure)."""
    if path.is_file():
        return False
    print(f"skipped: {path} not found (--data DIR names the directory of the public datasets)")
    return True


def parse_discrepancy(spec: str) -> Any:
    """A discrepancy from ``NAME`` or ``NAME:FIELD=VALUE[;FIELD=VALUE]``.

    E.g. ``gp:curvature_scale=0.002`` or ``gp:amplitude_prior=LogNormal(loc=-4, scale=1)``
    (:func:`scalebayes.discrepancy.from_spec`).
    """
    from scalebayes.discrepancy import from_spec

    return from_spec(spec)


def add_group_discrepancy_argument(parser: argparse.ArgumentParser) -> None:
    """``--discrepancy`` of the grouped-fit benchmarks: the discrepancy the groups pool."""
    parser.add_argument(
        "--discrepancy",
        default="auto",
        choices=("auto", "quadratic", "none"),
        help="the groups' discrepancy (default auto: the grouped default, the quadratic, pooled "
        "since its pooled mode, shared before; the results before it existed are --discrepancy "
        "none)",
    )


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """Write a benchmark's measurements as indented JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}")


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, versions, and how busy the machine was."""
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line
        )
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        # Other processes share the CPU: a busy machine inflates every wall time.
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "jax": version("jax"),
        "numpyro": version("numpyro"),
        "platform": platform.platform(),
    }


def marin_runs(data: Path) -> Any:
    """Marin's three ladders (``marin_202603`` rows of the extract) by ``dataset``; None if missing."""
    import warnings

    import pandas as pd

    import scalebayes as sb

    path = open_athena_csv(data)
    if missing(path):
        return None
    table = pd.read_csv(path)
    table = table[table["source"] == "marin_202603"].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sb.load_runs(table, group="dataset")


def fit_costs(fit: Any, wall: dict[str, float], started: float) -> dict[str, Any]:
    """A cost benchmark's row for ``fit``: seconds since ``started`` (``time.perf_counter``),
    its compile and sampling seconds (``wall``), leapfrog steps per draw and health."""
    import time

    return {
        "end_to_end_s": time.perf_counter() - started,
        "compile_s": wall["compile"],
        "sampling_s": wall["sampling"],
        "mean_leapfrog_steps": float(fit.idata["sample_stats"]["n_steps"].mean()),
        **fit.diagnostics.to_dict(),
        "healthy": fit.diagnostics.ok,
    }


def add_cold_arguments(parser: argparse.ArgumentParser, cases: tuple[str, ...]) -> None:
    """A cost benchmark's NUTS settings (the user's defaults) and its hidden ``--case``."""
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--case", choices=cases, help=argparse.SUPPRESS)


def cold_argv(args: argparse.Namespace, case: str, *extra: str) -> list[str]:
    """The command line of one case of a cost benchmark (:func:`run_cold` runs it)."""
    return ["--case", case, "--data", str(args.data), "--chains", str(args.chains),
            "--draws", str(args.draws), "--warmup", str(args.warmup), *extra]  # fmt: skip


def run_cold(script: str, argv: list[str]) -> dict[str, Any]:
    """Run ``script argv`` in a fresh process with no compile cache; its last line, as JSON."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SCALEBAYES_COMPILE_CACHE": "0"}
    done = subprocess.run([sys.executable, script, *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
