"""Benchmark: a new ladder's few cheapest runs, with and without its siblings (issue 16, target 2).

Marin's three isoFLOP ladders (comma, dclm, nemotron: one recipe on three data mixes, in the
Open-Athena extract). Each dataset in turn keeps only its ``--keep`` cheapest budgets; the other
two stay complete. We predict its remaining runs (new-run 90 % intervals of the loss) from

* ``grouped``: the hierarchical fit of all three (default pooling and discrepancy: a quadratic
  the ladders share), the dataset's group;
* ``alone``: the dataset's kept runs fitted by themselves (the default single fit: the GP);
* ``alone, plain``: the same with the plain law.

Every fit has the same NUTS settings.
Scores on the held-out runs: mean 90 % interval score of log loss (lower is better; Gneiting &
Raftery 2007), 90 % coverage, median absolute error of log loss, and the interval score ratio
grouped / alone (target <= 0.7, coverage 0.85-0.95).

    python benchmarks/new_ladder.py [--keep 3] [--draws 1000 --warmup 1000]
    python benchmarks/new_ladder.py --quick          # dclm only, 2 chains x 300 draws
    python benchmarks/new_ladder.py --datasets dclm --out new_ladder_dclm.json  # one at a time
    python benchmarks/new_ladder.py --merge new_ladder_comma.json ... --out new_ladder.json
    python benchmarks/new_ladder.py --beyond 1 2 --chains 2 --draws 500 --warmup 500
        # instead, every ladder's top 1 and 2 budgets held out: beyond all the ladders' runs

Writes benchmarks/results/new_ladder.json (new_ladder_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json

import pandas as pd
from _common import RESULTS, add_data_argument, machine, marin_runs, write_results

DATASETS = ("comma", "dclm", "nemotron")


def one_dataset(
    runs, target: str, keep: int, sampler: dict, modes: dict, centred: str | None = None,
    discrepancy: str = "quadratic",
) -> list[dict]:  # fmt: skip
    import scalebayes as sb
    from scalebayes.groups.backtest import new_ladder_backtest

    options = {} if centred is None else {"centred": tuple(centred.split(","))}
    pooling = sb.Pooling(modes=modes, **options)
    likelihood = sb.Likelihood(discrepancy=discrepancy)
    frame = new_ladder_backtest(
        runs, target, keep, pooling=pooling, grouped_likelihood=likelihood, **sampler
    )
    return frame.rename(columns={"group": "dataset"}).to_dict("records")


def beyond(
    runs, top: int, sampler: dict, discrepancy: str = "quadratic", modes: dict | None = None
) -> list[dict]:
    """Every ladder's ``top`` largest budgets held out: grouped fits (the quadratic, the plain
    law; pooling ``modes``) and each ladder's single default fit, scored on each ladder's
    held-out runs."""
    import warnings

    import numpy as np

    import scalebayes as sb
    from scalebayes.groups.backtest import held_out_scores

    held = np.zeros(len(runs), dtype=bool)
    for name in DATASETS:
        mine = runs.group == name
        held |= mine & np.isin(runs.budget, np.unique(runs.budget[mine])[-top:])
    train, test = runs.subset(~held), runs.subset(held)
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # health is recorded in the rows
        for kind, spec in (("quadratic", discrepancy), ("none", "none")):
            likelihood = sb.Likelihood(discrepancy=spec)
            pooling = sb.Pooling(modes=dict(modes or {}))
            fits[f"grouped, {kind}"] = sb.fit_groups(
                train, likelihood=likelihood, pooling=pooling, **sampler
            )
        for name in DATASETS:
            fits[f"alone {name}"] = sb.fit(train.subset(train.group == name), **sampler)
    rows = []
    for name in DATASETS:
        mine = test.subset(test.group == name)
        for label in ("grouped, quadratic", "grouped, none", f"alone {name}"):
            fit = fits[label]
            scores = held_out_scores(fit, mine, name if label.startswith("grouped") else None)
            d = fit.diagnostics
            rows.append({"dataset": name, "fit": label.split(" ")[0].rstrip(",")
                         if label.startswith("alone") else label, "held-out budgets": top,
                         **scores, "max R-hat": d.max_rhat, "divergent": d.n_divergent,
                         "at max tree depth": d.n_max_treedepth, "healthy": d.ok})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--keep", type=int, default=3, help="cheapest budgets kept (default 3)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="dclm only, 2 chains x 300 draws")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument(
        "--pool", nargs="+", default=[], metavar="NAME=MODE", help="the grouped fit's pooling"
    )
    parser.add_argument(
        "--centred",
        metavar="NAMES",
        help="the grouped fit's centred parameters in complete ladders, e.g. E,A,B (default: "
        "Pooling's)",
    )
    parser.add_argument(
        "--beyond",
        type=int,
        nargs="+",
        metavar="K",
        help="instead: every ladder's top K budgets held out (grouped fits against each ladder's "
        "single fit; writes new_ladder_beyond.json)",
    )
    parser.add_argument(
        "--grouped-discrepancy",
        default="quadratic",
        metavar="SPEC",
        help="the grouped fit's discrepancy (default: quadratic; e.g. quadratic:scale=0.005)",
    )
    parser.add_argument("--out", default=None, help="JSON file name under benchmarks/results/")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="pool these results' rows")
    args = parser.parse_args()
    if args.beyond:
        runs = marin_runs(args.data)
        if runs is None:
            return
        sampler = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup}
        modes = dict(item.split("=", 1) for item in args.pool)
        rows = [
            r
            for top in args.beyond
            for r in beyond(runs, top, sampler, args.grouped_discrepancy, modes)
        ]
        frame = pd.DataFrame(rows)
        print(frame.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        pooled = frame.groupby(["held-out budgets", "fit"])[["hits", "held out"]].sum()
        weighted = frame.assign(total=frame["interval score 90"] * frame["held out"])
        sums = weighted.groupby(["held-out budgets", "fit"])[["total", "held out"]].sum()
        summary = pd.DataFrame({"coverage 90": pooled["hits"] / pooled["held out"],
                                "interval score 90": sums["total"] / sums["held out"]})  # fmt: skip
        print(
            "\npooled over the three ladders:\n" + summary.to_string(float_format="{:.4g}".format)
        )
        write_results(
            RESULTS / (args.out or "new_ladder_beyond.json"),
            {"settings": {**vars(args), "data": str(args.data)}, "rows": rows,
             "pooled": summary.reset_index().to_dict("records"), "machine": machine()},
        )  # fmt: skip
        return
    if args.merge:
        rows = [r for f in args.merge for r in json.loads((RESULTS / f).read_text())["rows"]]
    else:
        runs = marin_runs(args.data)
        if runs is None:
            return
        datasets = ("dclm",) if args.quick else tuple(args.datasets)
        if args.quick:
            args.chains, args.draws, args.warmup = 2, 300, 300
        sampler = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup}
        modes = dict(item.split("=", 1) for item in args.pool)
        rows = [
            r
            for name in datasets
            for r in one_dataset(
                runs, name, args.keep, sampler, modes, args.centred, args.grouped_discrepancy
            )
        ]
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    wide = frame.pivot(index="dataset", columns="fit", values="interval score 90")
    ratio = (wide["grouped"] / wide["alone"]).to_dict()
    plain = "alone, plain"
    ratio_plain = (wide["grouped"] / wide[plain]).to_dict() if plain in wide else {}
    pooled = frame.groupby("fit")[["hits", "held out"]].sum()
    coverage = (pooled["hits"] / pooled["held out"]).to_dict()
    weighted = frame.assign(total=frame["interval score 90"] * frame["held out"])
    sums = weighted.groupby("fit")[["total", "held out"]].sum()
    score = (sums["total"] / sums["held out"]).to_dict()  # per held-out run, all datasets
    print(
        "\ninterval score ratio grouped / alone (target <= 0.7):",
        {k: round(v, 3) for k, v in ratio.items()},
    )
    if ratio_plain:
        print("interval score ratio grouped / alone, plain law:",
              {k: round(v, 3) for k, v in ratio_plain.items()})  # fmt: skip
    print("pooled 90% coverage (target 0.85-0.95):", {k: round(v, 3) for k, v in coverage.items()})
    print("pooled interval score:", {k: round(v, 4) for k, v in score.items()})
    name = args.out or ("new_ladder_quick.json" if args.quick else "new_ladder.json")
    write_results(
        RESULTS / name,
        {
            "settings": {**vars(args), "data": str(args.data)},
            "rows": rows,
            "ratio": ratio,
            "ratio to the plain law alone": ratio_plain,
            "pooled coverage": coverage,
            "pooled interval score": score,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
