"""Plots are checked on the objects they draw (scales, labels, bands, points), never on pixels.

Fits come from known draws (scalebayes.testing.fit_from_draws), so no test here runs NUTS.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection

from scalebayes import figures, plots
from scalebayes.errors import ScalebayesError
from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate
from scalebayes.testing import fit_from_draws, jittered_draws

BUDGETS = (1e19, 1e20, 1e21)
PER_BUDGET = 5


@pytest.fixture(scope="module")
def runs():
    return simulate(
        "chinchilla",
        EPOCH_CHINCHILLA,
        isoflop_design(BUDGETS, points_per_budget=PER_BUDGET),
        noise=0.01,
        seed=3,
    )


@pytest.fixture(scope="module")
def fit(runs):
    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.01, chains=2, draws=100)
    return fit_from_draws("chinchilla", runs, draws)


@pytest.fixture(scope="module")
def band_predictions(fit):
    # The default grid, as figures.draw(fit, "bands") computes it: the same shapes compile once.
    return figures.band_predictions(fit)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def by_gid(ax, kind=PolyCollection):
    return {c.get_gid(): c for c in ax.collections if isinstance(c, kind) and c.get_gid()}


def edges(band):
    """(x, lower, upper) of a fill_between band, from its outline."""
    vertices = band.get_paths()[0].vertices
    xs = np.unique(vertices[:, 0])
    low = np.array([vertices[vertices[:, 0] == x, 1].min() for x in xs])
    high = np.array([vertices[vertices[:, 0] == x, 1].max() for x in xs])
    return xs, low, high


def contains(outer, inner):
    x_out, low_out, high_out = edges(outer)
    x_in, low_in, high_in = edges(inner)
    assert np.allclose(x_out, x_in)
    # 1e-12 relative: equal bounds may differ in the last bit after the path round trip
    return np.all(low_out <= low_in * (1 + 1e-12)) and np.all(high_out >= high_in * (1 - 1e-12))


# --- bands --------------------------------------------------------------------------------------


def test_bands_axes_labels_and_title(fit, band_predictions):
    ax = plots.bands(fit, *band_predictions)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "(FLOPs)" in ax.get_xlabel()
    assert "(nats/token)" in ax.get_ylabel()
    assert "chinchilla" in ax.get_title() and fit.law.title in ax.get_title()


def test_bands_four_bands_nested(fit, band_predictions):
    ax = plots.bands(fit, *band_predictions)
    bands = by_gid(ax)
    names = {
        "credible (mean loss) 50%",
        "credible (mean loss) 90%",
        "predictive (new run) 50%",
        "predictive (new run) 90%",
    }
    assert names <= set(bands)
    assert contains(bands["credible (mean loss) 90%"], bands["credible (mean loss) 50%"])
    assert contains(bands["predictive (new run) 90%"], bands["predictive (new run) 50%"])
    # A new run's outcome adds noise to the law's uncertainty: its band is the wider one.
    assert contains(bands["predictive (new run) 90%"], bands["credible (mean loss) 90%"])
    # Credible and predictive are told apart by colour.
    credible = bands["credible (mean loss) 90%"].get_facecolor()[0][:3]
    predictive = bands["predictive (new run) 90%"].get_facecolor()[0][:3]
    assert not np.allclose(credible, predictive)


def test_bands_points_heldout_and_extrapolation(fit, runs, band_predictions):
    small = runs.subset(runs.C < 5e20)
    held = runs.subset(runs.C >= 5e20)
    ax = plots.bands(fit, *band_predictions, heldout=held)
    points = by_gid(ax, PathCollection)
    # along compute at D/N = 20: runs within x2 of it solid, the isoFLOP sweep's others open
    on, off = (points[g].get_offsets()[:, 0] for g in ("observed", "off slice"))
    assert len(on) + len(off) == len(runs) and len(on) > 0 and len(off) > 0
    ratio = runs.D / runs.N
    assert len(on) == np.sum(np.abs(np.log(ratio / 20.0)) <= np.log(2.0))
    assert "runs at other D/N (open)" in ax.get_title()
    assert len(points["held-out"].get_offsets()) == len(held)
    assert len(small) + len(held) == len(runs)
    observed, heldout = points["observed"], points["held-out"]
    differs = (
        not np.allclose(observed.get_facecolor(), heldout.get_facecolor())
        or observed.get_paths()[0] != heldout.get_paths()[0]
    )
    assert differs
    shaded = [p for p in ax.patches if p.get_gid() == "extrapolation"]
    assert len(shaded) == 1
    assert shaded[0].get_x() == pytest.approx(runs.C.max())


def test_bands_on_given_axes_and_n_slice(fit, runs):
    _, ax = plt.subplots()
    at = float(np.median(runs.D))
    mean, new_run = figures.band_predictions(fit, axis="N", at=at)  # as many points: no compile
    assert plots.bands(fit, mean, new_run, ax=ax, axis="N") is ax
    assert "parameters N" in ax.get_xlabel() and "(count)" in ax.get_xlabel()
    near = np.sum((runs.D / at <= 1.5) & (runs.D / at >= 1 / 1.5))
    assert len(by_gid(ax, PathCollection)["observed"].get_offsets()) == near
    assert "at D =" in ax.get_title()


def test_bands_rejects_swapped_or_mismatched_predictions(fit, band_predictions):
    mean, new_run = band_predictions
    with pytest.raises(ScalebayesError, match="'mean' and a 'new_run'"):
        plots.bands(fit, new_run, mean)
    other, _ = figures.band_predictions(fit, extend=10.0)  # other points, as many
    with pytest.raises(ScalebayesError, match="different points"):
        plots.bands(fit, other, new_run)
    with pytest.raises(ScalebayesError, match="axis="):
        figures.band_predictions(fit, axis="loss")


def test_no_global_style_change(fit, runs, band_predictions):
    import arviz_base as azb

    from scalebayes.allocate import optimal

    before, arviz_before = dict(matplotlib.rcParams), dict(azb.rcParams)
    plots.bands(fit, *band_predictions)
    plots.frontier(optimal(fit, np.geomspace(1e19, 1e23, 5)), runs=runs, references=plots.PUBLISHED)
    plots.isoflop(fit, figures.isoflop_predictions(fit), optimal(fit, BUDGETS))
    plots.prior_posterior(fit)
    plots.residuals(fit, figures.residual_draws(fit), figures.noise_interval(fit))
    plots.trace(fit)
    plots.pairs(fit)
    after, arviz_after = dict(matplotlib.rcParams), dict(azb.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()
    assert {k for k in arviz_before if arviz_before[k] != arviz_after[k]} == set()


# --- frontier -----------------------------------------------------------------------------------


def test_frontier_overlays_fits_and_references(fit, runs):
    from scalebayes.allocate import optimal

    other = fit_from_draws(
        "chinchilla",
        runs,
        jittered_draws(
            {**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.03, chains=2, draws=100, seed=1
        ),
    )
    budgets = np.geomspace(1e19, 1e24, 8)
    allocations = {"tight": optimal(fit, budgets), "loose": optimal(other, budgets)}
    ax = plots.frontier(allocations, quantity="D", runs=runs, references=plots.PUBLISHED)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "(FLOPs)" in ax.get_xlabel() and "(tokens)" in ax.get_ylabel()
    bands = by_gid(ax)
    assert set(bands) == {"tight 90%", "loose 90%"}
    # the looser posterior has the wider band
    assert contains(bands["loose 90%"], bands["tight 90%"])
    lines = {line.get_gid() for line in ax.get_lines()}
    assert {"tight median", "loose median"} <= lines
    assert {f"reference {r.label}" for r in plots.PUBLISHED} <= lines
    assert len(by_gid(ax, PathCollection)["observed"].get_offsets()) == len(runs)
    labels = ax.get_legend_handles_labels()[1]
    assert "tight: median" in labels and "loose: median" in labels


def test_frontier_leaves_a_gap_where_the_optimum_is_not_located(fit):
    """Past 5 % of draws at the search's bound the 90 % band would be the search's, not the
    posterior's: that budget is a gap, and the legend says so; at 5 % it is drawn."""
    import dataclasses

    from scalebayes.allocate import optimal

    allocation = optimal(fit, np.geomspace(1e19, 1e23, 5))
    draws = allocation.at_bound.sizes["chain"] * allocation.at_bound.sizes["draw"]
    at_bound = allocation.at_bound.copy(data=np.zeros(allocation.at_bound.shape, bool))
    at_bound[0, : int(0.05 * draws), 1] = True  # 5 %: still located
    at_bound[0, : int(0.05 * draws) + 1, 3] = True  # just over
    ax = plots.frontier(dataclasses.replace(allocation, at_bound=at_bound))
    median = next(line for line in ax.get_lines() if line.get_gid() == "posterior median")
    assert list(np.isnan(median.get_ydata())) == [False, False, False, True, False]
    assert "90% posterior (gaps: optimum not located)" in ax.get_legend_handles_labels()[1]
    assert "posterior 90%" in by_gid(ax)  # the gid keeps the plain label


