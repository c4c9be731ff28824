"""The quadratic discrepancy: projected off the law's tangent space, sampled with the law, shared
by a grouped fit's groups."""

from __future__ import annotations

import functools
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import scalebayes as sb
from scalebayes.decision_tables import prediction_table
from scalebayes.discrepancy import GP, Auto, Quadratic, from_dict
from scalebayes.discrepancy.quadratic import RAW_SITE, numpy_columns
from scalebayes.errors import LawError
from scalebayes.formula_jacobian import log_jacobian
from scalebayes.groups.fitting import by_group, grouped_data, strong_groups
from scalebayes.groups.pooling import Plan, Pooling, grouped_model
from scalebayes.likelihood import Likelihood
from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate, simulate_groups
from scalebayes.testing import grouped_fit_from_draws, jittered_draws

NAMES = ("quadratic_N_N", "quadratic_N_D", "quadratic_D_D")


@pytest.fixture(scope="module")
def law():
    return sb.load_law("chinchilla")


@pytest.fixture(scope="module")
def two_groups():
    design = isoflop_design([1e19, 1e20, 1e21], points_per_budget=5)
    return simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, {"alpha": 0.1, "E": 0.1}, [design, design], seed=1
    )[0]


def alike_groups_draws(n_draws: int) -> dict[str, np.ndarray]:
    """Pooled draws (2 chains) of every law and noise parameter, the two groups' alike."""
    base = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.01, chains=2, draws=n_draws)
    draws = {}
    for name in ("E", "A", "alpha", "B", "beta", "sigma"):
        draws[name] = base[name]
        draws[f"{name}_spread"] = np.full((2, n_draws), 0.05)
        draws[f"{name}_group"] = np.stack([base[name], base[name]], axis=-1)
    return draws


def test_names_scale_and_registry(law):
    q = Quadratic()
    assert q.param_names(law, ("sigma",)) == NAMES
    assert set(q.param_docs(law)) == set(NAMES)
    assert q.sites(law)[RAW_SITE][1] == (3,)
    assert from_dict(q.to_dict()) == q and from_dict({"name": "quadratic", "scale": 0.01}).scale
    for bad in (0.0, -1.0, float("inf"), True, "0.002"):
        with pytest.raises(LawError, match="positive number"):
            Quadratic(scale=bad)
    # Grouped fits sample the discrepancy in their own model: the GP, sampled apart, cannot be.
    assert isinstance(Auto().for_groups(law), Quadratic)
    assert Auto().resolve(law) == GP()  # single fits keep the GP
    with pytest.raises(LawError, match="use 'quadratic'"):
        GP().for_groups(law)


def test_columns_are_off_the_tangent_space_and_jax_agrees(law):
    runs = simulate("chinchilla", EPOCH_CHINCHILLA, isoflop_design([1e19, 1e20, 1e21]), seed=0)
    likelihood = Likelihood(discrepancy=Quadratic()).for_law(law)
    data = sb.model.model_data(law, runs, likelihood)
    ref = {k: np.asarray(v) for k, v in data.log_ref.items()}
    inputs = {n: np.log(runs.table[n].to_numpy()) for n in ("N", "D")}
    columns = numpy_columns(law, inputs, ref)
    mode = {n: ref[f"_quadratic_mode_{n}"] for n in law.param_names}
    tangent = log_jacobian(law.expr, mode, inputs, law.free_param_names)
    # Least-squares residuals are orthogonal to the tangent space's columns. Relative to both
    # columns' norms the inner products are what the solve's 1e-9 ridge and the tangent's
    # conditioning leave (measured 2e-7); an unprojected product reads 0.1-1.
    scale = np.linalg.norm(tangent, axis=0)[:, None] * np.linalg.norm(columns, axis=0)
    assert np.max(np.abs(tangent.T @ columns) / scale) < 1e-5
    assert np.all(np.linalg.norm(columns, axis=0) > 1e-3)  # something is left: the curvature
    # The sampler's term (JAX) equals the predictions' (NumPy), near the runs and 3 decades out.
    coefficients = {name: c for name, c in zip(NAMES, (0.002, -0.001, 0.003), strict=True)}
    for shift in (0.0, np.log(1e3)):
        far = {n: v + shift for n, v in inputs.items()}
        jax_term = Quadratic().term(law, coefficients, {n: jnp.asarray(v) for n, v in far.items()},
                                    {k: jnp.asarray(v) for k, v in ref.items()})  # fmt: skip
        numpy_term = Quadratic().numpy_term(law, coefficients, far, ref)
        np.testing.assert_allclose(np.asarray(jax_term), numpy_term, rtol=1e-9, atol=1e-12)


