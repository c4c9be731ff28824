"""Benchmark: a new ladder's few cheapest runs, with and without its siblings (issue 16, target 2).

Marin's three isoFLOP ladders (comma, dclm, nemotron: one recipe on three data mixes, in the
Open-Athena extract). Each dataset in turn keeps only its ``--keep`` cheapest budgets; the other
two stay complete. We predict its remaining runs (new-run 90 % intervals of the loss) from

* ``grouped``: the hierarchical fit of all three (default pooling), the dataset's group;
* ``alone``: the dataset's kept runs fitted by themselves.

Both fit the plain law (no discrepancy: a grouped fit has none yet) with the same NUTS settings.
Scores on the held-out runs: mean 90 % interval score of log loss (lower is better; Gneiting &
Raftery 2007), 90 % coverage, median absolute error of log loss, and the interval score ratio
grouped / alone (target <= 0.7, coverage 0.85-0.95).

    python benchmarks/new_ladder.py [--keep 3] [--draws 1000 --warmup 1000]
    python benchmarks/new_ladder.py --quick          # dclm only, 2 chains x 300 draws

Writes benchmarks/results/new_ladder.json (new_ladder_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, add_data_argument, machine, missing, open_athena_csv, write_results

DATASETS = ("comma", "dclm", "nemotron")


def scores(fit, runs, group: str | None) -> dict[str, float]:
    import scalebayes as sb
    from scalebayes.scoring import interval_score

    prediction = sb.predict(fit, N=runs.N, D=runs.D, kind="new_run", group=group)
    draws = np.log(prediction.loss.to_numpy()).reshape(-1, len(runs))
    lower, upper = np.quantile(draws, [0.05, 0.95], axis=0)
    y = np.log(runs.loss)
    return {
        "interval score 90": float(np.mean(interval_score(lower, upper, y))),
        "coverage 90": float(np.mean((lower <= y) & (y <= upper))),
        "median |error|": float(np.median(np.abs(np.median(draws, axis=0) - y))),
        "hits": int(np.sum((lower <= y) & (y <= upper))),
        "held out": len(runs),
    }


def one_dataset(runs, target: str, keep: int, sampler: dict, modes: dict) -> list[dict]:
    import scalebayes as sb

    budgets = np.sort(np.unique(runs.table["budget"][runs.group == target]))
    mine = runs.group == target
    kept = ~mine | (runs.table["budget"].to_numpy() <= budgets[keep - 1])
    train, held = runs.subset(kept), runs.subset(~kept)
    rows = []
    for label in ("grouped", "alone"):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if label == "grouped":
                fit = sb.fit_groups(train, pooling=sb.Pooling(modes=modes), **sampler)
            else:
                alone = train.subset(train.group == target)
                fit = sb.fit(alone, likelihood=sb.Likelihood(discrepancy="none"), **sampler)
        seconds = time.perf_counter() - started
        d = fit.diagnostics
        result = scores(fit, held, target if label == "grouped" else None)
        rows.append({"dataset": target, "fit": label, "kept budgets": keep, **result,
                     "seconds": seconds, "max R-hat": d.max_rhat, "divergent": d.n_divergent})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--keep", type=int, default=3, help="cheapest budgets kept (default 3)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="dclm only, 2 chains x 300 draws")
    parser.add_argument(
        "--pool", nargs="+", default=[], metavar="NAME=MODE", help="the grouped fit's pooling"
    )
    parser.add_argument("--out", default=None, help="JSON file name under benchmarks/results/")
    args = parser.parse_args()
    path = open_athena_csv(args.data)
    if missing(path):
        return
    import scalebayes as sb

    table = pd.read_csv(path)
    table = table[table["source"] == "marin_202603"].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = sb.load_runs(table, group="dataset")
    datasets = ("dclm",) if args.quick else DATASETS
    if args.quick:
        args.chains, args.draws, args.warmup = 2, 300, 300
    sampler = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup}
    modes = dict(item.split("=", 1) for item in args.pool)
    rows = [row for name in datasets for row in one_dataset(runs, name, args.keep, sampler, modes)]
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    wide = frame.pivot(index="dataset", columns="fit", values="interval score 90")
    ratio = (wide["grouped"] / wide["alone"]).to_dict()
    pooled = frame.groupby("fit")[["hits", "held out"]].sum()
    coverage = (pooled["hits"] / pooled["held out"]).to_dict()
    print(
        "\ninterval score ratio grouped / alone (target <= 0.7):",
        {k: round(v, 3) for k, v in ratio.items()},
    )
    print("pooled 90% coverage (target 0.85-0.95):", {k: round(v, 3) for k, v in coverage.items()})
    name = args.out or ("new_ladder_quick.json" if args.quick else "new_ladder.json")
    write_results(
        RESULTS / name,
        {
            "settings": {**vars(args), "data": str(args.data)},
            "rows": rows,
            "ratio": ratio,
            "pooled coverage": coverage,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
