"""Which runs form an isoFLOP sweep: budgets from a ``budget`` column, or runs of equal compute.

Approach 2 (Hoffmann et al. 2022) needs runs grouped into sweeps of fixed compute. A table
that says which sweep each run belongs to (a ``budget`` column) is used as it is. Otherwise
runs whose compute agrees within :data:`LOG10_TOL` decades are one sweep: the tolerance is
wider than the digitisation scatter of Epoch's Chinchilla compute around its nominal levels
(about 0.03 decades) and 6ND's rounding, and half the closest spacing of published isoFLOP
grids (0.093 decades in (Mis)Fitting's 26 budgets; 0.22 in Chinchilla's and Marin's), so
neighbouring sweeps never merge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalebayes.data import Runs
from scalebayes.errors import IsoflopError, ScalebayesError

LOG10_TOL = 0.05
MIN_RUNS = 3  # a minimum needs a run on each side of it and one at it
MIN_BUDGETS = 3  # a power law through the minima needs more than two points to be checked


@dataclass(frozen=True)
class Budgets:
    """The isoFLOP sweeps found in a table of runs.

    ``index`` gives each run's sweep (0..B-1), or -1 for runs left out; ``compute`` the sweeps'
    budgets (FLOPs, ascending); ``counts`` runs per sweep; ``ignored`` the budgets of groups with
    fewer than ``min_runs`` runs and how many runs each had; ``source`` says how they were found.
    """

    index: np.ndarray
    compute: np.ndarray
    counts: np.ndarray
    ignored: tuple[tuple[float, int], ...]
    source: str

    @property
    def n_budgets(self) -> int:
        """Sweeps used."""
        return len(self.compute)

    @property
    def used(self) -> np.ndarray:
        """Boolean mask of the runs in a used sweep, shape (n_runs,)."""
        return self.index >= 0

    def table(self) -> pd.DataFrame:
        """One row per used sweep: ``budget`` (FLOPs) and ``runs``."""
        return pd.DataFrame({"budget": self.compute, "runs": self.counts})

    def __str__(self) -> str:
        sweeps = ", ".join(f"{c:.3g} ({n})" for c, n in zip(self.compute, self.counts, strict=True))
        line = f"{self.n_budgets} isoFLOP budgets ({self.source}), runs each: {sweeps}"
        if self.ignored:
            left = sum(n for _, n in self.ignored)
            line += (
                f"; ignored {len(self.ignored)} budget(s) with fewer than {MIN_RUNS} runs "
                f"({left} runs)"
            )
        return line


def find_budgets(
    runs: Runs,
    *,
    log10_tol: float = LOG10_TOL,
    min_runs: int = MIN_RUNS,
    min_budgets: int = MIN_BUDGETS,
) -> Budgets:
    """Group ``runs`` into isoFLOP sweeps; raise :class:`IsoflopError` if too few are usable.

    A ``budget`` column wins; else runs are grouped by compute C: the densest run's
    neighbourhood of ``log10_tol`` decades (centred on its median) is a sweep, and so on with
    the rest. Sweeps with fewer than ``min_runs`` runs are ignored (listed in
    :attr:`Budgets.ignored`); fewer than ``min_budgets`` usable sweeps is an error.
    """
    if not (np.isfinite(log10_tol) and log10_tol > 0):
        raise ScalebayesError(f"log10_tol={log10_tol!r}: expected a positive number of decades")
    if runs.budget is not None:
        labels, source = np.log10(runs.budget), "from the budget column"
        groups = _exact_groups(labels)
    else:
        labels, source = np.log10(runs.C), f"runs whose compute agrees within {log10_tol:g} decades"
        groups = _clusters(labels, log10_tol)
    kept, ignored = [], []
    for members in groups:
        budget = float(10 ** np.median(labels[members]))
        if len(members) >= min_runs:
            kept.append((budget, members))
        else:
            ignored.append((budget, len(members)))
    kept.sort(key=lambda item: item[0])
    if len(kept) < min_budgets:
        raise IsoflopError(
            f"approach 2 needs at least {min_budgets} isoFLOP budgets with {min_runs} or more runs "
            f"each; {runs.source} has {len(kept)} ({source}: "
            f"{len(groups)} group(s) of {', '.join(str(len(m)) for m in groups[:12])} runs)"
        )
    index = np.full(len(runs), -1)
    for b, (_, members) in enumerate(kept):
        index[members] = b
    return Budgets(
        index=index,
        compute=np.array([budget for budget, _ in kept]),
        counts=np.array([len(members) for _, members in kept]),
        ignored=tuple(sorted(ignored)),
        source=source,
    )


def _exact_groups(labels: np.ndarray) -> list[np.ndarray]:
    """Runs sharing a budget value (to 1e-9 decades)."""
    keys = np.round(labels, 9)
    return [np.flatnonzero(keys == k) for k in np.unique(keys)]


def _clusters(labels: np.ndarray, tol: float) -> list[np.ndarray]:
    """Greedy density clustering in log10 C, densest group first.

    The run with most neighbours within ``tol`` seeds a group, re-centred once on the group's
    median; its members leave; repeat.
    """
    left = np.arange(len(labels))
    groups = []
    while left.size:
        values = labels[left]
        near = np.abs(values[:, None] - values[None, :]) < tol
        seed = int(np.argmax(near.sum(axis=1)))
        centre = np.median(values[near[seed]])
        members = np.abs(values - centre) < tol
        if not members.any():  # the median moved away from every run: keep the seed's group
            members = near[seed]
        groups.append(left[members])
        left = left[~members]
    return groups
