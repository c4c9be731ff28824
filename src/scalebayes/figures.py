"""What the figures draw, computed from a fit; and one call per figure kind that draws it.

:mod:`scalebayes.plots` only draws what it is given. The quantities a plot needs (the bands'
predictions, the isoFLOP curves, residuals, the frontier's allocations) are computed here,
and :func:`draw` does both for one figure kind: this is what ``scalebayes plot``,
``scalebayes report`` and ``scalebayes demo`` use.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from scalebayes import plots
from scalebayes.allocate import Allocation, optimal, require_n_and_d
from scalebayes.errors import ExtrapolationWarning, ScalebayesError
from scalebayes.groups.select import NEW, is_grouped, select_group
from scalebayes.plots._common import check_axis, figure_of
from scalebayes.plots.bands import default_axis
from scalebayes.plots.isoflop import MIN_RUNS, WIDTH_DECADES, data_budgets, runs_at_budget
from scalebayes.prediction import Prediction, log_mean_at, predict
from scalebayes.scoring import PitHistogram, pit_histogram
from scalebayes.summaries import per_draw

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from scalebayes.allocation.verdict import Approaches
    from scalebayes.data import Runs
    from scalebayes.groups.result import GroupedFit
    from scalebayes.plots.frontier import Reference
    from scalebayes.results import Fit

KINDS = (
    "bands", "frontier", "isoflop", "trace", "rank", "pairs", "prior", "residuals", "pit", "forest"
)  # fmt: skip
GROUPED_KINDS = ("forest", "bands", "frontier")
"""Kinds a grouped fit draws for all its groups at once; the others draw one group (``group=``)."""
HELDOUT_KINDS = ("pit",)
"""Kinds that need runs the fit did not see (``heldout=``); the others draw from a fit alone."""
# The frontier is drawn from the smallest run's compute to this many times the largest's.
FRONTIER_REACH = 1e4


def frontier_budgets(
    fit: Fit | GroupedFit, budgets: Sequence[float] | None = None, n: int = 30
) -> np.ndarray:
    """A log grid of budgets, FLOPs: from the runs' smallest compute past the largest (and ``budgets``)."""
    low = float(fit.runs.C.min())
    high = float(fit.runs.C.max()) * FRONTIER_REACH
    if budgets is not None and len(budgets):
        high = max(high, float(np.max(budgets)) * 2)
    return np.geomspace(low, high, n)


