"""Leave-future-out by compute: fit the runs below a compute cut-off, score the runs above it.

Interpolation scores (PSIS-LOO, WAIC) ask how well a law predicts a run like the ones it has
seen; the question before a big run is how well it predicts a *bigger* one. So, for a few
cut-offs in training compute, the law is refitted on the runs at or below the cut and the runs
above it are scored by the refit's posterior predictive distribution.

A view of :mod:`scalebayes.holdout`, as the backtest is: cuts at quantiles of compute, all
refits in one :func:`scalebayes.fit_batch` call (one compiled sampler), the shared
scores per cut (:func:`scalebayes.holdout.pool`), and the one-step-ahead elpd: each run's log
predictive density from the highest cut below it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from scalebayes.data import Runs, load_runs
from scalebayes.formatting import score_header, score_line
from scalebayes.holdout import (
    DEFAULT_QUANTILES,
    SCORES,
    Holdout,
    fit_holdout,
    pool_cuts,
    quantile_cuts,
)
from scalebayes.results import Fit, Settings

if TYPE_CHECKING:
    from arviz_stats import ELPDData

    from scalebayes.laws import Law
    from scalebayes.likelihood import Likelihood
    from scalebayes.priors import Prior

__all__ = ["DEFAULT_QUANTILES", "LFO", "compute_cuts", "lfo"]


@dataclass(frozen=True)
class LFO:
    """Leave-future-out scores of one law on one table of runs.

    Attributes
    ----------
    law : str
        Name of the law.
    cuts : DataFrame
        One row per compute cut-off: ``cut`` (FLOPs), ``n_fit`` and ``n_held`` (runs at or
        below and above it); the scores of the held-out runs, as the backtest's
        (:func:`scalebayes.holdout.pool`): ``interval_score_90`` and ``crps`` (means, log
        loss, lower is better), ``lpd`` (mean log predictive density, loss scale, higher is
        better), ``coverage_90``, ``coverage_50`` (share of losses inside the predictive
        intervals), ``width_90``, ``bias``, ``median_abs_error`` and ``mean_abs_error`` (log
        loss); and the refit's ``max_rhat``, ``n_divergent``.
    elpd_i : DataArray, dims (run,)
        One-step-ahead log predictive density of every run above the first cut, each scored by
        the refit at the highest cut below its compute, so that every run counts once; ``run``
        holds the row numbers in the table.
    fits : tuple of Fit
        The refits, one per cut.
    scores : tuple of DataFrame
        Per cut, the scores of each held-out run (:func:`scalebayes.holdout.score`).
    """

    law: str
    cuts: pd.DataFrame
    elpd_i: xr.DataArray
    fits: tuple[Fit, ...]
    scores: tuple[pd.DataFrame, ...] = ()

    @property
    def pooled(self) -> dict[str, float]:
        """The scores over all cuts (:func:`scalebayes.holdout.pool_cuts`): each (cut, run) once."""
        return pool_cuts(self.scores)

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

    @classmethod
    def from_holdout(cls, held: Holdout) -> LFO:
        """The leave-future-out view of fits below compute cuts and their scores."""
        elpd_i = pd.Series(np.nan, index=np.arange(len(held.runs)))
        # From the lowest cut up, each overwriting: a run keeps the highest cut below it.
        for k in np.argsort([cut.mask.sum() for cut in held.cuts], kind="stable"):
            scores = held.scores[k]
            elpd_i[scores.index] = scores["lpd"].to_numpy()
        elpd_i = elpd_i.dropna()
        table = held.table().drop(columns="label")
        table = table[["cut", "n_fit", "n_held", *SCORES, "max_rhat", "n_divergent"]]
        return cls(
            law=held.fits[0].law.name,
            cuts=table,
            elpd_i=xr.DataArray(
                elpd_i.to_numpy(), dims=("run",), coords={"run": elpd_i.index.to_numpy()}
            ),
            fits=held.fits,
            scores=held.scores,
        )

    def __str__(self) -> str:
        lines = [
            f"leave-future-out, law {self.law}: elpd {self.elpd:.1f} (se {self.se:.1f}) over "
            f"{self.elpd_i.size} runs, each predicted from the runs below it",
            "proper scores: 90% interval score and CRPS (lower is better), lpd (higher is better)",
            f"{score_header('cut (FLOPs)', 12)} {'R-hat':>6s} {'div':>4s}",
        ]
        for row in self.cuts.itertuples():
            line = score_line(f"{row.cut:.3g}", 12, row.n_fit, row.n_held, row._asdict())
            lines.append(f"{line} {row.max_rhat:6.3f} {row.n_divergent:4d}")
        if self.scores and len(self.cuts) > 1:
            n_held = int(self.cuts["n_held"].sum())
            lines.append(score_line("all cuts", 12, None, n_held, self.pooled))
        return "\n".join(lines)


def compute_cuts(runs: Runs, cuts: int | Sequence[float] = len(DEFAULT_QUANTILES)) -> np.ndarray:
    """Compute cut-offs (FLOPs, increasing) for :func:`lfo`.

    Parameters
    ----------
    runs : Runs
        The table the cuts split.
    cuts : int or sequence of float
        A number of cut-offs, placed at quantiles of the runs' compute from 0.5 to 0.8 (with 4:
        0.5, 0.6, 0.7, 0.8); or the cut-offs themselves in FLOPs
        (:func:`scalebayes.holdout.quantile_cuts`).

    Raises
    ------
    ScalebayesError
        If a cut leaves fewer than 3 runs to fit or none to score.
    """
    return np.array([cut.flops for cut in quantile_cuts(runs, cuts)])


def lfo(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str],
    *,
    cuts: int | Sequence[float] = len(DEFAULT_QUANTILES),
    priors: Mapping[str, str | Prior] | None = None,
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
        As for :func:`scalebayes.fit`; every refit uses the same ones (and the same seed), and
        all refits are one :func:`scalebayes.fit_batch` call.
    progress : callable, optional
        ``progress(done, total, phase)`` as the batch of refits samples.

    Returns
    -------
    LFO
        Per-cut scores and the one-step-ahead pointwise log predictive densities. For the same
        cuts and settings these are the scores of ``backtest(..., fit_all=False)``.
    """
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    split = quantile_cuts(runs, cuts)
    label = f"{len(split)} cut{'s' * (len(split) > 1)}"

    def report(done: int, total: int, phase: str) -> None:
        if progress is not None:
            progress(done, total, f"{label}: {phase}")

    held = fit_holdout(
        runs,
        law,
        split,
        priors=priors,
        likelihood=likelihood,
        settings=Settings.make(settings, **sampler),
        progress=None if progress is None else report,
    )
    return LFO.from_holdout(held)
