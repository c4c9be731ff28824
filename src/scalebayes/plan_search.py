"""The search behind :func:`scalebayes.plan`: the least-cost run that reaches a target, in NumPy.

Minimise log cost ``x + log(k e^y + 2T)`` over ``x = log N``, where ``y(x)`` is the least
``log D`` whose margin (the chance of reaching the target less the required probability, or per
draw the target less the law's log loss) is >= 0. ``x`` is searched on a coarse grid, then by
golden section between the best point's neighbours; ``y(x)`` by SciPy's bracketing root finder
(Chandrupatla's, elementwise) on the margin, which rises with ``y``. Every step is one NumPy
operation over all grid points and draws at once: a one-off search, which as a JAX program spent
seconds compiling for milliseconds of arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from scalebayes.golden import golden_section

# Search box: wide enough for any run anyone trains, so hitting it means "unreachable".
N_BOUNDS = (1e4, 1e16)
D_BOUNDS = (1e4, 1e19)
_GRID = 12  # coarse grid over log N (and log D): spacing 2.5 (3.1)
_GOLDEN_STEPS = 26  # then golden section between grid neighbours: width 5 shrinks to 2e-5
_Y_TOLERANCE = 5e-10  # least log D that suffices, to within this (bisection's 34.5 / 2**36)
_X = (np.log(N_BOUNDS[0]), np.log(N_BOUNDS[1]))
_Y = (np.log(D_BOUNDS[0]), np.log(D_BOUNDS[1]))

Theta = tuple[Mapping[str, np.ndarray], Mapping[str, Any]]  # (flat parameter draws, log_ref)
Margin = Callable[..., np.ndarray]  # margin(x, y, *per_draw_values)


def pooled(
    law: Any,
    likelihood: Any,
    kind: str,
    theta: Theta,
    log_target: float,
    log_k: float,
    log_2t: float,
    prob: float,
    fixed: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one run (log N, log D) of least cost whose chance over all draws is >= ``prob``.

    ``kind`` "new_run" counts the fitted noise (its CDF at the target), "mean" the law alone;
    ``fixed`` the logs of inputs held as given (``{"U": log unique tokens}``). Returns scalars
    ``x``, ``y`` and whether the target is reachable in the search box.
    """
    params, log_ref = theta
    sigma, nu = params["sigma"], params.get("nu")

    def margin(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        mu = _log_mean(law, likelihood, params, log_ref, x[..., None], y[..., None], log_k, fixed)
        if kind == "mean":
            # >= 0 exactly where a share >= prob of the draws reach the target, as the share
            # less prob is, but continuous in y: the root finder needs no plateau at 0.
            return log_target - np.quantile(mu, prob, axis=-1, method="inverted_cdf")
        return np.mean(likelihood.noise_cdf(log_target - mu, sigma, nu), axis=-1) - prob

    return _minimise(margin, (), likelihood, (), log_k, log_2t)


def per_draw(
    law: Any,
    likelihood: Any,
    theta: Theta,
    log_target: float,
    log_k: float,
    log_2t: float,
    fixed: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each draw, the run of least cost whose law (no noise) reaches the target: (draws,)."""
    params, log_ref = theta
    names = tuple(params)

    def margin(x: np.ndarray, y: np.ndarray, *values: np.ndarray) -> np.ndarray:
        draws = dict(zip(names, values, strict=True))
        return log_target - _log_mean(law, likelihood, draws, log_ref, x, y, log_k, fixed)

    values = tuple(np.asarray(params[name]) for name in names)
    return _minimise(margin, values, likelihood, np.shape(params["sigma"]), log_k, log_2t)


def _log_mean(
    law: Any,
    likelihood: Any,
    params: Mapping[str, Any],
    log_ref: Mapping[str, Any],
    x: Any,
    y: Any,
    log_k: float,
    fixed: Mapping[str, float] | None = None,
) -> np.ndarray:
    log_inputs = {"N": x, "D": y}
    if "C" in law.inputs:
        log_inputs["C"] = log_k + x + y
    for name, value in (fixed or {}).items():
        log_inputs[name] = value + 0.0 * x
    return likelihood.numpy_log_mean(law, params, log_inputs, log_ref)


def _minimise(
    margin: Margin,
    values: tuple[np.ndarray, ...],
    likelihood: Any,
    shape: tuple[int, ...],
    log_k: float,
    log_2t: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min over x of x + log(k e^y(x) + 2T), y(x) the least y with margin(x, y) >= 0.

    ``values`` are arrays of ``shape`` that ``margin`` takes after x and y (a draw's parameters
    when each element is one draw), so that the root finder can hand it the elements it needs.
    """

    def needed(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A law's loss falls as D grows, but a discrepancy term bends it up again far from
        # the data: then find the D with the best margin first, and search below it.
        if not likelihood.discrepancy.term_can_rise:
            y_best = np.full(np.shape(x), _Y[1])
        else:
            y_best = _argmin(lambda y: -margin(x, y, *values), *_Y, np.shape(x))
        return _least(margin, x, y_best, values)

    def cost(x: np.ndarray) -> np.ndarray:
        y, feasible = needed(x)
        return np.where(feasible, x + np.logaddexp(log_k + y, log_2t), np.inf)

    x = _argmin(cost, *_X, shape)
    y, feasible = needed(x)
    return x, y, feasible


def _least(
    margin: Margin, x: np.ndarray, y_hi: np.ndarray, values: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The least y in [log 1e4, y_hi] with ``margin(x, y, *values) >= 0``, and whether there is one.

    Where even ``y_hi`` falls short, ``y_hi``; where the lower end already suffices, that end.
    """
    from scipy.optimize.elementwise import find_root

    lo = np.full(np.shape(x), _Y[0])
    found = find_root(
        lambda y, x, *values: margin(x, y, *values),
        (lo, np.broadcast_to(y_hi, lo.shape)),
        args=(x, *values),
        tolerances={"xatol": _Y_TOLERANCE, "xrtol": 0.0},
    )
    feasible = found.f_bracket[1] >= 0  # the upper end's margin: y_hi's, if not bracketed
    root = np.where(found.f_x >= 0, found.x, found.bracket[1])
    no_sign_change = found.status == -1
    y = np.where(no_sign_change, np.where(feasible, lo, y_hi), root)
    return y, feasible


def _argmin(
    fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, shape: tuple[int, ...]
) -> np.ndarray:
    """Minimiser of ``fn`` on [lo, hi], elementwise over ``shape``.

    The best point of a coarse grid (all evaluated at once, on a leading axis), then
    golden-section search between its neighbours. The grid makes the search robust to a
    function that is +inf (infeasible) at both ends of the range, or bends up again far from
    the data (a discrepancy term); ties move right.
    """
    points = np.linspace(lo, hi, _GRID)
    values = fn(np.broadcast_to(points.reshape(-1, *[1] * len(shape)), (_GRID, *shape)))
    best = np.argmin(values, axis=0)
    step = points[1] - points[0]
    a = np.clip(points[best] - step, lo, hi)
    b = np.clip(points[best] + step, lo, hi)
    middle = golden_section(fn, a, b, _GOLDEN_STEPS)
    # Keep the grid point if the refined one is worse (e.g. +inf beside a feasible point).
    return np.where(fn(middle) <= np.min(values, axis=0), middle, points[best])
