"""Compute-optimal allocation per posterior draw: N*, D*, L* for each training budget.

For any law whose inputs include N and D and a cost model ``C = k N D``, the loss at budget
C is a function of one variable, ``log N``; every draw and budget is minimised at once by a
vectorised golden-section search over a wide bracket of tokens per parameter, polished by
Newton steps on ``jax.grad`` of the law's log mean. Closed forms (Chinchilla's) are test
oracles only. Draws whose optimum sits at the bracket's edge are counted and warned about,
never dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from scalebayes.errors import AllocationWarning, ExtrapolationWarning, LawError, ScalebayesError
from scalebayes.runtime import in_fit_precision, padded_size
from scalebayes.summaries import per_draw, summarise

if TYPE_CHECKING:
    from scalebayes.laws import Law
    from scalebayes.likelihood import Likelihood
    from scalebayes.results import Fit

# Search bracket on D/N. Chinchilla-type laws put the optimum at 1-1000 tokens per parameter;
# the bracket is orders of magnitude wider so that only a law without an interior optimum hits it.
TOKENS_PER_PARAM_BOUNDS = (1e-4, 1e6)
# Golden section shrinks the bracket (width 11.5 in log N) to 4e-5, then Newton converges
# quadratically (4e-5 -> ~1e-9 -> ~1e-16; the third step measures convergence).
_GOLDEN_STEPS = 26
_NEWTON_STEPS = 3
# A draw has converged when its last Newton step in log N is below this (N to 1e-9 relative).
# In float32 (eps 1.2e-7) Newton's last step stalls near 1e-6: 1e-4 (N to 0.01 %) there.
_STEP_TOL = {"float64": 1e-9, "float32": 1e-4}

QUANTITIES = ("N", "D", "loss", "tokens_per_param", "exponent_N", "exponent_D")


@dataclass(frozen=True)
class Allocation:
    """Compute-optimal runs for each budget, one per posterior draw.

    Every array has dims (chain, draw, budget).

    Attributes
    ----------
    N, D : DataArray
        Optimal parameters and training tokens.
    loss : DataArray
        Loss at (N*, D*) of the model decisions use (the law, without the GP discrepancy's
        mean: see :meth:`Fit.law_module`), nats/token: the best the budget buys. It never
        rises with the budget.
    tokens_per_param : DataArray
        D* / N*.
    exponent_N, exponent_D : DataArray
        Allocation exponents ``d log N* / d log C`` and ``d log D* / d log C`` (they sum to 1),
        from the implicit-function theorem at the optimum.
    budgets : ndarray
        Training compute of each budget, FLOPs.
    cost_k : float
        FLOPs per parameter per token in ``C = k N D``.
    at_bound : DataArray of bool
        Draws whose optimum sits at the search bound (the law has no interior optimum there).
    converged : DataArray of bool
        Draws whose last Newton step was below tolerance.
    """

    N: xr.DataArray
    D: xr.DataArray
    loss: xr.DataArray
    tokens_per_param: xr.DataArray
    exponent_N: xr.DataArray
    exponent_D: xr.DataArray
    budgets: np.ndarray
    cost_k: float
    at_bound: xr.DataArray
    converged: xr.DataArray

    @property
    def n_at_bound(self) -> int:
        """Draw-budget pairs whose optimum sits at the search bound."""
        return int(self.at_bound.sum())

    @property
    def n_not_converged(self) -> int:
        """Draw-budget pairs, away from the bound, whose optimum did not converge."""
        return int((~self.converged & ~self.at_bound).sum())

    def at(self, budgets: ArrayLike) -> Allocation:
        """The allocation at some of its own :attr:`budgets` (in the order given)."""
        budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
        arrays = {
            name: getattr(self, name).sel(budget=budgets)
            for name in (*QUANTITIES, "at_bound", "converged")
        }
        return dataclasses.replace(self, budgets=budgets, **arrays)

    def to_dataset(self) -> xr.Dataset:
        """All per-draw quantities as one Dataset, dims (chain, draw, budget)."""
        return xr.Dataset(
            {name: getattr(self, name) for name in (*QUANTITIES, "at_bound", "converged")}
        )

    def summary(self, probs: Sequence[float] = (0.5, 0.9), kind: str = "eti") -> pd.DataFrame:
        """Tidy table: one row per (budget, quantity) with median and intervals.

        Columns ``budget`` (FLOPs), ``quantity`` (N, D, loss, tokens_per_param, exponent_N,
        exponent_D), ``median`` and ``{kind}{percent}_lb`` / ``_ub``.
        """
        tables = []
        for name in QUANTITIES:
            table = summarise(getattr(self, name), probs=probs, kind=kind).reset_index(drop=True)
            table.insert(0, "quantity", name)
            table.insert(0, "budget", self.budgets)
            tables.append(table)
        out = pd.concat(tables, ignore_index=True).sort_values(["budget"], kind="stable")
        out = out.reset_index(drop=True)
        out.attrs.update(probs=tuple(probs), kind=kind, n_at_bound=self.n_at_bound)
        return out

    def __str__(self) -> str:
        return (
            f"compute-optimal allocation (C = {self.cost_k:g} N D):\n{self.summary().to_string()}"
        )


@in_fit_precision
def optimal(
    fit: Fit,
    budgets: ArrayLike,
    *,
    cost_k: float | None = None,
    tokens_per_param_bounds: tuple[float, float] = TOKENS_PER_PARAM_BOUNDS,
) -> Allocation:
    """Compute-optimal N*, D*, L* for each budget under every posterior draw.

    Parameters
    ----------
    fit : Fit
        A posterior of a law whose inputs include N and D (C too is allowed). To average
        several laws, see :func:`scalebayes.averaging.optimal_mixture`.
    budgets : array-like of float
        Training compute, FLOPs; scalar or 1-D.
    cost_k : float, optional
        FLOPs per parameter per token (``C = k N D``); default the fit's ``runs.cost_k`` (6).
    tokens_per_param_bounds : (float, float)
        The search bracket on D/N. Optima at its edge are counted in ``n_at_bound`` and warned
        about.

    Returns
    -------
    Allocation
        Per-draw N*, D*, L*, D*/N* and allocation exponents, dims (chain, draw, budget).

    Raises
    ------
    LawError
        If the law does not take both N and D.
    ScalebayesError
        If a budget or ``cost_k`` is not a positive finite number.
    """
    k = fit.runs.cost_k if cost_k is None else cost_k
    budgets = checked_budgets(budgets)
    if not (np.isfinite(k) and k > 0):
        raise ScalebayesError(
            f"cost_k={k!r}: expected a positive number of FLOPs per parameter per token"
        )
    require_n_and_d(fit.law)
    low, high = tokens_per_param_bounds
    if not 0 < low < high < np.inf:
        raise ScalebayesError(
            f"tokens_per_param_bounds={tokens_per_param_bounds!r}: expected 0 < low < high"
        )

    posterior = fit.posterior
    params = {name: posterior[name].to_numpy().reshape(-1, 1) for name in fit.param_names}
    theta = (params, fit.log_ref)
    log_c = np.log(budgets)[None, :]
    # The model decisions search (the GP left out: Fit.law_module says why), and its loss at
    # the optimum: the GP's mean beyond the data, reverting to zero, bent L*(C) upwards past
    # the runs (Epoch's: from ~1e25 FLOPs), which no budget can buy.
    decided = fit.likelihood.for_decisions()
    size = padded_size(len(budgets), 8)
    padded = np.pad(log_c, ((0, 0), (0, size - len(budgets))), mode="edge")
    solved = _solver(fit.law, decided)(theta, padded, np.log(k), np.log(low), np.log(high))
    x, log_loss, step, exponent, at_bound = (np.asarray(a)[:, : len(budgets)] for a in solved)

    def as_array(values: np.ndarray, name: str, units: str = "") -> xr.DataArray:
        return per_draw(values, posterior, dim="budget", coord=budgets, name=name, units=units)

    n_opt = np.exp(x)
    d_opt = budgets[None, :] / (k * n_opt)
    result = Allocation(
        N=as_array(n_opt, "N", "parameters"),
        D=as_array(d_opt, "D", "tokens"),
        loss=as_array(np.exp(log_loss), "loss", "nats/token"),
        tokens_per_param=as_array(d_opt / n_opt, "tokens_per_param"),
        exponent_N=as_array(exponent, "exponent_N"),
        exponent_D=as_array(1.0 - exponent, "exponent_D"),
        budgets=budgets,
        cost_k=float(k),
        at_bound=as_array(at_bound, "at_bound"),
        converged=as_array(np.abs(step) < _STEP_TOL[fit.settings.precision], "converged"),
    )
    _warn(result, tokens_per_param_bounds)
    warn_far_beyond(fit, budgets, "budget")
    return result


# Budgets more than this many times the largest fitted run's compute are warned about.
FAR_BEYOND = 100.0


def warn_far_beyond(fit: Fit, compute: ArrayLike, what: str) -> None:
    """An :class:`ExtrapolationWarning` when some ``compute`` (FLOPs) is far beyond the fitted runs'."""
    compute = np.atleast_1d(np.asarray(compute, dtype=float))
    largest = float(fit.runs.C.max())
    far = compute[compute > FAR_BEYOND * largest]
    if far.size:
        worst = float(far.max())
        warnings.warn(
            f"{far.size} {what}{'s' if far.size > 1 else ''} beyond {FAR_BEYOND:g}x the largest "
            f"fitted run's compute ({largest:.3g} FLOPs), up to {worst:.3g} ({worst / largest:.2g}x): "
            "there the answer is the law's shape carried past the data, untested",
            ExtrapolationWarning,
            stacklevel=3,
        )


