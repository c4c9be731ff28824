"""Backtest: fit the smaller runs, predict the larger ones, and score the predictions.

The question before a big run is how well a fit of the runs one has predicts a run *beyond*
them. A backtest answers it on the user's own table: for each compute cut-off, the law is
fitted to the runs at or below the cut and the runs above it are predicted (as new runs, noise
included), then scored: by proper scores first (the 90 % interval score, CRPS, log predictive
density), then 50 % and 90 % predictive coverage, interval width, signed bias and errors of the
median prediction. It also compares the compute-optimal allocation at a planning budget from
each small-run fit with the one from all the runs: the law's, and beside it the whole model's
(approach 3m) where ``optimal`` would recommend it (a default fit on isoFLOP sweeps).

A view of :mod:`scalebayes.holdout`, as leave-future-out is: the backtest's cut rules (decades
or budgets held out at the top, or FLOPs), the shared scores, and the allocation check. All
cut-offs and the all-runs fit are one :func:`scalebayes.fit_batch` call: one compiled sampler.
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
from scalebayes.allocation.whole_model import MIN_SWEEPS as MIN_SWEEPS_3M
from scalebayes.allocation.whole_model import VALIDATED as VALIDATED_3M
from scalebayes.allocation.whole_model import edge_budget, whole_model_optimal
from scalebayes.data import Runs, load_runs
from scalebayes.errors import (
    AllocationWarning,
    DataWarning,
    ExtrapolationWarning,
    ScalebayesError,
    UnidentifiableError,
)
from scalebayes.formatting import score_header, score_line
from scalebayes.holdout import (
    SCORES,
    Cut,
    budget_cuts,
    decade_cuts,
    fit_holdout,
    flop_cuts,
    pool_cuts,
    ratio_cuts,
    unfittable,
)
from scalebayes.results import Settings

if TYPE_CHECKING:
    from scalebayes.engine import ProgressCallback
    from scalebayes.laws import Law
    from scalebayes.likelihood import Likelihood
    from scalebayes.priors import Prior
    from scalebayes.results import Fit


MISSES_SHOWN = 5  # per cut, the worst held-out misses the text lists
ALLOCATION_APPROACHES = ("auto", "3", "3m")
_APPROACH_WORDS = {"3": "the law's own (approach 3)", "3m": "the whole model's (approach 3m)"}


@dataclass(frozen=True)
class Backtest:
    """Scores of small-run fits on the larger runs they did not see.

    ``table`` has one row per cut-off: ``cut`` (FLOPs), ``held_out`` (what was held out, in
    words), ``n_fit``, ``n_held``; the pooled scores of the held-out runs
    (:func:`scalebayes.holdout.pool`, as leave-future-out's), proper scores first:
    ``interval_score_90`` (mean interval score of the 90 % predictive interval, log loss) and
    ``crps`` (mean CRPS, log loss), lower is better; ``lpd`` (mean log predictive density per
    run, loss scale), higher is better; then ``coverage_90``, ``coverage_50`` (share of
    held-out losses inside the predictive intervals), ``width_90`` (median width of the 90 %
    interval, log loss), ``bias`` (mean of observed minus predicted log loss: negative means
    the fit predicted too high a loss), ``median_abs_error``, ``mean_abs_error``; and, at the
    planning ``budget``, the small-run fit's tokens per parameter (median and 90 % interval)
    with ``covers_all_data`` saying whether that interval contains the all-runs fit's median:
    the law's (approach 3), and where ``allocation_approaches`` holds "3m" the whole model's
    in the same columns ending in ``_3m``.
    :attr:`pooled` pools the scores over all cuts. ``fits`` are the small-run fits, then the
    all-runs fit (unless ``fit_all=False``). ``scores`` holds, per cut, the scores of each
    held-out run (:func:`scalebayes.holdout.score`, with its PIT), indexed by its row in
    ``runs``, the table (its ``rows`` name the runs as messages do: "line 81").
    """

    law: str
    budget: float | None
    table: pd.DataFrame
    fits: tuple[Fit, ...]
    scores: tuple[pd.DataFrame, ...] = ()
    has_full: bool = True
    runs: Runs | None = None
    allocation_approaches: tuple[str, ...] = ()

    @property
    def full(self) -> Fit:
        """The fit of all the runs."""
        if not self.has_full:
            raise ScalebayesError("this backtest did not fit all the runs (fit_all=False)")
        return self.fits[-1]

    @property
    def pooled(self) -> dict[str, float]:
        """The scores over all cuts (:func:`scalebayes.holdout.pool_cuts`): each (cut, run) once."""
        return pool_cuts(self.scores)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: law, budget, cut-offs, all cuts pooled, diagnostics.

        Each cut-off's record lists its held-out runs' scores under ``runs``: which runs missed.
        """
        cuts = self.table.to_dict(orient="records")
        for cut, scores in zip(cuts, self.scores or [None] * len(cuts), strict=True):
            if scores is not None:
                cut["runs"] = [
                    {"run": int(index), "name": self._name(int(index)), **record}
                    for index, record in zip(
                        scores.index, scores.to_dict(orient="records"), strict=True
                    )
                ]
        return {
            "law": self.law,
            "budget": self.budget,
            "allocation_approaches": list(self.allocation_approaches),
            "cuts": cuts,
            "all_cuts": {"n_held": int(self.table["n_held"].sum()), **self.pooled},
            "diagnostics": [{**f.diagnostics.to_dict(), "ok": f.diagnostics.ok} for f in self.fits],
        }

    def __str__(self) -> str:
        lines = [
            f"backtest of law {self.law}: fit the runs at or below each cut, predict the rest "
            "(new-run predictive distributions, in log loss)",
            "proper scores: 90% interval score and CRPS (lower is better), lpd (higher is better)",
            score_header("held out", 22),
        ]
        for row in self.table.itertuples():
            lines.append(score_line(row.held_out, 22, row.n_fit, row.n_held, row._asdict()))
        if len(self.table) > 1:
            n_held = int(self.table["n_held"].sum())
            lines.append(score_line("all cuts", 22, None, n_held, self.pooled))
        for approach in self.allocation_approaches:
            lines += self._allocation_text(approach)
        lines += self._misses_text()
        labels = [*self.table["held_out"], *(["all runs"] if self.has_full else [])]
        for label, fit in zip(labels, self.fits, strict=True):
            lines.append(f"  fit for {label} ({len(fit.runs)} runs): {fit.diagnostics}")
        return "\n".join(lines)

    def _allocation_text(self, approach: str) -> list[str]:
        """Per cut, one approach's tokens per parameter at the budget against the all-runs fit's."""
        suffix = _suffix(approach)
        column = self.table[f"all_data_tokens_per_param{suffix}"]
        lines = [
            f"tokens per parameter at {self.budget:.3g} FLOPs, {_APPROACH_WORDS[approach]}: "
            f"all runs {column.iloc[0]:.3g}; from the small runs:"
        ]
        for row in self.table.to_dict(orient="records"):
            verdict = "covers" if row[f"covers_all_data{suffix}"] else "MISSES"
            lines.append(
                f"{row['held_out']:>22s} {row[f'tokens_per_param{suffix}']:.3g} "
                f"[{row[f'tokens_per_param_lower{suffix}']:.3g}, "
                f"{row[f'tokens_per_param_upper{suffix}']:.3g}] ({verdict} the all-runs median)"
            )
        return lines

    def _name(self, index: int) -> str:
        """A run of the table as messages name it: "line 81" (of the file), else "run 80"."""
        if self.runs is None or not self.runs.rows:
            return f"run {index}"
        return f"{self.runs.row_label} {self.runs.rows[index]}"

    def _misses_text(self, most: int = MISSES_SHOWN) -> list[str]:
        """Per cut, the held-out runs outside their 90 % interval, worst interval score first."""
        lines = []
        for label, scores in zip(self.table["held_out"], self.scores, strict=True):
            missed = scores[~scores["inside_90"]].sort_values("interval_score_90", ascending=False)
            if missed.empty:
                continue
            lines.append(
                f"{label}: {len(missed)} of {len(scores)} held-out runs outside their 90% interval:"
            )
            for run in missed.head(most).itertuples():
                side = "above" if run.log_loss > run.upper_90 else "below"
                lines.append(
                    f"  {self._name(run.Index)}: N {run.N:.3g}, D {run.D:.3g} "
                    f"(D/N {run.D / run.N:.3g}): "
                    f"loss {np.exp(run.log_loss):.4g} {side} "
                    f"[{np.exp(run.lower_90):.4g}, {np.exp(run.upper_90):.4g}]"
                )
            if len(missed) > most:
                lines.append(f"  ... {len(missed) - most} more (--json lists every run)")
        return lines


def backtest(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str] = "chinchilla",
    *,
    holdout_top: Sequence[float] | None = None,
    holdout_budgets: Sequence[int] | None = None,
    cuts: Sequence[float] | None = None,
    holdout_tokens_per_param: Sequence[float] | None = None,
    budget: float | None = None,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    fit_all: bool = True,
    allocation_approach: str = "auto",
    **sampler: Any,
) -> Backtest:
    """Fit below each compute cut-off, predict above it, and score the predictions.

    Give one of ``holdout_top`` (decades of compute held out at the top, e.g. ``(1, 2)``),
    ``holdout_budgets`` (how many of the largest distinct budgets to hold out, for isoFLOP
    sweeps), ``cuts`` (FLOPs) or ``holdout_tokens_per_param`` (fit the runs at or below each
    D/N, predict the over-trained rest, e.g. ``(80,)``); default ``holdout_top=(1, 2)``.

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
    fit_all : bool
        Also fit all the runs (for the allocation check and :attr:`Backtest.full`). False
        skips that fit and the check; the batch is then :func:`scalebayes.lfo`'s for the
        same cuts, so both give the same fits and scores.
    allocation_approach : {"auto", "3", "3m"}
        How the allocation check finds tokens per parameter: "3" minimises each fit's law,
        "3m" reads its whole model, law + GP (``optimal(..., approach="3m")``). "auto"
        (default) checks both where the all-runs fit has the GP discrepancy and its runs form
        3 or more isoFLOP sweeps with a valley (where ``optimal`` recommends 3m), else 3.
    """
    if allocation_approach not in ALLOCATION_APPROACHES:
        raise ScalebayesError(
            f"allocation_approach={allocation_approach!r}: expected one of "
            f"{', '.join(map(repr, ALLOCATION_APPROACHES))}"
        )
    settings = Settings.make(settings, **sampler)
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    if budget is not None and not fit_all:
        raise ScalebayesError("budget= compares with the fit of all the runs: keep fit_all=True")
    chosen = backtest_cuts(runs, holdout_top, holdout_budgets, cuts, holdout_tokens_per_param)
    if all(x is None for x in (holdout_top, holdout_budgets, cuts, holdout_tokens_per_param)):
        chosen = _fittable(runs, chosen, law, likelihood, priors)
    held = fit_holdout(
        runs,
        law,
        chosen,
        priors=priors,
        likelihood=likelihood,
        settings=settings,
        progress=progress,
        fit_all=fit_all,
    )
    table = held.table().rename(columns={"label": "held_out"})
    table = table[["cut", "held_out", "n_fit", "n_held", *SCORES]]
    has_allocation = fit_all and {"N", "D"} <= set(held.fits[0].law.inputs)
    if budget is None and has_allocation:
        budget = 10.0 * float(runs.C.max())
    budget = budget if has_allocation else None
    approaches: tuple[str, ...] = ()
    if budget is not None and held.full is not None:
        approaches = _allocation_approaches(held.full, allocation_approach)
        columns = [_allocation_columns(held, budget, a) for a in approaches]
        table = pd.concat([table, *columns], axis=1)
    fits = (*held.fits, held.full) if held.full is not None else held.fits
    return Backtest(
        held.fits[0].law.name, budget, table, fits, held.scores, fit_all, held.runs, approaches
    )


