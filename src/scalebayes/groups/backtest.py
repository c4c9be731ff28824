"""A new ladder's backtest: one group's cheapest budgets, with and without the other groups."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from scalebayes.data import Runs
from scalebayes.errors import ScalebayesError
from scalebayes.groups.pooling import Pooling
from scalebayes.likelihood import Likelihood


def new_ladder_backtest(
    runs: Runs, group: str, keep: int, law: Any = "chinchilla", *, pooling: Pooling | None = None,
    grouped_likelihood: Likelihood | None = None, **sampler: Any,
) -> pd.DataFrame:  # fmt: skip
    """Fit ``group`` with only its ``keep`` cheapest budgets, then score its other runs.

    Three fits, the same sampler settings: ``grouped``, every group (the others complete) with
    ``pooling`` and ``grouped_likelihood`` (default: the grouped default, a quadratic the groups
    pool); ``alone``,
    the group's kept runs by themselves with the single fit's default (the GP); and ``alone,
    plain``, the same with no discrepancy. Budgets are the ``budget`` column's, else the
    distinct values of C. One row per fit: the held-out runs' mean 90 % interval score of log
    loss (new-run intervals; lower is better), 90 % coverage, median absolute error of log
    loss, the fit's health and seconds.
    """
    import scalebayes as sb

    if runs.group is None or group not in set(runs.group):
        raise ScalebayesError(f"group {group!r} not in the runs' groups")
    mine = runs.group == group
    budget = budget_of(runs)
    budgets = np.unique(budget[mine])
    if not 1 <= keep < len(budgets):
        raise ScalebayesError(
            f"keep={keep}: group {group!r} has {len(budgets)} budgets; expected 1 to "
            f"{len(budgets) - 1}"
        )
    kept = ~mine | (budget <= budgets[keep - 1])
    train, held = runs.subset(kept), runs.subset(~kept)
    rows = []
    alone = train.subset(train.group == group)
    for label in ("grouped", "alone", "alone, plain"):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if label == "grouped":
                fit = sb.fit_groups(
                    train, law, pooling=pooling, likelihood=grouped_likelihood, **sampler
                )
            elif label == "alone":
                fit = sb.fit(alone, law, **sampler)
            else:
                plain = sb.Likelihood(discrepancy="none")
                fit = sb.fit(alone, law, likelihood=plain, **sampler)
        seconds = time.perf_counter() - started
        d = fit.diagnostics
        scores = held_out_scores(fit, held, group if label == "grouped" else None)
        rows.append({"group": group, "fit": label, "kept budgets": keep, **scores,
                     "seconds": seconds, "max R-hat": d.max_rhat, "divergent": d.n_divergent,
                     "at max tree depth": d.n_max_treedepth, "healthy": d.ok})  # fmt: skip
    return pd.DataFrame(rows)


def budget_of(runs: Runs) -> np.ndarray:
    """Each run's isoFLOP budget: the ``budget`` column, else C to 4 significant digits.

    (6 N D of one sweep's runs rounds differently per run.)
    """
    if runs.budget is not None:
        return np.asarray(runs.budget)
    return np.array([float(f"{c:.4g}") for c in runs.C])


def held_out_scores(fit: Any, runs: Runs, group: str | None) -> dict[str, float]:
    """New-run 90 % interval score, coverage and errors of log loss on ``runs``.

    Also the mean error (median prediction minus truth) and interval half-width at the largest
    budget: a law that misses the data's curvature errs most there.
    """
    import scalebayes as sb
    from scalebayes.scoring import interval_score

    inputs = {name: runs.table[name].to_numpy(float) for name in fit.law.inputs}
    prediction = sb.predict(fit, **inputs, kind="new_run", group=group)
    draws = np.log(prediction.loss.to_numpy()).reshape(-1, len(runs))
    lower, upper = np.quantile(draws, [0.05, 0.95], axis=0)
    y = np.log(runs.loss)
    inside = (lower <= y) & (y <= upper)
    error = np.median(draws, axis=0) - y
    top = runs.C >= np.max(runs.C) / 1.5  # the largest budget's runs
    return {
        "interval score 90": float(np.mean(interval_score(lower, upper, y))),
        "coverage 90": float(np.mean(inside)),
        "median |error|": float(np.median(np.abs(error))),
        "mean error, largest budget": float(np.mean(error[top])),
        "mean half-width, largest budget": float(np.mean(upper[top] - lower[top]) / 2),
        "hits": int(np.sum(inside)),
        "held out": len(runs),
    }
