"""Known truth for approach 2 and 3's allocation (``allocation_approaches.py --truth``).

Isoflop sweeps (5 budgets 1e18-1e21 x 7 runs, 1 % log-normal noise) simulated from Epoch's
Chinchilla fit ("exact": a straight power law N* ~ C^a) or from it plus a second, steeper
parameter term ("bent": N*'s local exponent falls with C), centred on the true optimum or
shifted off it; coverage of the 90 % intervals of a (the local exponent at the sweeps' mean log
budget), of kappa (approach 2 with drift) and of N* 100x beyond the largest sweep.
``--scatter``: each sweep's own optimum off the truth's N*(C) by Normal(0, scatter) in log N. A drifting
fit's N* is scored for each of ``--extrapolation`` (method name suffix ``_edge``:
the outer sweep's local exponent carried on straight; ``_quadratic``: the fitted quadratic in
log C carried on) from the same posterior.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, machine, write_results

BEYOND = 100.0  # N* is scored this far beyond the largest sweep
SIM_BUDGETS = np.geomspace(1e18, 1e21, 5)
SIM_SPAN = 1.6  # each sweep spans e^{+-1.6} (a factor 25) in N
SIM_RUNS = 7
SIM_NOISE = 0.01
# The bent truth: Epoch's law plus A2 / N^0.7, which dominates the parameter side of small
# models (A2/N^0.7 is 0.4 nats at N = 1e8, 0.02 at 1e10), so N*(C) steepens towards small C.
BENT = {"A2": 1.6e5, "alpha2": 0.7}


def design_record(**more: Any) -> dict[str, Any]:
    """The simulated design as results files record it, with ``more`` of a study's own."""
    return {"budgets": SIM_BUDGETS.tolist(), "runs_per_sweep": SIM_RUNS, "span_ln_N": SIM_SPAN,
            "noise": SIM_NOISE, "beyond": BEYOND, **more}  # fmt: skip


def interval(values: Any) -> dict[str, float]:
    """Median and 90 % equal-tailed interval of per-draw values."""
    flat = np.asarray(values).ravel()
    low, median, high = np.quantile(flat, [0.05, 0.5, 0.95])
    return {"median": float(median), "lower": float(low), "upper": float(high)}


def show(row: dict[str, float], fmt: str = ".3f") -> str:
    return f"{row['median']:{fmt}} [{row['lower']:{fmt}}, {row['upper']:{fmt}}]"


def truth_law(kind: str) -> tuple[Any, dict[str, float]]:
    """The simulated truth: Epoch's Chinchilla law, or it plus the bending term."""
    import scalebayes as sb
    from scalebayes.simulation import EPOCH_CHINCHILLA

    if kind == "exact":
        return sb.load_law("chinchilla"), dict(EPOCH_CHINCHILLA)
    prior = "LogNormal(loc=0.0, scale=1.0)"
    law = sb.make_law(
        "bent",
        "E + A / N**alpha + B / D**beta + A2 / N**alpha2",
        inputs=["N", "D"],
        priors={name: prior for name in ("E", "A", "alpha", "B", "beta", "A2", "alpha2")},
    )
    return law, {**EPOCH_CHINCHILLA, **BENT}


def true_n_star(law: Any, params: dict[str, float], budgets: np.ndarray) -> np.ndarray:
    """The truth's N* at ``budgets``: the library's minimiser on a fit whose draws are the truth."""
    import scalebayes as sb
    from scalebayes.testing import fit_from_draws

    design = sb.isoflop_design(SIM_BUDGETS, points_per_budget=3)
    runs = sb.simulate(law, params, design, noise=0.0)
    draws = {k: np.full((1, 2), v) for k, v in {**params, "sigma": 0.01}.items()}
    fit = fit_from_draws(law, runs, draws, likelihood=sb.Likelihood(discrepancy="none"))
    return sb.optimal(fit, budgets).N.to_numpy()[0, 0]


