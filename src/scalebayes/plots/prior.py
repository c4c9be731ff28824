"""Prior against posterior, one panel per sampled parameter, each on its parameter's support.

A posterior that hugs its prior means the data said little about that parameter; one far
narrower than its prior (the usual case) stands over a nearly flat dashed line. Each panel
spans the prior's central 99% as well as the posterior (but at most 8 posterior widths beyond
it, so the posterior's shape stays visible; a note gives the prior's range when it is wider). The prior density comes from the prior's ``log_prob`` (nothing is sampled); the
posterior's is a Gaussian KDE of the draws, evaluated over the whole panel, so it falls off
smoothly instead of stopping at the extreme draws.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from scalebayes.errors import ScalebayesError
from scalebayes.plots.diagnostics import sampled_names

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scalebayes.results import Fit

PRIOR_MASS = 0.99  # the prior's central interval a panel spans
REACH = 8.0  # ... but at most this many posterior widths beyond the posterior


def prior_distributions(fit: Fit, names: Sequence[str]) -> dict[str, Any]:
    """The NumPyro prior of each named parameter (law, noise, discrepancy) as the fit used it."""
    priors = {name: p.prior for name, p in fit.law.params.items()}
    # Discrepancy coefficients drawn as scale * Normal(0, 1) have no prior of their own to draw.
    priors.update(fit.likelihood.priors())
    return {name: priors[name].to_numpyro() for name in names if name in priors}


def prior_posterior(fit: Fit, *, axes: Sequence[Axes] | None = None) -> np.ndarray:
    """Per parameter, the prior density (dashed) and the posterior's density (filled).

    Parameters whose prior is positive are drawn as densities of ``log10(parameter)``, so a
    prior spanning decades and a posterior a few percent wide share one axis; others (e.g. a
    Normal prior) on their own scale. On a new figure the legend sits below the panels.
    Returns the Axes, one per sampled parameter; each prior line has gid ``"prior {name}"``,
    each posterior's outline ``"posterior {name}"``.
    """
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
        created = True
    else:
        created = False
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != len(names):
        raise ScalebayesError(f"prior_posterior: expected {len(names)} axes, got {axes.size}")
    posterior = fit.posterior
    for ax, name in zip(axes, names, strict=True):
        draws = posterior[name].to_numpy().ravel()
        # log10 scale where the prior's support is positive (checked at -1) and so are the draws
        on_log = not bool(priors[name].support(-1.0)) and float(draws.min()) > 0
        shown = np.log10(draws) if on_log else draws
        x, prior, note = prior_on_support(priors[name], shown, on_log=on_log)
        density = _kde(shown, x)
        ax.fill_between(x, density, color="tab:blue", alpha=0.35, lw=0, label="posterior")
        (outline,) = ax.plot(x, density, color="tab:blue", lw=1.0)
        outline.set_gid(f"posterior {name}")
        (line,) = ax.plot(x, prior, color="0.2", ls="--", lw=1.2, label="prior")
        line.set_gid(f"prior {name}")
        ax.set_xlim(x[0], x[-1])
        ax.set_xlabel(("log10 " if on_log else "") + name + _units(fit, name))
        ax.set_ylabel("density")
        ax.set_ylim(0.0, 1.12 * max(float(np.max(density)), float(np.nanmax(prior))))
        ax.set_title(name, fontsize="medium")
        if note:
            ax.text(
                0.02, 0.97, note, transform=ax.transAxes, fontsize="x-small", va="top", color="0.3"
            )
    if created:  # one legend for the panels, below them: never over a density
        handles, labels = axes[0].get_legend_handles_labels()
        axes[0].get_figure().legend(handles, labels, loc="outside lower center", ncols=2)
    else:
        axes[0].legend(fontsize="small", loc="best")
    return axes


def prior_on_support(
    prior: Any, shown: np.ndarray, *, on_log: bool, points: int = 400
) -> tuple[np.ndarray, np.ndarray, str]:
    """A panel's grid, the prior's density on it, and a note if the prior reaches beyond it.

    ``shown`` are the posterior draws on the panel's scale (``log10`` of the parameter when
    ``on_log``). The grid spans the prior's central :data:`PRIOR_MASS` and the posterior's
    99.5% range plus one width each side, at most :data:`REACH` widths beyond the posterior.
    """
    low, high = np.quantile(shown, [0.0025, 0.9975])
    width = max(high - low, 1e-9 * max(1.0, abs(float(high))))
    wide = _search_grid(prior, shown, low, high, width, on_log)
    mass = _density(prior, wide, on_log)
    cdf = np.concatenate([[0.0], np.cumsum((mass[1:] + mass[:-1]) / 2 * np.diff(wide))])
    if cdf[-1] > 0 and np.isfinite(cdf[-1]):
        cdf /= cdf[-1]
        tail = (1 - PRIOR_MASS) / 2
        p_low = float(wide[np.searchsorted(cdf, tail)])
        p_high = float(wide[min(np.searchsorted(cdf, 1 - tail), wide.size - 1)])
    else:  # no density found (a prior far from its draws): the posterior alone
        p_low, p_high = low, high
    left = max(min(p_low, low - width), low - REACH * width)
    right = min(max(p_high, high + width), high + REACH * width)
    grid = np.linspace(left, right, points)
    note = ""
    if p_low < left or p_high > right:
        scale = "log10 " if on_log else ""
        note = f"prior's {PRIOR_MASS:.0%}: {scale}{p_low:.3g} to {p_high:.3g}"
    return grid, _density(prior, grid, on_log), note


def _search_grid(
    prior: Any, shown: np.ndarray, low: float, high: float, width: float, on_log: bool
) -> np.ndarray:
    """Where to look for the prior's mass: 12 decades around the posterior, or 10 prior sds."""
    centre = float(np.median(shown))
    if on_log:
        return np.linspace(centre - 12.0, centre + 12.0, 6001)
    try:
        mean, sd = float(prior.mean), float(np.sqrt(prior.variance))
    except (NotImplementedError, TypeError, ValueError):
        mean, sd = np.nan, np.nan
    if np.isfinite(mean) and np.isfinite(sd) and sd > 0:
        return np.linspace(
            min(mean - 10 * sd, low - width), max(mean + 10 * sd, high + width), 6001
        )
    return np.linspace(centre - 200 * width, centre + 200 * width, 6001)


