"""compare (PSIS-LOO, WAIC, leave-future-out; stacking and pseudo-BMA weights) and lfo."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from tests.conftest import CI_FIT

import scalebayes as sb
from scalebayes.comparison import Comparison, compare, disagreement, waic
from scalebayes.errors import ConvergenceWarning, ExtrapolationWarning, ScalebayesError
from scalebayes.leave_future_out import compute_cuts
from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design
from scalebayes.testing import fit_from_draws, jittered_draws

POWER_C = {"E": 1.8, "A": 2700.0, "alpha": 0.18}


@pytest.fixture(scope="module")
def runs() -> sb.Runs:
    return sb.simulate(
        "chinchilla", EPOCH_CHINCHILLA, isoflop_design(CHINCHILLA_BUDGETS), noise=0.01, seed=1
    )


@pytest.fixture(scope="module")
def known_fits(runs: sb.Runs) -> dict[str, sb.Fit]:
    """A posterior near the truth and one of a law that ignores how compute is split."""
    good = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.005, draws=250, seed=2)
    bad = jittered_draws({**POWER_C, "sigma": 0.03}, rel_sd=0.005, draws=250, seed=3)
    return {
        "chinchilla": fit_from_draws("chinchilla", runs, good),
        "power_c": fit_from_draws("power_c", runs, bad),
    }


# ---------------------------------------------------------------------------------- WAIC


def test_waic_equals_hand_computation(known_fits: dict[str, sb.Fit]) -> None:
    fit = known_fits["chinchilla"]
    log_lik = fit.idata["log_likelihood"]["loss"].to_numpy()  # (chain, draw, run)
    draws = log_lik.reshape(-1, log_lik.shape[-1])
    S = draws.shape[0]
    elpd_i = []
    for column in draws.T:  # one run at a time, straight from the definition
        lppd = math.log(sum(math.exp(v) for v in column) / S)
        mean = sum(column) / S
        p_waic = sum((v - mean) ** 2 for v in column) / (S - 1)
        elpd_i.append(lppd - p_waic)
    result = waic(fit.idata)
    n = len(elpd_i)
    mean_i = sum(elpd_i) / n
    se = math.sqrt(n * sum((e - mean_i) ** 2 for e in elpd_i) / n)
    assert result.elpd == pytest.approx(sum(elpd_i), rel=1e-10)
    assert result.se == pytest.approx(se, rel=1e-10)
    np.testing.assert_allclose(result.elpd_i.to_numpy(), elpd_i, rtol=1e-10)
    assert result.n_data_points == n and result.n_samples == S


def test_waic_flags_high_variance_runs(known_fits: dict[str, sb.Fit]) -> None:
    result = compare(known_fits, method="waic")
    for name, fit in known_fits.items():
        p_waic = waic(fit.idata).p_waic_i
        if (p_waic > 0.4).any():
            named = fit.runs.where(p_waic > 0.4)  # "rows 3, 17 of <simulated ...>"
            assert any(f"for the runs on {named};" in w for w in result.warnings[name])
        else:
            assert name not in result.warnings


# ------------------------------------------------------------------------ the comparison


@pytest.mark.parametrize("method", ["loo", "waic"])
def test_ranking_and_weights(known_fits: dict[str, sb.Fit], method: str) -> None:
    result = compare(known_fits, method=method)
    table = result.table
    assert list(table.index) == ["chinchilla", "power_c"]
    assert result.best == "chinchilla"
    assert table["elpd"].is_monotonic_decreasing
    assert table.loc["chinchilla", "elpd_diff"] == 0.0
    assert table.loc["power_c", "elpd_diff"] < -4 * table.loc["power_c", "dse"]
    for column in ("weight", "weight_pseudo_bma"):
        assert table[column].sum() == pytest.approx(1.0, abs=1e-6)
        assert (table[column] >= -1e-9).all()
    assert result.weights.idxmax() == "chinchilla"
    assert table.attrs["n_runs"] == 81
    text = str(result)
    assert "chinchilla" in text and "stacking" in text and "pseudo-BMA" in text
    json.dumps(result.to_dict())


def test_loo_warns_about_influential_runs_by_row(runs: sb.Runs) -> None:
    # Draws that ignore the data (2% jitter around the truth) leave a few runs whose
    # importance weights have a heavy tail: exactly those rows must be named.
    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.02, draws=250, seed=4)
    other = jittered_draws({**POWER_C, "sigma": 0.03}, rel_sd=0.02, draws=250, seed=5)
    fits = {
        "a": fit_from_draws("chinchilla", runs, draws),
        "b": fit_from_draws("power_c", runs, other),
    }
    result = compare(fits, method="loo")
    loo = result.elpd["a"]
    high = np.flatnonzero(loo.pareto_k.to_numpy() > loo.good_k)
    assert high.size  # measured: 3 runs with this seed
    listed = ", ".join(str(i) for i in high[:10])  # simulated runs: DataFrame index labels
    assert any(f"for the runs on rows {listed} of {runs.source}" in w for w in result.warnings["a"])
    assert "Pareto k" in result.table.loc["a", "warning"]


def test_refuses_fits_on_different_runs(runs: sb.Runs, known_fits: dict[str, sb.Fit]) -> None:
    fewer = runs.subset(np.arange(len(runs)) < 80)
    draws = jittered_draws({**POWER_C, "sigma": 0.03}, draws=20)
    other = fit_from_draws("power_c", fewer, draws)
    with pytest.raises(ScalebayesError, match=r"different runs \(81 vs 80 runs\)"):
        compare({"chinchilla": known_fits["chinchilla"], "power_c": other})
    frame = runs.to_frame()
    frame.loc[5, "loss"] += 0.01
    moved = fit_from_draws("power_c", sb.load_runs(frame), draws)
    with pytest.raises(
        ScalebayesError, match="column loss differs on row 5 of <simulated from chinchilla"
    ):
        compare({"chinchilla": known_fits["chinchilla"], "power_c": moved})
    frame = runs.to_frame()
    frame["U"] = frame["D"]
    with_u = fit_from_draws("power_c", sb.load_runs(frame), draws)
    with pytest.raises(ScalebayesError, match="only one has a U column"):
        compare({"chinchilla": known_fits["chinchilla"], "power_c": with_u})


def test_bad_arguments(known_fits: dict[str, sb.Fit]) -> None:
    with pytest.raises(ScalebayesError, match="method='aic'"):
        compare(known_fits, method="aic")
    with pytest.raises(ScalebayesError, match="at least two fits"):
        compare({"chinchilla": known_fits["chinchilla"]})


def test_disagreement_sentence(known_fits: dict[str, sb.Fit]) -> None:
    loo = compare(known_fits, method="loo")
    assert disagreement(loo, loo) is None
    # A leave-future-out ranking that puts power_c first, by 10 +/- 2 or by 10 +/- 6.
    for dse, ending in ((2.0, "weigh the leave-future-out ranking more"), (6.0, "is small")):
        table = loo.table.iloc[::-1].copy()
        table["elpd_diff"] = [0.0, -10.0]
        table["dse"] = [0.0, dse]
        sentence = disagreement(loo, Comparison("lfo", table, {}, loo.elpd))
        assert sentence is not None
        assert sentence.startswith(
            "PSIS-LOO prefers chinchilla but leave-future-out prefers power_c "
            f"(by 10.0 +/- {dse:.1f})"
        )
        assert ending in sentence


# ------------------------------------------------------------------- leave-future-out


def test_compute_cuts(runs: sb.Runs) -> None:
    budgets = np.asarray(CHINCHILLA_BUDGETS)
    cuts = compute_cuts(runs, 4)
    # At budget levels (a level is never split), from the median run's budget upwards.
    assert set(cuts) <= set(budgets) and len(cuts) == 4
    assert cuts[0] == np.quantile(runs.C, 0.5, method="lower")
    np.testing.assert_array_equal(compute_cuts(runs, [1e19, 1e20]), [1e19, 1e20])
    with pytest.raises(ScalebayesError, match="increasing"):
        compute_cuts(runs, [1e20, 1e19])
    with pytest.raises(ScalebayesError, match="leaves 0 runs to fit"):
        compute_cuts(runs, [1e18])
    with pytest.raises(ScalebayesError, match="and 0 to score"):
        compute_cuts(runs, [1e22])
    with pytest.raises(ScalebayesError, match="at least 1"):
        compute_cuts(runs, 0)


def _prefers_truth(seed: int, cuts: int | None) -> tuple[bool, bool | None, int]:
    """Simulate from chinchilla; do LOO and LFO (with ``cuts``; None: LOO only) rank it above power_c?

    1% noise on log loss, as real sweeps show (Epoch's digitised Chinchilla runs: 0.5%).
    Also returns how many of the true law's fits (the full fit and each refit below a cut)
    sampled poorly: R-hat 1.05 or more, or more than 10 divergences in 2000 transitions.
    """
    runs = sb.simulate(
        "chinchilla", EPOCH_CHINCHILLA, isoflop_design(CHINCHILLA_BUDGETS), noise=0.01, seed=seed
    )
    with warnings.catch_warnings():
        # The wrong law samples poorly here (9 compute levels, a misfit absorbed by an E-alpha
        # ridge: R-hat up to 1.2); its elpd is still dozens of nats below the truth's. The
        # true law's fits are checked below instead of silenced.
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Scoring the runs above a cut warns where a GP discrepancy (power_c's, by default: one
        # input) is asked beyond its approximation's box, as a backtest does; expected here.
        warnings.simplefilter("ignore", ExtrapolationWarning)
        # The laws alone, as `scalebayes compare` compares them by default.
        plain = sb.Likelihood(discrepancy="none")
        fits = {
            law: sb.fit(runs, law, seed=seed, likelihood=plain, **CI_FIT)
            for law in ("chinchilla", "power_c")
        }
        loo = compare(fits, method="loo")
        future = None if cuts is None else compare(fits, method="lfo", cuts=cuts)
    # A fit of the true law counts as poor at R-hat 1.05 or more (not 1.01: with 4 x 500 draws
    # over 20 seeds and 5 fits each, a 1.01-1.02 R-hat on a healthy chain comes up) or more than
    # 10 divergences in 2000 transitions (a stray one comes and goes with the CPU's floating
    # point; a broken fit has dozens).
    refits = () if future is None else future.lfo["chinchilla"].fits
    poor = sum(
        one.diagnostics.n_divergent > 10 or one.diagnostics.max_rhat >= 1.05
        for one in (fits["chinchilla"], *refits)
    )
    future_best = None if future is None else future.best == "chinchilla"
    return loo.best == "chinchilla", future_best, poor


def test_loo_prefers_the_true_law() -> None:
    # Reduced run: one seed, PSIS-LOO only (the study, 20 seeds with leave-future-out too, is
    # the slow test below; LFO's ranking mechanics are test_lfo_scores' and the CLI's). power_c
    # ignores how a budget is split between N and D, so within an isoFLOP sweep it misses a
    # U-shaped spread of ~5-20% in loss against 1% noise: a correct method ranks the truth
    # first every time (20 of 20 measured), so a miss here means a broken ranking.
    prefers, _, poor = _prefers_truth(0, cuts=None)
    assert prefers and poor == 0


@pytest.mark.slow
def test_loo_and_lfo_prefer_the_true_law_full() -> None:
    # 20 seeds, 4 cuts: ">= 90%" allows 2 misses per method (measured: 20 of 20 for both).
    results = [_prefers_truth(seed, cuts=4) for seed in range(20)]
    assert sum(loo for loo, _, _ in results) >= 18
    assert sum(future for _, future, _ in results) >= 18
    # The true law's 100 fits sample cleanly, but for a stray one: the refit below the lowest
    # cut sees few budgets, and an E-exponent ridge there can leave 4 x 500 draws mixing
    # poorly (seed 2's on one CPU: R-hat 1.10, on another it passed). A broken sampler fails
    # many; 3 allows three such strays.
    assert sum(poor for _, _, poor in results) <= 3


def test_lfo_scores(chinchilla_lfo, synthetic_runs: sb.Runs) -> None:
    result = chinchilla_lfo  # lfo(synthetic_runs, "chinchilla", cuts=3, seed=5, **CI_FIT)
    cuts = result.cuts
    assert list(cuts["n_fit"] + cuts["n_held"]) == [81, 81, 81]
    assert list(cuts["cut"]) == list(compute_cuts(synthetic_runs, 3))
    assert len(result.fits) == 3
    assert len(result.fits[0].runs) == cuts["n_fit"][0]
    # One batch: the refits are one fit_batch call, fits 0 and 1 of it.
    assert [f.settings.batch_index for f in result.fits] == [0, 1, 2]
    # One-step-ahead: every run above the first cut, once, with the lpd the highest cut below
    # it gave (the per-cut scores are the same rows: elpd_i is a view of them).
    scored = result.elpd_i["run"].to_numpy()
    np.testing.assert_array_equal(scored, np.flatnonzero(synthetic_runs.C > cuts["cut"][0]))
    elpd_i = result.elpd_i.to_series()
    for lower, higher in zip(result.scores, (*result.scores[1:], None), strict=True):
        own = lower.index if higher is None else lower.index.difference(higher.index)
        np.testing.assert_array_equal(elpd_i[own], lower.loc[own, "lpd"])
    np.testing.assert_allclose(cuts["lpd"], [s["lpd"].mean() for s in result.scores])
    # The true law extrapolates: its 90% predictive intervals cover most held-out runs (36
    # to 9 runs; under 60% is 5 of 9, P < 1% for a calibrated interval, and a 5-sd miss on
    # 36) and its median misses by about the noise (1% of the loss; the median |error| is
    # 0.67 x that), so 0.03 in log loss would be a broken extrapolation.
    assert (cuts["coverage_90"] >= 0.6).all()
    assert (cuts["median_abs_error"] < 0.03).all()
    assert result.elpd == pytest.approx(float(result.elpd_i.sum()))
    assert "leave-future-out, law chinchilla" in str(result)
