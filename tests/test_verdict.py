"""The approaches side by side: the verdict's arithmetic on known posteriors, and "all" end to end.

The verdict is tested on draws with known separation (milliseconds); the end-to-end check on
simulated sweeps runs two NUTS fits and sits behind --run-slow.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import scalebayes as sb
from scalebayes.allocate import Allocation
from scalebayes.allocation.verdict import compare, recommend
from scalebayes.cli.decisions import APPROACHES
from scalebayes.health import Diagnostics

BUDGETS = np.array([1e20, 1e22])


def allocation(a_centre: float, n_scale: float = 1.0, sd: float = 0.01, seed: int = 0):
    """Per-draw a ~ Normal(a_centre, sd) and N* = n_scale * 1e9 * (C / 1e20)^a: (2, 500, budget)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(a_centre, sd, (2, 500, 1)) * np.ones((1, 1, BUDGETS.size))
    n = n_scale * 1e9 * (BUDGETS / 1e20) ** a
    dims = ("chain", "draw", "budget")
    return SimpleNamespace(exponent_N=xr.DataArray(a, dims=dims), N=xr.DataArray(n, dims=dims))


def test_same_posteriors_agree_and_separated_ones_disagree():
    same = compare("2", "3", allocation(0.50), allocation(0.50, seed=1))
    # Two Normal(0.5, 0.01): the difference has sd 0.014, so P(|diff| > 0.02) = 0.16.
    assert same.verdict == "agree" and same.p_exponent_apart < 0.3
    far = compare("2", "3", allocation(0.50), allocation(0.58, seed=1))
    # 0.08 apart, 5.7 sd of the difference: P(diff < -0.02) is 1 to many decimals.
    assert far.verdict == "disagree" and far.p_exponent > 0.99
    assert far.exponent_gap == pytest.approx(-0.08, abs=0.005)
    text = far.sentence(BUDGETS)
    assert "disagree" in text and "P(diff < -0.02) = 1.00" in text


def test_n_star_ratio_alone_can_disagree():
    shifted = compare("1", "3", allocation(0.50, n_scale=2.0), allocation(0.50, seed=1))
    # Same exponent, N* twice as large: every pair of draws is beyond 1.5x, on one side.
    assert shifted.verdict == "disagree" and shifted.p_ratio.min() > 0.99
    assert shifted.ratio == pytest.approx([2.0, 2.0], rel=0.05)
    assert "P(ratio > 1.5) = 1.00" in shifted.sentence(BUDGETS)


def test_wide_posteriors_are_unclear_not_disagreeing():
    wide = compare("1", "3", allocation(0.52, sd=0.03), allocation(0.50, sd=0.03, seed=1))
    # 0.02 apart, sd 0.042 for the difference: P(|diff| > 0.02) about 0.68, one side 0.5.
    assert wide.verdict == "unclear" and 0.5 <= wide.p_exponent_apart < 0.9
    vague = compare("1", "3", allocation(0.30, sd=0.5), allocation(0.50, seed=1))
    # An exponent known only to +-0.8: almost every pair is over 0.02 apart, but in either
    # direction (one side at most 0.66), so no disagreement can be called.
    assert vague.p_exponent_apart > 0.9 and vague.p_exponent < 0.75
    assert vague.verdict == "unclear"


def _health(rhat: float) -> Diagnostics:
    return Diagnostics(rhat, 800.0, 800.0, 0, 0, 2000, 4)


