"""Which runs to train next: expected shrinkage of an objective's uncertainty, per FLOP or in all.

No refit. For each candidate run, outcomes are simulated from the posterior predictive (a
"true" posterior draw per scenario, plus the fitted noise); the fit's draws are re-weighted by
the likelihood of each outcome, and the objective's spread is recomputed under the weights.
Averaged over scenarios this is the spread expected after running the candidate: the weights
average to uniform over scenarios, so it is an honest preposterior estimate whose accuracy is
limited only by the number of draws that keep weight (the effective sample size, reported).

A batch is chosen greedily with the same scenarios: each scenario is one possible world (a
draw) in which every candidate's outcome is fixed, and runs already chosen stay conditioned
on, so a second run is valued for what it adds to the first, not for what it would add alone.
Two greedy batches are built, by reduction per FLOP and by reduction alone, and the one that
expects the narrower spread is kept: per FLOP alone fills a budget with cheap runs that say
little about a distant target (benchmarks/design_sequential.py: it then ranked level with random
selection on 9 public tables; with the better of the two, first).

A batch grows only while the weights keep enough draws to measure what the next run adds
(:func:`ess_floor`); the first run is always measured against the posterior as it is. Below the
floor the expected spreads come out too narrow: on the public tables, refitted with the chosen
runs' measured losses, 26 batches that ended below it were 0.85-22x as wide as predicted
(median 1.39x), 10 above it 0.81-1.17x (benchmarks/results/design_calibration_before.json).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scalebayes.design.candidates import candidate_runs
from scalebayes.design.objectives import Objective
from scalebayes.design.weights import Worlds
from scalebayes.errors import ImportanceWarning, ScalebayesError
from scalebayes.formatting import format_number, text_columns
from scalebayes.runtime import in_fit_precision

if TYPE_CHECKING:
    from scalebayes.decision_tables import DecisionTable
    from scalebayes.results import Fit

__all__ = ["NextRuns", "next_runs"]

# Scenarios per candidate. The expected width is their mean; common to all candidates, so the
# ranking compares candidates in the same worlds and its noise is far below a single estimate's.
DEFAULT_OUTCOMES = 32
# Below this share of the draws (or 100 draws) keeping weight, the expected widths are rough.
LOW_ESS_SHARE = 0.1
LOW_ESS_DRAWS = 100


def ess_floor(n_draws: int) -> float:
    """Effective draws the weights must keep for an expected spread to be trusted."""
    return max(LOW_ESS_DRAWS, LOW_ESS_SHARE * n_draws)


# A run is chosen only if its expected reduction exceeds this many Monte Carlo standard errors,
# and this share of the width before it: below 0.1 % a run is not worth training, and the
# float32 weights' rounding (~1e-6 of a width) is never mistaken for information.
SE_MARGIN = 2.0
MIN_SHARE = 1e-3


@dataclass(frozen=True)
class NextRuns:
    """A batch of next runs chosen for an objective, and how every candidate ranked first.

    Attributes
    ----------
    batch : DataFrame
        One row per chosen run, in the order chosen: ``candidate`` (row of the pool, from 0),
        N, D, C, ``cost`` (FLOPs), ``tokens_per_param``, ``width_before`` / ``width_after``
        (the objective's spread, or risk for :class:`~scalebayes.design.AllocationRegret`,
        expected before and after this run, given the runs above it),
        ``reduction_per_flop``, ``reduction_se`` (Monte Carlo standard error of the reduction;
        a run is chosen only if its reduction exceeds twice it, and 0.1 % of the width before
        it) and ``ess`` (median effective
        number of draws under the weights).
    ranking : DataFrame
        Every candidate as the first choice: the same columns, sorted by reduction per FLOP.
    objective : Objective
        What the runs are chosen to make surer.
    width_now : float
        The objective's spread under the fit as it is.
    budget, spent : float
        FLOPs allowed for the batch, and the batch's cost.
    n_draws, outcomes : int
        Posterior draws re-weighted, and simulated outcomes (scenarios) per candidate.
    width_after_path : float
        The spread expected after the batch in the scenarios that chose it (the last row's
        ``width_after``): the best of noisy estimates, so it flatters the batch;
        :attr:`width_after` measures it again in fresh scenarios.
    rule : str
        The greedy that chose the batch: "per FLOP" (most reduction per FLOP) or "by
        reduction" (most reduction within the budget), whichever expects the narrower width.
    ess_limited : bool
        Whether the batch stopped because a further run's effect could not be measured: some
        candidate within the budget would help, but after it the weights would keep fewer
        than :func:`ess_floor` draws. Train the batch, re-fit and ask again.
    """

    batch: pd.DataFrame
    ranking: pd.DataFrame
    objective: Objective
    width_now: float
    budget: float
    spent: float
    n_draws: int
    outcomes: int
    rule: str = "per FLOP"  # which greedy chose the batch: "per FLOP" or "by reduction"
    ess_limited: bool = False
    width_after_fresh: float | None = None  # the batch measured again in fresh scenarios

    @property
    def width_after_path(self) -> float:
        """The spread expected after the batch in the scenarios that chose it."""
        return float(self.batch["width_after"].iloc[-1]) if len(self.batch) else self.width_now

    @property
    def width_after(self) -> float:
        """The objective's spread expected after the whole batch, in fresh scenarios.

        Chosen as the best of noisy estimates, a batch reads better in the scenarios that chose
        it than it is; the same batch in other simulated outcomes is an estimate it did not pick
        (:attr:`width_after_path` is the other).
        """
        if self.width_after_fresh is None or not len(self.batch):
            return self.width_after_path
        return self.width_after_fresh

    @property
    def low_ess(self) -> bool:
        """Whether the weights after the batch keep too few draws for the expected widths to hold."""
        if not len(self.batch):
            return False
        return float(self.batch["ess"].iloc[-1]) < ess_floor(self.n_draws)

    def summary(self) -> pd.DataFrame:
        """The batch table (:attr:`batch`)."""
        return self.batch.copy()

    def decision_table(self, fit: Fit) -> DecisionTable:
        """The batch as the decisions' common form (text, JSON), with ``fit``'s diagnostics."""
        from scalebayes.decision_tables import DecisionTable

        meta = {
            "objective": self.objective.describe(),
            "width_now": self.width_now,
            "width_after": self.width_after,
            "width_after_path": self.width_after_path,
            "budget": self.budget,
            "spent": self.spent,
            "n_draws": self.n_draws,
            "outcomes": self.outcomes,
            "low_ess": self.low_ess,
            "ess_limited": self.ess_limited,
            "rule": self.rule,
        }
        return DecisionTable(fit.law.name, self.batch, str(self), fit.diagnostics, meta)

    def __str__(self) -> str:
        show = self.objective.show
        rows = [
            [str(i + 1), format_number(r["N"]), format_number(r["D"]),
             f"{r['tokens_per_param']:.3g}", format_number(r["cost"]), show(r["width_before"]),
             show(r["width_after"]), f"{r['ess']:.0f}"]
            for i, (_, r) in enumerate(self.batch.iterrows())
        ]  # fmt: skip
        measure = self.objective.measure
        header = ["run", "N", "D", "tokens/param", "cost (FLOPs)", f"{measure} before",
                  f"{measure} after", "ESS"]  # fmt: skip
        lines = [
            f"next runs for the {self.objective.describe()}",
            f"now {show(self.width_now)}; after "
            + ("this run" if len(self.batch) == 1 else f"these {len(self.batch)} runs")
            + ", expected "
            f"{show(self.width_after)}; cost {format_number(self.spent)} of "
            f"{format_number(self.budget)} FLOPs (chosen {self.rule})",
            text_columns(header, rows)
            if rows
            else "no candidate is expected to help within the budget",
            f"note: expected {measure}s re-weight the fit's {self.n_draws} draws under "
            f"{self.outcomes} simulated outcomes per run (ESS: draws' worth of weight left); "
            "re-fit once these runs are trained, before choosing more",
        ]
        if len(self.batch) and self.width_after != self.width_after_path:
            lines.append(
                f"note: the expected {show(self.width_after)} after the batch is measured in "
                f"{self.outcomes} fresh simulated outcomes per run; in those that chose the runs "
                f"(the table's) it reads {show(self.width_after_path)}"
                + (
                    ", which flatters a batch picked as the best of noisy estimates"
                    if self.width_after_path < self.width_after
                    else ""
                )
            )
        if self.ess_limited:
            lines.append(
                f"stopped after {len(self.batch)} run{'s' if len(self.batch) > 1 else ''}: "
                f"what a further run adds cannot be measured on the weights left (fewer than "
                f"{ess_floor(self.n_draws):.0f} draws' worth after it); train these, re-fit and "
                "ask again"
            )
        if self.low_ess:
            lines.append(
                "warning: the weights keep few draws: the widths after are rough; train the "
                "first run, re-fit and ask again"
            )
        return "\n".join(lines)


@in_fit_precision
def next_runs(
    fit: Fit,
    candidates: pd.DataFrame | str | os.PathLike[str],
    *,
    objective: Objective,
    budget: float,
    max_runs: int | None = None,
    outcomes: int = DEFAULT_OUTCOMES,
    seed: int = 0,
) -> NextRuns:
    """The runs to train next: greedy, by expected reduction of the objective's spread.

    Two greedy batches in the same scenarios, by reduction per FLOP and by reduction alone;
    the one that expects the narrower spread is returned (:attr:`NextRuns.rule` says which).

    Parameters
    ----------
    fit : Fit
        The posterior as it is; it is re-weighted, never refitted.
    candidates : DataFrame or path
        Feasible runs: two of N, D, C and an optional ``cost`` column (FLOPs; default
        ``C = k N D``), e.g. :func:`scalebayes.design.candidate_grid`.
    objective : Objective
        What to make surer: :class:`~scalebayes.design.LossAt`, :class:`~scalebayes.design.OptimalN`,
        :class:`~scalebayes.design.ChanceAt`, or the value of information of the allocation,
        :class:`~scalebayes.design.AllocationRegret` (or :func:`~scalebayes.design.make_objective`).
    budget : float
        FLOPs the batch may cost in all.
    max_runs : int, optional
        At most this many runs (default: as many as the budget buys and help).
    outcomes : int
        Simulated outcomes (scenarios) per candidate.
    seed : int
        Seed of the scenarios and their noise.

    Returns
    -------
    NextRuns
        The batch, the first-choice ranking of every candidate, and the spreads before/after.
        Warns :class:`~scalebayes.errors.ImportanceWarning` when the weights after the batch keep
        fewer than 10 % of the draws (or 100).
    """
    if not isinstance(objective, Objective):
        raise ScalebayesError(
            f"objective={objective!r}: expected an Objective (see make_objective)"
        )
    budget = float(budget)
    if not (np.isfinite(budget) and budget > 0):
        raise ScalebayesError(f"budget={budget!r}: expected a positive number of FLOPs")
    if max_runs is not None and (isinstance(max_runs, bool) or int(max_runs) < 1):
        raise ScalebayesError(f"max_runs={max_runs!r}: expected an integer >= 1")
    if isinstance(outcomes, bool) or int(outcomes) < 2:
        raise ScalebayesError(f"outcomes={outcomes!r}: expected an integer >= 2")
    pool = candidate_runs(fit, candidates)
    cost = pool["cost"].to_numpy(float)
    if cost.min() > budget:
        raise ScalebayesError(
            f"budget {budget:.4g} FLOPs is below the cheapest candidate's cost {cost.min():.4g}"
        )

    model = objective.model(fit)
    n_runs = len(pool) if max_runs is None else int(max_runs)
    # Greedy by reduction per FLOP alone can fill the budget with cheap runs that each help a
    # little and miss one dear run that helps most; the better of it and greedy by reduction
    # alone keeps a constant-factor guarantee for a diminishing-returns objective under a
    # budget (Krause & Guestrin 2005, "A note on the budgeted maximization of submodular
    # functions"; Leskovec et al. 2007). Both run in the same scenarios.
    world = Worlds.build(model, objective, pool, int(outcomes), seed)
    fresh = dataclasses.replace(world, log_w=world.log_w.copy())  # same scenarios, none chosen
    first = _candidates_table(world, pool, cost, np.arange(len(pool)))  # shared first step
    per_flop = _greedy(world, pool, cost, budget, n_runs, "reduction_per_flop", first)
    by_reduction = _greedy(fresh, pool, cost, budget, n_runs, "reduction", first)
    width_now, ranking, world = per_flop.width_now, per_flop.ranking, per_flop.world
    chosen = per_flop if per_flop.width_after <= by_reduction.width_after else by_reduction
    rows, spent = chosen.rows, chosen.spent
    columns = ["candidate", "N", "D", "C", "cost", "tokens_per_param", "width_before",
               "width_after", "reduction_per_flop", "reduction_se", "ess"]  # fmt: skip
    batch = pd.DataFrame(rows, columns=columns).reset_index(drop=True)
    batch["candidate"] = batch["candidate"].astype(int)
    # The greedy picks the best of noisy estimates in its scenarios, which flatters the batch
    # (benchmarks/results/design_truth_path.json: over 8 tables the path expected the regret
    # to fall by 0.46, the same batches in 4 x 128 fresh outcomes per run by 0.40); so it is
    # measured again where it was not chosen.
    check = world.afresh(seed)
    for j in batch["candidate"]:
        check.condition(int(j))
    result = NextRuns(
        batch, ranking[columns].reset_index(drop=True), objective, width_now, budget, spent,
        world.n_draws, int(outcomes), "per FLOP" if chosen is per_flop else "by reduction",
        chosen.ess_limited, float(check.spread_now().mean()) if len(batch) else None,
    )  # fmt: skip
    if result.low_ess:
        warnings.warn(
            f"after the batch the importance weights keep about {batch['ess'].iloc[-1]:.0f} of "
            f"{world.n_draws} draws' worth: the expected widths are rough; train the first runs "
            "and re-fit before trusting the rest",
            ImportanceWarning,
            stacklevel=3,
        )
    return result


@dataclass
class _Greedy:
    """One greedy pass: the chosen rows, their cost, the first-choice ranking, the scenarios."""

    rows: list[pd.Series]
    spent: float
    ranking: pd.DataFrame
    width_now: float
    world: Worlds
    ess_limited: bool = False  # stopped where a helpful run's effect could not be measured

    @property
    def width_after(self) -> float:
        return float(self.rows[-1]["width_after"]) if self.rows else self.width_now


def _candidates_table(
    world: Worlds, pool: pd.DataFrame, cost: np.ndarray, wanted: np.ndarray
) -> pd.DataFrame:
    """Each of the ``wanted`` candidates as the next run: its expected width after, and more."""
    now = world.spread_now()  # (M,) per scenario, given the runs chosen so far
    after, ess = world.after(wanted)  # (M, K), (K,)
    gains = now[:, None] - after
    gain = gains.mean(axis=0)
    # Monte Carlo standard error of the expected reduction, over the common scenarios.
    se = gains.std(axis=0, ddof=1) / np.sqrt(gains.shape[0])
    return pool.iloc[wanted].assign(
        candidate=wanted,
        tokens_per_param=pool["D"].to_numpy()[wanted] / pool["N"].to_numpy()[wanted],
        width_before=float(now.mean()),
        width_after=after.mean(axis=0),
        reduction=gain,
        reduction_per_flop=gain / cost[wanted],
        reduction_se=se,
        ess=ess,
    )


def _greedy(
    world: Worlds,
    pool: pd.DataFrame,
    cost: np.ndarray,
    budget: float,
    n_runs: int,
    key: str,
    first: pd.DataFrame | None = None,
) -> _Greedy:
    """Runs chosen one at a time by the most ``key``: the column "reduction" or "reduction_per_flop".

    ``first``: every candidate's table before any run is chosen, if already computed.
    """
    width_now = float(world.spread_now().mean())
    floor = ess_floor(world.n_draws)
    ess_limited = False
    spent = 0.0
    open_ = np.ones(len(pool), dtype=bool)
    rows: list[pd.Series] = []
    ranking = None
    while len(rows) < n_runs:
        wanted = np.flatnonzero(open_ & (cost <= budget - spent))
        if ranking is None:
            wanted = np.arange(len(pool))
        if wanted.size == 0:
            break
        if ranking is None and first is not None:
            table = first
        else:
            table = _candidates_table(world, pool, cost, wanted)
        if ranking is None:
            ranking = table.sort_values("reduction_per_flop", ascending=False, kind="stable")
            table = table[open_[wanted] & (cost[wanted] <= budget)]
        # A reduction within 2 standard errors of zero is noise, not a reason to spend FLOPs.
        reduction = table["width_before"] - table["width_after"]
        helps = (
            (reduction > SE_MARGIN * table["reduction_se"])
            & (reduction > MIN_SHARE * table["width_before"])
            & (reduction > world.resolution)
        )
        # After the first run, only runs whose effect the weights can still measure.
        useful = table[helps & ((not rows) | (table["ess"] >= floor))]
        if useful.empty:
            ess_limited = bool(helps.any())
            break
        best = useful.loc[useful[key].idxmax()]
        j = int(best["candidate"])
        rows.append(best)
        world.condition(j)
        spent += cost[j]
        open_[j] = False
    assert ranking is not None
    return _Greedy(rows, spent, ranking, width_now, world, ess_limited)
