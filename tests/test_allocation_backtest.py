"""The allocation backtest: N* predicted below held-out isoFLOP budgets against their own sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scalebayes as sb
from scalebayes.allocation_backtest import AllocationBacktest, _score, allocation_backtest
from scalebayes.cli import main
from scalebayes.errors import ScalebayesError
from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design

BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20)


def _runs(seed: int = 1) -> sb.Runs:
    design = isoflop_design(BUDGETS, points_per_budget=7)
    return sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.005, seed=seed)


def _true_n_star(compute: float) -> float:
    p = EPOCH_CHINCHILLA
    alpha, beta = p["alpha"], p["beta"]
    g = (alpha * p["A"] / (beta * p["B"])) ** (1 / (alpha + beta))
    return g * (compute / 6) ** (beta / (alpha + beta))


def test_score_covers_when_the_difference_interval_holds_zero():
    rng = np.random.default_rng(0)
    same = rng.normal(20.0, 0.1, 4000)
    row = _score("top 1 budget", "3", 1e20, same, rng.normal(20.0, 0.1, 4000), 0.9, rng)
    assert row["covers"] and abs(row["log_error"]) < 0.02
    # 0.5 apart in log N with sds of 0.1: the difference's 90 % interval is 0.5 +- 0.23.
    far = _score("top 1 budget", "3", 1e20, same + 0.5, same, 0.9, rng)
    assert not far["covers"] and far["log_error"] == pytest.approx(0.5, abs=0.02)
    assert far["n_star_lower"] < far["n_star"] < far["n_star_upper"]
    # Interval score at 0: the difference's width (sd 0.1 * sqrt 2: 90 % width ~0.47) when it
    # covers; far off, plus 20 times the gap from 0 to its lower end (0.5 - 0.23 = 0.27).
    assert row["interval_score"] == pytest.approx(2 * 1.645 * 0.1 * np.sqrt(2), rel=0.1)
    assert far["interval_score"] == pytest.approx(0.47 + 20 * 0.27, rel=0.1)
    # The width alone is the same ~0.47 either way: the miss is charged in the score only.
    assert row["width"] == pytest.approx(row["interval_score"])
    assert far["width"] == pytest.approx(2 * 1.645 * 0.1 * np.sqrt(2), rel=0.1)


def test_refuses_before_any_fit():
    runs = _runs()
    with pytest.raises(ScalebayesError, match="holding out k leaves 3 or more"):
        allocation_backtest(runs, holdout_budgets=(3,))
    with pytest.raises(ScalebayesError, match="approaches"):
        allocation_backtest(runs, approaches=("7",))
    with pytest.raises(ScalebayesError, match="measure_shape"):
        allocation_backtest(runs, measure_shape="guess")
    with pytest.raises(ScalebayesError, match="slope_step=-1"):
        allocation_backtest(runs, approaches=("3", "3m"), options={"3m": {"slope_step": -1}})
    with pytest.raises(ScalebayesError, match=r"options for approaches \['3m'\]"):
        allocation_backtest(runs, approaches=("3", "2"), options={"3m": {"slope_step": 2.0}})


def test_pooled_scores_the_recommended_approach_of_each_cut_as_one_more_row():
    rows = [  # cut, approach, covers, log error, recommended
        ("top 1", "3", False, 0.4, False),
        ("top 1", "2", True, 0.1, True),
        ("top 2", "3", True, 0.2, True),
        ("top 2", "2", True, -0.3, False),
    ]
    table = pd.DataFrame(
        rows, columns=["held_out", "approach", "covers", "log_error", "recommended"]
    )
    pooled = AllocationBacktest("chinchilla", 0.9, table, {}, {}).pooled()
    assert list(pooled.index) == ["3", "2", "recommended"]
    assert pooled.loc["recommended", "n"] == 2 and pooled.loc["recommended", "coverage"] == 1.0
    assert pooled.loc["recommended", "mean_log_error"] == pytest.approx(0.15)
    assert pooled.loc["3", "coverage"] == 0.5


def test_cli_allocation_takes_isoflop_budgets_only(capsys):
    assert main(["backtest", "runs.csv", "--allocation", "--holdout-top", "1"]) == 2
    assert "--allocation holds out isoFLOP budgets" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not an approach
        main(["backtest", "runs.csv", "--allocation", "--approaches", "4"])
    capsys.readouterr()
    assert main(["backtest", "runs.csv", "--approaches", "3m"]) == 2
    assert "add --allocation" in capsys.readouterr().err


@pytest.mark.slow
def test_known_truth_predicted_and_measured_n_star_agree():
    runs = _runs()
    result = allocation_backtest(runs, holdout_budgets=(1,), chains=2, draws=400, warmup=400)
    table = result.table
    assert set(table["approach"]) == {"3", "2", "3m"} and (table["budget"] == BUDGETS[-1]).all()
    assert table["recommended"].sum() == 1  # one approach per cut and held-out budget
    truth = _true_n_star(BUDGETS[-1])
    # Seven runs at 0.5 % noise pin the held-out sweep's minimum to ~10 % (measured: 90 %
    # intervals +-20 %); 0.25 in log N (28 %) is a wide margin, and a law fitted to four exact
    # sweeps below predicts N* within a few per cent.
    assert np.all(np.abs(np.log(table["measured"] / truth)) < 0.25)
    assert np.all(np.abs(table["log_error"]) < 0.25)
    assert np.all(np.abs(np.log(table["n_star"] / truth)) < 0.25)


def test_held_out_sweeps_are_measured_with_the_prior_shape_when_none_can_be_learnt_below(
    monkeypatch,
):
    """Below a deep cut the sweeps may show no valley (approach 2 refuses them): the held-out
    sweeps are still measured, with the default valley-shape prior, and the rows say so."""
    from types import SimpleNamespace

    from scalebayes import allocation_backtest as backtest
    from scalebayes.errors import IsoflopError

    calls = []

    def fake_fit_isoflops(runs, *, model, settings, **kwargs):
        calls.append((runs, model, kwargs))
        if len(calls) == 1:  # the runs below the cut: no valleys
            raise IsoflopError("approach 2 needs at least 3 isoFLOP budgets")
        return "measured"

    monkeypatch.setattr(backtest, "fit_isoflops", fake_fit_isoflops)
    below = SimpleNamespace(runs="below", settings=SimpleNamespace(sampler=None))
    measured, shape = backtest._measure("held", below, {}, "fitted", None, None)
    assert (measured, shape) == ("measured", "prior")
    held_runs, model, kwargs = calls[1]
    assert held_runs == "held" and model == backtest.ProfileModel()  # the default shape prior
    assert kwargs == {"min_budgets": 1, "edge_sweeps": "keep"}


def test_a_cut_where_every_approach_refuses_is_skipped_and_none_left_is_a_clear_error(
    monkeypatch,
):
    """Approach 2 alone, on a table whose sweeps below a cut show no valley: that cut has no
    prediction to score (it is skipped, its reason kept); with no cut left, the error says why."""
    from scalebayes import allocation_backtest as backtest

    class Refuses:
        reads_whole_model = False

        def allocate(self, fit, budgets):
            raise ScalebayesError("approach 2 needs at least 3 isoFLOP budgets with a valley")

    monkeypatch.setattr(backtest, "estimator", lambda key, **options: Refuses())
    monkeypatch.setattr(
        backtest, "fit_batch", lambda runs, law, *, masks, **kw: [None] * len(masks)
    )
    monkeypatch.setattr(
        backtest, "_measure", lambda *a: pytest.fail("measured with nothing to score")
    )
    with pytest.raises(
        ScalebayesError, match="no approach ran at any cut: approach 2: approach 2 needs"
    ):
        allocation_backtest(_runs(), holdout_budgets=(1, 2), approaches=("2",))
