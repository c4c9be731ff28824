"""Benchmark: scalebayes against the common ways of fitting a scaling law, side by side.

Methods (baselines implemented in benchmarks/baselines.py, numpy and scipy only):

- huber:      Hoffmann et al.'s recipe as Epoch re-ran it: Huber (delta 1e-3) on log residuals,
              L-BFGS-B from a 4500-start grid, best kept, then 4000 bootstrap refits from the best
              start. Predictive interval of a new run: bootstrap draw k's mean plus one residual
              drawn from refit k's own residuals, 5 %-95 % quantiles over draws.
- curve_fit:  scipy curve_fit (least squares on log loss, Levenberg-Marquardt, 108 starts, best
              SSE kept); intervals by parameter draws from N(theta, pcov) (the delta method),
              new-run interval = draw's mean + Normal(0, residual sd).
- scalebayes: scalebayes.fit with default settings (4 chains x 1000 + 1000, Student-t(4), the
              GP discrepancy);
- scalebayes none: the same with Likelihood(discrepancy="none"), the plain law (the default
              before issue 6);
- scalebayes curvature: the same with Likelihood(discrepancy="curvature").

Two measurements:

1. Speed on Epoch's Chinchilla data (245 runs): each method end-to-end in a fresh Python
   process (imports, data, fit, 90 % intervals); scalebayes with a cold JAX compile cache
   (SCALEBAYES_COMPILE_CACHE=0). ESS per second = min bulk ESS / end-to-end seconds; for the
   bootstrap, independent draws per second.
2. Backtest scores on the same cuts for every method: Epoch with the top 1 and 2 decades of
   compute held out, each Open-Athena isoFLOP experiment with its 1 and 2 largest budgets held
   out. scalebayes rows come from scalebayes.backtesting.backtest. Methods are ranked by the
   mean 90 % interval score over the cuts (a proper score: width plus 20x any miss, so wide
   intervals do not win by coverage alone), then CRPS; coverage, width and bias follow.

The machine is shared: the 1-minute load average is recorded with every measurement.

    python benchmarks/versus.py [--data DIR]         # everything (an hour or more on 2 cores)
    python benchmarks/versus.py --datasets epoch --grid small --bootstrap 200 --backtest-grid small
    python benchmarks/versus.py --datasets open-athena --experiments llama_3__raw_loss --skip-timing
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

from _common import (
    RESULTS,
    add_data_argument,
    chinchilla_csv,
    machine,
    missing,
    open_athena_csv,
    write_results,
)

METHODS = ("scalebayes", "scalebayes_none", "scalebayes_curvature", "huber", "curve_fit")
LABELS = {
    "scalebayes": "scalebayes (gp)",
    "scalebayes_none": "scalebayes none",
    "scalebayes_curvature": "scalebayes curvature",
    "huber": "Huber+bootstrap",
    "curve_fit": "curve_fit",
}


def _load_epoch_arrays(path: Path):
    """N, D, loss of Epoch's table, as scalebayes reads it (D = C / 6N), without importing JAX."""
    import pandas as pd

    frame = pd.read_csv(path)
    n = frame["Model Size"].to_numpy(float)
    c = frame["Training FLOP"].to_numpy(float)
    return n, c / (6.0 * n), frame["loss"].to_numpy(float)


def _likelihood(method: str):
    """The likelihood of a scalebayes method: None (the library's default) or a discrepancy."""
    import scalebayes as sb

    if method == "scalebayes":
        return None
    return sb.Likelihood(discrepancy=method.removeprefix("scalebayes_"))