@functools.cache
def _support_and_log_prob() -> Any:
    """``(support(value), log_prob(value))`` of a NumPyro distribution as one compiled program.

    Op by op, each of a density's array operations compiled on its own for each grid shape:
    34 small compiles for a report's prior panels, against one program per family and shape.
    """
    import jax

    return jax.jit(lambda prior, value: (prior.support(value), prior.log_prob(value)))


def _density(prior: Any, x: np.ndarray, on_log: bool) -> np.ndarray:
    """The prior's density at ``x`` on the panel's scale (of log10 theta when ``on_log``); 0 off its support."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = 10.0**x if on_log else x
        inside, log_prob = _support_and_log_prob()(prior, value)
        inside = np.asarray(inside, dtype=bool)
        density = np.exp(np.asarray(log_prob, dtype=float))
        if on_log:  # density of log10(theta) = p(theta) * theta * ln(10)
            density = density * value * np.log(10)
    return np.nan_to_num(np.where(inside, density, 0.0), nan=0.0, posinf=0.0, neginf=0.0)


def _kde(draws: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gaussian KDE of ``draws`` at ``x`` (Scott's bandwidth); a narrow spike if they are all equal."""
    from scipy.stats import gaussian_kde

    if np.ptp(draws) == 0:
        bandwidth = (x[-1] - x[0]) / 200
        return np.exp(-0.5 * ((x - draws[0]) / bandwidth) ** 2) / (bandwidth * np.sqrt(2 * np.pi))
    return gaussian_kde(draws)(x)


def _units(fit: Fit, name: str) -> str:
    units = (
        fit.law.params[name].units
        if name in fit.law.params
        else "log loss"
        if name in ("sigma", "sigma_law", "gp_amplitude")
        else ""
    )
    return f" ({units})" if units else ""
