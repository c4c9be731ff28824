"""The Gaussian-process discrepancy: its basis, its reference point, and what it does to the band."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.known_fits import GP_LAW_TRUTH as LAW_TRUTH
from tests.known_fits import gp_ladder_log_inputs, tangent_part

from scalebayes.discrepancy import NoDiscrepancy
from scalebayes.discrepancy import hsgp as gp
from scalebayes.errors import LawError
from scalebayes.laws import load_law
from scalebayes.likelihood import Likelihood, model_param_names, reported_param_names
from scalebayes.model import log_mean, model_data, reference_point

GP = Likelihood(discrepancy="gp")  # the default's GP, with its quadratic (test_gp_quadratic.py)
K = gp.BASIS**2 + 3  # the GP's 36 weights, then the quadratic's N*N, N*D, D*D


@pytest.fixture(scope="module")
def ladder():
    """Log N, log D of an isoFLOP-like ladder: 3 decades of compute, 5 sizes per budget."""
    return {name: jnp.asarray(x) for name, x in gp_ladder_log_inputs().items()}


@pytest.fixture(scope="module")
def ladder_loss(ladder):
    """Log loss of the ladder's runs: the plain law at LAW_TRUTH with 0.5 % noise (seed 0)."""
    law = load_law("chinchilla")
    noise = 0.005 * np.random.default_rng(0).standard_normal(ladder["N"].shape)
    return np.asarray(law.log_mean(LAW_TRUTH, ladder)) + noise


@pytest.fixture(scope="module")
def ref(ladder, ladder_loss):
    return reference_point(load_law("chinchilla"), GP, ladder, ladder_loss)


def _draws(
    law, n_draws: int, amplitude: float, seed: int = 0, curvature: float | None = None
) -> dict[str, jax.Array]:
    """Weights from their prior given ``amplitude``, shape (n_draws, 1) each; the law fixed.

    The quadratic's weights have sd ``curvature`` (default: the GP's own curvature_scale).
    """
    names = gp.weight_names(law.inputs, quadratic=True)
    curvature = GP.discrepancy.curvature_scale if curvature is None else curvature
    scale = jnp.concatenate(
        [amplitude * gp.spectral_scale(len(law.inputs)), jnp.full(3, curvature)]
    )
    w = jax.random.normal(jax.random.key(seed), (len(names), n_draws, 1))
    params = {name: scale[k] * w[k] for k, name in enumerate(names)}
    params.update(LAW_TRUTH, gp_amplitude=amplitude)
    return params


def _numpy(arrays: dict) -> dict:
    return {k: np.asarray(v) for k, v in arrays.items()}


def test_names_and_reported_names():
    law = load_law("chinchilla")
    names = model_param_names(law, GP)
    assert names[-K - 1] == "gp_amplitude" and names[-1] == f"gp_w{K - 1}"
    assert len(gp.weight_names(law.inputs)) == gp.BASIS**2
    # Summaries and plots show the amplitude, not the 39 basis weights.
    assert "gp_amplitude" in reported_param_names(law, GP)
    assert not any(n.startswith("gp_w") for n in reported_param_names(law, GP))


def test_three_input_law_is_refused():
    with pytest.raises(LawError, match="at most 2 inputs"):
        gp.weight_names(("N", "D", "U"))


def test_mode_recovers_the_law(ref):
    """The GP is anchored at the plain law's mode: on 35 runs with 0.5 % noise, close to truth.

    Tolerances are ~3 posterior sds of a NUTS fit of the same ladder (sd(alpha) ~ 0.01).
    """
    for name, tolerance in (("alpha", 0.04), ("beta", 0.04), ("E", 0.1)):
        assert float(ref[f"_gp_mode_{name}"]) == pytest.approx(LAW_TRUTH[name], abs=tolerance)


def test_discrepancy_is_orthogonal_to_the_law_tangent_space(ladder, ref):
    """On the fitted runs the GP has no part a small change of the law's parameters could make."""
    law = load_law("chinchilla")
    params = _draws(law, 50, 0.02)
    # In NumPy (no program to compile): test_numpy_term_is_the_jax_term shows they agree.
    delta = gp.numpy_term(law, _numpy(params), _numpy(ladder), _numpy(ref))  # (50, n)
    assert delta.shape == (50, ladder["N"].shape[0])
    # Exact but for the 1e-9 ridge in the projection, which on nearly collinear columns (a
    # coefficient's and its exponent's, over 3 decades) leaves ~1e-5 of the GP's spread.
    assert np.abs(tangent_part(law, ladder, ref, delta)).max() < 1e-4 * np.std(delta)
    assert np.std(delta) > 1e-3  # and the GP is not trivially zero


