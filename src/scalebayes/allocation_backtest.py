"""Allocation backtest: predict N* at held-out isoFLOP budgets and check it against their sweeps.

For each cut (the top ``k`` isoFLOP budgets held out), the law is fitted to the runs below the
held-out sweeps and every allocation approach predicts N* at the held-out budgets. The truth
it is scored against is *measured*: approach 2's profile model fitted to the held-out sweeps
alone gives each held-out budget's loss-minimising N with its own posterior, its valley shape
p, q taken from approach 2's posterior below the cut (a lone sweep barely informs the shape,
and a symmetric prior shape misplaces an asymmetric valley's minimum). The prediction
is of that sweep's minimum, so it includes the estimator's scatter of a sweep around its N*
(approach 2's ``tau``; :meth:`~scalebayes.allocation.base.Estimator.sweep_scatter`). Both are
uncertain, so a prediction covers the measurement when the 90 % interval of
``log N*_predicted - log N*_measured`` (independent draws of the two posteriors) contains 0;
the error is the difference of their medians in log N.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.allocation import ESTIMATORS, estimator
from scalebayes.allocation.budgets import find_budgets
from scalebayes.allocation.isoflop import fit_isoflops
from scalebayes.allocation.profile import ProfileModel
from scalebayes.allocation.verdict import recommend
from scalebayes.data import Runs, load_runs
from scalebayes.errors import (
    AllocationWarning,
    ExtrapolationWarning,
    IsoflopError,
    ScalebayesError,
    SweepEdgeWarning,
)
from scalebayes.fitting import fit_batch
from scalebayes.likelihood import Likelihood
from scalebayes.results import Settings

if TYPE_CHECKING:
    from scalebayes.allocation.profiles import IsoflopFit
    from scalebayes.laws import Law
    from scalebayes.priors import Prior
    from scalebayes.results import Diagnostics, Fit

MIN_FITTED_BUDGETS = 3  # approach 2 needs three sweeps below the cut
MEASURE_SHAPES = ("fitted", "prior")


@dataclass(frozen=True)
class AllocationBacktest:
    """Predicted against measured N* at held-out isoFLOP budgets, per cut and approach.

    ``table`` has one row per (cut, approach, held-out budget): ``held_out`` (the cut in
    words), ``approach``, ``budget`` (FLOPs), ``n_star`` with ``n_star_lower/upper`` (the
    prediction's median and ``prob`` interval), ``measured`` with ``measured_lower/upper`` (the
    held-out sweep's own), ``log_error`` (median log N* predicted minus measured), ``covers``
    (the interval of the difference contains 0), ``width`` (that interval's, in log N), ``healthy`` (both samplings' diagnostics
    are ok) and ``recommended`` (the approach the side-by-side verdict picks at this cut). Approaches that cannot run on the table are in ``skipped`` with the reason.
    """

    law: str
    prob: float
    table: pd.DataFrame
    skipped: dict[str, str]
    diagnostics: dict[str, Diagnostics]

    def pooled(self) -> pd.DataFrame:
        """Per approach: held-out budgets scored, coverage, median |log error|, mean log error.

        A last row, ``recommended``, scores at each cut the approach the side-by-side verdict
        recommends from the runs below it (:func:`~scalebayes.allocation.verdict.recommend`).
        """
        table = self.table
        if "recommended" in table:
            chosen = table[table["recommended"]].assign(approach="recommended")
            table = pd.concat([table, chosen], ignore_index=True)
        grouped = table.groupby("approach", sort=False)
        return pd.DataFrame(
            {
                "n": grouped.size(),
                "coverage": grouped["covers"].mean(),
                "median_abs_log_error": grouped["log_error"].apply(lambda e: e.abs().median()),
                "mean_log_error": grouped["log_error"].mean(),
            }
        ).sort_index(key=lambda keys: keys == "recommended", kind="stable")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the rows, the pooled scores, skipped approaches, diagnostics."""
        return {
            "law": self.law,
            "prob": self.prob,
            "rows": self.table.to_dict(orient="records"),
            "pooled": self.pooled().reset_index().to_dict(orient="records"),
            "skipped": self.skipped,
            "diagnostics": {k: {**d.to_dict(), "ok": d.ok} for k, d in self.diagnostics.items()},
        }

    def __str__(self) -> str:
        pct = f"{self.prob * 100:g}%"
        lines = [
            f"allocation backtest: N* predicted from the runs below the held-out isoFLOP "
            f"budgets, against each held-out sweep's own minimum (approach 2 on its runs alone); "
            f"median [{pct} interval]",
            f"{'held out':>14s} {'approach':>8s} {'budget':>9s} {'predicted N*':>32s} "
            f"{'measured N*':>32s} {'log err':>8s}  verdict",
        ]
        for r in self.table.itertuples():
            predicted = f"{r.n_star:.3g} [{r.n_star_lower:.3g}, {r.n_star_upper:.3g}]"
            measured = f"{r.measured:.3g} [{r.measured_lower:.3g}, {r.measured_upper:.3g}]"
            verdict = "covers" if r.covers else "MISSES"
            health = "" if r.healthy else " (unhealthy sampling)"
            lines.append(
                f"{r.held_out:>14s} {r.approach:>8s} {r.budget:9.3g} {predicted:>32s} "
                f"{measured:>32s} {r.log_error:+8.3f}  {verdict}{health}"
            )
        for approach, row in self.pooled().iterrows():
            name = (
                "the recommended approach" if approach == "recommended" else f"approach {approach}"
            )
            lines.append(
                f"{name}: {pct} interval of predicted/measured N* contains 1 at "
                f"{row['coverage']:.0%} of {int(row['n'])} held-out budgets; median |log error| "
                f"{row['median_abs_log_error']:.3f}"
            )
        for approach, reason in self.skipped.items():
            lines.append(f"approach {approach}: not run ({reason})")
        return "\n".join(lines)


def allocation_backtest(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str] = "chinchilla",
    *,
    holdout_budgets: Sequence[int] = (1, 2),
    approaches: Sequence[int | str] = ("3", "2", "3m"),
    prob: float = 0.9,
    priors: Mapping[str, str | Prior] | None = None,
    settings: Settings | None = None,
    seed: int = 0,
    measure_shape: str = "fitted",
    profile_model: ProfileModel | None = None,
    options: Mapping[str, dict[str, Any]] | None = None,
    **sampler: Any,
) -> AllocationBacktest:
    """Hold out the top ``k`` isoFLOP budgets (each ``k`` in ``holdout_budgets``) and score N*.

    The law is fitted below each cut in one batch: plain (approach 3 reads the law alone), or
    the default model, law + GP, when approach ``3m`` (which reads the whole model) is among
    ``approaches`` (approach 3 then reads its law module, the plain law's fit); each approach in
    ``approaches`` (keys of
    :data:`scalebayes.allocation.ESTIMATORS`) predicts N* at the held-out budgets; approach 2's
    profile model on the held-out sweeps alone measures their optima, with the valley shape
    learnt below the cut (``measure_shape="fitted"``) or from its prior (``"prior"``). Sweeps
    are found as approach 2 finds them (a ``budget`` column, or equal C). ``profile_model``:
    approach 2's model, for the prediction and the measurement alike (default
    :class:`~scalebayes.allocation.profile.ProfileModel()`). ``options`` maps an approach key to
    its estimator's options (e.g. ``{"3m": {"slope_step": 2.0}}``). A cut where every approach
    refuses (approach 2 alone with too few valleys below it) is skipped, its reasons kept in
    ``skipped``; with no cut left, a :class:`~scalebayes.errors.ScalebayesError` names them.
    """
    if measure_shape not in MEASURE_SHAPES:
        raise ScalebayesError(
            f"measure_shape={measure_shape!r}: expected one of {', '.join(MEASURE_SHAPES)}"
        )
    if not 0 < prob < 1:
        raise ScalebayesError(f"prob={prob!r}: expected a probability in (0, 1)")
    unknown = [a for a in approaches if str(a) not in ESTIMATORS]
    if unknown:
        raise ScalebayesError(f"approaches={unknown}: expected keys of {sorted(ESTIMATORS)}")
    stray = sorted(set(options or {}) - {str(a) for a in approaches})
    if stray:
        raise ScalebayesError(f"options for approaches {stray}, which are not among {approaches}")
    # Each approach's estimator, built now: its options are checked before any sampling.
    chosen_by_key = {}
    for approach in approaches:
        key = str(approach)
        given = dict((options or {}).get(key, {}))
        if key == "2" and profile_model:
            given["model"] = profile_model
        chosen_by_key[key] = estimator(key, **given)
    # The default model (law + GP) when an approach reads it; else the plain law, which is
    # exactly the default model's law module and samples in one stage.
    whole = any(chosen.reads_whole_model for chosen in chosen_by_key.values())
    likelihood = Likelihood() if whole else Likelihood(discrepancy="none")
    settings = Settings.make(settings, **sampler)
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    budgets = find_budgets(runs)
    cuts = []
    for k in holdout_budgets:
        if not 1 <= k <= budgets.n_budgets - MIN_FITTED_BUDGETS:
            raise ScalebayesError(
                f"holdout_budgets={k}: {runs.source} has {budgets.n_budgets} isoFLOP budgets; "
                f"holding out k leaves {MIN_FITTED_BUDGETS} or more to fit only for k from 1 "
                f"to {budgets.n_budgets - MIN_FITTED_BUDGETS}"
            )
        held_sweeps = np.arange(budgets.n_budgets - k, budgets.n_budgets)
        held = np.isin(budgets.index, held_sweeps)
        below = runs.C < runs.C[held].min()  # no fitted run at or above a held-out sweep
        cuts.append((f"top {k} budget{'s' * (k > 1)}", below, held, budgets.compute[held_sweeps]))
    fits = fit_batch(
        [runs] * len(cuts),
        law,
        masks=[below for _, below, _, _ in cuts],
        priors=priors,
        likelihood=likelihood,
        settings=settings,
    )
    rows, skipped, diagnostics = [], {}, {}
    rng = np.random.default_rng(seed)
    for (label, _, held, held_budgets), fit in zip(cuts, fits, strict=True):
        results = {}
        for approach in approaches:
            key = str(approach)
            try:
                with warnings.catch_warnings():
                    # Beyond the fitted runs on purpose; draws at a bound are kept and counted.
                    warnings.simplefilter("ignore", ExtrapolationWarning)
                    warnings.simplefilter("ignore", AllocationWarning)
                    warnings.simplefilter("ignore", SweepEdgeWarning)
                    chosen = chosen_by_key[key]
                    results[key] = (chosen, chosen.allocate(fit, held_budgets))
            except ScalebayesError as err:
                skipped[key] = str(err)
        if not results:  # every approach refused this cut (its reasons are in ``skipped``)
            continue
        measured, shape_used = _measure(
            runs.subset(held), fit, results, measure_shape, settings, profile_model
        )
        diagnostics[f"{label}: measured"] = measured.diagnostics
        log_measured = np.log(measured.minima()["N"].to_numpy()).reshape(-1, len(held_budgets))
        health = {key: chosen.diagnostics(fit, result) for key, (chosen, result) in results.items()}
        refused = {key: why for key, why in skipped.items() if key not in results}
        picked = recommend({k: r for k, (_, r) in results.items()}, health, (), refused)[0]
        for key, (chosen, result) in results.items():
            run_health = health[key]
            diagnostics[f"{label}: approach {key}"] = run_health
            log_pred = np.log(result.N.to_numpy()).reshape(-1, len(held_budgets))
            scatter = chosen.sweep_scatter(result)
            if scatter is not None:  # a sweep's own minimum strays from the line by ~tau
                sd = np.asarray(scatter).reshape(-1, 1)
                log_pred = log_pred + sd * rng.standard_normal(log_pred.shape)
            for j, budget in enumerate(held_budgets):
                rows.append(
                    _score(label, key, budget, log_pred[:, j], log_measured[:, j], prob, rng)
                    | {
                        "healthy": bool(run_health.ok and measured.diagnostics.ok),
                        "recommended": key == picked,
                        "measure_shape": shape_used,
                    }
                )
    if not rows:
        raise ScalebayesError(
            f"{runs.source}: no approach ran at any cut: "
            + "; ".join(f"approach {key}: {why}" for key, why in skipped.items())
        )
    table = pd.DataFrame(rows)
    name = fits[0].law.name
    return AllocationBacktest(name, prob, table, skipped, diagnostics)


