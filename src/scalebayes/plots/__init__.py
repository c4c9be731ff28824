"""Figures of a fit: bands, frontier, isoFLOP curves, diagnostics, the PIT of held-out runs.

Every function takes a :class:`~scalebayes.results.Fit` (the forest: a table of a grouped
fit's values) and quantities already computed from it (a Prediction, an Allocation, a
Comparison), draws on the ``ax`` it is given or on a new figure, and returns what it drew
on. None computes a posterior quantity, samples, shows a window or changes matplotlib's
global style: :mod:`scalebayes.figures` computes what a plot
needs (``band_predictions``, ``isoflop_predictions``, ``residual_draws``, ...) and its
``draw`` does both for one figure kind.

>>> from scalebayes import figures, plots                         # doctest: +SKIP
>>> mean, new_run = figures.band_predictions(fit)                 # doctest: +SKIP
>>> ax = plots.bands(fit, mean, new_run)                          # doctest: +SKIP
>>> ax = plots.frontier(sb.optimal(fit, budgets), runs=fit.runs)  # doctest: +SKIP
"""

from __future__ import annotations

from scalebayes.plots._common import figure_of, save
from scalebayes.plots.approaches import approaches
from scalebayes.plots.bands import bands, bands_panels, default_axis
from scalebayes.plots.diagnostics import (
    comparison,
    pairs,
    rank,
    residuals,
    trace,
)
from scalebayes.plots.forest import forest
from scalebayes.plots.frontier import (
    EPOCH_2024,
    HOFFMANN_2022,
    PUBLISHED,
    Reference,
    frontier,
    frontier_panels,
)
from scalebayes.plots.heldout import pit, pit_panels
from scalebayes.plots.isoflop import data_budgets, isoflop
from scalebayes.plots.prior import prior_posterior

__all__ = [
    "EPOCH_2024",
    "HOFFMANN_2022",
    "PUBLISHED",
    "Reference",
    "approaches",
    "bands",
    "bands_panels",
    "comparison",
    "data_budgets",
    "default_axis",
    "figure_of",
    "forest",
    "frontier",
    "frontier_panels",
    "isoflop",
    "pairs",
    "pit",
    "pit_panels",
    "prior_posterior",
    "rank",
    "residuals",
    "save",
    "trace",
]
