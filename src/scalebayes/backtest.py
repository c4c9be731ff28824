"""Backtest: fit the smaller runs, predict the larger ones, and score the predictions.

The question before a big run is how well a fit of the runs one has predicts a run *beyond*
them. A backtest answers it on the user's own table: for each compute cut-off, the law is
fitted to the runs at or below the cut and the runs above it are predicted (as new runs, noise
included), then scored: errors of the median prediction, signed bias, 50 % and 90 % predictive
coverage, interval width and log predictive density. It also compares the compute-optimal
allocation at a planning budget from each small-run fit with the one from all the runs.

All cut-offs and the all-runs fit are one :func:`scalebayes.fit_batch` call on one table with
different masks: one compile, one sampler run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.allocate import optimal
from scalebayes.data import Runs, load_runs
from scalebayes.errors import AllocationWarning, ScalebayesError
from scalebayes.fitting import fit_batch
from scalebayes.model import pointwise_log_lik
from scalebayes.prediction import predict
from scalebayes.results import Settings
from scalebayes.runtime import in_fit_precision

if TYPE_CHECKING:
    from scalebayes.engine import ProgressCallback
    from scalebayes.laws import Law
    from scalebayes.likelihood import Likelihood
    from scalebayes.priors import Prior
    from scalebayes.results import Fit


@dataclass(frozen=True)
class Backtest:
    """Scores of small-run fits on the larger runs they did not see.

    ``table`` has one row per cut-off: ``cut`` (FLOPs), ``held_out`` (what was held out, in
    words), ``n_fit``, ``n_held``; errors of the median prediction in log loss (``median_abs_error``,
    ``mean_abs_error``, and ``bias``, the mean of observed minus predicted: negative means the
    fit predicted too high a loss); ``coverage_90``, ``coverage_50`` (share
    of held-out losses inside the predictive intervals), ``width_90`` (median width of the 90 %
    interval, log loss); ``lpd`` (mean log predictive density per held-out run, loss scale);
    and, at the planning ``budget``, the small-run fit's tokens per parameter (median and 90 %
    interval) with ``covers_all_data`` saying whether that interval contains the all-runs
    fit's median. ``fits`` are the small-run fits, then the all-runs fit.
    """

    law: str
    budget: float | None
    table: pd.DataFrame
    fits: tuple[Fit, ...]

    @property
    def full(self) -> Fit:
        """The fit of all the runs."""
        return self.fits[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: law, budget, one record per cut-off, each fit's diagnostics."""
        return {
            "law": self.law,
            "budget": self.budget,
            "cuts": self.table.to_dict(orient="records"),
            "diagnostics": [{**f.diagnostics.to_dict(), "ok": f.diagnostics.ok} for f in self.fits],
        }

    def __str__(self) -> str:
        lines = [
            f"backtest of law {self.law}: fit the runs at or below each cut, predict the rest "
            "(new-run predictive intervals; errors in log loss)",
            f"{'held out':>22s} {'fit':>4s} {'held':>4s} {'med|err|':>8s} {'bias':>8s} "
            f"{'cover90':>7s} {'cover50':>7s} {'width90':>7s} {'lpd/run':>7s}",
        ]
        for row in self.table.itertuples():
            lines.append(
                f"{row.held_out:>22s} {row.n_fit:4d} {row.n_held:4d} {row.median_abs_error:8.4f} "
                f"{row.bias:+8.4f} {row.coverage_90:7.0%} {row.coverage_50:7.0%} "
                f"{row.width_90:7.4f} {row.lpd:7.2f}"
            )
        if self.budget is not None:
            full = self.table["all_data_tokens_per_param"].iloc[0]
            lines.append(
                f"tokens per parameter at {self.budget:.3g} FLOPs: all runs {full:.3g}; "
                "from the small runs:"
            )
            for row in self.table.itertuples():
                verdict = "covers" if row.covers_all_data else "MISSES"
                lines.append(
                    f"{row.held_out:>22s} {row.tokens_per_param:.3g} "
                    f"[{row.tokens_per_param_lower:.3g}, {row.tokens_per_param_upper:.3g}] "
                    f"({verdict} the all-runs median)"
                )
        for label, fit in zip([*self.table["held_out"], "all runs"], self.fits, strict=True):
            lines.append(f"  fit for {label} ({len(fit.runs)} runs): {fit.diagnostics}")
        return "\n".join(lines)