def test_all_shared_with_the_quadratic_is_exactly_the_single_fit(law, two_groups):
    """Every law and noise parameter shared: the grouped model with the quadratic has the single
    fit's density with the quadratic, to rounding (same sites, same reference, same term), and
    the term is in it (bent coefficients move the density by more than their prior does)."""
    from numpyro.infer.util import potential_energy

    from scalebayes.model import find_centrings, model_data, numpyro_model

    groups = ("g0", "g1")
    likelihood = Likelihood(discrepancy=Quadratic()).for_law(law)
    modes = {n: "shared" for n in ("E", "A", "alpha", "B", "beta", "sigma", "discrepancy")}
    plan = Pooling(modes=modes).plan(law, likelihood, strong_groups(two_groups, groups))
    grouped = by_group(grouped_data(law, likelihood, two_groups, groups), len(groups))
    single = model_data(law, two_groups, likelihood)
    point = {"_log_E_term": jnp.log(1.9), "alpha": jnp.log(0.3), "beta": jnp.log(0.4),
             "_log_A_term": -0.2, "_log_B_term": -0.9, "sigma": jnp.log(0.01)}  # fmt: skip
    model = functools.partial(numpyro_model, law, likelihood, find_centrings(law))
    mine = functools.partial(grouped_model, law, likelihood, plan)
    energies = []
    for raw in ([0.0, 0.0, 0.0], [30.0, -30.0, 30.0]):
        at = {**point, RAW_SITE: jnp.asarray(raw)}
        want = float(potential_energy(model, (single,), {}, at))
        got = float(potential_energy(mine, (grouped,), {}, at))
        assert got == pytest.approx(want, rel=1e-9)
        energies.append(got)
    prior = 0.5 * 3 * 30.0**2  # the raw coefficients' standard Normal
    assert abs(energies[1] - energies[0] - prior) > 1.0


