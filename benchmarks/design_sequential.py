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

- ``posterior``: :func:`scalebayes.next_runs`, refitted after every batch of at most
  ``--batch`` runs; objective (``--objective``) ``loss`` (default): the width of the loss
  interval at the target region's centre (geometric mean N and D); or ``region``: the mean sd
  of the log loss over the target region's runs (:class:`scalebayes.LossOver`), what
  ``v_optimal`` and ``li_mixture`` aim at (it scored worse: benchmarks/README.md); or
  ``region_run``: the same with one noise draw per draw and run, new runs' losses as the
  score reads them;
- ``random``: pool order shuffled, each run taken if it still fits the level's budget;
- ``cheapest``: cheapest first;
- ``cost_random``: random with probability proportional to 1 / cost;
- ``d_optimal``: greedy Bayesian D-optimal per FLOP: the gain in log det of the information
  of the law's log parameters (linearised at the posterior median, starting from the inverse
  posterior covariance), refitted after every level like ``posterior``;
- ``v_optimal``: greedy Bayesian V-optimal per FLOP: the cut in the mean variance of the log
  loss over the target region's runs, the same linearisation;
- ``li_mixture``: the V-optimal cut averaged over 5 linearisation points drawn from the
  posterior: the expected reduction of the target region's prediction error under a Laplace
  mixture, as Li et al. 2026 select runs (their mixture comes from multi-start fits);
