"""Fit below a cut, score above it: the one core of backtests and leave-future-out.

The question before a big run is how well a fit of the runs one has predicts a run *beyond*
them. Every such check here is the same machinery:

- a **cut** is a boolean mask over one table of runs (fit where True, score where False),
  made by a small rule: compute quantiles (:func:`quantile_cuts`, leave-future-out's),
  decades or budgets held out at the top (:func:`decade_cuts`, :func:`budget_cuts`, the
  backtest's) or explicit FLOPs (:func:`flop_cuts`);
- :func:`fit_holdout` fits every cut in one :func:`scalebayes.fit_batch` call (the held-out
  runs stay in the data with weight 0, so all cuts share one compiled sampler: the one-table
  sampler of an ordinary fit on a CPU, one batch of chains on a GPU);
- :func:`score` scores a fit's predictions of the held-out runs, one row per run: proper
  scores first (interval score, CRPS, log predictive density; :mod:`scalebayes.scoring`), then
  coverage, width, errors and the PIT; :func:`pool` pools those rows per cut and
  :func:`pool_cuts` over cuts. Nothing else scores held-out runs.

:func:`scalebayes.backtest` and :func:`scalebayes.lfo` are views of a :class:`Holdout`: the
backtest adds the allocation check, leave-future-out the one-step-ahead elpd.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scalebayes.errors import ScalebayesError, UnidentifiableError
from scalebayes.fitting import fit_batch, prepare
from scalebayes.prediction import noise_draws
from scalebayes.preflight import check_identifiable
from scalebayes.results import Settings
from scalebayes.runtime import in_fit_precision
from scalebayes.scoring import INTERVAL_ALPHA, crps, interval_score, pit

if TYPE_CHECKING:
    from scalebayes.data import Runs
    from scalebayes.engine import ProgressCallback
    from scalebayes.laws import Law
    from scalebayes.likelihood import Likelihood
    from scalebayes.priors import Prior
    from scalebayes.results import Fit

__all__ = [
    "DEFAULT_QUANTILES",
    "SCORES",
    "Cut",
    "Holdout",
    "budget_cuts",
    "decade_cuts",
    "fit_holdout",
    "flop_cuts",
    "pool",
    "pool_cuts",
    "quantile_cuts",
    "score",
    "unfittable",
]

DEFAULT_QUANTILES = (0.5, 0.6, 0.7, 0.8)
"""Leave-future-out's default cut-offs, as quantiles of the runs' compute: the first fit sees
half the runs, the last holds out the top fifth."""

SCORES = (
    "interval_score_90",
    "crps",
    "lpd",
    "coverage_90",
    "coverage_50",
    "width_90",
    "bias",
    "median_abs_error",
    "mean_abs_error",
)
"""The pooled scores of one cut, in the order tables show them (see :func:`pool`): the proper
scores first (interval score and CRPS, lower is better; lpd, higher is better), then coverage,
which alone rewards wide intervals."""

MIN_FIT = 3  # fewer runs than this leave a law of 3-5 parameters unidentified


@dataclass(frozen=True, eq=False)
class Cut:
    """One split of a table: fit the runs where ``mask`` is True, score the others.

    ``flops`` is the compute cut-off the mask was made from (runs at or below it are fitted),
    NaN for a mask made otherwise; ``label`` says what is held out, in words.
    """

    flops: float
    label: str
    mask: np.ndarray

    @classmethod
    def below(cls, runs: Runs, flops: float, label: str | None = None) -> Cut:
        """Fit the runs with compute at or below ``flops``; score the rest."""
        return cls(float(flops), label or f"C > {flops:.3g}", runs.C <= flops)


# --------------------------------------------------------------------------- cut rules


def quantile_cuts(runs: Runs, cuts: int | Sequence[float] = len(DEFAULT_QUANTILES)) -> list[Cut]:
    """Leave-future-out's cuts: ``cuts`` cut-offs at quantiles 0.5-0.8 of compute, or these FLOPs.

    A number places the cuts at quantiles of the runs' compute from 0.5 to 0.8 (with 4: 0.5,
    0.6, 0.7, 0.8). A cut is always the compute of some run, so an isoFLOP level is never
    split; when the sweep has too few levels for distinct quantiles, the cuts are spread over
    the levels from the median run's upwards (all but the top one), and may be fewer than
    asked for. A sequence gives the cut-offs in FLOPs, increasing.
    """
    compute = runs.C
    if isinstance(cuts, int | np.integer) and not isinstance(cuts, bool):
        if cuts < 1:
            raise ScalebayesError(f"cuts={cuts}: expected at least 1 cut-off")
        quantiles = np.linspace(0.5, 0.8, cuts) if cuts > 1 else np.array([0.5])
        # "lower": a cut is the compute of a run, so an isoFLOP level is never split.
        values = np.unique(np.quantile(compute, quantiles, method="lower"))
        if values.size < cuts:  # coarse levels (isoFLOP budgets): spread over the levels
            levels = np.unique(compute)[:-1]  # a cut at the top level would score nothing
            levels = levels[levels >= values[0]]
            index = np.unique(np.round(np.linspace(0, levels.size - 1, cuts)).astype(int))
            values = levels[index]
    else:
        values = np.asarray(cuts, dtype=float)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ScalebayesError(f"cuts={cuts!r}: expected a number or a list of FLOP counts")
        if np.any(np.diff(values) <= 0):
            raise ScalebayesError(f"cuts={list(values)}: expected increasing FLOP counts")
    return _checked(runs, [Cut.below(runs, value) for value in values])


def decade_cuts(runs: Runs, decades: Sequence[float] = (1.0, 2.0)) -> list[Cut]:
    """Hold out the top ``decades`` of compute (each a cut at the largest compute / 10**d)."""
    values = [float(d) for d in decades]
    if not values or not all(np.isfinite(d) and d > 0 for d in values):
        raise ScalebayesError(f"holdout_top={list(decades)}: expected positive decades")
    c_max = float(runs.C.max())
    return _checked(
        runs,
        [Cut.below(runs, c_max / 10**d, f"top {d:g} decade{'s' * (d != 1)}") for d in values],
    )


def budget_cuts(runs: Runs, counts: Sequence[int]) -> list[Cut]:
    """Hold out the ``k`` largest distinct compute budgets, for each ``k`` (isoFLOP sweeps)."""
    budgets = np.unique(runs.C)
    out = []
    for k in counts:
        if not 1 <= k < len(budgets):
            raise ScalebayesError(
                f"holdout_budgets={k}: the table has {len(budgets)} distinct budgets; "
                f"expected 1 to {len(budgets) - 1}"
            )
        out.append(Cut.below(runs, float(budgets[-k - 1]), f"top {k} budget{'s' * (k > 1)}"))
    return _checked(runs, out)


def ratio_cuts(runs: Runs, ratios: Sequence[float]) -> list[Cut]:
    """Fit the runs with at most ``r`` tokens per parameter (D/N), score the rest, for each ``r``.

    The over-training question: does a law fitted near the compute-optimal valley predict runs
    trained far longer per parameter (as serving-heavy plans train)?
    """
    values = [float(r) for r in ratios]
    if not values or not all(np.isfinite(r) and r > 0 for r in values):
        raise ScalebayesError(f"holdout_tokens_per_param={list(ratios)}: expected positive ratios")
    if not {"N", "D"} <= set(runs.table):
        raise ScalebayesError("holding out by tokens per parameter needs N and D columns")
    ratio = runs.table["D"].to_numpy(float) / runs.table["N"].to_numpy(float)
    return _checked(runs, [Cut(np.nan, f"D/N > {r:g}", ratio <= r) for r in values])


def flop_cuts(runs: Runs, flops: Sequence[float]) -> list[Cut]:
    """Cut at these FLOPs: fit at or below each, score above."""
    values = [float(c) for c in flops]
    if not values or not all(np.isfinite(c) and c > 0 for c in values):
        raise ScalebayesError(f"cuts={list(flops)}: expected positive FLOPs")
    return _checked(runs, [Cut.below(runs, c) for c in values])


def unfittable(
    runs: Runs,
    cuts: Sequence[Cut],
    law: Law | str | os.PathLike[str],
    likelihood: Likelihood | None = None,
    priors: Mapping[str, str | Prior] | None = None,
) -> list[str | None]:
    """Per cut, why its runs cannot fit ``law`` (the cut named), or None where they can."""
    fitted_law, noise = prepare(law, likelihood, priors)
    found: list[str | None] = []
    for cut in cuts:
        where = f"{runs.source}, the fit that holds out {cut.label}"
        try:
            check_identifiable(fitted_law, noise, runs.subset(cut.mask), where=where)
            found.append(None)
        except UnidentifiableError as error:
            found.append(str(error))
    return found


def _checked(runs: Runs, cuts: list[Cut]) -> list[Cut]:
    """``cuts``, once each is known to leave enough runs to fit and some to score."""
    compute = runs.C
    for cut in cuts:
        mask = np.asarray(cut.mask)
        if mask.dtype != bool or mask.shape != (len(runs),):
            raise ScalebayesError(
                f"cut {cut.label}: mask of dtype {mask.dtype} and shape {mask.shape}; "
                f"expected bool of shape ({len(runs)},)"
            )
        n_fit, n_held = int(mask.sum()), int((~mask).sum())
        if n_fit < MIN_FIT or n_held < 1:
            where = f" ({cut.flops:.3g} FLOPs)" if np.isfinite(cut.flops) else ""
            raise ScalebayesError(
                f"cut {cut.label}{where} leaves {n_fit} runs to fit and {n_held} to score "
                f"(compute spans {compute.min():.3g}-{compute.max():.3g}); expected at least "
                f"{MIN_FIT} below and 1 above"
            )
    return cuts


# ------------------------------------------------------------------------------ the core


@dataclass(frozen=True)
class Holdout:
    """Fits below each cut and their scores on the runs above it.

    Attributes
    ----------
    runs : Runs
        The whole table.
    cuts : tuple of Cut
        The splits, in the order given.
    fits : tuple of Fit
        One fit per cut, of the runs its mask keeps.
    scores : tuple of DataFrame
        Per cut, :func:`score`'s rows: one per held-out run, indexed by its row in ``runs``.
    full : Fit or None
        The fit of all the runs, sampled in the same batch, when it was asked for.
    """

    runs: Runs
    cuts: tuple[Cut, ...]
    fits: tuple[Fit, ...]
    scores: tuple[pd.DataFrame, ...]
    full: Fit | None = None

    def table(self) -> pd.DataFrame:
        """One row per cut: its size, pooled scores and the fit's health.

        Columns ``cut`` (FLOPs), ``label``, ``n_fit``, ``n_held``, the pooled scores
        (:data:`SCORES`, see :func:`pool`) and the fit's ``max_rhat``, ``n_divergent``.
        """
        rows = []
        for cut, fit, scores in zip(self.cuts, self.fits, self.scores, strict=True):
            rows.append(
                {
                    "cut": cut.flops,
                    "label": cut.label,
                    "n_fit": int(cut.mask.sum()),
                    "n_held": int((~cut.mask).sum()),
                    **pool(scores),
                    "max_rhat": fit.diagnostics.max_rhat,
                    "n_divergent": fit.diagnostics.n_divergent,
                }
            )
        return pd.DataFrame(rows)


def fit_holdout(
    runs: Runs,
    law: Law | str | os.PathLike[str],
    cuts: Sequence[Cut],
    *,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    fit_all: bool = False,
) -> Holdout:
    """Fit ``law`` below every cut in one batch and score each fit on the runs it did not see.

    Parameters
    ----------
    runs : Runs
        The table every cut splits.
    law : Law, name or path
        The law to fit.
    cuts : sequence of Cut
        From the cut rules (:func:`quantile_cuts`, :func:`decade_cuts`, :func:`budget_cuts`,
        :func:`flop_cuts`) or made by hand; each must keep at least 3 runs and hold out one.
    priors, likelihood, settings, progress
        As in :func:`scalebayes.fit_batch`: all cuts share one compiled sampler.
    fit_all : bool
        Also fit all the runs, last in the same batch (:attr:`Holdout.full`). On a GPU the
        batch is then one fit larger, so the cuts' draws differ from a batch without it.

    Returns
    -------
    Holdout
        The fits and, per cut, :func:`score`'s rows; held-out runs are scored with
        ``settings.seed`` for the predictive draws, the same for every cut.
    """
    cuts = _checked(runs, list(cuts))
    if not cuts:
        raise ScalebayesError("no cuts: expected at least one")
    refused = [why for why in unfittable(runs, cuts, law, likelihood, priors) if why]
    if refused:  # before any sampling, named by its cut
        raise UnidentifiableError(refused[0])
    settings = Settings.make(settings)
    masks = [np.asarray(cut.mask) for cut in cuts]
    if fit_all:
        masks.append(np.ones(len(runs), bool))
    fits = fit_batch(
        [runs] * len(masks),
        law,
        masks=masks,
        priors=priors,
        likelihood=likelihood,
        settings=settings,
        progress=progress,
    )
    scores = tuple(
        score(fit, runs, ~cut.mask, seed=settings.seed)
        for fit, cut in zip(fits, cuts, strict=False)
    )
    return Holdout(
        runs=runs,
        cuts=tuple(cuts),
        fits=tuple(fits[: len(cuts)]),
        scores=scores,
        full=fits[-1] if fit_all else None,
    )


# -------------------------------------------------------------------------------- scores


@in_fit_precision
def score(fit: Fit, runs: Runs, held: np.ndarray | None = None, *, seed: int = 0) -> pd.DataFrame:
    """How well ``fit`` predicts each held-out run, as a new run (noise included).

    Parameters
    ----------
    fit : Fit
        A fit, usually of the runs ``held`` leaves out.
    runs : Runs
        The table the held-out runs come from. Only the law's own inputs are read (a table's
        C may be a nominal budget a few % off 6 N D).
    held : bool array, shape (n_runs,), optional
        The runs to score; default all.
    seed : int
        Seed of the predictive noise draws (one per posterior draw and run).

    Returns
    -------
    DataFrame
        One row per held-out run, indexed by its row in ``runs``: ``N``, ``D``, ``C``; in log loss,
        ``log_loss`` (observed), ``median`` and the 90 % and 50 % predictive interval
        (``lower_90``, ``upper_90``, ``lower_50``, ``upper_50``) of a new run's log loss,
        ``error`` (observed minus median: negative means the fit predicted too high a loss),
        ``width_90``; ``inside_90``, ``inside_50`` (the loss lies in the interval); the
        proper scores (:mod:`scalebayes.scoring`): ``interval_score_90`` (the 90 % interval's
        width plus 20 times the distance by which the log loss falls outside it) and ``crps``
        (of the predictive draws), both in log loss, lower is better, and ``lpd``, the log
        predictive density of the loss (loss scale, as in the fit's log_likelihood group: the
        log of its density averaged over posterior draws), higher is better; and ``pit``, the
        share of predictive draws below the observed log loss.
    """
    held = np.ones(len(runs), bool) if held is None else np.asarray(held, bool)
    if held.shape != (len(runs),):
        raise ScalebayesError(f"held has shape {held.shape}; expected ({len(runs)},)")
    params = {name: fit.posterior[name].to_numpy()[..., None] for name in fit.param_names}
    log_inputs = {name: v for name, v in runs.log_inputs().items() if name in fit.law.inputs}
    fit.likelihood.discrepancy.check_points(
        fit.law, {name: v[held] for name, v in log_inputs.items()}, fit.log_ref
    )
    observed = np.log(runs.loss)
    # Every run of the table, then the held-out ones: one array shape for every cut of a
    # table, so JAX's operations compile once per law, not once per cut.
    log_mu = np.asarray(fit.log_mean(params, log_inputs))  # (chain, draw, run)
    # As model.pointwise_log_lik (the fit's own log_likelihood), on the mean just computed.
    log_lik = np.asarray(fit.likelihood.log_density(log_mu, params, observed))
    log_pred = log_mu + noise_draws(fit, log_mu.shape, seed=seed)
    n_draws = log_mu.shape[0] * log_mu.shape[1]
    log_lik = log_lik.reshape(n_draws, -1)[:, held]
    log_pred = log_pred.reshape(n_draws, -1)[:, held]
    y = observed[held]
    lower_90, lower_50, median, upper_50, upper_90 = np.quantile(
        log_pred, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0
    )
    lpd = np.logaddexp.reduce(log_lik, axis=0) - np.log(n_draws)
    return pd.DataFrame(
        {
            "N": runs.N[held],
            "D": runs.D[held],
            "C": runs.C[held],
            "log_loss": y,
            "median": median,
            "lower_90": lower_90,
            "upper_90": upper_90,
            "lower_50": lower_50,
            "upper_50": upper_50,
            "error": y - median,
            "width_90": upper_90 - lower_90,
            "inside_90": (y >= lower_90) & (y <= upper_90),
            "inside_50": (y >= lower_50) & (y <= upper_50),
            "interval_score_90": interval_score(lower_90, upper_90, y, INTERVAL_ALPHA),
            "crps": crps(log_pred, y),
            "lpd": lpd,
            "pit": pit(log_pred, y),
        },
        index=pd.Index(np.flatnonzero(held), name="run"),
    )


def pool(scores: pd.DataFrame) -> dict[str, float]:
    """One cut's scores from :func:`score`'s rows, the columns :data:`SCORES`.

    ``interval_score_90``, ``crps``: means over the runs, log loss, lower is better (proper
    scores: no forecast beats the true distribution on average); ``lpd``: mean log predictive
    density per run (loss scale), higher is better; ``coverage_90``, ``coverage_50``: share of
    losses inside the predictive intervals; ``width_90``: median width of the 90 % interval,
    log loss; ``bias``: mean of observed minus predicted log loss; ``median_abs_error``,
    ``mean_abs_error``: of the median prediction, log loss (about the relative error of the
    loss).
    """
    error = scores["error"].to_numpy()
    return {
        "interval_score_90": float(np.mean(scores["interval_score_90"])),
        "crps": float(np.mean(scores["crps"])),
        "lpd": float(np.mean(scores["lpd"])),
        "coverage_90": float(np.mean(scores["inside_90"])),
        "coverage_50": float(np.mean(scores["inside_50"])),
        "width_90": float(np.median(scores["width_90"])),
        "bias": float(np.mean(error)),
        "median_abs_error": float(np.median(np.abs(error))),
        "mean_abs_error": float(np.mean(np.abs(error))),
    }


def pool_cuts(scores: Sequence[pd.DataFrame]) -> dict[str, float]:
    """The scores of several cuts pooled: :func:`pool` of all their rows together.

    Every (cut, run) pair counts once, so a run held out by two cuts counts twice (a backtest's
    nested cuts hold the largest runs out every time).
    """
    return pool(pd.concat(list(scores)))
