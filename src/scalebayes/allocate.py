"""Compute-optimal allocation per posterior draw: N*, D*, L* for each training budget.

For any law whose inputs include N and D and a cost model ``C = k N D``, the loss at budget
C is a function of one variable, ``log N``; every draw and budget is minimised at once by a
vectorised golden-section search over a wide bracket of tokens per parameter, polished by
Newton steps on the law's log mean's derivatives, in NumPy (:mod:`scalebayes.allocate_search`). Closed forms (Chinchilla's) are test
oracles only. Draws whose optimum sits at the bracket's edge are counted and warned about,
never dropped.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from scalebayes.allocate_search import budget_inputs, solve
from scalebayes.errors import AllocationWarning, ExtrapolationWarning, LawError, ScalebayesError
from scalebayes.summaries import per_draw, summarise

if TYPE_CHECKING:
    from scalebayes.laws import Law
    from scalebayes.results import Fit

# Search bracket on D/N. Chinchilla-type laws put the optimum at 1-1000 tokens per parameter;
# the bracket is orders of magnitude wider so that only a law without an interior optimum hits it.
TOKENS_PER_PARAM_BOUNDS = (1e-4, 1e6)
# A draw has converged when its last Newton step in log N is below this (N to 1e-9 relative;
# a refused step, at a kink of the law, counts: the golden section holds log N to 4e-5 there).
# In float32 (eps 1.2e-7) Newton's last step stalls near 1e-6: 1e-4 (N to 0.01 %) there.
_STEP_TOL = {"float64": 1e-9, "float32": 1e-4}

QUANTITIES = ("N", "D", "loss", "tokens_per_param", "exponent_N", "exponent_D")
# An optimum is located at a budget when at most this share of its draws sits at the search's
# bound: a 90 % interval (5 % in each tail) is then the posterior's, not the search's.
MAX_AT_BOUND = 0.05


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
    unique_tokens : float or None
        The unique tokens U the law was given (laws of repeated data), else None.
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
    # Unique tokens available (U, for laws of repeated data), held fixed while N and D trade.
    unique_tokens: float | None = None

    @property
    def fixed_log_inputs(self) -> dict[str, float]:
        """The law's inputs the budget does not buy, as logs: ``{"U": log U}`` or empty."""
        return {} if self.unique_tokens is None else {"U": float(np.log(self.unique_tokens))}

    @property
    def n_at_bound(self) -> int:
        """Draw-budget pairs whose optimum sits at the search bound."""
        return int(self.at_bound.sum())

    def share_at_bound(self) -> np.ndarray:
        """Per budget, the share of draws whose optimum sits at the search bound."""
        return np.asarray(self.at_bound.mean(("chain", "draw")), dtype=float)

    def located(self) -> np.ndarray:
        """Per budget, whether the optimum is located (:data:`MAX_AT_BOUND`)."""
        return self.share_at_bound() <= MAX_AT_BOUND

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
        return f"compute-optimal allocation ({self.assumptions}):\n{self.summary().to_string()}"

    @property
    def assumptions(self) -> str:
        """The cost model, and the unique tokens if given: ``"C = 6 N D, U = 1e+11"``."""
        unique = "" if self.unique_tokens is None else f", U = {self.unique_tokens:.3g}"
        return f"C = {self.cost_k:g} N D{unique}"