def backtest_cuts(
    runs: Runs,
    holdout_top: Sequence[float] | None = None,
    holdout_budgets: Sequence[int] | None = None,
    cuts: Sequence[float] | None = None,
    holdout_tokens_per_param: Sequence[float] | None = None,
) -> list[Cut]:
    """The backtest's cuts: decades or budgets held out at the top, FLOPs, or D/N (one of them).

    Default: the top one and two decades of compute (``holdout_top=(1, 2)``).
    """
    given = [x is not None for x in (holdout_top, holdout_budgets, cuts, holdout_tokens_per_param)]
    if sum(given) > 1:
        raise ScalebayesError(
            "give one of holdout_top, holdout_budgets, cuts and holdout_tokens_per_param, "
            "not several"
        )
    if holdout_tokens_per_param is not None:
        return ratio_cuts(runs, holdout_tokens_per_param)
    if holdout_budgets is not None:
        return budget_cuts(runs, holdout_budgets)
    if cuts is not None:
        return flop_cuts(runs, cuts)
    return decade_cuts(runs, (1.0, 2.0) if holdout_top is None else holdout_top)


def _fittable(
    runs: Runs,
    cuts: list[Cut],
    law: Law | str | os.PathLike[str],
    likelihood: Likelihood | None,
    priors: Mapping[str, str | Prior] | None,
) -> list[Cut]:
    """The default cuts whose runs can fit the law; the others left out with a warning.

    A narrow table (Marin's sweeps span 2.1 decades of compute) has a handful of runs below
    its top two decades: the default then backtests the top decade alone, and says so. Cuts
    the user chose are refused instead (by :func:`~scalebayes.holdout.fit_holdout`).
    """
    reasons = unfittable(runs, cuts, law, likelihood, priors)
    kept = [cut for cut, why in zip(cuts, reasons, strict=True) if why is None]
    refused = [why for why in reasons if why is not None]
    if not kept:
        raise UnidentifiableError(refused[0])
    for message in refused:
        warnings.warn(
            f"{message}: that default cut is left out (choose cuts with holdout_top, "
            "holdout_budgets or cuts; CLI: --holdout-top, --holdout-budgets, --cut)",
            DataWarning,
            stacklevel=3,
        )
    return kept