def draw(
    fit: Fit | GroupedFit,
    kind: str,
    *,
    budgets: Sequence[float] | None = None,
    references: Sequence[Reference] | None = None,
    allocation: Allocation | None = None,
    others: Mapping[str, Fit] | None = None,
    heldout: Runs | None = None,
    axis: str | None = None,
    seed: int = 0,
    group: str | None = None,
    minima: xr.Dataset | None = None,
    unique_tokens: float | None = None,
) -> Figure:
    """A figure of ``kind`` for ``fit`` (see :data:`KINDS`); the caller saves and closes it.

    Parameters
    ----------
    fit : Fit or GroupedFit
        The posterior.
    kind : str
        ``bands`` (loss against compute with credible and predictive bands), ``frontier``
        (N*, D*, L* against compute), ``isoflop`` (loss against N per budget in the data),
        ``trace``, ``rank``, ``pairs`` (ArviZ), ``prior`` (prior vs posterior), ``residuals``
        or ``pit`` (the PIT histogram of ``heldout`` runs, which it needs; a backtest's
        per-cut PIT: :func:`draw_pit`); for a grouped fit also ``forest`` (each group's
        parameters beside the population's, :func:`forest_table`).
    group : str, optional
        For a grouped fit: draw this group's figure of any kind (``"new"``: a group not yet
        run). Without it, a grouped fit draws ``forest``, ``bands`` (a panel per group) and
        ``frontier`` (a colour per group) of all its groups.
    budgets : sequence of float, optional
        FLOPs: the budgets the ``frontier`` must reach, or the budgets of the ``isoflop``
        curves (default the data's own); no other kind takes budgets.
    references : sequence of Reference, optional
        Published frontiers for ``frontier``; default Hoffmann et al. 2022 and Epoch's refit.
    allocation : Allocation, optional
        A precomputed :func:`scalebayes.optimal`: the ``frontier``'s, over a range of budgets,
        or one that ``isoflop`` takes its curves' budgets from, if it has them all.
    others : mapping of name to Fit, optional
        Fits of other laws whose frontiers ``frontier`` overlays (each law must take N and D).
    heldout : Runs, optional
        Runs the fit did not see (e.g. the largest runs of a backtest): marked on ``bands``,
        scored by ``pit``.
    axis : {"C", "N", "D"}, optional
        Horizontal axis of ``bands``: compute (default for laws of N and D), or N at the runs'
        median D, or D at their median N.
    seed : int
        Seed of the new-run noise in ``bands`` and ``pit``.
    minima : Dataset, optional
        Approach 2's sweep minima for ``isoflop`` (:meth:`IsoflopFit.minima
        <scalebayes.allocation.profiles.IsoflopFit.minima>`), drawn beside the law's N*.
    unique_tokens : float, optional
        For a law of repeated data: the unique tokens its ``frontier`` is drawn at
        (:func:`scalebayes.optimal`'s ``unique_tokens``), named in the legend.
    """
    if kind not in KINDS:
        raise ScalebayesError(f"plot kind {kind!r}: expected one of {', '.join(KINDS)}")
    if others and kind != "frontier":
        raise ScalebayesError(f"other fits are overlaid on the frontier only, not on {kind!r}")
    if unique_tokens is not None and kind != "frontier":
        raise ScalebayesError(f"unique tokens set the frontier only, not {kind!r}")
    if heldout is not None and kind not in ("bands", "pit"):
        raise ScalebayesError(
            f"held-out runs are drawn on the bands and the pit plot only, not on {kind!r}"
        )
    if heldout is None and kind == "pit":
        raise ScalebayesError(
            "the pit plot scores runs the fit did not see: give them (heldout=, --heldout "
            "RUNS), or draw a backtest's (scalebayes backtest ... --plot pit.png)"
        )
    if axis is not None and kind != "bands":
        raise ScalebayesError(f"axis= applies to the bands plot, not to {kind!r}")
    if minima is not None and kind != "isoflop":
        raise ScalebayesError(f"sweep minima are drawn on the isoflop plot, not on {kind!r}")
    if budgets is not None and kind not in ("frontier", "isoflop"):
        raise ScalebayesError(f"budgets apply to the frontier and isoflop plots, not to {kind!r}")
    grouped = is_grouped(fit) and group is None
    if kind == "forest" and not grouped:
        raise ScalebayesError(
            "the forest plot shows a grouped fit's groups side by side (scalebayes.fit_groups, "
            "`scalebayes fit --group`), without group="
        )
    if grouped and kind not in GROUPED_KINDS:
        raise ScalebayesError(
            f"a grouped fit draws {', '.join(GROUPED_KINDS)} for all its groups; for {kind!r} "
            f"name one group (group=, --group NAME): one of {list(fit.groups)} or {NEW!r}"
        )
    if grouped and (
        others or allocation is not None or heldout is not None or unique_tokens is not None
    ):
        raise ScalebayesError(
            "a grouped fit's figures take no other fits, allocation, held-out runs or unique tokens"
        )
    fit = fit if grouped else select_group(fit, group)
    import matplotlib.pyplot as plt

    opened_before = set(plt.get_fignums())
    try:
        if grouped:
            return _grouped_figure(fit, kind, budgets, references, axis, seed)
        return _figure(
            fit, kind, budgets, references, allocation, others, heldout, axis, seed, minima,
            unique_tokens,
        )  # fmt: skip
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
    minima: xr.Dataset | None = None,
    unique_tokens: float | None = None,
) -> Figure:
    if kind == "bands":
        axis = default_axis(fit) if axis is None else axis
        mean, new_run = band_predictions(fit, axis=axis, seed=seed)
        return figure_of(plots.bands(fit, mean, new_run, axis=axis, heldout=heldout))
    if kind == "frontier":
        fits = {fit.law.name: fit, **(others or {})}
        return _frontier_figure(fit, fits, budgets, references, allocation, unique_tokens)
    if kind == "isoflop":
        curves = isoflop_predictions(fit, budgets)
        found = np.unique(curves.points["C"].to_numpy(float))
        chosen = (
            allocation.at(found)
            if allocation is not None and np.isin(found, allocation.budgets).all()
            else optimal(fit, found)
        )
        return figure_of(plots.isoflop(fit, curves, chosen, minima=minima))
    if kind == "prior":
        return figure_of(plots.prior_posterior(fit))
    if kind == "residuals":
        return figure_of(plots.residuals(fit, residual_draws(fit), noise_interval(fit)))
    if kind == "pit":
        assert heldout is not None  # draw() checked
        from scalebayes.holdout import score  # the fitting stack (JAX) loads for this kind only

        rows = score(fit, heldout, seed=seed)
        source = os.path.basename(str(heldout.source))
        histogram = pit_histogram(rows["pit"].to_numpy(), label=f"from {source}")
        return figure_of(plots.pit(histogram, law=fit.law.name))
    return figure_of(getattr(plots, kind)(fit))