def optimal(
    fit: Fit,
    budgets: ArrayLike,
    *,
    cost_k: float | None = None,
    tokens_per_param_bounds: tuple[float, float] = TOKENS_PER_PARAM_BOUNDS,
    unique_tokens: float | None = None,
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
    unique_tokens : float, optional
        For a law of repeated data (one that reads U, e.g. ``data_constrained``): the unique
        tokens available, held fixed while the budget trades N against D (D beyond U repeats
        data). Required by such a law, refused by others.

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
    fixed = fixed_inputs(fit.law, unique_tokens)
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
    solved = solve(fit.law, decided, theta, log_c, np.log(k), np.log(low), np.log(high), fixed)
    x, log_loss, step, exponent, at_bound = solved

    converged = np.abs(step) < _STEP_TOL[fit.settings.precision]
    result = Allocation(
        **per_draw_fields(posterior, budgets, k, x, log_loss, exponent, at_bound, converged),
        budgets=budgets,
        cost_k=float(k),
        unique_tokens=None if unique_tokens is None else float(unique_tokens),
    )
    _warn(result, tokens_per_param_bounds)
    warn_far_beyond(fit, budgets, "budget")
    return result


def per_draw_fields(
    posterior: xr.Dataset,
    budgets: np.ndarray,
    cost_k: float,
    log_n: np.ndarray,
    log_loss: np.ndarray,
    exponent: np.ndarray,
    at_bound: np.ndarray,
    converged: np.ndarray,
) -> dict[str, xr.DataArray]:
    """An :class:`Allocation`'s per-draw fields from arrays of shape (chain * draw, budget).

    ``log_n``: log N*; ``log_loss``: log L*; ``exponent``: d log N* / d log C. D* is
    ``budgets / (cost_k N*)``; each field becomes a DataArray with dims (chain, draw, budget).
    """

    def as_array(values: np.ndarray, name: str, units: str = "") -> xr.DataArray:
        return per_draw(values, posterior, dim="budget", coord=budgets, name=name, units=units)

    n_opt = np.exp(log_n)
    d_opt = budgets[None, :] / (cost_k * n_opt)
    return {
        "N": as_array(n_opt, "N", "parameters"),
        "D": as_array(d_opt, "D", "tokens"),
        "loss": as_array(np.exp(log_loss), "loss", "nats/token"),
        "tokens_per_param": as_array(d_opt / n_opt, "tokens_per_param"),
        "exponent_N": as_array(exponent, "exponent_N"),
        "exponent_D": as_array(1.0 - exponent, "exponent_D"),
        "at_bound": as_array(at_bound, "at_bound"),
        "converged": as_array(converged, "converged"),
    }


# Budgets more than this many times the largest fitted run's compute are warned about.
FAR_BEYOND = 100.0


def warn_far_beyond(
    fit: Fit, compute: ArrayLike, what: str, carried: str = "the law's shape"
) -> None:
    """An :class:`ExtrapolationWarning` when some ``compute`` (FLOPs) is far beyond the fitted runs'.

    ``carried``: what the answer there rests on, in words.
    """
    compute = np.atleast_1d(np.asarray(compute, dtype=float))
    largest = float(fit.runs.C.max())
    far = compute[compute > FAR_BEYOND * largest]
    if far.size:
        worst = float(far.max())
        warnings.warn(
            f"{far.size} {what}{'s' if far.size > 1 else ''} beyond {FAR_BEYOND:g}x the largest "
            f"fitted run's compute ({largest:.3g} FLOPs), up to {worst:.3g} ({worst / largest:.2g}x): "
            f"there the answer is {carried} carried past the data, untested",
            ExtrapolationWarning,
            stacklevel=3,
        )


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
    inputs = budget_inputs(fit.law, log_n, log_c, log_k, allocation.fixed_log_inputs)
    log_mean = np.asarray(fit.log_mean(params, inputs))
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


def require_n_and_d(law: Law, given: Sequence[str] = ()) -> None:
    """Raise :class:`LawError` unless the law takes both N and D (allocation trades one for the other).

    Inputs other than N, D and C must be among ``given`` (held fixed, e.g. U).
    """
    if not {"N", "D"} <= set(law.inputs):
        raise LawError(
            f"law {law.name!r} takes {', '.join(law.inputs)}; compute-optimal allocation needs a "
            "law of both N (parameters) and D (tokens), e.g. chinchilla"
        )
    other = [name for name in law.inputs if name not in ("N", "D", "C", *given)]
    if other == ["U"]:
        raise LawError(
            f"law {law.name!r} reads U, the unique tokens: its compute-optimal allocation needs "
            "how many there are to train on (sb.optimal(..., unique_tokens=U), scalebayes "
            "optimal --unique-tokens U); D beyond U repeats them"
        )
    if other:
        raise LawError(
            f"law {law.name!r} also takes {', '.join(other)}; compute-optimal allocation trades "
            "N against D alone (C = k N D), so it supports laws of N, D and C (and U) only"
        )


def allocates_alone(law: Law) -> bool:
    """Whether a budget alone sets the law's allocation: a law of N and D (and maybe C), no U."""
    return {"N", "D"} <= set(law.inputs) <= {"N", "D", "C"}


def fixed_inputs(law: Law, unique_tokens: float | None) -> dict[str, float]:
    """The law's inputs held fixed while N and D trade, as logs; checks the law can allocate."""
    if unique_tokens is None:
        require_n_and_d(law)
        return {}
    if "U" not in law.inputs:
        raise LawError(
            f"unique_tokens={unique_tokens!r}: law {law.name!r} does not read U; unique tokens "
            "matter to a law of repeated data, such as data_constrained"
        )
    if not (np.isfinite(unique_tokens) and unique_tokens > 0):
        raise ScalebayesError(f"unique_tokens={unique_tokens!r}: expected a positive number")
    require_n_and_d(law, given=("U",))
    return {"U": float(np.log(unique_tokens))}


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
        flat = (
            "; a law of repeated data is nearly flat in N where the budget exceeds what its "
            f"{result.unique_tokens:.3g} unique tokens can buy, and N* is not determined there"
            if result.unique_tokens is not None
            else ""
        )
        warnings.warn(
            f"{result.n_not_converged} of {total} draw-budget pairs did not converge "
            f"(their last Newton step in log N was above the tolerance{flat}); they are kept",
            AllocationWarning,
            stacklevel=3,
        )
