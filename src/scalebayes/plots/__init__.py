"""Figures of a fit: bands, frontier, isoFLOP curves, diagnostics.

Every function takes a :class:`~scalebayes.results.Fit` and quantities already computed
from it (a Prediction, an Allocation, a Comparison), draws on the ``ax`` it is given or on a
new figure, and returns what it drew on. None samples, runs inference, shows a window or
changes matplotlib's global style. The ``*_predictions`` / ``*_draws`` helpers compute what
a plot needs; :func:`draw` does both for one figure kind.

>>> from scalebayes import plots                                  # doctest: +SKIP
>>> mean, new_run = plots.band_predictions(fit)                   # doctest: +SKIP
>>> ax = plots.bands(fit, mean, new_run)                          # doctest: +SKIP
>>> ax = plots.frontier(sb.optimal(fit, budgets), runs=fit.runs)  # doctest: +SKIP
"""

from __future__ import annotations

from scalebayes.plots._common import figure_of
from scalebayes.plots.bands import band_predictions, bands, default_axis
from scalebayes.plots.diagnostics import (
    comparison,
    noise_interval,
    pairs,
    prior_posterior,
    rank,
    residual_draws,
    residuals,
    trace,
)
from scalebayes.plots.frontier import (
    EPOCH_2024,
    HOFFMANN_2022,
    PUBLISHED,
    Reference,
    frontier,
    frontier_panels,
)
from scalebayes.plots.gallery import KINDS, draw, save
from scalebayes.plots.isoflop import data_budgets, isoflop, isoflop_predictions

__all__ = [
    "EPOCH_2024",
    "HOFFMANN_2022",
    "KINDS",
    "PUBLISHED",
    "Reference",
    "band_predictions",
    "bands",
    "comparison",
    "data_budgets",
    "default_axis",
    "draw",
    "figure_of",
    "frontier",
    "frontier_panels",
    "isoflop",
    "isoflop_predictions",
    "noise_interval",
    "pairs",
    "prior_posterior",
    "rank",
    "residual_draws",
    "residuals",
    "save",
    "trace",
]
