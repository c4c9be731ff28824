"""Compute-optimal allocation estimators, one per approach, behind one interface.

``3`` (the default) minimises the fitted law per draw (:mod:`scalebayes.allocate`); ``2``
fits isoFLOP profiles with latent minima and a power law through them
(:mod:`scalebayes.allocation.isoflop`). A new approach is a module with an
:class:`~scalebayes.allocation.base.Estimator` subclass, added to :data:`ESTIMATORS`.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from scalebayes.allocation.base import Estimator
from scalebayes.allocation.isoflop import IsoflopEstimator
from scalebayes.allocation.law import LawEstimator
from scalebayes.errors import ScalebayesError
from scalebayes.groups.select import select_group
from scalebayes.results import Fit

ESTIMATORS: dict[str, type[Estimator]] = {
    kind.approach: kind for kind in (LawEstimator, IsoflopEstimator)
}
"""Every allocation estimator by its approach key."""


def estimator(approach: int | str = 3, **options: Any) -> Estimator:
    """The estimator of ``approach`` (a key of :data:`ESTIMATORS`) with its options."""
    key = str(approach)
    if key not in ESTIMATORS:
        known = ", ".join(f"{k} ({v.title})" for k, v in ESTIMATORS.items())
        raise ScalebayesError(f"approach={approach!r}: expected one of {known}")
    return ESTIMATORS[key](**options)


def optimal(
    fit: Fit,
    budgets: ArrayLike,
    *,
    approach: int | str = 3,
    cost_k: float | None = None,
    group: str | None = None,
    **options: Any,
) -> Any:
    """Compute-optimal N*, D*, tokens per parameter (and L*) per budget and posterior draw.

    Parameters
    ----------
    fit : Fit
        A posterior of a law of N and D (approach 3), or any fit whose runs form isoFLOP
        sweeps (approach 2 uses ``fit.runs`` only).
    budgets : array-like of float
        Training compute, FLOPs.
    approach : 3 or 2
        3 (default): minimise the law per draw, :func:`scalebayes.allocate.optimal`. 2: latent
        minima of the isoFLOP sweeps and a power law through them,
        :func:`scalebayes.allocation.isoflop.isoflop_optimal` (samples its own model).
    cost_k : float, optional
        FLOPs per parameter per token, ``C = k N D``; default the runs' (6).
    group : str, optional
        For a grouped fit: the group's label, or ``"new"`` for a group not yet run.
    **options
        Passed to the approach (e.g. ``tokens_per_param_bounds`` for 3, ``settings`` or
        ``log10_tol`` for 2).

    Returns
    -------
    Allocation or ProfileAllocation
        Per-draw ``N``, ``D``, ``loss``, ``tokens_per_param``, ``exponent_N``, ``exponent_D``,
        dims (chain, draw, budget), with ``summary()``.
    """
    fit = select_group(fit, group)
    return estimator(approach, **options).allocate(fit, budgets, cost_k=cost_k)


__all__ = ["ESTIMATORS", "Estimator", "estimator", "optimal"]
