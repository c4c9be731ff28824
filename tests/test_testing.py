"""fit_from_draws builds a real Fit from known draws: same groups as NUTS, saves and loads."""

from __future__ import annotations

import numpy as np
import pytest

import scalebayes as sb
from scalebayes.errors import ScalebayesError
from scalebayes.model import pointwise_log_lik
from scalebayes.simulation import EPOCH_CHINCHILLA
from scalebayes.testing import fit_from_draws, jittered_draws


@pytest.fixture(scope="module")
def runs():
    return sb.simulate(
        "chinchilla", EPOCH_CHINCHILLA, sb.isoflop_design([1e19, 1e20, 1e21]), seed=3
    )


@pytest.fixture(scope="module")
def known_fit(runs):
    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=50, seed=0)
    return fit_from_draws("chinchilla", runs, draws)


def test_has_the_groups_of_a_nuts_fit(known_fit, runs):
    idata = known_fit.idata
    assert {"posterior", "log_likelihood", "observed_data", "constant_data", "sample_stats"} <= set(
        idata.children
    )
    assert idata["posterior"]["alpha"].dims == ("chain", "draw")
    assert idata["log_likelihood"]["loss"].shape == (2, 50, len(runs))
    assert int(idata["sample_stats"]["diverging"].sum()) == 0
    np.testing.assert_array_equal(idata["constant_data"]["N"], runs.N)
    np.testing.assert_array_equal(idata["observed_data"]["loss"], runs.loss)
    assert known_fit.settings.chains == 2 and known_fit.settings.draws == 50
    # Independent draws: ArviZ sees chains that agree.
    assert known_fit.diagnostics.max_rhat < 1.1
    assert known_fit.diagnostics.n_draws == 100


def test_log_likelihood_is_the_models_own(known_fit, runs):
    post = known_fit.posterior
    c, d = 1, 7
    params = {name: float(post[name][c, d]) for name in known_fit.param_names}
    expected = pointwise_log_lik(
        known_fit.law,
        known_fit.likelihood,
        params,
        {k: np.log(v) for k, v in runs.inputs().items() if k in ("N", "D")},
        np.log(runs.loss),
        known_fit.log_ref,
    )
    np.testing.assert_allclose(known_fit.idata["log_likelihood"]["loss"][c, d], expected)


def test_draws_are_kept_exactly(runs):
    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.02}, chains=3, draws=4, seed=5)
    fit = fit_from_draws("chinchilla", runs, draws)
    for name, values in draws.items():
        np.testing.assert_array_equal(fit.posterior[name].to_numpy(), values)


def test_save_load_round_trip(known_fit, tmp_path):
    loaded = sb.load_fit(sb.save_fit(known_fit, tmp_path / "known.nc"))
    assert loaded.law.to_dict() == known_fit.law.to_dict()
    assert loaded.diagnostics == known_fit.diagnostics
    for name in known_fit.param_names:
        np.testing.assert_array_equal(loaded.posterior[name], known_fit.posterior[name])


def test_estimated_nu_is_required_when_the_likelihood_estimates_it(runs):
    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=5)
    with pytest.raises(ScalebayesError, match=r"missing \['nu'\]"):
        fit_from_draws("chinchilla", runs, draws, likelihood=sb.Likelihood(df=None))
    fit = fit_from_draws(
        "chinchilla", runs, {**draws, "nu": np.full((2, 5), 3.0)}, likelihood=sb.Likelihood(df=None)
    )
    assert "nu" in fit.posterior


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("alpha"), r"missing \['alpha'\]"),
        (lambda d: d.update(gamma=d["E"]), r"unknown \['gamma'\]"),
        (lambda d: d.update(E=d["E"][:1]), "same shape"),
        (lambda d: d.update(E=d["E"].ravel()), "same shape"),
        (lambda d: d.update(E=np.full_like(d["E"], np.nan)), r"non-finite draws of \['E'\]"),
    ],
)
def test_bad_draws_are_refused(runs, change, message):
    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=5)
    change(draws)
    with pytest.raises(ScalebayesError, match=message):
        fit_from_draws("chinchilla", runs, draws)


def test_jittered_draws_scatter_as_asked():
    draws = jittered_draws({"x": 2.0}, rel_sd=0.1, chains=4, draws=2000, seed=1)["x"]
    assert draws.shape == (4, 2000)
    # sd of log draws estimated from 8000 values: relative standard error ~0.8 %, so 5 % is loose.
    assert np.std(np.log(draws)) == pytest.approx(0.1, rel=0.05)
    assert np.all(jittered_draws({"x": 2.0}, rel_sd=0.0, chains=1, draws=3)["x"] == 2.0)
