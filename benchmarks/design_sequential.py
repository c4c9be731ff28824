"""Benchmark: sequential design on a real table: which runs to add, against active-selection baselines.

Issue 17, item 2. The table's runs are split by compute: the two cheapest isoFLOP sweeps are
the start (one sweep alone does not identify the law), the top sweep is the target region, and
every other run below it is the candidate pool (cost 6 N D). Each method adds pool runs until
1 %, 5 %, 10 % and 25 % of the pool's compute is spent (sequentially: each level continues the
last), the law is refitted on start + chosen runs (Chinchilla law, plain or with ``--discrepancy
gp``; the same compiled sampler for every fit: the whole table with a mask), and the target
region is scored as new
runs: 90 % interval score of log loss (lower is better), median |error| of log loss, R^2 of the
loss, 90 % coverage, and the 90 % interval of log10 N* at the top budget. Methods:

- ``posterior``: :func:`scalebayes.next_runs`, objective the loss at the target region's
  centre (geometric mean N and D), refitted after every batch of at most ``--batch`` runs;
- ``random``: pool order shuffled, each run taken if it still fits the level's budget;
- ``cheapest``: cheapest first;
- ``cost_random``: random with probability proportional to 1 / cost;
- ``d_optimal``: greedy Bayesian D-optimal per FLOP: the gain in log det of the information
  of the law's log parameters (linearised at the posterior median, starting from the inverse
  posterior covariance), refitted after every level like ``posterior``.

Random methods run ``--seeds`` seeds (mean and spread printed); ``all_pool`` is the fit on
start + the whole pool. Prints a table and writes benchmarks/results/design_sequential.json.

    python benchmarks/design_sequential.py [--data DIR] [--quick]

``--quick``: Epoch's table only, levels 5 % and 25 %, 2 seeds, 2 chains x 500 draws.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, add_data_argument, chinchilla_csv, machine, missing, write_results

LEVELS = (0.01, 0.05, 0.10, 0.25)
QUICK_LEVELS = (0.05, 0.25)


def split(runs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Masks of the start, pool and target runs, and the target (top) budget in FLOPs."""
    from scalebayes.allocation.budgets import find_budgets

    budgets = find_budgets(runs)
    start = np.isin(budgets.index, [0, 1])
    top = budgets.index == budgets.n_budgets - 1
    below = runs.C < budgets.compute[-1] / 10**0.05
    pool = below & ~start & ~top
    return start, pool, top, float(budgets.compute[-1])


def refit(runs: Any, mask: np.ndarray, settings: dict[str, Any], seed: int) -> Any:
    import scalebayes as sb

    settings = dict(settings)
    likelihood = sb.Likelihood(discrepancy=settings.pop("discrepancy"))
    return sb.fit(runs, "chinchilla", likelihood=likelihood, mask=mask, seed=seed, **settings)