def _grouped_figure(
    fit: GroupedFit,
    kind: str,
    budgets: Sequence[float] | None,
    references: Sequence[Reference] | None,
    axis: str | None,
    seed: int,
) -> Figure:
    """Forest, bands (a panel per group) or frontier (a colour per group) of a grouped fit."""
    if kind == "forest":
        shared = [name for name, mode in fit.plan.modes().items() if mode == "shared"]
        if fit.shared_names:
            shared.append(f"the {fit.likelihood.discrepancy.name} discrepancy")
        return figure_of(plots.forest(forest_table(fit), law=fit.law.name, shared=shared))
    fits = {label: fit.for_group(label) for label in fit.groups}
    if kind == "bands":
        axis = default_axis(fit) if axis is None else axis
        panels = {
            f"group {label}": (one, *band_predictions(one, axis=axis, seed=seed))
            for label, one in fits.items()
        }
        return figure_of(plots.bands_panels(panels, axis=axis))
    labelled = {f"group {label}": one for label, one in fits.items()}
    return _frontier_figure(fit, labelled, budgets, references)


def _frontier_figure(
    main: Fit | GroupedFit,
    fits: Mapping[str, Fit],
    budgets: Sequence[float] | None,
    references: Sequence[Reference] | None,
    allocation: Allocation | None = None,
    unique_tokens: float | None = None,
) -> Figure:
    """The frontier of each of ``fits`` over ``main``'s runs.

    The first fit's may be given (``allocation``), or drawn at ``unique_tokens``.
    """
    grid = frontier_budgets(main, budgets)
    with warnings.catch_warnings():
        # The grid reaches past the runs on purpose; the figure shades what lies beyond them.
        warnings.simplefilter("ignore", ExtrapolationWarning)
        first = next(iter(fits))
        if allocation is None and unique_tokens is not None:
            allocation = optimal(fits[first], grid, unique_tokens=unique_tokens)
        given = {} if allocation is None else {first: allocation}
        allocations = {
            name: given[name] if name in given else optimal(one, grid) for name, one in fits.items()
        }
    # A frontier at given unique tokens says so in the legend.
    allocations = {
        name if found.unique_tokens is None else f"{name} (U = {found.unique_tokens:.3g})": found
        for name, found in allocations.items()
    }
    refs = plots.PUBLISHED if references is None else references
    return figure_of(plots.frontier_panels(allocations, runs=main.runs, references=refs))


def forest_table(fit: GroupedFit, prob: float = 0.9) -> pd.DataFrame:
    """Each group's, a new group's and the population's value of every parameter the groups vary.

    Rows per parameter (shared ones are left out): one per group, ``"new group"`` (per draw,
    a value drawn from the population; absent when some parameter is separate) and
    ``"population"`` (absent for a separate parameter). Columns ``parameter``, ``row``,
    ``kind`` (group, new, population), ``median``, ``lower``, ``upper`` (``prob`` interval).
    """
    quantiles = [(1 - prob) / 2, 0.5, (1 + prob) / 2]
    posterior = fit.posterior
    modes = fit.plan.modes()
    new = fit.for_group(NEW).posterior if "separate" not in modes.values() else None
    frames = []
    for name, mode in modes.items():
        if mode == "shared":
            continue
        rows = posterior[f"{name}_group"].quantile(quantiles, dim=("chain", "draw"))
        parts = [(str(g), "group", rows.sel(group=g)) for g in fit.groups]
        if new is not None:
            parts.append(("new group", "new", new[name].quantile(quantiles, dim=("chain", "draw"))))
        if mode == "pooled":
            parts.append(("population", "population",
                          posterior[name].quantile(quantiles, dim=("chain", "draw"))))  # fmt: skip
        for row, kind, q in parts:
            lower, median, upper = (float(v) for v in q.to_numpy())
            frames.append({"parameter": name, "row": row, "kind": kind, "median": median,
                           "lower": lower, "upper": upper})  # fmt: skip
    return pd.DataFrame(frames)


