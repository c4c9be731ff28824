"""Benchmark: what approach 2 costs on Epoch's runs against one plain-law fit (issue 14).

Issue 14's cost target: approach 2 (the isoFLOP profile model, :func:`scalebayes.fit_isoflops`)
on Epoch's Chinchilla runs costs no more than one fit of the plain law. Each case runs
``--repeats`` times per sampler seed (``--seeds``), each in a fresh Python process with no
compile cache (import, data, compile and sampling all counted), at the user's defaults (4 chains
x 1000 draws). A fit that fails the checks is continued or sampled again
(:mod:`scalebayes.retry`), which one seed cannot show: over several seeds the rows say which.

- ``law, plain``: ``fit`` with Chinchilla's law and no discrepancy;
- ``approach 2``: ``fit_isoflops`` with its default profile model.

Per run: seconds end to end, compile and sampling, leapfrog steps per draw, whether its chains
were continued or it was sampled again, and health; then the median of each case and the ratio of the medians.

    python benchmarks/allocation_cost.py [--data DIR] [--repeats 3] [--seeds 0]
        [--draws 1000 --warmup 1000] [--out allocation_cost.json]

Writes benchmarks/results/allocation_cost.json (or ``--out``).
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
    chinchilla_csv,
    cold_argv,
    fit_costs,
    machine,
    missing,
    run_cold,
    write_results,
)

CASES = ("law, plain", "approach 2")


def one_case(args: argparse.Namespace) -> dict:
    """Fit ``args.case`` in this process; the measurements as a dict."""
    started = time.perf_counter()
    import scalebayes as sb

    sb.configure()
    runs = sb.load_runs(chinchilla_csv(args.data))
    settings = {
        "chains": args.chains, "draws": args.draws, "warmup": args.warmup, "seed": args.seeds[0]
    }  # fmt: skip
    if args.case == "approach 2":
        fit = sb.fit_isoflops(runs, **settings)
        wall = fit.wall_time
    else:
        fit = sb.fit(runs, "chinchilla", likelihood=sb.Likelihood(discrepancy="none"), **settings)
        wall = fit.settings.wall_time
    return {"case": args.case, **fit_costs(fit, wall, started)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per case and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampler seeds")
    parser.add_argument("--out", default="allocation_cost.json", help="results file name")
    add_cold_arguments(parser, CASES)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args)))
        return 0
    if missing(chinchilla_csv(args.data)):
        return 0
    rows = []
    for seed in args.seeds:
        for repeat in range(args.repeats):
            for case in CASES:  # alternated, so that a change of load falls on both
                argv = cold_argv(args, case, "--seeds", str(seed))
                rows.append({"seed": seed, "repeat": repeat, **run_cold(__file__, argv)})
                print(json.dumps(rows[-1]), flush=True)
    keys = ("end_to_end_s", "compile_s", "sampling_s", "mean_leapfrog_steps")
    medians = {
        case: {key: statistics.median(r[key] for r in rows if r["case"] == case) for key in keys}
        for case in CASES
    }
    ratio = medians["approach 2"]["end_to_end_s"] / medians["law, plain"]["end_to_end_s"]
    print(f"\n{'case (median)':<14} {'end to end s':>13} {'compile s':>10} {'sampling s':>11} "
          f"{'steps/draw':>11}")  # fmt: skip
    for case, m in medians.items():
        print(f"{case:<14} {m['end_to_end_s']:>13.1f} {m['compile_s']:>10.1f} "
              f"{m['sampling_s']:>11.1f} {m['mean_leapfrog_steps']:>11.1f}")  # fmt: skip
    healthy = {case: sum(r["healthy"] for r in rows if r["case"] == case) for case in CASES}
    retried = {case: sum(r["retried"] for r in rows if r["case"] == case) for case in CASES}
    extended = {case: sum(bool(r["extended"]) for r in rows if r["case"] == case) for case in CASES}
    print(f"of {len(rows) // len(CASES)} fits each: healthy {healthy}; continued {extended}; "
          f"sampled again {retried}")  # fmt: skip
    print(f"approach 2 / plain law, end to end (target <= 1): {ratio:.2f}")
    write_results(
        RESULTS / args.out,
        {"settings": {**vars(args), "data": str(args.data)}, "rows": rows, "medians": medians,
         "approach 2 / law": ratio, "healthy": healthy, "extended": extended, "retried": retried,
         "machine": machine()},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