def _allocation_approaches(full: Fit, requested: str) -> tuple[str, ...]:
    """The allocation check's approaches: the law's ("3"), and 3m where the fit is as validated.

    On public tables' held-out sweeps 3m's intervals held 24 of 27 measured optima, the law's
    6 (``benchmarks/allocation_backtest.py``), so where ``optimal`` would recommend 3m its
    check is shown beside the law's; on runs without sweeps 3m's edge trend is barely
    determined, so only the law's (as in :func:`scalebayes.allocation.verdict.recommend`).
    """
    of_n_and_d = set(full.law.inputs) <= {"N", "D", "C"}
    whole = full.likelihood.discrepancy.name in VALIDATED_3M and of_n_and_d
    if requested == "3m" and not whole:
        raise ScalebayesError(
            "allocation_approach='3m' reads the whole model of a fit of N and D with the GP "
            f"discrepancy; this one is law {full.law.name!r} with "
            f"{full.likelihood.discrepancy.name!r}: use '3' or 'auto'"
        )
    if requested != "auto":
        return (requested,)
    return ("3", "3m") if whole and edge_budget(full.runs)[2] >= MIN_SWEEPS_3M else ("3",)


def _allocation_columns(held: Any, budget: float, approach: str) -> pd.DataFrame:
    """Per cut, one approach's tokens per parameter at ``budget``; 3m's columns end in _3m."""
    suffix = _suffix(approach)
    all_data = float(np.median(_tokens_per_param(held.full, budget, approach)))
    rows = []
    for fit in held.fits:
        lower, median, upper = np.quantile(
            _tokens_per_param(fit, budget, approach), [0.05, 0.5, 0.95]
        )
        rows.append(
            {
                "tokens_per_param": float(median),
                "tokens_per_param_lower": float(lower),
                "tokens_per_param_upper": float(upper),
                "all_data_tokens_per_param": all_data,
                "covers_all_data": bool(lower <= all_data <= upper),
            }
        )
    return pd.DataFrame(rows).add_suffix(suffix)


def _suffix(approach: str) -> str:
    """The allocation check's column suffix: none for the law's (approach 3), else ``_3m``."""
    return "" if approach == "3" else f"_{approach}"


def _tokens_per_param(fit: Fit, budget: float, approach: str = "3") -> np.ndarray:
    with warnings.catch_warnings():
        # Draws at a search bound are kept and counted by optimal(); the quantiles include them.
        warnings.simplefilter("ignore", AllocationWarning)
        # The planning budget is beyond a cut's runs on purpose: that is what is scored.
        warnings.simplefilter("ignore", ExtrapolationWarning)
        find = whole_model_optimal if approach == "3m" else optimal
        return find(fit, [budget]).tokens_per_param.to_numpy().reshape(-1)
