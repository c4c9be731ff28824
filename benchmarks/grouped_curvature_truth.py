"""Benchmark: a grouped fit's discrepancy shared or pooled, on ladders that bend alike or apart.

Known truth. Three simulated isoFLOP ladders (budgets 1e18-1e21 FLOPs, 6 runs each, 0.5 % noise;
Epoch's Chinchilla law with alpha and E spread 5 % across groups), each bent by
``c_g (ln C - mid)^2`` in log loss, which no setting of the law reproduces:

- ``alike``: every ladder c = 0.003 (3.6 % at 1e21 FLOPs);
- ``apart``: c = 0.006, 0.0 and -0.003 (one recipe's curvature error differing by data mix).

Every ladder's top budget is held out (beyond all the runs fitted) and predicted by the grouped
fit with the quadratic discrepancy ``shared`` by the groups (the default) and ``pooled`` (each
group's around a population, a learned spread). Scores per held-out run: 90 % coverage and mean
interval score of log loss (lower is better), pooled over seeds and groups.

    python benchmarks/grouped_curvature_truth.py [--seeds 0 1 2 3] [--chains 2 --draws 300]

Writes benchmarks/results/grouped_curvature_truth.json.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, add_data_argument, machine, write_results

BUDGETS = [1e18, 1e19, 1e20, 1e21]
BENDS = {"alike": (0.003, 0.003, 0.003), "apart": (0.006, 0.0, -0.003)}
MODES = ("shared", "pooled")


def ladders(bends: tuple[float, ...], seed: int):
    """Three bent ladders' runs (a ``group`` column), the truth of :data:`BENDS`."""
    import scalebayes as sb
    from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate_groups

    designs = [isoflop_design(BUDGETS, points_per_budget=6, span=20)] * len(bends)
    runs, _ = simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, {"alpha": 0.05, "E": 0.05}, designs, seed=seed,
        noise=0.005,
    )  # fmt: skip
    table = runs.table.copy()
    c = np.asarray(bends)[table["group"].str.removeprefix("g").astype(int)]
    table["loss"] *= np.exp(c * (np.log(table["C"]) - np.mean(np.log(BUDGETS))) ** 2)
    return sb.load_runs(table[["N", "D", "C", "loss", "group"]])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser, reads=False)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--out", default="grouped_curvature_truth.json")
    args = parser.parse_args()
    import scalebayes as sb
    from scalebayes.groups.backtest import held_out_scores

    sampler = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup}
    rows = []
    for case, bends in BENDS.items():
        for seed in args.seeds:
            runs = ladders(bends, seed)
            top = runs.C > BUDGETS[-1] / 1.5
            train, test = runs.subset(~top), runs.subset(top)
            for mode in MODES:
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # health is recorded in the rows
                    fit = sb.fit_groups(
                        train, likelihood=sb.Likelihood(discrepancy="quadratic"),
                        pooling=sb.Pooling(discrepancy=mode), seed=seed, **sampler,
                    )  # fmt: skip
                seconds = time.perf_counter() - started
                d = fit.diagnostics
                for group in fit.groups:
                    held = test.subset(test.group == group)
                    rows.append({"case": case, "seed": seed, "mode": mode, "group": group,
                                 **held_out_scores(fit, held, group), "seconds": seconds,
                                 "max R-hat": d.max_rhat, "divergent": d.n_divergent,
                                 "healthy": d.ok})  # fmt: skip
                print(f"{case:6s} seed {seed} {mode:7s} {seconds:5.1f} s  R-hat "
                      f"{d.max_rhat:.3f}  divergent {d.n_divergent}", flush=True)  # fmt: skip
    frame = pd.DataFrame(rows)
    weighted = frame.assign(total=frame["interval score 90"] * frame["held out"])
    sums = weighted.groupby(["case", "mode"])[["total", "hits", "held out"]].sum()
    summary = pd.DataFrame({"coverage 90": sums["hits"] / sums["held out"],
                            "interval score 90": sums["total"] / sums["held out"],
                            "held out": sums["held out"]})  # fmt: skip
    print("\nheld-out top budgets, pooled over seeds and groups:")
    print(summary.to_string(float_format="{:.4g}".format))
    write_results(
        RESULTS / args.out,
        {"settings": {**vars(args), "data": str(args.data)}, "bends": BENDS, "rows": rows,
         "summary": summary.reset_index().to_dict("records"), "machine": machine()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
