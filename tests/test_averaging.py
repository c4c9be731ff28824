"""average(): mixing per-draw results of several fits by their (stacking) weights."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import scalebayes as sb
from scalebayes.averaging import average, draw_counts, optimal_mixture, predict_mixture
from scalebayes.comparison import compare
from scalebayes.errors import ScalebayesError
from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design
from scalebayes.testing import fit_from_draws, jittered_draws


def per_draw(values: np.ndarray, points: int | None = None) -> xr.DataArray:
    """(chain, draw[, point]) DataArray from an array shaped like that."""
    dims = ("chain", "draw") if points is None else ("chain", "draw", "point")
    coords = {} if points is None else {"point": np.arange(points) * 10.0}
    return xr.DataArray(values, dims=dims, coords=coords, name="loss")


def test_proportions_are_exact() -> None:
    zeros, ones = per_draw(np.zeros((4, 250))), per_draw(np.ones((2, 100)))
    mixed = average({"a": zeros, "b": ones}, {"a": 0.3, "b": 0.7}, n_draws=1000)
    assert mixed.dims == ("chain", "draw") and mixed.shape == (1, 1000)
    # Largest-remainder counts: exactly 700 of the 1000 draws come from b.
    assert float(mixed.mean()) == 0.7
    assert mixed.attrs["draws_from"] == {"a": 300, "b": 700}
    assert mixed.attrs["weights"] == pytest.approx({"a": 0.3, "b": 0.7})
    # Shuffled: the first half is itself a sample of the mixture, not a block of one model.
    assert 0.6 < float(mixed.isel(draw=slice(0, 500)).mean()) < 0.8


def test_weights_are_normalised_and_zero_weight_is_left_out() -> None:
    a, b = per_draw(np.full((2, 50), 3.0)), per_draw(np.full((2, 50), 5.0))
    only_a = average({"a": a, "b": b}, {"a": 2.0, "b": 0.0})
    assert (only_a == 3.0).all() and only_a.sizes["draw"] == 100
    assert only_a.attrs["draws_from"] == {"a": 100, "b": 0}


def test_draws_are_resampled_from_each_input_without_replacement() -> None:
    rng = np.random.default_rng(0)
    a = per_draw(rng.normal(size=(4, 500)))
    mixed = average({"a": a, "b": a + 100}, {"a": 0.5, "b": 0.5}, seed=3)
    from_a = np.sort(mixed.values[mixed.values < 50])
    assert from_a.size == 1000
    assert np.unique(from_a).size == 1000  # no draw used twice
    assert np.isin(from_a, a.values).all()
    again = average({"a": a, "b": a + 100}, {"a": 0.5, "b": 0.5}, seed=3)
    np.testing.assert_array_equal(mixed.values, again.values)  # seeded


def test_mixture_of_normals_matches_its_cdf() -> None:
    # Draws from N(0, 1) and N(4, 1) mixed 0.25 / 0.75: the mixed sample's CDF at 2 is
    # 0.25 * Phi(2) + 0.75 * Phi(-2) = 0.2601. With 8000 draws the sd of an empirical CDF
    # value is sqrt(p (1-p) / 8000) = 0.005, so 0.02 is 4 sd.
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    a = per_draw(rng.normal(0, 1, size=(4, 2000)))
    b = per_draw(rng.normal(4, 1, size=(4, 2000)))
    mixed = average({"a": a, "b": b}, {"a": 0.25, "b": 0.75}, n_draws=8000)
    want = 0.25 * norm.cdf(2) + 0.75 * norm.cdf(-2)
    assert float((mixed < 2).mean()) == pytest.approx(want, abs=0.02)


def test_extra_dims_are_kept() -> None:
    a = per_draw(np.zeros((2, 10, 3)), points=3)
    b = per_draw(np.ones((2, 10, 3)), points=3)
    mixed = average({"a": a, "b": b}, {"a": 0.5, "b": 0.5})
    assert mixed.dims == ("chain", "draw", "point")
    np.testing.assert_array_equal(mixed["point"], [0.0, 10.0, 20.0])
    # A draw is a whole row: every point of it comes from the same model.
    assert np.all((mixed.values == 0).all(axis=-1) | (mixed.values == 1).all(axis=-1))


def test_draw_counts() -> None:
    for weights in ([0.5, 0.5], [0.333, 0.333, 0.334], [0.01, 0.99], [1.0, 0.0]):
        w = np.asarray(weights) / np.sum(weights)
        for total in (1, 7, 1000):
            counts = draw_counts(w, total)
            assert counts.sum() == total
            assert np.all(np.abs(counts - w * total) < 1)


@pytest.mark.parametrize(
    ("results", "weights", "message"),
    [
        ({}, {}, "no results"),
        ({"a": per_draw(np.zeros((1, 5)))}, {"b": 1.0}, r"no weight for \['a'\]"),
        ({"a": per_draw(np.zeros((1, 5)))}, {"a": -1.0}, "non-negative"),
        ({"a": per_draw(np.zeros((1, 5)))}, {"a": 0.0}, "not all 0"),
        ({"a": xr.DataArray(np.zeros(5), dims=("x",))}, {"a": 1.0}, "dims \\(chain, draw"),
        (
            {"a": per_draw(np.zeros((1, 5, 3)), 3), "b": per_draw(np.zeros((1, 5, 2)), 2)},
            {"a": 1.0, "b": 1.0},
            "same points",
        ),
    ],
)
def test_bad_input(results: dict, weights: dict, message: str) -> None:
    with pytest.raises(ScalebayesError, match=message):
        average(results, weights)


def test_average_predictions_with_stacking_weights() -> None:
    # The end-to-end use: two laws' per-draw predictions at a planned run, mixed by the
    # stacking weights of compare(). The truth's posterior gets nearly all the weight, so the
    # mixed prediction is, draw for draw, almost all chinchilla's.
    runs = sb.simulate(
        "chinchilla", EPOCH_CHINCHILLA, isoflop_design(CHINCHILLA_BUDGETS), noise=0.01, seed=1
    )
    fits = {
        "chinchilla": fit_from_draws(
            "chinchilla",
            runs,
            jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, rel_sd=0.005, draws=250),
        ),
        "power_c": fit_from_draws(
            "power_c",
            runs,
            jittered_draws({"E": 1.8, "A": 2700.0, "alpha": 0.18, "sigma": 0.03}, draws=250),
        ),
    }
    weights = compare(fits).weights
    assert weights.sum() == pytest.approx(1.0, abs=1e-6)
    planned = {"N": 70e9, "D": 1.4e12, "C": 6 * 70e9 * 1.4e12}
    predictions = {}
    for name, fit in fits.items():
        posterior = fit.posterior
        log_inputs = {k: np.log(planned[k]) for k in fit.law.inputs}
        params = {k: posterior[k].to_numpy() for k in fit.law.param_names}
        log_mean = fit.law.log_mean(params, log_inputs)
        predictions[name] = xr.DataArray(np.exp(np.asarray(log_mean)), dims=("chain", "draw"))
    mixed = average(predictions, weights.to_dict())
    counts = mixed.attrs["draws_from"]
    assert counts["chinchilla"] == round(weights["chinchilla"] * 1000)
    assert counts["chinchilla"] + counts["power_c"] == 1000
    median = float(mixed.median())
    assert median == pytest.approx(float(predictions["chinchilla"].median()), rel=0.01)


@pytest.fixture(scope="module")
def two_fits() -> dict[str, sb.Fit]:
    runs = sb.simulate(
        "chinchilla", EPOCH_CHINCHILLA, isoflop_design(CHINCHILLA_BUDGETS), noise=0.01, seed=1
    )
    truth = {**EPOCH_CHINCHILLA, "sigma": 0.01}
    tied = {**{k: v for k, v in truth.items() if k != "beta"}, "alpha": 0.36}
    return {
        "chinchilla": fit_from_draws(
            "chinchilla", runs, jittered_draws(truth, rel_sd=0.01, draws=200)
        ),
        "chinchilla_tied": fit_from_draws(
            "chinchilla_tied", runs, jittered_draws(tied, rel_sd=0.01, draws=200, seed=1)
        ),
    }


def test_predict_mixture_of_a_set_of_fits(two_fits: dict[str, sb.Fit]) -> None:
    weights = {"chinchilla": 0.25, "chinchilla_tied": 0.75}
    mixed = predict_mixture(two_fits, N=[7e9, 70e9], D=[1.4e11, 1.4e12], weights=weights)
    assert mixed.loss.dims == ("chain", "draw", "point") and mixed.loss.sizes["draw"] == 800
    assert mixed.loss.attrs["draws_from"] == {"chinchilla": 200, "chinchilla_tied": 600}
    alone = {
        name: sb.predict(fit, N=[7e9, 70e9], D=[1.4e11, 1.4e12]) for name, fit in two_fits.items()
    }
    # Every mixed draw is a draw of one of the two laws, at both points together.
    pool = np.concatenate([a.loss.values.reshape(-1, 2) for a in alone.values()])
    rows = {tuple(r) for r in pool}
    assert all(tuple(r) in rows for r in mixed.loss.values.reshape(-1, 2))
    assert len(mixed.summary()) == 2
    # Default weights: stacking by PSIS-LOO, as compare() gives them.
    default = predict_mixture(two_fits, N=70e9, D=1.4e12)
    want = compare(two_fits).weights
    assert default.loss.attrs["weights"] == pytest.approx(want.to_dict(), abs=1e-9)


def test_optimal_mixture_of_a_set_of_fits(two_fits: dict[str, sb.Fit]) -> None:
    weights = {"chinchilla": 0.5, "chinchilla_tied": 0.5}
    mixed = optimal_mixture(two_fits, [1e23, 1e24], weights=weights, seed=2)
    assert mixed.N.dims == ("chain", "draw", "budget") and mixed.N.sizes["draw"] == 800
    np.testing.assert_array_equal(mixed.budgets, [1e23, 1e24])
    # Joint mixing: N* and D* of a draw come from the same law's draw, so C = 6 N* D* holds.
    np.testing.assert_allclose(6 * mixed.N * mixed.D, np.broadcast_to([1e23, 1e24], mixed.N.shape))
    alone = {name: sb.optimal(fit, [1e23, 1e24]) for name, fit in two_fits.items()}
    pool = {tuple(r) for a in alone.values() for r in a.N.values.reshape(-1, 2)}
    assert all(tuple(r) in pool for r in mixed.N.values.reshape(-1, 2))
    assert len(mixed.summary()) == 12
