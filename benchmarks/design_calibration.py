"""Benchmark: are next_runs' expected widths right on real tables? Predicted against refitted.

Issue 17, item 3, on real data. The simulation check (tests/test_design.py) draws the chosen
runs' outcomes from the model itself; here they are the tables' own losses. Each table is split
as in design_sequential.py (start: the two cheapest sweeps; pool: the runs below the top sweep;
objective: the 90 % interval width of the loss at the top sweep's centre). From the start fit,
:func:`scalebayes.next_runs` chooses at most ``--max-runs`` runs within ``--levels`` of the
pool's compute and predicts the width after them; the start runs and the chosen ones (their
measured losses) are then refitted and the width read off the refit. Per table, level and model
(``--discrepancy``): the width now, predicted and refitted, their ratio, the rule that chose the
batch, the runs and the ESS left in the weights. A ratio (refitted / predicted) near 1 means the
expected widths hold; far above 1, that ``next`` expects more from its runs than they give.

    python benchmarks/design_calibration.py [--data DIR] [--tables NAME ...] [--levels 0.01 0.05]
        [--discrepancy none gp] [--chains 4 --draws 500]

Writes benchmarks/results/design_calibration.json (``--out NAME`` another name).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, add_data_argument, machine, write_results
from design_sequential import pool_frame, refit, split, target_centre


def width(objective: Any, fit: Any) -> float:
    """The objective's spread under ``fit``'s draws, unweighted."""
    q = np.sort(np.asarray(objective.per_draw(objective.model(fit)), dtype=float))
    return float(
        np.quantile(q, 0.5 + objective.prob / 2) - np.quantile(q, 0.5 - objective.prob / 2)
    )


def one_table(runs: Any, args: argparse.Namespace, discrepancy: str) -> list[dict[str, Any]]:
    import scalebayes as sb

    settings = {"chains": args.chains, "draws": args.draws, "warmup": args.draws,
                "discrepancy": discrepancy}  # fmt: skip
    start, pool_mask, target, _ = split(runs)
    pool_idx, pool = pool_frame(runs, pool_mask)
    objective = sb.LossAt(**target_centre(runs, target))
    first = refit(runs, start, settings, seed=0)
    rows = []
    for level in args.levels:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sb.ImportanceWarning)  # the ESS is recorded
            chosen = sb.next_runs(first, pool, objective=objective,
                                  budget=level * float(pool["cost"].sum()),
                                  max_runs=args.max_runs, seed=0)  # fmt: skip
        if chosen.batch.empty:
            continue
        mask = start.copy()
        mask[pool_idx[chosen.batch["candidate"].to_numpy()]] = True
        after = refit(runs, mask, settings, seed=1)
        refitted = width(objective, after)
        rows.append({
            "discrepancy": discrepancy, "level": level, "runs": len(chosen.batch),
            "rule": chosen.rule, "width_now": chosen.width_now,
            "predicted": chosen.width_after, "refitted": refitted,
            "ratio": refitted / chosen.width_after, "ess_after": float(chosen.batch["ess"].iloc[-1]),
            "healthy": bool(after.diagnostics.ok), "seconds": time.perf_counter() - t,
        })  # fmt: skip
    return rows


def main() -> None:
    from _datasets import datasets

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--tables", nargs="+", help="tables by name (default: every one)")
    parser.add_argument("--levels", nargs="+", type=float, default=[0.01, 0.05])
    parser.add_argument("--discrepancy", nargs="+", choices=("none", "gp"), default=["none", "gp"])
    parser.add_argument("--max-runs", type=int, default=8, help="runs per batch (as the sequence)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500, help="draws (and warmup) per chain")
    parser.add_argument("--out", default="design_calibration.json", help="file in results/")
    args = parser.parse_args()
    found = datasets(Path(args.data), args.tables)
    if not found:
        print(f"skipped: no public tables under {args.data}")
        return
    started = time.perf_counter()
    rows = []
    for name, entry in found.items():
        for discrepancy in args.discrepancy:
            for row in one_table(entry["runs"], args, discrepancy):
                rows.append({"table": name, **row})
                print(f"{name[:34]:34s} {discrepancy:4s} {row['level']:4.0%} {row['runs']:2d} runs "
                      f"({row['rule']}): now {row['width_now']:.4f}, predicted "
                      f"{row['predicted']:.4f}, refitted {row['refitted']:.4f}, ratio "
                      f"{row['ratio']:.2f}, ESS {row['ess_after']:.0f}", flush=True)  # fmt: skip
    summary = {}
    print(f"\n{'model':6s} {'level':>5s} {'tables':>6s} {'median ratio':>13s} {'geo. mean':>10s} "
          f"{'ratio > 1.25':>12s}")  # fmt: skip
    for discrepancy in args.discrepancy:
        for level in args.levels:
            ratios = [r["ratio"] for r in rows
                      if r["discrepancy"] == discrepancy and r["level"] == level]  # fmt: skip
            if not ratios:
                continue
            key = f"{discrepancy} {level:g}"
            summary[key] = {
                "tables": len(ratios),
                "median_ratio": statistics.median(ratios),
                "geometric_mean_ratio": float(np.exp(np.mean(np.log(ratios)))),
                "above_1_25": sum(r > 1.25 for r in ratios),
            }
            s = summary[key]
            print(f"{discrepancy:6s} {level:5.0%} {s['tables']:6d} {s['median_ratio']:13.2f} "
                  f"{s['geometric_mean_ratio']:10.2f} {s['above_1_25']:12d}")  # fmt: skip
    write_results(
        RESULTS / args.out,
        {"settings": {**vars(args), "data": str(args.data)}, "rows": rows, "summary": summary,
         "seconds": time.perf_counter() - started, "machine": machine()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