def _measure(
    held: Runs,
    fit: Fit,
    results: dict[str, Any],
    measure_shape: str,
    settings: Settings,
    profile_model: ProfileModel | None,
) -> tuple[IsoflopFit, str]:
    """The held-out sweeps' own minima (approach 2 on their runs alone), and the shape used.

    ``"fitted"``: the valley shape p, q comes from approach 2's posterior on the fitted
    sweeps (approach 2 assumes one shape for all sweeps); ``"prior"``: from the broad default
    prior, which a lone sweep barely updates, so an asymmetric valley's minimum is misplaced;
    also "fitted"'s fallback when the sweeps below the cut show too few valleys for approach 2.
    """
    model = profile_model or ProfileModel()
    if measure_shape == "fitted":
        below = results["2"][1].fit if "2" in results else None
        if below is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SweepEdgeWarning)
                    below = fit_isoflops(fit.runs, model=model, settings=fit.settings.sampler)
            except IsoflopError:  # too few valleys below the cut to learn a shape from
                measure_shape = "prior"
        if below is not None:
            model = dataclasses.replace(model, shape_prior=below.shape_as_prior())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepEdgeWarning)  # the held-out sweeps' own
        # Every held-out sweep is measured, one-sided or not: it is what is predicted.
        measured = fit_isoflops(
            held, model=model, settings=settings, min_budgets=1, edge_sweeps="keep"
        )
    return measured, measure_shape