def test_model_data_basis_matches_log_mean(synthetic_runs):
    """The sampler's precomputed basis and log_mean's own give the same mean at the runs."""
    law = load_law("chinchilla")
    data = model_data(law, synthetic_runs, GP)
    params = _draws(law, 3, 0.02)
    weights = gp.stacked_weights(law.inputs, params, quadratic=True)  # (3, 1, K)
    direct = np.asarray(log_mean(law, GP, params, data.log_inputs, data.log_ref))
    plain = np.asarray(law.log_mean(params, data.log_inputs))
    precomputed = plain + (weights @ np.asarray(data.extra["gp_basis"]).T)[:, 0]
    np.testing.assert_allclose(precomputed, direct, atol=1e-12)


def test_location_information_is_the_expected_squared_score():
    """The whitening's information per run, E[(d log p / d mu)^2] under the noise, against the
    integral on a grid over +-100 sd (the scores are bounded, the Student-t tails beyond hold
    < 1e-7 of the mass: the sum is exact to ~1e-5; quadrature rather than Monte Carlo draws,
    whose Student-t sampler took seconds to compile)."""
    x = jnp.linspace(-2.0, 2.0, 400_001)
    dx = float(x[1] - x[0])
    for family, nu in (("normal", None), ("student_t", 4.0), ("student_t", 10.0)):
        lik = Likelihood(family=family)

        def log_p(mu, xi, lik=lik, nu=nu):
            return lik.noise_distribution(mu, 0.02, nu).log_prob(xi)

        score = jax.vmap(jax.grad(log_p), in_axes=(None, 0))(0.0, x)
        density = jnp.exp(jax.vmap(log_p, in_axes=(None, 0))(0.0, x))
        assert float(jnp.sum(density) * dx) == pytest.approx(1.0, abs=1e-4)
        expected = float(lik.location_information(0.02, nu))
        assert float(jnp.sum(density * score**2) * dx) == pytest.approx(expected, rel=1e-3)


def test_numpy_spectral_scale_is_numpyro_s():
    """The whitening's table arrays use a NumPy copy of NumPyro's spectral density (no compile)."""
    for dim in (1, 2):
        expected = np.asarray(gp.spectral_scale(dim), dtype=float)
        # NumPyro's runs in JAX's default float32 here: agreement to its rounding
        np.testing.assert_allclose(gp.numpy_spectral_scale(dim), expected, rtol=1e-6)


@pytest.mark.parametrize("quadratic", [True, False])
def test_centred_and_whitened_gp_modules_are_one_posterior(synthetic_runs, quadratic):
    """The whitened form (the default) and the centred one (a retry) are a change of variables.

    The whitened module moves z, with raw weights x(z) and w = scale * x: U_centred(w) -
    U_whitened(z) = sum(log scale) + log |dx/dz|, whatever the point. The Jacobian is computed
    here by automatic differentiation, apart from the module's closed form. With the quadratic
    and without it (``gp_alone``: no coordinates beside the GP's).
    """
    import functools

    from numpyro.infer.util import potential_energy

    from scalebayes.discrepancy import whitening
    from scalebayes.discrepancy.gp import RAW_SITE, _gp_model

    law = load_law("chinchilla")
    lik = GP if quadratic else Likelihood(discrepancy="gp_alone")
    data = lik.discrepancy.with_whitening(law, model_data(law, synthetic_runs, lik))
    whitened = functools.partial(_gp_model, law, lik, lik.discrepancy, "whitened")
    centred = functools.partial(_gp_model, law, lik, lik.discrepancy, "centred")
    pairs = 3 if quadratic else 0
    rng = np.random.default_rng(0)
    for _ in range(3):
        amplitude, sigma = rng.uniform(0.005, 0.5), rng.uniform(0.002, 0.05)
        z = jnp.asarray(rng.normal(size=gp.BASIS**2 + pairs))
        information = GP.location_information(sigma, 4.0)

        def raw_of(z, amplitude=amplitude, information=information):
            return whitening.raw_weights(z, amplitude, information, data.extra)[0]

        raw = raw_of(z)
        log_det = np.linalg.slogdet(np.asarray(jax.jacfwd(raw_of)(z)))[1]
        scale = np.concatenate(
            [amplitude * gp.numpy_spectral_scale(2), np.full(pairs, GP.discrepancy.curvature_scale)]
        )
        # unconstrained coordinates: log of the positive sites
        common = {"gp_amplitude": np.log(amplitude), "sigma": np.log(sigma)}
        u_w = potential_energy(whitened, (data,), {}, {**common, RAW_SITE: z})
        u_c = potential_energy(centred, (data,), {}, {**common, RAW_SITE: scale * np.asarray(raw)})
        assert float(u_c - u_w) == pytest.approx(float(np.sum(np.log(scale)) + log_det), rel=1e-9)