def test_groups_share_the_term_in_decisions_and_files(law, two_groups, tmp_path):
    """A grouped fit's group and new-group fits predict law + the shared term; saved and read."""
    likelihood = Likelihood(discrepancy=Quadratic())
    plan_names = ["E", "A", "alpha", "B", "beta", "sigma"]
    base = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.01, chains=2, draws=50)
    draws = {}
    for name in plan_names:
        draws[name] = base[name]
        draws[f"{name}_spread"] = np.full((2, 50), 0.05)
        draws[f"{name}_group"] = np.stack([base[name], base[name] * 1.02], axis=-1)
    coefficients = (0.003, -0.002, 0.004)
    for name, c in zip(NAMES, coefficients, strict=True):
        draws[name] = np.full((2, 50), c)
    fit = grouped_fit_from_draws("chinchilla", two_groups, draws, likelihood=likelihood,
                                 pooling=Pooling(discrepancy="shared"))  # fmt: skip
    assert fit.likelihood.discrepancy == Quadratic()
    assert list(fit.population().loc[list(NAMES), "mode"]) == ["shared"] * 3
    n, d = np.array([7e10, 1e8]), np.array([1.4e12, 2e9])
    g1 = sb.predict(fit, N=n, D=d, group="g1")
    params = {k: draws[f"{k}_group"][..., 1][..., None] for k in ("E", "A", "alpha", "B", "beta")}
    ref = {k: np.asarray(v) for k, v in fit.log_ref.items()}
    inputs = {"N": np.log(n), "D": np.log(d)}
    term = np.einsum("k,jk->j", coefficients, numpy_columns(law, inputs, ref))
    want = law.log_mean(params, inputs, xp=np) + term
    np.testing.assert_allclose(np.log(g1.loss.to_numpy()), want, rtol=1e-10)
    assert np.all(np.abs(term) > 1e-4)  # the term is large enough for the check to mean it
    new = sb.predict(fit, N=n, D=d, group="new")
    assert np.all(np.isfinite(new.loss.to_numpy()))
    # Decisions that search over runs (plan, next's objectives) take the group's law module:
    # its law parameters and its noise, sampled with the term (plan crashed without sigma).
    module = fit.for_group("g1").law_module(log_likelihood=False)
    assert set(module.posterior.data_vars) == set(plan_names)
    np.testing.assert_array_equal(module.posterior["sigma"], draws["sigma_group"][..., 1])
    law_only = sb.predict(module, N=n, D=d)
    np.testing.assert_allclose(np.log(law_only.loss.to_numpy()), want - term, rtol=1e-10)
    # The prediction table says where, beyond the runs, the term moves the median by more than
    # one run's noise (sigma 1 %): not at Chinchilla's run (-0.5 %), 100x further out it does.
    assert "term moves the median" not in prediction_table(fit, N=7e10, D=1.4e12, group="g1").text
    far = {"N": np.log([7e10, 7e12]), "D": np.log([1.4e12, 1.4e14])}
    shift = np.expm1(np.einsum("k,jk->j", coefficients, numpy_columns(law, far, ref)))
    assert abs(shift[0]) < 0.01 < abs(shift[1])
    text = prediction_table(fit, N=[7e10, 7e12], D=[1.4e12, 1.4e14], group="g1").text
    assert f"the quadratic term moves the median by {shift[1]:+.1%} at row 2" in text
    path = tmp_path / "groups.nc"
    sb.save_fit(fit, path)
    again = sb.load_fit(path)
    assert again.likelihood.discrepancy == Quadratic()
    np.testing.assert_allclose(
        sb.predict(again, N=n, D=d, group="g1").loss.to_numpy(), g1.loss.to_numpy(), rtol=1e-12
    )