def _score(
    label: str,
    approach: str,
    budget: float,
    log_pred: np.ndarray,
    log_meas: np.ndarray,
    prob: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """One held-out budget: both posteriors' medians and intervals, and their difference's.

    ``interval_score``: the difference's interval scored at 0 (its width, plus 2 / (1 - prob)
    times how far 0 lies outside it), in log N*: lower is better, and it charges width and
    misses alike.
    """
    tail = (1 - prob) / 2
    # Independent posteriors: pair each predicted draw with a measured draw chosen at random.
    difference = log_pred - rng.choice(log_meas, size=log_pred.size, replace=True)
    low, high = np.quantile(difference, [tail, 1 - tail])
    pred_q = np.exp(np.quantile(log_pred, [0.5, tail, 1 - tail]))
    meas_q = np.exp(np.quantile(log_meas, [0.5, tail, 1 - tail]))
    return {
        "held_out": label,
        "approach": approach,
        "budget": float(budget),
        "n_star": pred_q[0],
        "n_star_lower": pred_q[1],
        "n_star_upper": pred_q[2],
        "measured": meas_q[0],
        "measured_lower": meas_q[1],
        "measured_upper": meas_q[2],
        "log_error": float(np.median(log_pred) - np.median(log_meas)),
        "covers": bool(low <= 0.0 <= high),
        "width": float(high - low),
        "interval_score": float(
            high - low + 2.0 / (1.0 - prob) * (max(low, 0.0) + max(-high, 0.0))
        ),
    }