def backtest(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str] = "chinchilla",
    *,
    holdout_top: Sequence[float] | None = None,
    holdout_budgets: Sequence[int] | None = None,
    cuts: Sequence[float] | None = None,
    budget: float | None = None,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    **sampler: Any,
) -> Backtest:
    """Fit below each compute cut-off, predict above it, and score the predictions.

    Give one of ``holdout_top`` (decades of compute held out at the top, e.g. ``(1, 2)``),
    ``holdout_budgets`` (how many of the largest distinct budgets to hold out, for isoFLOP
    sweeps) or ``cuts`` (FLOPs); default ``holdout_top=(1, 2)``.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        The table of runs.
    law : Law, name or path
        The law to backtest.
    budget : float, optional
        Planning budget (FLOPs) at which to compare the compute-optimal tokens per parameter
        of each small-run fit with the all-runs fit's; only for laws of N and D. Default: ten
        times the largest budget in the table.
    priors, likelihood, settings, progress, **sampler
        As in :func:`scalebayes.fit`; every cut's fit and the all-runs fit sample together.
    """
    settings = Settings.make(settings, **sampler)
    seed = settings.seed
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    cut_values, labels = _cuts(runs, holdout_top, holdout_budgets, cuts)
    masks = [runs.C <= cut for cut in cut_values]
    for cut, mask, label in zip(cut_values, masks, labels, strict=True):
        if mask.all() or mask.sum() < 3:
            raise ScalebayesError(
                f"cut {label} ({cut:.3g} FLOPs) leaves {int(mask.sum())} runs to fit and "
                f"{int((~mask).sum())} to predict: expected at least 3 and at least 1"
            )
    fits = fit_batch(
        [runs] * (len(masks) + 1),
        law,
        masks=[*masks, np.ones(len(runs), bool)],
        priors=priors,
        likelihood=likelihood,
        settings=settings,
        progress=progress,
    )
    has_allocation = {"N", "D"} <= set(fits[0].law.inputs)
    if budget is None and has_allocation:
        budget = 10.0 * float(runs.C.max())
    budget = budget if has_allocation else None
    rows = []
    full_tpp = _tokens_per_param(fits[-1], budget) if budget is not None else None
    for fit, mask, cut, label in zip(fits, masks, cut_values, labels, strict=False):
        row = {
            "cut": cut,
            "held_out": label,
            "n_fit": int(mask.sum()),
            "n_held": int((~mask).sum()),
        }
        row.update(_scores(fit, runs.subset(~mask), seed=seed))
        if budget is not None:
            tpp = _tokens_per_param(fit, budget)
            lower, upper = np.quantile(tpp, [0.05, 0.95])
            all_data = float(np.median(full_tpp))
            row.update(
                tokens_per_param=float(np.median(tpp)),
                tokens_per_param_lower=float(lower),
                tokens_per_param_upper=float(upper),
                all_data_tokens_per_param=all_data,
                covers_all_data=bool(lower <= all_data <= upper),
            )
        rows.append(row)
    return Backtest(fits[0].law.name, budget, pd.DataFrame(rows), tuple(fits))


def _cuts(
    runs: Runs,
    holdout_top: Sequence[float] | None,
    holdout_budgets: Sequence[int] | None,
    cuts: Sequence[float] | None,
) -> tuple[list[float], list[str]]:
    given = [x is not None for x in (holdout_top, holdout_budgets, cuts)]
    if sum(given) > 1:
        raise ScalebayesError("give one of holdout_top, holdout_budgets and cuts, not several")
    c_max = float(runs.C.max())
    if holdout_budgets is not None:
        budgets = np.unique(runs.C)
        out = []
        for k in holdout_budgets:
            if not 1 <= k < len(budgets):
                raise ScalebayesError(
                    f"holdout_budgets={k}: the table has {len(budgets)} distinct budgets; "
                    f"expected 1 to {len(budgets) - 1}"
                )
            out.append(float(budgets[-k - 1]))
        return out, [f"top {k} budget{'s' * (k > 1)}" for k in holdout_budgets]
    if cuts is not None:
        values = [float(c) for c in cuts]
        if not all(np.isfinite(c) and c > 0 for c in values):
            raise ScalebayesError(f"cuts={list(cuts)}: expected positive FLOPs")
        return values, [f"C > {c:.3g}" for c in values]
    decades = (1.0, 2.0) if holdout_top is None else [float(d) for d in holdout_top]
    if not all(d > 0 for d in decades):
        raise ScalebayesError(f"holdout_top={list(decades)}: expected positive decades")
    return [c_max / 10**d for d in decades], [f"top {d:g} decade{'s' * (d != 1)}" for d in decades]


@in_fit_precision
def _scores(fit: Fit, held: Runs, *, seed: int) -> dict[str, float]:
    # Only the law's own inputs: a table's C may be a nominal budget a few % off 6 N D.
    inputs = {name: held.table[name].to_numpy() for name in fit.law.inputs}
    new_run = predict(fit, **inputs, kind="new_run", seed=seed)
    log_pred = np.log(new_run.loss.to_numpy()).reshape(-1, len(held))  # (draws, run)
    observed = np.log(held.loss)
    median = np.median(log_pred, axis=0)
    lo90, hi90 = np.quantile(log_pred, [0.05, 0.95], axis=0)
    lo50, hi50 = np.quantile(log_pred, [0.25, 0.75], axis=0)
    posterior = fit.posterior
    params = {n: posterior[n].to_numpy().reshape(-1, 1) for n in fit.param_names}
    log_lik = np.asarray(
        pointwise_log_lik(
            fit.law,
            fit.likelihood,
            params,
            {n: v for n, v in held.log_inputs().items() if n in fit.law.inputs},
            observed,
            fit.log_ref,
        )
    )
    lpd = np.logaddexp.reduce(log_lik, axis=0) - np.log(log_lik.shape[0])
    error = observed - median
    return {
        "median_abs_error": float(np.median(np.abs(error))),
        "mean_abs_error": float(np.mean(np.abs(error))),
        "bias": float(np.mean(error)),
        "coverage_90": float(np.mean((observed >= lo90) & (observed <= hi90))),
        "coverage_50": float(np.mean((observed >= lo50) & (observed <= hi50))),
        "width_90": float(np.median(hi90 - lo90)),
        "lpd": float(np.mean(lpd)),
    }


def _tokens_per_param(fit: Fit, budget: float) -> np.ndarray:
    with warnings.catch_warnings():
        # Draws at a search bound are kept and counted by optimal(); the quantiles include them.
        warnings.simplefilter("ignore", AllocationWarning)
        return optimal(fit, [budget]).tokens_per_param.to_numpy().reshape(-1)
