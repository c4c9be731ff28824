"""Benchmark: with known truth, do the runs ``next`` picks lower the objective as it predicts?

Issue 17, item 3 ("the chosen runs reduce the posterior width of the objective by at least what
the method predicted, on average"), over many simulated tables rather than the one of the slow
tests in tests/test_design.py. Each table is a short isoFLOP ladder (5 sweeps to 1e20 FLOPs,
1 % noise) simulated from Epoch's Chinchilla law with its own data seed; the plain law is
fitted (4 chains x 500 draws); :func:`scalebayes.next_runs` picks at most 3 runs from sweeps at
1e21-1e22 FLOPs (5, 20 and 80 tokens per parameter) within 3e22 FLOPs and predicts the
objective after them. The same batch's prediction is then made again in fresh simulated
outcomes (other seeds, 128 per run), which the greedy choice did not see: the difference is
what picking the best of noisy estimates adds. The runs' outcomes are simulated from the true
law ``--refits`` times, each refitted, and the objective read off each refit's own draws.
``--outcomes-from posterior`` instead simulates each refit's outcomes from a posterior draw of
the fit (its law parameters, its noise sd, Student-t(4) noise as the fit's likelihood), the
world the prediction averages over: where the realised fall then matches the predicted one and
not with the fixed truth, the gap is the fixed truth's, not the method's.

Objectives: ``regret`` (:class:`~scalebayes.design.AllocationRegret` at 5.76e23 FLOPs, the
value of information), ``loss`` (:class:`~scalebayes.design.LossAt`, the 90 % interval
width of the loss at 70B parameters on 1.4T tokens) and ``nstar``
(:class:`~scalebayes.design.OptimalN`, the 90 % interval width of log10 N* at 5.76e23 FLOPs). Per table: now, predicted, predicted
afresh, realised (mean over refits); over tables, each reduction's mean and the share of the
predicted reduction realised. Each refit's outcomes also re-weight the fit's draws as
``next_runs`` does in one scenario: the re-weighted spread minus the refit's, over all refits,
is the importance weights' own error, apart from the outcomes' noise.

    python benchmarks/design_truth.py [--seeds 11 12 ...] [--refits 4] [--objectives regret loss]
        [--outcomes-from truth|posterior] [--draws 500]

Writes benchmarks/results/design_truth.json (``--out NAME`` another name).
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, add_data_argument, machine, write_results

LADDER = [6e18, 1e19, 3e19, 6e19, 1e20]
POOL_BUDGETS = [1e21, 3e21, 1e22]
POOL_RATIOS = [5.0, 20.0, 80.0]
BUDGET = 3e22
MAX_RUNS = 3
FRESH_SEEDS = (1, 2, 3, 4)
FRESH_OUTCOMES = 128
SETTINGS = {"chains": 4, "warmup": 500, "draws": 500}


def make_objective(name: str) -> Any:
    """The objective called ``name`` (module docstring)."""
    import scalebayes as sb

    if name == "nstar":
        return sb.OptimalN(5.76e23)
    return sb.AllocationRegret(5.76e23) if name == "regret" else sb.LossAt(N=7e10, D=1.4e12)


def weighted(objective: Any, fit: Any, batch: pd.DataFrame, new: list[Any]) -> list[float]:
    """The objective's spread on ``fit``'s draws re-weighted by each table ``new`` of ``batch``'s losses.

    What ``next_runs`` computes for one scenario (:meth:`Worlds.observed`), here for the
    outcomes each refit is given: set against that refit's own spread, it separates the
    importance weights' error from the noise of the outcomes.
    """
    from scalebayes.design.weights import Worlds

    frame = batch.assign(C=batch["N"] * batch["D"] * fit.runs.cost_k)
    world = Worlds.build(objective.model(fit), objective, frame, 2, 0)
    seen = world.observed(np.log([runs.table["loss"].to_numpy() for runs in new]))
    for j in range(len(frame)):
        seen.condition(j)
    return [float(v) for v in seen.spread_now()]


def outcome_law(fit: Any, source: str, k: int, seed: int) -> tuple[dict[str, float], float, Any]:
    """The parameters, noise sd and Student-t df refit ``k``'s outcomes are simulated from."""
    from scalebayes.simulation import EPOCH_CHINCHILLA

    if source == "truth":
        return dict(EPOCH_CHINCHILLA), 0.01, None
    rng = np.random.default_rng((seed, k))
    post = fit.posterior
    chain = int(rng.integers(post.sizes["chain"]))
    draw = int(rng.integers(post.sizes["draw"]))
    value = {n: float(post[n].to_numpy()[chain, draw]) for n in ("E", "A", "alpha", "B", "beta")}
    return value, float(post["sigma"].to_numpy()[chain, draw]), fit.likelihood.df


