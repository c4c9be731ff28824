"""Proper scoring rules for a prediction of held-out runs, and its probability integral transform.

Coverage alone rewards wide intervals: 100 % of runs inside intervals as wide as the loss is
"calibrated". A proper score cannot be gamed that way: its expectation is best when the forecast
is the distribution the outcome comes from (Gneiting & Raftery 2007, "Strictly proper scoring
rules, prediction, and estimation", JASA 102:359). Here, for each run, from draws of the
predictive distribution of a new run's log loss:

- :func:`interval_score`: the central ``1 - alpha`` interval's width plus ``2 / alpha`` times
  how far the outcome falls outside it (their eq. 43); lower is better, in log loss;
- :func:`crps`: the continuous ranked probability score of the draws, ``E|X - y| -
  E|X - X'| / 2`` (their eq. 21), exact for the empirical distribution; lower is better, in
  log loss (it is the absolute error of a point forecast, generalised to a distribution);
- :func:`pit`: the share of draws below the outcome, uniform on [0, 1] across runs when the
  forecasts are calibrated (:func:`pit_histogram` bins it against that reference).

The log score is the log predictive density (``lpd`` in :mod:`scalebayes.holdout`), higher is
better. CRPS and PIT come from arviz-stats' array functions, with equal weights on the draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["INTERVAL_ALPHA", "PitHistogram", "crps", "interval_score", "pit", "pit_histogram"]

INTERVAL_ALPHA = 0.1
"""The scored interval's tail probability: the 90 % central interval."""


def interval_score(
    lower: np.ndarray, upper: np.ndarray, y: np.ndarray, alpha: float = INTERVAL_ALPHA
) -> np.ndarray:
    """Interval score of central ``1 - alpha`` intervals [lower, upper] for outcomes ``y``.

    ``(upper - lower) + (2 / alpha) (lower - y) 1{y < lower} + (2 / alpha) (y - upper) 1{y > upper}``
    (Gneiting & Raftery 2007, eq. 43). Negatively oriented (lower is better), in the units of
    ``y``; for an outcome inside the interval it is the width. Arrays broadcast.
    """
    lower, upper, y = np.asarray(lower, float), np.asarray(upper, float), np.asarray(y, float)
    below = np.maximum(lower - y, 0.0)
    above = np.maximum(y - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


def crps(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of each point's predictive draws at its outcome; lower is better, units of ``y``.

    Parameters
    ----------
    draws : array, shape (n_draws, n_points)
        Draws of each point's predictive distribution.
    y : array, shape (n_points,)
        The outcomes.

    Returns
    -------
    array, shape (n_points,)
        ``E|X - y| - E|X - X'| / 2`` over the draws' empirical distribution, exactly (O(S log S)
        per point from the sorted draws; arviz-stats' ``loo_score`` with equal weights).
    """
    from arviz_stats.base import array_stats

    draws, y = _checked(draws, y)
    weights = np.zeros_like(draws.T)
    # arviz-stats returns -CRPS (its scores are maximised): negate to the usual orientation.
    return -array_stats.loo_score(draws.T, y, weights, kind="crps", chain_axis=None, draw_axis=-1)


def pit(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Probability integral transform: per point, the share of its draws below its outcome.

    ``draws`` (n_draws, n_points), ``y`` (n_points,); ties count one half. Values in [0, 1],
    uniform across points when each outcome comes from its predictive distribution.
    """
    from arviz_stats.base import array_stats

    draws, y = _checked(draws, y)
    weights = np.zeros_like(draws.T)
    return np.asarray(
        array_stats.loo_pit(draws.T, y, weights, chain_axis=None, draw_axis=-1), dtype=float
    )


def _checked(draws: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    draws, y = np.asarray(draws, float), np.atleast_1d(np.asarray(y, float))
    if draws.ndim != 2 or draws.shape[1] != y.shape[0] or y.ndim != 1:
        raise ValueError(
            f"draws of shape {draws.shape} and y of shape {y.shape}: expected (S, n), (n,)"
        )
    return draws, y


@dataclass(frozen=True)
class PitHistogram:
    """Counts of PIT values in equal bins of [0, 1], with what uniform values would give.

    ``edges`` (bins + 1,), ``counts`` (bins,); ``expected`` = n / bins; ``band`` the central
    ``prob`` interval of one bin's count under uniformity, Binomial(n, 1 / bins) (pointwise, for
    independent values: held-out runs predicted from one posterior are not, so read it as a
    guide). ``label`` says which runs (a backtest's cut).
    """

    edges: np.ndarray
    counts: np.ndarray
    expected: float
    band: tuple[float, float]
    prob: float
    label: str = ""

    @property
    def n(self) -> int:
        """How many PIT values were binned."""
        return int(self.counts.sum())


def pit_histogram(
    values: np.ndarray, *, bins: int | None = None, prob: float = 0.9, label: str = ""
) -> PitHistogram:
    """Bin PIT ``values`` in [0, 1]; ``bins`` default: about 5 values a bin, 4 to 10 bins."""
    from scipy import stats

    values = np.asarray(values, float).ravel()
    if values.size == 0 or np.any((values < 0) | (values > 1)):
        raise ValueError("expected PIT values in [0, 1], at least one")
    n = values.size
    bins = int(np.clip(n // 5, 4, 10)) if bins is None else int(bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(values, edges)
    low, high = stats.binom.ppf([(1 - prob) / 2, (1 + prob) / 2], n, 1.0 / bins)
    return PitHistogram(edges, counts, n / bins, (float(low), float(high)), prob, label)
