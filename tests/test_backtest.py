"""Backtests: small-run fits scored on the larger runs, against a known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import CI_FIT

from scalebayes.backtest import backtest
from scalebayes.cli import main
from scalebayes.errors import ScalebayesError


@pytest.fixture(scope="module")
def known_backtest(synthetic_runs):
    return backtest(synthetic_runs, "chinchilla", holdout_budgets=(1, 2), seed=0, **CI_FIT)


def test_backtest_scores_the_held_out_budgets(known_backtest, synthetic_runs):
    table = known_backtest.table
    assert list(table["held_out"]) == ["top 1 budget", "top 2 budgets"]
    assert list(table["n_held"]) == [9, 18]  # nine runs per budget on the ladder
    assert (table["n_fit"] + table["n_held"] == len(synthetic_runs)).all()
    assert len(known_backtest.fits) == 3 and len(known_backtest.full.runs) == len(synthetic_runs)
    for fit in known_backtest.fits:
        assert fit.diagnostics.ok, fit.diagnostics.problems
    # The law that simulated the runs is the one fitted, so predictions beyond the data are
    # right up to noise: with 1 % noise the median errors stay near the noise (0.67 sigma is the
    # median |t4| error, ~0.007); 0.02 would mean the extrapolation is broken.
    assert (table["median_abs_error"] < 0.02).all()
    assert (table["coverage_50"] <= table["coverage_90"]).all()
    # Calibrated 90 % intervals on 9-18 runs sharing parameter uncertainty: below 60 % coverage
    # would take a miscalibrated fit (for 18 independent runs P(< 11 inside) < 0.1 %).
    assert (table["coverage_90"] >= 0.6).all()
    assert known_backtest.budget == pytest.approx(10 * synthetic_runs.C.max())
    # One budget beyond the ladder, the small-run allocation interval holds the all-runs answer.
    assert bool(table["covers_all_data"].iloc[0])
    assert "top 2 budgets" in str(known_backtest)


def test_backtest_cli_prints_the_table_and_json(known_backtest, synthetic_runs, tmp_path, capsys):
    path = tmp_path / "runs.csv"
    synthetic_runs.table[["N", "D", "C", "loss"]].to_csv(path, index=False)
    settings = ["--chains", "4", "--draws", "500", "--warmup", "500", "--quiet"]
    # Same table shape and settings as known_backtest: the compiled batch sampler is reused.
    assert main(["backtest", str(path), "--holdout-budgets", "1", "2", *settings, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["n_held"] for row in out["cuts"]] == [9, 18]
    assert all(d["ok"] for d in out["diagnostics"])
    np.testing.assert_allclose(
        [row["coverage_90"] for row in out["cuts"]], known_backtest.table["coverage_90"]
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


def test_backtest_cli_rejects_two_holdout_options(synthetic_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["backtest", "runs.csv", "--holdout-top", "1", "--cut", "1e20"])
    assert exit_info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_backtest_scores_tables_whose_compute_is_a_nominal_budget(known_backtest, synthetic_runs):
    # isoFLOP sweeps often record the nominal budget, a few % off 6 N D (Open-Athena's Marin):
    # the backtest predicts from the law's own inputs, so it must not refuse such a table.
    import warnings

    import scalebayes as sb
    from scalebayes.backtest import _scores

    table = synthetic_runs.table[["N", "D", "C", "loss"]].copy()
    table["C"] *= 1.15
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sb.DataWarning)
        nominal = sb.load_runs(table, accept_inconsistent_c=True)
    held = nominal.subset(nominal.C > np.quantile(nominal.C, 0.8))
    scores = _scores(known_backtest.fits[0], held, seed=0)
    assert 0.0 <= scores["coverage_90"] <= 1.0 and np.isfinite(scores["lpd"])