@in_fit_precision
def whole_model_loss(fit: Fit, allocation: Allocation) -> xr.DataArray | None:
    """Loss at each draw's (N*, D*) under the fit's whole model, discrepancy term included.

    ``allocation.loss`` is the law's, as decisions use it; with the GP discrepancy this adds the
    GP's term, whose mean beyond the runs reverts to zero and whose spread is the honest
    uncertainty there. None when the decisions' model is the whole model. Dims (chain, draw,
    budget), nats/token; unlike L*(C) it may rise with the budget.
    """
    if fit.likelihood.for_decisions() == fit.likelihood:
        return None
    posterior = fit.posterior
    params = {name: posterior[name].to_numpy().reshape(-1, 1) for name in fit.param_names}
    log_n = np.log(allocation.N.to_numpy()).reshape(len(params[fit.param_names[0]]), -1)
    log_c, log_k = np.log(allocation.budgets)[None, :], np.log(allocation.cost_k)
    log_mean = np.asarray(fit.log_mean(params, budget_inputs(fit.law, log_n, log_c, log_k)))
    return per_draw(
        np.exp(log_mean), posterior, dim="budget", coord=allocation.budgets, name="loss",
        units="nats/token",
    )  # fmt: skip


def extrapolation_of(fit: Fit, allocation: Allocation) -> tuple[np.ndarray, list[str]]:
    """How far each budget's median N*, D* and C lie beyond the fitted runs (as ``predict`` says)."""
    from scalebayes.prediction import extrapolation, fitted_range

    points = pd.DataFrame(
        {
            "N": allocation.N.median(("chain", "draw")).to_numpy(),
            "D": allocation.D.median(("chain", "draw")).to_numpy(),
            "C": allocation.budgets,
        }
    )
    return extrapolation(points, fitted_range(fit))


