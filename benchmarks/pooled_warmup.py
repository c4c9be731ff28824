"""Benchmark: warmup's mass matrix from all of a table's chains at once, against each chain's own.

NumPyro adapts the dense mass matrix per chain at the end of each warmup window, from that
chain's draws in the window: 25, 50 and 100 in the first three windows of 1000, too few for a
covariance in tens of dimensions (``allocation_warmup.py``: approach 2 runs at the warmup's
tree-depth cap until iteration 450). With ``Settings(pooled_warmup=True)`` (the default since)
every chain's running statistics are replaced, just before each window's last iteration, by
those of all its table's chains together (:mod:`scalebayes.pooled_warmup`). Cases, each over
``--seeds`` seeds at 4 chains x 1000 draws after 1000 warmup, compiled by a discarded fit
first, chains alone (``pooled_warmup=False``) and pooled: the plain law and the default model
(law + GP) on Epoch's runs, approach 2 on Epoch's runs, and the grouped default fit of Marin's
three ladders. The package pools the law's and the GP's stages only; here approach 2's and the
grouped fit's are pooled too (the engine's stage settings patched in this process), to show why
they are not.

    python benchmarks/pooled_warmup.py [--data DIR] [--seeds 2]

Writes benchmarks/results/pooled_warmup.json (``--out`` another name).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

from _common import (
    RESULTS,
    add_data_argument,
    chinchilla_csv,
    machine,
    marin_runs,
    missing,
    write_results,
)

CASES = ("law, plain", "law + GP", "approach 2", "grouped (Marin)")
SETTINGS = {"chains": 4, "draws": 1000, "warmup": 1000}


@contextlib.contextmanager
def every_stage_pooled(forced: bool) -> Iterator[None]:
    """Let every stage pool its chains (the package pools the law's and the GP's only), not
    its careful retries; in this process."""
    from scalebayes import engine

    if not forced:
        yield
        return
    original = engine.stage_settings

    def pooled(settings: Any, stage: Any) -> Any:
        stage = stage if "retry" in stage.label else dataclasses.replace(stage, pooled_warmup=True)
        return original(settings, stage)

    engine.stage_settings = pooled
    try:
        yield
    finally:
        engine.stage_settings = original


def one_fit(case: str, tables: dict[str, Any], seed: int, pooled: bool) -> dict[str, Any]:
    """Fit ``case``: sampling seconds, leapfrog steps per draw, health, whether retried."""
    import scalebayes as sb

    settings = {**SETTINGS, "pooled_warmup": pooled}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # health is recorded
        if case == "approach 2":
            fit = sb.fit_isoflops(tables["epoch"], seed=seed, **settings)
            wall = fit.wall_time
        else:
            if case == "grouped (Marin)":
                fit = sb.fit_groups(tables["marin"], seed=seed, **settings)
            else:
                likelihood = sb.Likelihood(discrepancy="none" if case == "law, plain" else "auto")
                fit = sb.fit(tables["epoch"], "chinchilla", likelihood=likelihood, seed=seed,
                             **settings)  # fmt: skip
            wall = fit.settings.wall_time
    d = fit.diagnostics
    return {"case": case, "seed": seed, "end_to_end_s": time.perf_counter() - started,
            "sampling_s": wall["sampling"],
            "steps_per_draw": float(fit.idata["sample_stats"]["n_steps"].mean()),
            **d.to_dict(), "healthy": d.ok}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--seeds", type=int, default=2, help="timed fits per case and warmup")
    parser.add_argument("--out", default="pooled_warmup.json", help="under benchmarks/results")
    args = parser.parse_args()
    if missing(chinchilla_csv(args.data)):
        return 0
    import scalebayes as sb

    sb.configure()
    tables = {"epoch": sb.load_runs(chinchilla_csv(args.data)), "marin": marin_runs(args.data)}
    cases = [c for c in CASES if tables["marin"] is not None or "Marin" not in c]
    rows = []
    for warmup, pooled in (("chains alone", False), ("pooled", True)):
        with every_stage_pooled(pooled):
            for case in cases:
                one_fit(case, tables, seed=1000, pooled=pooled)  # compiles; not timed
                for seed in range(args.seeds):
                    rows.append({"warmup": warmup, **one_fit(case, tables, seed, pooled)})
                    print({k: round(v, 3) if isinstance(v, float) else v
                           for k, v in rows[-1].items()
                           if k in ("warmup", "case", "seed", "sampling_s", "steps_per_draw",
                                    "min_ess_bulk", "n_divergent", "retried", "healthy")},
                          flush=True)  # fmt: skip
    print(f"\n{'case':<18} {'warmup':<16} {'sampling s':>11} {'steps/draw':>11} "
          f"{'min ESS':>8} {'retried':>8} {'healthy':>8}")  # fmt: skip
    summary = []
    for case in cases:
        for warmup in dict.fromkeys(r["warmup"] for r in rows):
            mine = [r for r in rows if r["case"] == case and r["warmup"] == warmup]
            line = {"case": case, "warmup": warmup,
                    **{k: statistics.median(r[k] for r in mine)
                       for k in ("sampling_s", "steps_per_draw", "min_ess_bulk")},
                    "retried": sum(r["retried"] for r in mine),
                    "healthy": sum(r["healthy"] for r in mine), "fits": len(mine)}  # fmt: skip
            summary.append(line)
            print(f"{case:<18} {warmup:<16} {line['sampling_s']:>11.2f} "
                  f"{line['steps_per_draw']:>11.1f} {line['min_ess_bulk']:>8.0f} "
                  f"{line['retried']:>8} {line['healthy']:>5}/{len(mine)}")  # fmt: skip
    write_results(
        RESULTS / args.out,
        {"settings": {**SETTINGS, "seeds": args.seeds, "data": str(args.data)},
         "rows": rows, "summary": summary, "machine": machine()},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
