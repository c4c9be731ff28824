"""Learning-curve tables: every evaluated checkpoint of every run, reduced to finished runs.

Approach 1 (Hoffmann et al. 2022) reads the lower envelope of loss over runs. Under a cosine
schedule that decays to the end of each run, a checkpoint in the middle of a run is not the
loss a run planned to stop there would reach, so only each run's final checkpoint is a
finished run at its (N, D); a checkpoint marked as cooled down (a constant-then-decay run's
decay end) is one too. :func:`load_curves` keeps those and says what it kept and dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalebayes.data import Runs, best_per_point, load_runs
from scalebayes.errors import DataWarning, RunsFileError, ScalebayesError
from scalebayes.row_selection import Where, select
from scalebayes.table_files import read_table


@dataclass(frozen=True)
class Curves:
    """The finished runs of a learning-curve table and what was used to find them.

    ``runs`` holds one row per finished run (its final, or a cooled-down, checkpoint), named
    by the file's lines; ``checkpoints`` and ``n_runs`` count the table's rows and runs;
    ``dropped`` maps a reason to the number of runs left out for it; ``cells`` counts the
    (N, D) points reached by more than one finished run (learning-rate sweeps, say), and
    ``kept_best`` whether only the run of least loss at each was kept.
    """

    runs: Runs
    checkpoints: int
    n_runs: int
    dropped: Mapping[str, int]
    cells: int
    kept_best: bool = False

    def __str__(self) -> str:
        left = "; ".join(f"{n} {why}" for why, n in self.dropped.items() if n)
        shared = f"; {self.cells} (N, D) points reached by several runs" if self.cells else ""
        if self.cells:
            shared += (
                ", of which the run of least loss each was kept (keep_best)"
                if self.kept_best
                else " (a learning-rate sweep? keep_best=True, CLI --keep-best, keeps each "
                "one's run of least loss, the tuned run a law describes)"
            )
        return (
            f"{len(self.runs)} finished runs from {self.checkpoints} checkpoints of "
            f"{self.n_runs} runs in {self.runs.source} (each run's final checkpoint; "
            f"mid-schedule checkpoints are not finished runs){'; dropped ' + left if left else ''}"
            f"{shared}"
        )


def load_curves(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    run: str | Sequence[str],
    step: str | None = None,
    end: str | None = None,
    cooled: str | None = None,
    columns: Mapping[str, str | None] | None = None,
    cost_k: float = 6.0,
    accept_inconsistent_c: bool = False,
    where: Where | None = None,
    keep_best: bool = False,
) -> Curves:
    """Read a learning-curve table and keep the checkpoints that are finished runs.

    Parameters
    ----------
    source : path or DataFrame
        One row per evaluated checkpoint, with N, loss and D (tokens seen) or C, as
        :func:`~scalebayes.data.load_runs` reads them.
    run : str or sequence of str
        Column(s) whose values together identify one run (one curve).
    step : str, optional
        Column giving a checkpoint's position in its run (e.g. optimiser steps); default the
        tokens seen (the table's D column).
    end : str, optional
        Column giving the step at which the run's schedule ends. A run whose last checkpoint
        is before it is unfinished and dropped; one with a checkpoint beyond it is
        inconsistent and dropped.
    cooled : str, optional
        Boolean column (true/false, 1/0) marking checkpoints taken after a cool-down, which
        count as finished runs too.
    columns, cost_k, accept_inconsistent_c
        As in :func:`~scalebayes.data.load_runs` (checked on the finished runs).
    where : mapping, optional
        Read only these rows, as :func:`~scalebayes.data.load_runs` does.
    keep_best : bool
        Of the finished runs that share N and D (a learning-rate sweep per size and horizon),
        keep the one of least loss, as :func:`~scalebayes.data.load_runs` does; approach 1's
        envelope takes the least loss anyway, a law's fit needs the tuned runs alone.

    Returns
    -------
    Curves
        ``curves.runs`` are the finished runs; ``str(curves)`` says how many of what were used.

    Raises
    ------
    RunsFileError
        A named column missing or not numeric, naming the file's lines; or no finished run.
    """
    frame, names, label, row_label = _frame(source)
    if where:
        error = functools.partial(RunsFileError, label)
        frame, names, label = select(frame, names, label, where, error)
    keys = [run] if isinstance(run, str) else list(run)
    for name in [*keys, *(c for c in (step, end, cooled) if c is not None)]:
        if name not in frame.columns:
            raise RunsFileError(
                label, f"column {name!r} not found; columns are {list(frame.columns)}"
            )
    if step is None:
        found = [c for c in frame.columns if c == (columns or {}).get("D", "D")]
        if not found:
            raise RunsFileError(label, "no tokens column 'D' to order checkpoints; pass step=")
        step = found[0]
    position = _numbers(frame, step, names, label, row_label)
    ends = None if end is None else _numbers(frame, end, names, label, row_label)
    marked = np.zeros(len(frame), bool) if cooled is None else _flags(frame[cooled])
    ids = frame[keys].astype(str).agg("\x1f".join, axis=1).to_numpy()

    keep = np.zeros(len(frame), bool)
    dropped = {"runs with a repeated step (the run columns do not identify one curve)": 0,
               "runs with a checkpoint beyond their schedule's end": 0,
               "runs stopped before their schedule's end": 0}  # fmt: skip
    reasons = list(dropped)
    for rows in pd.Series(np.arange(len(frame))).groupby(ids).indices.values():
        steps = position[rows]
        if len(np.unique(steps)) < len(steps):
            dropped[reasons[0]] += 1
            continue
        last = rows[np.argmax(steps)]
        if ends is not None:
            if np.any(steps > ends[rows]):
                dropped[reasons[1]] += 1
                continue
            if not np.isclose(position[last], ends[last], rtol=1e-6):
                dropped[reasons[2]] += 1
                keep[rows] = marked[rows]
                continue
        keep[last] = True
        keep[rows] |= marked[rows]
    if not keep.any():
        raise RunsFileError(label, f"no finished run among {len(set(ids))} runs ({dropped})")
    kept = frame[keep].copy()
    kept.index = names[keep]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            runs = load_runs(
                kept, columns=columns, cost_k=cost_k, accept_inconsistent_c=accept_inconsistent_c
            )
        except RunsFileError as err:  # name the file and its lines, not the kept DataFrame
            raise _renamed(err, label, row_label) from None
    for w in caught:  # several runs at one (N, D) is what a learning-rate sweep is
        if "duplicate runs" not in str(w.message):
            text = _renamed_text(str(w.message), label, row_label)
            warnings.warn(text, w.category, stacklevel=2)
    runs = dataclasses.replace(runs, source=label, row_label=row_label)
    points = pd.DataFrame({"N": runs.N, "D": runs.D})
    cells = int((points.value_counts() > 1).sum())
    if keep_best:
        runs = runs.subset(best_per_point(runs.table))
    return Curves(runs, len(frame), len(set(ids)), dropped, cells, keep_best)


def _renamed(err: RunsFileError, label: str, row_label: str) -> RunsFileError:
    """``err`` from the kept rows (index: the source's row names) as the source's own error."""
    prefix = str(RunsFileError("<DataFrame>", "", column=err.column, rows=err.rows))
    problem = str(err)[len(prefix) :] if str(err).startswith(prefix) else str(err)
    return RunsFileError(label, problem, column=err.column, rows=err.rows, row_label=row_label)


def _renamed_text(text: str, label: str, row_label: str) -> str:
    """A message about the kept rows (``<DataFrame>: rows ...``) about the source's lines."""
    prefix = "<DataFrame>: "
    if not text.startswith(prefix):
        return text
    rest = text[len(prefix) :]
    if rest.startswith("row"):  # "rows 3, 7" or "row 3": the kept rows keep the source's names
        rest = row_label + rest[len("row") :]
    return f"{label}: {rest}"


def _frame(
    source: str | os.PathLike[str] | pd.DataFrame,
) -> tuple[pd.DataFrame, np.ndarray, str, str]:
    """The table, each row's name in messages, the source's label and what a row is called."""
    if isinstance(source, pd.DataFrame):
        return source, source.index.to_numpy(), "<DataFrame>", "row"
    frame, lines = read_table(source)
    return frame.reset_index(drop=True), np.asarray(lines), os.fspath(source), "line"


def _numbers(
    frame: pd.DataFrame, column: str, names: np.ndarray, label: str, row_label: str
) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise RunsFileError(
            label, "expected a number", column=column, rows=names[bad].tolist(), row_label=row_label
        )
    return values


def _flags(values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    known = text.isin(["true", "false", "1", "0", "1.0", "0.0", "yes", "no"])
    if not known.all():
        raise ScalebayesError(f"cooled column: expected true/false, got {values[~known].iloc[0]!r}")
    return text.isin(["true", "1", "1.0", "yes"]).to_numpy()
