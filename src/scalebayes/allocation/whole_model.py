"""Approach 3 from the whole fitted model: the law plus its discrepancy term, where it has runs.

Approach 3 (:mod:`scalebayes.allocation.law`) minimises the law alone, even in the default
model whose GP term carries what the law misses (:meth:`~scalebayes.results.Fit.law_module`:
beyond the runs the GP's mean reverts to zero and its spread grows, and it must not steer
compute there). This estimator uses the whole model where it has runs and its own trend
beyond them, as approach 2 carries its edge sweep:

- at a budget up to the *edge* ``C_e`` (the largest fitted isoFLOP sweep's budget among those
  that show a valley, or the largest fitted run's compute when none does), N* is the N least
  in the whole model's mean loss along the budget's isoFLOP line, per draw;
- beyond ``C_e`` it is carried on straight in log N-log C from the whole model's N* at
  ``C_e``, with the whole model's own local exponent there: the change of its N* between
  ``C_e / e`` and ``C_e``, per draw.

Why (``benchmarks/allocation_backtest.py --approaches 3 2 3m``): fitted below the top one or
two sweeps of Epoch's and Open-Athena's 9 public tables, its 90 % intervals held 24 of 27
held-out sweeps' measured optima (median |log error| 0.071, mean interval score 0.48), the
law's own 6 of 27 (0.180, 1.84) and approach 2's 24 (0.106, 0.68). With known truth 100x beyond
simulated sweeps (``benchmarks/allocation_whole_model.py --truth``) they held N* in 20 of 20
exact-law and 19 of 20 bent-law tables (the law's: 19 and 10). The whole model's own minimum
that far out held too, but its intervals spanned 3.5-4.1 in log N: no answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from scalebayes.allocate import (
    Allocation,
    checked_budgets,
    fixed_inputs,
    per_draw_fields,
    warn_far_beyond,
)
from scalebayes.allocate import optimal as law_optimal
from scalebayes.allocate_search import budget_inputs
from scalebayes.allocation.base import Estimator
from scalebayes.allocation.budgets import find_budgets
from scalebayes.errors import AllocationWarning, ExtrapolationWarning, ScalebayesError
from scalebayes.results import Diagnostics, Fit

# The whole model's minimum is found on a grid of log N around the law's median N* (the GP's
# term can make the isoFLOP line wiggle, so a bracket search alone could stop at a side dip),
# then placed at the vertex of the parabola through the best point and its two neighbours. The
# grid is one set of inputs for every draw, so the GP's basis is computed once per budget; a
# golden-section polish (16 steps, each at a point of its own per draw) took 3/4 of the time and
# moved log N* from the vertex by 1e-5 (median), 4e-4 at most, on Epoch's and (Mis)Fitting's
# default fits (12 budgets across their runs, 4 x 1000 draws).
GRID_HALF_WIDTH = 2.5  # e-folds of N either side of the law's median N* (x12 each way)
GRID_STEP = 0.02  # e-folds: 251 points
SLOPE_STEP = 1.0  # e-folds of C below C_e over which the local exponent is taken (as benchmarked)
# Below this many fitted sweeps the edge's local exponent is barely determined: on a simulated
# over-training ladder (no sweeps) 3m's 90 % intervals of N* 100x beyond spanned 7.4-7.7 in
# ln N, the law's 0.9-1.3 (benchmarks/allocation_whole_model.py --truth --design ladder).
MIN_SWEEPS = 3
# The discrepancies 3m was validated with (the allocation backtest fits the default model, law +
# GP): with another, e.g. a grouped fit's quadratic, 3m is shown, not recommended.
VALIDATED = ("gp",)


@dataclass(frozen=True)
class EdgeAllocation(Allocation):
    """:class:`~scalebayes.allocate.Allocation` from the whole model, carried on beyond its edge.

    ``edge_budget``: the largest fitted budget C_e (FLOPs) at which the whole model's own N* is
    taken; ``edge_source``: how it was found, in words; ``edge_sweeps``: how many fitted
    isoFLOP sweeps with a valley the runs form (0 when none: C_e is then the largest run's
    compute);
    ``discrepancy``: the name of the fit's discrepancy, the whole model's second part. Budgets
    above C_e carry N* on with the local exponent there. ``at_bound`` marks draws whose minimum
    sat at the end of the search grid (``GRID_HALF_WIDTH`` e-folds from the law's median N*).
    """

    edge_budget: float = float("nan")
    edge_source: str = ""
    edge_sweeps: int = 0  # fitted isoFLOP sweeps with a valley (0: the edge is the largest run)
    discrepancy: str = ""

    @property
    def beyond(self) -> np.ndarray:
        """Which budgets lie beyond the edge (their N* carried on), shape (budget,)."""
        return self.budgets > self.edge_budget * (1 + 1e-9)


class WholeModelEstimator(Estimator):
    """Approach 3m: the whole model's N* (law + discrepancy) up to its edge, its trend beyond."""

    approach: ClassVar[str] = "3m"
    title: ClassVar[str] = "the whole fitted model, law + discrepancy"
    reads_whole_model: ClassVar[bool] = True

    def __init__(self, *, slope_step: float = SLOPE_STEP) -> None:
        if not (np.isfinite(slope_step) and slope_step > 0):
            raise ScalebayesError(
                f"slope_step={slope_step!r}: expected a positive number of e-folds"
            )
        self.slope_step = float(slope_step)

    def allocate(self, fit: Fit, budgets: ArrayLike, *, cost_k: float | None = None) -> Any:
        """N*, D*, L* per draw: the whole model's up to the edge, carried on beyond it."""
        return whole_model_optimal(fit, budgets, cost_k=cost_k, slope_step=self.slope_step)

    def heading(self, fit: Fit, result: Any) -> str:
        """One line naming the model and its edge."""
        return (
            f"compute-optimal allocation under the whole fitted model (law {fit.law.name!r} + "
            f"{fit.likelihood.discrepancy.name} discrepancy), carried on beyond "
            f"{result.edge_budget:.3g} FLOPs ({result.assumptions})"
        )

    def notes(self, fit: Fit, result: Any) -> list[str]:
        """Where the edge is and what beyond it means; draws at the grid's end, if any."""
        notes = [
            f"N* is the whole model's own up to {result.edge_budget:.3g} FLOPs "
            f"({result.edge_source}); beyond, it is carried on straight with the model's local "
            "exponent there"
        ]
        if result.discrepancy not in VALIDATED:
            notes.append(
                f"3m was backtested with the {' or '.join(VALIDATED)} discrepancy; with "
                f"{result.discrepancy} it is untested, so --approach all does not recommend it"
            )
        if result.edge_sweeps < MIN_SWEEPS and result.beyond.any():
            notes.append(
                f"the runs form {result.edge_sweeps} isoFLOP sweeps with a valley (3m is tested on "
                f"{MIN_SWEEPS} or more): the local exponent at the edge is barely determined, and "
                "beyond it this interval is far wider than the law's (on a simulated "
                "over-training ladder 100x beyond, a factor ~2000); read approach 3 instead"
            )
        if result.n_at_bound:
            notes.append(
                f"{result.n_at_bound} draw-budget pairs have their minimum at the end of the "
                f"search grid ({GRID_HALF_WIDTH:g} e-folds of N from the law's N*)"
            )
        return notes

    def diagnostics(self, fit: Fit, result: Any) -> Diagnostics:
        """The fit's diagnostics (law and discrepancy alike)."""
        return fit.diagnostics


def whole_model_optimal(
    fit: Fit,
    budgets: ArrayLike,
    *,
    cost_k: float | None = None,
    slope_step: float = SLOPE_STEP,
) -> EdgeAllocation:
    """Compute-optimal N*, D*, L* per draw from the fit's whole model (law + discrepancy).

    Up to the edge budget C_e (:func:`edge_budget`) N* minimises the whole model's mean loss at
    each budget (FLOPs); beyond, ``log N*(C) = log N*(C_e) + a_e log(C / C_e)`` with ``a_e`` the
    change of log N* from ``C_e exp(-slope_step)`` to C_e, per draw. L* is the whole model's
    mean loss at (N*, D*), nats/token. Dims (chain, draw, budget).

    Raises
    ------
    ScalebayesError
        If the fit has no GP term that decisions leave out (approach 3 then reads the whole
        model already), or a budget is not a positive number.
    LawError
        If the law does not trade N against D alone (a law of U needs approach 3).
    """
    if fit.likelihood.for_decisions() == fit.likelihood:
        raise ScalebayesError(
            f"approach 3 already reads this fit's whole model (its "
            f"{fit.likelihood.discrepancy.name!r} discrepancy has no term that decisions leave "
            "out), so 3m would give the same N*: 3m needs the GP discrepancy, the default for "
            "one ladder's fit"
        )
    fixed_inputs(fit.law, None)  # a law of N and D (and C): U needs approach 3's unique_tokens
    k = float(fit.runs.cost_k if cost_k is None else cost_k)
    if not (np.isfinite(k) and k > 0):
        raise ScalebayesError(
            f"cost_k={k!r}: expected a positive number of FLOPs per parameter per token"
        )
    budgets = checked_budgets(budgets)
    edge, source, sweeps = edge_budget(fit.runs)
    beyond = budgets > edge * (1 + 1e-9)
    step = np.exp(-slope_step)
    # The minima needed: each budget up to the edge and one e-fold below it (its exponent), the
    # edge and one e-fold below it (the trend beyond).
    inside = budgets[~beyond]
    where = np.concatenate([inside, inside * step, [edge, edge * step]])
    log_n, at_end = whole_model_minimum(fit, where, k)
    m = inside.size
    x = np.empty((log_n.shape[0], budgets.size))
    exponent = np.empty_like(x)
    at_bound = np.zeros_like(x, dtype=bool)
    x[:, ~beyond] = log_n[:, :m]
    exponent[:, ~beyond] = (log_n[:, :m] - log_n[:, m : 2 * m]) / slope_step
    at_bound[:, ~beyond] = at_end[:, :m] | at_end[:, m : 2 * m]
    edge_x, below_x = log_n[:, 2 * m], log_n[:, 2 * m + 1]
    edge_slope = (edge_x - below_x) / slope_step
    far = np.log(budgets[beyond] / edge)[None, :]
    x[:, beyond] = edge_x[:, None] + edge_slope[:, None] * far
    exponent[:, beyond] = edge_slope[:, None]
    at_bound[:, beyond] = (at_end[:, 2 * m] | at_end[:, 2 * m + 1])[:, None]

    log_c = np.log(budgets)[None, :]
    log_loss = fit.log_mean(_flat_params(fit), budget_inputs(fit.law, x, log_c, np.log(k)))
    converged = np.ones_like(at_bound)  # a grid and its parabola: nothing to converge
    result = EdgeAllocation(
        **per_draw_fields(fit.posterior, budgets, k, x, log_loss, exponent, at_bound, converged),
        budgets=budgets,
        cost_k=k,
        edge_budget=float(edge),
        edge_source=source,
        edge_sweeps=sweeps,
        discrepancy=fit.likelihood.discrepancy.name,
    )
    if result.n_at_bound:
        warnings.warn(
            f"{result.n_at_bound} of {result.N.size} draw-budget pairs have the whole model's "
            f"minimum at the end of its search grid ({GRID_HALF_WIDTH:g} e-folds of N from the "
            "law's N*): the GP's term runs downhill there; they are kept, at the end",
            AllocationWarning,
            stacklevel=2,
        )
    warn_far_beyond(fit, budgets, "budget", "the whole model's local trend at its edge")
    return result


def edge_budget(runs: Any) -> tuple[float, str, int]:
    """The largest budget at which the whole model has runs to read N* from: FLOPs, in words, sweeps.

    The largest isoFLOP sweep's budget (:func:`~scalebayes.allocation.budgets.find_budgets`,
    sweeps of 3 or more runs) among the sweeps that show a valley, as approach 2 takes them:
    where a sweep's least loss is at its smallest or largest model, the whole model's minimum
    along its isoFLOP line lies beyond its runs. Else the largest run's compute. The third
    value is the number of such sweeps (0 for none).
    """
    # An over-training ladder's runs share a budget by chance, three to a "sweep" at several
    # tokens per parameter with the least loss at an end: counted, 3m was recommended on such a
    # ladder of an exact law and put 1e23 FLOPs at 71 [12, 187] tokens per parameter (truth 17).
    try:
        sweeps = find_budgets(runs, min_budgets=1, edge_sweeps="drop")
    except ScalebayesError:
        largest = float(np.max(runs.C))
        return (
            largest,
            "the largest fitted run's compute: no isoFLOP sweep of the runs shows a valley",
            0,
        )
    top = float(np.max(sweeps.compute))
    return (
        top,
        f"the largest of {sweeps.n_budgets} fitted isoFLOP sweeps with a valley",
        sweeps.n_budgets,
    )


def whole_model_minimum(
    fit: Fit, budgets: Sequence[float] | np.ndarray, cost_k: float
) -> tuple[np.ndarray, np.ndarray]:
    """Log N least in the whole model's mean loss along each budget's isoFLOP line, per draw.

    Returns ``(log_n, at_end)``, each of shape (draws, budgets): the minimum, and whether the
    grid's best point was its first or last (the minimum may lie beyond it).
    """
    budgets = np.asarray(budgets, dtype=float)
    with warnings.catch_warnings():
        # Only a centre for the grid: its own bound and extrapolation warnings do not apply.
        warnings.simplefilter("ignore", AllocationWarning)
        warnings.simplefilter("ignore", ExtrapolationWarning)
        guide = law_optimal(fit, budgets, cost_k=cost_k)
    centres = np.log(guide.N.median(("chain", "draw")).to_numpy())
    params = _flat_params(fit)
    offsets = np.arange(-GRID_HALF_WIDTH, GRID_HALF_WIDTH + GRID_STEP / 2, GRID_STEP)
    log_k = np.log(cost_k)
    found, ends = [], []
    for log_c, centre in zip(np.log(budgets), centres, strict=True):

        def log_mean(x: np.ndarray, log_c: float = log_c) -> np.ndarray:
            return np.asarray(fit.log_mean(params, budget_inputs(fit.law, x, log_c, log_k)))

        grid = centre + offsets
        values = log_mean(grid[None, :])
        best = np.argmin(values, axis=1)
        found.append(grid[best] + _vertex_shift(values, best) * GRID_STEP)
        ends.append((best == 0) | (best == grid.size - 1))
    return np.stack(found, axis=1), np.stack(ends, axis=1)


def _vertex_shift(values: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Where the parabola through each row's best grid point and its neighbours has its vertex.

    In grid steps from the best point, within half a step either way; 0 at the grid's ends.
    """
    inner = np.clip(best, 1, values.shape[1] - 2)
    rows = np.arange(values.shape[0])
    left, mid, right = (values[rows, inner + k] for k in (-1, 0, 1))
    curvature = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)
    return np.where(inner == best, np.clip(shift, -0.5, 0.5), 0.0)


def _flat_params(fit: Fit) -> dict[str, np.ndarray]:
    """Every parameter's draws as a column, shape (chain * draw, 1)."""
    return {name: fit.posterior[name].to_numpy().reshape(-1, 1) for name in fit.param_names}


__all__ = ["EdgeAllocation", "WholeModelEstimator", "edge_budget", "whole_model_optimal"]
