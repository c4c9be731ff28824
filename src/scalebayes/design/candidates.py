"""Feasible next runs: a table the user gives, or isoFLOP sweeps generated at chosen budgets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalebayes.errors import ScalebayesError

if TYPE_CHECKING:
    from scalebayes.results import Fit

__all__ = ["candidate_grid", "candidate_runs"]

# Tokens per parameter of a generated sweep: from far below Chinchilla's 20 to far above it,
# so that a pool always holds runs off whatever ratio the fitted ladder kept.
DEFAULT_TOKENS_PER_PARAM = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


def candidate_grid(
    budgets: ArrayLike,
    *,
    tokens_per_param: Sequence[float] = DEFAULT_TOKENS_PER_PARAM,
    cost_k: float = 6.0,
    unique_tokens: float | None = None,
) -> pd.DataFrame:
    """IsoFLOP sweeps as candidates: at each budget C, one run per tokens-per-parameter ratio r.

    ``N = sqrt(C / (k r))`` and ``D = r N``, so ``k N D = C``.

    Parameters
    ----------
    budgets : array-like of float
        Training compute of each sweep, FLOPs.
    tokens_per_param : sequence of float
        Ratios D / N of each sweep's runs.
    cost_k : float
        FLOPs per parameter per token.
    unique_tokens : float, optional
        Unique tokens every run trains on (a U column), for a law of repeated data.

    Returns
    -------
    DataFrame
        Columns N, D, C, cost (= C) (and U), ``len(budgets) * len(tokens_per_param)`` rows.
    """
    c = np.atleast_1d(np.asarray(budgets, dtype=float))
    r = np.atleast_1d(np.asarray(tokens_per_param, dtype=float))
    checked = [("budgets", c), ("tokens_per_param", r), ("cost_k", np.array([cost_k]))]
    if unique_tokens is not None:
        checked.append(("unique_tokens", np.array([unique_tokens], dtype=float)))
    for name, values in checked:
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
            raise ScalebayesError(f"{name}: expected one or more positive finite numbers")
    cc, rr = np.meshgrid(c, r, indexing="ij")
    n = np.sqrt(cc / (cost_k * rr)).ravel()
    d = rr.ravel() * n
    grid = pd.DataFrame({"N": n, "D": d, "C": cc.ravel(), "cost": cc.ravel()})
    return grid if unique_tokens is None else grid.assign(U=float(unique_tokens))


def candidate_runs(fit: Fit, candidates: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """Candidates as columns N, D, C and cost (FLOPs), checked; C from the fit's ``C = k N D``.

    ``candidates`` is a table (DataFrame, CSV, TSV or Parquet) with two of N, D, C under any
    name :func:`scalebayes.load_runs` accepts and an optional ``cost`` column (default ``C``,
    i.e. ``k N D``); for a law of repeated data, a U column too. Errors name the file's lines
    (header = line 1).
    """
    from scalebayes.prediction import planned_points, points_from_table, positive_column
    from scalebayes.table_files import read_table

    if isinstance(candidates, pd.DataFrame):
        table, lines, source = candidates, None, "<candidates>"
    else:
        table, lines = read_table(candidates)
        source = os.fspath(candidates)
    if len(table) == 0:
        raise ScalebayesError(f"{source}: no candidate runs")
    found = points_from_table(table, source=source, lines=lines)
    if "U" in fit.law.inputs and "U" not in found:
        raise ScalebayesError(
            f"{source}: law {fit.law.name!r} reads U, the unique tokens: give the candidates a U "
            "column (how many each would train on), or a grid with unique_tokens= "
            "(--unique-tokens U)"
        )
    points = planned_points(fit, **found)
    cost_columns = [c for c in table.columns if _is_cost(c)]
    if cost_columns:
        cost = positive_column(
            table, cost_columns[0], source=source, lines=lines, what="cost (FLOPs)", key="C"
        )
    else:
        cost = points["C"].to_numpy(float)
    return points.assign(cost=cost).reset_index(drop=True)


def _is_cost(name: object) -> bool:
    """Whether a column is the candidates' cost: ``cost``, or with a unit, ``cost (PF-days)``."""
    from scalebayes.columns import normalise
    from scalebayes.counts import header_unit

    unit = header_unit(name)
    return normalise(name) == "cost" or (unit is not None and normalise(unit.base) == "cost")
