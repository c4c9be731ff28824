"""Sampler and model checks: trace, rank, pairs, prior vs posterior, residuals, comparison.

Trace, rank, pair and comparison plots are arviz-plots'; residuals are drawn against compute
with the fitted noise band.

The ArviZ plots return a :class:`arviz_plots.PlotCollection` (its figure is
``pc.viz["figure"].item()``, or use :func:`scalebayes.plots.figure_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from scalebayes.errors import ScalebayesError
from scalebayes.plots._common import AXIS_LABELS, OBSERVED_STYLE, PREDICTIVE_COLOR, new_axes
from scalebayes.summaries import SAMPLE_DIMS, summarise

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scalebayes.comparison import Comparison
    from scalebayes.results import Fit

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

    return azp.plot_trace_dist(
        fit.idata, var_names=sampled_names(fit), backend="matplotlib", **kwargs
    )


def rank(fit: Fit, **kwargs: Any) -> Any:
    """Rank ECDF plot per parameter with its simultaneous envelope (``arviz_plots.plot_rank``).

    Chains that mix stay inside the envelope. Returns the PlotCollection.
    """
    import arviz_plots as azp

    return azp.plot_rank(fit.idata, var_names=sampled_names(fit), backend="matplotlib", **kwargs)


def pairs(fit: Fit, **kwargs: Any) -> Any:
    """Pairwise scatter of the parameters with marginals (``arviz_plots.plot_pair``).

    The exponents and coefficients of a law are correlated; this shows how. Divergent
    transitions, if any, are marked by ArviZ. Returns the PlotCollection.
    """
    import arviz_base as azb
    import arviz_plots as azp

    names = sampled_names(fit)
    # ArviZ refuses more than 40 panels by default; a 7-parameter law plus sigma needs 64.
    with azb.rc_context({"plot.max_subplots": max(40, len(names) ** 2)}):
        return azp.plot_pair(fit.idata, var_names=names, backend="matplotlib", **kwargs)


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


def prior_distributions(fit: Fit, names: Sequence[str]) -> dict[str, Any]:
    """The NumPyro prior of each named parameter (law, noise, discrepancy) as the fit used it."""
    priors = {name: p.prior for name, p in fit.law.params.items()}
    # Discrepancy coefficients drawn as scale * Normal(0, 1) have no prior of their own to draw.
    priors.update(fit.likelihood.priors())
    return {name: priors[name].to_numpyro() for name in names if name in priors}


def prior_posterior(fit: Fit, *, axes: Sequence[Axes] | None = None) -> np.ndarray:
    """Per parameter, the prior density (dashed) and the posterior's KDE (filled).

    Parameters whose prior is positive are drawn as densities of ``log10(parameter)``, so a
    prior spanning decades and a posterior a few percent wide share one axis; others (e.g. a
    Normal prior) on their own scale. A posterior that hugs its prior means the data said
    little about that parameter. The prior density comes from the prior's ``log_prob``
    (nothing is sampled). Returns the Axes, one per sampled parameter.
    """
    import arviz_stats as azs

    priors = prior_distributions(fit, sampled_names(fit))
    names = list(priors)
    if axes is None:
        import matplotlib.pyplot as plt

        cols = min(len(names), 3)
        rows = -(-len(names) // cols)
        _, grid = plt.subplots(
            rows, cols, figsize=(4.2 * cols, 2.8 * rows), layout="constrained", squeeze=False
        )
        for extra in grid.ravel()[len(names) :]:
            extra.set_visible(False)
        axes = grid.ravel()[: len(names)]
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != len(names):
        raise ScalebayesError(f"prior_posterior: expected {len(names)} axes, got {axes.size}")
    posterior = fit.posterior
    # log10 scale where the prior's support is positive (checked at -1) and so are the draws
    on_log = {
        name: not bool(priors[name].support(-1.0)) and float(posterior[name].min()) > 0
        for name in names
    }
    shown = xr.Dataset(
        {name: np.log10(posterior[name]) if on_log[name] else posterior[name] for name in names}
    )
    kde = azs.kde(shown, dim=list(SAMPLE_DIMS))
    for ax, name in zip(axes, names, strict=True):
        x = kde[name].sel(plot_axis="x").to_numpy()
        y = kde[name].sel(plot_axis="y").to_numpy()
        width = x.max() - x.min()
        # Twice the posterior's width on each side, so the prior's slope there shows too.
        grid = np.linspace(x.min() - 2 * width, x.max() + 2 * width, 200)
        if on_log[name]:
            value = 10**grid
            # density of log10(theta) = p(theta) * theta * ln(10)
            prior = np.exp(np.asarray(priors[name].log_prob(value))) * value * np.log(10)
        else:
            prior = np.exp(np.asarray(priors[name].log_prob(grid)))
        ax.fill_between(x, y, color="tab:blue", alpha=0.35, lw=0, label="posterior")
        (line,) = ax.plot(grid, prior, color="0.2", ls="--", lw=1.2, label="prior")
        line.set_gid(f"prior {name}")
        ax.set_xlabel(("log10 " if on_log[name] else "") + name + _units(fit, name))
        ax.set_ylabel("density")
        ax.set_yscale("log")
        top = max(y.max(), np.nanmax(prior))
        ax.set_ylim(top * 1e-4, top * 3)
        ax.set_title(name, fontsize="medium")
    axes[0].legend(fontsize="small")
    return axes


def residuals(
    fit: Fit,
    residual: xr.DataArray,
    noise: xr.DataArray,
    *,
    ax: Axes | None = None,
    prob: float = 0.9,
) -> Axes:
    """Residual log loss of each run against compute, with the fitted noise band.

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
    ax = new_axes(ax)
    span = ax.axhspan(
        float(band.sel(bound="lower")),
        float(band.sel(bound="upper")),
        color=PREDICTIVE_COLOR,
        alpha=0.25,
        lw=0,
        label="noise band (new run)",
    )
    span.set_gid("noise band")
    ax.axhline(0.0, color="0.3", lw=0.8)
    c = fit.runs.C
    ax.errorbar(
        c,
        median,
        yerr=[median - low, high - median],
        fmt="none",
        ecolor="0.6",
        elinewidth=0.6,
        zorder=3,
    )
    points = ax.scatter(
        c, median, **OBSERVED_STYLE, label=f"runs ({len(c)}): median, {prob:.0%} interval"
    )
    points.set_gid("observed")
    inside = float(
        np.mean(
            (median >= float(band.sel(bound="lower"))) & (median <= float(band.sel(bound="upper")))
        )
    )
    ax.set_xscale("log")
    ax.set_xlabel(AXIS_LABELS["C"])
    ax.set_ylabel(RESIDUAL_LABEL)
    ax.set_title(
        f"{fit.law.name}: residuals; {inside:.0%} of runs inside the {_percent(noise)} noise band",
        fontsize="medium",
    )
    ax.legend(fontsize="small")
    return ax


def _percent(noise: xr.DataArray) -> str:
    prob = noise.attrs.get("prob")
    return f"{prob:.0%}" if prob is not None else "fitted"


def _units(fit: Fit, name: str) -> str:
    units = (
        fit.law.params[name].units
        if name in fit.law.params
        else "log loss"
        if name in ("sigma", "sigma_law", "gp_amplitude")
        else ""
    )
    return f" ({units})" if units else ""