def test_whitened_gp_weights_are_standard_given_the_noise(synthetic_runs):
    """With Normal noise, the GP's weights given the amplitude, the noise and the quadratic are
    exactly Normal(m, P^-1), and whitening makes z_gp standard: U(z) - |z_gp|^2 / 2 does not
    depend on z_gp (to round-off), at a small amplitude and at a large one."""
    import functools

    from numpyro.infer.util import potential_energy

    from scalebayes.discrepancy.gp import RAW_SITE, _gp_model

    law = load_law("chinchilla")
    normal = Likelihood(family="normal", discrepancy="gp")
    data = normal.discrepancy.with_whitening(law, model_data(law, synthetic_runs, normal))
    whitened = functools.partial(_gp_model, law, normal, normal.discrepancy, "whitened")
    rng = np.random.default_rng(1)
    n_gp = gp.BASIS**2
    for amplitude in (0.003, 0.5):
        common = {"gp_amplitude": np.log(amplitude), "sigma": np.log(0.01)}
        z_q = rng.normal(size=K - n_gp)
        rest = []
        for _ in range(3):
            z_gp = 2 * rng.normal(size=n_gp)
            z = np.concatenate([z_gp, z_q])
            u = potential_energy(whitened, (data,), {}, {**common, RAW_SITE: z})
            rest.append(float(u) - 0.5 * float(z_gp @ z_gp))
        assert np.ptp(rest) < 1e-7 * max(1.0, abs(rest[0]))


def test_masked_reference_equals_the_subset_reference(ladder, ladder_loss):
    law = load_law("chinchilla")
    mask = np.asarray(ladder["N"] + ladder["D"] < np.median(ladder["N"] + ladder["D"]))
    padded = reference_point(law, GP, ladder, ladder_loss, weight=mask.astype(float))
    subset = reference_point(law, GP, {k: v[mask] for k, v in ladder.items()}, ladder_loss[mask])
    assert set(padded) == set(subset)
    # The mode is an optimiser's answer (gtol 1e-8): equal to far below any posterior sd.
    for key in padded:
        np.testing.assert_allclose(padded[key], subset[key], rtol=1e-5, atol=1e-8)


def test_band_widens_beyond_the_data_and_stops_at_the_box(ladder, ref):
    """Prior spread of the discrepancy along the compute-optimal ray of the ladder (1e18-1e21).

    With weights from their prior and amplitude a, a true SE GP has sd a everywhere; less its
    part along the law's tangent space it is far below a on the data and grows with distance beyond them,
    until the inputs reach the box's edge, past which it is constant. 4000 draws give each sd
    to ~1.1 %, so the factor-of-2 steps asserted are far outside Monte Carlo noise. The GP's
    part alone (the quadratic's weights 0): the quadratic's growth is test_gp_quadratic's.
    """
    law = load_law("chinchilla")
    a = 0.01
    params, ref = _numpy(_draws(law, 4000, a, seed=3, curvature=0.0)), _numpy(ref)
    on_data = np.std(gp.numpy_term(law, params, _numpy(ladder), ref), axis=0)  # NumPy: as above

    def ray(budgets):
        n = np.sqrt(np.asarray(budgets) / 120)
        return {"N": np.log(n), "D": np.log(np.asarray(budgets) / (6 * n))}

    beyond = np.std(gp.numpy_term(law, params, ray([1e22, 1e23, 1e25]), ref), 0)
    assert on_data.max() < a
    assert beyond[0] > 2 * on_data.max() and beyond[1] > 2 * beyond[0] and beyond[2] > beyond[1]
    assert not np.asarray(gp.outside(law.inputs, ray([1e23]), ref)).any()
    past_box = gp.numpy_term(law, params, ray([1e40, 1e50]), ref)
    np.testing.assert_allclose(past_box[:, 0], past_box[:, 1], rtol=1e-12)


