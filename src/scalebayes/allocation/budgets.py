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

from scalebayes.data import Runs, repeats
from scalebayes.errors import IsoflopError, ScalebayesError

LOG10_TOL = 0.05
# Where a table's FLOP count differs from the designers' by a factor that depends on model size
# (6ND against a count with attention and embeddings: Marin's runs of one budget deviate from it
# by -0.03 to +0.13 decades, smallest models most), runs of one sweep spread over more than the
# tolerance and split. Within the first grouping, log C is then regressed on log N and its
# square (one intercept per group); where that explains at least OFFSET_MIN_R2 of the
# within-group spread, the fitted size offset is removed and the runs regrouped. Marin's
# experiments read R^2 0.93-0.99, and their 13-14 fragments become the 7-8 sweeps their budget
# column names; Epoch's digitisation scatter reads 0.11, ml-scalefit's 0.11, and is left alone.
OFFSET_MIN_R2 = 0.5
OFFSET_PASSES = 3
MIN_RUNS = 3  # a minimum needs a run on each side of it and one at it
MIN_BUDGETS = 3  # a power law through the minima needs more than two points to be checked
# A sweep whose least observed loss is at its smallest or largest model shows no valley: where
# its minimum lies rests on the other sweeps' valley shape, and its least loss and curvature
# trade off along a ridge the sampler crosses slowly ((Mis)Fitting's four smallest sweeps, 3-5
# runs rising monotonically in N: R-hat 1.04-1.08, ESS 39-79 on two seeds; left out, 1.007-1.020
# and 241-285, a 0.50 -> 0.52; Epoch's seven such sweeps: a 0.524 -> 0.522, N* at 5.76e23 within
# 2 %, half the sampling time). "drop" leaves them out, "keep" uses them.
EDGE_SWEEPS = ("drop", "keep")


@dataclass(frozen=True)
class Budgets:
    """The isoFLOP sweeps found in a table of runs.

    ``index`` gives each run's sweep (0..B-1), or -1 for runs left out; ``compute`` the sweeps'
    budgets (FLOPs, ascending); ``counts`` runs per sweep; ``ignored`` the budgets of groups with
    fewer than ``min_runs`` runs and how many runs each had; ``source`` says how they were found;
    ``one_sided`` the budgets and run counts of sweeps left out for their least loss at an end
    of their model sizes (``edge_sweeps="drop"``); ``repeated`` how many runs were left out for
    repeating their data (D > U).
    """

    index: np.ndarray
    compute: np.ndarray
    counts: np.ndarray
    ignored: tuple[tuple[float, int], ...]
    source: str
    one_sided: tuple[tuple[float, int], ...] = ()
    repeated: int = 0

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
        if self.one_sided:
            line += (
                f"; left out {len(self.one_sided)} sweep(s) whose least loss is at their "
                f"smallest or largest model ({', '.join(f'{c:.3g}' for c, _ in self.one_sided)} "
                "FLOPs: no valley to measure; edge_sweeps='keep' uses them)"
            )
        if self.repeated:
            line += f"; {_repeated_note(self.repeated)}"
        return line