def one_table(
    seed: int, name: str, refits: int, source: str = "truth", settings: dict | None = None
) -> dict[str, Any]:
    """Fit, choose, predict (and again afresh), refit with simulated outcomes, for one seed."""
    import scalebayes as sb
    from scalebayes.design.weights import spread_under
    from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate

    truth = dict(EPOCH_CHINCHILLA)
    plain = sb.Likelihood(discrepancy="none")
    settings = settings or SETTINGS
    objective = make_objective(name)
    runs = simulate("chinchilla", truth, isoflop_design(LADDER), noise=0.01, seed=seed)
    fit = sb.fit(runs, "chinchilla", likelihood=plain, seed=seed, **settings)
    pool = sb.candidate_grid(POOL_BUDGETS, tokens_per_param=POOL_RATIOS)
    chosen = sb.next_runs(fit, pool, objective=objective, budget=BUDGET, max_runs=MAX_RUNS)
    batch = chosen.batch[["N", "D"]].reset_index(drop=True)
    fresh = [
        float(sb.next_runs(fit, batch, objective=objective, budget=1e30, max_runs=len(batch),
                           seed=s, outcomes=FRESH_OUTCOMES).width_after)
        for s in FRESH_SEEDS
    ]  # fmt: skip
    tables, outcomes = [], []
    for k in range(refits):
        law_k, noise_k, df_k = outcome_law(fit, source, k, seed)
        # Each table's outcomes their own noise: with one seed per k for every table, the tables'
        # k-th refits shared their noise and the realised falls were one draw, not eight.
        new = simulate("chinchilla", law_k, batch, noise=noise_k, df=df_k, seed=1000 * seed + k)
        outcomes.append(new)
        tables.append(pd.concat([runs.table, new.table], ignore_index=True))
    fits = sb.fit_batch(tables, "chinchilla", likelihood=plain, seed=seed + 1000, **settings)
    # Each refit's spread read as next_runs reads the spread now (and the weights theirs).
    realised = [spread_under(objective, refit) for refit in fits]
    weighted_each = weighted(objective, fit, batch, outcomes)
    return {
        "seed": seed,
        "objective": name,
        "runs": len(batch),
        "chosen": batch.to_dict("records"),
        "now": float(chosen.width_now),
        "predicted": float(chosen.width_after),
        "predicted_fresh": float(np.mean(fresh)),
        "realised": float(np.mean(realised)),
        "realised_each": realised,
        "weighted_each": weighted_each,
        "healthy": bool(fit.diagnostics.ok) and all(f.diagnostics.ok for f in fits),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per objective: mean reductions (predicted, afresh, realised) and the share realised."""
    out = {}
    for name in sorted({r["objective"] for r in rows}):
        mine = [r for r in rows if r["objective"] == name]
        now = np.array([r["now"] for r in mine])
        cut = {k: now - np.array([r[k] for r in mine])
               for k in ("predicted", "predicted_fresh", "realised")}  # fmt: skip
        out[name] = {
            "tables": len(mine),
            **{f"mean_reduction_{k}": float(v.mean()) for k, v in cut.items()},
            "share_realised": float(cut["realised"].mean() / cut["predicted"].mean()),
            "share_realised_of_fresh": float(
                cut["realised"].mean() / cut["predicted_fresh"].mean()
            ),
            "tables_realised_below_now": int(np.sum(cut["realised"] > 0)),
            "tables_realised_at_least_predicted": int(np.sum(cut["realised"] >= cut["predicted"])),
            **_weights_against_refits(mine),
        }
    return out


def _weights_against_refits(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of (re-weighted spread - refit's spread) over every refit, and its standard error."""
    gap = np.concatenate([np.subtract(r["weighted_each"], r["realised_each"]) for r in rows])
    se = gap.std(ddof=1) / np.sqrt(gap.size) if gap.size > 1 else float("nan")
    return {"weighted_minus_refit": float(gap.mean()), "weighted_minus_refit_se": float(se)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser, reads=False)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(11, 19)))
    parser.add_argument("--refits", type=int, default=4)
    parser.add_argument("--objectives", nargs="+", default=["regret", "loss"],
                        choices=["regret", "loss", "nstar"])  # fmt: skip
    parser.add_argument("--outcomes-from", choices=["truth", "posterior"], default="truth",
                        help="simulate the refits' outcomes from the true law or a posterior draw")  # fmt: skip
    parser.add_argument("--draws", type=int, default=SETTINGS["draws"],
                        help="draws per chain of every fit (4 chains; warmup 500)")  # fmt: skip
    parser.add_argument("--out", default="design_truth.json")
    args = parser.parse_args()
    settings = {**SETTINGS, "draws": args.draws}
    started = time.perf_counter()
    rows = []
    header = (
        f"{'objective':9} {'seed':>4} {'runs':>4} {'now':>7} {'pred':>7} {'afresh':>7} {'real':>7}"
    )
    print(header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in args.objectives:
            for seed in args.seeds:
                row = one_table(seed, name, args.refits, args.outcomes_from, settings)
                rows.append(row)
                print(f"{name:9} {seed:>4} {row['runs']:>4} {row['now']:7.4f} "
                      f"{row['predicted']:7.4f} {row['predicted_fresh']:7.4f} "
                      f"{row['realised']:7.4f}", flush=True)  # fmt: skip
    result = summary(rows)
    for name, s in result.items():
        print(f"{name}: mean reduction predicted {s['mean_reduction_predicted']:.4f}, afresh "
              f"{s['mean_reduction_predicted_fresh']:.4f}, realised {s['mean_reduction_realised']:.4f}"
              f" ({s['share_realised']:.0%} of predicted); realised below now on "
              f"{s['tables_realised_below_now']} of {s['tables']}; re-weighted minus refitted, "
              f"same outcomes: {s['weighted_minus_refit']:+.4f} +- {s['weighted_minus_refit_se']:.4f}")  # fmt: skip
    seconds = time.perf_counter() - started
    write_results(
        RESULTS / args.out,
        {"settings": {**settings, "seeds": args.seeds, "refits": args.refits,
                      "outcomes_from": args.outcomes_from,
                      "fresh_outcomes": FRESH_OUTCOMES, "fresh_seeds": list(FRESH_SEEDS)},
         "summary": result, "rows": rows, "seconds": seconds, "machine": machine()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
