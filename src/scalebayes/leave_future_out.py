"""Leave-future-out by compute: fit the runs below a compute cut-off, score the runs above it.

Interpolation scores (PSIS-LOO, WAIC) ask how well a law predicts a run like the ones it has
seen; the question before a big run is how well it predicts a *bigger* one. So, for a few
cut-offs in training compute, the law is refitted on the runs at or below the cut and the runs
above it are scored by the refit's posterior predictive distribution: log predictive density
(the average over draws of each run's likelihood, in log space), whether the loss falls in the
90% predictive interval, and the error of the median prediction.

Every refit uses the same law, likelihood and NUTS settings on the same number of runs, so it
reuses one compiled sampler (see :func:`_refit`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from scalebayes.data import Runs, load_runs
from scalebayes.errors import ScalebayesError
from scalebayes.fitting import fit
from scalebayes.laws import Law, load_law
from scalebayes.likelihood import Likelihood
from scalebayes.model import pointwise_log_lik
from scalebayes.prediction import noise_draws
from scalebayes.results import Fit, Settings
from scalebayes.runtime import in_fit_precision

if TYPE_CHECKING:
    from arviz_stats import ELPDData

    from scalebayes.priors import Prior

__all__ = ["LFO", "compute_cuts", "lfo"]

DEFAULT_QUANTILES = (0.5, 0.6, 0.7, 0.8)
"""Default cut-offs, as quantiles of the runs' compute: the first refit sees half the runs,
the last holds out the top fifth."""

PREDICTIVE_PROB = 0.9


@dataclass(frozen=True)
class LFO:
    """Leave-future-out scores of one law on one table of runs.

    Attributes
    ----------
    law : str
        Name of the law.
    cuts : DataFrame
        One row per compute cut-off: ``cut`` (FLOPs), ``n_fit`` and ``n_held`` (runs at or
        below and above it), ``lpd_mean`` (mean log predictive density of the held-out runs,
        loss scale), ``coverage`` (share of held-out losses inside the 90% predictive
        interval), ``abs_error`` (mean |median predicted loss - loss|, nats/token),
        ``rel_error`` (mean of that over the loss), and the refit's ``max_rhat``,
        ``n_divergent``.
    elpd_i : DataArray, dims (run,)
        One-step-ahead log predictive density of every run above the first cut, each scored by
        the refit at the highest cut below its compute, so that every run counts once; ``run``
        holds the row numbers in the table.
    fits : tuple of Fit
        The refits, one per cut.
    """

    law: str
    cuts: pd.DataFrame
    elpd_i: xr.DataArray
    fits: tuple[Fit, ...]

    @property
    def elpd(self) -> float:
        """Sum of the one-step-ahead log predictive densities (higher is better)."""
        return float(self.elpd_i.sum())

    @property
    def se(self) -> float:
        """Standard error of :attr:`elpd` (runs treated as exchangeable, as for LOO)."""
        values = self.elpd_i.to_numpy()
        return float(np.sqrt(values.size * np.var(values)))

    def to_elpd_data(self) -> ELPDData:
        """These scores as an ArviZ ``ELPDData``, so ``arviz_stats.compare`` can rank and weigh them."""
        from arviz_stats import ELPDData

        n_samples = min(f.diagnostics.n_draws for f in self.fits)
        return ELPDData(
            elpd=self.elpd,
            se=self.se,
            p=float("nan"),
            n_samples=n_samples,
            n_data_points=int(self.elpd_i.size),
            scale="log",
            warning=False,
            good_k=None,
            elpd_i=self.elpd_i,
        )

    def __str__(self) -> str:
        lines = [
            f"leave-future-out, law {self.law}: elpd {self.elpd:.1f} (se {self.se:.1f}) over "
            f"{self.elpd_i.size} runs, each predicted from the runs below it",
            f"{'cut (FLOPs)':>12s} {'fit':>5s} {'held':>5s} {'lpd/run':>8s} "
            f"{'90% cover':>9s} {'|err|':>8s} {'rel err':>8s} {'R-hat':>6s} {'div':>4s}",
        ]
        for row in self.cuts.itertuples():
            lines.append(
                f"{row.cut:12.3g} {row.n_fit:5d} {row.n_held:5d} {row.lpd_mean:8.3f} "
                f"{row.coverage:9.0%} {row.abs_error:8.4f} {row.rel_error:8.2%} "
                f"{row.max_rhat:6.3f} {row.n_divergent:4d}"
            )
        return "\n".join(lines)


def compute_cuts(runs: Runs, cuts: int | Sequence[float] = len(DEFAULT_QUANTILES)) -> np.ndarray:
    """Compute cut-offs (FLOPs, increasing) for :func:`lfo`.

    Parameters
    ----------
    runs : Runs
        The table the cuts split.
    cuts : int or sequence of float
        A number of cut-offs, placed at quantiles of the runs' compute from 0.5 to 0.8 (with 4:
        0.5, 0.6, 0.7, 0.8); or the cut-offs themselves in FLOPs. A cut is always the compute
        of some run, so an isoFLOP level is never split; when the sweep has too few levels
        for distinct quantiles, the cuts are spread over the levels from the median run's
        upwards (all but the top one), and may be fewer than asked for.

    Raises
    ------
    ScalebayesError
        If a cut leaves fewer than 3 runs to fit or none to score.
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
    for cut in values:
        n_fit, n_held = int(np.sum(compute <= cut)), int(np.sum(compute > cut))
        if n_fit < 3 or n_held < 1:
            raise ScalebayesError(
                f"compute cut-off {cut:.3g} FLOPs leaves {n_fit} runs to fit and {n_held} to "
                f"score (compute spans {compute.min():.3g}-{compute.max():.3g}); expected at "
                "least 3 below and 1 above"
            )
    return values


