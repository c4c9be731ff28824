"""Benchmark: decisions from the posterior of Epoch AI's Chinchilla data (245 runs).

Fits the Chinchilla law (4 chains x 1000 draws), then prints and writes
benchmarks/results/decisions.json:

- loss at Chinchilla itself (N = 70e9, D = 1.4e12) with credible and predictive 90% intervals;
- compute-optimal N*, D*, D*/N* and L* at 5.76e23 (Chinchilla's budget) and 1e25 FLOPs;
- tokens per parameter that Hoffmann et al.'s own constants imply at 5.76e23, for comparison;
- the time of optimal() for 4000 draws x 100 budgets after compile (target < 1 s on CPU).

    python benchmarks/decisions.py [--data DIR] [--chains 4 --draws 1000 --warmup 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from _common import RESULTS, add_data_argument, chinchilla_csv, missing, write_results

CHINCHILLA = {"N": 70e9, "D": 1.4e12}
BUDGETS = (5.76e23, 1e25)
# Hoffmann et al. 2022 (approach 3): the exponents as printed, and as in the paper's TeX source.
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
HOFFMANN_TEX = {**HOFFMANN, "alpha": 0.3392, "beta": 0.2849}


def closed_form_ratio(p: dict[str, float], budget: float, k: float = 6.0) -> float:
    """D*/N* of the Chinchilla law with fixed constants (Hoffmann et al.'s closed form)."""
    a = p["beta"] / (p["alpha"] + p["beta"])
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    n = g * (budget / k) ** a
    return budget / (k * n) / n


def interval(values: np.ndarray) -> dict[str, float]:
    low, median, high = np.quantile(values, [0.05, 0.5, 0.95])
    return {"median": float(median), "lower": float(low), "upper": float(high)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5, help="timed optimal() calls")
    args = parser.parse_args()
    data = chinchilla_csv(args.data)
    if missing(data):
        return

    import scalebayes as sb

    runs = sb.load_runs(data)
    fit = sb.fit(runs, "chinchilla", chains=args.chains, draws=args.draws, warmup=args.warmup)
    print(runs)
    print(fit.diagnostics)

    mean = sb.predict(fit, **CHINCHILLA).loss.to_numpy().ravel()
    new = sb.predict(fit, **CHINCHILLA, kind="new_run", seed=0).loss.to_numpy().ravel()
    chinchilla = {"credible": interval(mean), "predictive": interval(new)}

    allocation = sb.optimal(fit, BUDGETS)
    frontier = {}
    for i, budget in enumerate(BUDGETS):
        frontier[f"{budget:.3g}"] = {
            name: interval(getattr(allocation, name).isel(budget=i).to_numpy().ravel())
            for name in ("N", "D", "tokens_per_param", "loss")
        }
    published = {
        "hoffmann_rounded": closed_form_ratio(HOFFMANN, BUDGETS[0]),
        "hoffmann_tex": closed_form_ratio(HOFFMANN_TEX, BUDGETS[0]),
    }
    ratio = allocation.tokens_per_param.isel(budget=0).to_numpy().ravel()
    beyond = {name: float(np.mean(ratio >= value)) for name, value in published.items()}

    # Timing: 4000 draws x 100 budgets, after one compile call.
    budgets = np.geomspace(1e20, 1e27, 100)
    n_draws = fit.posterior.sizes["chain"] * fit.posterior.sizes["draw"]
    started = time.perf_counter()
    sb.optimal(fit, budgets)
    first = time.perf_counter() - started
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        sb.optimal(fit, budgets)
        times.append(time.perf_counter() - started)

    print("\nloss at Chinchilla (N 70e9, D 1.4e12), nats/token, median [90% interval]:")
    for kind, row in chinchilla.items():
        print(f"  {kind:10s} {row['median']:.4f} [{row['lower']:.4f}, {row['upper']:.4f}]")
    print("\ncompute-optimal allocation, median [90% interval]:")
    for budget, rows in frontier.items():
        cells = "  ".join(
            f"{name} {r['median']:.4g} [{r['lower']:.4g}, {r['upper']:.4g}]"
            for name, r in rows.items()
        )
        print(f"  C {budget}: {cells}")
    print(
        f"\nat 5.76e23 FLOPs Hoffmann et al.'s constants imply {published['hoffmann_tex']:.1f} "
        f"tokens/param (TeX-source exponents; {published['hoffmann_rounded']:.1f} with the rounded "
        f"ones); posterior share of draws at or above: {beyond['hoffmann_tex']:.4f} / "
        f"{beyond['hoffmann_rounded']:.4f}"
    )
    print(
        f"\noptimal(): {n_draws} draws x {len(budgets)} budgets: first call (compile) "
        f"{first:.2f} s, then median {np.median(times):.3f} s (min {min(times):.3f} s) "
        f"over {args.repeats} calls (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )

    write_results(
        RESULTS / "decisions.json",
        {
            "data": str(data),
            "runs": len(runs),
            "settings": {"chains": args.chains, "draws": args.draws, "warmup": args.warmup},
            "diagnostics": fit.diagnostics.to_dict(),
            "loss_at_chinchilla": chinchilla,
            "optimal": frontier,
            "hoffmann_tokens_per_param_at_5.76e23": published,
            "posterior_share_at_or_above_hoffmann": beyond,
            "optimal_timing": {
                "draws": n_draws,
                "budgets": len(budgets),
                "first_call_s": first,
                "median_s": float(np.median(times)),
                "min_s": float(min(times)),
            },
            "machine": {
                "python": platform.python_version(),
                "processor": platform.processor(),
                "cpu_count": os.cpu_count(),
                # Other processes share the CPU: the 1-minute load average when timing ended.
                "load_average_1min": os.getloadavg()[0],
            },
            "versions": dict(fit.settings.versions),
        },
    )


if __name__ == "__main__":
    main()
