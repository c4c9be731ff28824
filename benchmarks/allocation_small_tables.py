"""Benchmark: approach 2 on small isoFLOP tables, the sweeps' curvatures pooled or each on its own.

A new table often has only a few sweeps. From Epoch's digitised Chinchilla runs and each
Open-Athena experiment this takes the lowest and the highest ``--sweeps`` budgets (default 3,
the fewest approach 2 accepts) as tables of their own and fits approach 2 to each twice: with
the package's model (curvatures pooled around a line in log C) and with ``curvature_prior=None``
(each sweep's curvature on its own prior, the model before). Prints and records each fit's
health (R-hat, bulk ESS, divergences: the tool's own check), a with its 90 % interval, and the
time; writes benchmarks/results/allocation_small_tables.json (``--out`` another name).

    python benchmarks/allocation_small_tables.py [--data DIR] [--sweeps 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
from _allocation_truth import interval, show
from _common import RESULTS, add_data_argument, machine, write_results
from allocation_approaches import tables

MODELS = {"pooled": {}, "own": {"curvature_prior": None}}


def subsets(runs: Any, k: int) -> dict[str, Any]:
    """The runs of the lowest and of the highest ``k`` sweeps approach 2 uses, as two tables."""
    from scalebayes.allocation.budgets import find_budgets

    budgets = find_budgets(runs, edge_sweeps="drop")
    if budgets.n_budgets < k + 1:
        return {}
    low = np.isin(budgets.index, np.arange(k))
    high = np.isin(budgets.index, np.arange(budgets.n_budgets - k, budgets.n_budgets))
    return {"lowest": runs.subset(low), "highest": runs.subset(high)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps per small table")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--out", default="allocation_small_tables.json")
    args = parser.parse_args()
    import scalebayes as sb
    from scalebayes.allocation.profile import ProfileModel

    sb.configure(compile_cache=False)
    found = tables(args.data)
    if not found:
        print(f"skipped: no public tables found in {args.data}")
        return
    rows = []
    for name, runs in found.items():
        for end, table in subsets(runs, args.sweeps).items():
            for label, changes in MODELS.items():
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # health is recorded per row
                    iso = sb.fit_isoflops(table, model=ProfileModel(**changes), seed=args.seed)
                d = iso.diagnostics
                row = {"table": name, "end": end, "model": label, "ok": d.ok,
                       "max_rhat": d.max_rhat, "min_ess_bulk": d.min_ess_bulk,
                       "divergent": d.n_divergent, "a": interval(iso.a),
                       "seconds": time.perf_counter() - started}  # fmt: skip
                rows.append(row)
                print(f"{name} {end} {label}: a {show(row['a'])}  {d}", flush=True)
    print()
    for label in MODELS:
        mine = [r for r in rows if r["model"] == label]
        print(f"{label}: {sum(not r['ok'] for r in mine)} of {len(mine)} fits fail the checks")
    write_results(
        RESULTS / args.out,
        {"settings": vars(args) | {"data": str(args.data)}, "rows": rows, "machine": machine()},
    )


if __name__ == "__main__":
    main()