def test_frontier_panels_and_bad_quantity(fit):
    from scalebayes.allocate import optimal

    allocation = optimal(fit, [1e20, 1e22])
    axes = plots.frontier_panels(allocation)
    assert [ax.get_ylabel().split(" ")[1] for ax in axes] == ["parameters", "tokens", "loss"]
    assert "(nats/token)" in axes[2].get_ylabel()
    with pytest.raises(ScalebayesError, match="quantity"):
        plots.frontier(allocation, quantity="C")


def test_reference_frontier_matches_per_draw_optimum(runs):
    # With every draw at Epoch's constants, optimal() must find the closed-form optimum.
    from scalebayes.allocate import optimal

    exact = fit_from_draws(
        "chinchilla",
        runs,
        jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.0, chains=1, draws=2),
    )
    budgets = np.array([1e20, 5.76e23])
    closed = plots.EPOCH_2024.frontier(budgets)
    found = optimal(exact, budgets)
    assert np.allclose(found.N.isel(chain=0, draw=0), closed["N"], rtol=1e-6)
    assert np.allclose(found.loss.isel(chain=0, draw=0), closed["loss"], rtol=1e-9)


# --- isoFLOP ------------------------------------------------------------------------------------


def test_data_budgets_finds_the_ladder(runs):
    assert np.allclose(plots.data_budgets(runs), BUDGETS, rtol=1e-9)


