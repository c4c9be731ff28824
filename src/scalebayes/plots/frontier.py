"""The compute-optimal frontier: N*(C), D*(C) and L*(C) with bands, several fits overlaid.

Published frontiers come in as :class:`Reference` lines (closed forms of their point fits:
for orientation only; the posterior's own frontier is computed per draw by
:func:`scalebayes.optimal`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scalebayes.errors import ScalebayesError
from scalebayes.plots._common import (
    AXIS_LABELS,
    OBSERVED_STYLE,
    fill_bands,
    log_ticks,
    mark_extrapolation,
    new_axes,
    place_legend,
    plain_loss_ticks,
)
from scalebayes.summaries import summarise

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scalebayes.allocate import Allocation
    from scalebayes.data import Runs

QUANTITIES = ("N", "D", "loss")
FRONTIER_LABELS = {
    "N": "compute-optimal parameters N* (count)",
    "D": "compute-optimal tokens D* (tokens)",
    "loss": "compute-optimal loss L* (nats/token)",
}


@dataclass(frozen=True)
class Reference:
    """A published Chinchilla-form fit ``E + A/N^alpha + B/D^beta``, drawn as a dashed frontier.

    Its optimum has the closed form ``N* = G (C/k)^(beta/(alpha+beta))`` with
    ``G = (alpha A / (beta B))^(1/(alpha+beta))`` (Hoffmann et al. 2022, eq. 4).
    """

    label: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def frontier(self, budgets: np.ndarray, cost_k: float = 6.0) -> dict[str, np.ndarray]:
        """N*, D*, L* at ``budgets`` (FLOPs), each of the budgets' shape."""
        budgets = np.asarray(budgets, dtype=float)
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        n = g * (budgets / cost_k) ** (self.beta / (self.alpha + self.beta))
        d = budgets / (cost_k * n)
        return {"N": n, "D": d, "loss": self.E + self.A / n**self.alpha + self.B / d**self.beta}


# Hoffmann et al. 2022 (arXiv:2203.15556), approach 3 (their eq. 10 constants).
HOFFMANN_2022 = Reference("Hoffmann et al. 2022 (approach 3)", 1.69, 406.4, 410.7, 0.34, 0.28)
# Besiroglu et al. 2024 (arXiv:2404.10102), Epoch AI's refit of the same data.
EPOCH_2024 = Reference("Besiroglu et al. 2024 (Epoch refit)", 1.82, 482.0, 2085.0, 0.348, 0.366)
PUBLISHED = (HOFFMANN_2022, EPOCH_2024)


def frontier(
    allocations: Allocation | Mapping[str, Allocation],
    *,
    quantity: str = "N",
    ax: Axes | None = None,
    runs: Runs | None = None,
    references: Sequence[Reference] = (),
    prob: float = 0.9,
) -> Axes:
    """One of N*(C), D*(C), L*(C): posterior median and ``prob`` band per allocation.

    Parameters
    ----------
    allocations : Allocation or mapping of label to Allocation
        From :func:`scalebayes.optimal` over a range of budgets; several are overlaid, each
        in its own colour, with a legend.
    quantity : {"N", "D", "loss"}
        Which optimum to draw against compute.
    ax : Axes, optional
        Where to draw; a new figure if None.
    runs : Runs, optional
        Observed runs drawn for context at their (C, N), (C, D) or (C, loss); compute beyond
        their range is shaded as extrapolation.
    references : sequence of Reference
        Published frontiers drawn as dashed lines (e.g. :data:`PUBLISHED`).
    prob : float
        Interval probability of the bands.

    Returns
    -------
    Axes
        Log-log; bands have gid ``"{label} {percent}%"``. Budgets where an allocation's
        optimum is not located (``Allocation.located``: more than 5 % of its draws at the
        search's bound) are left as gaps.
    """
    if quantity not in QUANTITIES:
        raise ScalebayesError(f"quantity={quantity!r}: expected one of {', '.join(QUANTITIES)}")
    if not isinstance(allocations, Mapping):
        allocations = {"posterior": allocations}
    if not allocations:
        raise ScalebayesError("frontier: no allocations to draw")
    ax = new_axes(ax)
    everything = []
    for i, (label, allocation) in enumerate(allocations.items()):
        budgets = np.asarray(allocation.budgets, dtype=float)
        order = np.argsort(budgets)
        table = summarise(getattr(allocation, quantity), probs=(prob,)).iloc[order]
        # Where the search's bound sets the interval the band would be the search's: a gap.
        located = allocation.located()[order]
        table.loc[~located] = np.nan
        color = f"C{i}"
        (band,) = fill_bands(ax, budgets[order], table, (prob,), color=color, label=label)
        if not located.all():  # said in the legend (gids keep the plain label)
            band.set_label(band.get_label() + (" (gaps: optimum not located)" if located.any()
                                               else " (optimum not located)"))  # fmt: skip
        (line,) = ax.plot(
            budgets[order], table["median"], color=color, lw=1.6, label=f"{label}: median"
        )
        line.set_gid(f"{label} median")
        everything.append(budgets)
    budgets = np.concatenate(everything)
    grid = np.geomspace(budgets.min(), budgets.max(), 50)
    cost_k = next(iter(allocations.values())).cost_k
    for j, reference in enumerate(references):
        (line,) = ax.plot(
            grid,
            reference.frontier(grid, cost_k)[quantity],
            color="0.25",
            ls=("--", ":", "-.")[j % 3],
            lw=1.1,
            label=reference.label,
        )
        line.set_gid(f"reference {reference.label}")
    if runs is not None:
        points = ax.scatter(
            runs.C,
            runs.table[quantity],
            **{**OBSERVED_STYLE, "s": 8, "alpha": 0.5},
            label=f"runs ({len(runs)})",
        )
        points.set_gid("observed")
        mark_extrapolation(ax, budgets, float(runs.C.min()), float(runs.C.max()))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(AXIS_LABELS["C"])
    ax.set_ylabel(FRONTIER_LABELS[quantity])
    log_ticks(ax, "x")
    if quantity == "loss":
        plain_loss_ticks(ax)
    else:
        log_ticks(ax, "y")
    place_legend(ax, fontsize="x-small")
    return ax


def frontier_panels(
    allocations: Allocation | Mapping[str, Allocation],
    *,
    axes: Sequence[Axes] | None = None,
    runs: Runs | None = None,
    references: Sequence[Reference] = (),
    prob: float = 0.9,
) -> np.ndarray:
    """N*(C), D*(C) and L*(C) side by side (see :func:`frontier`); returns the three Axes.

    The panels share one legend, below them (on new axes: below the figure).
    """
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 3, figsize=(15, 5.2), layout="constrained")
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != len(QUANTITIES):
        raise ScalebayesError(f"frontier_panels: expected {len(QUANTITIES)} axes, got {axes.size}")
    for ax, quantity in zip(axes, QUANTITIES, strict=True):
        frontier(allocations, quantity=quantity, ax=ax, runs=runs, references=references, prob=prob)
        ax.get_legend().remove()
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_figure().legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 4),
        fontsize="small",
    )
    return axes