def test_far_points_are_flagged_and_finite(ref):
    law = load_law("chinchilla")
    very_far = {"N": jnp.log(jnp.array([1e15])), "D": jnp.log(jnp.array([1e17]))}
    assert np.asarray(gp.outside(law.inputs, very_far, ref)).all()
    params = _draws(law, 10, 0.01)
    assert np.isfinite(np.asarray(log_mean(law, GP, params, very_far, ref))).all()


@pytest.fixture(scope="module")
def gp_fit(chinchilla_fit):
    """The session's default fit (discrepancy auto: the GP) of runs simulated from the plain law."""
    assert chinchilla_fit.likelihood == GP
    return chinchilla_fit


@pytest.fixture(scope="module")
def plain_fit(chinchilla_plain_fit):
    """The same runs, seed and settings with no discrepancy (sampled on its own)."""
    return chinchilla_plain_fit


def test_fit_recovers_the_law_and_finds_no_discrepancy(gp_fit, truth):
    """Simulated from the law with 1 % noise: the GP must not steal the law's exponents.

    99 % intervals hold the truth for each of the 5 law parameters (a miss by chance in at most
    5 % of suites), and the GP's
    amplitude is not pushed up (Epoch's real runs push it to ~0.09).
    """
    d = gp_fit.diagnostics
    assert d.max_rhat < 1.05 and d.n_divergent <= 10, d
    summary = gp_fit.summary(ci_prob=0.99)
    for name in ("E", "A", "B", "alpha", "beta"):
        assert summary.loc[name, "lower"] <= truth[name] <= summary.loc[name, "upper"], name
    # Nothing to explain: the data leave the amplitude at or below its prior median of 0.01.
    assert float(gp_fit.posterior["gp_amplitude"].median()) < 0.012
    assert "gp_amplitude" in summary.index and "gp_w0" not in summary.index


def test_the_law_part_is_the_plain_law_posterior(gp_fit, plain_fit):
    """Module 1 is the plain law's fit, sampled on its own: same seed and settings, same draws.

    The GP (module 2) does not feed back into the law, and the two modules are sampled apart, so
    with the same seed the law's draws are the plain fit's, exactly; its noise scale is
    reported as ``sigma_law``.
    """
    for name in ("E", "A", "B", "alpha", "beta"):
        np.testing.assert_array_equal(
            gp_fit.posterior[name].to_numpy(), plain_fit.posterior[name].to_numpy(), name
        )
    np.testing.assert_array_equal(
        gp_fit.posterior["sigma_law"].to_numpy(), plain_fit.posterior["sigma"].to_numpy()
    )
    assert not np.array_equal(
        gp_fit.posterior["sigma"].to_numpy(), plain_fit.posterior["sigma"].to_numpy()
    )
    assert "sigma_law" in gp_fit.summary().index


def test_joined_sample_stats_and_log_likelihood(gp_fit):
    """The joined fit counts both modules' leapfrog steps and scores law(draw) + GP(draw)."""
    from scalebayes.model import pointwise_log_lik

    stats = gp_fit.idata["sample_stats"]
    assert (stats["n_steps"] > stats["gp_n_steps"]).all()
    # Whether the GP module was sampled again (centred) reaches the fit's diagnostics.
    retried, kept = bool(stats["retried"].any()), bool(stats["retry_kept"].any())
    assert (gp_fit.diagnostics.retried, gp_fit.diagnostics.retry_kept) == (retried, kept)
    assert kept == (retried and bool(stats["gp_centred"].all()))
    params = {n: gp_fit.posterior[n].to_numpy()[..., None] for n in gp_fit.param_names}
    log_inputs = {n: np.asarray(v) for n, v in gp_fit.runs.log_inputs().items()}
    expected = pointwise_log_lik(
        gp_fit.law,
        GP,
        params,
        log_inputs,
        np.log(gp_fit.runs.loss),
        gp_fit.log_ref,
    )
    got = gp_fit.idata["log_likelihood"]["loss"].to_numpy()
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-9, atol=1e-9)


def test_allocation_is_the_law_s_on_every_draw(gp_fit):
    """optimal() leaves the GP out: N* equals Hoffmann's closed form of each draw's law."""
    import scalebayes as sb
    from test_allocate import chinchilla_closed_form

    budgets = np.array([1e21, 1e24])
    n_star, _ = chinchilla_closed_form(gp_fit.posterior, budgets)
    allocation = sb.optimal(gp_fit, budgets)
    got = allocation.N.to_numpy().reshape(n_star.shape)
    np.testing.assert_allclose(got, n_star, rtol=1e-6)