def one_run(args: argparse.Namespace) -> dict:
    """Fit Epoch's data once with ``args.one`` in this (fresh) process; return the timings."""
    started = time.perf_counter()
    if args.one.startswith("scalebayes"):
        import scalebayes as sb

        sb.configure()  # as the CLI does
        runs = sb.load_runs(chinchilla_csv(args.data))
        likelihood = _likelihood(args.one)
        fit = sb.fit(runs, "chinchilla", likelihood=likelihood, seed=0)
        summary = fit.summary(ci_prob=0.9)
        total = time.perf_counter() - started
        return {
            "end_to_end_s": total,
            "compile_s": fit.settings.wall_time["compile"],
            "sampling_s": fit.settings.wall_time["sampling"],
            **fit.diagnostics.to_dict(),
            "ess_per_s": fit.diagnostics.min_ess_bulk / total,
            "params": {
                name: [float(row["median"]), float(row["lower"]), float(row["upper"])]
                for name, row in summary.iterrows()
                if name in ("E", "A", "B", "alpha", "beta")
            },
        }
    import baselines as bl

    n, d, loss = _load_epoch_arrays(chinchilla_csv(args.data))
    if args.one == "huber":
        boot = bl.huber_bootstrap(n, d, loss, starts=bl.grid(args.grid), n_boot=args.bootstrap)
        total = time.perf_counter() - started
        return {
            "end_to_end_s": total,
            "starts": len(bl.grid(args.grid)),
            "bootstrap": args.bootstrap,
            "draws_per_s": args.bootstrap / total,
            "params": bl.param_intervals(boot),
        }
    cf = bl.curve_fit_fit(n, d, loss, bl.grid("small"))
    params = bl.param_intervals(cf)
    bl.curve_fit_draws(cf, args.bootstrap)
    total = time.perf_counter() - started
    return {"end_to_end_s": total, "starts": len(bl.grid("small")), "params": params}


def timing(args: argparse.Namespace, method: str) -> dict:
    """Run ``method`` on Epoch's data in a fresh process, cold compile cache."""
    env = {**os.environ, "SCALEBAYES_COMPILE_CACHE": "0"}
    cmd = [sys.executable, __file__, "--one", method, "--data", str(args.data)]
    cmd += ["--grid", args.grid, "--bootstrap", str(args.bootstrap)]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{method} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started  # includes interpreter start-up
    result["load_average_1min_before"] = load
    result["load_average_1min_after"] = os.getloadavg()[0]
    return result


def print_timing(times: dict[str, dict]) -> None:
    print("\nspeed on Epoch's Chinchilla data (245 runs), each in a fresh process, cold JAX cache")
    print(
        f"{'method':22s} {'end-to-end':>10s} {'process':>8s} {'minESS':>7s} {'ESS/s':>7s} "
        f"{'load':>9s}  notes"
    )
    huber = times.get("huber", {}).get("end_to_end_s")
    for method, r in times.items():
        ess = r.get("min_ess_bulk")
        ess = "" if ess is None else f"{ess:.0f}"
        rate = r.get("ess_per_s", r.get("draws_per_s"))
        note = ""
        if method == "huber":
            note = f"{r['starts']} starts, {r['bootstrap']} bootstrap refits (ESS/s: draws/s)"
        elif method.startswith("scalebayes"):
            note = f"R-hat {r['max_rhat']:.3f}, {r['n_divergent']} divergent"
            if huber:
                note += f"; {huber / r['end_to_end_s']:.1f}x faster than Huber+bootstrap"
        print(
            f"{LABELS[method]:22s} {r['end_to_end_s']:9.1f}s {r['process_s']:7.1f}s "
            f"{ess:>7s} "
            f"{'' if rate is None else f'{rate:7.0f}':>7s} "
            f"{r['load_average_1min_before']:4.1f}/{r['load_average_1min_after']:<4.1f}  {note}"
        )


