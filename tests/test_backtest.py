"""Backtests and the one core under them (holdout): cut rules, scores, and lfo as a view."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tests.conftest import CI_FIT

import scalebayes as sb
from scalebayes.backtesting import backtest
from scalebayes.cli import main
from scalebayes.errors import ScalebayesError, UnidentifiableError
from scalebayes.holdout import (
    SCORES,
    Cut,
    budget_cuts,
    decade_cuts,
    flop_cuts,
    pool,
    quantile_cuts,
    ratio_cuts,
    score,
)
from scalebayes.scoring import interval_score
from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design
from scalebayes.testing import fit_from_draws, jittered_draws

PLAIN = sb.Likelihood(discrepancy="none")


@pytest.fixture(scope="module")
def known_backtest(synthetic_runs):
    # The plain law, as chinchilla_lfo: the core is the same for every discrepancy.
    return backtest(
        synthetic_runs, "chinchilla", holdout_budgets=(1, 2), seed=0, likelihood=PLAIN, **CI_FIT
    )


def assert_sampled_well(diagnostics: sb.Diagnostics) -> None:
    """Health with margins, not the 1.01 / 100-per-chain thresholds a seed can straddle.

    A healthy 4 x 500-draw fit of this ladder has R-hat 1.00-1.02 depending on the seed
    (measured: 1.011), so ``diagnostics.ok`` would test the seed; a stuck chain or a second
    mode gives 1.1 and more, well past 1.05. Bulk ESS is ~1500 of 2000 draws here, so 400
    (the usual 100 per chain) is a 3x margin. Bad geometry (a funnel) diverges tens to
    hundreds of times in 2000 transitions; 10 (0.5 %) allows the odd one.
    """
    assert diagnostics.max_rhat < 1.05, diagnostics
    assert diagnostics.min_ess_bulk > 400, diagnostics
    assert diagnostics.n_divergent <= 10, diagnostics


def test_backtest_scores_the_held_out_budgets(known_backtest, synthetic_runs):
    table = known_backtest.table
    assert list(table.columns[:4]) == ["cut", "held_out", "n_fit", "n_held"]
    assert list(table.columns[4 : 4 + len(SCORES)]) == list(SCORES)
    assert SCORES[:3] == ("interval_score_90", "crps", "lpd")  # proper scores first
    assert list(table["held_out"]) == ["top 1 budget", "top 2 budgets"]
    assert list(table["n_held"]) == [9, 18]  # nine runs per budget on the ladder
    assert (table["n_fit"] + table["n_held"] == len(synthetic_runs)).all()
    assert len(known_backtest.fits) == 3 and len(known_backtest.full.runs) == len(synthetic_runs)
    for fit in known_backtest.fits:
        assert_sampled_well(fit.diagnostics)
    # The law that simulated the runs is the one fitted, so predictions beyond the data are
    # right up to noise: with 1 % noise the median errors stay near the noise (0.67 sigma is the
    # median |N(0, 1)| error, ~0.007); 0.02 would mean the extrapolation is broken.
    assert (table["median_abs_error"] < 0.02).all()
    assert (table["coverage_50"] <= table["coverage_90"]).all()
    # Calibrated 90 % intervals on 9-18 runs sharing parameter uncertainty: below 60 % coverage
    # would take a miscalibrated fit (for 18 independent runs P(< 11 inside) < 0.1 %).
    assert (table["coverage_90"] >= 0.6).all()
    # The table pools the per-run scores, one frame per cut, indexed by the held-out rows.
    for scores, row in zip(known_backtest.scores, table.itertuples(), strict=True):
        np.testing.assert_array_equal(scores.index, np.flatnonzero(synthetic_runs.C > row.cut))
        assert pool(scores) == pytest.approx({k: getattr(row, k) for k in SCORES})
    assert known_backtest.budget == pytest.approx(10 * synthetic_runs.C.max())
    # One budget beyond the ladder, the small-run allocation interval holds the all-runs answer.
    assert bool(table["covers_all_data"].iloc[0])
    text = str(known_backtest)
    assert "top 2 budgets" in text and "all cuts" in text
    header = next(line for line in text.splitlines() if "held out" in line)
    assert header.split()[4:7] == ["IS90", "CRPS", "lpd/run"]  # after "held out", fit, held
    # Over all cuts: every (cut, run) pair once, 9 + 18 rows.
    assert known_backtest.pooled == pytest.approx(pool(pd.concat(known_backtest.scores)))
    # A proper score, not coverage alone: the mean interval score is at least the mean width,
    # and each run's CRPS is at most its absolute error (CRPS <= E|X - y| <= |median - y| + ...).
    for scores in known_backtest.scores:
        assert (scores["interval_score_90"] >= scores["width_90"] - 1e-12).all()
        inside = scores["inside_90"]
        np.testing.assert_allclose(
            scores.loc[inside, "interval_score_90"], scores.loc[inside, "width_90"]
        )
        assert (scores["crps"] > 0).all() and scores["pit"].between(0, 1).all()


def test_backtest_and_lfo_give_identical_scores_for_the_same_cuts(chinchilla_lfo, synthetic_runs):
    # Both are views of one core (holdout.fit_holdout): the same cuts and settings are the same
    # batch of fits (the same compiled sampler and draws) scored by the same function, so the
    # scores agree exactly, not within sampling noise.
    same = backtest(
        synthetic_runs,
        "chinchilla",
        cuts=list(chinchilla_lfo.cuts["cut"]),
        fit_all=False,
        seed=5,
        likelihood=PLAIN,
        **CI_FIT,
    )
    for column in ("cut", "n_fit", "n_held", *SCORES):
        np.testing.assert_array_equal(same.table[column], chinchilla_lfo.cuts[column])
    for ours, theirs in zip(same.scores, chinchilla_lfo.scores, strict=True):
        pd.testing.assert_frame_equal(ours, theirs)
    for ours, theirs in zip(same.fits, chinchilla_lfo.fits, strict=True):
        np.testing.assert_array_equal(ours.posterior["alpha"], theirs.posterior["alpha"])
    # Without the all-runs fit there is nothing to check the allocation against.
    assert same.budget is None and len(same.fits) == 3
    assert "tokens_per_param" not in same.table
    with pytest.raises(ScalebayesError, match="fit_all"):
        same.full  # noqa: B018
    with pytest.raises(ScalebayesError, match="fit_all"):
        backtest(synthetic_runs, cuts=[1e20], budget=1e24, fit_all=False)


def test_backtest_cli_prints_the_table_and_json(known_backtest, synthetic_runs, tmp_path, capsys):
    path = tmp_path / "runs.csv"
    synthetic_runs.table[["N", "D", "C", "loss"]].to_csv(path, index=False)
    settings = ["--chains", "4", "--draws", "500", "--warmup", "500", "--quiet"]
    settings += ["--discrepancy", "none"]
    # Same table shape and settings as known_backtest: the compiled batch sampler is reused.
    pit = tmp_path / "pit.svg"
    args = ["backtest", str(path), "--holdout-budgets", "1", "2", *settings, "--plot", str(pit)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    svg = pit.read_text()  # one PIT panel per cut
    assert svg.count('id="pit"') == 2
    assert [row["n_held"] for row in out["cuts"]] == [9, 18]
    assert all(d["max_rhat"] < 1.05 for d in out["diagnostics"])  # see assert_sampled_well
    np.testing.assert_allclose(
        [row["coverage_90"] for row in out["cuts"]], known_backtest.table["coverage_90"]
    )
    first = list(out["cuts"][0])
    assert first.index("interval_score_90") < first.index("coverage_90")
    assert out["all_cuts"]["n_held"] == 27
    # Each cut lists its held-out runs' scores: which ones missed, and by how much.
    held = out["cuts"][1]["runs"]
    assert len(held) == 18 and {"run", "N", "D", "log_loss", "lower_90", "upper_90"} <= set(held[0])
    # Each named by its line in the file (header line 1), as every message names runs.
    assert all(r["name"] == f"line {r['run'] + 2}" for r in held)
    inside = [r["lower_90"] <= r["log_loss"] <= r["upper_90"] for r in held]
    assert np.mean(inside) == pytest.approx(out["cuts"][1]["coverage_90"])
    assert out["all_cuts"]["interval_score_90"] == pytest.approx(
        known_backtest.pooled["interval_score_90"]
    )


def test_backtest_errors(synthetic_runs):
    with pytest.raises(ScalebayesError, match="one of"):
        backtest(synthetic_runs, holdout_top=(1,), cuts=(1e20,))
    with pytest.raises(ScalebayesError, match="distinct budgets"):
        backtest(synthetic_runs, holdout_budgets=(9,))
    with pytest.raises(ScalebayesError, match="at least 3"):
        backtest(synthetic_runs, cuts=(1.0,))
    with pytest.raises(ScalebayesError, match="positive"):
        backtest(synthetic_runs, holdout_top=(-1,))
    with pytest.raises(ScalebayesError, match="allocation_approach='2'"):
        backtest(synthetic_runs, allocation_approach="2")  # before any sampling


def test_the_allocation_check_adds_3m_where_optimal_would_recommend_it(
    known_backtest, chinchilla_fit, chinchilla_plain_fit
):
    # The law's check is always there; 3m's beside it only for a fit with the GP on runs that
    # form 3 or more isoFLOP sweeps with a valley (the session's ladder has 9), as
    # verdict.recommend chooses; a plain fit has no whole model beyond its law.
    from scalebayes.allocation.whole_model import whole_model_optimal
    from scalebayes.backtesting import _allocation_approaches, _allocation_columns

    assert known_backtest.allocation_approaches == ("3",)
    assert _allocation_approaches(chinchilla_fit, "auto") == ("3", "3m")
    assert _allocation_approaches(chinchilla_plain_fit, "auto") == ("3",)
    assert _allocation_approaches(chinchilla_fit, "3m") == ("3m",)
    with pytest.raises(ScalebayesError, match="GP discrepancy; this one is law 'chinchilla'"):
        _allocation_approaches(chinchilla_plain_fit, "3m")
    # 3m's columns are whole_model_optimal's quantiles, with their own suffix; a fit checked
    # against itself covers its own median.
    budget = known_backtest.budget
    held = dataclasses.make_dataclass("Held", ["fits", "full"])((chinchilla_fit,), chinchilla_fit)
    columns = _allocation_columns(held, budget, "3m")
    tpp = whole_model_optimal(chinchilla_fit, [budget]).tokens_per_param.to_numpy().ravel()
    row = columns.iloc[0]
    assert row["tokens_per_param_3m"] == pytest.approx(np.median(tpp))
    assert row["tokens_per_param_lower_3m"] == pytest.approx(np.quantile(tpp, 0.05))
    assert bool(row["covers_all_data_3m"])
    # The text gives each approach's block, named.
    both = pd.concat([known_backtest.table, pd.concat([columns] * 2, ignore_index=True)], axis=1)
    shown = dataclasses.replace(known_backtest, table=both, allocation_approaches=("3", "3m"))
    text = str(shown)
    assert "FLOPs, the law's own (approach 3): all runs" in text
    block = text.split("the whole model's (approach 3m): all runs ")[1].splitlines()
    assert block[0] == f"{row['all_data_tokens_per_param_3m']:.3g}; from the small runs:"
    assert block[1].split()[:3] == ["top", "1", "budget"] and "covers" in block[1]
    assert shown.to_dict()["allocation_approaches"] == ["3", "3m"]


def test_default_cuts_leave_out_one_the_law_cannot_fit_and_say_so(monkeypatch):
    # Two decades of compute with four runs per sweep (Marin's sweeps span 2.1): the top two
    # decades leave 4 runs, too few for the law's 6 parameters. The default backtests the top
    # decade alone and warns; the same cut asked for is refused, naming it, before sampling.
    # What the default hands on to the fits is caught there (the fits are other tests' job).
    import scalebayes.backtesting as backtesting

    design = isoflop_design([1e19, 3e19, 1e20, 3e20, 1.01e21], points_per_budget=4)
    runs = sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.01, seed=0)
    with pytest.raises(UnidentifiableError, match="the fit that holds out top 2 decades: 4 runs"):
        backtest(runs, holdout_top=(1, 2), likelihood=PLAIN)

    class Handed(Exception):
        pass

    def fit_holdout(runs, law, cuts, **_):
        raise Handed([cut.label for cut in cuts])

    monkeypatch.setattr(backtesting, "fit_holdout", fit_holdout)
    with pytest.warns(sb.DataWarning, match="top 2 decades: 4 runs .* default cut is left out"):
        with pytest.raises(Handed) as handed:
            backtest(runs, likelihood=PLAIN)
    assert handed.value.args[0] == ["top 1 decade"]


def test_backtest_cli_rejects_two_holdout_options(synthetic_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["backtest", "runs.csv", "--holdout-top", "1", "--cut", "1e20"])
    assert exit_info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    # A bad figure name fails before any fit, not after the sampling.
    assert main(["backtest", "no_such_runs.csv", "--plot", "pit.jpg"]) == 2
    assert ".png, .svg or .pdf" in capsys.readouterr().err


# ----------------------------------------------------------------------------- cut rules


def test_cut_rules_make_masks_below_the_cut(synthetic_runs):
    budgets = np.unique(synthetic_runs.C)
    top = budget_cuts(synthetic_runs, [1, 2])
    assert [c.flops for c in top] == [budgets[-2], budgets[-3]]
    assert [c.label for c in top] == ["top 1 budget", "top 2 budgets"]
    decades = decade_cuts(synthetic_runs, [1])
    assert decades[0].flops == pytest.approx(synthetic_runs.C.max() / 10)
    assert decades[0].label == "top 1 decade"
    (explicit,) = flop_cuts(synthetic_runs, [1e20])
    assert explicit.label == "C > 1e+20"
    quantiles = quantile_cuts(synthetic_runs, 2)
    for cut in (*top, *decades, explicit, *quantiles):
        np.testing.assert_array_equal(cut.mask, synthetic_runs.C <= cut.flops)
    # Every rule refuses a cut that leaves too few runs to fit or none to score, in one message.
    for rule, arg in ((flop_cuts, [1e18]), (quantile_cuts, [1e18]), (decade_cuts, [9])):
        with pytest.raises(ScalebayesError, match=r"leaves 0 runs to fit .* at least 3 below"):
            rule(synthetic_runs, arg)
    with pytest.raises(ScalebayesError, match="and 0 to score"):
        flop_cuts(synthetic_runs, [1e30])
    # Over-training: fit at most 20 tokens per parameter, score the longer-trained runs.
    ratio = synthetic_runs.table["D"].to_numpy() / synthetic_runs.table["N"].to_numpy()
    (over,) = ratio_cuts(synthetic_runs, [20])
    np.testing.assert_array_equal(over.mask, ratio <= 20)
    assert over.label == "D/N > 20" and 0 < over.mask.sum() < len(ratio)
    with pytest.raises(ScalebayesError, match="and 0 to score"):
        ratio_cuts(synthetic_runs, [1e9])
    with pytest.raises(ScalebayesError, match="one of"):
        backtest(synthetic_runs, holdout_top=(1,), holdout_tokens_per_param=(80,))
    # Any mask is a cut: held-out rows need not be the largest.
    odd = Cut(float("nan"), "odd rows", np.arange(len(synthetic_runs)) % 2 == 0)
    assert odd.mask.sum() == (len(synthetic_runs) + 1) // 2


# -------------------------------------------------------------------------------- scores


def test_score_definitions_on_a_known_posterior():
    # Every draw at the truth, noise drawn as the likelihood assumes (Student-t, 4 df, 1 %):
    # the lpd is then the t density exactly, and the intervals are calibrated.
    law = sb.load_law("chinchilla")
    likelihood = sb.Likelihood(discrepancy="none")
    design = isoflop_design(CHINCHILLA_BUDGETS)
    replicas = [
        sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.01, df=4, seed=s)
        .table[["N", "D", "loss"]]
        .assign(group=f"seed {s}")  # four replicas of the ladder: separate experiments
        for s in range(4)
    ]
    runs = sb.load_runs(pd.concat(replicas, ignore_index=True))
    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.0, draws=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat of constant draws is undefined
        fit = fit_from_draws(law, runs, draws, likelihood=likelihood)
    held = runs.C > np.median(runs.C)
    rows = score(fit, runs, held, seed=0)
    np.testing.assert_array_equal(rows.index, np.flatnonzero(held))
    n = len(rows)  # 4 x 36 = 144 runs above the median budget
    log_mu = np.log(sb.predict(fit, N=runs.N[held], D=runs.D[held]).loss.to_numpy()[0, 0])
    y = np.log(runs.loss[held])
    expected = stats.t.logpdf(y, df=4, loc=log_mu, scale=0.01) - y  # loss scale: minus log loss
    np.testing.assert_allclose(rows["lpd"], expected, rtol=1e-10)
    np.testing.assert_allclose(rows["error"], rows["log_loss"] - rows["median"])
    np.testing.assert_allclose(rows["width_90"], rows["upper_90"] - rows["lower_90"])
    # Width of a t4 90 % interval: 2 x 2.132 x sigma. Each run's is a quantile of 2000 noise
    # draws (~3 % error), the median over 144 independent runs ~0.3 %: 2 % is a 6-se margin.
    assert np.median(rows["width_90"]) == pytest.approx(2 * stats.t.ppf(0.95, 4) * 0.01, rel=0.02)
    pooled = pool(rows)
    # Coverage of calibrated intervals is Binomial(144, p)/144: sd 2.5 % at 90 %, 4.2 % at 50 %;
    # the bounds are 4 sd. Bias: mean of 144 t4 errors of sd 1.4 %, se 0.12 %; 0.5 % is 4 se.
    assert abs(pooled["coverage_90"] - 0.9) < 0.1
    assert abs(pooled["coverage_50"] - 0.5) < 0.17
    assert abs(pooled["bias"]) < 0.005
    assert pooled["lpd"] == pytest.approx(np.mean(expected))
    # The proper scores per run from the same intervals and draws (formulas: test_scoring.py).
    np.testing.assert_allclose(
        rows["interval_score_90"],
        interval_score(rows["lower_90"], rows["upper_90"], rows["log_loss"], 0.1),
    )
    # Calibrated forecasts: PIT values of 144 runs spread over [0, 1] (mean 0.5, se 0.024).
    assert abs(rows["pit"].mean() - 0.5) < 0.1
    # Expected CRPS of a forecast that is the outcome's distribution: E|X - Y| / 2 for X, Y
    # iid, 0.0074 for t4 with scale 0.01 (numerically). Per-run CRPS has sd ~0.005, so the
    # mean over 144 runs has se ~0.0004: the bounds are ~5 se.
    assert 0.0055 < pooled["crps"] < 0.0095
    assert pooled["coverage_90"] == np.mean(rows["inside_90"]) and n == 144


def test_pool_by_hand():
    rows = pd.DataFrame(
        {
            "error": [0.01, -0.03, 0.02],
            "inside_90": [True, False, True],
            "inside_50": [False, False, True],
            "width_90": [0.04, 0.05, 0.06],
            "interval_score_90": [0.04, 0.45, 0.06],
            "crps": [0.01, 0.02, 0.06],
            "lpd": [1.0, 2.0, 4.0],
        }
    )
    assert pool(rows) == pytest.approx(
        {
            "interval_score_90": 0.55 / 3,
            "crps": 0.03,
            "median_abs_error": 0.02,
            "mean_abs_error": 0.02,
            "bias": 0.0,
            "coverage_90": 2 / 3,
            "coverage_50": 1 / 3,
            "width_90": 0.05,
            "lpd": 7 / 3,
        }
    )


@pytest.mark.parametrize("discrepancy", ["none", "curvature"])
def test_score_on_the_fitted_runs_is_the_fits_own_log_likelihood(synthetic_runs, discrepancy):
    # Scored on the runs it was fitted to, the log predictive density must come from the fit's
    # own log_likelihood group, discrepancy term included (it goes through Fit.log_mean).
    from scalebayes.likelihood import model_param_names

    likelihood = sb.Likelihood(discrepancy=discrepancy)
    law = sb.load_law("chinchilla")
    values = {**EPOCH_CHINCHILLA, "sigma": 0.01}
    extra = [n for n in model_param_names(law, likelihood) if n not in values]
    values.update({name: 1e-4 for name in extra})  # a small discrepancy, non-zero
    draws = jittered_draws(values, rel_sd=0.01, draws=50)
    fit = fit_from_draws(law, synthetic_runs, draws, likelihood=likelihood)
    rows = score(fit, synthetic_runs, seed=0)
    own = fit.idata["log_likelihood"]["loss"].to_numpy().reshape(-1, len(synthetic_runs))
    lpd = np.logaddexp.reduce(own, axis=0) - np.log(own.shape[0])
    np.testing.assert_allclose(rows["lpd"], lpd, rtol=1e-12, atol=1e-12)  # float64 round-off
    # Predictive medians sit on the data to about the noise (sigma = 1 %).
    assert rows["error"].abs().median() < 0.03


def test_score_reads_only_the_laws_inputs(known_backtest, synthetic_runs):
    # isoFLOP sweeps often record the nominal budget, a few % off 6 N D (Open-Athena's Marin):
    # scores predict from the law's own inputs, so they must not refuse such a table.
    table = synthetic_runs.table[["N", "D", "C", "loss"]].copy()
    table["C"] *= 1.15
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sb.DataWarning)
        nominal = sb.load_runs(table, accept_inconsistent_c=True)
    held = nominal.C > np.quantile(nominal.C, 0.8)
    fit = known_backtest.fits[0]
    scores = pool(score(fit, nominal, held, seed=0))
    same = pool(score(fit, synthetic_runs, held, seed=0))
    assert scores == pytest.approx(same)  # C is not an input of chinchilla: no difference
    assert 0.0 <= scores["coverage_90"] <= 1.0 and np.isfinite(scores["lpd"])


def test_lfo_is_a_view_each_run_scored_by_the_highest_cut_below_it(synthetic_runs):
    # Two posteriors that score differently (noise 1 % and 2 %), given as the cuts' fits in
    # decreasing order of the cut: the view must still take each run's lpd from the highest
    # cut below it, and its per-cut rows are the same pooled scores.
    from scalebayes.holdout import Holdout
    from scalebayes.leave_future_out import LFO

    runs = synthetic_runs
    low, high = flop_cuts(runs, [1e20, 1e21])
    fits = {
        cut.label: fit_from_draws(
            "chinchilla",
            runs.subset(cut.mask),
            jittered_draws({**EPOCH_CHINCHILLA, "sigma": sigma}, rel_sd=0.01, draws=50),
            likelihood=sb.Likelihood(discrepancy="none"),
        )
        for cut, sigma in ((low, 0.01), (high, 0.02))
    }
    held = Holdout(
        runs=runs,
        cuts=(high, low),
        fits=(fits[high.label], fits[low.label]),
        scores=tuple(score(fits[c.label], runs, ~c.mask) for c in (high, low)),
    )
    view = LFO.from_holdout(held)
    elpd_i = view.elpd_i.to_series()
    np.testing.assert_array_equal(elpd_i.index, np.flatnonzero(~low.mask))
    above_high = np.flatnonzero(~high.mask)
    between = np.flatnonzero(~low.mask & high.mask)
    np.testing.assert_array_equal(elpd_i[above_high], held.scores[0].loc[above_high, "lpd"])
    np.testing.assert_array_equal(elpd_i[between], held.scores[1].loc[between, "lpd"])
    assert list(view.cuts["cut"]) == [1e21, 1e20]
    text = str(view).splitlines()
    assert text[2].split()[4:7] == ["IS90", "CRPS", "lpd/run"]  # after "cut (FLOPs)", fit, held
    assert text[-1].split()[:2] == ["all", "cuts"]
    assert view.pooled == pytest.approx(pool(pd.concat(held.scores)))
    for row, scores in zip(view.cuts.itertuples(), held.scores, strict=True):
        assert {k: getattr(row, k) for k in SCORES} == pytest.approx(pool(scores))


def test_the_text_names_the_runs_outside_their_intervals(known_backtest):
    # Each cut lists its misses, worst interval score first, by their line in the table; the
    # same runs the JSON marks outside (whichever runs this seed misses, the two agree).
    text = str(known_backtest)
    for cut, runs in zip(known_backtest.to_dict()["cuts"], known_backtest.scores, strict=True):
        missed = runs[~runs["inside_90"]]
        header = f"{cut['held_out']}: {len(missed)} of {len(runs)} held-out runs outside"
        assert (header in text) == (len(missed) > 0)
        named = [r["name"] for r in cut["runs"] if not r["inside_90"]]
        shown = named if len(named) <= 5 else []
        assert all(f"  {name}: N " in text for name in shown)
    # A run pushed above its interval is listed first, as above it, named as messages name it.
    first = known_backtest.scores[0].copy()
    index = first.index[0]
    first.loc[index, "log_loss"] = first.loc[index, "upper_90"] + 0.1
    first.loc[index, "inside_90"] = False
    first.loc[index, "interval_score_90"] = 99.0  # the worst: listed first
    moved = dataclasses.replace(known_backtest, scores=(first, *known_backtest.scores[1:]))
    lines = str(moved).splitlines()
    at = next(i for i, line in enumerate(lines) if "held-out runs outside" in line)
    name = f"{moved.runs.row_label} {moved.runs.rows[index]}"  # "row 72" for a DataFrame
    assert lines[at + 1].startswith(f"  {name}: N ") and " above [" in lines[at + 1]
    # A backtest built without its table names runs by their row.
    assert dataclasses.replace(known_backtest, runs=None)._name(3) == "run 3"
