"""What every benchmark script shares: where the real data live, skipping without them, writing JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED_DATA = HERE.parent / ".." / "shared" / "data"
CHINCHILLA_CSV = SHARED_DATA / "chinchilla_svg_extracted.csv"
RESULTS = HERE / "results"


def missing(path: Path) -> bool:
    """Say the benchmark is skipped when its data are absent (exit 0: absence is not failure)."""
    if path.is_file():
        return False
    print(f"skipped: {path} not found (the public datasets live in ../shared/data)")
    return True


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