def test_predictions_include_the_gp_and_survive_save_and_load(gp_fit, tmp_path):
    import scalebayes as sb

    points = {"N": np.array([1e9, 7e10]), "D": np.array([2e10, 1.4e12])}
    log_inputs = {k: np.log(v) for k, v in points.items()}
    params = {n: gp_fit.posterior[n].to_numpy()[..., None] for n in gp_fit.param_names}
    with_gp = np.asarray(gp_fit.log_mean(params, log_inputs))
    law = np.asarray(gp_fit.law.log_mean(params, log_inputs))
    assert not np.allclose(with_gp, law)  # the GP term is there
    path = sb.save_fit(gp_fit, tmp_path / "gp.nc")
    again = sb.load_fit(path)
    np.testing.assert_allclose(np.asarray(again.log_mean(params, log_inputs)), with_gp, rtol=1e-12)


def test_prediction_far_beyond_the_box_warns(gp_fit):
    import scalebayes as sb

    with pytest.warns(sb.ExtrapolationWarning, match="half-spans"):
        sb.predict(gp_fit, N=[1e15], D=[1e17])
    with warnings.catch_warnings():
        warnings.simplefilter("error", sb.ExtrapolationWarning)
        sb.predict(gp_fit, N=[1e10], D=[2e11])  # inside the ladder's reach: no warning


def test_loss_at_the_optimum_is_the_law_s_and_never_rises(gp_fit):
    """L*, like N* and D*, leaves the GP out: its mean, reverting to zero beyond the runs, bent
    L*(C) upwards past them (Epoch's runs: from ~1e25 FLOPs), which no budget buys."""
    import scalebayes as sb

    budgets = np.geomspace(1e21, 1e30, 10)  # the ladder reaches 3e21
    with pytest.warns(sb.ExtrapolationWarning, match="beyond 100x"):
        allocation = sb.optimal(gp_fit, budgets)
    n, d = allocation.N.to_numpy(), allocation.D.to_numpy()
    params = {k: gp_fit.posterior[k].to_numpy()[..., None] for k in gp_fit.param_names}
    at = {"N": np.log(n), "D": np.log(d)}
    law = np.exp(np.asarray(gp_fit.law.log_mean(params, at)))
    np.testing.assert_allclose(allocation.loss.to_numpy(), law, rtol=1e-9)
    whole = np.exp(np.asarray(gp_fit.log_mean(params, at)))
    assert np.abs(whole / law - 1).max() > 1e-3  # the GP's term is there, and left out
    # ... and given beside L*, as the CLI's note does: the whole model at the same runs
    np.testing.assert_allclose(sb.allocate.whole_model_loss(gp_fit, allocation), whole, rtol=1e-9)
    assert sb.allocate.whole_model_loss(gp_fit.law_module(), allocation) is None
    loss = allocation.loss.to_numpy()
    assert (np.diff(loss, axis=-1) <= 1e-12 * loss[..., :-1]).all()


def test_gp_covers_a_bend_the_law_lacks():
    """Known truth: the law bent by 1e-3 (ln C - ln C_mid)^2 in log loss (+2-3 % beyond the data).

    The reduced CI version of benchmarks/discrepancy_truth.py (seed 0 of its 20 replicates):
    fitted on 81 runs up to 3e21 FLOPs, scored on the 18 runs at 1e22 and 3e22. Over the 20
    replicates the default's 90 % intervals (GP and quadratic) held 78-100 % of them (mean 94 %;
    the GP alone 61-100 %, mean 86 %), the plain law's 11-61 % (mean 27 %)
    (benchmarks/results/discrepancy_truth_quadratic.json), so each bound below holds on every
    replicate measured.
    """
    import scalebayes as sb
    from conftest import CI_FIT, assert_healthy
    from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design

    held_budgets = (1e22, 3e22)
    design = isoflop_design(CHINCHILLA_BUDGETS + held_budgets)
    runs = sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.005, seed=0)
    table = runs.table.copy()
    log_c = np.log(table["C"].to_numpy())
    table["loss"] *= np.exp(1e-3 * (log_c - np.mean(np.log(CHINCHILLA_BUDGETS))) ** 2)
    runs = sb.load_runs(table[["N", "D", "C", "loss"]])
    held = table["C"].to_numpy() > max(CHINCHILLA_BUDGETS) * 1.01
    fit = sb.fit(runs.subset(~held), "chinchilla", likelihood=GP, seed=0, **CI_FIT)
    assert_healthy(fit.diagnostics)
    coverage = {}
    # The plain law's fit of the same runs and seed is the GP fit's law module, draw for draw
    # (test_law_module_is_the_plain_fit), so one NUTS fit serves both.
    for discrepancy, one in (("none", fit.law_module()), ("gp", fit)):
        pred = sb.predict(one, N=table["N"][held], D=table["D"][held], kind="new_run", seed=0)
        draws = pred.loss.stack(sample=("chain", "draw")).transpose("point", "sample").to_numpy()
        low, high = np.quantile(draws, [0.05, 0.95], axis=1)
        observed = table["loss"].to_numpy()[held]
        coverage[discrepancy] = np.mean((observed >= low) & (observed <= high))
    assert coverage["gp"] >= 0.75 and coverage["none"] <= 0.65, coverage