def test_approach_2_is_recommended_with_some_minima_at_edges_not_most_nor_a_failed_sampler():
    """Sweeps with minima at an edge still send the recommendation to approach 2 (the allocation
    backtest's evidence, in recommend's docstring), saying how many; a broken sampler does not,
    nor a majority of sweeps at an edge."""
    sweeps = SimpleNamespace(fit=SimpleNamespace(
        edge=np.array([True] * 9 + [False] * 16), budgets=SimpleNamespace(n_budgets=25)))  # fmt: skip
    results = {"2": sweeps, "3": SimpleNamespace()}
    key, why = recommend(results, {"2": _health(1.004), "3": _health(1.002)}, (), {})
    assert key == "2" and "25 isoFLOP sweeps, 9 with the minimum at an edge" in why
    key, why = recommend(results, {"2": _health(1.2), "3": _health(1.002)}, (), {})
    assert key == "3" and "2: sampler diagnostics failed" in why
    # Most minima at an edge (13 of 25): the optima rest on the valley's shape, not measured.
    sweeps.fit.edge = np.array([True] * 13 + [False] * 12)
    key, why = recommend(results, {"2": _health(1.004), "3": _health(1.002)}, (), {})
    assert key == "3" and "2: 13 of its 25 sweeps have their minimum at an edge" in why
    sweeps.fit.edge = np.array([True] * 12 + [False] * 13)  # half or fewer: still approach 2
    assert recommend(results, {"2": _health(1.004), "3": _health(1.002)}, (), {})[0] == "2"


def test_the_whole_model_is_recommended_on_sweeps_when_its_fit_is_healthy():
    """3m first (the backtest's best mean interval score, recommend's docstring) when its fit
    is usable and its runs form 3 or more sweeps; else approach 2 as before, saying why."""
    sweeps = SimpleNamespace(fit=SimpleNamespace(
        edge=np.array([False] * 5), budgets=SimpleNamespace(n_budgets=5)))  # fmt: skip
    located = xr.DataArray(np.zeros((2, 100, 2), bool), dims=("chain", "draw", "budget"))
    whole = SimpleNamespace(edge_sweeps=5, edge_budget=3e21, at_bound=located, budgets=BUDGETS,
                            discrepancy="gp")  # fmt: skip
    whole.share_at_bound = lambda: Allocation.share_at_bound(whole)
    whole.located = lambda: Allocation.located(whole)
    results = {"2": sweeps, "3": SimpleNamespace(), "3m": whole}
    health = {key: _health(1.004) for key in results}
    key, why = recommend(results, health, (), {})
    assert key == "3m" and "5 isoFLOP sweeps" in why and "3e+21 FLOPs" in why
    key, why = recommend(results, health, (_pair("2", "3m", "disagree"),), {})
    assert key == "3m" and why.endswith("approach 2 disagrees with it")
    two = (_pair("2", "3m", "disagree"), _pair("3", "3m", "disagree"))
    assert recommend(results, health, two, {})[1].endswith("approaches 2 and 3 disagree with it")
    key, _ = recommend(results, {**health, "3m": _health(1.2)}, (), {})
    assert key == "2"  # its sampler failed
    # 10 of 200 draws (5 %) at the end of the search at a budget: its 90 % interval is still
    # the posterior's; 11 (5.5 %) and it is the grid's.
    whole.at_bound = located.copy(data=np.zeros((2, 100, 2), bool))
    whole.at_bound[0, :10, 1] = True
    assert recommend(results, health, (), {})[0] == "3m"
    whole.at_bound[1, 0, 1] = True
    key, why = recommend(results, health, (), {})
    assert key == "2" and "not 3m: the whole model's loss still falls at the end of its" in why
    assert "in 6% of draws at 1e+22 FLOPs" in why
    key, why = recommend({"3": SimpleNamespace(), "3m": whole}, health, (), {"2": "no sweeps"})
    assert key == "3" and "3m: the whole model's loss still falls" in why
    whole.at_bound = located
    # The backtest validated 3m with the GP; a grouped fit's quadratic is shown, not recommended.
    whole.discrepancy = "quadratic"
    key, why = recommend(results, health, (), {})
    assert key == "2" and "not 3m: tested with the GP discrepancy, not quadratic" in why
    key, why = recommend({"3": SimpleNamespace(), "3m": whole}, health, (), {"2": "no sweeps"})
    assert key == "3" and "3m: its whole model is the law + quadratic" in why
    whole.discrepancy = "gp"
    whole.edge_sweeps = 2  # too few sweeps: untested there
    assert recommend(results, health, (), {})[0] == "2"
    key, why = recommend({"3": SimpleNamespace(), "3m": whole}, health, (), {"2": "no sweeps"})
    assert (
        key == "3"
        and "3m: the runs form 2 isoFLOP sweeps with a valley; it is tested on 3 or more" in why
    )


