"""One call per figure kind: compute what the plot needs from a Fit, then draw it.

This is what ``scalebayes plot``, ``scalebayes report`` and ``scalebayes demo`` use. The
computing (predict, optimal) happens here, the drawing in the plot functions, which never
compute posteriors themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from scalebayes.errors import ScalebayesError
from scalebayes.plots._common import figure_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from scalebayes.allocate import Allocation
    from scalebayes.data import Runs
    from scalebayes.plots.frontier import Reference
    from scalebayes.results import Fit

KINDS = ("bands", "frontier", "isoflop", "trace", "rank", "pairs", "prior", "residuals")
# The frontier is drawn from the smallest run's compute to this many times the largest's.
FRONTIER_REACH = 1e4


def frontier_budgets(fit: Fit, budgets: Sequence[float] | None = None, n: int = 30) -> np.ndarray:
    """A log grid of budgets, FLOPs: from the runs' smallest compute past the largest (and ``budgets``)."""
    low = float(fit.runs.C.min())
    high = float(fit.runs.C.max()) * FRONTIER_REACH
    if budgets is not None and len(budgets):
        high = max(high, float(np.max(budgets)) * 2)
    return np.geomspace(low, high, n)


def draw(
    fit: Fit,
    kind: str,
    *,
    budgets: Sequence[float] | None = None,
    references: Sequence[Reference] | None = None,
    allocation: Allocation | None = None,
    others: Mapping[str, Fit] | None = None,
    heldout: Runs | None = None,
    axis: str | None = None,
    seed: int = 0,
) -> Figure:
    """A figure of ``kind`` for ``fit`` (see :data:`KINDS`); the caller saves and closes it.

    Parameters
    ----------
    fit : Fit
        The posterior.
    kind : str
        ``bands`` (loss against compute with credible and predictive bands), ``frontier``
        (N*, D*, L* against compute), ``isoflop`` (loss against N per budget in the data),
        ``trace``, ``rank``, ``pairs`` (ArviZ), ``prior`` (prior vs posterior) or ``residuals``.
    budgets : sequence of float, optional
        FLOPs: the budgets the ``frontier`` must reach, or the budgets of the ``isoflop``
        curves (default the data's own); no other kind takes budgets.
    references : sequence of Reference, optional
        Published frontiers for ``frontier``; default Hoffmann et al. 2022 and Epoch's refit.
    allocation : Allocation, optional
        A precomputed :func:`scalebayes.optimal` over a range of budgets for ``frontier``.
    others : mapping of name to Fit, optional
        Fits of other laws whose frontiers ``frontier`` overlays (each law must take N and D).
    heldout : Runs, optional
        Runs the fit did not see, marked on ``bands`` (e.g. the largest runs of a backtest).
    axis : {"C", "N", "D"}, optional
        Horizontal axis of ``bands``: compute (default for laws of N and D), or N at the runs'
        median D, or D at their median N.
    seed : int
        Seed of the new-run noise in ``bands``.
    """
    if kind not in KINDS:
        raise ScalebayesError(f"plot kind {kind!r}: expected one of {', '.join(KINDS)}")
    if others and kind != "frontier":
        raise ScalebayesError(f"other fits are overlaid on the frontier only, not on {kind!r}")
    if heldout is not None and kind != "bands":
        raise ScalebayesError(f"held-out runs are drawn on the bands only, not on {kind!r}")
    if axis is not None and kind != "bands":
        raise ScalebayesError(f"axis= applies to the bands plot, not to {kind!r}")
    if budgets is not None and kind not in ("frontier", "isoflop"):
        raise ScalebayesError(f"budgets apply to the frontier and isoflop plots, not to {kind!r}")
    import matplotlib.pyplot as plt

    opened_before = set(plt.get_fignums())
    try:
        return _figure(fit, kind, budgets, references, allocation, others, heldout, axis, seed)
    except BaseException:  # a plot that failed half-way leaves no figure behind
        for number in set(plt.get_fignums()) - opened_before:
            plt.close(number)
        raise


def _figure(
    fit: Fit,
    kind: str,
    budgets: Sequence[float] | None,
    references: Sequence[Reference] | None,
    allocation: Allocation | None,
    others: Mapping[str, Fit] | None,
    heldout: Runs | None,
    axis: str | None,
    seed: int,
) -> Figure:
    from scalebayes import plots

    if kind == "bands":
        axis = plots.default_axis(fit) if axis is None else axis
        mean, new_run = plots.band_predictions(fit, axis=axis, seed=seed)
        return figure_of(plots.bands(fit, mean, new_run, axis=axis, heldout=heldout))
    if kind == "frontier":
        from scalebayes.allocate import optimal

        grid = frontier_budgets(fit, budgets)
        allocations = {fit.law.name: optimal(fit, grid) if allocation is None else allocation}
        for name, other in (others or {}).items():
            allocations[name] = optimal(other, grid)
        refs = plots.PUBLISHED if references is None else references
        return figure_of(plots.frontier_panels(allocations, runs=fit.runs, references=refs))
    if kind == "isoflop":
        from scalebayes.allocate import optimal

        curves = plots.isoflop_predictions(fit, budgets)
        found = np.unique(curves.points["C"].to_numpy(float))
        return figure_of(plots.isoflop(fit, curves, optimal(fit, found)))
    if kind == "prior":
        return figure_of(plots.prior_posterior(fit))
    if kind == "residuals":
        return figure_of(plots.residuals(fit, plots.residual_draws(fit), plots.noise_interval(fit)))
    return figure_of(getattr(plots, kind)(fit))


def save(figure: Figure, path: str, *, dpi: int = 110) -> None:
    """Write ``figure`` (PNG, SVG or PDF by the suffix) and close it."""
    import matplotlib.pyplot as plt

    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in ("png", "svg", "pdf"):
        plt.close(figure)
        raise ScalebayesError(f"--out {path!r}: expected a .png, .svg or .pdf file")
    try:
        figure.savefig(path, dpi=dpi)
    finally:
        plt.close(figure)