def test_isoflop_one_curve_per_budget(fit, runs):
    from scalebayes.allocate import optimal

    curves = figures.isoflop_predictions(fit)  # the default grid, as draw(fit, "isoflop")
    allocation = optimal(fit, BUDGETS)
    ax = plots.isoflop(fit, curves, allocation)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "(count)" in ax.get_xlabel() and "(nats/token)" in ax.get_ylabel()
    assert len([g for g in by_gid(ax) if g.startswith("band C=")]) == len(BUDGETS)
    points = {g: c for g, c in by_gid(ax, PathCollection).items() if g.startswith("runs C=")}
    assert [len(c.get_offsets()) for c in points.values()] == [PER_BUDGET] * len(BUDGETS)
    stars = [line for line in ax.get_lines() if str(line.get_gid()).startswith("optimum")]
    assert len(stars) == len(BUDGETS)
    # each star sits at the median N* of its budget
    for star, budget in zip(stars, BUDGETS, strict=True):
        median = float(allocation.N.sel(budget=budget).median())
        assert star.get_xdata()[0] == pytest.approx(median)


def test_isoflop_stars_of_a_gp_fit_sit_on_its_curves(chinchilla_fit):
    """The curves are the whole model's mean; the star's height is the same model's loss at N*.

    Before, it was the law's own L*, off its curve by the GP's mean there (0.05 nats on Marin's
    DCLM sweeps). The law's N* stays the star's position: decisions leave the GP out.
    """
    from scalebayes.allocate import optimal, whole_model_loss

    fit = chinchilla_fit
    budgets = plots.data_budgets(fit.runs)[:3]
    allocation = optimal(fit, budgets)
    ax = plots.isoflop(fit, figures.isoflop_predictions(fit, budgets), allocation)
    whole = whole_model_loss(fit, allocation)
    stars = [line for line in ax.get_lines() if str(line.get_gid()).startswith("optimum")]
    assert len(stars) == len(budgets)
    for star, budget in zip(stars, budgets, strict=True):
        assert star.get_xdata()[0] == pytest.approx(float(allocation.N.sel(budget=budget).median()))
        assert star.get_ydata()[0] == pytest.approx(float(whole.sel(budget=budget).median()))
    assert "law's + gp discrepancy's median" in ax.get_title()


