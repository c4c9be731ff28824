"""The public tables the backtest-style benchmarks score: Epoch's Chinchilla runs and each
Open-Athena isoFLOP experiment, with how each is held out (top decades, or largest budgets)."""

from __future__ import annotations

import warnings
from typing import Any

from _common import CHINCHILLA_CSV, SHARED_DATA

OPEN_ATHENA_CSV = SHARED_DATA / "open-athena-isoflops" / "isoflops_extract.csv"


def datasets(names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"runs": Runs, "holdout": backtest keyword arguments, "budget": FLOPs | None}}``.

    Epoch's table holds out the top one and two decades of compute and plans at Chinchilla's
    5.76e23 FLOPs; an Open-Athena sweep holds out its largest one and two budgets. Tables whose
    file is absent are left out (the benchmarks say so).
    """
    import pandas as pd

    import scalebayes as sb

    found: dict[str, dict[str, Any]] = {}
    if CHINCHILLA_CSV.is_file():
        found["epoch_chinchilla"] = {
            "runs": sb.load_runs(CHINCHILLA_CSV),
            "holdout": {"holdout_top": (1, 2)},
            "budget": 5.76e23,
        }
    if OPEN_ATHENA_CSV.is_file():
        table = pd.read_csv(OPEN_ATHENA_CSV)
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