def find_budgets(
    runs: Runs,
    *,
    log10_tol: float = LOG10_TOL,
    min_runs: int = MIN_RUNS,
    min_budgets: int = MIN_BUDGETS,
    edge_sweeps: str = "keep",
) -> Budgets:
    """Group ``runs`` into isoFLOP sweeps; raise :class:`IsoflopError` if too few are usable.

    A ``budget`` column wins; else runs are grouped by compute C: the densest run's
    neighbourhood of ``log10_tol`` decades (centred on its median) is a sweep, and so on with
    the rest. Sweeps with fewer than ``min_runs`` runs are ignored (listed in
    :attr:`Budgets.ignored`); with ``edge_sweeps="drop"``, so are sweeps whose least loss is at
    their smallest or largest model (:data:`EDGE_SWEEPS`; listed in :attr:`Budgets.one_sided`).
    Runs that repeat their data (D > U, with a U column) are left out: a sweep measures the
    optimum on fresh data, and runs at one budget but different U would mix regimes (the law of
    repeated data, approach 3 with unique tokens, reads them). Fewer than ``min_budgets`` usable
    sweeps is an error.
    """
    if not (np.isfinite(log10_tol) and log10_tol > 0):
        raise ScalebayesError(f"log10_tol={log10_tol!r}: expected a positive number of decades")
    if edge_sweeps not in EDGE_SWEEPS:
        raise ScalebayesError(f"edge_sweeps={edge_sweeps!r}: expected one of {list(EDGE_SWEEPS)}")
    fresh = np.flatnonzero(~repeats(runs.table))
    if runs.budget is not None:
        labels, source = np.log10(runs.budget), "from the budget column"
        groups = [fresh[m] for m in _exact_groups(labels[fresh])]
    else:
        labels, source = np.log10(runs.C), f"runs whose compute agrees within {log10_tol:g} decades"
        clusters, offset = _clusters_by_compute(labels[fresh], np.log10(runs.N[fresh]), log10_tol)
        groups = [fresh[m] for m in clusters]
        if offset is not None:
            source += (
                f", after removing a FLOP-count offset that varies with model size by "
                f"{np.ptp(offset):.2g} decades (the sweeps were planned with another count)"
            )
    repeated = len(runs) - len(fresh)
    kept, ignored = [], []
    for members in groups:
        budget = float(10 ** np.median(labels[members]))
        if len(members) >= min_runs:
            kept.append((budget, members))
        else:
            ignored.append((budget, len(members)))
    kept.sort(key=lambda item: item[0])
    one_sided = []
    if edge_sweeps == "drop":
        at_end = [_least_at_an_end(runs, m) for _, m in kept]
        one_sided = [(budget, len(m)) for (budget, m), end in zip(kept, at_end, strict=True) if end]
        kept = [sweep for sweep, end in zip(kept, at_end, strict=True) if not end]
    if len(kept) < min_budgets:
        left_out = (
            f"; {len(one_sided)} more have their least loss at their smallest or largest model "
            "(edge_sweeps='keep' uses them)"
            if one_sided
            else ""
        )
        if repeated:
            left_out += f"; {_repeated_note(repeated)}"
        raise IsoflopError(
            f"approach 2 needs at least {min_budgets} isoFLOP budgets with {min_runs} or more runs "
            f"each; {runs.source} has {len(kept)} ({source}: {_group_sizes(groups)})" + left_out
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
        one_sided=tuple(one_sided),
        repeated=repeated,
    )


def _repeated_note(count: int) -> str:
    return (
        f"left out {count} run(s) that repeat their data (D > U): the approaches that measure "
        "optima read fresh-data runs; the law of repeated data reads them all (approach 3, "
        "unique tokens given)"
    )


def _least_at_an_end(runs: Runs, members: np.ndarray) -> bool:
    """Whether a sweep's least observed loss is at its smallest or largest model."""
    n = runs.N[members]
    least = n[np.argmin(runs.loss[members])]
    return bool(least == n.min() or least == n.max())


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


def _clusters_by_compute(
    log_c: np.ndarray, log_n: np.ndarray, tol: float
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Sweeps by compute (:func:`_clusters`), regrouped once a size-dependent offset is removed.

    Returns the groups and the offset removed from each run's log10 C (None if none was): see
    :data:`OFFSET_MIN_R2`. A regrouping is kept only while it merges groups.
    """
    groups = _clusters(log_c, tol)
    offset = None
    for _ in range(OFFSET_PASSES):
        fitted = _size_offset(log_c, log_n, groups)
        if fitted is None:
            break
        regrouped = _clusters(log_c - fitted, tol)
        if len(regrouped) >= len(groups):
            break
        groups, offset = regrouped, fitted
    return groups, offset


def _size_offset(
    log_c: np.ndarray, log_n: np.ndarray, groups: list[np.ndarray]
) -> np.ndarray | None:
    """Each run's fitted offset of log10 C, quadratic in log10 N, from the spread within groups.

    None when fewer than 3 groups have 2 runs or more, or when log N explains less than
    :data:`OFFSET_MIN_R2` of the spread of log C within the groups.
    """
    within = [g for g in groups if len(g) >= 2]
    if len(within) < 3:
        return None
    x = log_n - np.mean(log_n[np.concatenate(within)])
    basis = np.stack([x, x**2], axis=1)
    # One intercept per group: regress on the deviations from each group's means.
    dx = np.concatenate([basis[g] - basis[g].mean(axis=0) for g in within])
    dy = np.concatenate([log_c[g] - log_c[g].mean() for g in within])
    if not dy.var() > 0:
        return None
    coef = np.linalg.lstsq(dx, dy, rcond=None)[0]
    r2 = 1.0 - np.var(dy - dx @ coef) / dy.var()
    return basis @ coef if r2 >= OFFSET_MIN_R2 else None


def _group_sizes(groups: list[np.ndarray]) -> str:
    """``"3 group(s) of 16, 16, 16 runs"``, or what a table of no shared budgets is."""
    if not groups:
        return "no runs on fresh data"
    if all(len(members) == 1 for members in groups):
        return f"no two of its {len(groups)} runs share a budget"
    sizes = sorted((len(m) for m in groups), reverse=True)
    shown = ", ".join(str(n) for n in sizes[:12]) + (", ..." if len(sizes) > 12 else "")
    return f"{len(groups)} group(s) of {shown} runs"