def test_isoflop_marks_approach_2s_sweep_minima_on_their_budgets(fit):
    import xarray as xr

    from scalebayes.allocate import optimal

    # Minima known per draw: the first two budgets' sweeps, the second 3 % off its budget (as
    # sweeps found from C are), and one at 1e25 FLOPs, far from any plotted budget.
    sweeps = np.array([BUDGETS[0], BUDGETS[1] * 1.03, 1e25])
    rng = np.random.default_rng(0)
    n = np.exp(rng.normal(np.log([2e8, 5e8, 1e11]), 0.1, (2, 200, 3)))
    dims = ("chain", "draw", "budget")
    minima = xr.Dataset(
        {"N": (dims, n), "loss": (dims, np.full(n.shape, 3.0))}, coords={"budget": sweeps}
    )
    curves = figures.isoflop_predictions(fit)
    ax = plots.isoflop(fit, curves, optimal(fit, BUDGETS), minima=minima)
    diamonds = {str(line.get_gid()): line for line in ax.get_lines()
                if str(line.get_gid()).startswith("minimum")}  # fmt: skip
    assert sorted(diamonds) == sorted(f"minimum C={b:.3g}" for b in BUDGETS[:2])
    first = diamonds[f"minimum C={BUDGETS[0]:.3g}"]
    assert first.get_xdata()[0] == pytest.approx(np.median(n[..., 0]))
    assert "diamond: approach 2" in " ".join(ax.get_title().split())
    with pytest.raises(ScalebayesError, match="sweep minima are drawn on the isoflop plot"):
        figures.draw(fit, "bands", minima=minima)


def test_isoflop_title_of_a_gp_fit_fits_the_figure(chinchilla_fit):
    """Its longest title (the GP's model, approach 2's diamonds) is wrapped, not cut off."""
    import xarray as xr

    from scalebayes.allocate import optimal

    fit = chinchilla_fit
    # 13 budgets or more take a legend of two columns, which narrows the axes the title sits on.
    budgets = np.geomspace(6e18, 3e21, 14)
    dims = ("chain", "draw", "budget")
    n = np.full((1, 10, budgets.size), 1e9)
    minima = xr.Dataset(
        {"N": (dims, n), "loss": (dims, np.full(n.shape, 3.0))}, coords={"budget": budgets}
    )
    ax = plots.isoflop(
        fit, figures.isoflop_predictions(fit, budgets), optimal(fit, budgets), minima=minima
    )
    figure = ax.get_figure()
    figure.canvas.draw()
    box = ax.title.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width, (box, figure.bbox)


# --- diagnostics --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["trace", "rank", "pairs"])
def test_arviz_diagnostics_draw_every_parameter(fit, kind):
    pc = getattr(plots, kind)(fit)
    figure = plots.figure_of(pc)
    text = " ".join(
        t.get_text() for ax in figure.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)
    )
    for name in fit.param_names:
        assert name in text