def _pair(first: str, second: str, verdict: str) -> SimpleNamespace:
    return SimpleNamespace(first=first, second=second, verdict=verdict)


def test_the_law_recommended_against_two_approaches_that_agree_says_so():
    # (Mis)Fitting's finished runs, the best learning rate each: approaches 1 and 2 put N* within
    # 10 % of each other, the law 7x above both; approach 2 has most minima at an edge.
    sweeps = SimpleNamespace(fit=SimpleNamespace(
        edge=np.array([True] * 5 + [False] * 3), budgets=SimpleNamespace(n_budgets=8)))  # fmt: skip
    results = {"1": SimpleNamespace(), "2": sweeps, "3": SimpleNamespace()}
    health = {key: _health(1.004) for key in results}
    outvoted = (
        _pair("1", "2", "unclear"),
        _pair("1", "3", "disagree"),
        _pair("2", "3", "disagree"),
    )
    key, why = recommend(results, health, outvoted, {})
    assert key == "3" and "both disagree with the law" in why
    split = (_pair("1", "2", "disagree"), *outvoted[1:])  # the two part too: no caution
    assert "both disagree" not in recommend(results, health, split, {})[1]


def test_the_cli_offers_every_approach_and_all():
    assert set(APPROACHES) == set(sb.allocation.ESTIMATORS) == {"1", "2", "3", "3m"}
    with pytest.raises(sb.ScalebayesError, match="approach='x'"):
        sb.allocation.estimator("x")


def sweeps_on_a_size_grid(law, params, seed: int) -> sb.Runs:
    """5 budgets x 7 runs centred on the truth's own optimum, model sizes from one grid.

    Sizes step by 0.4 in log N and recur across budgets, so approach 1 has sizes at several
    horizons, approach 2 has sweeps, approach 3 the law: all three can run. The truth's N* is
    the library's minimiser on a fit whose every draw is the truth.
    """
    from scalebayes.testing import fit_from_draws

    law = sb.load_law(law) if isinstance(law, str) else law
    budgets = np.geomspace(1e18, 1e21, 5)
    probe = sb.simulate(law, params, sb.isoflop_design(budgets, points_per_budget=3), noise=0.0)
    draws = {k: np.full((1, 2), v) for k, v in {**params, "sigma": 0.01}.items()}
    truth = fit_from_draws(law, probe, draws, likelihood=sb.Likelihood(discrepancy="none"))
    n_star = sb.optimal(truth, budgets).N.to_numpy()[0, 0]
    rows = []
    for c, n0 in zip(budgets, n_star, strict=True):
        n = np.exp(0.4 * (np.round(np.log(n0) / 0.4) + np.arange(-3, 4)))
        rows.append(pd.DataFrame({"N": n, "D": c / (6 * n), "C": c}))
    return sb.simulate(law, params, pd.concat(rows, ignore_index=True), noise=0.01, seed=seed)


@pytest.mark.slow
def test_all_on_exact_law_sweeps_agrees_and_recommends_approach_2():
    from scalebayes.simulation import EPOCH_CHINCHILLA

    runs = sweeps_on_a_size_grid("chinchilla", EPOCH_CHINCHILLA, seed=4)
    settings = sb.Settings(chains=2, draws=500, warmup=500, seed=4)
    fit = sb.fit(
        runs, "chinchilla", likelihood=sb.Likelihood(discrepancy="none"), settings=settings
    )
    result = sb.optimal(fit, [1e21, 1e23], approach="all", approaches=("2", "3"))
    pair = result.pairs[0]
    # The same posteriors on a grid (nothing sampled again): the decision budgets' values match.
    grid = result.over(fit, [1e19, 1e21, 1e23])
    assert grid.verdict == result.verdict and list(grid.budgets) == [1e19, 1e21, 1e23]
    for key in ("2", "3"):
        again = grid.results[key].N.sel(budget=[1e21, 1e23]).to_numpy()
        np.testing.assert_allclose(again, result.results[key].N.to_numpy(), rtol=1e-6)
    import matplotlib

    matplotlib.use("Agg")
    from scalebayes.figures import draw_approaches

    figure = draw_approaches(fit, result)
    gids = {artist.get_gid() for ax in figure.axes for artist in ax.get_children()}
    assert {"approach 2 90%", "approach 3 90%"} <= gids, gids
    # Both estimate the same exact law from centred sweeps; their a intervals are +-0.03-0.05,
    # so neither direction of a 0.02 gap nor of a 1.5x ratio should get near 0.9.
    assert pair.verdict != "disagree" and pair.p_exponent < 0.6 and pair.p_ratio.max() < 0.6
    assert result.recommended == "2"
    text = str(result)
    assert "approaches 2 and 3" in text and "recommended: approach 2" in text


