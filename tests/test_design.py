"""next_runs(): which runs to train next, ranked by the expected shrinkage of an objective per FLOP."""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import scalebayes as sb
from scalebayes.cli import main
from scalebayes.cli.design import OBJECTIVE_KEYS
from scalebayes.design import (
    OBJECTIVES,
    AllocationRegret,
    ChanceAt,
    LossAt,
    LossOver,
    OptimalN,
    RunLossAt,
    candidate_grid,
    make_objective,
    next_runs,
)
from scalebayes.design.weights import spread_under
from scalebayes.errors import ImportanceWarning, ScalebayesError
from scalebayes.testing import fit_from_draws

RATIO = 20.0  # tokens per parameter of the collinear ladder
GAMMA = 0.35  # alpha = beta on every draw
E = 1.82


def collinear_ladder() -> pd.DataFrame:
    """Runs that all keep D / N = 20: their losses cannot tell the N term from the D term."""
    budgets = np.geomspace(6e18, 3e21, 12)
    n = np.sqrt(budgets / (6 * RATIO))
    return pd.DataFrame({"N": n, "D": RATIO * n, "C": budgets, "loss": 2.5})


@functools.cache
def collinear_fit(chains: int = 2, draws: int = 500, seed: int = 0) -> sb.Fit:
    """The posterior such a ladder leaves: exact collinearity, known by construction.

    With alpha = beta = gamma, L(N, 20 N) = E + (A + B 20^-gamma) N^-gamma, so every draw with
    the same K = A + B 20^-gamma predicts the same loss on the ladder's line whatever the split
    u = A / K: the data pin K and gamma and say nothing about u, which sets N* (for alpha =
    beta, N* is proportional to (A / B)^(1 / (2 gamma))). u is spread over [0.2, 0.8] here.
    """
    rng = np.random.default_rng(seed)
    shape = (chains, draws)
    k = 482.0 + 2085.0 * RATIO**-GAMMA
    u = rng.uniform(0.2, 0.8, shape)
    gamma = np.full(shape, GAMMA)
    values = {
        "E": np.full(shape, E),
        "A": k * u,
        "B": k * (1 - u) * RATIO**gamma,
        "alpha": gamma,
        "beta": gamma,
        "sigma": np.full(shape, 0.01),
    }
    return fit_from_draws("chinchilla", collinear_ladder(), values)


def pool_with_one_off_the_line() -> pd.DataFrame:
    """Runs on the ladder's line at four budgets (cheaper and dearer) and one at 200 tokens/param."""
    on_line = candidate_grid([1e20, 3e20, 1e21, 3e21], tokens_per_param=[RATIO])
    off_line = candidate_grid([1e21], tokens_per_param=[200.0])
    return pd.concat([on_line, off_line], ignore_index=True)


def test_only_the_run_off_a_collinear_ladder_helps_n_star():
    fit = collinear_fit()
    pool = pool_with_one_off_the_line()
    result = next_runs(fit, pool, objective=OptimalN(5.76e23), budget=1e22)
    off = len(pool) - 1
    assert result.ranking["candidate"].iloc[0] == off
    assert result.batch["candidate"].tolist() == [off]  # the others add nothing: never bought
    # On the line every draw predicts the same loss, so an outcome there re-weights nothing: the
    # expected width after is the width now, to float32 rounding of the weights (1e-6).
    on_line = result.ranking[result.ranking["candidate"] != off]
    np.testing.assert_allclose(on_line["width_after"], result.width_now, rtol=1e-4)
    # One run at 200 tokens/param with 1 % noise pins the split u (spread 0.2-0.8) to a few %:
    # N*'s 90 % interval (about 1.4 decades now) shrinks several-fold. 0.5 is far from both
    # "nothing learnt" (1.0) and what the importance weights can resolve with ~1000 draws.
    assert result.width_now > 1.0
    assert result.width_after < 0.5 * result.width_now
    row = result.batch.iloc[0]
    assert row["tokens_per_param"] == pytest.approx(200.0)
    assert row["cost"] == pytest.approx(1e21)