def require_n_and_d(law: Law) -> None:
    """Raise :class:`LawError` unless the law takes both N and D (allocation trades one for the other)."""
    if not {"N", "D"} <= set(law.inputs):
        raise LawError(
            f"law {law.name!r} takes {', '.join(law.inputs)}; compute-optimal allocation needs a "
            "law of both N (parameters) and D (tokens), e.g. chinchilla"
        )
    other = [name for name in law.inputs if name not in ("N", "D", "C")]
    if other:
        raise LawError(
            f"law {law.name!r} also takes {', '.join(other)}; compute-optimal allocation trades "
            "N against D alone (C = k N D), so it supports laws of N, D and C only"
        )


def checked_budgets(budgets: ArrayLike) -> np.ndarray:
    """``budgets`` as a 1-D array of positive finite FLOP counts, or a :class:`ScalebayesError`."""
    try:
        values = np.atleast_1d(np.asarray(budgets, dtype=float))
    except (TypeError, ValueError):
        raise ScalebayesError(f"budgets={budgets!r}: expected positive FLOP counts") from None
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
        raise ScalebayesError(
            f"budgets={budgets!r}: expected one or more positive finite FLOP counts, e.g. 5.76e23"
        )
    return values


def _warn(result: Allocation, bounds: tuple[float, float]) -> None:
    total = result.N.size
    if result.n_at_bound:
        warnings.warn(
            f"{result.n_at_bound} of {total} draw-budget pairs have their optimum at the search "
            f"bound (tokens per parameter {bounds[0]:g} or {bounds[1]:g}): the law has no interior "
            "optimum there; they are kept, at the bound",
            AllocationWarning,
            stacklevel=3,
        )
    if result.n_not_converged:
        warnings.warn(
            f"{result.n_not_converged} of {total} draw-budget pairs did not converge "
            "(their last Newton step in log N was above the tolerance); they are kept",
            AllocationWarning,
            stacklevel=3,
        )