def lfo(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str],
    *,
    cuts: int | Sequence[float] = len(DEFAULT_QUANTILES),
    priors: dict[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    **sampler: Any,
) -> LFO:
    """Leave-future-out by compute: refit ``law`` below each cut-off, score the runs above.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        All runs; each refit sees those with compute at or below its cut.
    law : Law, name or path
        The law to refit.
    cuts : int or sequence of float
        See :func:`compute_cuts`; default 4 cut-offs at the 0.5-0.8 quantiles of compute.
    priors, likelihood, settings, **sampler
        As for :func:`scalebayes.fit`; every refit uses the same ones (and the same seed), so
        all refits share one compiled sampler.
    progress : callable, optional
        ``progress(done, total, phase)`` after each refit, with ``phase`` naming the cut.

    Returns
    -------
    LFO
        Per-cut scores and the one-step-ahead pointwise log predictive densities.
    """
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    law = load_law(law)
    likelihood = likelihood or Likelihood()
    values = compute_cuts(runs, cuts)
    settings = Settings.make(settings, **sampler)
    seed = settings.seed
    options = {"priors": priors, "likelihood": likelihood, "settings": settings}
    compute = runs.C
    rows, fits = [], []
    elpd_i = np.full(len(runs), np.nan)
    for k, cut in enumerate(values):
        below = compute <= cut
        refit = _refit(runs, law, below, options)
        fits.append(refit)
        held = ~below
        # Scored on all runs, then selected: one array shape for every cut, so the
        # log-likelihood's JAX operations compile once per law rather than once per cut.
        log_lik, predicted = _predictive(refit, runs, seed + k)
        log_lik, predicted = log_lik[:, held], predicted[:, held]
        lpd = _log_mean_exp(log_lik)
        loss = runs.loss[held]
        low, median, high = np.quantile(
            predicted, [(1 - PREDICTIVE_PROB) / 2, 0.5, (1 + PREDICTIVE_PROB) / 2], axis=0
        )
        error = np.abs(median - loss)
        rows.append(
            {
                "cut": float(cut),
                "n_fit": int(below.sum()),
                "n_held": int(held.sum()),
                "lpd_mean": float(lpd.mean()),
                "coverage": float(np.mean((loss >= low) & (loss <= high))),
                "abs_error": float(error.mean()),
                "rel_error": float(np.mean(error / loss)),
                "max_rhat": refit.diagnostics.max_rhat,
                "n_divergent": refit.diagnostics.n_divergent,
            }
        )
        # One step ahead: a run is scored by the highest cut below it (later cuts overwrite).
        elpd_i[held] = lpd
        if progress is not None:
            progress(k + 1, len(values), f"cut {k + 1}/{len(values)} at {cut:.3g} FLOPs")
    scored = np.flatnonzero(np.isfinite(elpd_i))
    return LFO(
        law=law.name,
        cuts=pd.DataFrame(rows),
        elpd_i=xr.DataArray(elpd_i[scored], dims=("run",), coords={"run": scored}),
        fits=tuple(fits),
    )


def _refit(runs: Runs, law: Law, mask: np.ndarray, settings: dict[str, object]) -> Fit:
    """Fit ``law`` to the runs where ``mask`` is True.

    The one place that decides how a subset is fitted: the held-out runs stay in the data
    with weight 0 (``fit(..., mask=)``), so the data shape, and with it the compiled sampler,
    is the same for every cut, and the same as a fit to all runs.
    """
    return fit(runs, law, mask=mask, **settings)  # type: ignore[arg-type]


@in_fit_precision
def _predictive(fit: Fit, runs: Runs, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per draw and run: log density of its loss, and a predictive draw of its loss.

    Returns two arrays of shape (chain * draw, n_runs): the log-likelihood on the loss scale
    (as in the fit's log_likelihood group) and loss drawn from the noise model. The mean goes
    through :meth:`Fit.log_mean`, so a discrepancy term is included as in every prediction.
    """
    params = {name: fit.posterior[name].to_numpy()[..., None] for name in fit.param_names}
    log_inputs = {name: runs.log_inputs()[name] for name in fit.law.inputs}
    log_ref = fit.log_ref
    log_lik = pointwise_log_lik(
        fit.law, fit.likelihood, params, log_inputs, np.log(runs.loss), log_ref
    )
    log_mu = np.asarray(fit.log_mean(params, log_inputs))
    predicted = np.exp(log_mu + noise_draws(fit, log_mu.shape, seed=seed))
    return np.asarray(log_lik).reshape(-1, len(runs)), predicted.reshape(-1, len(runs))


def _log_mean_exp(log_values: np.ndarray) -> np.ndarray:
    """``log(mean(exp(x)))`` over axis 0, stably."""
    from scipy.special import logsumexp

    return logsumexp(log_values, axis=0) - np.log(log_values.shape[0])
