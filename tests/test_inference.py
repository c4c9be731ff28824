"""NUTS fits against known truth: recovery, determinism, diagnostics, compile reuse."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import CI_FIT, PLAIN, assert_healthy

import scalebayes as sb
from scalebayes.errors import ConvergenceWarning, LawError, ScalebayesError

TRUTH_KEYS = ("E", "A", "B", "alpha", "beta")


@pytest.fixture(scope="module")
def refit(synthetic_runs, chinchilla_fit):
    """chinchilla_fit again: same runs, seed and settings."""
    return sb.fit(synthetic_runs, "chinchilla", seed=1, **CI_FIT)


def test_fit_has_the_documented_shape(chinchilla_fit, synthetic_runs):
    idata = chinchilla_fit.idata
    posterior = idata["posterior"]
    # The default discrepancy ("auto") is the GP for this law: the law module's noise is sigma_law.
    assert chinchilla_fit.likelihood.discrepancy == sb.GP()
    gp_names = {"sigma_law", "gp_amplitude", *(f"gp_w{k}" for k in range(39))}  # 36 + quadratic
    assert set(chinchilla_fit.param_names) == {*TRUTH_KEYS, "sigma", *gp_names}
    assert posterior["alpha"].dims == ("chain", "draw")
    assert (
        posterior.sizes["chain"] == CI_FIT["chains"] and posterior.sizes["draw"] == CI_FIT["draws"]
    )
    assert not any(name.startswith("_") for name in posterior.data_vars)
    assert idata["log_likelihood"]["loss"].shape == (4, CI_FIT["draws"], len(synthetic_runs))
    assert {"diverging", "tree_depth", "n_steps", "energy", "lp"} <= set(
        idata["sample_stats"].data_vars
    )
    assert chinchilla_fit.settings.devices == 4  # conftest exposes four CPU devices
    assert chinchilla_fit.settings.versions["numpyro"]
    assert_healthy(chinchilla_fit.diagnostics)


def test_recovers_known_parameters_across_seeds(ladder_fits, truth):
    # Five ladders (conftest.ladder_fits: the law stage of a default fit, sampled alone) x 5
    # parameters = 25 checks of a 90 % interval. If the intervals are calibrated the count inside
    # is ~Binomial(25, 0.9): P(count <= 18) = 0.9 %, so requiring >= 19 rarely fails a good
    # sampler, while intervals half as wide as they should be (coverage ~0.6) pass it only with
    # probability 7 %.
    inside = 0
    for fit in ladder_fits:
        assert_healthy(fit.diagnostics)
        table = fit.summary(ci_prob=0.9)
        inside += sum(
            table.loc[k, "lower"] <= truth[k] <= table.loc[k, "upper"] for k in TRUTH_KEYS
        )
        # Exponents are what users extrapolate with: 81 runs at 1 % noise pin them to ~5 % (posterior
        # sd 0.016-0.021 on these ladders; their prior's is ~0.13), and each median lies within 4
        # posterior sd of the truth (a calibrated posterior misses that by chance with
        # probability 6e-5 per check; measured at most 2.3 sd).
        for k in ("alpha", "beta", "E"):
            assert abs(table.loc[k, "median"] - truth[k]) < 4 * table.loc[k, "sd"], (k, table)
        assert table.loc["alpha", "sd"] < 0.03 and table.loc["beta", "sd"] < 0.03, table
    assert inside >= 19, inside


def test_same_seed_gives_identical_draws(refit, chinchilla_fit, chinchilla_plain_fit):
    for name in chinchilla_fit.param_names:
        np.testing.assert_array_equal(refit.posterior[name], chinchilla_fit.posterior[name])
    # A different seed gives different draws: shown on the plain law (a fifth of a default fit's
    # sampling time), against the plain fit of seed 1.
    other = sb.fit(chinchilla_fit.runs, "chinchilla", likelihood=PLAIN, seed=2, **CI_FIT)
    assert not np.array_equal(other.posterior["alpha"], chinchilla_plain_fit.posterior["alpha"])


def test_second_fit_of_same_shape_reuses_compiled_sampler(synthetic_runs, chinchilla_plain_fit):
    # chinchilla_plain_fit is made in every pytest worker (chinchilla_fit, made by one worker and
    # read from its file by the other, is not), so this worker has compiled its sampler.
    again = sb.fit(synthetic_runs, "chinchilla", likelihood=PLAIN, seed=3, **CI_FIT)
    assert again.settings.wall_time["compile"] == 0.0


def test_poor_sampling_warns_with_advice(synthetic_runs, monkeypatch):
    # The mechanism, not a badly tuned sampler: the session's compiled sampler runs, then one
    # chain's alpha is moved 10 posterior sd away (as a chain stuck in another mode), so R-hat
    # is far above any threshold on every CPU and no new program is compiled.
    from scalebayes import engine

    real = engine.sample

    def stuck_chain(*args, **kwargs):
        blocks, compile_s, n_devices = real(*args, **kwargs)
        draws = blocks[0][0]
        alpha = draws["alpha"].copy()
        alpha[1] += 10 * alpha.std()
        draws["alpha"] = alpha
        return blocks, compile_s, n_devices

    monkeypatch.setattr(engine, "sample", stuck_chain)
    with pytest.warns(ConvergenceWarning, match="R-hat"):
        bad = sb.fit(synthetic_runs, "chinchilla", likelihood=PLAIN, seed=0, **CI_FIT)
    assert not bad.diagnostics.ok and bad.diagnostics.max_rhat > 1.5
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
    assert list(wide.index) == list(chinchilla_fit.reported_names)


def test_pinned_parameter_stays_fixed(synthetic_runs, truth):
    # The plain law: pinning is the law's, and the GP stage would add a second compile. (One
    # device running several chains is covered by the batch fits: 3 tables x 4 chains on 4.)
    pinned = sb.fit(
        synthetic_runs,
        "chinchilla",
        likelihood=PLAIN,
        priors={"E": f"Delta(v={truth['E']})"},
        seed=3,
        **CI_FIT,
    )
    assert np.all(pinned.posterior["E"].values == truth["E"])
    assert_healthy(pinned.diagnostics)


def _below_median_compute(runs):
    return runs.C < np.median(runs.C)


def test_masked_log_density_equals_the_subset_model(synthetic_runs):
    # The zero-weight padding that lets subsets share a compiled sampler must not change the
    # posterior: the log density on the padded data equals the one on the subset, to rounding.
    import jax
    from numpyro.infer.util import potential_energy

    from scalebayes.model import find_centrings, model_data, numpyro_model

    law, likelihood = sb.load_law("chinchilla"), sb.Likelihood(discrepancy="none")
    mask = _below_median_compute(synthetic_runs)
    centrings = find_centrings(law)
    padded = model_data(law, synthetic_runs, likelihood, mask)
    subset = model_data(law, synthetic_runs.subset(mask), likelihood)

    def energy(data, z):
        return potential_energy(numpyro_model, (law, likelihood, centrings, data), {}, z)

    sites = ["alpha", "beta", "sigma", *(c.site for c in centrings)]  # unconstrained coordinates
    for seed in range(3):
        z = dict(zip(sites, jax.random.normal(jax.random.key(seed), (len(sites),)), strict=True))
        assert float(energy(padded, z)) == pytest.approx(float(energy(subset, z)), rel=1e-10)


def test_masked_fit_is_the_subset_and_reuses_the_compiled_sampler(
    synthetic_runs, chinchilla_fit, truth
):
    mask = _below_median_compute(synthetic_runs)
    small = sb.fit(synthetic_runs, "chinchilla", seed=7, mask=mask, **CI_FIT)
    assert small.settings.wall_time["compile"] == 0.0  # same table shape as chinchilla_fit
    assert len(small.runs) == mask.sum()
    np.testing.assert_array_equal(small.runs.C, synthetic_runs.C[mask])
    assert small.idata["log_likelihood"]["loss"].shape[-1] == mask.sum()
    assert_healthy(small.diagnostics)
    table = small.summary()
    # Half the ladder still pins the exponents; the truth sits inside their 90 % intervals
    # (two checks of calibrated intervals both pass with probability 0.81; seed fixed).
    for k in ("alpha", "beta"):
        assert table.loc[k, "lower"] <= truth[k] <= table.loc[k, "upper"]


def test_mask_errors(synthetic_runs):
    with pytest.raises(ScalebayesError, match="no runs"):
        sb.fit(synthetic_runs, "chinchilla", mask=np.zeros(len(synthetic_runs), bool))
    with pytest.raises(ScalebayesError, match="mask"):
        sb.fit(synthetic_runs, "chinchilla", mask=np.ones(3, bool))
