"""Benchmark: ranking 1000 candidate runs for one objective after a fit (target <= 5 s on 2 cores).

Fits Epoch AI's Chinchilla runs (default model, 4 chains x 1000 draws), then times
``next_runs`` ranking a pool of 1000 isoFLOP candidates (40 budgets from 1e18 to 1e22 FLOPs x 25
tokens-per-parameter ratios from 1 to 1000) for each objective, one greedy step
(``max_runs=1``): the first call (compiles) and the best of ``--repeats`` warm calls. Prints a
table and writes benchmarks/results/next_runs_speed.json.

    python benchmarks/next_runs_speed.py [--data DIR] [--quick]

``--quick``: 2 chains x 500 draws (1000 draws to re-weight instead of 4000) and 2 repeats.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import RESULTS, add_data_argument, chinchilla_csv, machine, missing, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--quick", action="store_true", help="2 chains x 500 draws, 2 repeats")
    parser.add_argument("--repeats", type=int, default=5, help="timed warm calls per objective")
    parser.add_argument(
        "--out", default="next_runs_speed.json", help="file name under benchmarks/results"
    )
    args = parser.parse_args()
    data = chinchilla_csv(args.data)
    if missing(data):
        return

    import scalebayes as sb

    sb.configure()
    chains, draws, repeats = (2, 500, 2) if args.quick else (4, 1000, args.repeats)
    start = time.perf_counter()
    fit = sb.fit(data, "chinchilla", chains=chains, draws=draws, warmup=draws, seed=0)
    fit_seconds = time.perf_counter() - start
    print(fit.diagnostics)
    pool = sb.candidate_grid(
        np.geomspace(1e18, 1e22, 40), tokens_per_param=np.geomspace(1.0, 1000.0, 25)
    )
    objectives = {
        "nstar": sb.OptimalN(5.76e23),
        "loss": sb.LossAt(N=7e10, D=1.4e12),
        "chance": sb.ChanceAt(N=7e10, D=1.4e12, target=1.95),
    }
    rows = []
    for key, objective in objectives.items():
        times = []
        for _ in range(1 + repeats):
            start = time.perf_counter()
            result = sb.next_runs(fit, pool, objective=objective, budget=1e30, max_runs=1)
            times.append(time.perf_counter() - start)
        best = result.ranking.iloc[0]
        rows.append(
            {
                "objective": key,
                "candidates": len(pool),
                "draws": result.n_draws,
                "outcomes": result.outcomes,
                "first_call_s": times[0],
                "warm_best_s": min(times[1:]),
                "warm_median_s": float(np.median(times[1:])),
                "width_now": result.width_now,
                "best_N": float(best["N"]),
                "best_D": float(best["D"]),
                "best_tokens_per_param": float(best["tokens_per_param"]),
                "best_width_after": float(best["width_after"]),
            }
        )
    print(f"ranking {len(pool)} candidates, one greedy step, {rows[0]['draws']} draws x "
          f"{rows[0]['outcomes']} simulated outcomes")  # fmt: skip
    print(f"{'objective':10s} {'first call':>10s} {'warm best':>10s} {'warm med':>9s} "
          f"{'width now':>10s} {'best run (N, D, D/N)':>32s} {'after':>8s}")  # fmt: skip
    for r in rows:
        print(
            f"{r['objective']:10s} {r['first_call_s']:9.2f}s {r['warm_best_s']:9.2f}s "
            f"{r['warm_median_s']:8.2f}s {r['width_now']:10.4g} "
            f"{r['best_N']:10.3g} {r['best_D']:10.3g} {r['best_tokens_per_param']:8.3g} "
            f"{r['best_width_after']:8.4g}"
        )
    target = 5.0
    ok = all(r["warm_best_s"] <= target for r in rows)
    print(f"target: <= {target:g} s per ranking after the fit: {'met' if ok else 'NOT met'}")
    write_results(
        RESULTS / args.out,
        {
            "quick": args.quick,
            "fit": {"chains": chains, "draws": draws, "seconds": fit_seconds,
                    "diagnostics": str(fit.diagnostics)},
            "rows": rows,
            "target_s": target,
            "met": ok,
            "machine": machine(),
        },
    )  # fmt: skip


if __name__ == "__main__":
    main()
