"""The model layer: centring is exact, the likelihood carries the log Jacobian, obs=None samples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer import Predictive
from numpyro.infer.util import log_density
from scipy import stats

from scalebayes.formula import log_evaluate
from scalebayes.laws import load_law
from scalebayes.likelihood import Likelihood
from scalebayes.model import ModelData, find_centrings, numpyro_model, pointwise_log_lik


def _data(law, n=7, seed=0, with_obs=True):
    rng = np.random.default_rng(seed)
    log_inputs = {
        "N": jnp.asarray(rng.uniform(np.log(1e7), np.log(1e10), n)),
        "D": jnp.asarray(rng.uniform(np.log(1e9), np.log(1e12), n)),
    }
    log_inputs["C"] = jnp.log(6.0) + log_inputs["N"] + log_inputs["D"]
    log_inputs = {k: v for k, v in log_inputs.items() if k in law.inputs}
    return ModelData(
        log_inputs=log_inputs,
        log_loss=jnp.asarray(rng.uniform(0.7, 1.2, n)) if with_obs else None,
        weight=jnp.ones(n),
        log_ref={k: jnp.mean(v) for k, v in log_inputs.items()},
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chinchilla", {"E", "A", "B"}),
        ("chinchilla_tied", {"E", "A", "B"}),
        ("power_c", {"E", "A"}),
        ("kaplan", set()),
    ],
)
def test_find_centrings_picks_coefficients_used_once(name, expected):
    assert {c.param for c in find_centrings(load_law(name))} == expected


def test_centring_changes_coordinates_not_the_posterior():
    # In (u, alpha, ...) coordinates the centred model's log density must equal the plain model's
    # density in (log A, alpha, ...) coordinates exactly: the map u -> log A is a shift.
    law = load_law("chinchilla")
    lik = Likelihood(discrepancy="none")
    data = _data(law)
    centrings = find_centrings(law)
    theta = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3, "sigma": 0.02}

    u = {}
    for c in centrings:
        rest = float(log_evaluate(c.rest, theta, data.log_ref))
        u[c.site] = c.sign * np.log(theta[c.param]) + rest
    latent = {"alpha": theta["alpha"], "beta": theta["beta"], "sigma": theta["sigma"], **u}
    centred, _ = log_density(numpyro_model, (law, lik, centrings, data), {}, latent)

    reference = 0.0
    for name, param in law.params.items():
        prior = param.prior.to_numpyro()
        reference += float(prior.log_prob(theta[name]))
        if name in {"E", "A", "B"}:
            reference += np.log(theta[name])  # density of log(coefficient)
    reference += float(numpyro.distributions.HalfNormal(0.1).log_prob(theta["sigma"]))
    mu = law.log_mean(theta, data.log_inputs)
    reference += float(
        jnp.sum(stats.t.logpdf(np.asarray(data.log_loss), 4.0, np.asarray(mu), 0.02))
    )
    assert float(centred) == pytest.approx(reference, rel=1e-10)


def test_pointwise_log_lik_is_on_the_loss_scale():
    law = load_law("chinchilla")
    data = _data(law)
    theta = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3, "sigma": 0.02}
    got = pointwise_log_lik(
        law, Likelihood(discrepancy="none"), theta, data.log_inputs, data.log_loss, data.log_ref
    )
    mu = np.asarray(law.log_mean(theta, data.log_inputs))
    y = np.asarray(data.log_loss)
    # density of loss = density of log loss / loss
    np.testing.assert_allclose(got, stats.t.logpdf(y, 4.0, mu, 0.02) - y, rtol=1e-12)
    normal = pointwise_log_lik(
        law,
        Likelihood(family="normal", discrepancy="none"),
        theta,
        data.log_inputs,
        data.log_loss,
        data.log_ref,
    )
    np.testing.assert_allclose(normal, stats.norm.logpdf(y, mu, 0.02) - y, rtol=1e-12)


def test_obs_none_draws_prior_predictive():
    law = load_law("chinchilla")
    data = _data(law, with_obs=False)
    centrings = find_centrings(law)
    # Centred coefficients have a flat base measure, so sample the plain model for the prior.
    draws = Predictive(numpyro_model, num_samples=200)(
        jax.random.key(0), law, Likelihood(discrepancy="none"), (), data
    )
    assert draws["log_loss"].shape == (200, 7)
    assert np.all(np.isfinite(draws["log_loss"]))
    assert centrings  # the fit uses them; the prior predictive above does not need them


def test_likelihood_rejects_nonsense():
    from scalebayes.errors import LawError

    with pytest.raises(LawError, match="family"):
        Likelihood(family="cauchy")
    with pytest.raises(LawError, match="df"):
        Likelihood(df=-1.0)


def test_curvature_discrepancy_is_the_documented_quadratic():
    from scalebayes.likelihood import model_param_names
    from scalebayes.model import log_mean

    law = load_law("chinchilla")
    lik = Likelihood(discrepancy="curvature")
    curvature_names = lik.discrepancy.coefficient_names
    data = _data(law)
    assert curvature_names(law) == ("curvature_N_N", "curvature_N_D", "curvature_D_D")
    assert model_param_names(law, lik)[-4:] == ("curvature", *curvature_names(law))
    theta = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3, "sigma": 0.02}
    c = {"curvature_N_N": 0.004, "curvature_N_D": -0.002, "curvature_D_D": 0.001}
    zN = np.asarray(data.log_inputs["N"]) - float(data.log_ref["N"])
    zD = np.asarray(data.log_inputs["D"]) - float(data.log_ref["D"])
    expected = np.asarray(law.log_mean(theta, data.log_inputs)) + (
        0.004 * zN**2 - 0.002 * zN * zD + 0.001 * zD**2
    )
    got = log_mean(law, lik, {**theta, **c}, data.log_inputs, data.log_ref)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Zero at the centre of the data: the law alone describes the typical run.
    centre = {k: v for k, v in data.log_ref.items()}
    assert float(log_mean(law, lik, {**theta, **c}, centre, data.log_ref)) == pytest.approx(
        float(law.log_mean(theta, centre)), rel=1e-14
    )
    # Without a discrepancy the model's mean is the law's.
    np.testing.assert_array_equal(
        log_mean(law, Likelihood(discrepancy="none"), theta, data.log_inputs, data.log_ref),
        law.log_mean(theta, data.log_inputs),
    )


def test_curvature_model_density_is_prior_times_likelihood():
    # The sampled sites (non-centred z, scale) must give the stated prior on the coefficients
    # and the Student-t likelihood around the curved mean.
    law = load_law("chinchilla")
    lik = Likelihood(discrepancy="curvature")
    curvature_names = lik.discrepancy.coefficient_names
    data = _data(law)
    theta = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3, "sigma": 0.02}
    raw = {"curvature_N_N": 0.5, "curvature_N_D": -1.0, "curvature_D_D": 0.25}
    latent = {**theta, "curvature": 0.006, **{f"_{k}_raw": v for k, v in raw.items()}}
    got, _ = log_density(numpyro_model, (law, lik, (), data), {}, latent)

    reference = sum(float(p.prior.to_numpyro().log_prob(theta[n])) for n, p in law.params.items())
    reference += float(numpyro.distributions.HalfNormal(0.1).log_prob(0.02))
    reference += float(numpyro.distributions.HalfNormal(0.01).log_prob(0.006))
    reference += float(np.sum(stats.norm.logpdf(list(raw.values()))))
    zN = np.asarray(data.log_inputs["N"]) - float(data.log_ref["N"])
    zD = np.asarray(data.log_inputs["D"]) - float(data.log_ref["D"])
    coef = {k: 0.006 * v for k, v in raw.items()}
    mu = np.asarray(law.log_mean(theta, data.log_inputs)) + (
        coef["curvature_N_N"] * zN**2
        + coef["curvature_N_D"] * zN * zD
        + coef["curvature_D_D"] * zD**2
    )
    reference += float(np.sum(stats.t.logpdf(np.asarray(data.log_loss), 4.0, mu, 0.02)))
    assert float(got) == pytest.approx(reference, rel=1e-10)
    assert set(curvature_names(law)) == set(raw)


def test_unknown_discrepancy_is_refused():
    from scalebayes.errors import LawError

    with pytest.raises(LawError, match="discrepancy 'spline'"):
        Likelihood(discrepancy="spline")


def test_auto_discrepancy_is_the_gp_where_it_serves_and_none_elsewhere():
    """The default ('auto') is resolved per law: the GP serves laws of at most two inputs."""
    from scalebayes.discrepancy import GP, Auto, NoDiscrepancy

    assert Likelihood().discrepancy == Auto()
    assert Likelihood().for_law(load_law("chinchilla")).discrepancy == GP()
    assert Likelihood().for_law(load_law("power_c")).discrepancy == GP()
    assert Likelihood().for_law(load_law("data_constrained")).discrepancy == NoDiscrepancy()
    explicit = Likelihood(discrepancy="curvature", family="normal")
    assert explicit.for_law(load_law("chinchilla")) is explicit
    resolved = Likelihood(family="normal").for_law(load_law("chinchilla"))
    assert (resolved.family, resolved.discrepancy) == ("normal", GP())


def test_likelihood_round_trips_and_reads_the_older_layout():
    """Saved fits store the likelihood as a dict; files of schema 1 held the discrepancy's name
    and its prior beside the noise's."""
    from scalebayes.discrepancy import GP

    lik = Likelihood(df=None, discrepancy=GP(amplitude_prior="LogNormal(loc=-3.0, scale=0.5)"))
    assert Likelihood.from_dict(lik.to_dict()) == lik
    old = {
        "family": "student_t",
        "df": 4.0,
        "sigma_prior": "HalfNormal(scale=0.1)",
        "nu_prior": "Gamma(concentration=2.0, rate=0.1)",
        "discrepancy": "gp",
        "curvature_prior": "HalfNormal(scale=0.01)",
        "gp_amplitude_prior": "LogNormal(loc=-3.0, scale=0.5)",
    }
    assert Likelihood.from_dict(old) == Likelihood(discrepancy=GP("LogNormal(loc=-3.0, scale=0.5)"))


def test_prior_overrides_reach_the_discrepancy():
    from scalebayes.discrepancy import GP
    from scalebayes.errors import LawError

    lik = Likelihood(discrepancy="gp").with_priors(
        {"sigma": "HalfNormal(scale=0.05)", "gp_amplitude": "LogNormal(loc=-3.0, scale=0.5)"}
    )
    assert lik.sigma_prior == "HalfNormal(scale=0.05)"
    assert lik.discrepancy == GP(amplitude_prior="LogNormal(loc=-3.0, scale=0.5)")
    with pytest.raises(LawError, match="no parameter"):
        Likelihood(discrepancy="none").with_priors({"gp_amplitude": "HalfNormal(scale=1.0)"})
