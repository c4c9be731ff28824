"""The common ways to fit a Chinchilla law, implemented as practitioners run them.

- :func:`huber_fit` / :func:`huber_bootstrap`: Hoffmann et al. 2022's recipe as Besiroglu et al.
  2024 (Epoch AI) re-ran it: Huber loss (delta 1e-3) on the residuals of log loss,
  ``log L = LSE(e, a - alpha log N, b - beta log D)``, L-BFGS-B from a grid of 4500 starts, the
  best kept; then 4000 bootstrap resamples of the runs, each refitted from the best start.
- :func:`curve_fit_fit`: scipy's ``curve_fit`` (least squares on log loss) with its covariance.

Both give 90 % intervals of parameters and predictive draws for new runs (:func:`predictive`),
so that they are scored on held-out runs like ``scalebayes.backtest``, by the same proper scores
(:func:`scores`: interval score and CRPS from ``scalebayes.scoring``, which needs no JAX).
Used by benchmarks/versus.py and tests/test_versus.py; numpy and scipy otherwise.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit, minimize

DELTA = 1e-3
# The summed Huber loss is ~1e-3 at the optimum, and L-BFGS-B's default stopping test
# (ftol 2.2e-9 relative to max(|f|, 1)) then stops refits near where they start: a bootstrap
# that never leaves the best start. Tolerances scaled to the objective make each refit converge.
LBFGS_OPTIONS = {"ftol": 1e-12, "gtol": 1e-9, "maxiter": 1000}
NAMES = ("e", "a", "b", "alpha", "beta")
# Besiroglu et al. 2024's initialisation grid: 5 x 6 x 6 x 5 x 5 = 4500 starts.
FULL_GRID = {
    "e": np.arange(-1.0, 1.01, 0.5),
    "a": np.arange(0.0, 26.0, 5.0),
    "b": np.arange(0.0, 26.0, 5.0),
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
}
# A coarse grid for quick runs and for curve_fit's starts: 3 x 3 x 3 x 2 x 2 = 108 starts.
SMALL_GRID = {
    "e": np.array([-1.0, 0.0, 1.0]),
    "a": np.array([0.0, 5.0, 10.0]),
    "b": np.array([0.0, 5.0, 10.0]),
    "alpha": np.array([0.5, 1.0]),
    "beta": np.array([0.5, 1.0]),
}


def grid(kind: str = "full") -> np.ndarray:
    """Initialisation grid as an array (starts, 5) in the order of :data:`NAMES`."""
    axes = {"full": FULL_GRID, "small": SMALL_GRID}[kind]
    return np.array(list(itertools.product(*(axes[n] for n in NAMES))))


def log_mean(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """``log(E + A/N^alpha + B/D^beta)`` as a log-sum-exp; ``theta`` is (..., 5)."""
    theta = np.asarray(theta, float)
    e, a, b, alpha, beta = (theta[..., i, None] for i in range(5))
    return np.logaddexp(np.logaddexp(e, a - alpha * log_n), b - beta * log_d)


def _terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray):
    e, a, b, alpha, beta = theta
    z = np.stack([np.full_like(log_n, e), a - alpha * log_n, b - beta * log_d])
    top = z.max(axis=0)
    w = np.exp(z - top)
    total = w.sum(axis=0)
    return top + np.log(total), w / total


def huber_objective(
    theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Sum of Huber losses of the log residuals, and its exact gradient."""
    lse, w = _terms(theta, log_n, log_d)
    r = lse - log_loss
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum()
    psi = np.clip(r, -delta, delta)
    grad = np.array(
        [
            psi @ w[0],
            psi @ w[1],
            psi @ w[2],
            -(psi * w[1]) @ log_n,
            -(psi * w[2]) @ log_d,
        ]
    )
    return float(value), grad


