"""Benchmark: what a grouped fit of Marin's three ladders costs against one ladder's single fit.

Issue 16's cost target: a three-group hierarchical fit of Marin's runs takes at most twice one
group's single fit, end to end. Each case runs in a fresh Python process with no compile cache
(import, data, compile and sampling all counted), at the user's defaults (4 chains x 1000 draws):

- ``grouped``: ``fit_groups`` on the three ladders (default pooling and discrepancy: the
  quadratic the groups share);
- ``grouped, plain``: the same with the plain law;
- ``single``: one ladder (``--group``, default dclm) with ``fit``'s default (the GP);
- ``single, plain``: the same ladder with the plain law.

Per case: seconds end to end, compile and sampling, leapfrog steps per draw, and health.

    python benchmarks/groups_cost.py [--data DIR] [--group dclm] [--draws 1000 --warmup 1000]

Writes benchmarks/results/groups_cost.json.
"""

from __future__ import annotations

import argparse
import json
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

CASES = ("grouped", "grouped, plain", "single", "single, plain")


def one_case(args: argparse.Namespace) -> dict:
    """Fit ``args.case`` in this process; the measurements as a dict."""
    started = time.perf_counter()
    import scalebayes as sb

    sb.configure()
    runs = marin_runs(args.data)
    settings = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup, "seed": 0}
    if args.case.endswith("plain"):
        settings["likelihood"] = sb.Likelihood(discrepancy="none")
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
    add_cold_arguments(parser, CASES)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args)))
        return 0
    if marin_runs(args.data) is None:
        return 0
    rows = []
    for case in CASES:
        argv = cold_argv(args, case, "--group", args.group)
        rows.append(run_cold(__file__, argv))
        print(json.dumps(rows[-1]), flush=True)
    by_case = {row["case"]: row for row in rows}
    ratio = by_case["grouped"]["end_to_end_s"] / by_case["single"]["end_to_end_s"]
    ratio_plain = (
        by_case["grouped, plain"]["end_to_end_s"] / by_case["single, plain"]["end_to_end_s"]
    )
    print(f"\n{'case':<16} {'runs':>5} {'end to end s':>13} {'steps/draw':>11} {'R-hat':>6} "
          f"{'div':>4} {'max depth':>9}")  # fmt: skip
    for row in rows:
        print(f"{row['case']:<16} {row['runs']:>5} {row['end_to_end_s']:>13.1f} "
              f"{row['mean_leapfrog_steps']:>11.0f} {row['max_rhat']:>6.3f} "
              f"{row['n_divergent']:>4} {row['n_max_treedepth']:>9}")  # fmt: skip
    print(f"grouped / single (target <= 2): {ratio:.2f}; with the plain law: {ratio_plain:.2f}")
    write_results(
        RESULTS / "groups_cost.json",
        {"settings": {**vars(args), "data": str(args.data)}, "rows": rows,
         "grouped / single": ratio, "grouped / single, plain": ratio_plain,
         "machine": machine()},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
