"""Proper scores and the PIT (scalebayes.scoring) against hand-computed and closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from scalebayes.scoring import crps, interval_score, pit, pit_histogram


def test_interval_score_by_hand():
    # [1, 2] with alpha 0.1: inside it is the width; outside add 20 x the distance.
    lower, upper = np.array([1.0, 1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0, 2.0])
    y = np.array([1.5, 0.5, 2.25, 2.0])
    np.testing.assert_allclose(
        interval_score(lower, upper, y), [1.0, 1.0 + 20 * 0.5, 1.0 + 20 * 0.25, 1.0]
    )
    # alpha 0.5 (a 50 % interval): the penalty factor is 2 / 0.5 = 4.
    assert interval_score(1.0, 2.0, 3.0, alpha=0.5) == pytest.approx(1.0 + 4 * 1.0)


def test_crps_is_the_energy_form_exactly():
    # E|X - y| - E|X - X'| / 2 over the draws' empirical distribution, by brute force O(S^2),
    # and by the sorted-draws sum (2/S^2) sum_i (x_(i) - y)(S 1{y < x_(i)} - i + 1/2).
    rng = np.random.default_rng(3)
    draws = rng.standard_t(4, size=(300, 5)) * 0.02 + 1.1
    y = np.array([1.1, 1.05, 1.2, 0.9, 1.1001])
    brute = np.mean(np.abs(draws - y), axis=0) - 0.5 * np.mean(
        np.abs(draws[:, None, :] - draws[None, :, :]), axis=(0, 1)
    )
    sorted_draws = np.sort(draws, axis=0)
    s = draws.shape[0]
    i = np.arange(1, s + 1)[:, None]
    sorted_sum = 2 / s**2 * np.sum((sorted_draws - y) * (s * (y < sorted_draws) - i + 0.5), axis=0)
    np.testing.assert_allclose(crps(draws, y), brute, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(crps(draws, y), sorted_sum, rtol=1e-10, atol=1e-14)
    # One draw: the CRPS is the absolute error.
    assert crps(np.array([[2.0]]), np.array([3.5]))[0] == pytest.approx(1.5)


def test_crps_of_normal_draws_matches_the_closed_form():
    # Gneiting & Raftery 2007, eq. 5: CRPS(N(mu, s), y) = s [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)].
    # Draws at the normal's quantiles (i - 1/2) / S, not random: the empirical CRPS then differs
    # from the closed form by O(s / S), deterministically; 4000 draws keep it below 2e-4 s.
    n_draws, mu, s = 4000, 0.5, 0.03
    draws = stats.norm.ppf((np.arange(n_draws) + 0.5) / n_draws, loc=mu, scale=s)[:, None]
    y = mu + s * np.array([-3.0, -1.0, 0.0, 0.4, 2.5])
    z = (y - mu) / s
    exact = s * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    got = crps(np.repeat(draws, len(y), axis=1), y)
    np.testing.assert_allclose(got, exact, atol=2e-4 * s)


def test_pit_of_outcomes_from_the_predictive_is_uniform():
    # 1000 points, each with its own predictive (location, scale) and 1000 draws from it, the
    # outcome drawn from the same distribution: the PIT values are uniform up to sampling.
    # Kolmogorov-Smirnov: a uniform sample of 1000 strays more than 1.95 / sqrt(1000) = 0.062
    # from the diagonal with probability 0.1 %; the draws' grid of 1/1000 adds at most 0.001.
    rng = np.random.default_rng(7)
    n, n_draws = 1000, 1000
    loc, scale = rng.normal(1.0, 0.3, n), rng.uniform(0.01, 0.05, n)
    draws = loc + scale * rng.standard_t(4, size=(n_draws, n))
    y = loc + scale * rng.standard_t(4, size=n)
    values = pit(draws, y)
    np.testing.assert_allclose(values, np.mean(draws < y, axis=0))  # no ties in continuous draws
    assert stats.kstest(values, "uniform").statistic < 1.95 / np.sqrt(n) + 1 / n_draws
    # A forecast too narrow by half piles PIT values at both ends (the U shape).
    narrow = pit(loc + 0.5 * (draws - loc), y)
    # Uniform: 0.2 of them in the outer fifths, sd 0.013 over 1000 points; measured 0.52.
    assert np.mean((narrow < 0.1) | (narrow > 0.9)) > 0.35


def test_pit_histogram_counts_and_band():
    values = np.array([0.05, 0.15, 0.15, 0.55, 0.95, 0.99, 1.0, 0.0])
    histogram = pit_histogram(values, bins=4, prob=0.9, label="top 1 budget")
    np.testing.assert_array_equal(histogram.counts, [4, 0, 1, 3])  # 1.0 falls in the last bin
    assert histogram.n == 8 and histogram.expected == 2.0
    # One bin's count of 8 uniform values is Binomial(8, 1/4): its 5 % and 95 % quantiles.
    assert histogram.band == (0.0, 4.0)
    assert stats.binom.cdf(4, 8, 0.25) >= 0.95 > stats.binom.cdf(3, 8, 0.25)
    # Default bins: about five values a bin, between 4 and 10.
    assert len(pit_histogram(np.linspace(0, 1, 30)).counts) == 6
    assert len(pit_histogram(np.linspace(0, 1, 9)).counts) == 4
    assert len(pit_histogram(np.linspace(0, 1, 500)).counts) == 10
    with pytest.raises(ValueError, match="PIT values"):
        pit_histogram(np.array([0.5, 1.5]))