def test_prior_posterior_one_panel_per_parameter(fit):
    axes = plots.prior_posterior(fit)
    assert len(axes) == len(fit.param_names)
    for ax, name in zip(axes, fit.param_names, strict=True):
        assert {line.get_gid() for line in ax.get_lines()} == {f"prior {name}", f"posterior {name}"}
        assert ax.get_xlabel().startswith(f"log10 {name}")
    assert "(nats/token)" in axes[0].get_xlabel()  # E has units


def test_residuals_points_and_noise_band(fit, runs):
    from scalebayes.likelihood import Likelihood

    ax = plots.residuals(fit, figures.residual_draws(fit), figures.noise_interval(fit))
    assert ax.get_xscale() == "log" and "(FLOPs)" in ax.get_xlabel()
    assert "dimensionless" in ax.get_ylabel()
    assert len(by_gid(ax, PathCollection)["observed"].get_offsets()) == len(runs)
    assert [p.get_gid() for p in ax.patches] == ["noise band"]
    normal = fit_from_draws(
        "chinchilla",
        runs,
        jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.02}, rel_sd=0.0, chains=1, draws=3),
        likelihood=Likelihood(family="normal"),
    )
    band = figures.noise_interval(normal, prob=0.9).isel(chain=0, draw=0).to_numpy()
    assert band == pytest.approx([-1.6449 * 0.02, 1.6449 * 0.02], rel=1e-4)


def test_comparison_plot(fit, runs):
    from scalebayes.comparison import compare

    tied = fit_from_draws(
        "chinchilla_tied",
        runs,
        jittered_draws(
            {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "sigma": 0.012},
            rel_sd=0.01,
            chains=2,
            draws=100,
        ),
    )
    result = compare({"chinchilla": fit, "chinchilla_tied": tied})
    pc = plots.comparison(result)
    ax = pc.viz["plot"].item()
    assert "stacking weights" in ax.get_title()
    labels = [t.get_text() for t in ax.get_yticklabels()] + [
        t.get_text() for t in ax.get_xticklabels()
    ]
    assert {"chinchilla", "chinchilla_tied"} <= set(labels)


# --- one call per kind --------------------------------------------------------------------------


# The forest is a grouped fit's (tests/test_groups_decisions.py draws it).
@pytest.mark.parametrize("kind", [kind for kind in figures.KINDS if kind != "forest"])
def test_draw_every_kind(fit, runs, kind, tmp_path):
    before = set(plt.get_fignums())
    budgets = {"frontier": [1e24], "isoflop": [1e20, 3e20]}.get(kind)
    heldout = runs if kind == "pit" else None
    figure = figures.draw(fit, kind, budgets=budgets, heldout=heldout)
    assert figure.axes
    path = tmp_path / f"{kind}.svg"
    plots.save(figure, str(path))
    assert path.stat().st_size > 0
    assert set(plt.get_fignums()) == before


def test_draw_and_save_errors(fit, tmp_path):
    with pytest.raises(ScalebayesError, match="plot kind"):
        figures.draw(fit, "histogram")
    with pytest.raises(ScalebayesError, match="budgets apply to the frontier and isoflop"):
        figures.draw(fit, "bands", budgets=[1e24])
    figure = figures.draw(fit, "residuals")
    with pytest.raises(ScalebayesError, match=r"\.png, \.svg or \.pdf"):
        plots.save(figure, str(tmp_path / "fig.jpg"))
    assert not plt.fignum_exists(figure.number)


