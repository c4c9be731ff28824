"""NUTS fits against known truth: recovery, determinism, diagnostics, compile reuse."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import CI_FIT

import scalebayes as sb
from scalebayes.errors import ConvergenceWarning, LawError, ScalebayesError

TRUTH_KEYS = ("E", "A", "B", "alpha", "beta")


@pytest.fixture(scope="module")
def recovery_fits(truth):
    from scalebayes.simulation import CHINCHILLA_BUDGETS, isoflop_design, simulate

    design = isoflop_design(CHINCHILLA_BUDGETS)
    fits = []
    for seed in (11, 12, 13):
        runs = simulate("chinchilla", truth, design, noise=0.01, seed=seed)
        fits.append(sb.fit(runs, "chinchilla", seed=seed, **CI_FIT))
    return fits


def test_fit_has_the_documented_shape(chinchilla_fit, synthetic_runs):
    idata = chinchilla_fit.idata
    posterior = idata["posterior"]
    assert set(chinchilla_fit.param_names) == {*TRUTH_KEYS, "sigma"}
    assert posterior["alpha"].dims == ("chain", "draw")
    assert (
        posterior.sizes["chain"] == CI_FIT["chains"] and posterior.sizes["draw"] == CI_FIT["draws"]
    )
    assert not any(name.startswith("_") for name in posterior.data_vars)
    assert idata["log_likelihood"]["loss"].shape == (4, CI_FIT["draws"], len(synthetic_runs))
    assert {"diverging", "tree_depth", "n_steps", "energy", "lp"} <= set(
        idata["sample_stats"].data_vars
    )
    assert chinchilla_fit.settings.precision == "float64"
    assert chinchilla_fit.settings.devices == 2  # conftest exposes two CPU devices
    assert chinchilla_fit.settings.versions["numpyro"]
    assert chinchilla_fit.diagnostics.ok, chinchilla_fit.diagnostics.problems


def test_recovers_known_parameters_across_seeds(recovery_fits, truth):
    # 3 seeds x 5 parameters = 15 checks of a 90 % interval. If the intervals are calibrated the count
    # inside is ~Binomial(15, 0.9): P(count <= 9) = 0.2 %, so requiring >= 10 rarely fails a good
    # sampler while catching a biased or overconfident one.
    inside = 0
    for fit in recovery_fits:
        table = fit.summary(ci_prob=0.9)
        inside += sum(
            table.loc[k, "lower"] <= truth[k] <= table.loc[k, "upper"] for k in TRUTH_KEYS
        )
        # Exponents are what users extrapolate with: with 81 runs at 1 % noise they are pinned to a
        # few percent (posterior sd ~0.01); 10 % relative error would mean a broken fit.
        for k in ("alpha", "beta"):
            assert table.loc[k, "median"] == pytest.approx(truth[k], rel=0.1)
        assert table.loc["E", "median"] == pytest.approx(truth["E"], rel=0.05)
    assert inside >= 10


def test_same_seed_gives_identical_draws(synthetic_runs, chinchilla_fit):
    again = sb.fit(synthetic_runs, "chinchilla", seed=1, **CI_FIT)
    for name in chinchilla_fit.param_names:
        np.testing.assert_array_equal(again.posterior[name], chinchilla_fit.posterior[name])
    other = sb.fit(synthetic_runs, "chinchilla", seed=2, **CI_FIT)
    assert not np.array_equal(other.posterior["alpha"], chinchilla_fit.posterior["alpha"])


def test_second_fit_of_same_shape_reuses_compiled_sampler(synthetic_runs, chinchilla_fit):
    again = sb.fit(synthetic_runs, "chinchilla", seed=5, **CI_FIT)
    assert again.settings.wall_time["compile"] == 0.0


def test_poor_sampling_warns_with_advice(synthetic_runs):
    # 10 warmup iterations cannot adapt a step size or mass matrix: diagnostics must say so.
    with pytest.warns(ConvergenceWarning, match="R-hat|ESS|divergent"):
        bad = sb.fit(synthetic_runs, "chinchilla", chains=2, warmup=10, draws=30, seed=0)
    assert not bad.diagnostics.ok
    assert "CHECK" in str(bad.diagnostics)


def test_prior_overrides_and_errors(synthetic_runs):
    with pytest.raises(LawError, match="alpha"):
        sb.fit(synthetic_runs, "chinchilla", priors={"gamma": "Normal(loc=0, scale=1)"})
    with pytest.raises(ScalebayesError, match="nu"):
        sb.fit(synthetic_runs, "chinchilla", priors={"nu": "Gamma(concentration=2, rate=0.1)"})
    with pytest.raises(ScalebayesError, match="draws"):
        sb.fit(synthetic_runs, "chinchilla", draws=0)
    with pytest.raises(ScalebayesError, match="needs input"):
        sb.fit(
            synthetic_runs.subset(np.ones(len(synthetic_runs), bool)),
            sb.make_law(
                "needs_u",
                "E + A / U**alpha",
                inputs=["U"],
                priors={
                    "E": "LogNormal(loc=0.5, scale=0.5)",
                    "A": "LogNormal(loc=5, scale=1.5)",
                    "alpha": "LogNormal(loc=-1.1, scale=0.4)",
                },
            ),
        )


def test_summary_reports_requested_interval(chinchilla_fit):
    narrow = chinchilla_fit.summary(ci_prob=0.5)
    wide = chinchilla_fit.summary(ci_prob=0.9)
    assert narrow.attrs["ci_prob"] == 0.5
    assert np.all(wide["lower"] <= narrow["lower"]) and np.all(narrow["upper"] <= wide["upper"])
    assert list(wide.index) == list(chinchilla_fit.param_names)


def test_pinned_parameter_stays_fixed(synthetic_runs, truth):
    # Three chains do not split over two devices: this also covers the one-device path.
    settings = {**CI_FIT, "chains": 3}
    pinned = sb.fit(
        synthetic_runs, "chinchilla", priors={"E": f"Delta(v={truth['E']})"}, seed=3, **settings
    )
    assert pinned.settings.devices == 1
    assert np.all(pinned.posterior["E"].values == truth["E"])
    assert pinned.diagnostics.ok, pinned.diagnostics.problems
