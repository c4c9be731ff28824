"""Benchmark: predictive coverage beyond the data when the truth is known, with and without a bend.

The real-data backtests (benchmarks/backtest.py) cannot say whether the gp discrepancy covers
for the right reason. Here the truth is known: isoFLOP ladders (9 runs per budget, 6e18 to
3e21 FLOPs, plus 1e22 and 3e22 held out) simulated from Epoch's Chinchilla fit with 0.5 %
Normal noise, either exactly (truth "law") or bent by ``kappa * (ln C - ln C_mid)**2`` in log
loss (truth "bend": +2.0 % loss at 1e22 and +3.1 % at 3e22 FLOPs, at most 1 % inside the
fitted range), which no setting of the law's parameters reproduces. Each replicate (a fresh noise
seed) is fitted on the 81 smaller runs with the plain law (``none``) and with the GP
discrepancy (``gp``); we score the 90 % and 50 % new-run intervals on the 18 held-out runs.

    python benchmarks/discrepancy_truth.py [--replicates 20] [--draws 500 --warmup 500]

Writes benchmarks/results/discrepancy_truth.json.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, add_data_argument, machine, parse_discrepancy, write_results

FITTED = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)  # simulation.CHINCHILLA_BUDGETS
HELD = (1e22, 3e22)
NOISE = 0.005  # sd of log loss between runs
KAPPA = 1e-3  # the bend, in log loss per (ln C)^2


def bend(c: np.ndarray) -> np.ndarray:
    """The truth's departure from the law in log loss: a parabola in ln C centred on the fitted budgets."""
    mid = np.mean(np.log(FITTED))
    return KAPPA * (np.log(c) - mid) ** 2


def replicate(
    truth: str, seed: int, draws: int, warmup: int, discrepancies: list[str]
) -> list[dict]:
    import scalebayes as sb
    from scalebayes.scoring import interval_score
    from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design

    design = isoflop_design(FITTED + HELD)
    runs = sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=NOISE, seed=seed)
    if truth == "bend":
        table = runs.table.copy()
        table["loss"] = table["loss"] * np.exp(bend(table["C"].to_numpy()))
        runs = sb.load_runs(table[["N", "D", "C", "loss"]])
    held = runs.table["C"].to_numpy() > max(FITTED) * 1.01
    small = runs.subset(~held)
    observed = runs.table["loss"].to_numpy()[held]
    rows = []
    for discrepancy in discrepancies:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # diagnostics are recorded below instead
            fit = sb.fit(
                small,
                "chinchilla",
                likelihood=sb.Likelihood(discrepancy=parse_discrepancy(discrepancy)),
                draws=draws,
                warmup=warmup,
                seed=seed,
            )
            pred = sb.predict(
                fit,
                N=runs.table["N"].to_numpy()[held],
                D=runs.table["D"].to_numpy()[held],
                kind="new_run",
                seed=seed,
            )
        draws_ = pred.loss.stack(sample=("chain", "draw")).transpose("point", "sample").to_numpy()
        lo90, hi90, lo50, hi50, median = np.quantile(draws_, [0.05, 0.95, 0.25, 0.75, 0.5], axis=1)
        rows.append(
            {
                "truth": truth,
                "seed": seed,
                "discrepancy": discrepancy,
                "interval_score_90": float(
                    np.mean(interval_score(np.log(lo90), np.log(hi90), np.log(observed), 0.1))
                ),
                "coverage_90": float(np.mean((observed >= lo90) & (observed <= hi90))),
                "coverage_50": float(np.mean((observed >= lo50) & (observed <= hi50))),
                "median_abs_error": float(np.median(np.abs(np.log(observed / median)))),
                "width_90": float(np.median(np.log(hi90 / lo90))),
                "max_rhat": fit.diagnostics.max_rhat,
                "divergent": fit.diagnostics.n_divergent,
                "wall_s": time.perf_counter() - started,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser, reads=False)
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--out", default="discrepancy_truth.json")
    parser.add_argument(
        "--discrepancy",
        nargs="+",
        default=["none", "gp"],
        help="discrepancies by name, or NAME:FIELD=VALUE (e.g. gp:curvature_scale=0.002)",
    )
    args = parser.parse_args()
    del args.data  # simulated runs: the settings recorded stay as they were
    rows = []
    for truth in ("law", "bend"):
        for seed in range(args.replicates):
            rows.extend(replicate(truth, seed, args.draws, args.warmup, args.discrepancy))
            latest = pd.DataFrame(rows[-len(args.discrepancy) :])
            print(latest.to_string(index=False, header=seed == 0), flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["truth", "discrepancy"]).agg(
        interval_score_90=("interval_score_90", "mean"),
        coverage_90=("coverage_90", "mean"),
        coverage_50=("coverage_50", "mean"),
        median_abs_error=("median_abs_error", "median"),
        width_90=("width_90", "median"),
        max_rhat=("max_rhat", "max"),
        divergent=("divergent", "sum"),
        fit_s=("wall_s", "median"),
    )
    print(f"\n{args.replicates} replicates x {9 * len(HELD)} held-out runs per truth:")
    print(summary.to_string(float_format="{:.4f}".format))
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_1min']:.1f}")
    write_results(
        RESULTS / args.out,
        {
            "settings": {
                **vars(args),
                "noise": NOISE,
                "kappa": KAPPA,
                "fitted": FITTED,
                "held": HELD,
            },
            "summary": summary.reset_index().to_dict(orient="records"),
            "machine": info,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