def test_pit_of_heldout_runs(fit, runs):
    from matplotlib.patches import StepPatch

    ax = figures.draw(fit, "pit", heldout=runs, seed=1).axes[0]
    assert ax.get_xlabel() == "PIT: share of predictive draws below the observed log loss"
    assert ax.get_ylabel() == "held-out runs per bin"
    assert "chinchilla: PIT of 15 held-out runs" in ax.get_title()
    bars = {p.get_gid(): p for p in ax.patches if isinstance(p, StepPatch) and p.get_gid()}
    counts, edges, _ = bars["pit"].get_data()
    assert counts.sum() == len(runs) and edges[0] == 0.0 and edges[-1] == 1.0
    (uniform,) = [line for line in ax.lines if line.get_gid() == "uniform"]
    assert uniform.get_ydata()[0] == pytest.approx(len(runs) / len(counts))
    assert any(p.get_gid() == "uniform band" for p in ax.patches)
    with pytest.raises(ScalebayesError, match="--heldout"):
        figures.draw(fit, "pit")


def test_draw_pit_one_panel_per_cut(fit, runs):
    from scalebayes.holdout import score

    big = runs.C > 5e19
    scores = [score(fit, runs, big), score(fit, runs, runs.C > 5e20)]
    figure = figures.draw_pit("chinchilla", scores, ["top 2 budgets", "top 1 budget"])
    titles = [ax.get_title() for ax in figure.axes]
    assert len(titles) == 2
    assert f"PIT of {int(big.sum())} held-out runs, top 2 budgets" in titles[0]
    assert "top 1 budget" in titles[1]
    with pytest.raises(ScalebayesError, match="no held-out"):
        figures.draw_pit("chinchilla", [], [])


def test_reachable_from_the_package():
    import scalebayes as sb
    from scalebayes.report import write_report

    assert sb.plots is plots
    assert sb.write_report is write_report
    assert {"plots", "write_report"} <= set(sb.__all__)


def test_prior_and_pairs_for_a_law_with_a_real_parameter_and_many_panels():
    # bnsl_c: delta has a Normal prior (any sign), and 7 parameters need 49 pair panels (> ArviZ's 40).
    truth = {"E": 1.7, "A": 2000.0, "alpha": 0.18, "delta": 0.05, "Cb": 1e20, "f": 1.0}
    runs = simulate("bnsl_c", truth, isoflop_design(BUDGETS, points_per_budget=PER_BUDGET), seed=0)
    draws = jittered_draws({**truth, "sigma": 0.01}, rel_sd=0.01, chains=2, draws=50)
    draws["delta"] = 0.05 + 0.03 * np.random.default_rng(0).standard_normal((2, 50))  # some < 0
    fit = fit_from_draws("bnsl_c", runs, draws)
    labels = {ax.get_title(): ax.get_xlabel() for ax in plots.prior_posterior(fit)}
    assert labels["delta"].startswith("delta")
    assert labels["Cb"].startswith("log10 Cb") and "(FLOPs)" in labels["Cb"]
    figure = plots.figure_of(plots.pairs(fit))
    assert len([ax for ax in figure.axes if ax.get_visible()]) >= 7 * 8 // 2
    assert figure.get_size_inches()[0] >= 1.5 * 7  # sized to its 7 parameters


def test_draw_bands_along_n(fit):
    figure = figures.draw(fit, "bands", axis="N")
    assert "parameters N" in figure.axes[0].get_xlabel()
    with pytest.raises(ScalebayesError, match="axis= applies to the bands"):
        figures.draw(fit, "residuals", axis="N")


def test_heldout_table_is_checked_like_any_runs(fit, runs, band_predictions):
    table = runs.table[["N", "D", "C"]]  # no loss column
    with pytest.raises(ScalebayesError, match="loss"):
        plots.bands(fit, *band_predictions, heldout=table)
    ax = plots.bands(fit, *band_predictions, heldout=runs.table.iloc[:3])
    assert len(by_gid(ax, PathCollection)["held-out"].get_offsets()) == 3