def test_a_grouped_fit_refuses_the_gp_before_sampling(two_groups):
    with pytest.raises(sb.ScalebayesError, match="sampled apart from the law"):
        sb.fit_groups(two_groups, likelihood=Likelihood(discrepancy="gp"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_a_new_ladder_borrows_its_siblings_curvature(seed):
    """Known truth: three ladders (1e18-1e21 FLOPs) whose loss bends the same way, 0.003 (ln C -
    mid)^2 in log loss (3.6 % at 1e21), that no law setting reproduces; the third cut to its two
    cheapest budgets. Its held-out runs' 90 % interval score, fitted with its siblings and the
    shared quadratic, against the plain law's grouped fit: measured 0.51, 0.47 and 0.58 of it
    on seeds 0-2 (2 x 300 draws), the error at the largest budget 0.007-0.024 against
    0.020-0.063. 0.8 leaves room for a sampler that mixes worse on another CPU."""
    from scalebayes.groups.backtest import held_out_scores

    budgets = [1e18, 1e19, 1e20, 1e21]
    designs = [isoflop_design(budgets, points_per_budget=6, span=20)] * 3
    runs, _ = simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, {"alpha": 0.05, "E": 0.05}, designs, seed=seed,
        noise=0.005,
    )  # fmt: skip
    table = runs.table.copy()
    bend = 0.003 * (np.log(table["C"]) - np.mean(np.log(budgets))) ** 2
    table["loss"] = table["loss"] * np.exp(bend)
    runs = sb.load_runs(table[["N", "D", "C", "loss", "group"]])
    new = (runs.group == "g2") & (runs.C > 1.5e19)
    train, held = runs.subset(~new), runs.subset(new)
    scores = {}
    for name in ("quadratic", "none"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sb.ConvergenceWarning)  # health is asserted below
            fit = sb.fit_groups(train, likelihood=Likelihood(discrepancy=name), chains=2,
                                draws=300, warmup=300, seed=seed)  # fmt: skip
        # A broken fit reads R-hat > 1.2 (2 x 300 draws of a grouped fit measured 1.02-1.09).
        assert fit.diagnostics.max_rhat < 1.2, fit.diagnostics
        scores[name] = held_out_scores(fit, held, "g2")
    quadratic, plain = scores["quadratic"], scores["none"]
    assert quadratic["interval score 90"] < 0.8 * plain["interval score 90"], scores
    assert abs(quadratic["mean error, largest budget"]) < abs(plain["mean error, largest budget"])


def test_a_separate_quadratic_is_one_per_group(law, two_groups, tmp_path):
    """Pooling(discrepancy="separate"): each group its own coefficients, from the same prior.

    With every law parameter shared and both groups' raw coefficients equal to the shared ones,
    the density differs from the shared model's by exactly the second group's prior on them
    (a standard Normal per coefficient): the term enters once per group, nothing else moves.
    """
    from numpyro.infer.util import potential_energy

    groups = ("g0", "g1")
    likelihood = Likelihood(discrepancy=Quadratic()).for_law(law)
    strong = strong_groups(two_groups, groups)
    modes = {n: "shared" for n in ("E", "A", "alpha", "B", "beta", "sigma", "discrepancy")}
    point = {"_log_E_term": jnp.log(1.9), "alpha": jnp.log(0.3), "beta": jnp.log(0.4),
             "_log_A_term": -0.2, "_log_B_term": -0.9, "sigma": jnp.log(0.01)}  # fmt: skip
    raw = jnp.asarray([1.0, -2.0, 0.5])
    data = by_group(grouped_data(law, likelihood, two_groups, groups), len(groups))

    def energy(pooling, value):
        plan = pooling.plan(law, likelihood, strong)
        model = functools.partial(grouped_model, law, likelihood, plan)
        return float(potential_energy(model, (data,), {}, {**point, RAW_SITE: value}))

    shared = energy(Pooling(modes=modes), raw)
    separate = energy(Pooling(modes={**modes, "discrepancy": "separate"}), jnp.stack([raw, raw]))
    second_prior = 0.5 * float(raw @ raw) + 1.5 * np.log(2 * np.pi)
    assert separate - shared == pytest.approx(second_prior, rel=1e-9)
    # Each group's runs see their own coefficients: flipping the second group's (same prior
    # density) moves the likelihood, by far more than rounding at 30 prior sd.
    mine = Pooling(modes={**modes, "discrepancy": "separate"})
    assert (
        abs(energy(mine, 30 * jnp.stack([raw, -raw])) - energy(mine, 30 * jnp.stack([raw, raw])))
        > 1.0
    )
    with pytest.raises(sb.ScalebayesError, match="discrepancy pooling 'partial'"):
        Pooling(discrepancy="partial")
    plan = Pooling(discrepancy="separate").plan(law, likelihood, strong)
    assert plan.to_dict()["discrepancy"] == "separate"
    assert Plan.from_dict(plan.to_dict(), law, likelihood).discrepancy == "separate"
    # Decisions per group read each group's own coefficients; a new group has none.
    draws = alike_groups_draws(50)
    for k, name in enumerate(NAMES):
        draws[f"{name}_group"] = np.stack(
            [np.full((2, 50), 0.003), np.full((2, 50), -0.003 * k)], axis=-1
        )
    fit = grouped_fit_from_draws(
        "chinchilla", two_groups, draws, pooling=Pooling(discrepancy="separate"),
        likelihood=Likelihood(discrepancy=Quadratic()),
    )  # fmt: skip
    n, d = np.array([7e10]), np.array([1.4e12])
    g0, g1 = (sb.predict(fit, N=n, D=d, group=g).loss.to_numpy() for g in groups)
    assert not np.allclose(g0, g1)  # same law draws, different curvature
    assert fit.shared_names == () and "quadratic_N_N" in fit.per_group().index.get_level_values(1)
    with pytest.raises(sb.ScalebayesError, match="a new group has no quadratic discrepancy"):
        fit.for_group("new")
    sb.save_fit(fit, tmp_path / "separate.nc")
    again = sb.load_fit(tmp_path / "separate.nc")
    np.testing.assert_allclose(
        sb.predict(again, N=n, D=d, group="g1").loss.to_numpy(), g1, rtol=1e-12
    )


def test_a_pooled_quadratic_spreads_each_group_around_the_population(law, two_groups, tmp_path):
    """Pooling(discrepancy="pooled"): group coefficients = population + prior sd * spread * z.

    With every group's offset z at 0 the density is the shared model's plus exactly the
    spread's prior (with its log-Jacobian) and the offsets' standard Normals; offsets move each
    group's likelihood. A new group draws its coefficients around the population's.
    """
    from numpyro.infer.util import potential_energy
    from scipy import stats

    from scalebayes.groups.pooling import DISCREPANCY_SPREAD_SITE, DISCREPANCY_Z_SITE

    groups = ("g0", "g1")
    likelihood = Likelihood(discrepancy=Quadratic()).for_law(law)
    strong = strong_groups(two_groups, groups)
    modes = {n: "shared" for n in ("E", "A", "alpha", "B", "beta", "sigma", "discrepancy")}
    point = {"_log_E_term": jnp.log(1.9), "alpha": jnp.log(0.3), "beta": jnp.log(0.4),
             "_log_A_term": -0.2, "_log_B_term": -0.9, "sigma": jnp.log(0.01),
             RAW_SITE: jnp.asarray([1.0, -2.0, 0.5])}  # fmt: skip
    data = by_group(grouped_data(law, likelihood, two_groups, groups), len(groups))

    def energy(pooling, extra):
        plan = pooling.plan(law, likelihood, strong)
        model = functools.partial(grouped_model, law, likelihood, plan)
        return float(potential_energy(model, (data,), {}, {**point, **extra}))

    pooled = Pooling(modes={**modes, "discrepancy": "pooled"})
    spread = 0.4
    at_zero = {DISCREPANCY_SPREAD_SITE: jnp.log(spread), DISCREPANCY_Z_SITE: jnp.zeros((2, 3))}
    extra_prior = stats.gamma(3.0, scale=1 / 6.0).logpdf(spread) + np.log(spread)
    extra_prior -= 6 * 0.5 * np.log(2 * np.pi)  # six standard Normals at 0
    shared = energy(Pooling(modes=modes), {})
    assert energy(pooled, at_zero) - shared == pytest.approx(-extra_prior, rel=1e-9)
    # The second group's offsets move its runs' likelihood: the energy changes by more than
    # their prior does (at spread 1 its coefficients move by 0.015-0.06, as the separate
    # quadratic's test moves them).
    offsets = 15 * jnp.asarray([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    flat = {DISCREPANCY_SPREAD_SITE: 0.0, DISCREPANCY_Z_SITE: jnp.zeros((2, 3))}
    moved = energy(pooled, {**flat, DISCREPANCY_Z_SITE: offsets}) - energy(pooled, flat)
    assert abs(moved - 0.5 * float(jnp.sum(offsets**2))) > 1.0
    plan = pooled.plan(law, likelihood, strong)
    assert Plan.from_dict(plan.to_dict(), law, likelihood).discrepancy == "pooled"
    # A discrepancy with no fixed scale for its coefficients cannot be pooled: said before work.
    with pytest.raises(LawError, match="cannot be pooled"):
        sb.fit_groups(two_groups, likelihood=Likelihood(discrepancy="curvature"), pooling=pooled)

    # Decisions: each group its own coefficients, a new group the population's plus the spread.
    draws = alike_groups_draws(500)
    for k, name in enumerate(NAMES):
        draws[name] = np.full((2, 500), 0.001 * k)
        draws[f"{name}_group"] = np.stack(
            [np.full((2, 500), 0.003), np.full((2, 500), -0.003 * k)], axis=-1
        )
    draws["quadratic_spread"] = np.full((2, 500), 0.002)
    pooled_draws = Pooling(discrepancy="pooled")
    fit = grouped_fit_from_draws("chinchilla", two_groups, draws, pooling=pooled_draws,
                                 likelihood=Likelihood(discrepancy=Quadratic()))  # fmt: skip
    population = fit.population()
    assert list(population.loc[list(NAMES), "mode"]) == ["pooled"] * 3
    np.testing.assert_allclose(population.loc[list(NAMES), "spread median"], 0.002)
    assert fit.shared_names == () and "quadratic_N_D" in fit.per_group().index.get_level_values(1)
    # Each group's coefficients sit in its column (the names are longer than the law's).
    assert "the discrepancy's in its own units" in str(fit)  # its spread is not on a log scale
    lines = str(fit).split("per group")[1].splitlines()
    header, row = lines[1], next(line for line in lines if "quadratic_N_N" in line)
    assert row.index("0.003 [") == header.index("g0")
    new = fit.for_group("new", seed=3).posterior
    for k, name in enumerate(NAMES):
        x = new[name].to_numpy().ravel()
        # 1000 draws of Normal(0.001 k, 0.002): mean within 4 standard errors (0.00025), sd
        # within 10 % (its standard error is 2.2 %).
        assert abs(x.mean() - 0.001 * k) < 2.5e-4 and abs(x.std() / 0.002 - 1) < 0.1
    n, d = np.array([7e10]), np.array([1.4e12])
    g1 = sb.predict(fit, N=n, D=d, group="g1").loss.to_numpy()
    assert not np.allclose(g1, sb.predict(fit, N=n, D=d, group="g0").loss.to_numpy())
    sb.save_fit(fit, tmp_path / "pooled.nc")
    again = sb.load_fit(tmp_path / "pooled.nc")
    np.testing.assert_allclose(
        sb.predict(again, N=n, D=d, group="g1").loss.to_numpy(), g1, rtol=1e-12
    )
    np.testing.assert_allclose(
        again.for_group("new", seed=3).posterior["quadratic_N_N"], new["quadratic_N_N"]
    )


@pytest.mark.slow
def test_ladders_that_bend_apart_are_held_by_a_pooled_quadratic_not_a_shared_one():
    """Known truth: three ladders (1e18-1e21 FLOPs) bent by 0.006, 0 and -0.003 (ln C - mid)^2
    in log loss, every top budget held out. benchmarks/grouped_curvature_truth.py measured the
    pooled quadratic's interval score at 0.09-0.16 of the shared one's on seeds 0-3 (2 x 300
    draws); 0.3 leaves room for a sampler that mixes worse on another CPU."""
    from scalebayes.groups.backtest import held_out_scores

    budgets = [1e18, 1e19, 1e20, 1e21]
    designs = [isoflop_design(budgets, points_per_budget=6, span=20)] * 3
    runs, _ = simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, {"alpha": 0.05, "E": 0.05}, designs, seed=1,
        noise=0.005,
    )  # fmt: skip
    table = runs.table.copy()
    c = np.array([0.006, 0.0, -0.003])[table["group"].str.removeprefix("g").astype(int)]
    table["loss"] *= np.exp(c * (np.log(table["C"]) - np.mean(np.log(budgets))) ** 2)
    runs = sb.load_runs(table[["N", "D", "C", "loss", "group"]])
    top = runs.C > budgets[-1] / 1.5
    train, held = runs.subset(~top), runs.subset(top)
    score = {}
    for mode in ("pooled", "shared"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sb.ConvergenceWarning)  # health is asserted below
            fit = sb.fit_groups(train, pooling=Pooling(discrepancy=mode), chains=2, draws=300,
                                warmup=300, seed=1)  # fmt: skip
        assert fit.diagnostics.max_rhat < 1.2, fit.diagnostics  # broken reads > 1.2
        score[mode] = np.mean([held_out_scores(fit, held.subset(held.group == g), g)
                               ["interval score 90"] for g in fit.groups])  # fmt: skip
    assert score["pooled"] < 0.3 * score["shared"], score
