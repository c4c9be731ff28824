"""Benchmark: how far can you trust it? Backtests on every public table in the data directory.

For Epoch's Chinchilla runs (top one and two decades of compute held out) and each Open-Athena
isoFLOP experiment (largest one and two budgets held out), fit the smaller runs with
scalebayes.backtesting.backtest and score the held-out runs: proper scores first (mean 90 %
interval score and CRPS, lower is better; lpd), then 90 % and 50 % predictive coverage,
median |error| of log loss, bias, and (Epoch) the tokens per parameter at 5.76e23 FLOPs from
the small runs against all runs. One row per (table, cut, noise model); the noise models are
ranked by mean interval score; target coverage: 90 % in [85 %, 95 %]. Writes
benchmarks/results/backtest.json.

With ``--overtraining``: the over-training tables instead (Epoch's runs and (Mis)Fitting's
finished runs, fitted at or below 40 and 80 tokens per parameter, the longer-trained runs
predicted); writes benchmarks/results/overtraining.json unless ``--out`` says otherwise.

    python benchmarks/backtest.py [--data DIR] [--datasets epoch_chinchilla ...]
                                  [--discrepancy none curvature gp] [--overtraining]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from _common import RESULTS, add_data_argument, machine, parse_discrepancy, write_results
from _datasets import datasets, overtraining_datasets

TARGET = (0.85, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--datasets", nargs="+", help="subset of tables (default: all found)")
    parser.add_argument(
        "--discrepancy",
        nargs="+",
        default=["none", "curvature"],
        help="discrepancies by name, or NAME:FIELD=VALUE (e.g. gp:curvature_scale=0.002)",
    )
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--out", help="file name in benchmarks/results (default backtest.json)")
    parser.add_argument(
        "--overtraining", action="store_true", help="the over-training tables, cut by D/N"
    )
    args = parser.parse_args()
    args.out = args.out or ("overtraining.json" if args.overtraining else "backtest.json")
    tables = (overtraining_datasets if args.overtraining else datasets)(args.data, args.datasets)
    if not tables:
        print(f"skipped: no public tables found in {args.data}")
        return
    from scalebayes.backtesting import backtest
    from scalebayes.model import Likelihood

    rows = []
    for name, spec in tables.items():
        for spec_text in args.discrepancy:
            started = time.perf_counter()
            result = backtest(
                spec["runs"],
                "chinchilla",
                **spec["holdout"],
                budget=spec["budget"],
                likelihood=Likelihood(discrepancy=parse_discrepancy(spec_text)),
                draws=args.draws,
                warmup=args.warmup,
            )
            wall = time.perf_counter() - started
            print(f"\n{name}, discrepancy {spec_text} ({wall:.0f} s):\n{result}", flush=True)
            for row in result.table.to_dict(orient="records"):
                rows.append(
                    {
                        "dataset": name,
                        "discrepancy": spec_text,
                        **row,
                        "healthy_fits": sum(f.diagnostics.ok for f in result.fits),
                        "max_rhat": max(f.diagnostics.max_rhat for f in result.fits),
                        "divergent": sum(f.diagnostics.n_divergent for f in result.fits),
                        "fits": len(result.fits),
                        "wall_s": wall,
                    }
                )
    table = pd.DataFrame(rows)
    table["in_target"] = table["coverage_90"].between(*TARGET)
    columns = [
        "dataset",
        "discrepancy",
        "held_out",
        "n_held",
        "interval_score_90",
        "crps",
        "lpd",
        "coverage_90",
        "coverage_50",
        "median_abs_error",
        "bias",
        "in_target",
        "healthy_fits",
        "max_rhat",
    ]
    print("\n" + table[columns].to_string(index=False, float_format="{:.4f}".format))
    means = table.groupby("discrepancy")[["interval_score_90", "crps", "lpd", "coverage_90"]]
    ranked = means.mean().sort_values(["interval_score_90", "crps"])
    # Each table's cuts weigh the same in the mean; a method's rank is by its mean interval score.
    print("\nnoise models by mean 90% interval score over all cuts (lower is better):")
    print(ranked.to_string(float_format="{:.4f}".format))
    for discrepancy, group in table.groupby("discrepancy"):
        print(
            f"{discrepancy}: 90% coverage in [85%, 95%] for {int(group['in_target'].sum())} of "
            f"{len(group)} cuts; mean coverage {group['coverage_90'].mean():.1%}; pooled "
            f"{(group['coverage_90'] * group['n_held']).sum() / group['n_held'].sum():.1%}; "
            f"median |error| {group['median_abs_error'].median():.4f}"
        )
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_1min']:.1f}")
    write_results(
        RESULTS / args.out,
        {
            "settings": vars(args),
            "target_coverage_90": TARGET,
            "machine": info,
            "ranking": ranked.reset_index().to_dict("records"),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
