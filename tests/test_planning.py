"""chance() and plan(): probabilities of reaching a target, and the cheapest run that does."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from tests.known_fits import chinchilla_known, ladder

from scalebayes.allocate import optimal
from scalebayes.errors import LawError, ScalebayesError
from scalebayes.planning import UnreachableTargetError, chance, law_floor, plan
from scalebayes.simulation import EPOCH_CHINCHILLA as EPOCH
from scalebayes.testing import fit_from_draws, jittered_draws


def epoch_loss(n, d, p=EPOCH):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def test_mean_chance_is_the_share_of_draws_at_or_below_target():
    fit = chinchilla_known(rel_sd=0.03)
    result = chance(fit, [7e10, 1e9], [1.4e12, 2e10], 2.0)
    p = {k: fit.posterior[k].to_numpy() for k in EPOCH}
    expected = np.mean(epoch_loss(7e10, 1.4e12, p) <= 2.0)
    assert result.probability("mean")[0] == pytest.approx(expected, abs=1e-12)
    assert result.mean.dims == ("chain", "draw", "point")
    assert 0.0 < expected < 1.0  # the test point is informative


def test_new_run_chance_is_the_noise_cdf_when_the_law_is_known():
    sigma = 0.02
    fit = chinchilla_known(rel_sd=0.0, sigma=sigma)
    law = epoch_loss(7e10, 1.4e12)
    targets = law * np.exp(np.array([-0.05, -0.01, 0.0, 0.01, 0.05]))
    result = chance(fit, 7e10, 1.4e12, targets[2])
    assert result.probability("new_run")[0] == pytest.approx(0.5, abs=1e-9)
    for target in targets:
        p = chance(fit, 7e10, 1.4e12, target).probability("new_run")[0]
        assert p == pytest.approx(stats.t(df=4).cdf(np.log(target / law) / sigma), abs=1e-9)


def test_chance_is_monotone_in_target():
    fit = chinchilla_known(rel_sd=0.03)
    targets = np.linspace(1.8, 2.4, 61)
    result = chance(fit, np.full(61, 7e10), np.full(61, 1.4e12), targets)
    for kind in ("mean", "new_run"):
        p = result.probability(kind)
        assert (np.diff(p) >= 0).all()
        assert p[0] < 0.05 and p[-1] > 0.95
    # The new run's noise smooths the law's step: never more certain at either end.
    assert result.probability("new_run")[0] >= result.probability("mean")[0]


def test_unreachable_target_is_refused():
    fit = chinchilla_known(rel_sd=0.01)
    floor = law_floor(fit)
    np.testing.assert_allclose(floor, fit.posterior["E"], rtol=1e-9)
    with pytest.raises(UnreachableTargetError, match="below the law's floor"):
        chance(fit, 7e10, 1.4e12, 1.5)
    with pytest.raises(UnreachableTargetError, match="below the law's floor"):
        plan(fit, 1.5)
    with pytest.raises(ScalebayesError, match="positive loss"):
        chance(fit, 7e10, 1.4e12, -1.0)


def test_plan_inverts_chance():
    fit = chinchilla_known(rel_sd=0.03)
    for kind in ("new_run", "mean"):
        result = plan(fit, 2.0, prob=0.8, kind=kind)
        row = result.table.iloc[0]
        p = chance(fit, row.N, row.D, 2.0).probability(kind)[0]
        # new_run: a smooth probability, solved to 3e-11 in log D. mean: a share of 2000 draws,
        # so at least prob, and below it one draw's worth of tokens earlier.
        if kind == "new_run":
            assert p == pytest.approx(0.8, abs=1e-6)
        else:
            assert p >= 0.8
            assert chance(fit, row.N, row.D * 0.999, 2.0).probability(kind)[0] < 0.8 + 1 / 2000


def test_plan_without_inference_is_the_compute_optimal_run_for_the_target():
    # Law known exactly (rel_sd=0) and kind="mean": the plan is the budget at which the
    # compute-optimal loss equals the target, with Chinchilla's closed-form N* there.
    fit = chinchilla_known(rel_sd=0.0)
    result = plan(fit, 2.0, prob=0.5, kind="mean").table.iloc[0]
    best = optimal(fit, result.C)
    assert float(best.N[0, 0, 0]) == pytest.approx(result.N, rel=1e-4)
    assert float(best.loss[0, 0, 0]) == pytest.approx(2.0, rel=1e-6)


def test_inference_tokens_shrink_the_model_and_lengthen_training():
    fit = chinchilla_known(rel_sd=0.0)
    tokens = [0.0, 1e12, 1e13, 1e14]
    result = plan(fit, 2.0, prob=0.5, kind="mean", inference_tokens=tokens)
    table = result.table
    assert (np.diff(table.N) < 0).all() and (np.diff(table.tokens_per_param) > 0).all()
    assert (np.diff(table.total_cost) > 0).all() and (np.diff(table.C) > 0).all()
    # Brute force for T = 1e13: on a fine grid of N, the D that reaches the target exactly
    # (solved from the law) and the total cost 6 N D + 2 N T; grid step 1e-5 in log N.
    t = 1e13
    n = np.exp(np.linspace(np.log(1e9), np.log(1e12), 300_001))
    gap = 2.0 - EPOCH["E"] - EPOCH["A"] / n ** EPOCH["alpha"]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(gap > 0, (EPOCH["B"] / gap) ** (1 / EPOCH["beta"]), np.inf)
    cost = 6 * n * d + 2 * n * t
    best = np.argmin(cost)
    assert table.N[2] == pytest.approx(n[best], rel=1e-3)
    assert table.total_cost[2] == pytest.approx(cost[best], rel=1e-6)


def test_per_draw_sizing_has_intervals_and_counts_unreachable_draws():
    # E scattered 5 % around 1.82: a target of 1.9 is beyond the floor of a few draws.
    fit = chinchilla_known(rel_sd=0.05)
    result = plan(fit, 1.9, prob=0.5, kind="mean", inference_tokens=[0.0, 1e13])
    share = float((fit.posterior["E"] >= 1.9).mean())
    assert 0 < share < 0.5
    # Draws whose floor E is above the target cannot reach it; a few more would need N > 1e16 or
    # D > 1e19 (the search box) and count as unreachable too.
    beyond_floor = (fit.posterior["E"] >= 1.9).to_numpy()
    unreachable = result.per_draw["unreachable"].isel(inference_tokens=0).to_numpy()
    assert unreachable[beyond_floor].all()
    assert beyond_floor.sum() <= result.n_unreachable <= beyond_floor.sum() * 1.1
    assert result.per_draw["N"].dims == ("chain", "draw", "inference_tokens")
    table = result.per_draw_summary()
    row = table[(table.quantity == "N") & (table.inference_tokens == 0)].iloc[0]
    assert row["eti90_lb"] < row["median"] < row["eti90_ub"]
    # Per draw, the cheapest run reaches the target exactly.
    n, d = (
        result.per_draw["N"].isel(inference_tokens=0),
        result.per_draw["D"].isel(inference_tokens=0),
    )
    p = {k: fit.posterior[k] for k in EPOCH}
    reachable = ~result.per_draw["unreachable"].isel(inference_tokens=0)
    np.testing.assert_allclose(epoch_loss(n, d, p).where(reachable, 1.9), 1.9, rtol=1e-6)


def test_plan_arguments_are_checked():
    fit = chinchilla_known()
    with pytest.raises(ScalebayesError, match="prob"):
        plan(fit, 2.0, prob=1.5)
    with pytest.raises(ScalebayesError, match="inference_tokens"):
        plan(fit, 2.0, inference_tokens=-1.0)
    with pytest.raises(ScalebayesError, match="kind"):
        plan(fit, 2.0, kind="law")
    draws = jittered_draws(
        {"E": 1.8, "A": 2000.0, "alpha": 0.15, "sigma": 0.01}, chains=2, draws=10
    )
    with pytest.raises(LawError, match="both N"):
        plan(fit_from_draws("power_c", ladder(), draws), 2.0)


def test_chance_with_a_law_of_unique_tokens():
    # Muennighoff et al. 2023's constants; the floor is E, as for Chinchilla.
    values = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.353,
              "RDstar": 15.4, "RNstar": 5.3, "sigma": 0.01}  # fmt: skip
    draws = {name: np.full((1, 3), value) for name, value in values.items()}
    import scalebayes as sb

    runs = sb.load_runs(ladder().to_frame().assign(U=lambda t: t["D"]))
    fit = fit_from_draws("data_constrained", runs, draws)
    np.testing.assert_allclose(law_floor(fit), 1.87, rtol=1e-9)
    result = chance(fit, 6.34e9, 242e9, 2.3, U=25e9)
    assert result.probability("mean")[0] == 1.0  # the law gives ~2.23 there
    assert result.summary().loc[0, "U"] == 25e9


def test_plan_inverts_chance_with_a_discrepancy_term():
    # With a discrepancy term loss bends up again far from the data, so the plan must search
    # for the best D before the least sufficient one. kind="mean" keeps the compile short.
    from tests.known_fits import chinchilla_curved

    fit = chinchilla_curved()
    row = plan(fit, 2.2, prob=0.8, kind="mean").table.iloc[0]
    assert chance(fit, row.N, row.D, 2.2).probability("mean")[0] >= 0.8
    assert chance(fit, row.N, row.D * 0.999, 2.2).probability("mean")[0] < 0.8 + 1 / 400
    # The plan beats every run of a coarse grid that reaches the target as surely.
    n, d = np.meshgrid(np.geomspace(1e9, 1e12, 13), np.geomspace(1e10, 1e14, 17), indexing="ij")
    p = chance(fit, n.ravel(), d.ravel(), 2.2).probability("mean")
    assert row.C <= (6 * n.ravel() * d.ravel())[p >= 0.8].min() * 1.0001


def test_plan_with_unique_tokens_inverts_chance_and_scarcer_data_cost_more():
    from tests.test_allocate import data_constrained_known

    fit = data_constrained_known(rel_sd=0.03)
    costs = []
    for unique in (3e10, 1e11, 1e30):
        row = plan(fit, 2.3, prob=0.8, unique_tokens=unique).table.iloc[0]
        assert row.U == unique
        # At the plan's N and D, with the same U, chance gives back the probability asked.
        p = chance(fit, row.N, row.D, 2.3, U=unique).probability("new_run")[0]
        assert p == pytest.approx(0.8, abs=1e-6)
        costs.append(row.C)
    # Repeated tokens are worth less than fresh ones: the scarcer the data, the dearer the target.
    assert costs == sorted(costs, reverse=True) and costs[0] > 1.2 * costs[-1], costs
    with pytest.raises(LawError, match="reads U, the unique tokens"):
        plan(fit, 2.3)


def test_a_target_below_the_floor_of_the_unique_tokens_given_is_refused():
    from tests.test_allocate import data_constrained_known

    # 1e10 unique tokens, repeated without end, leave Muennighoff et al.'s law at ~2.26 nats.
    with pytest.raises(UnreachableTargetError, match=r"unlimited N and D, U = 1e\+10"):
        plan(data_constrained_known(), 2.2, unique_tokens=1e10)