def test_the_batch_is_measured_again_in_scenarios_that_did_not_choose_it():
    """The greedy's pick of noisy estimates flatters its batch; the result's expected width is
    the batch's in fresh scenarios: the same draws, other true draws and noise."""
    from scalebayes.design.weights import Worlds

    fit = collinear_fit()
    pool = pool_with_one_off_the_line()
    objective = OptimalN(5.76e23)
    world = Worlds.build(objective.model(fit), objective, pool, 32, 0)
    world.condition(len(pool) - 1)
    fresh = world.afresh(0)
    assert fresh.y.shape == world.y.shape and not np.allclose(fresh.y, world.y)
    assert not fresh.log_w.any() and fresh.q is world.q and fresh.mu is world.mu
    # Outcomes as build draws them: each candidate's spread over scenarios (the draws' means
    # plus the 1 % noise) alike in both worlds. Each sd of 32 scenarios is good to ~13 %, so
    # their ratio to ~18 %: 50 % is ~3 sd; a world without the draws' spread or the noise
    # would miss it by far more.
    np.testing.assert_allclose(fresh.y.std(axis=0), world.y.std(axis=0), rtol=0.5)
    result = next_runs(fit, pool, objective=objective, budget=1e22)
    fresh.condition(len(pool) - 1)
    assert result.width_after == pytest.approx(float(fresh.spread_now().mean()), rel=1e-6)
    assert result.width_after_path == result.batch["width_after"].iloc[-1]
    # The spread now, read off the fit alone as benchmarks read refits' (float32 either way).
    assert spread_under(objective, fit) == pytest.approx(result.width_now, rel=1e-5)
    assert result.width_after != result.width_after_path  # 32 scenarios each: they differ
    assert "in those that chose the runs (the table's) it reads" in str(result)


def test_given_outcomes_weigh_the_draws_that_predicted_them():
    """Worlds.observed conditions on measured losses: the draw whose prediction an outcome
    sits on weighs most; outcomes of the wrong shape are refused."""
    from scalebayes.design.weights import Worlds
    from scalebayes.prediction import log_mean_at

    fit = collinear_fit()
    pool = pool_with_one_off_the_line()
    objective = OptimalN(5.76e23)
    world = Worlds.build(objective.model(fit), objective, pool, 4, 0)
    j = len(pool) - 1
    mu = log_mean_at(objective.model(fit), pool).reshape(world.n_draws, -1)[:, j]
    # Two scenarios: the outcome at the least and at the greatest predicted log loss.
    outcomes = np.zeros((2, len(pool)))  # only candidate j is conditioned on
    outcomes[:, j] = [mu.min(), mu.max()]
    seen = world.observed(outcomes)
    assert seen.y.shape == (2, len(pool)) and not seen.log_w.any()
    seen.condition(j)
    order = np.argsort(np.asarray(objective.per_draw(objective.model(fit))), kind="stable")
    heaviest = np.argmax(seen.log_w, axis=1)
    # The draws are in the objective's order; the heaviest draw in each scenario is the one
    # whose prediction the outcome sits on (the noise is the same for all draws but its sd).
    np.testing.assert_allclose(mu[order][heaviest], [mu.min(), mu.max()], atol=3 * 0.01)
    with pytest.raises(sb.ScalebayesError, match="one per candidate"):
        world.observed(outcomes[:, :2])


def test_a_batch_values_each_run_given_the_runs_before_it():
    fit = collinear_fit()
    # Two identical runs off the line and one on the other side of it (2 tokens/param).
    pool = pd.concat(
        [
            candidate_grid([1e21], tokens_per_param=[200.0, 200.0, 2.0]),
            candidate_grid([1e21], tokens_per_param=[RATIO]),
        ],
        ignore_index=True,
    )
    result = next_runs(fit, pool, objective=OptimalN(5.76e23), budget=1e22)
    widths = result.batch[["width_before", "width_after"]].to_numpy()
    # Each step starts where the last ended (to the float32 weights' rounding), widths only shrink.
    np.testing.assert_allclose(widths[1:, 0], widths[:-1, 1], rtol=1e-5)
    assert (np.diff(widths, axis=1) < 0).all()
    # The first run alone shrinks the width most; what a second adds, given the first, is less
    # than what the same run would add alone (its first-step reduction in the ranking).
    reduction = widths[:, 0] - widths[:, 1]
    assert reduction[0] > 2 * reduction[1:].max()
    alone = result.ranking.set_index("candidate")
    second = result.batch["candidate"].iloc[1]
    assert reduction[1] < 0.5 * (
        alone.loc[second, "width_before"] - alone.loc[second, "width_after"]
    )
    assert 3 not in result.batch["candidate"].tolist()  # the run on the line never helps
    assert result.spent == pytest.approx(len(result.batch) * 1e21)


def test_loss_objective_on_and_off_the_line():
    fit = collinear_fit()
    pool = pool_with_one_off_the_line()
    # At a planned run on the ladder's line the draws agree exactly: nothing to learn.
    on = next_runs(fit, pool, objective=LossAt(N=7e10, D=RATIO * 7e10), budget=1e22)
    assert on.width_now < 1e-9 and on.batch.empty
    assert "no candidate is expected to help" in str(on)
    # Off it (Chinchilla-like, 70B on 200 tokens/param) the split matters, and only the run
    # off the line tells it.
    off = next_runs(fit, pool, objective=LossAt(N=7e10, D=1.4e13), budget=1e22)
    assert off.batch["candidate"].tolist() == [len(pool) - 1]
    assert off.width_after < 0.5 * off.width_now


