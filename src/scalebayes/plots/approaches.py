"""Every allocation approach's frontier on one axes: N*(C) or D*(C) bands side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalebayes.errors import ScalebayesError
from scalebayes.plots.frontier import frontier

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scalebayes.allocation.verdict import Approaches
    from scalebayes.data import Runs


def approaches(
    result: Approaches,
    *,
    quantity: str = "N",
    ax: Axes | None = None,
    runs: Runs | None = None,
    prob: float = 0.9,
) -> Axes:
    """Each approach's median and ``prob`` band of N* (or D*) against compute, overlaid.

    ``result`` is :func:`scalebayes.compare_approaches` (or ``sb.optimal(...,
    approach="all")``) over a range of budgets; L* is not drawn (approaches 1 and 2 have it
    only inside their runs). Bands have gid ``"approach {key} {percent}%"``; the title carries
    each pair's verdict.
    """
    if quantity not in ("N", "D"):
        raise ScalebayesError(f"quantity={quantity!r}: expected 'N' or 'D'")
    drawn = {f"approach {key}": allocation for key, allocation in result.results.items()}
    ax = frontier(drawn, quantity=quantity, ax=ax, runs=runs, prob=prob)
    ax.set_title(f"approaches {result.pair_verdicts}", fontsize="small")
    return ax