def test_a_plot_failing_half_way_leaves_no_figure(fit):
    before = set(plt.get_fignums())
    with pytest.raises(AttributeError):  # fails after the figure exists, while drawing lines
        figures.draw(fit, "frontier", references=[object()])
    assert set(plt.get_fignums()) == before


def test_prior_posterior_of_a_gp_fit_draws_the_gp_s_priors(chinchilla_fit):
    """The default fit has the GP: sigma_law and gp_amplitude get their priors' panels too."""
    import matplotlib.pyplot as plt

    axes = plots.prior_posterior(chinchilla_fit)
    titles = [ax.get_title() for ax in axes]
    assert {"sigma", "sigma_law", "gp_amplitude"} <= set(titles) and len(titles) == 8
    plt.close("all")


def test_a_loss_axis_within_a_decade_has_several_labelled_ticks():
    # A log axis from 1.9 to 3.2 labels only 2 and 3 by default; the loss axes get plain,
    # linear-spaced ticks inside a decade (and keep log ticks across decades).
    import matplotlib.pyplot as plt

    from scalebayes.plots._common import plain_loss_ticks

    fig, ax = plt.subplots()
    try:
        ax.set_yscale("log")
        ax.set_ylim(1.9, 3.2)
        plain_loss_ticks(ax)
        fig.canvas.draw()
        shown = [t for t in ax.get_yticks() if 1.9 <= t <= 3.2]
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert len(shown) >= 4 and "2" in labels and "2.5" in labels, (shown, labels)
        ax.set_ylim(0.5, 50)
        assert {1.0, 10.0} <= set(ax.yaxis.get_major_locator()())
    finally:
        plt.close(fig)


# --- figures fit to publish: ticks, legends, outliers, supports, envelopes, sizes ----------------


def test_log_axes_get_enough_labelled_ticks():
    from scalebayes.plots._common import log_ticks

    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.set_xlim(2e7, 5e9)  # 2.4 decades: matplotlib labels only 1e8 and 1e9
    log_ticks(ax, "x")
    fig.canvas.draw()
    labelled = [
        tick
        for tick, label in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)
        if label.get_text() and 2e7 <= tick <= 5e9
    ]
    assert len(labelled) >= 4, labelled
    ax.set_xlim(1e18, 1e26)  # eight decades: the powers of ten alone
    ticks = [t for t in ax.xaxis.get_major_locator()() if 1e18 <= t <= 1e26]
    assert len(ticks) >= 4 and np.allclose(np.log10(ticks), np.round(np.log10(ticks)))


def test_legends_sit_beside_the_data(fit, runs, band_predictions):
    from scalebayes.allocate import optimal

    for ax in (
        plots.bands(fit, *band_predictions),
        plots.isoflop(fit, figures.isoflop_predictions(fit), optimal(fit, BUDGETS)),
        plots.residuals(fit, figures.residual_draws(fit), figures.noise_interval(fit)),
    ):
        ax.get_figure().canvas.draw()
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    panels = plots.frontier_panels(
        optimal(fit, np.geomspace(1e19, 1e23, 5)), runs=runs, references=plots.PUBLISHED
    )
    figure = panels[0].get_figure()
    figure.canvas.draw()
    assert all(ax.get_legend() is None for ax in panels)
    (legend,) = figure.legends  # one for the three panels, below their tick labels
    lowest = min(ax.get_tightbbox().y0 for ax in panels)
    assert legend.get_window_extent().y1 <= lowest + 1


