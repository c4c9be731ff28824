"""Benchmark: does each approach's N* interval hold the optimum measured at held-out budgets?

For Epoch's Chinchilla runs and each Open-Athena isoFLOP experiment, hold out the largest one
and two isoFLOP budgets (sweeps found as approach 2 finds them), fit below, predict N* at the
held-out budgets by approaches 3 (the law) and 2 (isoFLOP minima), and compare with each
held-out sweep's own minimum (approach 2's profile model on its runs alone, so both sides are
uncertain: a prediction covers when the 90 % interval of log N*_predicted - log N*_measured
holds 0). Target: the recommended approach covers 85-95 % of the held-out budgets, pooled.
Writes benchmarks/results/allocation_backtest.json (``--out`` another name). Approach 2 is the
package's default profile model (exponent drift included); ``--measure-shape prior`` measures
the held-out sweeps with the default valley-shape prior instead of the shape learnt below the cut.

Known truth (``--truth``, 2 x 500 draws): the backtest's steps (top budget held out, approach
2) on simulated sweeps (5 budgets 1e18-1e21 x 7 runs, 1 % noise, centred or off-centre) from
Epoch's law
(valleys nearly symmetric, alpha 0.35, beta 0.37) and from an asymmetric one (alpha 0.3,
beta 0.8, as the valleys of Chinchilla's own runs read); per measure shape: how often the
measured interval holds the held-out sweep's true N*, and how often the prediction covers.

    python benchmarks/allocation_backtest.py [--data DIR] [--datasets ...] [--quick]
        [--chains 4 --draws 500 --warmup 500]
    python benchmarks/allocation_backtest.py --truth [--replicates 6]

``--scatter-prior``, ``--minima`` and ``--extrapolation`` change approach 2's model
(``ProfileModel``) for the prediction and the measurement alike: how its default was chosen
(README, approach 2; the extrapolation acts beyond the fitted sweeps only).
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, add_data_argument, machine, write_results
from _datasets import datasets

TARGET = (0.85, 0.95)
# Valleys as Chinchilla's runs read (q ~ 0.9 > p ~ 0.35): N*(1e21) ~ 5e9, curvature ~0.2.
ASYMMETRIC = {"E": 1.82, "A": 482.0, "B": 5.7e7, "alpha": 0.3, "beta": 0.8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", help="subset of tables (default: all found)")
    parser.add_argument("--approaches", nargs="+", default=["3", "2"])
    parser.add_argument("--quick", action="store_true", help="2 chains x 500 draws")
    parser.add_argument("--chains", type=int, help="sampler chains (default: the package's)")
    parser.add_argument("--draws", type=int, help="draws per chain (default: the package's)")
    parser.add_argument("--warmup", type=int, help="warmup per chain (default: the package's)")
    parser.add_argument("--out", default=None, help="file name under benchmarks/results")
    parser.add_argument("--measure-shape", default="fitted", choices=("fitted", "prior"))
    parser.add_argument(
        "--scatter-prior", help="approach 2's prior of tau^2 (default the package's)"
    )
    parser.add_argument(
        "--minima", choices=("polar", "own"), help="how approach 2 samples the sweeps' minima"
    )
    parser.add_argument(
        "--curvature-prior",
        help="approach 2's prior of the sweeps' log-curvature spread squared; 'none': each "
        "sweep's curvature its own prior (the model before pooling)",
    )
    parser.add_argument(
        "--extrapolation",
        choices=("edge", "quadratic"),
        help="how approach 2 carries its drifting curve beyond the fitted sweeps (default the "
        "package's: edge)",
    )
    parser.add_argument(
        "--compute",
        choices=("budget", "6nd"),
        default="budget",
        help="an Open-Athena run's C: its sweep's budget column (default), or 6 N D with the "
        "budget column left out (sweeps found from compute alone)",
    )
    parser.add_argument(
        "--slope-step",
        type=float,
        help="approach 3m's span, e-folds of C, for its local exponent (default the package's)",
    )
    parser.add_argument(
        "--keep",
        type=int,
        help="hold out every budget but the lowest KEEP of each table (one cut, its top budgets "
        "far beyond), instead of the top one and two; rows record how far beyond the largest "
        "fitted budget each held-out one is, and the summary bins them by that",
    )
    parser.add_argument("--truth", action="store_true", help="the known-truth study")
    parser.add_argument("--replicates", type=int, default=6, help="per truth and design (--truth)")
    args = parser.parse_args()
    if args.truth:
        truth(args)
        return
    tables = datasets(args.data, args.datasets, compute=args.compute)
    if not tables:
        print(f"skipped: no public tables found in {args.data}")
        return
    from scalebayes.allocation_backtest import allocation_backtest
    from scalebayes.errors import ScalebayesError

    sampler = {"chains": 2, "draws": 500, "warmup": 500} if args.quick else {}
    sampler |= {k: getattr(args, k) for k in ("chains", "draws", "warmup") if getattr(args, k)}
    from scalebayes.allocation.profile import ProfileModel

    changed = {
        k: getattr(args, k)
        for k in ("scatter_prior", "minima", "extrapolation")
        if getattr(args, k)
    }
    if args.curvature_prior:
        changed["curvature_prior"] = (
            None if args.curvature_prior == "none" else args.curvature_prior
        )
    profile_model = ProfileModel(**changed) if changed else None
    rows, per_table = [], {}
    begun = time.perf_counter()
    for name, spec in tables.items():
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # health is recorded per row
                result = allocation_backtest(
                    spec["runs"],
                    holdout_budgets=holdout(spec["runs"], args.keep),
                    approaches=args.approaches,
                    measure_shape=args.measure_shape,
                    profile_model=profile_model,
                    options={"3m": {"slope_step": args.slope_step}} if args.slope_step else None,
                    **sampler,
                )
        except ScalebayesError as err:  # e.g. approach 2 alone on sweeps without valleys
            print(f"\n{name}: not scored: {err}", flush=True)
            per_table[name] = {"not_scored": str(err)}
            if rows:
                total = time.perf_counter() - begun
                done = len(per_table) == len(tables)
                save(args, sampler, rows, per_table, done=done, wall_s=total)
            continue
        wall = time.perf_counter() - started
        print(f"\n{name} ({wall:.0f} s):\n{result}", flush=True)
        per_table[name] = result.to_dict()
        fitted_top = largest_fitted(spec["runs"], args.keep)
        for row in result.table.to_dict(orient="records"):
            beyond = {} if fitted_top is None else {"beyond": row["budget"] / fitted_top}
            rows.append({"dataset": name, **row, **beyond, "wall_s": wall})
        total = time.perf_counter() - begun
        save(args, sampler, rows, per_table, done=len(per_table) == len(tables), wall_s=total)


def holdout(runs: object, keep: int | None) -> tuple[int, ...]:
    """How many top budgets to hold out: the top one and two, or all but the lowest ``keep``."""
    if keep is None:
        return (1, 2)
    from scalebayes.allocation.budgets import find_budgets

    return (find_budgets(runs).n_budgets - keep,)


def largest_fitted(runs: object, keep: int | None) -> float | None:
    """The largest budget fitted when all but the lowest ``keep`` are held out (else None)."""
    if keep is None:
        return None
    from scalebayes.allocation.budgets import find_budgets

    return float(np.sort(find_budgets(runs).compute)[keep - 1])


# How far beyond the largest fitted budget a held-out one lies, in bins (--keep).
BEYOND_BINS = (1.0, 3.0, 10.0, 30.0, np.inf)


def save(
    args: argparse.Namespace,
    sampler: dict[str, int],
    rows: list[dict],
    per_table: dict,
    *,
    done: bool,
    wall_s: float,
) -> None:
    """Print and write the rows so far (after every table, so a stopped run keeps its tables)."""
    table = pd.DataFrame(rows)
    table["width"] = np.log(table["n_star_upper"] / table["n_star_lower"])  # of the prediction
    # The recommended approach's rows again, as one more "approach" (the target's subject).
    chosen = table[table["recommended"]].assign(approach="recommended")
    scores = {
        "n": ("covers", "size"),
        "coverage": ("covers", "mean"),
        "median_abs_log_error": ("log_error", lambda e: e.abs().median()),
        "mean_log_error": ("log_error", "mean"),
        "mean_interval_score": ("interval_score", "mean"),
        "median_width": ("width", "median"),
        "healthy": ("healthy", "mean"),
    }
    pooled = pd.concat([table, chosen]).groupby("approach", sort=False).agg(**scores)
    by_distance = None
    if "beyond" in table:
        # Tables where every approach ran, so that each bin compares them on the same budgets.
        ran = table.groupby("dataset")["approach"].transform("nunique")
        every = table[ran == table["approach"].nunique()]
        labels = [f"{lo:g}-{hi:g}x" for lo, hi in itertools.pairwise(BEYOND_BINS)]
        binned = every.assign(distance=pd.cut(every["beyond"], BEYOND_BINS, labels=labels))
        by_distance = (
            binned.groupby(["distance", "approach"], observed=True, sort=True)
            .agg(**scores)
            .reset_index()
        )
    info = machine()
    if done:
        columns = ["dataset", "held_out", "approach", "budget", "n_star", "measured",
                   "log_error", "covers", "healthy", "recommended"]  # fmt: skip
        print("\n" + table[columns].to_string(index=False, float_format="{:.3g}".format))
        print("\npooled over tables and cuts (target coverage 85-95 %):")
        print(pooled.to_string(float_format="{:.3f}".format))
        if by_distance is not None:
            print(
                "\nby how far beyond the largest fitted budget (tables where every approach ran):"
            )
            print(by_distance.to_string(index=False, float_format="{:.3f}".format))
        print(
            f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_1min']:.1f}"
        )
    write_results(
        RESULTS / (args.out or "allocation_backtest.json"),
        {
            "settings": {**vars(args), "data": str(args.data), **sampler},
            "complete": done,
            "wall_s": wall_s,  # all tables so far; each row's wall_s is its table's
            "target_coverage_90": TARGET,
            "machine": info,
            "pooled": pooled.reset_index().to_dict("records"),
            "by_distance": None if by_distance is None else by_distance.to_dict("records"),
            "rows": rows,
            "tables": per_table,
        },
    )


def truth(args: argparse.Namespace) -> None:
    """The backtest's pieces on simulated sweeps whose every optimum is known (see above)."""
    import numpy as np
    from _allocation_truth import SIM_BUDGETS, sweeps

    import scalebayes as sb
    from scalebayes.allocation.profile import ProfileModel
    from scalebayes.allocation_backtest import _score
    from scalebayes.simulation import EPOCH_CHINCHILLA

    settings = sb.Settings(chains=2, draws=500, warmup=500)
    law = sb.load_law("chinchilla")
    rows = []
    truths = (("asymmetric", ASYMMETRIC), ("symmetric", EPOCH_CHINCHILLA))
    for rep in range(args.replicates):  # every cell once per round: a stopped run stays balanced
        for (kind, params), centred in itertools.product(truths, (True, False)):
            alpha, beta = params["alpha"], params["beta"]
            g = (alpha * params["A"] / (beta * params["B"])) ** (1 / (alpha + beta))
            n_true = g * (SIM_BUDGETS[-1] / 6) ** (beta / (alpha + beta))
            seed = 1000 * (kind == "asymmetric") + 100 * centred + rep
            runs = sweeps(law, dict(params), centred, seed)
            held = runs.C >= SIM_BUDGETS[-1] * 0.99
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # health is recorded per row
                below = sb.fit_isoflops(runs.subset(~held), settings=settings, seed=seed)
                rng = np.random.default_rng(seed)
                log_pred = np.log(below.optimal([SIM_BUDGETS[-1]]).N.to_numpy().ravel())
                tau = below.posterior["tau"].to_numpy().ravel()
                log_pred = log_pred + tau * rng.standard_normal(tau.size)
                for shape in ("prior", "fitted"):
                    model = ProfileModel()
                    if shape == "fitted":
                        model = ProfileModel(shape_prior=below.shape_as_prior())
                    measured = sb.fit_isoflops(
                        runs.subset(held), model=model, settings=settings, seed=seed,
                        min_budgets=1, edge_sweeps="keep",
                    )  # fmt: skip
                    log_meas = np.log(measured.minima()["N"].to_numpy().ravel())
                    r = _score("top 1", "2", SIM_BUDGETS[-1], log_pred, log_meas, 0.9, rng)
                    rows.append({
                        "truth": kind, "sweeps": "centred" if centred else "off-centre",
                        "seed": seed, "measure_shape": shape, "covers": r["covers"],
                        "log_error": r["log_error"],
                        "measured_holds_truth": bool(
                            r["measured_lower"] <= n_true <= r["measured_upper"]
                        ),
                        "measured_log_error": float(np.log(r["measured"] / n_true)),
                        "measured_log_width": float(
                            np.log(r["measured_upper"] / r["measured_lower"])
                        ),
                        "predicted_holds_truth": bool(
                            r["n_star_lower"] <= n_true <= r["n_star_upper"]
                        ),
                        "healthy": bool(below.diagnostics.ok and measured.diagnostics.ok),
                    })  # fmt: skip
                    print({k: rows[-1][k] for k in list(rows[-1])[:9]}, flush=True)
            save_truth(args, rows)


