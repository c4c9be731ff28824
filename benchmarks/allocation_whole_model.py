"""Benchmark: N* from the whole default model (law + GP) against the law's own, at held-out sweeps.

Issue 14's allocation backtest scores approach 3 with the plain law, whose N* misses most
held-out optima (its shape misses the runs). The default fit carries a GP discrepancy that
models what the law misses; ``optimal`` still minimises the law alone. This asks whether the
whole model's minimum holds the measured optimum more often: for Epoch's table and each
Open-Athena experiment, hold out the top one and two isoFLOP budgets, fit the default model
(law + GP) below, and per posterior draw take

- ``law``: the law's own N* (``sb.optimal``, as approach 3 reports it);
- ``whole model``: the N minimising the whole model's mean loss along the held-out budget's
  isoFLOP line (the package's ``whole_model_minimum``: a grid of 0.02 in log N, +-2.5 around
  the law's median N*, refined to the vertex of the parabola through the best point and its
  neighbours; draws at the grid's ends are counted).

Each is scored against the held-out sweep's own optimum as the allocation backtest measures it
(approach 2's profile model on the held-out runs alone, the valley shape learnt below the cut):
a prediction covers when the 90 % interval of log N*_predicted - log N*_measured holds 0.
Two more carry the whole model's minimum at the largest fitted budget C_e on beyond it, as
approach 2 carries its edge: ``edge`` with the law's own change of log N* from C_e (the whole
model where the GP has runs, the law's exponent beyond), ``edge_slope`` straight in log N-log C
with the whole model's own local exponent at C_e (its minima at C_e and C_e / e, per draw).

Prints a row per held-out budget and the pooled coverage, median |log error| and median width;
writes benchmarks/results/allocation_whole_model.json.

``--truth``: known truth 100x beyond the data, the isoFLOP sweeps of
``allocation_approaches.py --truth`` (5 budgets 1e18-1e21 x 7 runs, 1 % noise, centred or
off-centre; exact Chinchilla law or the bent one; ``--scatter``: each sweep's own optimum off
the truth's line), the default model fitted (2 x 500 draws); coverage of the true N* 100x beyond
the largest sweep and of the true local exponent a at the sweeps' mean log budget by the law's
own allocation and by the package's approach 3m (``sb.optimal(..., approach="3m")``, the
``edge_slope`` above), and of N* by the whole model's own minimum that far out, each with its
90 % interval score, and which of the two ``--approach all`` recommends; writes
allocation_3m_truth.json. ``--design ladder`` and ``--design gadre`` simulate over-training
ladders instead (the latter Gadre et al.'s kind, whose runs share budgets by chance).

    python benchmarks/allocation_whole_model.py [--data DIR] [--datasets NAME ...]
    python benchmarks/allocation_whole_model.py --truth [--replicates 10] [--scatter 0.1]
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

PROB = 0.9
LABELS = ("law", "whole_model", "edge", "edge_slope")
TRUTH_LABELS = ("law", "3m", "whole_model")
# --design ladder: an over-training ladder, 5 sizes each at 6 tokens-per-parameter ratios 5-160
# (as allocation_approaches.py --envelope-truth --design ladder): no isoFLOP sweeps.
LADDER = pd.DataFrame(
    [(n, n * t) for n in np.geomspace(5e7, 2e9, 5) for t in np.geomspace(5, 160, 6)],
    columns=["N", "D"],
)
# --design gadre: Gadre et al. (2024)'s kind of over-training ladder, sizes x2 apart (11M-1.4B)
# each at 20-640 tokens per parameter (x2 apart), up to 1e21 FLOPs (44 runs): C = 6 r N^2
# repeats along (2N, r/4), so runs share budgets by chance, 3 to a group, with no valley.
GADRE = pd.DataFrame(
    [(n, n * t) for n in 1.1e7 * 2.0 ** np.arange(8) for t in 20 * 2.0 ** np.arange(6)
     if 6 * n * n * t <= 1e21],
    columns=["N", "D"],
)  # fmt: skip
DESIGNS = {"ladder": LADDER, "gadre": GADRE}
SLOPE_STEP = 1.0  # e-folds of C below C_e for the whole model's local exponent


def whole_model_n_star(fit: Any, budget: float) -> tuple[np.ndarray, float]:
    """log N minimising the whole model's mean loss at ``budget`` FLOPs, per draw; share at an end.

    The package's own search (:func:`scalebayes.allocation.whole_model.whole_model_minimum`).
    """
    from scalebayes.allocation.whole_model import whole_model_minimum

    log_n, at_end = whole_model_minimum(fit, [budget], fit.runs.cost_k)
    return log_n[:, 0], float(at_end.mean())


def edge_carried(fit: Any, edge_budget: float) -> tuple[np.ndarray, np.ndarray]:
    """The whole model's log N* at ``edge_budget`` per draw, and its local exponent there."""
    at_edge, _ = whole_model_n_star(fit, edge_budget)
    below, _ = whole_model_n_star(fit, edge_budget * np.exp(-SLOPE_STEP))
    return at_edge, (at_edge - below) / SLOPE_STEP


