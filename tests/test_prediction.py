"""predict(): loss per draw at planned runs; credible vs predictive; inputs; extrapolation notes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from tests.known_fits import chinchilla_known, ladder

import scalebayes as sb
from scalebayes.allocate import optimal
from scalebayes.errors import ScalebayesError
from scalebayes.prediction import predict
from scalebayes.testing import fit_from_draws, jittered_draws


def test_mean_is_the_law_at_each_draw():
    fit = chinchilla_known()
    pred = predict(fit, N=[1e9, 7e10], D=[2e10, 1.4e12])
    assert pred.loss.dims == ("chain", "draw", "point")
    assert pred.loss.shape == (4, 500, 2)
    post = fit.posterior
    c, d = 2, 123
    params = {name: float(post[name][c, d]) for name in fit.law.param_names}
    expected = (
        params["E"] + params["A"] / 7e10 ** params["alpha"] + params["B"] / 1.4e12 ** params["beta"]
    )
    assert float(pred.loss[c, d, 1]) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(pred.points["C"], 6 * np.array([1e9, 7e10]) * [2e10, 1.4e12])


@pytest.mark.parametrize(
    "given",
    [
        {"N": 7e10, "D": 1.4e12},
        {"N": 7e10, "C": 6 * 7e10 * 1.4e12},
        {"D": 1.4e12, "C": 6 * 7e10 * 1.4e12},
        {"N": 7e10, "D": 1.4e12, "C": 6 * 7e10 * 1.4e12},
    ],
)
def test_any_two_of_n_d_c_give_the_same_point(given):
    fit = chinchilla_known()
    pred = predict(fit, **given)
    np.testing.assert_allclose(pred.points.loc[0, ["N", "D", "C"]], [7e10, 1.4e12, 5.88e23])
    reference = predict(fit, N=7e10, D=1.4e12)
    np.testing.assert_allclose(pred.loss, reference.loss, rtol=1e-12)


def test_cost_k_of_the_fit_is_used():
    runs = sb.simulate(
        "chinchilla",
        sb.simulation.EPOCH_CHINCHILLA,
        sb.isoflop_design([1e19, 1e20], cost_k=8.0),
        cost_k=8.0,
        seed=0,
    )
    draws = jittered_draws({**sb.simulation.EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=20)
    fit = fit_from_draws("chinchilla", runs, draws)
    assert predict(fit, N=1e9, C=8e20).points.loc[0, "D"] == pytest.approx(1e11)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "give two of N, D, C"),
        ({"N": 7e10}, "needs N, D"),
        ({"N": -1.0, "D": 1e12}, "positive finite"),
        ({"N": [1e9, np.nan], "D": 1e12}, "positive finite"),
        ({"N": [1e9, 2e9], "D": [1e12, 2e12, 3e12]}, "different lengths"),
        ({"N": 7e10, "D": 1.4e12, "C": 1e20}, "disagrees"),
        ({"N": [[1e9]], "D": 1e12}, "1-D"),
    ],
)
def test_bad_planned_runs_are_refused(given, message):
    with pytest.raises(ScalebayesError, match=message):
        predict(chinchilla_known(), **given)


def test_a_one_input_law_needs_one_input():
    draws = jittered_draws({"E": 1.8, "A": 400.0, "alpha": 0.34, "sigma": 0.01}, chains=2, draws=30)
    fit = fit_from_draws("power_n", ladder(), draws)
    pred = predict(fit, N=[1e9, 1e10])
    assert np.isnan(pred.points["D"]).all()
    assert (pred.loss.isel(point=1) < pred.loss.isel(point=0)).all()


@pytest.mark.parametrize(
    ("likelihood", "noise"),
    [(sb.Likelihood(), stats.t(df=4)), (sb.Likelihood(family="normal"), stats.norm())],
)
def test_new_run_adds_exactly_the_fitted_noise(likelihood, noise):
    # Law parameters fixed (rel_sd=0): the credible interval has zero width, and log(new / mean)
    # is sigma times the likelihood's standard noise. A KS test on 4000 values rejects a correct
    # sampler with probability 0.1 % (fixed seed). A scale 25 % off moves the CDF by up to 0.048
    # (t4) or 0.054 (normal): sqrt(4000) x that is 3.0-3.4, p ~ 1e-8 on average and below 1e-3
    # unless the sample's own KS noise (sd ~0.7 on that scale) cancels a third of it. (10 % off,
    # as this test once used, gives 1.3-1.5: p ~ 0.05, a coin the seed decides.)
    sigma = 0.05
    values = {**sb.simulation.EPOCH_CHINCHILLA, "sigma": sigma}
    draws = jittered_draws(values, rel_sd=0.0, chains=4, draws=1000)
    fit = fit_from_draws("chinchilla", ladder(), draws, likelihood=likelihood)
    mean = predict(fit, N=1e9, D=2e10)
    new = predict(fit, N=1e9, D=2e10, kind="new_run", seed=3)
    assert float(np.ptp(mean.loss.to_numpy())) < 1e-12
    shocks = np.log(new.loss / mean.loss).to_numpy().ravel() / sigma
    assert stats.kstest(shocks, noise.cdf).pvalue > 1e-3
    assert stats.kstest(shocks / 1.25, noise.cdf).pvalue < 1e-3


def test_new_run_interval_is_wider_than_mean_interval():
    fit = chinchilla_known(rel_sd=0.02, sigma=0.02)
    mean = predict(fit, N=[1e9, 7e10], D=[2e10, 1.4e12]).summary(probs=(0.9,))
    new = predict(fit, N=[1e9, 7e10], D=[2e10, 1.4e12], kind="new_run").summary(probs=(0.9,))
    width_mean = np.log(mean["eti90_ub"] / mean["eti90_lb"])
    width_new = np.log(new["eti90_ub"] / new["eti90_lb"])
    # Noise alone spans 2 * 2.13 * 0.02 = 0.085 in log loss; the sum is wider than either part.
    assert (width_new > width_mean).all()
    assert (width_new > 0.085 * 0.9).all()
    # Medians agree: the noise is centred on the law (up to Monte Carlo error, ~0.5 %).
    np.testing.assert_allclose(new["median"], mean["median"], rtol=0.01)


def test_new_run_is_reproducible_by_seed():
    fit = chinchilla_known()
    a = predict(fit, N=1e9, D=2e10, kind="new_run", seed=1)
    b = predict(fit, N=1e9, D=2e10, kind="new_run", seed=1)
    c = predict(fit, N=1e9, D=2e10, kind="new_run", seed=2)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert not np.array_equal(a.loss, c.loss)


def test_estimated_nu_is_used_per_draw():
    draws = jittered_draws({**sb.simulation.EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=200)
    draws["nu"] = np.full((2, 200), 1e6)  # ~Normal
    fit = fit_from_draws("chinchilla", ladder(), draws, likelihood=sb.Likelihood(df=None))
    new = predict(fit, N=1e9, D=2e10, kind="new_run")
    assert new.loss.shape == (2, 200, 1)


def test_summary_is_tidy_and_says_how_far_outside():
    fit = chinchilla_known()
    largest_c = fit.runs.C.max()
    n = float(np.sqrt(12 * largest_c / (6 * 20)))
    table = predict(fit, N=[n, 1e9], C=[12 * largest_c, 6e9 * 2e10]).summary()
    assert list(table.columns[:4]) == ["N", "D", "C", "median"]
    assert {"eti50_lb", "eti50_ub", "eti90_lb", "eti90_ub", "beyond", "extrapolation"} <= set(
        table.columns
    )
    assert (table["eti90_lb"] <= table["eti50_lb"]).all() and (
        table["eti50_ub"] <= table["eti90_ub"]
    ).all()
    assert table.loc[0, "beyond"] == pytest.approx(12)
    assert table.loc[0, "extrapolation"].startswith("12x beyond the largest C seen")
    assert table.loc[1, "extrapolation"] == "inside the fitted range"
    hdi = predict(fit, N=1e9, D=2e10).summary(probs=(0.8,), kind="hdi")
    assert {"hdi80_lb", "hdi80_ub"} <= set(hdi.columns)
    with pytest.raises(ScalebayesError, match="'eti' or 'hdi'"):
        predict(fit, N=1e9, D=2e10).summary(kind="quantile")
    with pytest.raises(ScalebayesError, match=r"in \(0, 1\)"):
        predict(fit, N=1e9, D=2e10).summary(probs=(90,))
    with pytest.raises(ScalebayesError, match="'mean' or 'new_run'"):
        predict(fit, N=1e9, D=2e10, kind="posterior")


def test_a_law_of_unique_tokens_takes_u():
    # Muennighoff et al. 2023's fitted constants (datablations); their worked example gives 2.2256
    # at N = 6.34e9, D = 242e9, U = 25e9.
    values = {"E": np.exp(0.6254804), "A": np.exp(6.255414), "B": np.exp(7.3049974),
              "alpha": 0.3526596, "beta": 0.3526596, "RDstar": 15.387756, "RNstar": 5.309743,
              "sigma": 0.01}  # fmt: skip
    draws = {name: np.full((1, 3), value) for name, value in values.items()}
    table = ladder().to_frame().assign(U=lambda t: t["D"])
    fit = fit_from_draws("data_constrained", sb.load_runs(table), draws)
    pred = predict(fit, N=6.34e9, D=242e9, U=25e9)
    assert float(pred.loss[0, 0, 0]) == pytest.approx(2.2256, abs=5e-5)
    assert "U" in pred.summary().columns
    with pytest.raises(ScalebayesError, match=r"needs N, D, U; got only N, D, C: give U, the uniq"):
        predict(fit, N=6.34e9, D=242e9)
    with pytest.raises(ScalebayesError, match=r"give two of N, D, C \(C = 6 N D\) and U, the"):
        predict(fit, N=6.34e9)
    with pytest.raises(sb.LawError, match="reads U, the unique tokens"):
        optimal(fit, 1e22)  # its allocation needs them: optimal(..., unique_tokens=U)


def test_planned_runs_from_a_table():
    import pandas as pd

    from scalebayes.prediction import points_from_table

    found = points_from_table(pd.DataFrame({"Model Size": [1e9], "Training FLOP": [1.2e20]}))
    assert set(found) == {"N", "C"}
    with pytest.raises(ScalebayesError, match="two columns mean N"):
        points_from_table(pd.DataFrame({"N": [1e9], "params": [1e9]}))
    bad = pd.DataFrame({"N": ["big", "1e9", "-7e10"], "D": [1e12] * 3})
    # One convention with the runs' errors: source, rows, column, problem.
    with pytest.raises(ScalebayesError, match=r"^<DataFrame>: rows 0, 2, column 'N': not a pos"):
        points_from_table(bad)
    # From a file, rows are its lines (header = line 1), as load_runs names them.
    with pytest.raises(ScalebayesError, match=r"^plan\.csv: lines 2, 5, column 'N': not a pos"):
        points_from_table(bad, source="plan.csv", lines=[2, 4, 5])
    # Counts as model cards write them, as load_runs reads them.
    found = points_from_table(pd.DataFrame({"N": ["70B", "400M"], "D": ["1.4T", "8e9"]}))
    np.testing.assert_array_equal(found["N"], [7e10, 4e8])
    np.testing.assert_array_equal(found["D"], [1.4e12, 8e9])
    # A unit in the column's name, as load_runs reads it; and never twice.
    found = points_from_table(pd.DataFrame({"Params (B)": [70, 0.4], "Tokens (T)": [1.4, 0.008]}))
    np.testing.assert_allclose(found["N"], [7e10, 4e8])
    np.testing.assert_allclose(found["D"], [1.4e12, 8e9])
    with pytest.raises(ScalebayesError, match=r"row 1, column 'Params \(B\)': not a positive "
                       r"finite plain number \(the column's name gives the unit, B\)"):  # fmt: skip
        points_from_table(pd.DataFrame({"Params (B)": ["70", "400M"], "Tokens (T)": [1.4, 1]}))
    with pytest.raises(ScalebayesError, match="no N, D or C column"):
        points_from_table(pd.DataFrame({"width": [1024]}))


def test_a_fit_with_a_discrepancy_term_predicts_with_it():
    from tests.known_fits import chinchilla_curved

    fit = chinchilla_curved()
    post = fit.posterior
    n, d = 7e10, 1.4e12
    c, k = 1, 17
    p = {name: float(post[name][c, k]) for name in fit.param_names}
    ref_n, ref_d = np.mean(np.log(fit.runs.N)), np.mean(np.log(fit.runs.D))
    u, v = np.log(n) - ref_n, np.log(d) - ref_d
    law = p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
    bend = p["curvature_N_N"] * u * u + p["curvature_N_D"] * u * v + p["curvature_D_D"] * v * v
    loss = float(predict(fit, N=n, D=d).loss[c, k, 0])
    assert loss == pytest.approx(law * np.exp(bend), rel=1e-12)
    assert abs(bend) > 1e-4  # the discrepancy matters at this point
