"""Benchmark: compute-optimal allocation by approaches 1 (envelope), 2 (isoFLOP minima), 3 (the law).

Real data (default): approach 2 (``sb.fit_isoflops``: latent sweep minima, a power law through
them) and approach 3 (the plain Chinchilla law, ``--discrepancy none``, minimised per draw) on
Epoch's digitised Chinchilla runs (sweeps found from C) and on each Open-Athena experiment
(sweeps from its ``budget`` column). Prints, per table, the allocation exponent a of N* ~ C^a
with its 90 % interval, N* and tokens per parameter 100x beyond the largest sweep, the
diagnostics, each fit's time (compile and sampling apart) and its mean leapfrog steps per draw.

Known truth (``--truth``, in _allocation_truth.py): isoFLOP sweeps (5 budgets 1e18-1e21 x 7
runs, 1 % log-normal noise) simulated from Epoch's Chinchilla fit ("exact") or from it plus a
second, steeper parameter term that bends N*(C) ("bent"), with sweeps centred on the true
optimum or shifted off it by a factor 1.5-1.8; coverage of the 90 % intervals of a (the local
exponent at the sweeps' mean log budget), of approach 2's drift kappa and of N* 100x beyond the
largest sweep, for approach 2 (``--shape``, ``--drift``: its drift priors' sd, "none" for the
straight line) and approach 3 (unless ``--no-law``).

    python benchmarks/allocation_approaches.py [--data DIR] [--chains 4 --draws 1000 --warmup 1000]
    python benchmarks/allocation_approaches.py --truth [--replicates 10] [--shape shared per_budget]
    python benchmarks/allocation_approaches.py --truth --drift none 0.02 --no-law  # the drift
    python benchmarks/allocation_approaches.py --truth --drift none 0.02 --no-law \
        --extrapolation edge quadratic  # both ways beyond the sweeps, on the same fits
    python benchmarks/allocation_approaches.py --curves [--quick]   # approach 1, (Mis)Fitting curves
    python benchmarks/allocation_approaches.py --all [--quick]      # every approach, Epoch's runs
    python benchmarks/allocation_approaches.py --envelope-truth [--quick]  # approach 1, known truth

``--minima own`` and ``--scatter-prior`` change approach 2's model on the real tables (how its
default was chosen: README, approach 2). ``--curves``: approach 1 (``sb.load_curves`` keeps each run's final checkpoint; the envelope of
the finished runs) on (Mis)Fitting's learning curves, with the data README's conservative
filter (the corrupted 17m sweep dropped), then every approach side by side on the finished runs (``approach="all"``; approach 3 is the
plain Chinchilla law). Writes allocation_envelope.json. ``--all``: every approach on Epoch's
runs, with the verdict (``--discrepancy auto``: the default model, so approach 3m runs too);
writes allocation_all.json. ``--envelope-truth``: approach 1 on
finished runs simulated from a known law (``--design``: Epoch's law, 11 sizes x 6 horizons;
Hoffmann et al.'s, 9 sizes x 5 horizons; the bent truth on the first; 1 % noise; a refused table
counts as a miss): coverage and bias of the 90 % intervals of a and of N* 100x beyond the
measured levels; writes allocation_envelope_truth.json.

Writes benchmarks/results/allocation_approaches.json (``--truth``: allocation_truth.json;
``--out NAME`` another name).
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from _allocation_truth import BEYOND, SIM_NOISE, interval, show, true_n_star, truth, truth_law
from _common import (
    RESULTS,
    add_data_argument,
    chinchilla_csv,
    machine,
    missing,
    open_athena_csv,
    write_results,
)

HOFFMANN_APPROACH_2 = (0.462, 0.534)  # Hoffmann et al. 2022, Table 2: a = 0.49 [0.462, 0.534]


# --- real data --------------------------------------------------------------------------------


def tables(data: Any) -> dict[str, Any]:
    """Epoch's runs (sweeps from C) and each Open-Athena experiment (sweeps from ``budget``)."""
    import scalebayes as sb

    found = {}
    if chinchilla_csv(data).is_file():
        found["epoch_chinchilla (raw C)"] = sb.load_runs(chinchilla_csv(data))
    if open_athena_csv(data).is_file():
        extract = pd.read_csv(open_athena_csv(data))
        for experiment, rows in extract.groupby("experiment"):
            table = rows[["params", "tokens", "budget", "loss"]].reset_index(drop=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicates and 6ND vs the nominal budget
                found[str(experiment)] = sb.load_runs(table)
    return found


def profile_model(args: argparse.Namespace) -> Any:
    """Approach 2's model for the real tables: the package's, or ``--minima``/``--scatter-prior``."""
    from scalebayes.allocation.profile import ProfileModel

    changed = {k: getattr(args, k) for k in ("minima", "scatter_prior") if getattr(args, k)}
    if args.curvature_prior:
        changed["curvature_prior"] = (
            None if args.curvature_prior == "none" else args.curvature_prior
        )
    return ProfileModel(**changed)


def real(args: argparse.Namespace) -> None:
    import scalebayes as sb

    if missing(chinchilla_csv(args.data)) and missing(open_athena_csv(args.data)):
        return
    settings = sb.Settings(chains=args.chains, draws=args.draws, warmup=args.warmup, seed=args.seed)
    results = {}
    for name, runs in tables(args.data).items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            started = time.perf_counter()
            iso = sb.fit_isoflops(runs, settings=settings, model=profile_model(args))
            iso_s = time.perf_counter() - started
            ref = BEYOND * iso.budgets.compute.max()
            two = iso.optimal([ref])
            started = time.perf_counter()
            law = sb.fit(
                runs, "chinchilla", likelihood=sb.Likelihood(discrepancy="none"), settings=settings
            )
            law_s = time.perf_counter() - started
            three = sb.optimal(law, [ref])
        row = {
            "runs": len(runs),
            "sweeps": str(iso.budgets),
            "budgets": iso.budgets.n_budgets,
            "reference_budget": ref,
            "edge_sweeps": [float(c) for c in iso.budgets.compute[iso.edge]],
            "approach_2": {
                "a": interval(iso.a),
                "N_star": interval(two.N),
                "tokens_per_param": interval(two.tokens_per_param),
                "p": interval(iso.posterior["p"]),
                "q": interval(iso.posterior["q"]),
                "tau": interval(iso.posterior["tau"]),
                # the exponent drift per e-fold of C (absent for the straight line)
                **({"kappa": interval(iso.posterior["kappa"])} if "kappa" in iso.posterior else {}),
                "diagnostics": iso.diagnostics.to_dict(),
                "time_s": iso_s,
                "wall_time": iso.wall_time,
                "leapfrog_steps": leapfrog_steps(iso.idata),
            },
            "approach_3": {
                "a": interval(three.exponent_N),
                "N_star": interval(three.N),
                "tokens_per_param": interval(three.tokens_per_param),
                "diagnostics": law.diagnostics.to_dict(),
                "time_s": law_s,
                "wall_time": dict(law.settings.wall_time),
                "leapfrog_steps": leapfrog_steps(law.idata),
            },
            "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        }
        if name.startswith("epoch"):  # at Chinchilla's own budget (Hoffmann et al.: ~20)
            row["approach_2"]["tokens_per_param_at_5.76e23"] = interval(
                iso.optimal([5.76e23]).tokens_per_param
            )
            row["approach_3"]["tokens_per_param_at_5.76e23"] = interval(
                sb.optimal(law, [5.76e23]).tokens_per_param
            )
        results[name] = row
        print(
            f"{name}: {row['sweeps']}\n"
            f"  approach 2: a {show(row['approach_2']['a'])}  N* {show(row['approach_2']['N_star'], '.3g')}"
            f"  D/N {show(row['approach_2']['tokens_per_param'], '.3g')}  {iso.diagnostics}"
            f"  {iso_s:.1f} s (compile {iso.wall_time['compile']:.1f})\n"
            f"  approach 3: a {show(row['approach_3']['a'])}  N* {show(row['approach_3']['N_star'], '.3g')}"
            f"  D/N {show(row['approach_3']['tokens_per_param'], '.3g')}  {law.diagnostics}"
            f"  {law_s:.1f} s (compile {law.settings.wall_time['compile']:.1f})",
            flush=True,
        )
    print_table(results)
    write_results(
        RESULTS / (args.out or "allocation_approaches.json"),
        {
            "settings": {
                "chains": args.chains,
                "draws": args.draws,
                "warmup": args.warmup,
                "model": repr(profile_model(args)),
                "seed": args.seed,
            },
            "hoffmann_approach_2_a": HOFFMANN_APPROACH_2,
            "beyond": BEYOND,
            "tables": results,
            "machine": machine(),
        },
    )


def leapfrog_steps(idata: Any) -> float:
    """Mean leapfrog steps per kept draw: the sampling cost apart from the machine."""
    return float(idata["sample_stats"]["n_steps"].mean())


def print_table(results: dict[str, Any]) -> None:
    print(
        f"\n{'table':45s} {'B':>3s} {'a, approach 2':>24s} {'a, approach 3':>24s} "
        f"{'D/N 100x, 2':>10s} {'D/N 100x, 3':>10s} {'time 2':>7s} {'time 3':>7s} "
        f"{'steps 2':>7s} {'steps 3':>7s}"
    )
    for name, r in results.items():
        two, three = r["approach_2"], r["approach_3"]
        print(
            f"{name:45s} {r['budgets']:3d} {show(two['a']):>24s} {show(three['a']):>24s} "
            f"{two['tokens_per_param']['median']:10.3g} {three['tokens_per_param']['median']:10.3g} "
            f"{two['time_s']:6.1f}s {three['time_s']:6.1f}s "
            f"{two['leapfrog_steps']:7.1f} {three['leapfrog_steps']:7.1f}"
        )


MISFITTING = "misfitting-curves/scaling_results.csv"
CORRUPTED_SWEEP = "2024_11_10-23_08_29_sweep_test"  # see the data's README


def curves(args: argparse.Namespace) -> None:
    """Approach 1 on (Mis)Fitting's curves; the verdict against approaches 2 and 3 there."""
    import scalebayes as sb

    path = args.data / MISFITTING
    if missing(path):
        return
    floats = {c: float for c in ("C", "C_no_emb", "C_6ND", "C_6ND_no_emb")}
    table = pd.read_csv(path, dtype=floats)
    table = table[table.sweep != CORRUPTED_SWEEP]
    found = sb.load_curves(
        table,
        run=["sweep", "model", "total_steps", "peak_lr"],
        step="current_steps",
        end="total_steps",
        columns={"N": "N", "D": "D", "C": "C", "loss": "loss"},
    )
    print(found, flush=True)
    settings = sb.Settings(chains=args.chains, draws=args.draws, warmup=args.warmup)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = sb.fit_envelope(found.runs, settings=settings)
    seconds = time.perf_counter() - started
    print(env, f"\n{seconds:.1f} s", flush=True)
    row = {
        "curves": str(found),
        "sizes": str(env.sizes),
        "levels": [float(env.levels.min()), float(env.levels.max()), len(env.levels)],
        "a": interval(env.a),
        "beta": interval(env.posterior["beta"]),
        "tokens_per_param_at_1e20": interval(env.optimal([1e20]).tokens_per_param),
        "diagnostics": env.diagnostics.to_dict(),
        "time_s": seconds,
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    }
    everything = side_by_side(found.runs, settings, [1e19, 1e20, 1e22])
    write_results(
        RESULTS / (args.out or "allocation_envelope.json"),
        {"settings": {"chains": args.chains, "draws": args.draws, "warmup": args.warmup},
         "approach_1_misfitting": row, "all_misfitting": everything, "machine": machine()},
    )  # fmt: skip


def side_by_side(
    runs: Any, settings: Any, budgets: list[float], discrepancy: str = "none"
) -> dict[str, Any]:
    """The law fitted (plain, or ``discrepancy``), then every approach side by side.

    ``sb.optimal(approach="all")``; approach 3m runs only where the fit has a discrepancy.
    """
    import scalebayes as sb

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        law = sb.fit(
            runs,
            "chinchilla",
            likelihood=sb.Likelihood(discrepancy=discrepancy),
            settings=settings,
        )
        result = sb.optimal(law, budgets, approach="all")
    print(result, f"\n{time.perf_counter() - started:.1f} s", flush=True)
    return {
        "text": str(result),
        "verdict": result.verdict,
        "recommended": result.recommended,
        "why": result.why,
        "refused": dict(result.refused),
        "a": {k: interval(r.exponent_N.isel(budget=0)) for k, r in result.results.items()},
        "pairs": [pair.sentence(result.budgets) for pair in result.pairs],
        "diagnostics": {k: d.to_dict() for k, d in result.diagnostics.items()},
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    }


def epoch_all(args: argparse.Namespace) -> None:
    """Every approach on Epoch's digitised Chinchilla runs, with the verdict."""
    import scalebayes as sb

    if missing(chinchilla_csv(args.data)):
        return
    settings = sb.Settings(chains=args.chains, draws=args.draws, warmup=args.warmup)
    runs = sb.load_runs(chinchilla_csv(args.data))
    row = side_by_side(runs, settings, [5.76e23, 1e25], args.discrepancy)
    write_results(
        RESULTS / (args.out or "allocation_all.json"),
        {"settings": {"chains": args.chains, "draws": args.draws, "warmup": args.warmup,
                      "discrepancy": args.discrepancy},
         "epoch_chinchilla": row, "machine": machine()},
    )  # fmt: skip


# Approach 1's known-truth designs: (truth, law's parameters, model sizes, tokens per parameter).
# "epoch": Epoch's refit of Chinchilla, 11 sizes x 6 horizons (2-200 tokens/param; those
# below 5 are left out by the curve model); "hoffmann": Hoffmann et al.'s own fit (E 1.69,
# A 406.4, alpha 0.34, B 410.7, beta 0.28; a = 0.452), 9 coarser sizes x 5 horizons (5-200);
# "epoch_bent": the "bent" truth of --truth (Epoch's law plus A2 / N^0.7: N*'s local exponent
# falls with C) on the first design.
HOFFMANN_LAW = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}
ENVELOPE_DESIGNS = {
    "epoch": ("exact", None, (5e7, 1.2e9, 11), (2, 200, 6)),
    "hoffmann": ("exact", HOFFMANN_LAW, (3e7, 1e9, 9), (5, 200, 5)),
    "epoch_bent": ("bent", None, (5e7, 1.2e9, 11), (2, 200, 6)),
    # An over-training ladder: 5 sizes, each at 6 tokens-per-parameter ratios from 5 to 160.
    "ladder": ("exact", None, (5e7, 2e9, 5), (5, 160, 6)),
}


def envelope_truth(args: argparse.Namespace) -> None:
    """Approach 1 with known truth: finished runs of several sizes and horizons from a known law.

    Per table the true a is the least-squares slope of the truth's log N* over the fit's
    measured levels (the quantity approach 1's a estimates; the law's a when N*(C) is
    straight), and N* is scored 100x beyond the largest measured level.
    """
    import scalebayes as sb

    settings = sb.Settings(chains=args.chains, draws=args.draws, warmup=args.warmup)
    results = {}
    for name in args.design:
        kind, params, size_range, horizons = ENVELOPE_DESIGNS[name]
        law, truth_params = truth_law(kind)
        params = params or truth_params
        sizes = np.geomspace(*size_range)
        design = pd.DataFrame(
            [(n, n * t) for n in sizes for t in np.geomspace(*horizons)], columns=["N", "D"]
        )
        rows = []
        for seed in range(args.replicates):
            runs = sb.simulate(law, params, design, noise=SIM_NOISE, seed=seed)
            started = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # diagnostics are recorded instead
                    fit = sb.fit_envelope(runs, settings=settings, seed=seed)
            except sb.EnvelopeError as refused:  # counted as a table without an interval
                rows.append({"seed": seed, "refused": str(refused), "covered": False,
                             "n_star_covered": False})  # fmt: skip
                print(f"{name} seed {seed}: refused: {refused}", flush=True)
                continue
            seconds = time.perf_counter() - started
            log_c = np.log(fit.levels)
            slope = np.polyfit(log_c, np.log(true_n_star(law, params, fit.levels)), 1)[0]
            far = BEYOND * fit.levels.max()
            n_true = float(true_n_star(law, params, np.array([far]))[0])
            a = interval(fit.a)
            n_star = interval(np.log(fit.optimal([far]).N))
            rows.append({"seed": seed, "a_true": float(slope),
                         **{f"a_{k}": v for k, v in a.items()},
                         "covered": bool(a["lower"] <= slope <= a["upper"]),
                         "log_n_true": np.log(n_true),
                         **{f"log_n_{k}": v for k, v in n_star.items()},
                         "n_star_covered": bool(n_star["lower"] <= np.log(n_true) <= n_star["upper"]),
                         "levels": len(fit.levels), "max_rhat": fit.diagnostics.max_rhat,
                         "divergent": fit.diagnostics.n_divergent, "seconds": seconds})  # fmt: skip
            print(f"{name} seed {seed}: a {show(a)} (truth {slope:.3f}); log N* 100x beyond "
                  f"{show(n_star, '.2f')} (truth {np.log(n_true):.2f}) {fit.diagnostics}",
                  flush=True)  # fmt: skip
        table = pd.DataFrame(rows)
        summary = {
            "tables": len(table),
            "refused": int(table["a_median"].isna().sum()),
            "covered": int(table["covered"].sum()),
            "coverage_90": float(table["covered"].mean()),
            "median_bias": float((table["a_median"] - table["a_true"]).mean()),
            "median_bias_se": float(table["a_median"].std() / np.sqrt(len(table))),
            "median_width": float((table["a_upper"] - table["a_lower"]).median()),
            "n_star_covered": int(table["n_star_covered"].sum()),
            "n_star_log_bias": float((table["log_n_median"] - table["log_n_true"]).mean()),
            "n_star_log_width": float((table["log_n_upper"] - table["log_n_lower"]).median()),
        }
        print(name, summary, flush=True)
        results[name] = {"truth": kind, "law": params, "sizes": list(size_range),
                         "tokens_per_param": list(horizons), "summary": summary,
                         "fits": rows}  # fmt: skip
    write_results(
        RESULTS / (args.out or "allocation_envelope_truth.json"),
        {"settings": {"chains": args.chains, "draws": args.draws, "warmup": args.warmup,
                      "replicates": args.replicates, "noise": SIM_NOISE, "beyond": BEYOND},
         "designs": results, "machine": machine()},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--truth", action="store_true", help="the known-truth coverage study")
    parser.add_argument("--curves", action="store_true", help="approach 1 on the curve data")
    parser.add_argument("--all", action="store_true", help="every approach on Epoch's runs")
    parser.add_argument(
        "--discrepancy",
        default="none",
        help="--all: the fit's discrepancy (default none, the plain law; auto: the package's "
        "default model, law + GP, which approach 3m reads)",
    )
    parser.add_argument(
        "--envelope-truth", action="store_true", help="approach 1's coverage with known truth"
    )
    parser.add_argument("--quick", action="store_true", help="2 chains x 500 draws")
    parser.add_argument("--replicates", type=int, default=10, help="per truth and design (--truth)")
    parser.add_argument(
        "--shape",
        nargs="+",
        default=["shared"],
        choices=("shared", "per_budget"),
        help="approach 2's valley shapes to study (--truth)",
    )
    parser.add_argument(
        "--drift",
        nargs="+",
        default=["0.02"],
        help="approach 2's drift prior sd(s) per e-fold, or none (--truth)",
    )
    parser.add_argument(
        "--extrapolation",
        nargs="+",
        default=["edge"],
        choices=("edge", "quadratic"),
        help="approach 2's drift beyond the sweeps, each scored on the same fits (--truth)",
    )
    parser.add_argument("--no-law", action="store_true", help="skip approach 3 (--truth)")
    parser.add_argument(
        "--scatter",
        type=float,
        default=0.0,
        help="sd in log N of each simulated sweep's own optimum around the truth's N*(C) (--truth)",
    )
    parser.add_argument(
        "--design",
        nargs="+",
        default=["epoch", "hoffmann", "epoch_bent"],
        choices=list(ENVELOPE_DESIGNS),
        help="approach 1's known-truth designs (--envelope-truth)",
    )
    parser.add_argument(
        "--minima", choices=("polar", "own"), help="how approach 2 samples the minima (real data)"
    )
    parser.add_argument("--scatter-prior", help="approach 2's prior of tau^2 (real data)")
    parser.add_argument(
        "--curvature-prior",
        help="approach 2's prior of the sweeps' log-curvature spread squared; 'none': each "
        "sweep's curvature its own prior (the model before pooling)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (real data)")
    parser.add_argument("--out", help="file name under benchmarks/results (default per mode)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    args = parser.parse_args()
    import scalebayes as sb

    # As the CLI: one chain per CPU device; no compile cache, so every fit's compile is cold.
    sb.configure(compile_cache=False)
    if args.quick:  # 2 x 500 draws; 8 known-truth tables at 2 x 300
        args.chains, args.draws, args.warmup = 2, 500, 500
        if args.envelope_truth:
            args.draws, args.warmup, args.replicates = 300, 300, 8
    if args.envelope_truth:
        envelope_truth(args)
    elif args.curves:
        curves(args)
    elif args.all:
        epoch_all(args)
    elif args.truth:
        truth(args)
    else:
        real(args)


if __name__ == "__main__":
    main()