def score(log_pred: np.ndarray, log_meas: np.ndarray, rng: np.random.Generator) -> dict:
    """The allocation backtest's score of one held-out budget: covers, log error, width (log N)."""
    from scalebayes.allocation_backtest import _score

    row = _score("", "", 0.0, log_pred, log_meas, PROB, rng)
    return {key: row[key] for key in ("covers", "log_error", "width")}


def true_slope(law: Any, params: dict[str, float], edge: float, step: float) -> float:
    """The truth's change of log N* from ``edge * e^-step`` to ``edge``, per e-fold of C."""
    from _allocation_truth import true_n_star

    ends = np.log(true_n_star(law, params, edge * np.exp(np.array([-step, 0.0]))))
    return float((ends[1] - ends[0]) / step)


def truth(args: argparse.Namespace) -> None:
    """Coverage of the true a and N* 100x beyond simulated sweeps: the law's against approach 3m."""
    from _allocation_truth import (
        BEYOND,
        SIM_BUDGETS,
        SIM_NOISE,
        local_exponents,
        sweeps,
        true_n_star,
        truth_law,
    )

    import scalebayes as sb
    from scalebayes.allocation.whole_model import whole_model_minimum
    from scalebayes.scoring import interval_score

    sb.configure()
    if args.design == "sweeps":
        compute = SIM_BUDGETS
    else:  # an over-training ladder: sizes x tokens-per-parameter ratios, no shared budgets
        compute = 6 * DESIGNS[args.design]["N"] * DESIGNS[args.design]["D"]
    ref = BEYOND * compute.max()
    centre = float(np.exp(np.log(compute).mean()))  # where a is scored (approach 2: the same)
    rows = []
    started = time.perf_counter()
    for kind in ("exact", "bent"):
        law, params = truth_law(kind)
        log_true = float(np.log(true_n_star(law, params, np.array([ref]))[0]))
        if args.design == "sweeps":
            a_true, _ = local_exponents(law, params)
        else:  # the same centred difference, at this design's centre
            ends = np.log(true_n_star(law, params, centre * np.exp(np.array([-0.5, 0.5]))))
            a_true = float(ends[1] - ends[0])
        for centred in (True, False):
            for rep in range(args.replicates):
                seed = 1000 * (kind == "bent") + 100 * centred + rep
                if args.design == "sweeps":
                    runs = sweeps(law, params, centred, seed, scatter=args.scatter)
                else:  # "centred" is only a second set of seeds here
                    runs = sb.simulate(
                        law, params, DESIGNS[args.design], noise=SIM_NOISE, seed=seed
                    )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # beyond the data on purpose
                    fit = sb.fit(runs, "chinchilla", chains=2, draws=500, warmup=500, seed=seed)
                    law_n = sb.optimal(fit, [centre, ref])
                    # 3m's exponent is the change of its N* over slope_step e-folds below a
                    # budget: asked at centre * e^(slope_step / 2), it is centred on the sweeps'
                    # mean log budget.
                    whole_n = sb.optimal(
                        fit,
                        [centre * np.exp(args.slope_step / 2), ref],
                        approach="3m",
                        slope_step=args.slope_step,
                    )
                    far, at_end = whole_model_minimum(fit, [ref], fit.runs.cost_k)
                    # What --approach all recommends between the two (3m samples nothing).
                    side = sb.compare_approaches(fit, [ref], approaches=("3", "3m"))
                estimates = {
                    "law": (law_n.exponent_N.isel(budget=0), np.log(law_n.N.isel(budget=1))),
                    "3m": (whole_n.exponent_N.isel(budget=0), np.log(whole_n.N.isel(budget=1))),
                    "whole_model": (None, far[:, 0]),
                }
                row = {"truth": kind, "centred": centred, "seed": seed,
                       "healthy": bool(fit.diagnostics.ok), "edge_sweeps": whole_n.edge_sweeps,
                       "edge_budget": whole_n.edge_budget,
                       # 3m's exponent beyond the edge (its median), and the truth's there.
                       "3m_edge_slope": float(whole_n.exponent_N.isel(budget=1).median()),
                       "true_edge_slope": true_slope(law, params, whole_n.edge_budget,
                                                     args.slope_step),
                       "whole_model_at_grid_end": float(at_end.mean()),
                       "recommended": {"3": "law", "3m": "3m"}[side.recommended]}  # fmt: skip
                for label, (a, log_n) in estimates.items():
                    low, median, high = np.quantile(np.asarray(log_n).ravel(), [0.05, 0.5, 0.95])
                    row |= {f"{label}_covers": bool(low <= log_true <= high),
                            f"{label}_log_error": float(median - log_true),
                            f"{label}_width": float(high - low),
                            f"{label}_interval_score": float(
                                interval_score(low, high, log_true, alpha=1 - PROB))}  # fmt: skip
                    if a is not None:
                        a_low, a_high = np.quantile(np.asarray(a).ravel(), [0.05, 0.95])
                        row[f"{label}_a_covers"] = bool(a_low <= a_true <= a_high)
                for key in ("covers", "interval_score"):
                    row[f"recommended_{key}"] = row[f"{row['recommended']}_{key}"]
                rows.append(row)
                print(
                    f"{kind} {'centred' if centred else 'off-centre'} {seed}: "
                    + "  ".join(
                        f"{m} N* {row[f'{m}_covers']!s:5} {row[f'{m}_log_error']:+.2f}"
                        for m in TRUTH_LABELS
                    )
                    + f"  a: law {row['law_a_covers']} 3m {row['3m_a_covers']}"
                    + f"  recommended {row['recommended']}",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    pooled = {
        kind: {label: {"n_star_coverage": float(part[f"{label}_covers"].mean()),
                       "a_coverage": (float(part[f"{label}_a_covers"].mean())
                                      if f"{label}_a_covers" in part else None),
                       "median_log_error": float(part[f"{label}_log_error"].median()),
                       "median_width": float(part[f"{label}_width"].median()),
                       "mean_interval_score": float(part[f"{label}_interval_score"].mean())}
               for label in TRUTH_LABELS}
        for kind, part in table.groupby("truth")
    }  # fmt: skip
    for kind, part in table.groupby("truth"):
        pooled[kind]["recommended"] = {
            "share_3m": float((part["recommended"] == "3m").mean()),
            "n_star_coverage": float(part["recommended_covers"].mean()),
            "mean_interval_score": float(part["recommended_interval_score"].mean()),
        }
    for kind, by in pooled.items():
        for label, p in by.items():
            if label == "recommended":
                print(f"{kind:5s} recommended: 3m on {p['share_3m']:.0%} of tables, N* covered "
                      f"{p['n_star_coverage']:.0%}, mean interval score "
                      f"{p['mean_interval_score']:.2f}")  # fmt: skip
                continue
            a = "" if p["a_coverage"] is None else f", a covered {p['a_coverage']:.0%}"
            print(f"{kind:5s} {label:12s} N* covered {p['n_star_coverage']:.0%}{a}, median log "
                  f"error {p['median_log_error']:+.3f}, median width {p['median_width']:.2f}, "
                  f"mean interval score {p['mean_interval_score']:.2f}")  # fmt: skip
    write_results(
        RESULTS / args.out,
        {"settings": {"replicates": args.replicates, "beyond": BEYOND, "chains": 2, "draws": 500,
                      "design": args.design, "slope_step": args.slope_step,
                      "compute": compute.tolist(), "scatter": args.scatter, "a_scored_at": centre},
         "pooled": pooled, "rows": rows, "wall_s": time.perf_counter() - started,
         "machine": machine()},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", help="subset of tables (default: all found)")
    parser.add_argument(
        "--out",
        help="file name under benchmarks/results (default allocation_whole_model.json; "
        "--truth: allocation_3m_truth.json)",
    )
    parser.add_argument(
        "--slope-step",
        type=float,
        default=1.0,
        help="--truth: e-folds of C over which 3m takes its local exponent (the package's: 1)",
    )
    parser.add_argument(
        "--design",
        choices=("sweeps", "ladder", "gadre"),
        default="sweeps",
        help="--truth: isoFLOP sweeps (default), an over-training ladder (5 sizes x 6 "
        "tokens-per-parameter ratios 5-160, no sweeps), or Gadre et al.'s kind (8 sizes x2 apart "
        "at 20-640 tokens per parameter, budgets shared by chance); for the ladders 'centred' "
        "is a second set of seeds",
    )
    parser.add_argument(
        "--scatter",
        type=float,
        default=0.0,
        help="--truth: each sweep's own optimum off the truth's N*(C) by Normal(0, scatter) in log N",
    )
    parser.add_argument("--truth", action="store_true", help="known truth 100x beyond")
    parser.add_argument("--replicates", type=int, default=10, help="per truth and design (--truth)")
    args = parser.parse_args()
    args.out = args.out or (
        "allocation_3m_truth.json" if args.truth else "allocation_whole_model.json"
    )
    if args.truth:
        truth(args)
        return
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
            edge_budget = budgets.compute[budgets.n_budgets - k - 1]  # the top fitted sweep
            law_edge = np.log(sb.optimal(fit, [edge_budget]).N.to_numpy()).reshape(-1)
            whole_edge, slope = edge_carried(fit, edge_budget)
            for j, budget in enumerate(held_budgets):
                whole, at_end = whole_model_n_star(fit, budget)
                edge = whole_edge + law[:, j] - law_edge
                edge_slope = whole_edge + slope * np.log(budget / edge_budget)
                row = {"dataset": name, "held_out": f"top {k}", "budget": float(budget),
                       "healthy": bool(fit.diagnostics.ok and measured.diagnostics.ok),
                       "whole_model_at_grid_end": at_end}  # fmt: skip
                for label, pred in (("law", law[:, j]), ("whole_model", whole), ("edge", edge),
                                    ("edge_slope", edge_slope)):  # fmt: skip
                    row |= {
                        f"{label}_{key}": v for key, v in score(pred, log_meas[:, j], rng).items()
                    }
                rows.append(row)
                print(
                    f"{name:45s} top {k} {budget:9.3g}: law {row['law_covers']!s:5} "
                    f"{row['law_log_error']:+.3f}  whole model {row['whole_model_covers']!s:5} "
                    f"{row['whole_model_log_error']:+.3f}  edge {row['edge_covers']!s:5} "
                    f"{row['edge_log_error']:+.3f}  edge_slope {row['edge_slope_covers']!s:5} "
                    f"{row['edge_slope_log_error']:+.3f}",
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
        for label in LABELS
    }
    for label, p in pooled.items():
        print(f"{label:12s} covers {p['coverage']:.0%} of {p['n']}, median |log error| "
              f"{p['median_abs_log_error']:.3f}, median width {p['median_width']:.3f}")  # fmt: skip
    write_results(
        RESULTS / args.out,
        {"settings": {"data": str(args.data), "datasets": args.datasets, "prob": PROB,
                      "search": "scalebayes.allocation.whole_model.whole_model_minimum"},
         "pooled": pooled, "rows": rows, "wall_s": time.perf_counter() - started,
         "machine": machine()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