def band_predictions(
    fit: Fit,
    *,
    axis: str = "C",
    at: float | None = None,
    tokens_per_param: float = 20.0,
    n_points: int = 60,
    extend: float = 30.0,
    seed: int = 0,
) -> tuple[Prediction, Prediction]:
    """Credible and predictive loss on a log grid along ``axis``, for :func:`bands`.

    Parameters
    ----------
    fit : Fit
        The posterior.
    axis : {"C", "N", "D"}
        Along compute (at ``D/N = tokens_per_param`` for laws of N and D), along N at fixed
        ``D = at``, or along D at fixed ``N = at``.
    at : float, optional
        The fixed D (tokens) or N (parameters) of an N or D slice; default the runs' median.
    tokens_per_param : float
        D/N along the compute axis (20 is Chinchilla's rule of thumb).
    n_points : int
        Grid points.
    extend : float
        The grid runs from the smallest fitted value to ``extend`` times the largest, so the
        extrapolation the bands are for is shown.
    seed : int
        Seed of the new-run noise draws.

    A law of repeated data (one that reads U) is drawn for fresh data: U = D, no token repeated.

    Returns
    -------
    (Prediction, Prediction)
        ``kind="mean"`` and ``kind="new_run"`` at the same points.
    """
    check_axis(axis)
    if n_points < 2 or not extend >= 1:
        raise ScalebayesError(f"n_points={n_points}, extend={extend}: expected >= 2 and >= 1")
    low, high = float(fit.runs.table[axis].min()), float(fit.runs.table[axis].max())
    x = np.geomspace(low, high * extend, n_points)
    inputs = set(fit.law.inputs)
    k = fit.runs.cost_k
    if axis == "C":
        if {"N", "D"} <= inputs:
            n = np.sqrt(x / (k * tokens_per_param))
            given = {"N": n, "D": tokens_per_param * n}
        elif "C" in inputs:
            given = {"C": x}
        else:
            raise ScalebayesError(
                f"law {fit.law.name!r} takes {', '.join(fit.law.inputs)}, not compute: "
                f"use axis={default_axis(fit)!r}"
            )
    else:
        other = "D" if axis == "N" else "N"
        if axis not in inputs:
            raise ScalebayesError(
                f"law {fit.law.name!r} does not take {axis}: use axis={default_axis(fit)!r}"
            )
        given = {axis: x}
        if other in inputs:
            fixed = float(np.median(fit.runs.table[other])) if at is None else float(at)
            given[other] = np.full_like(x, fixed)
    if "U" in inputs and "D" in given:  # a law of repeated data: drawn for fresh data, U = D
        given["U"] = given["D"]
    mean = predict(fit, **given, kind="mean")
    new_run = predict(fit, **given, kind="new_run", seed=seed)
    return mean, new_run


def isoflop_predictions(
    fit: Fit,
    budgets: Sequence[float] | np.ndarray | None = None,
    *,
    n_points: int = 40,
    margin: float = 1.5,
) -> Prediction:
    """The law's mean loss along N at each budget (``D = C / (k N)``), for :func:`isoflop`.

    Parameters
    ----------
    fit : Fit
        A posterior of a law of N and D.
    budgets : sequence of float, optional
        Training compute, FLOPs; default :func:`data_budgets` of the fit's runs.
    n_points : int
        Points per budget.
    margin : float
        Each curve spans the N of the budget's runs widened by this factor each way (a
        100-fold range around D/N = 20 where the budget has no runs). Just past the runs: by
        3 each way, a sweep's small-N end reached 9x its runs' tokens per parameter, where a
        grouped fit's quadratic on Marin's ladders bent the curves above those of smaller
        budgets, a loss that rises with more tokens no run shows.

    Returns
    -------
    Prediction
        ``kind="mean"``, points ordered by budget then N.
    """
    require_n_and_d(fit.law)
    budgets = data_budgets(fit.runs) if budgets is None else np.asarray(budgets, dtype=float)
    if budgets.size == 0:
        raise ScalebayesError(
            f"no isoFLOP budgets in {fit.runs.source}: no {MIN_RUNS} runs share a compute "
            f"budget (within {WIDTH_DECADES} decades); pass budgets explicitly"
        )
    k = fit.runs.cost_k
    n, c = [], []
    for budget in budgets:
        near = runs_at_budget(fit.runs.table, budget)
        if len(near):
            low, high = near["N"].min() / margin, near["N"].max() * margin
        else:
            centre = np.sqrt(budget / (k * 20.0))
            low, high = centre / 10, centre * 10
        n.append(np.geomspace(low, high, n_points))
        c.append(np.full(n_points, budget))
    return predict(fit, N=np.concatenate(n), C=np.concatenate(c), kind="mean")