def test_run_objective_is_the_predictive_interval_and_keeps_the_noise_floor():
    from scipy import stats

    fit = collinear_fit()  # sigma 0.01 on every draw, Student-t(4) noise on log loss
    on_line = {"N": 7e10, "D": RATIO * 7e10}
    mean = LossAt(**on_line).per_draw(fit)
    q = RunLossAt(**on_line).per_draw(fit)
    assert np.ptp(mean) < 1e-9  # on the ladder's line every draw predicts the same mean
    # So the interval is the noise's alone: L (e^z - e^-z), z the t(4) 95 % point times sigma.
    # 1000 draws put each 5 % / 95 % quantile of the noise within ~4 % (one sd): 15 % allowed.
    z = stats.t(4).ppf(0.95) * 0.01
    width = np.diff(np.quantile(q, [0.05, 0.95]))[0]
    assert width == pytest.approx(mean[0] * (np.exp(z) - np.exp(-z)), rel=0.15)
    assert "predictive interval of a new run's loss" in RunLossAt(**on_line).describe()
    # Off the line the split matters: the run off the ladder is still the one that tells it,
    # and what it leaves is at least the noise's share (no run makes a new run's noise smaller).
    off = next_runs(fit, pool_with_one_off_the_line(), objective=RunLossAt(N=7e10, D=1.4e13),
                    budget=1e22)  # fmt: skip
    assert off.batch["candidate"].tolist()[:1] == [len(pool_with_one_off_the_line()) - 1]
    floor = np.median(LossAt(N=7e10, D=1.4e13).per_draw(fit)) * (np.exp(z) - np.exp(-z))
    assert off.width_after > 0.85 * floor and off.width_after < off.width_now


