"""The public tables the backtest-style benchmarks score: Epoch's Chinchilla runs and each
Open-Athena isoFLOP experiment, with how each is held out (top decades, or largest budgets);
and the over-training tables, held out by tokens per parameter."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from _common import chinchilla_csv, misfitting_csv, open_athena_csv


def datasets(
    data: Path, names: list[str] | None = None, compute: str = "budget"
) -> dict[str, dict[str, Any]]:
    """``{name: {"runs": Runs, "holdout": backtest keyword arguments, "budget": FLOPs | None}}``.

    Epoch's table holds out the top one and two decades of compute and plans at Chinchilla's
    5.76e23 FLOPs; an Open-Athena sweep holds out its largest one and two budgets. ``data`` is
    the data directory (``--data``); tables whose file is absent are left out (the benchmarks say
    so). ``compute``: an Open-Athena run's C is its sweep's nominal budget (``"budget"``), or
    ``"6nd"``: 6 N D, the budget column left out, so that sweeps are found from compute alone
    (Marin's 6ND strays from its budgets by up to 0.16 decades, with model size).
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
            read = ["params", "tokens", "loss"] + (["budget"] if compute == "budget" else [])
            runs = rows[read].rename(columns={"params": "N", "tokens": "D", "budget": "C"})
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


# (Mis)Fitting's sweep whose rows are corrupted (see misfitting-curves/README.md, caveats).
_CORRUPTED_SWEEP = "2024_11_10-23_08_29_sweep_test"


def misfitting_final_runs(path: Path) -> Any:
    """(Mis)Fitting's finished runs: each run's final checkpoint, the best peak LR per (size, steps).

    The schedule is cosine to each run's end, so only a final checkpoint is a finished run of
    that length; of the runs of one size and length, the best learning rate's is the tuned run a
    law describes. Drops the corrupted sweep and mislabelled rows (the data README's
    conservative filter). N counts embeddings (the table's ``N``).
    """
    import pandas as pd

    import scalebayes as sb

    table = pd.read_csv(path)
    keep = (
        (table["sweep"] != _CORRUPTED_SWEEP)
        & (table["current_steps"] <= table["total_steps"])
        & (table["current_epoch"] == table["total_epochs"])
    )
    final = table[keep]
    best = final.loc[final.groupby(["model", "total_steps"])["loss"].idxmin()]
    runs = best[["N", "D", "loss"]].reset_index(drop=True)
    return sb.load_runs(runs)


def overtraining_datasets(data: Path, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The over-training backtests: fit the runs at or below a tokens-per-parameter ratio.

    Epoch's runs (D/N up to ~340) and (Mis)Fitting's finished runs (up to ~220) hold out the
    runs beyond 40 and beyond 80 tokens per parameter; the question is whether a law fitted
    near the compute-optimal valley predicts over-trained runs (as serving-heavy plans train).
    """
    import scalebayes as sb

    found: dict[str, dict[str, Any]] = {}
    holdout = {"holdout_tokens_per_param": (40, 80)}
    epoch, curves = chinchilla_csv(data), misfitting_csv(data)
    if epoch.is_file():
        found["epoch_overtraining"] = {"runs": sb.load_runs(epoch), "holdout": holdout,
                                       "budget": None}  # fmt: skip
    if curves.is_file():
        found["misfitting_overtraining"] = {
            "runs": misfitting_final_runs(curves),
            "holdout": holdout,
            "budget": None,
        }
    if names:
        found = {name: spec for name, spec in found.items() if name in names}
    return found
