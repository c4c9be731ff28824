"""Compute-optimal allocation estimators, one per approach, behind one interface.

``3`` (the default) minimises the fitted law per draw (:mod:`scalebayes.allocate`); ``3m``
the whole fitted model (law + discrepancy) where it has runs, carried on beyond with its own
exponent (:mod:`scalebayes.allocation.whole_model`); ``2``
fits isoFLOP profiles with latent minima and a power law through them
(:mod:`scalebayes.allocation.isoflop`); ``1`` reads the lower envelope of finished runs
(:mod:`scalebayes.allocation.envelope`). A new approach is a module with an
:class:`~scalebayes.allocation.base.Estimator` subclass, added to :data:`ESTIMATORS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from scalebayes.allocation.base import Estimator
from scalebayes.allocation.envelope import EnvelopeEstimator
from scalebayes.allocation.isoflop import IsoflopEstimator
from scalebayes.allocation.law import LawEstimator
from scalebayes.allocation.verdict import Approaches, side_by_side
from scalebayes.allocation.whole_model import WholeModelEstimator
from scalebayes.errors import ScalebayesError
from scalebayes.groups.select import NEW, select_group
from scalebayes.results import Fit

if TYPE_CHECKING:  # the sampler loads only when an approach samples
    from scalebayes.engine import ProgressCallback

ESTIMATORS: dict[str, type[Estimator]] = {
    kind.approach: kind
    for kind in (LawEstimator, WholeModelEstimator, IsoflopEstimator, EnvelopeEstimator)
}
"""Every allocation estimator by its approach key."""


def estimator(
    approach: int | str = 3, *, progress: ProgressCallback | None = None, **options: Any
) -> Estimator:
    """The estimator of ``approach`` (a key of :data:`ESTIMATORS`) with its options.

    ``progress`` reaches the estimators that sample (approaches 1 and 2), its phases named
    by the approach ("approach 2 warmup"); the others ignore it.
    """
    key = str(approach)
    if key not in ESTIMATORS:
        known = ", ".join(f"{k} ({v.title})" for k, v in ESTIMATORS.items())
        raise ScalebayesError(f"approach={approach!r}: expected one of {known}")
    kind = ESTIMATORS[key]
    if progress is not None and kind.samples:
        told = progress

        def named(done: int, total: int, phase: str) -> None:
            told(done, total, f"approach {key} {phase}")

        options = {"progress": named, **options}
    return kind(**options)


def compare_approaches(
    fit: Fit,
    budgets: ArrayLike,
    *,
    approaches: tuple[int | str, ...] = ("1", "2", "3", "3m"),
    cost_k: float | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    progress: ProgressCallback | None = None,
) -> Approaches:
    """Every approach's N*, D*, tokens per parameter and exponent side by side, with a verdict.

    Approaches the table cannot support are listed with the reason, not raised. ``options``
    maps an approach key to its estimator's options; ``progress`` is told the sampling of
    approaches 1 and 2 (``progress(done, total, phase)``). ``print(result)`` gives the table, the
    verdict (agree / disagree / unclear, with how much and how sure) and the approach the tool
    recommends for this table and why (:mod:`scalebayes.allocation.verdict`).
    """
    options = options or {}
    chosen = {str(k): estimator(k, progress=progress, **options.get(str(k), {}))
              for k in approaches}  # fmt: skip
    return side_by_side(fit, np.asarray(budgets, float), chosen, cost_k=cost_k)


def optimal(
    fit: Fit,
    budgets: ArrayLike,
    *,
    approach: int | str = 3,
    cost_k: float | None = None,
    group: str | None = None,
    progress: ProgressCallback | None = None,
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
    approach : 3, "3m", 2, 1 or "all"
        3 (default): minimise the law per draw, :func:`scalebayes.allocate.optimal`. "3m": the
        whole model (law + GP) up to its largest fitted sweep with a valley, its own trend beyond,
        :func:`scalebayes.allocation.whole_model.whole_model_optimal`. 2: latent
        minima of the isoFLOP sweeps and a power law through them,
        :func:`scalebayes.allocation.isoflop.isoflop_optimal` (samples its own model). 1: the
        lower envelope of finished runs, :func:`scalebayes.allocation.envelope.fit_envelope`.
        "all": :func:`compare_approaches` (``options``: its ``approaches`` and ``options``).
    cost_k : float, optional
        FLOPs per parameter per token, ``C = k N D``; default the runs' (6).
    group : str, optional
        For a grouped fit: the group's label, or ``"new"`` for a group not yet run.
    progress : callable, optional
        ``progress(done, total, phase)`` while approaches 1 and 2 sample.
    **options
        Passed to the approach (e.g. ``tokens_per_param_bounds`` for 3, ``settings`` or
        ``log10_tol`` for 2).

    Returns
    -------
    Allocation, ProfileAllocation, EnvelopeAllocation or Approaches
        Per-draw ``N``, ``D``, ``loss``, ``tokens_per_param``, ``exponent_N``, ``exponent_D``,
        dims (chain, draw, budget), with ``summary()``.
    """
    check_group_approach(group, approach)
    fit = select_group(fit, group)
    if str(approach) == "all":
        return compare_approaches(fit, budgets, cost_k=cost_k, progress=progress, **options)
    return estimator(approach, progress=progress, **options).allocate(fit, budgets, cost_k=cost_k)


def check_group_approach(group: str | None, approach: int | str) -> None:
    """Refuse approaches 1, 2 and "all" for a new group: they read a group's own runs."""
    if group == NEW and str(approach) != "3":
        raise ScalebayesError(
            f"approach {approach} works from a group's own runs, and a new group ({NEW!r}) has "
            "none: use approach 3 (the law, its parameters drawn from the population)"
        )


def check_unique_approach(unique_tokens: float | None, approach: int | str) -> None:
    """Refuse unique tokens with approaches other than 3: only the law reads them."""
    if unique_tokens is not None and str(approach) != "3":
        raise ScalebayesError(
            f"unique tokens are an input of the law: approach 3 only, not {approach!r} "
            "(approaches 1 and 2 measure optima from the runs as they were trained)"
        )


__all__ = [
    "ESTIMATORS",
    "Approaches",
    "Estimator",
    "check_group_approach",
    "check_unique_approach",
    "compare_approaches",
    "estimator",
    "optimal",
]