def residual_draws(fit: Fit) -> xr.DataArray:
    """Per draw and run, ``log(observed loss) - log(law's mean loss)``; dims (chain, draw, run)."""
    log_mu = log_mean_at(fit, fit.runs.table)  # every input the law reads (U too)
    values = np.log(fit.runs.loss)[None, None, :] - log_mu
    return per_draw(
        values, fit.posterior, dim="run", coord=np.arange(len(fit.runs)), name="residual"
    )


def noise_interval(fit: Fit, prob: float = 0.9) -> xr.DataArray:
    """Per draw, the central ``prob`` interval of the fitted noise on log loss; dims (chain, draw, bound)."""
    from scipy import stats

    sigma = fit.posterior["sigma"].to_numpy()
    q = np.array([(1 - prob) / 2, (1 + prob) / 2])
    if fit.likelihood.family == "normal":
        z = stats.norm.ppf(q)[None, None, :]
    else:
        nu = (
            fit.posterior["nu"].to_numpy()[..., None]
            if fit.likelihood.estimates_nu
            else fit.likelihood.df
        )
        z = stats.t.ppf(q[None, None, :], nu)
    out = per_draw(
        sigma[..., None] * z,
        fit.posterior,
        dim="bound",
        coord=np.array(["lower", "upper"]),
        name="noise",
    )
    out.attrs["prob"] = prob
    return out


def pit_histograms(
    scores: Sequence[pd.DataFrame],
    labels: Sequence[str],
    *,
    bins: int | None = None,
    prob: float = 0.9,
) -> list[PitHistogram]:
    """Per cut, the PIT histogram of its held-out runs (:func:`scalebayes.holdout.score` rows)."""
    return [
        pit_histogram(rows["pit"].to_numpy(), bins=bins, prob=prob, label=str(label))
        for rows, label in zip(scores, labels, strict=True)
    ]


def draw_approaches(fit: Fit, result: Approaches, *, prob: float = 0.9) -> Figure:
    """Every approach's N* and D* bands against compute, overlaid; the caller saves and closes it.

    ``result`` is :func:`scalebayes.compare_approaches` at the decision budgets; the bands
    run from the runs' smallest compute past the largest budget (:func:`frontier_budgets`),
    from the same posteriors, and the figure's title carries each pair's verdict at those budgets.
    """
    import textwrap

    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)  # past the runs on purpose
        grid = result.over(fit, frontier_budgets(fit, result.budgets))
    figure, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    for ax, quantity in zip(axes, ("N", "D"), strict=True):
        plots.approaches(grid, quantity=quantity, ax=ax, runs=fit.runs, prob=prob)
    if axes[0].get_legend() is not None:  # the same entries twice: keep the right panel's
        axes[0].get_legend().remove()
    # One title for both panels: with four approaches the six verdicts outgrow a panel's width.
    verdicts = axes[0].get_title()
    for ax in axes:
        ax.set_title("")
    figure.suptitle(textwrap.fill(verdicts, 110), fontsize="small")
    return figure


def draw_pit(
    law: str,
    scores: Sequence[pd.DataFrame],
    labels: Sequence[str],
    *,
    bins: int | None = None,
    prob: float = 0.9,
) -> Figure:
    """A backtest's (or leave-future-out's) PIT histograms, one panel per cut; caller saves it.

    ``scores`` and ``labels`` as :class:`scalebayes.backtesting.Backtest` holds them
    (``backtest.scores``, ``backtest.table["held_out"]``); ``bins`` default: about five runs a
    bin; ``prob``: the uniform band's probability.
    """
    if not scores:
        raise ScalebayesError("no held-out scores to draw")
    return figure_of(
        plots.pit_panels(pit_histograms(scores, labels, bins=bins, prob=prob), law=law)
    )
