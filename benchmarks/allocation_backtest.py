"""Benchmark: does each approach's N* interval hold the optimum measured at held-out budgets?

For Epoch's Chinchilla runs and each Open-Athena isoFLOP experiment, hold out the largest one
and two isoFLOP budgets (sweeps found as approach 2 finds them), fit below, predict N* at the
held-out budgets by approaches 3 (the law) and 2 (isoFLOP minima), and compare with each
held-out sweep's own minimum (approach 2's profile model on its runs alone, so both sides are
uncertain: a prediction covers when the 90 % interval of log N*_predicted - log N*_measured
holds 0). Target: the recommended approach covers 85-95 % of the held-out budgets, pooled.
Writes benchmarks/results/allocation_backtest.json.

    python benchmarks/allocation_backtest.py [--data DIR] [--datasets ...] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd
from _common import RESULTS, add_data_argument, machine, write_results
from _datasets import datasets

TARGET = (0.85, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", help="subset of tables (default: all found)")
    parser.add_argument("--approaches", nargs="+", default=["3", "2"])
    parser.add_argument("--quick", action="store_true", help="2 chains x 500 draws")
    parser.add_argument("--out", default="allocation_backtest.json")
    args = parser.parse_args()
    tables = datasets(args.data, args.datasets)
    if not tables:
        print(f"skipped: no public tables found in {args.data}")
        return
    from scalebayes.allocation_backtest import allocation_backtest

    sampler = {"chains": 2, "draws": 500, "warmup": 500} if args.quick else {}
    rows, per_table = [], {}
    for name, spec in tables.items():
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # health is recorded per row
            result = allocation_backtest(
                spec["runs"], holdout_budgets=(1, 2), approaches=args.approaches, **sampler
            )
        wall = time.perf_counter() - started
        print(f"\n{name} ({wall:.0f} s):\n{result}", flush=True)
        per_table[name] = result.to_dict()
        for row in result.table.to_dict(orient="records"):
            rows.append({"dataset": name, **row, "wall_s": wall})
    table = pd.DataFrame(rows)
    columns = ["dataset", "held_out", "approach", "budget", "n_star", "measured", "log_error",
               "covers", "healthy"]  # fmt: skip
    print("\n" + table[columns].to_string(index=False, float_format="{:.3g}".format))
    pooled = table.groupby("approach").agg(
        n=("covers", "size"),
        coverage=("covers", "mean"),
        median_abs_log_error=("log_error", lambda e: e.abs().median()),
        mean_log_error=("log_error", "mean"),
        healthy=("healthy", "mean"),
    )
    print("\npooled over tables and cuts (target coverage 85-95 %):")
    print(pooled.to_string(float_format="{:.3f}".format))
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_1min']:.1f}")
    write_results(
        RESULTS / args.out,
        {
            "settings": {**vars(args), "data": str(args.data), **sampler},
            "target_coverage_90": TARGET,
            "machine": info,
            "pooled": pooled.reset_index().to_dict("records"),
            "rows": rows,
            "tables": per_table,
        },
    )


if __name__ == "__main__":
    main()
