"""Cost-aware experimental design: which runs to train next, chosen from the posterior.

:func:`next_runs` ranks candidate runs by the expected reduction of an objective's uncertainty
per FLOP (importance re-weighting of the fit's draws, no refit) and picks a batch greedily.
Objectives are components (:mod:`scalebayes.design.objectives`); candidates are a table or
generated isoFLOP sweeps (:mod:`scalebayes.design.candidates`).
"""

from __future__ import annotations

from scalebayes.design.candidates import candidate_grid, candidate_runs
from scalebayes.design.objectives import (
    OBJECTIVES,
    AllocationRegret,
    ChanceAt,
    LossAt,
    LossOver,
    Objective,
    OptimalN,
    RunLossAt,
    make_objective,
)
from scalebayes.design.selection import NextRuns, next_runs

__all__ = [
    "OBJECTIVES",
    "AllocationRegret",
    "ChanceAt",
    "LossAt",
    "LossOver",
    "NextRuns",
    "Objective",
    "OptimalN",
    "RunLossAt",
    "candidate_grid",
    "candidate_runs",
    "make_objective",
    "next_runs",
]
