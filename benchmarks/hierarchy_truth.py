"""Benchmark: a grouped fit's 90 % intervals against known truth (issue 16's first target).

Each replicate draws four ladders (3 isoFLOP budgets, 1e19-1e21 FLOPs, 6 runs each, 1 % Normal
noise) from a population around Epoch's Chinchilla constants: E, the exponents and the terms
A / N**alpha, B / D**beta at the runs' centre vary across groups with log-scale spread
``SPREAD`` (0.1), the noise does not (``--vary coefficients``: A and B themselves vary by 0.1,
so a group's terms at the centre move with its exponents, by 0.7-0.8 in log: 4-5x the spread
that Marin's three data mixes show, 0.16, with exponents and E at 0.06-0.09). It is fitted
with the default pooling (everything pooled; weak groups, as these are, partly centred) and we
count how often the 90 % intervals hold
the truth: each group's alpha and beta, the population alpha and its spread, and each group's compute-optimal N* at 1e23 FLOPs (100x the
largest run; truth from the closed form, a test oracle only). Target: 85-95 % for each.

    python benchmarks/hierarchy_truth.py [--replicates 20] [--draws 1000 --warmup 1000]
    python benchmarks/hierarchy_truth.py --quick      # one replicate, 2 chains x 300 draws
    python benchmarks/hierarchy_truth.py --seeds 1 2 --draws 300 --warmup 300 --out x.json
    python benchmarks/hierarchy_truth.py --merge x.json y.json --out xy.json  # pooled coverage

Writes benchmarks/results/hierarchy_truth.json (hierarchy_truth_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
from _common import (
    RESULTS,
    add_data_argument,
    add_group_discrepancy_argument,
    machine,
    write_results,
)

BUDGETS = (1e19, 1e20, 1e21)
SPREAD = 0.1  # log-scale sd of every law parameter across groups
GROUPS = 4
PLAN_BUDGET = 1e23  # 100x the largest run


def n_star(p: dict[str, float], c: float) -> float:
    """Chinchilla's compute-optimal N at compute ``c`` (C = 6 N D), closed form."""
    a, b = p["alpha"], p["beta"]
    g = (a * p["A"] / (b * p["B"])) ** (1 / (a + b))
    return g * (c / 6) ** (b / (a + b))


def rhat_of(x: np.ndarray) -> float:
    """Worst rank-normalised R-hat over a variable's entries, (chain, draw, ...)."""
    from arviz_stats.base import array_stats

    x = x.reshape(x.shape[0], x.shape[1], -1)
    return float(np.nanmax([array_stats.rhat(x[..., i]) for i in range(x.shape[-1])]))


def population_of(kind: str, seed: int) -> dict[str, float]:
    """The population's law parameters: Epoch's constants, or one draw from the law's priors."""
    import scalebayes as sb
    from scalebayes.simulation import EPOCH_CHINCHILLA

    if kind == "epoch":
        return dict(EPOCH_CHINCHILLA)
    law = sb.load_law("chinchilla")
    rng = np.random.default_rng(10_000 + seed)
    return {n: float(law.params[n].prior.sample(rng, 1)[0]) for n in law.param_names}


