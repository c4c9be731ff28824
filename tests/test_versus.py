"""The baselines of benchmarks/versus.py (benchmarks/baselines.py) recover known truth."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import scalebayes as sb
from scalebayes.simulation import EPOCH_CHINCHILLA

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import baselines as bl

TRUTH = np.array(
    [
        np.log(EPOCH_CHINCHILLA["E"]),
        np.log(EPOCH_CHINCHILLA["A"]),
        np.log(EPOCH_CHINCHILLA["B"]),
        EPOCH_CHINCHILLA["alpha"],
        EPOCH_CHINCHILLA["beta"],
    ]
)
STARTS = np.array([[0.0, 5.0, 5.0, 0.5, 0.5], [1.0, 10.0, 10.0, 0.5, 0.5]])


def _runs(noise: float, seed: int = 0) -> sb.Runs:
    design = sb.isoflop_design([1e18, 1e19, 1e20, 1e21], points_per_budget=8)
    return sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=noise, seed=seed)


def _natural(theta: np.ndarray) -> np.ndarray:
    return np.concatenate([np.exp(theta[:3]), theta[3:]])


def test_full_grid_is_besiroglu_et_al():
    starts = bl.grid("full")
    assert starts.shape == (4500, 5)
    assert set(starts[:, 1]) == {0.0, 5.0, 10.0, 15.0, 20.0, 25.0}


def test_huber_objective_gradient_matches_finite_differences():
    runs = _runs(0.02)
    args = (np.log(runs.N), np.log(runs.D), np.log(runs.loss), bl.DELTA)
    theta = TRUTH + np.array([0.05, -0.1, 0.1, 0.01, -0.02])
    _, grad = bl.huber_objective(theta, *args)
    step = 1e-7
    numeric = [
        (
            bl.huber_objective(theta + step * e, *args)[0]
            - bl.huber_objective(theta - step * e, *args)[0]
        )
        / (2 * step)
        for e in np.eye(5)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-9)


def test_huber_lbfgs_recovers_noiseless_truth():
    runs = _runs(0.0)
    theta = bl.huber_fit(runs.N, runs.D, runs.loss, STARTS)
    np.testing.assert_allclose(_natural(theta), _natural(TRUTH), rtol=1e-3)


def test_curve_fit_recovers_noiseless_truth():
    runs = _runs(0.0)
    cf = bl.curve_fit_fit(runs.N, runs.D, runs.loss, STARTS)
    np.testing.assert_allclose(_natural(cf.theta), _natural(TRUTH), rtol=1e-3)


@pytest.mark.parametrize("method", ["huber", "curve_fit"])
def test_intervals_and_predictive_scores_run(method):
    runs = _runs(0.01, seed=3)
    if method == "huber":
        model = bl.huber_bootstrap(runs.N, runs.D, runs.loss, starts=STARTS[:1], n_boot=4, seed=1)
        assert model.draws.shape == (4, 5) and model.residuals.shape == (4, len(runs))
    else:
        model = bl.curve_fit_fit(runs.N, runs.D, runs.loss, STARTS)
    intervals = bl.param_intervals(model)
    for name, (point, lower, upper) in intervals.items():
        assert lower <= point <= upper, name
    point, draws = bl.predictive(model, runs.N[:5], runs.D[:5], n_draws=50)
    assert point.shape == (5,) and draws.shape[1] == 5
    scores = bl.scores(point, draws, np.log(runs.loss[:5]))
    assert 0 <= scores["coverage_90"] <= 1 and scores["width_90"] > 0
    # The same proper scores as scalebayes' backtest (negatively oriented, in log loss).
    assert scores["interval_score_90"] > 0 and scores["crps"] > 0
    assert scores["median_abs_error"] < 0.05