def test_residual_outliers_are_drawn_at_the_edge_and_counted(runs):
    from scalebayes.data import load_runs

    table = runs.table[["N", "D", "C", "loss"]].copy()
    table.loc[table.index[[0, 3]], "loss"] *= 1.35  # two runs 0.3 above the law in log loss
    odd = fit_from_draws(
        "chinchilla",
        load_runs(table),
        jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.01, chains=2, draws=50),
    )
    ax = plots.residuals(odd, figures.residual_draws(odd), figures.noise_interval(odd))
    points = by_gid(ax, PathCollection)
    assert len(points["observed"].get_offsets()) == len(runs) - 2
    assert "outliers below" not in points
    above = points["outliers above"].get_offsets()
    bottom, top = ax.get_ylim()
    assert len(above) == 2 and np.all((above[:, 1] > bottom) & (above[:, 1] < top))
    # The axis follows the 13 other runs (within a few noise sds of 0), not the 0.3 outliers.
    assert top < 0.1
    labels = ax.get_legend_handles_labels()[1]
    assert any(re.match(r"2 runs above the axis \(to \+0\.[23]", label) for label in labels)


def test_prior_panels_span_the_prior_and_the_whole_posterior(fit):
    for ax, name in zip(plots.prior_posterior(fit), fit.param_names, strict=True):
        lines = {line.get_gid(): line.get_ydata() for line in ax.get_lines()}
        shown = np.log10(fit.posterior[name].to_numpy())
        low, high = ax.get_xlim()
        assert low < shown.min() and shown.max() < high
        posterior, prior = lines[f"posterior {name}"], lines[f"prior {name}"]
        # the posterior's density falls to ~0 inside the panel: not cut off at its edges
        assert max(posterior[0], posterior[-1]) < 0.01 * posterior.max()
        # the prior's central 99% is inside the panel, or a note says how far it reaches
        noted = any("prior's 99%" in text.get_text() for text in ax.texts)
        assert noted or max(prior[0], prior[-1]) < 0.2 * prior.max()


def test_prior_on_support_spans_the_prior_s_central_99_percent():
    import numpyro.distributions as dist

    from scalebayes.plots.prior import prior_on_support

    draws = np.random.default_rng(0).normal(0.3, 0.5, 4000)
    x, density, note = prior_on_support(dist.Normal(0.0, 1.0), draws, on_log=False)
    assert x[0] <= -2.58 and x[-1] >= 2.58 and note == ""
    assert density.max() == pytest.approx(1 / np.sqrt(2 * np.pi), rel=1e-3)
    # a posterior 1000 times narrower than its prior: the panel stops 8 widths out, and says so
    x, _, note = prior_on_support(dist.Normal(0.0, 100.0), 0.01 * draws, on_log=False)
    assert x[-1] - x[0] < 1.0 and note.startswith("prior's 99%")
    # positive support on a log10 axis: HalfNormal has no mass below 0, its log10 none at -inf
    x, density, _ = prior_on_support(
        dist.HalfNormal(0.1), np.log10([0.01, 0.02, 0.03]), on_log=True
    )
    assert np.all(np.isfinite(density)) and np.all(density >= 0)


def test_rank_plot_shows_its_envelope_and_the_diagnostics_rule(fit):
    from matplotlib.collections import PolyCollection

    from scalebayes.health import ESS_PER_CHAIN_MIN, RHAT_MAX
    from scalebayes.plots.diagnostics import sampled_names

    figure = plots.figure_of(plots.rank(fit))
    panels = {ax.get_title().split(":")[0]: ax for ax in figure.axes if ax.get_title()}
    assert set(panels) == set(sampled_names(fit))
    for ax in panels.values():
        assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the envelope
        assert not any(text.get_text().startswith("p=") for text in ax.texts)  # no second test
    # Each panel's verdict is the diagnostics line's rule: all [ok] exactly when R-hat and ESS pass.
    d = fit.diagnostics
    passes = d.max_rhat <= RHAT_MAX and d.min_ess_bulk >= ESS_PER_CHAIN_MIN * d.chains
    assert all("[ok]" in ax.get_title() for ax in panels.values()) == passes


def test_pairs_figure_is_square_and_sized_to_its_parameters(fit):
    from scalebayes.plots.diagnostics import sampled_names

    width, height = plots.figure_of(plots.pairs(fit)).get_size_inches()
    assert width == pytest.approx(height) and width >= 1.5 * len(sampled_names(fit))
