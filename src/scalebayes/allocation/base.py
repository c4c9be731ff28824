"""The interface of a compute-optimal allocation estimator (approach 1, 2, 3, ...).

Each approach is one subclass in its own module; :mod:`scalebayes.allocation` keeps the
registry and dispatches by the class's ``approach`` key, so no caller switches on a name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from scalebayes.results import Diagnostics, Fit


class Estimator(ABC):
    """Estimates N*, D*, tokens per parameter (and L* where it can) per draw from a fit.

    ``allocate`` returns an object shaped as :class:`~scalebayes.allocate.Allocation`: DataArrays
    ``N``, ``D``, ``loss``, ``tokens_per_param``, ``exponent_N``, ``exponent_D`` with dims
    (chain, draw, budget), ``budgets``, ``cost_k`` and ``summary()``. Options are given to the
    constructor (an estimator that ``samples`` takes ``progress`` among them).
    """

    approach: ClassVar[str]
    title: ClassVar[str]
    samples: ClassVar[bool] = False  # runs NUTS of its own: takes a ``progress`` callback
    # Reads the fit's whole model (law + GP), so it needs a fit with the GP discrepancy; the
    # others read the law alone (its module) or only the runs.
    reads_whole_model: ClassVar[bool] = False

    @abstractmethod
    def allocate(self, fit: Fit, budgets: ArrayLike, *, cost_k: float | None = None) -> Any:
        """The allocation at ``budgets`` (FLOPs) with ``C = cost_k N D`` (default the runs')."""

    @abstractmethod
    def heading(self, fit: Fit, result: Any) -> str:
        """One line naming what was estimated, for text output."""

    @abstractmethod
    def notes(self, fit: Fit, result: Any) -> list[str]:
        """Remarks a reader of the table needs (draws at a bound, sweeps at an edge, ...)."""

    @abstractmethod
    def diagnostics(self, fit: Fit, result: Any) -> Diagnostics:
        """The sampler diagnostics behind the result."""

    def at_budgets(self, fit: Fit, result: Any, budgets: ArrayLike) -> Any:
        """The same posterior's allocation at other ``budgets`` (FLOPs), nothing sampled again.

        The default allocates again from ``fit`` (cheap for estimators that read the fit's own
        draws); an estimator that samples a model of its own reuses it.
        """
        return self.allocate(fit, budgets, cost_k=result.cost_k)

    def sweep_scatter(self, result: Any) -> Any:
        """How far a new isoFLOP sweep's own minimum strays from this estimate, in log N.

        Per draw (dims chain, draw), the sd of a sweep's measured minimum around the estimated
        N* (approach 2's spread of the minima around their power law); None (the default) when
        the estimator has no such term. Predicting a sweep that will be run adds it.
        """
        return None

    def whole_model_loss(self, fit: Fit, result: Any) -> Any:
        """Loss at each draw's optimum under the fit's whole model, when it differs from L*.

        None (the default) when the estimator's L* is already everything it knows; dims
        (chain, draw, budget) otherwise (:func:`scalebayes.allocate.whole_model_loss`).
        """
        return None