def scores(fit: Any, runs: Any, target: np.ndarray, top_budget: float) -> dict[str, float]:
    import warnings

    import scalebayes as sb
    from scalebayes.holdout import pool, score

    rows = score(fit, runs, target)
    out = pool(rows)
    loss, predicted = np.exp(rows["log_loss"]), np.exp(rows["median"])
    out["r2_loss"] = float(1 - np.sum((loss - predicted) ** 2) / np.sum((loss - loss.mean()) ** 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n_star = np.log10(sb.optimal(fit, [top_budget]).N.to_numpy().ravel())
    out["nstar_width_90"] = float(np.diff(np.quantile(n_star, [0.05, 0.95]))[0])
    d = fit.diagnostics
    out.update(max_rhat=d.max_rhat, n_divergent=d.n_divergent)
    return out


def take_in_order(order: np.ndarray, cost: np.ndarray, budget: float) -> list[int]:
    """Runs of ``order`` taken one by one while they fit the budget (skipping those that do not)."""
    chosen, spent = [], 0.0
    for j in order:
        if spent + cost[j] <= budget:
            chosen.append(int(j))
            spent += cost[j]
    return chosen


def d_optimal(fit: Any, pool: pd.DataFrame, budget: float) -> list[int]:
    """Greedy Bayesian D-optimal runs per FLOP, linearised at the posterior median."""
    import jax
    import jax.numpy as jnp

    law = fit.law
    names = list(law.param_names)
    post = fit.posterior
    log_theta = {n: float(np.log(post[n].median())) for n in names}
    draws = np.stack([np.log(post[n].to_numpy().ravel()) for n in names], axis=1)
    info = np.linalg.inv(np.cov(draws, rowvar=False))
    sigma2 = float(post["sigma"].median()) ** 2
    log_inputs = {n: jnp.log(jnp.asarray(pool[n].to_numpy(float))) for n in law.inputs}

    def log_mean(theta: Any) -> Any:
        return law.log_mean({n: jnp.exp(theta[n]) for n in names}, log_inputs)

    jac = jax.jacfwd(log_mean)(log_theta)
    grads = np.stack([np.asarray(jac[n]) for n in names], axis=1)  # (J, P)
    cost = pool["cost"].to_numpy(float)
    chosen, spent = [], 0.0
    open_ = np.ones(len(pool), bool)
    while True:
        fits = open_ & (spent + cost <= budget)
        if not fits.any():
            return chosen
        cov = np.linalg.inv(info)
        # Matrix determinant lemma: log det(I + g g^T / s2) - log det I = log(1 + g^T I^-1 g / s2).
        gain = np.log1p(np.einsum("jp,pq,jq->j", grads, cov, grads) / sigma2)
        j = int(np.argmax(np.where(fits, gain / cost, -np.inf)))
        chosen.append(j)
        spent += cost[j]
        open_[j] = False
        info = info + np.outer(grads[j], grads[j]) / sigma2


def run_table(runs: Any, args: argparse.Namespace, levels: tuple[float, ...]) -> dict[str, Any]:
    import scalebayes as sb

    settings = {"chains": args.chains, "draws": args.draws, "warmup": args.draws,
                "discrepancy": args.discrepancy}  # fmt: skip
    start, pool_mask, target, top_budget = split(runs)
    pool_idx = np.flatnonzero(pool_mask)
    table = runs.table
    pool = pd.DataFrame(
        {"N": table["N"].to_numpy()[pool_idx], "D": table["D"].to_numpy()[pool_idx]}
    ).assign(cost=lambda t: runs.cost_k * t["N"] * t["D"])
    cost = pool["cost"].to_numpy()
    pool_compute = float(cost.sum())
    centre = {n: float(np.exp(np.log(table[n].to_numpy()[target]).mean())) for n in ("N", "D")}
    objective = sb.LossAt(**centre)
    print(
        f"{runs.source}: start {start.sum()} runs, pool {len(pool_idx)} runs "
        f"({pool_compute:.3g} FLOPs), target {target.sum()} runs at {top_budget:.3g} FLOPs"
    )
    first = refit(runs, start, settings, seed=0)
    results: list[dict[str, Any]] = []

    def record(method: str, seed: int, level: float, chosen: list[int], fit: Any, t: float) -> None:
        row = {"method": method, "seed": seed, "level": level, "runs_added": len(chosen),
               "spent_share": float(cost[chosen].sum() / pool_compute), "seconds": t,
               **scores(fit, runs, target, top_budget)}  # fmt: skip
        results.append(row)
        print(
            f"  {method:11s} seed {seed} level {level:4.0%}: {len(chosen):3d} runs, "
            f"IS90 {row['interval_score_90']:.4f}, |err| {row['median_abs_error']:.4f}, "
            f"R2 {row['r2_loss']:.3f}, cover90 {row['coverage_90']:.0%}, "
            f"N* width {row['nstar_width_90']:.3f} dex"
        )

    def mask_of(chosen: list[int]) -> np.ndarray:
        mask = start.copy()
        mask[pool_idx[chosen]] = True
        return mask

    # Methods that only order the pool: the chosen set grows with the level.
    orders: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
        "random": lambda rng: rng.permutation(len(pool)),
        "cheapest": lambda rng: np.argsort(cost, kind="stable"),
        "cost_random": lambda rng: rng.choice(
            len(pool), size=len(pool), replace=False, p=(1 / cost) / (1 / cost).sum()
        ),
    }
    for method, order_of in orders.items():
        seeds = range(1) if method == "cheapest" else range(args.seeds)
        for seed in seeds:
            order = order_of(np.random.default_rng(seed))
            for level in levels:
                t = time.perf_counter()
                chosen = take_in_order(order, cost, level * pool_compute)
                fit = refit(runs, mask_of(chosen), settings, seed=seed + 1)
                record(method, seed, level, chosen, fit, time.perf_counter() - t)

    # Adaptive methods: choose from the current fit and refit. ``posterior`` refits after every
    # batch of at most --batch runs, as next_runs advises (its importance weights collapse after
    # a few informative runs, and a batch chosen on collapsed weights stops early);
    # ``d_optimal`` (a linearisation, no weights) refits after each level.
    def posterior_step(fit: Any, chosen: list[int], budget: float) -> tuple[Any, list[int]]:
        while True:
            remaining = np.setdiff1d(np.arange(len(pool)), chosen)
            left = budget - float(cost[chosen].sum())
            if left < cost[remaining].min():
                return fit, chosen
            result = sb.next_runs(
                fit, pool.iloc[remaining], objective=objective, budget=left, max_runs=args.batch
            )
            if result.batch.empty:
                return fit, chosen
            chosen = chosen + [int(remaining[j]) for j in result.batch["candidate"]]
            fit = refit(runs, mask_of(chosen), settings, seed=1)

    def d_optimal_step(fit: Any, chosen: list[int], budget: float) -> tuple[Any, list[int]]:
        remaining = np.setdiff1d(np.arange(len(pool)), chosen)
        left = budget - float(cost[chosen].sum())
        if left >= cost[remaining].min():
            chosen = chosen + [
                int(remaining[j]) for j in d_optimal(fit, pool.iloc[remaining], left)
            ]
        return refit(runs, mask_of(chosen), settings, seed=1), chosen

    for method, step in (("posterior", posterior_step), ("d_optimal", d_optimal_step)):
        fit, chosen = first, []
        for level in levels:
            t = time.perf_counter()
            fit, chosen = step(fit, chosen, level * pool_compute)
            record(method, 0, level, chosen, fit, time.perf_counter() - t)

    all_pool = refit(runs, start | pool_mask, settings, seed=1)
    record("all_pool", 0, 1.0, list(range(len(pool))), all_pool, 0.0)
    return {"source": runs.source, "start": int(start.sum()), "pool": len(pool_idx),
            "target": int(target.sum()), "top_budget": top_budget, "rows": results}  # fmt: skip


def summary(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    keys = ["interval_score_90", "median_abs_error", "r2_loss", "coverage_90", "nstar_width_90"]
    grouped = frame.groupby(["level", "method"])
    table = grouped[keys].mean().join(grouped["interval_score_90"].std().rename("is90_sd"))
    return table.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--quick", action="store_true", help="levels 5 %% and 25 %%, 2 seeds")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the random methods")
    parser.add_argument("--batch", type=int, default=8, help="posterior: runs per refit")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500, help="draws (and warmup) per chain")
    parser.add_argument(
        "--discrepancy", choices=("none", "gp"), default="none", help="model of every fit"
    )
    parser.add_argument("--out", default=str(RESULTS / "design_sequential.json"))
    args = parser.parse_args()
    data = chinchilla_csv(args.data)
    if missing(data):
        return
    import scalebayes as sb

    sb.configure()
    levels = LEVELS
    if args.quick:
        levels, args.seeds, args.chains, args.draws = QUICK_LEVELS, 2, 2, 500
    start = time.perf_counter()
    with warnings.catch_warnings():  # fits below the top sweep: their diagnostics are in the rows
        warnings.simplefilter("ignore", sb.ConvergenceWarning)
        result = run_table(sb.load_runs(data), args, levels)
    table = summary(result["rows"])
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    write_results(
        Path(args.out),
        {"quick": args.quick, "levels": list(levels), "discrepancy": args.discrepancy,
         "tables": [result],
         "summary": table.to_dict(orient="records"), "seconds": time.perf_counter() - start,
         "machine": machine()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