def _lbfgs(theta0, log_n, log_d, log_loss, delta) -> tuple[np.ndarray, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow at wild starts: discarded
        res = minimize(
            huber_objective,
            theta0,
            args=(log_n, log_d, log_loss, delta),
            jac=True,
            method="L-BFGS-B",
            options=LBFGS_OPTIONS,
        )
    return res.x, float(res.fun) if np.isfinite(res.fun) else np.inf


def huber_fit(
    n: np.ndarray,
    d: np.ndarray,
    loss: np.ndarray,
    starts: np.ndarray,
    delta: float = DELTA,
) -> np.ndarray:
    """L-BFGS-B of the Huber objective from every start; the best optimum, as (e, a, b, alpha, beta)."""
    log_n, log_d, log_loss = np.log(n), np.log(d), np.log(loss)
    best, best_value = None, np.inf
    for theta0 in starts:
        theta, value = _lbfgs(theta0, log_n, log_d, log_loss, delta)
        if value < best_value:
            best, best_value = theta, value
    return best


@dataclass(frozen=True)
class Bootstrap:
    """The best fit and the refits of bootstrap resamples of the runs.

    ``residuals[k]`` are the log residuals of refit ``k`` on its own resample: adding one of them to
    refit ``k``'s prediction turns the interval of the mean into one for a new run.
    """

    theta: np.ndarray  # (5,)
    draws: np.ndarray  # (n_boot, 5)
    residuals: np.ndarray  # (n_boot, n_runs)


def huber_bootstrap(
    n: np.ndarray,
    d: np.ndarray,
    loss: np.ndarray,
    *,
    starts: np.ndarray,
    n_boot: int = 4000,
    seed: int = 0,
    delta: float = DELTA,
) -> Bootstrap:
    """Best fit from the grid, then ``n_boot`` resamples refitted from the best start."""
    theta = huber_fit(n, d, loss, starts, delta)
    rng = np.random.default_rng(seed)
    log_n, log_d, log_loss = np.log(n), np.log(d), np.log(loss)
    draws = np.empty((n_boot, 5))
    residuals = np.empty((n_boot, len(n)))
    for k in range(n_boot):
        idx = rng.integers(0, len(n), len(n))
        draws[k], _ = _lbfgs(theta, log_n[idx], log_d[idx], log_loss[idx], delta)
        residuals[k] = log_loss[idx] - log_mean(draws[k], log_n[idx], log_d[idx])
    return Bootstrap(theta, draws, residuals)


@dataclass(frozen=True)
class CurveFit:
    """scipy ``curve_fit`` on log loss: estimate, covariance and residual standard deviation."""

    theta: np.ndarray
    cov: np.ndarray
    sigma: float


def _lse_model(x: np.ndarray, e, a, b, alpha, beta) -> np.ndarray:
    return log_mean(np.array([e, a, b, alpha, beta]), x[0], x[1])


def _lse_jac(x: np.ndarray, e, a, b, alpha, beta) -> np.ndarray:
    _, w = _terms(np.array([e, a, b, alpha, beta]), x[0], x[1])
    return np.stack([w[0], w[1], w[2], -w[1] * x[0], -w[2] * x[1]], axis=1)


def curve_fit_fit(n: np.ndarray, d: np.ndarray, loss: np.ndarray, starts: np.ndarray) -> CurveFit:
    """Least squares on log loss (Levenberg-Marquardt) from each start; keep the smallest SSE."""
    x = np.stack([np.log(n), np.log(d)])
    y = np.log(loss)
    best: CurveFit | None = None
    best_sse = np.inf
    for theta0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # OptimizeWarning (cov not estimable), overflow
                theta, cov = curve_fit(_lse_model, x, y, p0=theta0, jac=_lse_jac, maxfev=2000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((y - _lse_model(x, *theta)) ** 2))
        if np.isfinite(sse) and sse < best_sse:
            sigma = np.sqrt(sse / max(len(y) - 5, 1))
            best, best_sse = CurveFit(theta, cov, sigma), sse
    if best is None:
        raise RuntimeError("curve_fit failed from every start")
    return best


def curve_fit_draws(cf: CurveFit, n_draws: int, seed: int = 0) -> np.ndarray:
    """Parameter draws from the Gaussian N(theta, cov) that ``curve_fit`` reports."""
    rng = np.random.default_rng(seed)
    if not np.all(np.isfinite(cf.cov)):
        return np.full((n_draws, 5), np.nan)
    return rng.multivariate_normal(cf.theta, cf.cov, size=n_draws, method="eigh")


def predictive(
    method: Bootstrap | CurveFit,
    n: np.ndarray,
    d: np.ndarray,
    *,
    n_draws: int = 4000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Point prediction (log loss) and predictive draws (draws, runs) for new runs at (n, d).

    Bootstrap: refit ``k``'s mean plus one residual drawn from refit ``k``'s own residuals.
    curve_fit: a parameter draw from its Gaussian plus Normal(0, residual sd) noise.
    """
    rng = np.random.default_rng(seed + 1)
    log_n, log_d = np.log(n), np.log(d)
    point = log_mean(method.theta, log_n, log_d)
    if isinstance(method, Bootstrap):
        mean = log_mean(method.draws, log_n, log_d)
        pick = rng.integers(0, method.residuals.shape[1], mean.shape)
        noise = np.take_along_axis(method.residuals, pick, axis=1)
    else:
        mean = log_mean(curve_fit_draws(method, n_draws, seed), log_n, log_d)
        noise = rng.normal(0.0, method.sigma, mean.shape)
    return point, mean + noise


def param_intervals(method: Bootstrap | CurveFit, prob: float = 0.9) -> dict[str, list[float]]:
    """Point estimate and central interval of E, A, B, alpha, beta (exp of e, a, b)."""
    tail = (1 - prob) / 2
    if isinstance(method, Bootstrap):
        lo, hi = np.quantile(method.draws, [tail, 1 - tail], axis=0)
    else:  # delta method: the Gaussian's quantiles, then exp() for E, A, B
        from scipy.stats import norm

        sd = np.sqrt(np.diag(method.cov)) if np.all(np.isfinite(method.cov)) else np.full(5, np.nan)
        z = norm.ppf(1 - tail)
        lo, hi = method.theta - z * sd, method.theta + z * sd
    out = {}
    for i, label in enumerate(("E", "A", "B", "alpha", "beta")):
        values = [method.theta[i], lo[i], hi[i]]
        out[label] = [float(np.exp(v)) if i < 3 else float(v) for v in values]
    return out


def scores(point: np.ndarray, draws: np.ndarray, observed_log_loss: np.ndarray) -> dict[str, float]:
    """The backtest's scores of a point prediction and predictive draws (log loss).

    As ``scalebayes.holdout.pool``'s, proper scores first: mean 90 % interval score and mean
    CRPS of the draws (lower is better). No log predictive density: the draws have no density.
    """
    from scalebayes.scoring import crps, interval_score

    lo90, hi90 = np.quantile(draws, [0.05, 0.95], axis=0)
    lo50, hi50 = np.quantile(draws, [0.25, 0.75], axis=0)
    y = observed_log_loss
    error = y - point
    return {
        "interval_score_90": float(np.mean(interval_score(lo90, hi90, y, 0.1))),
        "crps": float(np.mean(crps(draws, y))),
        "coverage_90": float(np.mean((y >= lo90) & (y <= hi90))),
        "coverage_50": float(np.mean((y >= lo50) & (y <= hi50))),
        "width_90": float(np.median(hi90 - lo90)),
        "bias": float(np.mean(error)),
        "median_abs_error": float(np.median(np.abs(error))),
        "mean_abs_error": float(np.mean(np.abs(error))),
    }
