"""Benchmark: what a grouped fit of Marin's three ladders costs against one ladder's single fit.

Issue 16's cost target: a three-group hierarchical fit of Marin's runs takes at most twice one
group's single fit, end to end. Each case runs in a fresh Python process with no compile cache
(import, data, compile and sampling all counted), at the user's defaults (4 chains x 1000 draws):

- ``grouped``: ``fit_groups`` on the three ladders (default pooling and discrepancy: the
  quadratic the groups pool);
- ``grouped, shared``: the same with the quadratic shared by the groups (the default before);
- ``grouped, plain``: the same with the plain law;
- ``single``: one ladder (``--group``, default dclm) with ``fit``'s default (the GP);
- ``single, plain``: the same ladder with the plain law.

Per case and seed: seconds end to end, compile and sampling, leapfrog steps per draw, health
and whether a failed first run was sampled again (a retry roughly doubles a fit's time); the
ratios per seed and their median.

    python benchmarks/groups_cost.py [--data DIR] [--group dclm] [--seeds 0 1 2 3]
        [--cases grouped single] [--out groups_cost.json]

Writes benchmarks/results/groups_cost.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import (
    RESULTS,
    add_cold_arguments,
    add_data_argument,
    cold_argv,
    fit_costs,
    machine,
    marin_runs,
    run_cold,
    write_results,
)

CASES = ("grouped", "grouped, shared", "grouped, plain", "single", "single, plain")


def one_case(args: argparse.Namespace) -> dict:
    """Fit ``args.case`` in this process; the measurements as a dict."""
    started = time.perf_counter()
    import scalebayes as sb

    sb.configure()
    runs = marin_runs(args.data)
    settings = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup,
                "seed": args.seeds[0]}  # fmt: skip
    if args.case.endswith("plain"):
        settings["likelihood"] = sb.Likelihood(discrepancy="none")
    if args.case.endswith("shared"):
        settings["pooling"] = sb.Pooling(discrepancy="shared")
    if args.case.startswith("grouped"):
        fit = sb.fit_groups(runs, **settings)
    else:
        fit = sb.fit(runs.subset(runs.group == args.group), **settings)
    return {
        "case": args.case,
        "runs": len(fit.runs),
        **fit_costs(fit, fit.settings.wall_time, started),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--group", default="dclm", help="the single fit's ladder (default dclm)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampler seeds")
    parser.add_argument(
        "--cases", nargs="+", choices=CASES, default=list(CASES), help="the cases run (all)"
    )
    parser.add_argument("--out", default="groups_cost.json", help="results file name")
    add_cold_arguments(parser, CASES)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args)))
        return 0
    if marin_runs(args.data) is None:
        return 0
    rows, ratios = [], []
    pairs = {"grouped / single": ("grouped", "single"),
             "grouped, shared / single": ("grouped, shared", "single"),
             "grouped / single, plain": ("grouped, plain", "single, plain")}  # fmt: skip
    for seed in args.seeds:
        for case in args.cases:
            argv = cold_argv(args, case, "--group", args.group, "--seeds", str(seed))
            rows.append({"seed": seed, **run_cold(__file__, argv)})
            print(json.dumps(rows[-1]), flush=True)
        s = {row["case"]: row["end_to_end_s"] for row in rows if row["seed"] == seed}
        ratios.append({"seed": seed, **{name: s[a] / s[b] for name, (a, b) in pairs.items()
                                        if a in s and b in s}})  # fmt: skip
    print(f"\n{'seed':>4} {'case':<16} {'runs':>5} {'end to end s':>13} {'steps/draw':>11} "
          f"{'R-hat':>6} {'div':>4} {'max depth':>9} continued retried")  # fmt: skip
    for row in rows:
        print(f"{row['seed']:>4} {row['case']:<16} {row['runs']:>5} {row['end_to_end_s']:>13.1f} "
              f"{row['mean_leapfrog_steps']:>11.0f} {row['max_rhat']:>6.3f} "
              f"{row['n_divergent']:>4} {row['n_max_treedepth']:>9} "
              f"{row.get('extended') or row.get('smaller_steps')!s:>9} {row['retried']}")  # fmt: skip
    medians = {key: statistics.median(r[key] for r in ratios) for key in ratios[0] if key != "seed"}
    print("median over seeds (target <= 2 for grouped / single): "
          + ", ".join(f"{key} {value:.2f}" for key, value in medians.items()))  # fmt: skip
    write_results(
        RESULTS / args.out,
        {"settings": {**vars(args), "data": str(args.data)}, "rows": rows, "ratios": ratios,
         **medians, "machine": machine()},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