def test_region_objective_is_the_mean_sd_of_the_log_loss_over_its_runs():
    fit = collinear_fit()
    pool = pool_with_one_off_the_line()
    n = np.array([7e10, 3e10, 1e11])
    d = np.array([1.4e13, 2e12, 1e12])  # all off the ladder's line
    objective = LossOver(N=n, D=d)
    # Independently: each run's log loss per draw from the law's formula, its sd over the
    # draws (uniform weights: the width now), averaged over the runs.
    p = {k: fit.posterior[k].to_numpy().reshape(-1, 1) for k in ("E", "A", "B", "alpha", "beta")}
    log_loss = np.log(p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"])
    result = next_runs(fit, pool, objective=objective, budget=1e22)
    assert result.width_now == pytest.approx(log_loss.std(axis=0).mean(), rel=1e-6)
    # Only the run off the line tells the split, so it is the one chosen, and it helps.
    assert result.batch["candidate"].tolist() == [len(pool) - 1]
    assert result.width_after < 0.5 * result.width_now
    # A region on the line: the draws agree there, nothing to learn.
    on_line = LossOver(N=[1e10, 7e10], D=[RATIO * 1e10, RATIO * 7e10])
    assert next_runs(fit, pool, objective=on_line, budget=1e22).batch.empty
    assert "mean sd of the log loss over 3 planned runs" in objective.describe()
    with pytest.raises(ScalebayesError, match="2 values of N and 3 of D"):
        LossOver(N=[1e9, 2e9], D=[1e10, 2e10, 3e10])
    with pytest.raises(ScalebayesError, match=r"N=-1\.0"):
        LossOver(N=[1e9, -1.0], D=1e10)


def test_chance_objective_is_the_posterior_sd_of_the_chance():
    fit = collinear_fit()
    pool = pool_with_one_off_the_line()
    n, d = 7e10, 1.4e13
    target = float(np.median(sb.predict(fit, N=n, D=d).loss))  # P(law <= target) about 1/2
    objective = ChanceAt(N=n, D=d, target=target)
    per_draw = objective.per_draw(fit)
    result = next_runs(fit, pool, objective=objective, budget=1e21)
    assert result.width_now == pytest.approx(per_draw.std(), rel=1e-3)
    assert result.batch["candidate"].tolist() == [len(pool) - 1]
    assert result.width_after < result.width_now


def chinchilla_isoflop_loss(fit: sb.Fit, n: np.ndarray, compute: float) -> np.ndarray:
    """Chinchilla's law per draw (rows) along the isoFLOP curve of ``compute`` at ``n`` (columns)."""
    p = {k: fit.posterior[k].to_numpy().reshape(-1, 1) for k in ("E", "A", "B", "alpha", "beta")}
    d = compute / (6 * n)
    return p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"]


def test_regret_is_the_expected_compute_wasted_by_the_n_chosen_now():
    # The Bayes risk computed here independently, on a grid ten times finer: per draw the loss
    # along the isoFLOP curve, its own minimum, and -dL*/dln C from the minima at C e^-+0.05; the
    # risk is the least posterior-mean waste over N. The objective's 160-point grid costs at most
    # 1/2 L'' (half a step)^2 per draw (~1 % of a risk); 3 % leaves room for the slope's
    # central difference, which both take at the same step (measured: they agree to 2e-6).
    fit = collinear_fit()
    compute = 5.76e23
    result = next_runs(
        fit, pool_with_one_off_the_line(), objective=AllocationRegret(compute), budget=1e22
    )
    n = np.geomspace(1e9, 1e13, 8000)
    least = [
        chinchilla_isoflop_loss(fit, n, compute * np.exp(h)).min(axis=1) for h in (-0.05, 0.05)
    ]
    slope = (least[0] - least[1]) / 0.1
    loss = chinchilla_isoflop_loss(fit, n, compute)
    waste = 100 * (loss - loss.min(axis=1, keepdims=True)) / slope[:, None]
    assert result.width_now == pytest.approx(waste.mean(axis=0).min(), rel=0.03)
    # The split u (0.2-0.8) moves N* over ~1.4 decades: choosing one N for all draws wastes tens
    # of percent of the budget. One run off the line pins u to a few %, N*'s interval shrinks
    # several-fold (the nstar test: < 0.5x) and the waste, quadratic in the miss, by its
    # square: < 0.3x is what that leaves with room for the importance weights' error.
    assert result.width_now > 10.0
    assert result.batch["candidate"].tolist() == [len(pool_with_one_off_the_line()) - 1]
    assert result.width_after < 0.3 * result.width_now
    assert "expected compute wasted" in str(result) and "risk before" in str(result)


def test_regret_is_zero_when_every_draw_agrees():
    # Every draw the same law: the N chosen now is every draw's optimum, so nothing is wasted
    # and no run is worth buying (a risk from the grid's own minimum, not from the exact one).
    fit = collinear_fit()
    one = {
        k: np.broadcast_to(fit.posterior[k].to_numpy()[:1, :1], (2, 500)) for k in fit.param_names
    }
    same = fit_from_draws("chinchilla", collinear_ladder(), dict(one))
    result = next_runs(
        same, pool_with_one_off_the_line(), objective=AllocationRegret(5.76e23), budget=1e22
    )
    assert result.width_now == pytest.approx(0.0, abs=1e-9)
    assert result.batch.empty


def test_candidate_grid_spends_each_budget_at_each_ratio():
    grid = candidate_grid([1e20, 1e21], tokens_per_param=[2.0, 20.0, 200.0])
    assert len(grid) == 6
    np.testing.assert_allclose(6 * grid["N"] * grid["D"], grid["C"])
    np.testing.assert_allclose(grid["D"] / grid["N"], [2, 20, 200, 2, 20, 200])
    np.testing.assert_allclose(grid["cost"], grid["C"])
    with pytest.raises(ScalebayesError, match="tokens_per_param"):
        candidate_grid([1e20], tokens_per_param=[0.0])


def test_a_cost_column_overrides_six_n_d(tmp_path):
    fit = collinear_fit()
    path = tmp_path / "pool.csv"
    pool = pool_with_one_off_the_line()[["N", "D"]]
    # The off-line run made 100x dearer than its FLOPs: no longer the best per FLOP within a
    # budget that cannot buy it.
    pool.assign(cost=[1e20, 3e20, 1e21, 3e21, 1e23]).to_csv(path, index=False)
    result = next_runs(fit, path, objective=OptimalN(5.76e23), budget=1e22)
    assert result.ranking.set_index("candidate").loc[4, "cost"] == pytest.approx(1e23)
    assert 4 not in result.batch["candidate"].tolist()


def test_bad_input_is_refused_before_any_work(tmp_path):
    fit = collinear_fit()
    path = tmp_path / "pool.csv"
    path.write_text("N,D,cost\n1e9,2e10,1e20\n1e9,2e10,-5\n")
    with pytest.raises(ScalebayesError, match=r"pool.csv: line 3, column 'cost'"):
        next_runs(fit, path, objective=OptimalN(1e24), budget=1e22)
    with pytest.raises(ScalebayesError, match="below the cheapest candidate"):
        next_runs(fit, pool_with_one_off_the_line(), objective=OptimalN(1e24), budget=1e19)
    with pytest.raises(ScalebayesError, match="expected an Objective"):
        next_runs(fit, pool_with_one_off_the_line(), objective="nstar", budget=1e22)
    with pytest.raises(ScalebayesError, match="needs compute"):
        make_objective("nstar")
    with pytest.raises(
        ScalebayesError, match="takes compute, prob, unique_tokens, approach; not N"
    ):
        make_objective("nstar", N=1e9, compute=1e24)
    with pytest.raises(ScalebayesError, match="takes N, D, prob, unique_tokens; not compute"):
        make_objective("loss", N=1e9, D=1e10, compute=1e20)
    with pytest.raises(ScalebayesError, match="expected one of"):
        make_objective("fun")
    with pytest.raises(ScalebayesError, match="prob"):
        OptimalN(1e24, prob=1.5)
    with pytest.raises(ScalebayesError, match="takes compute, unique_tokens; not prob"):
        make_objective("regret", compute=1e24, prob=0.9)


def test_few_draws_left_warn():
    # A run at a million tokens per parameter (1 % noise) pins the split so tightly that about 65
    # of the 1000 draws' worth of weight is left: below the 100 that the warning asks for.
    fit = collinear_fit()
    pool = candidate_grid([1e20], tokens_per_param=[1e6])
    with pytest.warns(ImportanceWarning, match="re-fit"):
        result = next_runs(fit, pool, objective=OptimalN(5.76e23), budget=1e21)
    assert result.low_ess and "warning: the weights keep few draws" in str(result)
    assert result.batch["ess"].iloc[0] < 100


def test_cli_next_prints_the_batch(tmp_path, capsys):
    assert set(OBJECTIVE_KEYS) == set(OBJECTIVES)
    path = tmp_path / "fit.nc"
    sb.save_fit(collinear_fit(), path)
    args = ["next", str(path), "--grid", "1e21", "--tokens-per-param", "20", "200",
            "--budget", "1e22", "--objective", "nstar", "--compute", "5.76e23"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportanceWarning)
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "next runs for the width of the 90% interval of log10 N*" in out
        assert "9.129e+08  1.826e+11  200" in out and "diagnostics:" in out
        assert main([*args, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [row["tokens_per_param"] for row in payload["rows"]] == pytest.approx([200.0])
    assert payload["width_after"] < payload["width_now"]
    assert main(["next", str(path), "--grid", "1e21", "--tokens-per-param", "20", "200",
                 "--budget", "1e22", "--objective", "regret", "--compute", "5.76e23"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "expected compute wasted (% of the budget" in out and "risk after" in out
    assert main(["next", str(path), "--grid", "1e21", "--budget", "1e22",
                 "--objective", "loss", "--N", "1e9"]) == 2  # fmt: skip
    assert "needs N, D" in capsys.readouterr().err
    assert main(["next", str(path), "--grid", "1e21", "--budget", "1e22", "--objective", "loss",
                 "--N", "1e9", "2e9", "--D", "1e10"]) == 2  # fmt: skip
    assert "--objective region takes several" in capsys.readouterr().err
    assert main(["next", str(path), "--grid", "1e21", "--tokens-per-param", "20", "200",
                 "--budget", "1e22", "--objective", "region", "--N", "7e10", "3e10",
                 "--D", "1.4e13", "2e12"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "mean sd of the log loss over 2 planned runs" in out and "sd after" in out


@pytest.mark.slow
def test_refits_shrink_the_width_by_what_was_predicted(truth):
    # Calibration against refits: a short ladder (45 runs to 1e20 FLOPs) extrapolated to
    # Chinchilla's 70B on 1.4T tokens; a batch of 3 runs chosen, their outcomes simulated from the
    # true law, the posterior refitted with them, the width of the loss's 90 % interval measured.
    # Measured (2026-12-07, this VM): predicted 0.136 -> 0.061, refits 0.062-0.066 (mean 0.064).
    from scalebayes.simulation import isoflop_design, simulate

    plain = sb.Likelihood(discrepancy="none")
    settings = {"chains": 4, "warmup": 500, "draws": 500}
    design = isoflop_design([6e18, 1e19, 3e19, 6e19, 1e20])
    runs = simulate("chinchilla", truth, design, noise=0.01, seed=11)
    fit = sb.fit(runs, "chinchilla", likelihood=plain, seed=11, **settings)
    assert fit.diagnostics.max_rhat < 1.03 and fit.diagnostics.n_divergent <= 10
    objective = LossAt(N=7e10, D=1.4e12)
    pool = candidate_grid([1e21, 3e21, 1e22], tokens_per_param=[5.0, 20.0, 80.0])
    chosen = next_runs(fit, pool, objective=objective, budget=3e22, max_runs=3)
    batch = chosen.batch
    predicted, now = chosen.width_after, chosen.width_now
    # Three runs 10x beyond the ladder: worth more than the tolerance below can blur.
    assert len(batch) == 3 and predicted < 0.8 * now, chosen
    tables = []
    for seed in range(4):
        new = simulate("chinchilla", truth, batch[["N", "D"]], noise=0.01, seed=100 + seed)
        tables.append(pd.concat([runs.table, new.table], ignore_index=True))
    refits = sb.fit_batch(tables, "chinchilla", likelihood=plain, seed=12, **settings)
    widths = []
    for refit in refits:
        assert refit.diagnostics.max_rhat < 1.03 and refit.diagnostics.n_divergent <= 10
        widths.append(spread_under(objective, refit))  # as next_runs reads the width now
    # The prediction is the width expected over outcomes from the posterior predictive; the true
    # law's outcomes are draws of it. Across outcomes the realised width varies by ~8 % (the
    # residuals move the exponents), so the mean of 4 has an sd of ~4 %; NUTS adds ~3 % (2000
    # draws) and the importance weights a few %: +-25 % is about 4 sd of all that together, and
    # the realised reduction must be at least half the predicted one (not "nothing learnt").
    assert 0.8 < np.mean(widths) / predicted < 1.25, (widths, predicted, now)
    assert now - np.mean(widths) > 0.5 * (now - predicted), (widths, predicted, now)
    # The same outcomes as weights on the first fit's draws, without a refit: what next_runs
    # computes in one scenario. Exact Bayes says the two posteriors are one; they differ by
    # NUTS's noise and the weights' (a few hundred draws keep weight). Over 32 refits
    # (benchmarks/design_truth.py) the two read 0.0006 +- 0.0006 apart on widths of ~0.06, an
    # sd of ~5.5 % per outcome, ~2.8 % for a mean of 4: 15 % is over 5 sd. Here (this VM):
    # re-weighted 0.0625, refitted 0.0645; without the outcomes the width stays at ~0.14.
    from scalebayes.design.weights import Worlds

    frame = batch[["N", "D", "C"]].reset_index(drop=True)
    world = Worlds.build(objective.model(fit), objective, frame, 2, 0)
    seen = world.observed(np.log([t["loss"].to_numpy()[-len(frame) :] for t in tables]))
    for j in range(len(frame)):
        seen.condition(j)
    weighted = seen.spread_now()
    assert np.mean(weighted) == pytest.approx(np.mean(widths), rel=0.15), (weighted, widths)


@dataclasses.dataclass
class KnownWorld:
    """A stand-in for next_runs' Worlds whose widths (and ESS) a test states: 4 scenarios."""

    log_w: np.ndarray
    chosen: tuple[int, ...] = ()
    resolution: float = 0.0
    n_draws: int = 1000

    def condition(self, j):
        self.chosen = (*self.chosen, int(j))

    def afresh(self, seed):  # known widths have no scenario noise: the same world, none chosen
        return dataclasses.replace(self, chosen=())


def test_the_batch_is_the_better_of_greedy_per_flop_and_greedy_by_reduction(monkeypatch):
    """Known gains: one dear run (10 FLOP units) narrows the width from 1 to 0.1, five cheap
    ones (1 unit) 0.1 each. Per FLOP the cheap ones rank first (0.1 against 0.09 per unit) and
    then leave no budget for the dear one (width 0.5); by reduction the dear one is bought
    (0.1). next_runs keeps the narrower, as Krause & Guestrin's rule does."""
    from scalebayes.design import selection

    class KnownGains(KnownWorld):
        @staticmethod
        def width(chosen) -> float:
            return max(0.05, 1.0 - 0.9 * (0 in chosen) - 0.1 * sum(j > 0 for j in chosen))

        def spread_now(self):
            return np.full(4, self.width(self.chosen))

        def after(self, columns):
            widths = [self.width((*self.chosen, int(c))) for c in columns]
            return np.tile(widths, (4, 1)), np.full(len(columns), 1000.0)

    monkeypatch.setattr(
        selection.Worlds, "build", classmethod(lambda cls, *a: KnownGains(np.zeros(1)))
    )
    unit = 1e20
    pool = pd.DataFrame({"N": np.full(6, 1e9), "D": np.geomspace(1e10, 2e10, 6)})
    pool["cost"] = unit * np.array([10, 1, 1, 1, 1, 1])
    result = next_runs(collinear_fit(), pool, objective=OptimalN(5.76e23), budget=10 * unit)
    assert result.rule == "by reduction" and result.batch["candidate"].tolist() == [0]
    assert result.width_after == pytest.approx(0.1)
    # The dear run out of reach: per FLOP buys the five cheap ones.
    result = next_runs(collinear_fit(), pool, objective=OptimalN(5.76e23), budget=5 * unit)
    assert result.rule == "per FLOP" and sorted(result.batch["candidate"]) == [1, 2, 3, 4, 5]
    assert result.width_after == pytest.approx(0.5)


def test_a_batch_grows_only_while_the_weights_can_measure_the_next_run(monkeypatch):
    """Known gains and ESS: each run narrows the width by 0.1 and leaves a share of the weight.

    With 1000 draws the floor is 100 draws' worth. Halving the ESS per run, the fourth run
    would leave 62: the batch stops at three and says why, though the budget buys five. A
    first run is taken even when it alone leaves too few (5 %: 50), and the batch ends there,
    with the low-ESS warning. Below the floor the expected widths came out too narrow on the
    public tables' refits (benchmarks/design_calibration.py), so they are not bought on."""
    from scalebayes.design import selection

    def known(share: float) -> type:
        class KnownGains(KnownWorld):
            def spread_now(self):
                return np.full(4, 1.0 - 0.1 * len(self.chosen))

            def after(self, columns):
                k = len(self.chosen) + 1
                return np.full((4, len(columns)), 1.0 - 0.1 * k), np.full(
                    len(columns), 1000.0 * share**k
                )

        return KnownGains

    pool = pd.DataFrame({"N": np.full(5, 1e9), "D": np.geomspace(1e10, 2e10, 5), "cost": 1e20})
    monkeypatch.setattr(
        selection.Worlds, "build", classmethod(lambda cls, *a: known(0.5)(np.zeros(1)))
    )
    result = next_runs(collinear_fit(), pool, objective=OptimalN(5.76e23), budget=5e20)
    assert len(result.batch) == 3 and result.ess_limited and not result.low_ess
    assert result.batch["ess"].tolist() == pytest.approx([500.0, 250.0, 125.0])
    assert "stopped after 3 runs: what a further run adds cannot be measured" in str(result)
    monkeypatch.setattr(
        selection.Worlds, "build", classmethod(lambda cls, *a: known(0.05)(np.zeros(1)))
    )
    with pytest.warns(ImportanceWarning, match="re-fit"):
        result = next_runs(collinear_fit(), pool, objective=OptimalN(5.76e23), budget=5e20)
    assert len(result.batch) == 1 and result.ess_limited and result.low_ess
    assert "stopped after 1 run:" in str(result)


@pytest.mark.slow
def test_refits_lower_the_regret_near_what_was_predicted(truth):
    # The value of information against refits, as the width above: the same short ladder, the
    # compute the N chosen now for 5.76e23 FLOPs would waste; 3 runs chosen, 8 sets of their
    # outcomes simulated from the true law, each refitted, the risk recomputed on the refit's
    # own draws. The risk is a noisy read of a posterior: six fits of this table (4 x 500 draws,
    # seeds apart) read 2.80-3.10 %, so the risk "now" of the one fit is good to ~0.1 %, and
    # the prediction made from its draws shares that noise. Measured on this VM (2026-12-07):
    # now 2.89 %, predicted 2.60 %, refits' mean 2.71 % (2.53-2.99 %); 8 refits of the table
    # alone 2.94 % (2.67-3.19 %).
    from scalebayes.simulation import isoflop_design, simulate

    plain = sb.Likelihood(discrepancy="none")
    settings = {"chains": 4, "warmup": 500, "draws": 500}
    runs = simulate("chinchilla", truth, isoflop_design([6e18, 1e19, 3e19, 6e19, 1e20]),
                    noise=0.01, seed=11)  # fmt: skip
    fit = sb.fit(runs, "chinchilla", likelihood=plain, seed=11, **settings)
    assert fit.diagnostics.max_rhat < 1.03 and fit.diagnostics.n_divergent <= 10
    objective = AllocationRegret(5.76e23)
    pool = candidate_grid([1e21, 3e21, 1e22], tokens_per_param=[5.0, 20.0, 80.0])
    chosen = next_runs(fit, pool, objective=objective, budget=3e22, max_runs=3)
    predicted, now = chosen.width_after, chosen.width_now
    # Up to 3 runs: a third is bought only where its expected reduction clears two Monte Carlo
    # standard errors, which one CPU's floating point puts on either side (3 on 2026-12-04's
    # host and on this VM on 2026-12-07, 2 in between): what was predicted for the runs chosen.
    assert len(chosen.batch) in (2, 3) and predicted < 0.9 * now, chosen

    def risks(tables: list, seed: int) -> np.ndarray:
        out = []
        for refit in sb.fit_batch(tables, "chinchilla", likelihood=plain, seed=seed, **settings):
            assert refit.diagnostics.max_rhat < 1.03 and refit.diagnostics.n_divergent <= 10
            out.append(spread_under(objective, refit))  # the risk, as next_runs reads it
        return np.array(out)

    batch = chosen.batch[["N", "D"]]
    after = risks(
        [pd.concat([runs.table, simulate("chinchilla", truth, batch, noise=0.01,
                                         seed=100 + k).table], ignore_index=True)
         for k in range(8)],
        seed=12,
    )  # fmt: skip
    before = risks([runs.table] * 8, seed=13)  # the risk now, read as the refits read theirs
    # The runs lower the risk: the refits' mean with them below the mean of refits of the table
    # alone. Each read has ~0.15-0.2 % of noise (the outcomes' and each fit's), so the difference
    # of two means of 8 has an sd of ~0.09 %, and it was 0.23 % on this VM: 2.6 sd. Runs that
    # did not help would leave the two level, a coin's toss.
    assert after.mean() < before.mean(), (after, before, predicted, now)
    # Near what was predicted: over 8 simulated tables the refits realised 117 % of the
    # predicted fall, 93 % with outcomes from the posterior (benchmarks/design_truth.py,
    # design_truth.json, design_truth_posterior.json): here the refits' mean over the
    # prediction, ~1.04, against bounds set by the prediction's own noise (~4 %, the risk
    # now's) four times over and more on the side where the regret read higher.
    assert 0.85 < after.mean() / predicted < 1.25, (after, before, predicted, now)


@functools.cache
def repeated_data_fit() -> sb.Fit:
    """The data-constrained law at Muennighoff et al.'s constants, with a spread in the data term."""
    rng = np.random.default_rng(0)
    shape = (2, 200)
    values = {"E": np.exp(0.6254804), "A": np.exp(6.255414), "alpha": 0.3526596,
              "beta": 0.3526596, "RDstar": 15.387756, "RNstar": 5.309743, "sigma": 0.05}  # fmt: skip
    draws = {name: np.full(shape, value) for name, value in values.items()}
    draws["B"] = np.exp(7.3049974 + 0.1 * rng.standard_normal(shape))
    n = np.geomspace(1e8, 3e9, 8)
    runs = sb.load_runs(pd.DataFrame({"N": n, "D": 20 * n, "U": 5 * n, "loss": 2.5}))
    return fit_from_draws("data_constrained", runs, draws)


def test_a_law_of_repeated_data_takes_the_unique_tokens_everywhere():
    fit = repeated_data_fit()
    u = 2e10
    # N* per draw is the allocation's at these unique tokens.
    objective = OptimalN(compute=1e21, unique_tokens=u)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.log10(sb.optimal(fit, [1e21], unique_tokens=u).N.to_numpy().reshape(-1))
    np.testing.assert_allclose(objective.per_draw(objective.model(fit)), expected)
    assert "U 2.000e+10" in objective.describe()
    grid = candidate_grid([1e19, 1e20], tokens_per_param=(5, 20, 80), unique_tokens=u)
    assert (grid["U"] == u).all()
    for chosen in (LossAt(N=3e9, D=6e10, unique_tokens=u), objective):
        result = next_runs(fit, grid, objective=chosen, budget=3e20)
        assert len(result.batch) >= 1 and result.width_after < result.width_now
    # Without U the law cannot be evaluated: said, naming the option; a law without U refuses it.
    with pytest.raises(ScalebayesError, match=r"reads U, the unique tokens: give unique_tokens="):
        next_runs(fit, grid, objective=LossAt(N=3e9, D=6e10), budget=3e20)
    with pytest.raises(ScalebayesError, match="give the candidates a U column"):
        next_runs(fit, grid.drop(columns="U"), objective=objective, budget=3e20)
    with pytest.raises(sb.LawError, match="does not read U"):
        next_runs(collinear_fit(), candidate_grid([1e19]), objective=OptimalN(1e21, unique_tokens=u),
                  budget=3e19)  # fmt: skip


def test_cli_next_takes_the_unique_tokens(tmp_path, capsys):
    path = tmp_path / "repeated.nc"
    sb.save_fit(repeated_data_fit(), path)
    args = ["next", str(path), "--grid", "1e19", "1e20", "--tokens-per-param", "5", "20", "80",
            "--budget", "3e20", "--objective", "chance", "--N", "3e9", "--D", "6e10",
            "--target", "2.4"]  # fmt: skip
    assert main(args) == 2
    assert "reads U, the unique tokens" in (err := capsys.readouterr().err)
    assert "(--unique-tokens U)" in err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportanceWarning)
        assert main([*args, "--unique-tokens", "2e10"]) == 0
    out = capsys.readouterr().out
    assert "P(a run's loss <= 2.4) at N 3.000e+09, D 6.000e+10, U 2.000e+10" in out


def test_n_star_of_the_whole_model_is_approach_3m_per_draw(chinchilla_fit, chinchilla_plain_fit):
    # approach="3m" reads the N* optimal(..., approach="3m") gives, per draw, from the whole
    # model (law + GP); outcomes are then weighed under the whole model, which is the fit.
    from scalebayes.allocation.whole_model import whole_model_optimal

    objective = make_objective("nstar", compute=1e23, approach="3m")
    assert objective == OptimalN(1e23, approach="3m")
    assert objective.model(chinchilla_fit) is chinchilla_fit
    expected = whole_model_optimal(chinchilla_fit, [1e23]).N.to_numpy().reshape(-1)
    np.testing.assert_allclose(objective.per_draw(chinchilla_fit), np.log10(expected))
    assert "approach 3m" in objective.describe()
    pool = candidate_grid([3e21], tokens_per_param=[5.0, 20.0, 80.0])
    result = next_runs(chinchilla_fit, pool, objective=objective, budget=3e21, outcomes=8)
    # Nothing is re-weighted yet, so the width now is the draws' own 90 % interval (to the
    # weighted quantile's rule, which steps between neighbouring draws: 0.1 % here; 1 % allowed).
    low, high = np.quantile(np.log10(expected), [0.05, 0.95])
    assert result.width_now == pytest.approx(high - low, rel=0.01)
    with pytest.raises(ScalebayesError, match="3m needs the GP discrepancy"):
        objective.per_draw(chinchilla_plain_fit)
    with pytest.raises(ScalebayesError, match="approach='2'"):
        OptimalN(1e23, approach="2")
    with pytest.raises(ScalebayesError, match="a law of U needs '3'"):
        OptimalN(1e23, unique_tokens=1e10, approach="3m")