def sweeps(
    law: Any, params: dict[str, float], centred: bool, seed: int, scatter: float = 0.0
) -> Any:
    """Simulated isoFLOP sweeps around the true optimum (or shifted off it), 1 % noise.

    ``scatter``: each sweep's own optimum lies off the truth's N*(C) by about Normal(0, scatter)
    in log N (its A scaled by exp((alpha + beta) z scatter), z standard Normal), as sweeps
    trained apart do; the truth scored is still the law's N*(C).
    """
    import scalebayes as sb

    rng = np.random.default_rng(seed)
    centres = np.log(true_n_star(law, params, SIM_BUDGETS))
    if not centred:  # a factor 1.5-1.8 either way, as a sweep planned from a wrong guess
        centres = centres + rng.choice([-1, 1], SIM_BUDGETS.size) * rng.uniform(
            0.4, 0.6, SIM_BUDGETS.size
        )
    rows = []
    for c, centre in zip(SIM_BUDGETS, centres, strict=True):
        n = np.exp(centre + np.linspace(-SIM_SPAN, SIM_SPAN, SIM_RUNS))
        rows.append(pd.DataFrame({"N": n, "D": c / (6 * n), "C": c}))
    if scatter == 0.0:
        return sb.simulate(law, params, pd.concat(rows, ignore_index=True), noise=SIM_NOISE,
                           seed=seed)  # fmt: skip
    shifts = rng.standard_normal(SIM_BUDGETS.size) * scatter
    tables = []
    for b, design in enumerate(rows):
        own = {**params, "A": params["A"] * np.exp((params["alpha"] + params["beta"]) * shifts[b])}
        runs = sb.simulate(law, own, design, noise=SIM_NOISE, seed=seed * 10 + b)
        tables.append(runs.table[["N", "D", "C", "loss"]])
    return sb.load_runs(pd.concat(tables, ignore_index=True))


def local_exponents(law: Any, params: dict[str, float]) -> tuple[float, float]:
    """The truth's d ln N* / d ln C and its change per e-fold at the sweeps' mean log budget."""
    h = 0.5  # e-folds either side; N* is a smooth minimiser, so differences of 1 e-fold do
    ref = np.exp(np.log(SIM_BUDGETS).mean())
    log_n = np.log(true_n_star(law, params, ref * np.exp([-h, 0.0, h])))
    return float((log_n[2] - log_n[0]) / (2 * h)), float(
        (log_n[2] - 2 * log_n[1] + log_n[0]) / h**2
    )


def approach_2_models(args: argparse.Namespace) -> dict[str, Any]:
    """Approach 2's model variants by method name: each valley shape with each drift prior."""
    from scalebayes.allocation.profile import ProfileModel

    models = {}
    for shape in args.shape:
        for drift in args.drift:
            if drift == "none":
                models[f"approach_2_{shape}_straight"] = ProfileModel(shape=shape, drift_prior=None)
            else:
                prior = f"Normal(loc=0.0, scale={float(drift)!r})"
                models[f"approach_2_{shape}_drift{drift}"] = ProfileModel(
                    shape=shape, drift_prior=prior
                )
    return models


def covered(draws: Any, value: float | None) -> bool | None:
    """Whether ``value`` lies inside the 90 % interval of ``draws`` (None without a value)."""
    if value is None or draws is None:
        return None
    i = interval(draws)
    return bool(i["lower"] <= value <= i["upper"])


