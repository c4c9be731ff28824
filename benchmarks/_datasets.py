"""The public tables the backtest-style benchmarks score: Epoch's Chinchilla runs and each
Open-Athena isoFLOP experiment, with how each is held out (top decades, or largest budgets)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from _common import chinchilla_csv, open_athena_csv


def datasets(data: Path, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"runs": Runs, "holdout": backtest keyword arguments, "budget": FLOPs | None}}``.

    Epoch's table holds out the top one and two decades of compute and plans at Chinchilla's
    5.76e23 FLOPs; an Open-Athena sweep holds out its largest one and two budgets. ``data`` is
    the data directory (``--data``); tables whose file is absent are left out (the benchmarks say
    so).
    """
    epoch, open_athena = chinchilla_csv(data), open_athena_csv(data)
    if not (epoch.is_file() or open_athena.is_file()):
        return {}
    import pandas as pd

    import scalebayes as sb

    found: dict[str, dict[str, Any]] = {}
    if epoch.is_file():
        found["epoch_chinchilla"] = {
            "runs": sb.load_runs(epoch),
            "holdout": {"holdout_top": (1, 2)},
            "budget": 5.76e23,
        }
    if open_athena.is_file():
        table = pd.read_csv(open_athena)
        for experiment, rows in table.groupby("experiment"):
            runs = rows[["params", "tokens", "budget", "loss"]].rename(
                columns={"params": "N", "tokens": "D", "budget": "C"}
            )
            with warnings.catch_warnings():
                # The budget column is the nominal isoFLOP level, a few % off 6 N D (Marin).
                warnings.simplefilter("ignore")
                loaded = sb.load_runs(runs.reset_index(drop=True), accept_inconsistent_c=True)
            found[str(experiment)] = {
                "runs": loaded,
                "holdout": {"holdout_budgets": (1, 2)},
                "budget": None,
            }
    if names:
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise SystemExit(f"unknown or absent datasets {unknown}; known: {sorted(found)}")
        found = {name: found[name] for name in names}
    return found
