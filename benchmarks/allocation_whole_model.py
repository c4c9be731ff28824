"""Benchmark: N* from the whole default model (law + GP) against the law's own, at held-out sweeps.

Issue 14's allocation backtest scores approach 3 with the plain law, whose N* misses most
held-out optima (its shape misses the runs). The default fit carries a GP discrepancy that
models what the law misses; ``optimal`` still minimises the law alone. This asks whether the
whole model's minimum holds the measured optimum more often: for Epoch's table and each
Open-Athena experiment, hold out the top one and two isoFLOP budgets, fit the default model
(law + GP) below, and per posterior draw take

- ``law``: the law's own N* (``sb.optimal``, as approach 3 reports it);
- ``whole model``: the N minimising the whole model's mean loss along the held-out budget's
  isoFLOP line (a grid of 0.02 in log N, +-2.5 around the law's median N*; draws at the grid's
  ends are counted).

Each is scored against the held-out sweep's own optimum as the allocation backtest measures it
(approach 2's profile model on the held-out runs alone, the valley shape learnt below the cut):
a prediction covers when the 90 % interval of log N*_predicted - log N*_measured holds 0.
Prints a row per held-out budget and the pooled coverage, median |log error| and median width;
writes benchmarks/results/allocation_whole_model.json.

    python benchmarks/allocation_whole_model.py [--data DIR] [--datasets NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, add_data_argument, machine, write_results
from _datasets import datasets

GRID_HALF_WIDTH = 2.5  # e-folds of N either side of the law's median N*
GRID_STEP = 0.02
PROB = 0.9


def whole_model_n_star(fit: Any, budget: float, around: float) -> tuple[np.ndarray, float]:
    """log N minimising the whole model's mean loss at ``budget`` FLOPs, per draw; share at an end."""
    from scalebayes.prediction import log_mean_at

    grid = np.log(around) + np.arange(-GRID_HALF_WIDTH, GRID_HALF_WIDTH + 1e-9, GRID_STEP)
    n = np.exp(grid)
    points = pd.DataFrame({"N": n, "D": budget / (fit.runs.cost_k * n)})
    log_mean = np.asarray(log_mean_at(fit, points)).reshape(-1, grid.size)
    best = np.argmin(log_mean, axis=1)
    return grid[best], float(np.mean((best == 0) | (best == grid.size - 1)))


def score(log_pred: np.ndarray, log_meas: np.ndarray, rng: np.random.Generator) -> dict:
    """Coverage of 0 by the 90 % interval of the difference, median error, width (log N)."""
    tail = (1 - PROB) / 2
    difference = log_pred - rng.choice(log_meas, size=log_pred.size, replace=True)
    low, high = np.quantile(difference, [tail, 1 - tail])
    return {
        "covers": bool(low <= 0.0 <= high),
        "log_error": float(np.median(log_pred) - np.median(log_meas)),
        "width": float(high - low),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", help="subset of tables (default: all found)")
    parser.add_argument("--out", default="allocation_whole_model.json")
    args = parser.parse_args()
    tables = datasets(args.data, args.datasets)
    if not tables:
        print(f"skipped: no public tables found in {args.data}")
        return
    import scalebayes as sb
    from scalebayes.allocation.budgets import find_budgets

    sb.configure()
    rng = np.random.default_rng(0)
    rows = []
    started = time.perf_counter()
    for name, spec in tables.items():
        runs = spec["runs"]
        budgets = find_budgets(runs)
        for k in (1, 2):
            sweeps = np.arange(budgets.n_budgets - k, budgets.n_budgets)
            held = np.isin(budgets.index, sweeps)
            below = runs.C < runs.C[held].min()
            held_budgets = budgets.compute[sweeps]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # beyond the fitted runs on purpose
                fit = sb.fit(runs, "chinchilla", mask=below)  # the default model: law + GP
                law = np.log(sb.optimal(fit, held_budgets).N.to_numpy()).reshape(-1, k)
                shape = sb.fit_isoflops(runs.subset(below)).shape_as_prior()
                measured = sb.fit_isoflops(
                    runs.subset(held),
                    model=dataclasses.replace(sb.ProfileModel(), shape_prior=shape),
                    min_budgets=1,
                    edge_sweeps="keep",
                )
            log_meas = np.log(measured.minima()["N"].to_numpy()).reshape(-1, k)
            for j, budget in enumerate(held_budgets):
                whole, at_end = whole_model_n_star(fit, budget, np.exp(np.median(law[:, j])))
                row = {"dataset": name, "held_out": f"top {k}", "budget": float(budget),
                       "healthy": bool(fit.diagnostics.ok and measured.diagnostics.ok),
                       "whole_model_at_grid_end": at_end}  # fmt: skip
                for label, pred in (("law", law[:, j]), ("whole_model", whole)):
                    row |= {
                        f"{label}_{key}": v for key, v in score(pred, log_meas[:, j], rng).items()
                    }
                rows.append(row)
                print(
                    f"{name:45s} top {k} {budget:9.3g}: law {row['law_covers']!s:5} "
                    f"{row['law_log_error']:+.3f}  whole model {row['whole_model_covers']!s:5} "
                    f"{row['whole_model_log_error']:+.3f}",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    pooled = {
        label: {
            "n": len(table),
            "coverage": float(table[f"{label}_covers"].mean()),
            "median_abs_log_error": float(table[f"{label}_log_error"].abs().median()),
            "median_width": float(table[f"{label}_width"].median()),
        }
        for label in ("law", "whole_model")
    }
    for label, p in pooled.items():
        print(f"{label:12s} covers {p['coverage']:.0%} of {p['n']}, median |log error| "
              f"{p['median_abs_log_error']:.3f}, median width {p['median_width']:.3f}")  # fmt: skip
    write_results(
        RESULTS / args.out,
        {"settings": {"data": str(args.data), "datasets": args.datasets, "prob": PROB,
                      "grid_half_width": GRID_HALF_WIDTH, "grid_step": GRID_STEP},
         "pooled": pooled, "rows": rows, "wall_s": time.perf_counter() - started,
         "machine": machine()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