def truth(args: argparse.Namespace) -> None:
    import scalebayes as sb

    settings = sb.Settings(chains=args.chains, draws=args.draws, warmup=args.warmup)
    ref = BEYOND * SIM_BUDGETS.max()
    models = approach_2_models(args)
    rows, truths = [], {}
    for kind in ("exact", "bent"):
        law, params = truth_law(kind)
        n_true = float(true_n_star(law, params, np.array([ref]))[0])
        a_true, kappa_true = local_exponents(law, params)
        if kind == "exact":  # the closed form; the differences agree to ~1e-6
            a_true, kappa_true = params["beta"] / (params["alpha"] + params["beta"]), 0.0
        truths[kind] = {"a": a_true, "kappa": kappa_true, "N_star_beyond": n_true}
        for centred in (True, False):
            for rep in range(args.replicates):
                seed = 1000 * (kind == "bent") + 100 * centred + rep
                runs = sweeps(law, params, centred, seed, args.scatter)
                fits = {}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # diagnostics are recorded instead
                    for method, model in models.items():
                        started = time.perf_counter()
                        iso = sb.fit_isoflops(runs, model=model, settings=settings, seed=seed)
                        seconds = time.perf_counter() - started
                        kappa = iso.posterior["kappa"] if "kappa" in iso.posterior else None
                        if kappa is None:  # a straight line: every extrapolation is the same
                            fits[method] = (iso.a, None, iso.optimal([ref]).N, iso.diagnostics,
                                            seconds)  # fmt: skip
                            continue
                        # Each extrapolation of the same posterior (sampling does not change).
                        for how in args.extrapolation:
                            carried = dataclasses.replace(
                                iso, model=dataclasses.replace(iso.model, extrapolation=how)
                            )
                            n = carried.optimal([ref]).N
                            fits[f"{method}_{how}"] = (iso.a, kappa, n, iso.diagnostics, seconds)
                    if not args.no_law:
                        started = time.perf_counter()
                        fit = sb.fit(
                            runs,
                            "chinchilla",
                            likelihood=sb.Likelihood(discrepancy="none"),
                            settings=settings,
                            seed=seed,
                        )
                        # The law's local exponent at the sweeps' mean log budget.
                        centre = sb.optimal(fit, [np.exp(np.log(SIM_BUDGETS).mean())])
                        n = sb.optimal(fit, [ref]).N
                        seconds = time.perf_counter() - started
                        fits["approach_3"] = (centre.exponent_N, None, n, fit.diagnostics, seconds)
                for method, (a, kappa, n, diagnostics, seconds) in fits.items():
                    a_i, n_i = interval(a), interval(n)
                    rows.append({
                        "truth": kind,
                        "sweeps": "centred" if centred else "off-centre",
                        "seed": seed,
                        "method": method,
                        "a_median": a_i["median"],
                        "a_covered": covered(a, a_true),
                        "a_width": a_i["upper"] - a_i["lower"],
                        "kappa_median": None if kappa is None else interval(kappa)["median"],
                        "kappa_covered": covered(kappa, kappa_true),
                        "n_covered": bool(n_i["lower"] <= n_true <= n_i["upper"]),
                        "n_log_error": float(np.log(n_i["median"] / n_true)),
                        "n_log_width": float(np.log(n_i["upper"] / n_i["lower"])),
                        "max_rhat": diagnostics.max_rhat,
                        "divergent": diagnostics.n_divergent,
                        "seconds": seconds,
                    })  # fmt: skip
                print(
                    f"{kind} {'centred' if centred else 'off-centre'} rep {rep}: "
                    + "; ".join(
                        f"{r['method']} a {r['a_median']:.3f} N* err {r['n_log_error']:+.3f} "
                        f"cov {r['n_covered']}"
                        for r in rows[-len(fits) :]
                    ),
                    flush=True,
                )
    summary = summarise(pd.DataFrame(rows))
    print(truths)
    print(summary.to_string(index=False))
    write_results(
        RESULTS / (args.out or "allocation_truth.json"),
        {
            "settings": {
                "chains": args.chains,
                "draws": args.draws,
                "warmup": args.warmup,
                "replicates": args.replicates,
                "shapes": args.shape,
                "drift": args.drift,
                "extrapolation": args.extrapolation,
                "models": {name: repr(model) for name, model in models.items()},
            },
            "design": design_record(bent_term=BENT, scatter=args.scatter),
            "truths": truths,
            "summary": summary.to_dict(orient="records"),
            "fits": rows,
            "machine": machine(),
        },
    )


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per truth, design and method: coverage of a, kappa and N*, bias and widths, health."""

    def rate(s: pd.Series) -> float:
        return s.dropna().astype(float).mean() if s.notna().any() else np.nan

    return (
        table.groupby(["truth", "sweeps", "method"])
        .agg(
            fits=("seed", "size"),
            a_coverage=("a_covered", rate),
            a_width=("a_width", "median"),
            kappa_coverage=("kappa_covered", rate),
            n_coverage=("n_covered", "mean"),
            n_bias=("n_log_error", "median"),
            n_width=("n_log_width", "median"),
            max_rhat=("max_rhat", "max"),
            divergent=("divergent", "sum"),
            seconds=("seconds", "median"),
        )
        .reset_index()
    )