def save_truth(args: argparse.Namespace, rows: list[dict]) -> None:
    """Summarise and write the known-truth rows so far (after every table)."""
    from _allocation_truth import SIM_BUDGETS

    from scalebayes.simulation import EPOCH_CHINCHILLA

    table = pd.DataFrame(rows)
    summary = (
        table.groupby(["truth", "measure_shape"])
        .agg(
            n=("covers", "size"),
            covers=("covers", "mean"),
            mean_log_error=("log_error", "mean"),
            measured_holds_truth=("measured_holds_truth", "mean"),
            measured_bias=("measured_log_error", "mean"),
            measured_width=("measured_log_width", "median"),
            predicted_holds_truth=("predicted_holds_truth", "mean"),
            healthy=("healthy", "mean"),
        )
        .reset_index()
    )
    print(summary.to_string(index=False, float_format="{:.3f}".format), flush=True)
    write_results(
        RESULTS / (args.out or "allocation_backtest_truth.json"),
        {
            "settings": {"replicates": args.replicates, "chains": 2, "draws": 500, "warmup": 500},
            "design": {
                "budgets": SIM_BUDGETS.tolist(),
                "held_out": "top 1 budget",
                "symmetric": EPOCH_CHINCHILLA,
                "asymmetric": ASYMMETRIC,
            },
            "summary": summary.to_dict("records"),
            "rows": rows,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
