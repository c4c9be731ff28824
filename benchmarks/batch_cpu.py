"""Benchmark: on a CPU, do several tables sample faster as one batch of chains or one at a time?

``sb.fit_batch`` (and every backtest, leave-future-out and calibration study built on it) can
run its tables' chains as one batch (one compiled program for the whole batch; what a GPU runs,
vmapped) or one table after another through the one-table sampler (the program an ordinary fit
of the same law and table shape compiles). Each mode runs in a fresh Python process with no
compile cache, on simulated isoFLOP ladders (the plain Chinchilla law, 81 runs, 4 chains x
(500 + 500) per table, as the test suite's fits), in the order a backtest meets them:

- ``single then batch``: one ordinary fit (its program compiled), then the batch of B tables,
  then the batch again (compiled programs reused);
- ``batch alone``: the batch of B tables cold, then again.

CPU seconds are the process's (all threads), so the machine's load distorts them less than wall
time. Writes benchmarks/results/batch_cpu.json.

    python benchmarks/batch_cpu.py [--batches 3 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import RESULTS, add_data_argument, machine, write_results

MODES = ("batched", "one at a time")


def one_process(mode: str, batch: int) -> dict[str, float]:
    """Measure, in this process, a plain fit then the batch twice (mode: see MODES)."""
    import numpy as np

    import scalebayes as sb
    from scalebayes import engine
    from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design, simulate

    sb.configure(compile_cache=False)
    engine.BATCH_ON_CPU = mode == "batched"
    runs = simulate(
        "chinchilla", EPOCH_CHINCHILLA, isoflop_design(CHINCHILLA_BUDGETS), noise=0.01, seed=1
    )
    settings = {
        "chains": 4,
        "draws": 500,
        "warmup": 500,
        "likelihood": sb.Likelihood(discrepancy="none"),
    }
    rng = np.random.default_rng(0)
    masks = [rng.random(len(runs)) < 0.8 for _ in range(batch)]
    out = {}
    for label, work in (
        ("single fit", lambda: sb.fit(runs, "chinchilla", seed=0, **settings)),
        ("batch", lambda: sb.fit_batch([runs] * batch, "chinchilla", masks=masks, **settings)),
        (
            "batch again",
            lambda: sb.fit_batch([runs] * batch, "chinchilla", masks=masks, seed=1, **settings),
        ),
    ):
        cpu, wall = time.process_time(), time.perf_counter()
        work()
        out[f"{label} cpu_s"] = time.process_time() - cpu
        out[f"{label} wall_s"] = time.perf_counter() - wall
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser, reads=False)
    parser.add_argument("--batches", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_process(args.one[0], int(args.one[1]))))
        return 0
    env = {**os.environ, "SCALEBAYES_COMPILE_CACHE": "0"}
    rows = []
    for batch in args.batches:
        for mode in MODES:
            done = subprocess.run(
                [sys.executable, __file__, "--one", mode, str(batch)],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
            rows.append({"batch": batch, "mode": mode, **json.loads(done.stdout.splitlines()[-1])})
    print("plain Chinchilla law, 81 runs, 4 chains x (500 + 500) per table; CPU seconds (wall)")
    print(
        f"{'tables':>6s} {'mode':14s} {'single fit':>16s} {'batch (cold)':>16s} {'batch again':>16s}"
    )
    for r in rows:
        cells = [
            f"{r[f'{k} cpu_s']:6.1f} ({r[f'{k} wall_s']:5.1f})"
            for k in ("single fit", "batch", "batch again")
        ]
        print(f"{r['batch']:6d} {r['mode']:14s} " + " ".join(f"{c:>16s}" for c in cells))
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_1min']:.1f}")
    write_results(RESULTS / "batch_cpu.json", {"machine": info, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