def load_open_athena(path: Path, experiment: str):
    """One Open-Athena experiment as scalebayes Runs (budget as C, kept where 6ND disagrees)."""
    import pandas as pd

    import scalebayes as sb

    frame = pd.read_csv(path)
    frame = frame[frame["experiment"] == experiment]
    table = frame[["params", "tokens", "budget", "loss"]].rename(
        columns={"params": "N", "tokens": "D", "budget": "C"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataWarning: budgets are nominal, duplicates kept
        return sb.load_runs(table.reset_index(drop=True), accept_inconsistent_c=True)


def baseline_backtest(runs, method: str, cuts, labels, args: argparse.Namespace) -> list[dict]:
    """Fit ``method`` at or below each cut, score its predictions of the runs above."""
    import baselines as bl
    import numpy as np

    rows = []
    for cut, label in zip(cuts, labels, strict=True):
        started = time.perf_counter()
        fit_mask = runs.C <= cut
        n, d, loss = runs.N[fit_mask], runs.D[fit_mask], runs.loss[fit_mask]
        if method == "huber":
            model = bl.huber_bootstrap(
                n, d, loss, starts=bl.grid(args.backtest_grid), n_boot=args.backtest_bootstrap
            )
        else:
            model = bl.curve_fit_fit(n, d, loss, bl.grid("small"))
        point, draws = bl.predictive(
            model, runs.N[~fit_mask], runs.D[~fit_mask], n_draws=args.backtest_bootstrap
        )
        rows.append(
            {
                "method": method,
                "held_out": label,
                "n_fit": int(fit_mask.sum()),
                "n_held": int((~fit_mask).sum()),
                **bl.scores(point, draws, np.log(runs.loss[~fit_mask])),
                "seconds": time.perf_counter() - started,
                "load_average_1min": os.getloadavg()[0],
                "starts": len(bl.grid(args.backtest_grid if method == "huber" else "small")),
                "draws": args.backtest_bootstrap,
            }
        )
    return rows


def scalebayes_backtest(runs, method: str, holdout: dict) -> list[dict]:
    """scalebayes.backtesting.backtest's rows for default or curvature likelihood."""
    import scalebayes as sb
    from scalebayes.backtesting import backtest

    likelihood = _likelihood(method)
    started = time.perf_counter()
    try:
        result = backtest(runs, "chinchilla", likelihood=likelihood, **holdout)
    except sb.ScalebayesError as error:  # recorded, so that the baselines still run
        print(f"  {LABELS[method]} failed: {error}")
        return [{"method": method, "error": str(error)}]
    seconds = time.perf_counter() - started
    keep = ["held_out", "n_fit", "n_held", "interval_score_90", "crps", "lpd"]
    keep += ["coverage_90", "coverage_50", "width_90", "bias", "median_abs_error", "mean_abs_error"]
    rows = []
    for row, fit in zip(result.table.to_dict("records"), result.fits, strict=False):
        rows.append(
            {
                "method": method,
                **{k: row[k] for k in keep},
                "max_rhat": fit.diagnostics.max_rhat,
                "n_divergent": fit.diagnostics.n_divergent,
                "seconds": seconds,  # one fit_batch for all cuts and the all-runs fit
                "load_average_1min": os.getloadavg()[0],
            }
        )
    return rows


def cuts_for(runs, holdout: dict) -> tuple[list[float], list[str]]:
    """The cut-offs scalebayes.backtest uses for the same holdout arguments."""
    from scalebayes.backtesting import backtest_cuts

    cuts = backtest_cuts(runs, holdout.get("holdout_top"), holdout.get("holdout_budgets"))
    return [cut.flops for cut in cuts], [cut.label for cut in cuts]


def dataset_backtest(name: str, runs, holdout: dict, args: argparse.Namespace) -> list[dict]:
    """Every requested method's backtest rows on one dataset; prints the table."""
    cuts, labels = cuts_for(runs, holdout)
    rows: list[dict] = []
    for method in args.methods:
        if method.startswith("scalebayes"):
            rows += scalebayes_backtest(runs, method, holdout)
        else:
            rows += baseline_backtest(runs, method, cuts, labels, args)
        print(f"  [{name}] {LABELS[method]} done ({rows[-1].get('seconds', 0):.0f} s)", flush=True)
    print_backtest(name, len(runs), rows)
    print_ranking(ranking(rows), f"{name}: methods by mean 90% interval score over the cuts")
    return rows


def print_backtest(name: str, n_runs: int, rows: list[dict]) -> None:
    print(f"\nbacktest on {name} ({n_runs} runs): fit at or below the cut, predict above")
    print(
        f"{'method':22s} {'held out':>14s} {'fit':>4s} {'held':>4s} {'IS90':>7s} {'CRPS':>7s} "
        f"{'cover90':>7s} {'cover50':>7s} {'width90':>7s} {'bias':>8s} {'med|err|':>8s} "
        f"{'seconds':>7s} {'load':>5s}"
    )
    for r in rows:
        if "error" in r:
            print(f"{LABELS[r['method']]:22s} failed: {r['error']}")
            continue
        print(
            f"{LABELS[r['method']]:22s} {r['held_out']:>14s} {r['n_fit']:4d} {r['n_held']:4d} "
            f"{r['interval_score_90']:7.4f} {r['crps']:7.4f} {r['coverage_90']:7.0%} "
            f"{r['coverage_50']:7.0%} {r['width_90']:7.4f} {r['bias']:+8.4f} "
            f"{r['median_abs_error']:8.4f} {r['seconds']:7.0f} {r['load_average_1min']:5.1f}"
        )


def ranking(rows: list[dict]) -> list[dict]:
    """Per method, mean scores over its cuts, best (lowest) mean interval score first."""
    import pandas as pd

    table = pd.DataFrame([r for r in rows if "error" not in r])
    if table.empty:
        return []
    means = table.groupby("method")[["interval_score_90", "crps", "coverage_90", "width_90"]]
    out = means.mean().assign(cuts=table.groupby("method").size())
    out = out.sort_values(["interval_score_90", "crps"]).reset_index()
    return out.to_dict("records")


def overall_ranking(backtests: dict[str, list[dict]]) -> list[dict]:
    """Over datasets: each method's mean rank by mean interval score (1 = best on a dataset)."""
    import pandas as pd

    ranks = []
    for name, rows in backtests.items():
        for position, r in enumerate(ranking(rows), start=1):
            ranks.append({"dataset": name, "method": r["method"], "rank": position, **r})
    if not ranks:
        return []
    table = pd.DataFrame(ranks).groupby("method")
    out = table[["rank", "interval_score_90", "crps", "coverage_90"]].mean()
    out = out.assign(datasets=table.size()).sort_values(["rank", "interval_score_90", "crps"])
    return out.reset_index().to_dict("records")


def print_ranking(rows: list[dict], title: str) -> None:
    print(f"\n{title} (lower is better; coverage for reference)")
    rank = "rank" in (rows[0] if rows else {})
    print(
        f"{'method':22s} {'mean rank' if rank else 'cuts':>9s} {'IS90':>7s} {'CRPS':>7s} "
        f"{'cover90':>7s}"
    )
    for r in rows:
        first = f"{r['rank']:9.2f}" if rank else f"{r['cuts']:9d}"
        print(
            f"{LABELS[r['method']]:22s} {first} {r['interval_score_90']:7.4f} {r['crps']:7.4f} "
            f"{r['coverage_90']:7.0%}"
        )


def save(path: Path, payload: dict) -> None:
    """Write ``payload``, keeping what another run (say, the timing alone) left in the file."""
    merged = json.loads(path.read_text()) if path.is_file() else {}
    for key, value in payload.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    write_results(path, merged)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument(
        "--datasets", nargs="+", choices=("epoch", "open-athena"), default=["epoch", "open-athena"]
    )
    parser.add_argument("--experiments", nargs="+", help="Open-Athena experiments (default all)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--grid",
        choices=("full", "small"),
        default="full",
        help="Huber start grid for the timing: full 4500 starts, small 108",
    )
    parser.add_argument("--bootstrap", type=int, default=4000, help="bootstrap refits (timing)")
    parser.add_argument("--backtest-grid", choices=("full", "small"), default="full")
    parser.add_argument("--backtest-bootstrap", type=int, default=4000)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "versus.json")
    args = parser.parse_args()
    epoch, open_athena = chinchilla_csv(args.data), open_athena_csv(args.data)
    if args.one:
        if missing(epoch):
            return 0
        print(json.dumps(one_run(args)))
        return 0

    part = "timing" if args.skip_backtest else "backtest" if args.skip_timing else "all"
    info = machine()
    settings = {k: str(v) for k, v in vars(args).items()}
    # Timing and backtests may be separate invocations writing the same file: each keeps its own.
    payload: dict = {"invocations": {part: {"machine": info, "settings": settings}}}
    payload["timing"], payload["backtest"] = {}, {}
    if "epoch" in args.datasets and not missing(epoch):
        if not args.skip_timing:
            for method in args.methods:
                payload["timing"][method] = timing(args, method)
                print(f"  timed {LABELS[method]}", flush=True)
            print_timing(payload["timing"])
            save(args.out, payload)
    if "epoch" in args.datasets and not args.skip_backtest and not missing(epoch):
        import scalebayes as sb

        runs = sb.load_runs(epoch)
        payload["backtest"]["epoch"] = dataset_backtest(
            "Epoch Chinchilla", runs, {"holdout_top": (1, 2)}, args
        )
        save(args.out, payload)
    if "open-athena" in args.datasets and not args.skip_backtest and not missing(open_athena):
        import pandas as pd

        experiments = args.experiments or sorted(pd.read_csv(open_athena)["experiment"].unique())
        for experiment in experiments:
            runs = load_open_athena(open_athena, experiment)
            payload["backtest"][experiment] = dataset_backtest(
                experiment, runs, {"holdout_budgets": (1, 2)}, args
            )
            save(args.out, payload)  # partial results survive an interrupted run
    if len(payload["backtest"]) > 1:
        payload["ranking"] = overall_ranking(payload["backtest"])
        print_ranking(payload["ranking"], "all datasets: methods by mean rank of interval score")
        save(args.out, payload)
    print(
        f"machine: {info['cpu']}, {info['cores']} cores (shared), load average at start "
        f"{info['load_average_1min']:.1f}, now {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