def replicate(
    seed: int,
    chains: int,
    draws: int,
    warmup: int,
    discrepancy: str = "auto",
    population: str = "epoch",
    vary: str = "terms",
) -> dict:
    import scalebayes as sb
    from scalebayes.simulation import isoflop_design, simulate_groups

    design = isoflop_design(BUDGETS, points_per_budget=6, span=20)
    centre = population_of(population, seed)
    spreads = {n: SPREAD for n in centre}
    # The runs' centre in log N and log D: where the grouped fit takes its reference point.
    at = {n: float(np.log(design[n]).mean()) for n in ("N", "D")} if vary == "terms" else None
    runs, truths = simulate_groups(
        "chinchilla", centre, spreads, [design] * GROUPS, seed=seed, terms_at=at
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        likelihood = sb.Likelihood(discrepancy=discrepancy)
        fit = sb.fit_groups(
            runs, likelihood=likelihood, chains=chains, draws=draws, warmup=warmup, seed=seed
        )
    seconds = time.perf_counter() - started
    post = fit.posterior
    hits: dict[str, list[bool]] = {"alpha": [], "beta": [], "N*": []}

    def inside(x: np.ndarray, truth: float) -> bool:
        lo, hi = np.quantile(np.ravel(x), [0.05, 0.95])
        return bool(lo <= truth <= hi)

    for i, label in enumerate(fit.groups):
        for name in ("alpha", "beta"):
            hits[name].append(inside(post[f"{name}_group"].to_numpy()[..., i], truths[i][name]))
        allocation = sb.optimal(fit, [PLAN_BUDGET], group=label)
        hits["N*"].append(inside(allocation.N.to_numpy(), n_star(truths[i], PLAN_BUDGET)))
    d = fit.diagnostics
    rhat = {n: rhat_of(post[n].to_numpy()) for n in fit.plan.reported_names(fit.law) if n in post}
    return {
        "seed": seed,
        "seconds": seconds,
        "max_rhat": d.max_rhat,
        "min_ess_bulk": d.min_ess_bulk,
        "divergent": d.n_divergent,
        "at max tree depth": d.n_max_treedepth,
        "worst R-hat": max(rhat, key=lambda n: rhat[n]),
        **{f"{k} hits": int(sum(v)) for k, v in hits.items()},
        "groups": len(fit.groups),
        "population alpha hit": inside(post["alpha"].to_numpy(), centre["alpha"]),
        "population": centre,
        "alpha spread hit": inside(post["alpha_spread"].to_numpy(), SPREAD),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser, reads=False)
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="one replicate, 2 x 300 draws")
    parser.add_argument("--seeds", nargs="+", type=int, help="these replicates' seeds instead")
    add_group_discrepancy_argument(parser)
    parser.add_argument(
        "--population",
        choices=("epoch", "prior"),
        default="epoch",
        help="the population's centre: Epoch's Chinchilla constants (default) or, per replicate, "
        "a draw from the law's priors (a check of the machinery: calibrated by construction)",
    )
    parser.add_argument(
        "--vary",
        choices=("terms", "coefficients"),
        default="terms",
        help="what varies across groups besides E and the exponents: the terms at the runs' "
        "centre (default) or the coefficients A, B themselves (their terms then move with the "
        "exponents)",
    )
    parser.add_argument("--out", default=None, help="JSON file name under benchmarks/results/")
    parser.add_argument(
        "--merge", nargs="+", metavar="JSON", help="pool these results' replicates, fitting none"
    )
    args = parser.parse_args()
    if args.quick:
        args.replicates, args.chains, args.draws, args.warmup = 1, 2, 300, 300
    seeds = args.seeds if args.seeds is not None else range(args.replicates)
    if args.merge:
        rows = [r for f in args.merge for r in json.loads((RESULTS / f).read_text())["replicates"]]
    else:
        rows = [
            replicate(
                s,
                args.chains,
                args.draws,
                args.warmup,
                args.discrepancy,
                args.population,
                args.vary,
            )
            for s in seeds
        ]
    table = pd.DataFrame(rows)
    print(table.drop(columns=["population"], errors="ignore").to_string(index=False))
    n_groups = table["groups"].sum()
    coverage = {
        "alpha (per group)": table["alpha hits"].sum() / n_groups,
        "beta (per group)": table["beta hits"].sum() / n_groups,
        "N* at 1e23 (per group)": table["N* hits"].sum() / n_groups,
        "population alpha": table["population alpha hit"].mean(),
        "alpha spread": table["alpha spread hit"].mean(),
    }
    print("\n90% interval coverage (target 0.85-0.95):")
    for name, value in coverage.items():
        print(f"  {name:<24} {value:.2f}")
    name = args.out or ("hierarchy_truth_quick.json" if args.quick else "hierarchy_truth.json")
    write_results(
        RESULTS / name,
        {
            "settings": {**vars(args), "data": str(args.data)},
            "replicates": rows,
            "coverage": coverage,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