def test_basis_of_a_single_point_is_that_row_of_the_basis(ref):
    """Shape-() inputs (one point, as plan's search passes them) give the K basis values."""
    law = load_law("chinchilla")
    n, d = jnp.log(jnp.array([1e9, 3e10])), jnp.log(jnp.array([2e10, 5e11]))
    rows = gp.basis(law, {"N": n, "D": d}, ref)
    one = gp.basis(law, {"N": n[1], "D": d[1]}, ref)
    assert one.shape == (K,)
    np.testing.assert_allclose(np.asarray(one), np.asarray(rows[1]), rtol=1e-12, atol=1e-15)


def test_law_module_is_the_plain_fit(gp_fit, plain_fit, tmp_path):
    """The law's module is the plain fit, draws and each run's log density alike, and saves."""
    import scalebayes as sb

    law_fit = gp_fit.law_module()
    assert law_fit.likelihood.discrepancy == NoDiscrepancy()
    # Its reference point too, the law's inputs' centre and none of the GP's entries: jitted
    # decisions (plan, optimal) then compile once for a GP fit's law and a plain fit alike.
    assert law_fit.log_ref.keys() == plain_fit.log_ref.keys() == {"N", "D"}
    for name, value in plain_fit.log_ref.items():
        np.testing.assert_array_equal(law_fit.log_ref[name], value, name)
    assert set(law_fit.posterior.data_vars) == set(plain_fit.posterior.data_vars)
    for name in plain_fit.param_names:
        np.testing.assert_array_equal(law_fit.posterior[name], plain_fit.posterior[name], name)
    # Same draws, log densities computed by two code paths: equal to float64 round-off, in
    # absolute terms too (log densities of order 1 cross zero, where relative error explodes).
    np.testing.assert_allclose(
        law_fit.idata["log_likelihood"]["loss"].to_numpy(),
        plain_fit.idata["log_likelihood"]["loss"].to_numpy(),
        rtol=1e-9,
        atol=1e-9,  # the same density computed by two compiled programs: rounding differs
    )
    assert plain_fit.law_module() is plain_fit
    loaded = sb.load_fit(sb.save_fit(law_fit, tmp_path / "law.nc"))
    assert loaded.likelihood == law_fit.likelihood


def test_plan_is_the_law_s_like_the_allocation(gp_fit, plain_fit):
    """plan() searches with the law's module, so a gp fit plans as the plain fit of its seed."""
    import scalebayes as sb

    with_gp = sb.plan(gp_fit, 1.9, inference_tokens=[0.0, 1e13]).table
    plain = sb.plan(plain_fit, 1.9, inference_tokens=[0.0, 1e13]).table
    for column in ("N", "D", "p_new_run", "p_mean"):
        np.testing.assert_allclose(with_gp[column], plain[column], rtol=1e-9, err_msg=column)


def test_numpy_term_is_the_jax_term(ladder, ref):
    """Predictions evaluate the GP in NumPy (no program to compile): the JAX term, to rounding.

    Inside the box and past it (clamped), draws of shape (S, 1) against points of shape (n,).
    """
    law = load_law("chinchilla")
    params = {k: np.asarray(v) for k, v in _draws(law, 20, 0.05).items()}
    ref_np = {k: np.asarray(v) for k, v in ref.items()}
    far = {"N": np.log([1e9, 1e12, 1e30]), "D": np.log([2e10, 1e14, 1e40])}
    for points in ({k: np.asarray(v) for k, v in ladder.items()}, far):
        np.testing.assert_allclose(
            gp.numpy_basis(law, points, ref_np), gp.basis(law, points, ref), atol=1e-12
        )
        expected = np.asarray(gp.term(law, params, points, ref))
        np.testing.assert_allclose(gp.numpy_term(law, params, points, ref_np), expected, atol=1e-12)
