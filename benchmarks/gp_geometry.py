"""Benchmark: how the GP discrepancy's own module samples (the settings in discrepancy/gp.py).

Three measurements behind three choices of ``GP.sample_posterior``:

1. Target acceptance of the GP module. 24 isoFLOP ladders simulated from Epoch's Chinchilla fit
   (1 % noise, seeds 100-123, 4 chains x 500 draws as in CI), fitted with the GP module at
   target_accept 0.8, 0.95 and 0.99: divergent transitions in the GP module, and its mean
   leapfrog steps. (The library uses at least 0.95.)
2. Whitened, centred and non-centred GP weights (``gp.FORMS``) on Epoch's 245 runs, for the
   Chinchilla law (the GP amplitude ~0.07) and Kaplan's (the law misses by far: amplitude
   ~0.5), 4 x 1000 draws: divergences, the GP module's min bulk ESS and leapfrog steps. (The
   library samples whitened and, where that fails the checks, again centred; it sampled
   non-centred before.)
3. The cap on the GP module's tree depth during warmup (``gp.WARMUP_TREE_DEPTH``): the default
   fit of Epoch's 245 runs at the user's 4 x 1000 draws, ``--epoch-seeds`` seeds, and the
   simulated ladders of (1) at 4 x 500, each with no cap and with caps of 2^4 to 2^6 steps:
   fits reported healthy, divergences, the GP module's leapfrog steps per draw, seconds.

    python benchmarks/gp_geometry.py [--data DIR] [--seeds 24] [--epoch-seeds 10]
                                     [--studies target_accept parametrisation warmup_depth]

Writes benchmarks/results/gp_geometry.json.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from _common import RESULTS, add_data_argument, chinchilla_csv, machine, missing, write_results

STUDIES = ("target_accept", "parametrisation", "warmup_depth")


def target_accept_study(seeds: int) -> list[dict]:
    import scalebayes as sb
    from scalebayes.discrepancy import gp
    from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design

    design = isoflop_design(CHINCHILLA_BUDGETS)
    rows = []
    default = gp.TARGET_ACCEPT
    try:
        for accept in (0.8, 0.95, 0.99):
            gp.TARGET_ACCEPT = accept  # the GP module's floor; the law's stays 0.8
            divergent, steps, started = 0, 0.0, time.perf_counter()
            for seed in range(100, 100 + seeds):
                runs = sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.01, seed=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = sb.fit(runs, "chinchilla", seed=seed, chains=4, draws=500, warmup=500)
                stats = fit.idata["sample_stats"]
                divergent += int(stats["gp_diverging"].sum())
                steps += float(stats["gp_n_steps"].mean())
            rows.append(
                {
                    "gp_target_accept": accept,
                    "fits": seeds,
                    "gp_divergent_transitions": divergent,
                    "transitions": seeds * 4 * 500,
                    "gp_mean_leapfrog_steps": steps / seeds,
                    "seconds": time.perf_counter() - started,
                }
            )
            print(rows[-1], flush=True)
    finally:
        gp.TARGET_ACCEPT = default
    return rows


def warmup_depth_study(path, epoch_seeds: int, ladder_seeds: int) -> list[dict]:
    import scalebayes as sb
    from scalebayes.discrepancy import gp
    from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design

    tables = []
    if path is not None:
        epoch = sb.load_runs(path)
        tables += [("epoch", epoch, seed, 1000) for seed in range(epoch_seeds)]
    design = isoflop_design(CHINCHILLA_BUDGETS)
    for seed in range(100, 100 + ladder_seeds):
        runs = sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.01, seed=seed)
        tables.append(("ladder", runs, seed, 500))
    rows = []
    default = gp.WARMUP_TREE_DEPTH
    try:
        for cap in (None, 4, 5, 6):
            gp.WARMUP_TREE_DEPTH = cap
            for kind in ("epoch", "ladder"):
                fits = [t for t in tables if t[0] == kind]
                if not fits:
                    continue
                healthy, divergent, steps, rhat, started = 0, 0, [], [], time.perf_counter()
                for _, runs, seed, draws in fits:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fit = sb.fit(runs, "chinchilla", seed=seed, draws=draws, warmup=draws)
                    stats = fit.idata["sample_stats"]
                    healthy += fit.diagnostics.ok
                    divergent += int(stats["gp_diverging"].sum())
                    steps.append(float(stats["gp_n_steps"].mean()))
                    rhat.append(fit.diagnostics.max_rhat)
                rows.append(
                    {
                        "warmup_tree_depth": cap,
                        "table": kind,
                        "fits": len(fits),
                        "draws": fits[0][3],
                        "healthy": healthy,
                        "gp_divergent_transitions": divergent,
                        "gp_mean_leapfrog_steps": sum(steps) / len(steps),
                        "gp_max_mean_leapfrog_steps": max(steps),
                        "max_rhat": max(rhat),
                        "seconds": time.perf_counter() - started,
                    }
                )
                print(rows[-1], flush=True)
    finally:
        gp.WARMUP_TREE_DEPTH = default
    return rows


def parametrisation_study(path) -> list[dict]:
    import arviz_stats as azs
    import jax
    import numpy as np

    import scalebayes as sb
    from scalebayes import engine, model
    from scalebayes.discrepancy import gp
    from scalebayes.fitting import prepare
    from scalebayes.runtime import precision

    runs = sb.load_runs(path)
    rows = []
    for name in ("chinchilla", "kaplan"):
        law, likelihood = prepare(name, sb.Likelihood(discrepancy="gp"), None)
        settings = sb.Settings(target_accept=gp.TARGET_ACCEPT)
        for form in gp.FORMS:
            with precision(settings.precision):
                table = model.model_data(law, runs, likelihood)
                data = [likelihood.discrepancy.with_whitening(law, table)]
                stage = likelihood.discrepancy._stage(law, likelihood, form)
                sampler = engine._sampler(law, stage, len(runs), settings, 1)
                key = jax.random.fold_in(jax.random.key(0), 1)  # the GP stage's key, seed 0
                started = time.perf_counter()
                ((draws, stats),), _ = sampler.run(data, key, None)
            ess = min(
                float(np.min(azs.ess(np.asarray(draws[k])))) for k in ("gp_amplitude", "sigma")
            )
            ess = min(ess, float(np.min(azs.ess(np.asarray(draws[gp.WEIGHTS_SITE])))))
            rows.append(
                {
                    "law": name,
                    "parametrisation": form,
                    "divergent": int(stats["diverging"].sum()),
                    "min_ess_bulk": ess,
                    "gp_amplitude_median": float(np.median(draws["gp_amplitude"])),
                    "mean_leapfrog_steps": float(stats["n_steps"].mean()),
                    "seconds": time.perf_counter() - started,
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=24, help="simulated ladders (default 24)")
    parser.add_argument(
        "--epoch-seeds", type=int, default=10, help="seeds of Epoch's fit in study 3 (default 10)"
    )
    parser.add_argument(
        "--studies",
        nargs="+",
        choices=STUDIES,
        default=list(STUDIES),
        help="which studies to run (default all); the JSON keeps the others' earlier results",
    )
    add_data_argument(parser)
    args = parser.parse_args()
    out = RESULTS / "gp_geometry.json"
    earlier = json.loads(out.read_text()) if out.exists() else {}
    payload = {
        **{k: v for k, v in earlier.items() if k in STUDIES},
        "machine": machine(),
        "settings": {"seeds": args.seeds, "epoch_seeds": args.epoch_seeds},
    }
    epoch = None if missing(chinchilla_csv(args.data)) else chinchilla_csv(args.data)
    if "target_accept" in args.studies:
        payload["target_accept"] = target_accept_study(args.seeds)
    if "parametrisation" in args.studies and epoch is not None:
        payload["parametrisation"] = parametrisation_study(epoch)
    if "warmup_depth" in args.studies:
        payload["warmup_depth"] = warmup_depth_study(epoch, args.epoch_seeds, args.seeds)
    write_results(out, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
