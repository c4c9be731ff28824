"""IsoFLOP curves: at each training budget, loss against N, with the posterior of the best N.

:func:`data_budgets` finds the budgets of a table of runs, :func:`isoflop_predictions` computes
the curves; :func:`isoflop` draws them with an :class:`~scalebayes.allocate.Allocation` at the
same budgets (the minimising N, per draw).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.plots._common import (
    AXIS_LABELS,
    LOSS_LABEL,
    interval_bounds,
    log_ticks,
    new_axes,
    place_legend,
    plain_loss_ticks,
    wrapped_title,
)
from scalebayes.summaries import summarise

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes

    from scalebayes.allocate import Allocation
    from scalebayes.data import Runs
    from scalebayes.prediction import Prediction
    from scalebayes.results import Fit

# Runs within +-WIDTH/2 decades of a budget's compute belong to it: digitised sweeps (Epoch's
# Chinchilla data) scatter by up to ~0.1 decade around their nominal budget.
WIDTH_DECADES = 0.2
MIN_RUNS = 4


def data_budgets(
    runs: Runs, *, width: float = WIDTH_DECADES, min_runs: int = MIN_RUNS
) -> np.ndarray:
    """The isoFLOP budgets of a table of runs, FLOPs, ascending.

    Runs are grouped greedily in order of compute: a group spans at most ``width`` decades;
    groups of at least ``min_runs`` runs are budgets (their geometric-mean compute).
    """
    log_c = np.sort(np.log10(runs.C))
    budgets, start = [], 0
    for i in range(1, len(log_c) + 1):
        if i == len(log_c) or log_c[i] - log_c[start] > width:
            if i - start >= min_runs:
                budgets.append(10 ** np.mean(log_c[start:i]))
            start = i
    return np.asarray(budgets)


def runs_at_budget(
    table: pd.DataFrame, budget: float, *, width: float = WIDTH_DECADES
) -> pd.DataFrame:
    """Rows of ``table`` whose compute is within ``width / 2`` decades of ``budget``."""
    return table[np.abs(np.log10(table["C"].to_numpy(float) / budget)) <= width / 2]


def isoflop(
    fit: Fit,
    curves: Prediction,
    allocation: Allocation,
    *,
    ax: Axes | None = None,
    prob: float = 0.9,
    width: float = WIDTH_DECADES,
    minima: xr.Dataset | None = None,
) -> Axes:
    """Loss against N at each budget: runs, the law's median and band, and the best N.

    Parameters
    ----------
    fit : Fit
        The posterior whose runs are drawn (those within ``width / 2`` decades of a budget).
    curves : Prediction
        Loss along N at fixed compute, from :func:`isoflop_predictions`.
    allocation : Allocation
        :func:`scalebayes.optimal` at the same budgets: the marker is at the median N*, its
        horizontal bar the ``prob`` interval of N*, and its height the median loss there of the
        model the curves draw (with a GP discrepancy, the law's L* plus the GP's term, so that
        the star sits on its curve; :func:`scalebayes.allocate.whole_model_loss`).
    ax : Axes, optional
        Where to draw; a new figure if None.
    prob : float
        Interval probability of the bands and of N*.
    width : float
        Decades of compute a budget's runs may spread over.
    minima : Dataset, optional
        Approach 2's sweep minima (:meth:`~scalebayes.allocation.profiles.IsoflopFit.minima`,
        ``N`` and ``loss`` with dims chain, draw, budget): a white diamond at each sweep's
        median N* and L* with its ``prob`` interval of N*, on the plotted budget within
        ``width / 2`` decades (gid ``"minimum C=..."``).

    Returns
    -------
    Axes
        One band (gid ``"band C=..."``), line and marker per budget, log-log axes.
    """
    import matplotlib as mpl

    from scalebayes.allocate import whole_model_loss

    points = curves.points
    budgets = np.unique(points["C"].to_numpy(float))
    table = curves.summary(probs=(prob,))
    optimum_n = summarise(allocation.N, probs=(prob,))
    # The curves are the whole model's mean (predict adds a GP's term); the law's own L* would
    # float off them by the GP's mean at N* (0.05 nats on Marin's DCLM sweeps).
    whole = whole_model_loss(fit, allocation)
    optimum_loss = summarise(allocation.loss if whole is None else whole, probs=(prob,))
    norm = mpl.colors.LogNorm(budgets.min(), budgets.max() * 1.0001)
    cmap = mpl.colormaps["viridis"]

    ax = new_axes(ax, figsize=(8.8, 4.8))
    for budget in budgets:
        color = cmap(norm(budget))
        rows = np.flatnonzero(np.isclose(points["C"].to_numpy(float), budget, rtol=1e-9))
        rows = rows[np.argsort(points["N"].to_numpy(float)[rows])]
        n = points["N"].to_numpy(float)[rows]
        low, high = interval_bounds(table.iloc[rows], prob)
        band = ax.fill_between(n, low, high, color=color, alpha=0.25, lw=0)
        band.set_gid(f"band C={budget:.3g}")
        ax.plot(
            n,
            table["median"].to_numpy(float)[rows],
            color=color,
            lw=1.4,
            label=f"{budget:.2g} FLOPs",
        )
        near = runs_at_budget(fit.runs.table, budget, width=width)
        runs = ax.scatter(
            near["N"], near["loss"], color=color, s=14, zorder=4, edgecolors="0.2", linewidths=0.3
        )
        runs.set_gid(f"runs C={budget:.3g}")
        match = np.flatnonzero(np.isclose(allocation.budgets, budget, rtol=1e-9))
        if match.size:
            i = int(match[0])
            n_low, n_high = interval_bounds(optimum_n.iloc[[i]], prob)
            median = float(optimum_n["median"].iloc[i])
            marker = ax.errorbar(
                median,
                float(optimum_loss["median"].iloc[i]),
                xerr=[[median - n_low[0]], [n_high[0] - median]],
                fmt="*",
                ms=10,
                color=color,
                mec="black",
                mew=0.6,
                ecolor="black",
                elinewidth=1.0,
                capsize=3,
                zorder=6,
            )
            marker[0].set_gid(f"optimum C={budget:.3g}")
        if minima is not None:
            _sweep_minimum(ax, minima, budget, color, prob, width)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(AXIS_LABELS["N"])
    ax.set_ylabel(LOSS_LABEL)
    log_ticks(ax, "x")
    plain_loss_ticks(ax)
    model = "law's" if whole is None else f"law's + {fit.likelihood.discrepancy.name} discrepancy's"
    wrapped_title(
        ax,
        f"{fit.law.name}: isoFLOP curves at fixed compute, the {model} median and {prob:.0%} "
        f"credible band (the mean loss: single runs add noise around it)\nstar: median N* "
        f"(the law's) with its {prob:.0%} interval"
        + (
            f"; diamond: approach 2's minimum of the sweep, with its {prob:.0%} interval"
            if minima is not None
            else ""
        ),
        width=80,
    )
    place_legend(
        ax,
        fontsize="x-small",
        ncols=1 if len(budgets) <= 12 else 2,
        title="budget (training compute)",
        title_fontsize="x-small",
    )
    return ax


def _sweep_minimum(
    ax: Axes, minima: xr.Dataset, budget: float, color: Any, prob: float, width: float
) -> None:
    """Approach 2's minimum of the sweep at ``budget`` (if one is within ``width / 2`` decades)."""
    sweeps = np.asarray(minima["budget"], float)
    gap = np.abs(np.log10(sweeps / budget))
    if not sweeps.size or gap.min() > width / 2:
        return
    one = minima.isel(budget=int(np.argmin(gap)))
    n = one["N"].to_numpy().ravel()
    low, median, high = np.quantile(n, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
    marker = ax.errorbar(
        median,
        float(np.median(one["loss"].to_numpy())),
        xerr=[[median - low], [high - median]],
        fmt="D",
        ms=6,
        mfc="white",
        mec=color,
        mew=1.4,
        ecolor=color,
        elinewidth=1.0,
        capsize=2,
        zorder=7,
    )
    marker[0].set_gid(f"minimum C={budget:.3g}")