- ``kalman`` (only when named in ``--methods``): ``posterior``'s objective, batches and refits,
  but each batch chosen by a linear-Gaussian update on the draws instead of importance weights:
  the objective and every candidate's log mean per draw taken as jointly Gaussian with their
  covariance over the draws (the whole model's, discrepancy included), so a batch is never
  limited by the weights' effective sample size. A check of ``posterior``'s weights, not a
  baseline;
- ``refit_check`` (only when named): each ``posterior`` batch set against V-optimal's runs for
  the same FLOPs, each refitted on CHECK_OUTCOMES outcome sets drawn from the fit's posterior
  predictive, the batch whose refits leave the objective narrower kept: the model's exact
  preposterior, without the weights' or a linearisation's approximation. A check, not a
  baseline.

Random methods run ``--seeds`` seeds (mean and spread printed); ``all_pool`` is the fit on
start + the whole pool. Tables: Epoch's and every Open-Athena experiment (``--tables``). Prints
a table per table and level, then per level on how many tables ``posterior`` beats every
baseline's mean interval score and on how many it is worse than random by more than random's
seed spread (issue 17's targets), each method's mean rank over the tables, and on how many
tables the best method's lead exceeds random's seed spread; writes
benchmarks/results/design_sequential.json.

    python benchmarks/design_sequential.py [--data DIR] [--tables NAME ...] [--quick]

``--quick``: Epoch's table unless ``--tables``, levels 5 % and 25 %, 2 seeds, 2 x 500 draws.
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
METHODS = ("random", "cheapest", "cost_random", "posterior", "d_optimal", "v_optimal",
           "li_mixture", "kalman", "refit_check", "all_pool")  # fmt: skip
OURS = ("posterior", "kalman", "refit_check")  # adaptive methods of ours
ON_DEMAND = ("kalman", "refit_check")  # checks of posterior, run only when named
CHECK_OUTCOMES = 3  # refit_check: simulated outcome sets per contender batch
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


def pool_frame(runs: Any, pool_mask: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """The pool's rows in the table, and its runs: N, D and cost (the table's k N D)."""
    pool_idx = np.flatnonzero(pool_mask)
    table = runs.table
    pool = pd.DataFrame(
        {"N": table["N"].to_numpy()[pool_idx], "D": table["D"].to_numpy()[pool_idx]}
    ).assign(cost=lambda t: runs.cost_k * t["N"] * t["D"])
    return pool_idx, pool


def target_centre(runs: Any, target: np.ndarray) -> dict[str, float]:
    """N and D at the target sweep's centre (geometric means of its runs')."""
    return {n: float(np.exp(np.log(runs.table[n].to_numpy()[target]).mean())) for n in ("N", "D")}


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


def _runs_over() -> type:
    import scalebayes as sb

    class RunsOver(sb.LossOver):
        """The target runs' mean predictive sd of log loss: LossOver with one noise draw per
        draw and run (a fixed seed), as the benchmark scores new runs' predictive intervals."""

        def per_draw(self, fit: Any) -> np.ndarray:
            from scalebayes.prediction import noise_draws

            mean = super().per_draw(fit)
            chains, draws = fit.posterior["sigma"].shape[:2]
            noise = noise_draws(fit, (chains, draws, mean.shape[1]), seed=0)
            return mean + noise.reshape(mean.shape)

    return RunsOver


def take_in_order(order: np.ndarray, cost: np.ndarray, budget: float) -> list[int]:
    """Runs of ``order`` taken one by one while they fit the budget (skipping those that do not)."""
    chosen, spent = [], 0.0
    for j in order:
        if spent + cost[j] <= budget:
            chosen.append(int(j))
            spent += cost[j]
    return chosen


def _linearised(fit: Any, frame: pd.DataFrame, at: dict[str, float]) -> np.ndarray:
    """d log mean / d log parameter at ``frame``'s (N, D), the parameters at ``at``: (rows, P)."""
    from scalebayes.formula_jacobian import log_jacobian

    law = fit.law
    log_inputs = {n: np.log(frame[n].to_numpy(float)) for n in law.inputs}
    jac = log_jacobian(law.expr, at, log_inputs, law.param_names)  # d / d parameter
    return jac * np.array([at[n] for n in law.param_names])  # d / d log parameter


def _log_draws(fit: Any) -> np.ndarray:
    """The law's parameters' posterior draws, on the log scale: (draws, P)."""
    post = fit.posterior
    return np.stack([np.log(post[n].to_numpy().ravel()) for n in fit.law.param_names], axis=1)


def _greedy(
    cost: np.ndarray,
    budget: float,
    gain: Callable[[], np.ndarray],
    take: Callable[[int], None],
    *,
    per_flop: bool = True,
    max_runs: int | None = None,
    floor: float = -np.inf,
) -> list[int]:
    """Runs picked one at a time by the most ``gain()`` per FLOP (or in all) while they fit.

    ``take(j)`` updates what ``gain`` reads once run ``j`` is picked; a run is picked only
    while its gain exceeds ``floor``, and at most ``max_runs`` of them.
    """
    chosen, spent = [], 0.0
    open_ = np.ones(len(cost), bool)
    while max_runs is None or len(chosen) < max_runs:
        g = gain()
        fits = open_ & (spent + cost <= budget) & (g > floor)
        if not fits.any():
            break
        j = int(np.argmax(np.where(fits, g / cost if per_flop else g, -np.inf)))
        chosen.append(j)
        spent += cost[j]
        open_[j] = False
        take(j)
    return chosen


def d_optimal(fit: Any, pool: pd.DataFrame, budget: float) -> list[int]:
    """Greedy Bayesian D-optimal runs per FLOP, linearised at the posterior median."""
    names = list(fit.law.param_names)
    at = {n: float(fit.posterior[n].median()) for n in names}
    info = [np.linalg.inv(np.cov(_log_draws(fit), rowvar=False))]
    sigma2 = float(fit.posterior["sigma"].median()) ** 2
    grads = _linearised(fit, pool, at)  # (J, P)

    def gain() -> np.ndarray:
        # Matrix determinant lemma: log det(I + g g' / s2) - log det I = log(1 + g' I^-1 g / s2).
        cov = np.linalg.inv(info[0])
        return np.log1p(np.einsum("jp,pq,jq->j", grads, cov, grads) / sigma2)

    def take(j: int) -> None:
        info[0] = info[0] + np.outer(grads[j], grads[j]) / sigma2

    return _greedy(pool["cost"].to_numpy(float), budget, gain, take)


def v_optimal(
    fit: Any, pool: pd.DataFrame, target: pd.DataFrame, budget: float, components: int = 1
) -> list[int]:
    """Greedy Bayesian V-optimal runs per FLOP: the most reduction of the target's mean variance.

    The variance is of the log mean loss at the target region's runs, linearised in the law's
    log parameters with the posterior covariance as the prior. ``components=1`` linearises at
    the posterior median (V-optimal). ``components=K > 1`` averages the reduction over K
    linearisation points, the posterior draws at K evenly spaced ranks of the log loss at the
    target's centre: a Laplace mixture of fits in the spirit of Li et al. 2026 ("Spend Less,
    Fit Better", arXiv 2604.22753), whose fits come from multi-start optimisation instead.
    """
    names = list(fit.law.param_names)
    draws = _log_draws(fit)
    covariance = np.cov(draws, rowvar=False)
    sigma2 = float(fit.posterior["sigma"].median()) ** 2
    if components == 1:
        points = [{n: float(fit.posterior[n].median()) for n in names}]
    else:
        centre = {n: np.exp(np.log(target[n].to_numpy(float)).mean()) for n in fit.law.inputs}
        log_inputs = {n: np.log(v) for n, v in centre.items()}
        params = {n: np.exp(draws[:, k]) for k, n in enumerate(names)}
        order = np.argsort(np.asarray(fit.law.log_mean(params, log_inputs, xp=np)))
        ranks = ((np.arange(components) + 0.5) / components * len(order)).astype(int)
        points = [
            {n: float(np.exp(draws[order[r], k])) for k, n in enumerate(names)} for r in ranks
        ]
    grads = [_linearised(fit, pool, at) for at in points]  # each (J, P)
    aims = [_linearised(fit, target, at) for at in points]  # each (T, P)
    covs = [covariance.copy() for _ in points]

    def gain() -> np.ndarray:
        # Sherman-Morrison: adding run g cuts the variance at t by (g' S a_t)^2 / (s2 + g' S g).
        total = np.zeros(len(pool))
        for g, a, cov in zip(grads, aims, covs, strict=True):
            cross = g @ cov @ a.T  # (J, T)
            own = np.einsum("jp,pq,jq->j", g, cov, g)
            total += np.mean(cross**2, axis=1) / (sigma2 + own)
        return total

    def take(j: int) -> None:
        for k, (g, cov) in enumerate(zip(grads, covs, strict=True)):
            v = cov @ g[j]
            covs[k] = cov - np.outer(v, v) / (sigma2 + g[j] @ v)

    return _greedy(pool["cost"].to_numpy(float), budget, gain, take)


def kalman(fit: Any, pool: pd.DataFrame, objective: Any, budget: float, max_runs: int) -> list[int]:
    """Greedy runs by the cut in the objective's sd, jointly Gaussian over the draws.

    (q, log mean at each candidate) per posterior draw, their empirical covariance as the prior
    of a linear-Gaussian update, each run observed with the noise's Fisher-equivalent variance.
    An objective of several quantities per draw (``LossOver``: the target runs' log losses) is
    scored by their mean sd. Two greedy batches (per FLOP and by reduction), the smaller final
    mean sd kept.
    """
    model = objective.model(fit)
    from scalebayes.prediction import log_mean_at

    n_draws = model.posterior["sigma"].size
    q = np.asarray(objective.per_draw(model), float).reshape(n_draws, -1)
    mu = np.asarray(log_mean_at(model, pool)).reshape(n_draws, -1)
    t = q.shape[1]  # quantities in the objective
    cov0 = np.cov(np.column_stack([q, mu]), rowvar=False)
    post, likelihood = model.posterior, model.likelihood
    nu = post["nu"].to_numpy() if likelihood.estimates_nu else likelihood.df
    # Each run's noise as the variance carrying its Fisher information, averaged over draws.
    r = 1.0 / float(np.mean(likelihood.location_information(post["sigma"].to_numpy(), nu)))
    cost = pool["cost"].to_numpy(float)

    def mean_sd(c: np.ndarray) -> float:
        return float(np.mean(np.sqrt(np.maximum(np.diag(c)[:t], 0))))

    def greedy(per_flop: bool) -> tuple[list[int], float]:
        cov = [cov0.copy()]

        def gain() -> np.ndarray:  # the cut in the objective's mean sd by each candidate
            c = cov[0]
            cross = c[:t, t:]  # (T, J)
            after = np.diag(c)[:t, None] - cross**2 / (np.diag(c)[t:] + r)[None, :]
            return mean_sd(c) - np.mean(np.sqrt(np.maximum(after, 0)), axis=0)

        def take(j: int) -> None:
            v = cov[0][:, t + j].copy()
            cov[0] = cov[0] - np.outer(v, v) / (cov[0][t + j, t + j] + r)

        chosen = _greedy(cost, budget, gain, take, per_flop=per_flop, max_runs=max_runs,
                         floor=1e-3 * mean_sd(cov0))  # fmt: skip
        return chosen, mean_sd(cov[0])

    a, b = greedy(True), greedy(False)
    return a[0] if a[1] <= b[1] else b[0]


def run_table(runs: Any, args: argparse.Namespace, levels: tuple[float, ...]) -> dict[str, Any]:
    import scalebayes as sb
    from scalebayes.design.weights import spread_under

    settings = {"chains": args.chains, "draws": args.draws, "warmup": args.draws,
                "discrepancy": args.discrepancy}  # fmt: skip
    start, pool_mask, target, top_budget = split(runs)
    pool_idx, pool = pool_frame(runs, pool_mask)
    table = runs.table
    cost = pool["cost"].to_numpy()
    pool_compute = float(cost.sum())
    if args.objective == "region":
        objective = sb.LossOver(N=table["N"].to_numpy()[target], D=table["D"].to_numpy()[target])
    elif args.objective == "region_run":
        runs_over = _runs_over()  # a class: defined once scalebayes is imported
        objective = runs_over(N=table["N"].to_numpy()[target], D=table["D"].to_numpy()[target])
    elif args.objective == "run":  # what the target runs are scored by: a new run's interval
        objective = sb.RunLossAt(**target_centre(runs, target))
    else:
        objective = sb.LossAt(**target_centre(runs, target))
    print(
        f"{runs.source}: start {start.sum()} runs, pool {len(pool_idx)} runs "
        f"({pool_compute:.3g} FLOPs), target {target.sum()} runs at {top_budget:.3g} FLOPs"
    )
    first = refit(runs, start, settings, seed=0)
    results: list[dict[str, Any]] = []

    def record(method: str, seed: int, level: float, chosen: list[int], fit: Any, t: float) -> None:
        row = {"method": method, "seed": seed, "level": level, "runs_added": len(chosen),
               "spent_share": float(cost[chosen].sum() / pool_compute), "seconds": t,
               # the runs added, in order: rows of the table, and their log10 cost (which sweeps)
               "chosen_rows": [int(pool_idx[j]) for j in chosen],
               "chosen_log10_cost": [round(float(np.log10(cost[j])), 2) for j in chosen],
               # what posterior aims at, read off this fit: did it reach its own objective?
               "objective_spread": spread_under(objective, fit),
               **scores(fit, runs, target, top_budget)}  # fmt: skip
        if method == "refit_check":
            row["checks"] = checks.copy()
            checks.clear()
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
        if method not in args.methods:
            continue
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
    # the linearised methods (no weights) refit after each level.
    def batched_step(choose: Callable[..., list[int]]) -> Callable[..., tuple[Any, list[int]]]:
        """Choose at most --batch runs, refit, and again until the level's budget is spent."""

        def step(fit: Any, chosen: list[int], budget: float, seed: int) -> tuple[Any, list[int]]:
            while True:
                remaining = np.setdiff1d(np.arange(len(pool)), chosen)
                left = budget - float(cost[chosen].sum())
                if left < cost[remaining].min():
                    return fit, chosen
                picked = choose(fit, pool.iloc[remaining], left, seed)
                if not picked:
                    return fit, chosen
                chosen = chosen + [int(remaining[j]) for j in picked]
                fit = refit(runs, mask_of(chosen), settings, seed=seed + 1)

        return step

    def next_runs_batch(fit: Any, frame: pd.DataFrame, left: float, seed: int) -> list[int]:
        result = sb.next_runs(fit, frame, objective=objective, budget=left, max_runs=args.batch,
                              seed=seed)  # fmt: skip
        return [int(j) for j in result.batch["candidate"]]

    target_frame = pd.DataFrame({n: table[n].to_numpy()[target] for n in ("N", "D")})

    def linearised_step(choose: Callable[..., list[int]]) -> Callable[..., tuple[Any, list[int]]]:
        def step(fit: Any, chosen: list[int], budget: float, seed: int) -> tuple[Any, list[int]]:
            remaining = np.setdiff1d(np.arange(len(pool)), chosen)
            left = budget - float(cost[chosen].sum())
            if left >= cost[remaining].min():
                picked = choose(fit, pool.iloc[remaining], left)
                chosen = chosen + [int(remaining[j]) for j in picked]
            return refit(runs, mask_of(chosen), settings, seed=seed + 1), chosen

        return step

    def expected_spread(fit: Any, chosen: list[int], new: list[int], seed: int) -> float:
        """The objective's spread after adding pool runs ``new``, by refits: the mean over
        CHECK_OUTCOMES outcome sets drawn from ``fit``'s posterior predictive (the same draws
        for every contender of one step), each refitted on start + chosen + new."""
        import dataclasses

        from scalebayes.design.weights import spread_under
        from scalebayes.prediction import log_mean_at, noise_draws

        frame = pool.iloc[new]
        mu = log_mean_at(fit, frame)
        noise = noise_draws(fit, mu.shape, seed=seed + len(chosen))
        mu, noise = mu.reshape(-1, len(new)), noise.reshape(-1, len(new))
        picks = np.random.default_rng((seed, len(chosen))).integers(len(mu), size=CHECK_OUTCOMES)
        spreads = []
        for k, d in enumerate(picks):
            table_k = table.copy()
            table_k.loc[pool_idx[new], "loss"] = np.exp(mu[d] + noise[d])
            runs_k = dataclasses.replace(runs, table=table_k)
            refit_k = refit(runs_k, mask_of(chosen + new), settings, seed=seed + 10 + k)
            spreads.append(spread_under(objective, refit_k))
        return float(np.mean(spreads))

    checks: list[dict[str, float]] = []  # refit_check's comparisons since its last row

    def checked_step(
        fit: Any, chosen: list[int], budget: float, seed: int
    ) -> tuple[Any, list[int]]:
        """``posterior``'s batch against V-optimal's runs for the same FLOPs, the one whose
        refits on simulated outcomes leave the objective narrower kept; refit; again."""
        while True:
            remaining = np.setdiff1d(np.arange(len(pool)), chosen)
            left = budget - float(cost[chosen].sum())
            if left < cost[remaining].min():
                return fit, chosen
            ours = [
                int(remaining[j]) for j in next_runs_batch(fit, pool.iloc[remaining], left, seed)
            ]
            if not ours:
                return fit, chosen
            theirs = v_optimal(fit, pool.iloc[remaining], target_frame, float(cost[ours].sum()))
            theirs = [int(remaining[j]) for j in theirs]
            if theirs and sorted(theirs) != sorted(ours):
                a = expected_spread(fit, chosen, ours, seed)
                b = expected_spread(fit, chosen, theirs, seed)
                print(f"    check: posterior {len(ours)} runs {a:.4f}, "
                      f"v_optimal {len(theirs)} runs {b:.4f}")  # fmt: skip
                checks.append({"posterior_runs": len(ours), "posterior_expected": a,
                               "v_optimal_runs": len(theirs), "v_optimal_expected": b})  # fmt: skip
                ours = theirs if b < a else ours
            chosen = chosen + ours
            fit = refit(runs, mask_of(chosen), settings, seed=seed + 1)

    adaptive = {
        "posterior": batched_step(next_runs_batch),
        "refit_check": checked_step,
        "kalman": batched_step(
            lambda fit, frame, left, seed: kalman(fit, frame, objective, left, args.batch)
        ),
        "d_optimal": linearised_step(d_optimal),
        "v_optimal": linearised_step(
            lambda fit, frame, left: v_optimal(fit, frame, target_frame, left)
        ),
        "li_mixture": linearised_step(
            lambda fit, frame, left: v_optimal(fit, frame, target_frame, left, components=5)
        ),
    }
    # --adaptive-seeds: each adaptive method again from a start fit and refits of other seeds
    # (and, for posterior, other simulated outcomes), so that its mean is compared, as random's.
    starts = {0: first}
    for seed in range(args.adaptive_seeds):
        if seed not in starts:
            starts[seed] = refit(runs, start, settings, seed=100 + seed)
        for method, step in adaptive.items():
            if method not in args.methods:
                continue
            fit, chosen = starts[seed], []
            for level in levels:
                t = time.perf_counter()
                fit, chosen = step(fit, chosen, level * pool_compute, seed)
                record(method, seed, level, chosen, fit, time.perf_counter() - t)

    if "all_pool" in args.methods:
        all_pool = refit(runs, start | pool_mask, settings, seed=1)
        record("all_pool", 0, 1.0, list(range(len(pool))), all_pool, 0.0)
    return {"source": runs.source, "start": int(start.sum()), "pool": len(pool_idx),
            "target": int(target.sum()), "top_budget": top_budget, "rows": results}  # fmt: skip


def summary(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    keys = ["interval_score_90", "median_abs_error", "r2_loss", "coverage_90", "nstar_width_90"]
    keys += ["objective_spread"] if "objective_spread" in frame else []  # rows since it was added
    grouped = frame.groupby(["table", "level", "method"])
    table = grouped[keys].mean().join(grouped["interval_score_90"].std().rename("is90_sd"))
    return table.reset_index()


BASELINES = ("random", "cheapest", "cost_random", "d_optimal", "v_optimal", "li_mixture")


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Per adaptive method of ours (``posterior``, and ``kalman`` when run) and budget level: on
    how many tables it beats every baseline's mean interval score, on how many it beats random's,
    its median ratio to random's, and on how many it is worse than random by more than random's
    seed spread."""
    out = []
    ours_methods = [m for m in OURS if m in set(table.method)]
    for method in ours_methods:
        for level, rows in table[table.method != "all_pool"].groupby("level"):
            wins = worse = beats_random = tables = own = 0
            ratios = []
            for _, one in rows.groupby("table"):
                by = one.set_index("method")
                if method not in by.index or "random" not in by.index:
                    continue
                tables += 1
                ours = by.loc[method, "interval_score_90"]
                others = by.loc[by.index.intersection(BASELINES), "interval_score_90"]
                random = by.loc["random", "interval_score_90"]
                wins += bool((ours < others).all())
                worse += bool(ours > random + np.nan_to_num(by.loc["random", "is90_sd"]))
                beats_random += bool(ours < random)
                ratios.append(ours / random)
                if "objective_spread" in by:  # its own objective narrower than random's?
                    mine, theirs = by.loc[[method, "random"], "objective_spread"]
                    # random's rows from a file written before the column: not counted
                    own = own + (mine < theirs) if np.isfinite(theirs) else np.nan
            out.append({"method": method, "level": level, "tables": tables,
                        "beats_every_baseline": wins, "beats_random": beats_random,
                        "median_ratio_to_random": float(np.median(ratios)) if ratios else np.nan,
                        "worse_than_random_beyond_spread": worse,
                        **({"objective_narrower_than_random": own}
                           if "objective_spread" in table else {})})  # fmt: skip
    return pd.DataFrame(out)


def best_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per budget level and method: on how many tables its mean interval score is the lowest of
    all methods (the all-pool fit aside). Whether any method meets the target of beating every
    other on most tables, or the best differs from table to table."""
    ranked = table[table.method != "all_pool"]
    best = ranked.loc[ranked.groupby(["level", "table"])["interval_score_90"].idxmin()]
    counts = best.groupby(["level", "method"]).size().rename("tables_best").reset_index()
    return counts.sort_values(["level", "tables_best"], ascending=[True, False])


def separation(table: pd.DataFrame) -> pd.DataFrame:
    """Per budget level: on how many tables the best method's lead over the runner-up (mean
    interval score, the all-pool fit aside) exceeds random selection's seed spread there, and
    the median of both relative to the score. Where the lead is within the spread, which method
    comes first on a table is mostly the seeds' doing."""
    out = []
    for level, rows in table[table.method != "all_pool"].groupby("level"):
        leads, spreads = [], []
        for _, one in rows.groupby("table"):
            ranked = one.sort_values("interval_score_90")
            random = one[one.method == "random"]
            if len(ranked) < 2 or random.empty:
                continue
            best, second = ranked.interval_score_90.iloc[:2]
            leads.append((second - best) / best)
            spreads.append(float(random.is90_sd.iloc[0] / random.interval_score_90.iloc[0]))
        leads, spreads = np.array(leads), np.nan_to_num(spreads)
        out.append({"level": level, "tables": len(leads),
                    "lead_beyond_random_spread": int((leads > spreads).sum()),
                    "median_relative_lead": float(np.median(leads)) if len(leads) else np.nan,
                    "median_relative_random_spread": float(np.median(spreads))
                    if len(spreads) else np.nan})  # fmt: skip
    return pd.DataFrame(out)


def mean_ranks(table: pd.DataFrame) -> pd.DataFrame:
    """Per budget level and method: its rank by mean interval score (1 best), averaged over
    the tables (the all-pool fit aside)."""
    ranked = table[table.method != "all_pool"].copy()
    ranked["rank"] = ranked.groupby(["level", "table"])["interval_score_90"].rank()
    means = ranked.groupby(["level", "method"])["rank"].mean().rename("mean_rank").reset_index()
    return means.sort_values(["level", "mean_rank"])


def _tallies(table: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The verdicts and the other tallies of a summary table, printed and ready to write."""
    tallies = {"verdicts": verdicts(table), "best_counts": best_counts(table),
               "mean_ranks": mean_ranks(table), "separation": separation(table)}  # fmt: skip
    for frame in tallies.values():
        print(frame.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    return {name: frame.to_dict(orient="records") for name, frame in tallies.items()}


def main() -> None:
    from _datasets import datasets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--quick", action="store_true", help="levels 5 %% and 25 %%, 2 seeds")
    parser.add_argument(
        "--tables", nargs="+", help="tables by name (default: Epoch's and every Open-Athena one)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the random methods")
    parser.add_argument(
        "--levels", nargs="+", type=float, help="shares of the pool's compute (default 1-25 %%)"
    )
    parser.add_argument("--batch", type=int, default=8, help="posterior: runs per refit")
    parser.add_argument(
        "--adaptive-seeds",
        type=int,
        default=1,
        help="seeds of the adaptive methods (posterior, D-, V-optimal, Li et al.'s): start fit, "
        "refits and simulated outcomes (default 1: seed 0, as every run before this option)",
    )
    parser.add_argument(
        "--objective",
        choices=("loss", "region", "run", "region_run"),
        default="loss",
        help="posterior's objective: the mean loss at the target region's centre (default), "
        "at all its runs (region), a new run's loss there, noise included (run), or new runs' "
        "losses at all its runs (region_run: what the score reads)",
    )
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500, help="draws (and warmup) per chain")
    parser.add_argument(
        "--discrepancy", choices=("none", "gp"), default="none", help="model of every fit"
    )
    parser.add_argument(
        "--out",
        default="design_sequential.json",
        help="results file name under benchmarks/results (or an absolute path)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=[m for m in METHODS if m not in ON_DEMAND],
        help="methods to run (default all but kalman and refit_check); with --baselines the "
        "others' rows come "
        "from there",
    )
    parser.add_argument(
        "--baselines",
        help="results file (under benchmarks/results) whose rows of the methods not run here "
        "join this run's, e.g. to rerun posterior alone after a change to next_runs; its "
        "settings must be this run's",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="no fits: recompute the summary and verdicts of the results file at --out from "
        "its rows, print them and write them back",
    )
    args = parser.parse_args()
    out = RESULTS / args.out  # an absolute path stays itself
    if args.rescore:
        rescore(out)
        return
    if missing(chinchilla_csv(args.data)):
        return
    import scalebayes as sb

    sb.configure()
    levels = tuple(args.levels) if args.levels else LEVELS
    if args.quick:
        levels, args.seeds, args.chains, args.draws = QUICK_LEVELS, 2, 2, 500
        args.tables = args.tables or ["epoch_chinchilla"]
    start = time.perf_counter()
    baselines = _baselines(RESULTS / args.baselines, args, levels) if args.baselines else {}
    results = []
    for name, entry in datasets(Path(args.data), args.tables).items():
        with warnings.catch_warnings():  # fits below the top sweep: diagnostics are in the rows
            warnings.simplefilter("ignore", sb.ConvergenceWarning)
            try:
                result = run_table(entry["runs"], args, levels)
            except Exception as err:  # a table the split cannot serve is reported, not fatal
                print(f"{name}: skipped ({type(err).__name__}: {err})")
                continue
        result["rows"] += [
            row for row in baselines.get(name, []) if row["method"] not in args.methods
        ]
        for row in result["rows"]:
            row["table"] = name
        results.append({"name": name, **result})
    table = summary([row for result in results for row in result["rows"]])
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    tallies = _tallies(table)
    write_results(
        out,
        {"quick": args.quick, "levels": list(levels), "discrepancy": args.discrepancy,
         "objective": args.objective, "methods": args.methods, "baselines": args.baselines,
         "seeds": args.seeds, "adaptive_seeds": args.adaptive_seeds, "chains": args.chains,
         "draws": args.draws, "tables": results,
         "summary": table.to_dict(orient="records"), **tallies,
         "seconds": time.perf_counter() - start, "machine": machine()},
    )  # fmt: skip


def _baselines(
    path: Path, args: argparse.Namespace, levels: tuple[float, ...]
) -> dict[str, list[dict[str, Any]]]:
    """Rows by table from an earlier results file whose settings are this run's."""
    import json

    earlier = json.loads(path.read_text())
    mine = {"levels": list(levels), "discrepancy": args.discrepancy, "objective": args.objective,
            "seeds": args.seeds, "chains": args.chains, "draws": args.draws}  # fmt: skip
    if not set(OURS).isdisjoint(args.methods):
        del mine["objective"]  # only their rows depend on it, and they are run here
    differ = {k: (earlier.get(k), v) for k, v in mine.items() if earlier.get(k) != v}
    if differ:
        raise SystemExit(f"--baselines {path}: settings differ from this run's: {differ}")
    return {table["name"]: table["rows"] for table in earlier["tables"]}


def rescore(path: Path) -> None:
    """The summary and verdicts of a results file, recomputed from its rows and written back."""
    import json

    results = json.loads(path.read_text())
    table = summary([row for result in results["tables"] for row in result["rows"]])
    results |= {"summary": table.to_dict(orient="records"), **_tallies(table)}
    write_results(path, results)


if __name__ == "__main__":
    main()