@pytest.mark.slow
def test_all_with_a_law_of_the_wrong_shape_disagrees_and_says_so():
    from scalebayes.simulation import EPOCH_CHINCHILLA

    # The truth allocates N* ~ C^0.40 (alpha 0.45, beta 0.30); the tied law can only say 0.5.
    truth = {**EPOCH_CHINCHILLA, "alpha": 0.45, "beta": 0.30, "A": 1500.0}
    runs = sweeps_on_a_size_grid("chinchilla", truth, seed=6)
    settings = sb.Settings(chains=2, draws=500, warmup=500, seed=6)
    plain = sb.Likelihood(discrepancy="none")
    fit = sb.fit(runs, "chinchilla_tied", likelihood=plain, settings=settings)
    result = sb.optimal(fit, [1e21, 1e23], approach="all", approaches=("2", "3"))
    pair = result.pairs[0]
    # 0.1 apart with approach 2's interval about +-0.05: one-sided P far above 0.9.
    assert pair.verdict == "disagree" and pair.p_exponent > 0.95
    assert pair.exponent_gap < -0.05
    assert result.recommended == "2" and "disagrees with it" in result.why


@pytest.mark.slow
# A few draws of 3m's search may end at its grid (2 of 2000 here, failing this test at 878ef42):
# warned about, and within the 5 % that still counts as located (Allocation.located).
@pytest.mark.filterwarnings("default::scalebayes.errors.AllocationWarning")
def test_all_with_the_default_model_recommends_3m_which_holds_what_the_law_misses():
    from scalebayes.simulation import EPOCH_CHINCHILLA
    from scalebayes.testing import fit_from_draws

    # The truth allocates N* ~ C^0.40; the tied law (fitted with its default GP) can only say
    # 0.5 of its own, but the GP carries the difference where the sweeps are.
    truth = {**EPOCH_CHINCHILLA, "alpha": 0.45, "beta": 0.30, "A": 1500.0}
    runs = sweeps_on_a_size_grid("chinchilla", truth, seed=6)
    settings = sb.Settings(chains=2, draws=500, warmup=500, seed=6)
    fit = sb.fit(runs, "chinchilla_tied", settings=settings)
    budgets = [1e21, 1e23]  # the largest sweep, and 100x beyond it
    result = sb.optimal(fit, budgets, approach="all", approaches=("2", "3", "3m"))
    assert result.recommended == "3m" and "5 isoFLOP sweeps" in result.why
    probe = sb.simulate("chinchilla", truth, sb.isoflop_design([1e20], points_per_budget=3),
                        noise=0.0)  # fmt: skip
    draws = {k: np.full((1, 2), v) for k, v in {**truth, "sigma": 0.01}.items()}
    exact = fit_from_draws("chinchilla", probe, draws, likelihood=sb.Likelihood(discrepancy="none"))
    true = np.log(sb.optimal(exact, budgets).N.to_numpy()[0, 0])

    def held(key: str) -> np.ndarray:
        low, high = np.quantile(np.log(result.results[key].N.to_numpy()).reshape(-1, 2),
                                [0.05, 0.95], axis=0)  # fmt: skip
        return (low < true) & (true < high)

    # One table, a fixed seed: 3m's intervals hold the truth at both budgets (measured: 0.17
    # and 0.13 in log N* inside their upper ends) and the law's at neither (0.33 and 0.79
    # outside: the tied law says a = 0.5 against the truth's 0.4).
    assert held("3m").all(), held("3m")
    assert not held("3").any(), held("3")