def budget_inputs(law: Law, log_n: Any, log_c: Any, log_k: Any) -> dict[str, Any]:
    """The law's log inputs for models of log size ``log_n`` spending log budget ``log_c``.

    The rest of the budget buys tokens: ``log D = log C - log k - log N``; arrays broadcast.
    """
    log_inputs = {"N": log_n, "D": log_c - log_k - log_n}
    if "C" in law.inputs:
        log_inputs["C"] = log_c + 0.0 * log_n
    return log_inputs


@functools.lru_cache(maxsize=32)
def _solver(law: Law, likelihood: Likelihood) -> Any:
    """A jitted minimiser of the model's loss over log N, for arrays of draws x budgets.

    ``theta`` is ``(params, log_ref)``: parameter draws and the fitted runs' centre.
    """
    import jax
    import jax.numpy as jnp

    def f(x: Any, c: Any, theta: Any, log_k: Any) -> Any:
        params, log_ref = theta
        return likelihood.log_mean(law, params, budget_inputs(law, x, c, log_k), log_ref)

    # Each element depends only on its own x and c, so the gradient of the sum is elementwise.
    def total(x: Any, c: Any, theta: Any, log_k: Any) -> Any:
        return jnp.sum(f(x, c, theta, log_k))

    grad = jax.grad(total)

    def slope(x: Any, c: Any, theta: Any, log_k: Any, wrt: str) -> Any:
        """(d f / d x, d2 f / d x d wrt) elementwise, by forward-over-reverse differentiation."""
        ones = jnp.ones_like(x)
        if wrt == "x":
            return jax.jvp(lambda x_: grad(x_, c, theta, log_k), (x,), (ones,))
        return jax.jvp(lambda c_: grad(x, c_, theta, log_k), (c,), (ones,))

    @jax.jit
    def solve(theta: Any, log_c: Any, log_k: Any, log_r_low: Any, log_r_high: Any) -> Any:
        shape = jnp.broadcast_shapes(log_c.shape, *(v.shape for v in theta[0].values()))
        c = jnp.broadcast_to(log_c, shape)
        # N = sqrt(C / (k r)) for tokens per parameter r: the bracket on r is one on log N.
        lo = 0.5 * (c - log_k - log_r_high)
        hi = 0.5 * (c - log_k - log_r_low)
        inv_phi = (jnp.sqrt(5.0) - 1.0) / 2.0

        def golden(_: int, state: Any) -> Any:
            a, b, x1, x2, f1, f2 = state
            left = f1 < f2  # the minimum lies in [a, x2]
            a = jnp.where(left, a, x1)
            b = jnp.where(left, x2, b)
            new = jnp.where(left, b - inv_phi * (b - a), a + inv_phi * (b - a))
            f_new = f(new, c, theta, log_k)
            x1, x2, f1, f2 = (
                jnp.where(left, new, x2),
                jnp.where(left, x1, new),
                jnp.where(left, f_new, f2),
                jnp.where(left, f1, f_new),
            )
            return a, b, x1, x2, f1, f2

        x1 = hi - inv_phi * (hi - lo)
        x2 = lo + inv_phi * (hi - lo)
        state = (lo, hi, x1, x2, f(x1, c, theta, log_k), f(x2, c, theta, log_k))
        a, b, *_ = jax.lax.fori_loop(0, _GOLDEN_STEPS, golden, state)
        x = 0.5 * (a + b)

        def newton(_: int, carry: Any) -> Any:
            x, _step = carry
            g, h = slope(x, c, theta, log_k, "x")
            step = jnp.where(h > 0, -g / h, 0.0)
            new = jnp.clip(x + step, lo, hi)
            return new, new - x

        x, step = jax.lax.fori_loop(0, _NEWTON_STEPS, newton, (x, jnp.full(shape, jnp.inf)))
        # d log N* / d log C from g(x*(c), c) = 0: dx/dc = -g_xc / g_xx.
        _, h_xx = slope(x, c, theta, log_k, "x")
        _, h_xc = slope(x, c, theta, log_k, "c")
        exponent = -h_xc / h_xx
        edge = 1e-6 * (hi - lo)
        at_bound = (x - lo < edge) | (hi - x < edge)
        return x, f(x, c, theta, log_k), step, exponent, at_bound

    return solve
