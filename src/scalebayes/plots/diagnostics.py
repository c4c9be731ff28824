"""Sampler and model checks: trace, rank, pairs, residuals, comparison.

Trace, rank, pair and comparison plots are arviz-plots'; residuals are drawn against compute
with the fitted noise band. Prior against posterior: :mod:`scalebayes.plots.prior`.

The ArviZ plots return a :class:`arviz_plots.PlotCollection` (its figure is
``pc.viz["figure"].item()``, or use :func:`scalebayes.plots.figure_of`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from scalebayes.plots._common import (
    AXIS_LABELS,
    OBSERVED_STYLE,
    PREDICTIVE_COLOR,
    figure_of,
    log_ticks,
    new_axes,
    place_legend,
)
from scalebayes.summaries import SAMPLE_DIMS, summarise

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scalebayes.comparison import Comparison
    from scalebayes.results import Fit

RANK_DRAWS = 100  # per chain, after thinning, in the rank plot
RESIDUAL_LABEL = "residual: log(observed / law's loss) (dimensionless)"


def sampled_names(fit: Fit) -> list[str]:
    """Parameters NUTS sampled: the law's (less those pinned by a Delta prior) and the noise's."""
    pinned = set(fit.law.param_names) - set(fit.law.free_param_names)
    return [name for name in fit.reported_names if name not in pinned]


def trace(fit: Fit, **kwargs: Any) -> Any:
    """Trace and marginal density per chain of every sampled parameter (``arviz_plots.plot_trace_dist``).

    Extra keyword arguments go to ArviZ. Returns the PlotCollection.
    """
    import arviz_plots as azp
    from matplotlib.ticker import MaxNLocator

    pc = azp.plot_trace_dist(
        fit.idata, var_names=sampled_names(fit), backend="matplotlib", **kwargs
    )
    figure = figure_of(pc)
    for ax in figure.axes:
        ax.tick_params(labelsize="small")
        # five ticks at most: 0.00325-style labels run into each other at ArviZ's default
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    figure.set_layout_engine("constrained")
    return pc


def rank(fit: Fit, **kwargs: Any) -> Any:
    """Rank ECDF of each chain against the uniform, inside its envelope (``arviz_plots.plot_rank``).

    Drawn as ArviZ's Δ-ECDF with its ``envelope_prob`` simultaneous envelope (default 95%),
    after thinning each chain to at most :data:`RANK_DRAWS` draws: chains that mix stay inside.
    The envelope is a picture, not the verdict: each title carries the parameter's R-hat and
    bulk ESS and whether they pass the thresholds of the diagnostics line (R-hat <= 1.01,
    ESS >= 100 per chain), the one rule the fit's ``[ok]``/``[CHECK]`` uses. (ArviZ's default
    multi-chain test is not drawn: on 4000 draws it flags chains R-hat calls mixed.) Extra
    keyword arguments go to ArviZ. Returns the PlotCollection.
    """
    import arviz_plots as azp

    from scalebayes.health import ESS_PER_CHAIN_MIN, RHAT_MAX

    names = sampled_names(fit)
    cols = min(len(names), 4)
    rows = -(-len(names) // cols)
    kwargs.setdefault("figure_kwargs", {"figsize": (3.4 * cols, 2.7 * rows)})
    kwargs.setdefault("method", "envelope")
    # The envelope is simulated: 1000 simulations of 500 draws take 15 s, of 100 draws 500
    # take under 2 s. So each chain is thinned to at most 100 draws (nearly independent, too).
    factor = max(1, -(-int(fit.posterior.sizes["draw"]) // RANK_DRAWS))
    kwargs.setdefault("stats", {"thin": {"factor": factor}, "ecdf_pit": {"n_simulations": 500}})
    pc = azp.plot_rank(fit.idata, var_names=names, backend="matplotlib", **kwargs)
    table = fit.summary()
    for name in names:
        r_hat, ess = float(table.loc[name, "r_hat"]), float(table.loc[name, "ess_bulk"])
        passes = r_hat <= RHAT_MAX and ess >= ESS_PER_CHAIN_MIN * fit.settings.chains
        ax = pc.viz["plot"][name].item()
        ax.set_title(
            f"{name}: R-hat {r_hat:.3f}, ESS {ess:.0f} [{'ok' if passes else 'CHECK'}]",
            fontsize="small",
        )
        ax.set_ylabel("ECDF - uniform", fontsize="small")
        ax.tick_params(labelsize="x-small")
    figure = figure_of(pc)
    figure.set_layout_engine("constrained")
    return pc


def pairs(fit: Fit, **kwargs: Any) -> Any:
    """Pairwise scatter of the parameters with marginals (``arviz_plots.plot_pair``).

    The exponents and coefficients of a law are correlated; this shows how. Divergent
    transitions, if any, are marked by ArviZ. Returns the PlotCollection.
    """
    import arviz_base as azb
    import arviz_plots as azp
    from matplotlib.ticker import MaxNLocator

    names = sampled_names(fit)
    # Square, 1.7 inches a panel: ArviZ's default squeezes 8 parameters into a wide strip.
    side = max(5.0, 1.7 * len(names) + 0.8)
    kwargs.setdefault("figure_kwargs", {"figsize": (side, side)})
    kwargs.setdefault("visuals", {"scatter": {"alpha": 0.25}})
    # ArviZ refuses more than 40 panels by default; a 7-parameter law plus sigma needs 64.
    with azb.rc_context({"plot.max_subplots": max(40, len(names) ** 2)}):
        pc = azp.plot_pair(fit.idata, var_names=names, backend="matplotlib", **kwargs)
    figure = figure_of(pc)
    for ax in figure.axes:
        ax.tick_params(labelsize="x-small")
        # at most four ticks a panel, so 0.0035-style labels do not run into each other
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.label.set_fontsize("small")
        ax.yaxis.label.set_fontsize("small")
        spec = ax.get_subplotspec()
        if spec is None:
            continue
        row, col = spec.rowspan.start, spec.colspan.start
        if row == col:  # a marginal density: its scale means nothing to a reader
            ax.set_yticks([])
        elif col > 0:  # a row's panels share its parameter's range: labelled once, at the left
            ax.tick_params(labelleft=False)
    figure.set_layout_engine("constrained")
    return pc


def comparison(result: Comparison, **kwargs: Any) -> Any:
    """Elpd difference to the best law with its standard error (``arviz_plots.plot_compare``).

    Returns the PlotCollection; the title names the method and the stacking weights.
    """
    import arviz_plots as azp

    pc = azp.plot_compare(result.table, backend="matplotlib", **kwargs)
    ax = pc.viz["plot"].item()
    weights = ", ".join(f"{name} {w:.2f}" for name, w in result.weights.items())
    ax.set_title(
        f"{result.method.upper()}: elpd difference to the best law\nstacking weights: {weights}",
        fontsize="medium",
    )
    return pc


def residuals(
    fit: Fit,
    residual: xr.DataArray,
    noise: xr.DataArray,
    *,
    ax: Axes | None = None,
    prob: float = 0.9,
) -> Axes:
    """Residual log loss of each run against compute, with the fitted noise band.

    The y axis spans the runs within :func:`residual_limits` (robust fences); runs beyond it
    are drawn as red triangles at its edge (gids ``"outliers above"``, ``"outliers below"``),
    their count and the farthest value in the legend, so a few runs far off (Epoch's +0.3)
    do not squash the rest into a line.

    Parameters
    ----------
    fit : Fit
        The posterior whose runs the residuals belong to.
    residual : DataArray, dims (chain, draw, run)
        From :func:`residual_draws`; each point is its median, the bar its ``prob`` interval.
    noise : DataArray, dims (chain, draw, bound)
        From :func:`noise_interval`; the band is the median over draws of each bound.
        About ``prob`` of the runs should fall inside it; a trend against compute means
        the law misses the shape of the data.
    ax : Axes, optional
        Where to draw; a new figure if None.
    prob : float
        Interval probability of the bars.
    """
    table = summarise(residual, probs=(prob,))
    low, high = (table[f"eti{prob * 100:g}_{b}"].to_numpy() for b in ("lb", "ub"))
    median = table["median"].to_numpy()
    band = noise.median(dim=SAMPLE_DIMS)
    lower, upper = float(band.sel(bound="lower")), float(band.sel(bound="upper"))
    ax = new_axes(ax, figsize=(8.2, 4.4))
    span = ax.axhspan(
        lower, upper, color=PREDICTIVE_COLOR, alpha=0.25, lw=0, label="noise band (new run)"
    )
    span.set_gid("noise band")
    ax.axhline(0.0, color="0.3", lw=0.8)
    bottom, top = residual_limits(median, (lower, upper))
    shown = (median >= bottom) & (median <= top)
    # the runs drawn show their whole interval bars
    bottom, top = min(bottom, float(low[shown].min())), max(top, float(high[shown].max()))
    c = fit.runs.C
    ax.errorbar(
        c[shown],
        median[shown],
        yerr=[median[shown] - low[shown], high[shown] - median[shown]],
        fmt="none",
        ecolor="0.6",
        elinewidth=0.6,
        zorder=3,
    )
    points = ax.scatter(
        c[shown],
        median[shown],
        **OBSERVED_STYLE,
        label=f"runs ({int(shown.sum())}): median, {prob:.0%} interval",
    )
    points.set_gid("observed")
    pad = 0.06 * (top - bottom)
    for side, beyond, edge, marker in (
        ("above", median > top, top + pad / 2, "^"),
        ("below", median < bottom, bottom - pad / 2, "v"),
    ):
        if beyond.any():
            worst = median[beyond].max() if side == "above" else median[beyond].min()
            clipped = ax.scatter(
                c[beyond],
                np.full(int(beyond.sum()), edge),
                marker=marker,
                color="tab:red",
                s=30,
                zorder=6,
                clip_on=False,
                label=f"{_runs(beyond.sum())} {side} the axis (to {worst:+.3g})",
            )
            clipped.set_gid(f"outliers {side}")
    ax.set_ylim(bottom - pad, top + pad)
    inside = float(np.mean((median >= lower) & (median <= upper)))
    ax.set_xscale("log")
    log_ticks(ax, "x")
    ax.set_xlabel(AXIS_LABELS["C"])
    ax.set_ylabel(RESIDUAL_LABEL)
    ax.set_title(
        f"{fit.law.name}: residuals; {inside:.0%} of runs inside the {_percent(noise)} noise band",
        fontsize="medium",
    )
    place_legend(ax)
    return ax


def residual_limits(
    values: np.ndarray, band: tuple[float, float], *, fence: float = 3.0
) -> tuple[float, float]:
    """Robust limits of a residual axis: the values within ``fence`` IQRs of their quartiles.

    Tukey's far-out fences, widened to hold the noise ``band`` and zero; values beyond them
    are outliers, drawn at the axis edge, so a few runs 0.3 off do not squash the rest
    (Epoch's Chinchilla data) into a line.
    """
    q1, q3 = np.quantile(values, [0.25, 0.75])
    iqr = max(q3 - q1, band[1] - band[0], 1e-12)
    inner = values[(values >= q1 - fence * iqr) & (values <= q3 + fence * iqr)]
    return (
        float(min(inner.min(), band[0], 0.0)),
        float(max(inner.max(), band[1], 0.0)),
    )


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _percent(noise: xr.DataArray) -> str:
    prob = noise.attrs.get("prob")
    return f"{prob:.0%}" if prob is not None else "fitted"