def test_the_approaches_frontier_overlays_each_approachs_band():
    import matplotlib

    matplotlib.use("Agg")
    from scalebayes import plots
    from scalebayes.allocation.verdict import Approaches

    budgets = np.geomspace(1e20, 1e24, 6)

    def fake(a: float, seed: int):
        rng = np.random.default_rng(seed)
        exps = rng.normal(a, 0.01, (2, 200, 1)) * np.ones((1, 1, budgets.size))
        n = 1e9 * (budgets / 1e20) ** exps
        dims = ("chain", "draw", "budget")
        d = budgets / (6 * n)
        return SimpleNamespace(
            N=xr.DataArray(n, dims=dims, coords={"budget": budgets}),
            D=xr.DataArray(d, dims=dims, coords={"budget": budgets}),
            tokens_per_param=xr.DataArray(d / n, dims=dims, coords={"budget": budgets}),
            exponent_N=xr.DataArray(exps, dims=dims),
            budgets=budgets,
            cost_k=6.0,
            located=lambda: np.ones(budgets.size, bool),
        )

    results = {"2": fake(0.5, 0), "3": fake(0.6, 1)}
    pair = compare("2", "3", results["2"], results["3"])
    healthy = Diagnostics(1.002, 800.0, 700.0, 0, 0, 400, 2)
    broken = Diagnostics(1.2, 12.0, 20.0, 40, 0, 400, 2)
    result = Approaches(budgets, {"1": "one", "2": "two", "3": "three"}, results,
                        {"1": "no sizes"}, {"2": healthy, "3": broken}, (pair,), "2", "test")  # fmt: skip
    ax = plots.approaches(result, quantity="D")
    gids = {artist.get_gid() for artist in ax.get_children()}
    assert {"approach 2 median", "approach 3 median"} <= gids
    assert ax.get_title() == "approaches 2 & 3 disagree"  # each pair's verdict
    with pytest.raises(sb.ScalebayesError, match="expected 'N' or 'D'"):
        plots.approaches(result, quantity="loss")
    # The text and the report page: the refused approach, the verdict with the broken fit's
    # caveat, the recommendation.
    text = str(result)
    assert "approach 1 (one): not run: no sizes" in text
    assert "approach 3's sampler failed its checks" in text and "recommended: approach 2" in text
    from scalebayes.report import _approaches

    page = _approaches(result)
    assert (
        "Every approach side by side" in page and page.count("<tr>") == 2 * budgets.size
    )  # a row per (budget, approach)
    # An approach whose search did not locate the optimum at a budget is starred there, and
    # each verdict it is part of says not to read it.
    results["3"].located = lambda: np.arange(budgets.size) != 2
    text = result.summary()
    assert sum(" 3 *  " in line for line in text.splitlines()) == 1
    assert "not located (*): approach 3's optimum" in text
    assert "(approach 3 not located: do not read this)" in text
    assert "<td>3 *</td>" in _approaches(result)


def test_the_side_by_side_text_ends_with_every_approachs_diagnostics_once(capsys):
    # The recommended approach's diagnostics are in the text with the others': the printer
    # adds no second copy of them (it did: the last line repeated approach 3's).
    from argparse import Namespace

    from scalebayes.cli._common import emit
    from scalebayes.decision_tables import DecisionTable

    health = _health(1.003)
    text = f"table\napproach 2 {health}\napproach 3 {health}"
    emit(Namespace(json=False, csv=False),
         DecisionTable("chinchilla", pd.DataFrame(), text, health, diagnostics_in_text=True))  # fmt: skip
    assert capsys.readouterr().out.count(str(health)) == 2
    emit(Namespace(json=False, csv=False), DecisionTable("chinchilla", pd.DataFrame(), "t", health))
    assert capsys.readouterr().out.count(str(health)) == 1
