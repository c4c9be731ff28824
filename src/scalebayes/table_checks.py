"""Legal but suspicious tables of runs: each finding is a message naming its rows; runs are kept.

:func:`scalebayes.data.load_runs` warns with them. Besides duplicate runs, tokens that look like
the wrong unit and losses far off the others, three findings say the table may not be what it
is read as: a quantity derived from another (D from C) while a column names it in words, rows
that look like the checkpoints of learning curves, which are not finished runs, and a "loss"
that rises with compute, like an accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from scalebayes.columns import normalise, suggest, telling_apart
from scalebayes.counts import header_unit
from scalebayes.errors import RunsFileError

# A run's loss is "far off" beyond this many robust sd of log loss from the median run's: on
# Epoch's 245 Chinchilla runs (losses 2.1-5.0 across four decades of compute) the farthest is
# 5.4, a loss of 1e6 among them 107. The floor (5 % of the loss) keeps runs of nearly equal
# loss from flagging small differences; tables of fewer runs have no robust spread.
OUTLIER_SDS = 10.0
OUTLIER_SD_FLOOR = 0.05
OUTLIER_MIN_RUNS = 5
# A column labels learning curves when most of its values label rows at one N with at least
# this many distinct D each. Over-training ladders train a size to a handful of horizons
# (Gadre et al. 2024: 6); curves log tens to hundreds of checkpoints (datablations: 60-525).
CURVE_MIN_CHECKPOINTS = 20
# Where no one column names a run, the checks look for one or two columns that do beside N:
# a label each of whose rows is at a distinct D in nine of ten labels ((Mis)Fitting's 17m sweep
# repeats checkpoints within its 16 runs of 240), among this many columns of fewest values.
RUN_KEY_SHARE = 0.9
RUN_KEY_CANDIDATES = 12
# Words in a column's name (normalised) that say it is a hyperparameter swept per run.
HYPERPARAMETERS = ("lr", "learningrate", "weightdecay", "batchsize", "warmup")

# Loss rising with compute across the runs this strongly (Spearman's rank correlation of C and
# loss) is no scaling of a loss: the public tables read -0.64 (Open-Athena's 8 experiments in one
# table) to -0.98 (Epoch's runs); an accuracy or a score where higher is better reads near +1.
RISING_RANK_CORRELATION = 0.5
RISING_MIN_RUNS = 5

# error(problem, column, rows) -> the error naming them (scalebayes.table_files.Raw.error).
ErrorFn = Callable[[str, str | None, np.ndarray | None], RunsFileError]


def suspicious(
    frame: pd.DataFrame,
    table: pd.DataFrame,
    found: Mapping[str, str],
    derived: tuple[str, ...],
    error: ErrorFn,
) -> list[str]:
    """Messages for legal but suspicious rows of ``table`` (the columns read from ``frame``).

    ``found`` maps canonical names to the user's columns, ``derived`` names the quantities
    computed from others (``("D",)`` when D = C / (k N)), ``error`` names rows as the file does.
    """
    notes = _checkpoints(frame, table, found, error)
    keys = ["N", "D", *(key for key in ("U", "group") if key in table)]
    duplicated = table.duplicated(subset=keys, keep=False).to_numpy()
    if duplicated.any() and not notes:  # checkpoints of several runs share (N, D): said above
        groups = table[duplicated].groupby(keys).ngroup().to_numpy()
        apart = telling_apart(frame, duplicated, groups, found.values())
        shown = [f"{name!r} ({n} values)" for name, n in apart]
        seeds = [
            text for (name, _), text in zip(apart, shown, strict=True) if "seed" in normalise(name)
        ]
        hint = "" if "group" in table else "; if they are separate experiments, add a group column"
        if seeds and len(seeds) == len(apart):  # repeats of one run: draws of the noise
            hint = (f"; they differ in {seeds[0]}: repeats of one run over seeds, which measure "
                    "the noise, nothing to do")  # fmt: skip
        elif apart and "group" not in table:
            hint = (f"; columns that tell them apart: {', '.join(shown)}: if they are separate "
                    f"experiments, fit them as groups (--group COLUMN) or one at a time "
                    f"(where={{{apart[0][0]!r}: VALUE}}; CLI: --where {apart[0][0]}=VALUE)")  # fmt: skip
            if any(word in normalise(name) for name, _ in apart for word in HYPERPARAMETERS):
                hint += ("; if they are a hyperparameter sweep, keep each (N, D)'s best run "
                         "(keep_best=True; CLI: --keep-best)")  # fmt: skip
        problem = f"duplicate runs (same {' and '.join(keys)}), all kept{hint}"
        notes.append(str(error(problem, None, duplicated)))
    notes += _derived_beside_a_named_column(frame, found, derived, error)
    tiny = (table["D"] < table["N"] / 1e3).to_numpy()
    if tiny.any():
        column = found.get("D", found.get("C"))
        base = unit.base if (unit := header_unit(column)) is not None else column
        problem = (
            "fewer than 1 token per 1000 parameters: are tokens (or FLOPs) given in billions? "
            f"A unit at the end of the column's name counts in it: '{base} (B)'"
        )
        notes.append(str(error(problem, column, tiny)))
    high = (table["loss"] > 20).to_numpy()
    if high.any():
        problem = "loss above 20 nats/token: is it a summed loss, a perplexity or in other units?"
        notes.append(str(error(problem, found["loss"], high)))
    notes += _rising(table, found, error)
    far = far_off(np.log(table["loss"].to_numpy(float)))
    if far.any():
        median = float(np.exp(np.median(np.log(table["loss"]))))
        problem = (
            f"loss far off every other run (log loss more than {OUTLIER_SDS:g} robust sd from "
            f"the median run's, {median:.3g}): a typo, another unit or a diverged run? kept"
        )
        notes.append(str(error(problem, found["loss"], far)))
    return notes


def far_off(log_loss: np.ndarray) -> np.ndarray:
    """Runs whose log loss lies more than :data:`OUTLIER_SDS` robust sd from the median."""
    if log_loss.size < OUTLIER_MIN_RUNS:
        return np.zeros(log_loss.shape, bool)
    centre = np.median(log_loss)
    # 1.4826 MAD: the sd of a normal sample, robust to the outliers it looks for.
    spread = max(1.4826 * float(np.median(np.abs(log_loss - centre))), OUTLIER_SD_FLOOR)
    return np.abs(log_loss - centre) > OUTLIER_SDS * spread


def _rising(table: pd.DataFrame, found: Mapping[str, str], error: ErrorFn) -> list[str]:
    """A loss that rises with compute across the runs (an accuracy or a score, not a loss)."""
    if len(table) < RISING_MIN_RUNS or min(table["C"].nunique(), table["loss"].nunique()) < 2:
        return []
    rho = float(table["C"].rank().corr(table["loss"].rank()))  # Spearman's: Pearson's of ranks
    if not rho >= RISING_RANK_CORRELATION:
        return []
    problem = (
        f"the loss rises with compute across the runs (Spearman rank correlation {rho:+.2f} "
        "between C and loss): a scaling law describes a loss that falls as compute grows; is "
        "this an accuracy or a score where higher is better? kept"
    )
    return [str(error(problem, found["loss"], None))]


def _derived_beside_a_named_column(
    frame: pd.DataFrame, found: Mapping[str, str], derived: tuple[str, ...], error: ErrorFn
) -> list[str]:
    """D computed from C while an unread column names tokens in words.

    (C computed from N and D beside a FLOPs column is left alone: the law reads N and D.)
    """
    unread = [name for name in frame.columns if name not in found.values()]
    names = suggest(unread).get("D", [])
    if "D" not in derived or not names:
        return []
    problem = (
        f"D derived as C / (k N), but column(s) {', '.join(map(repr, names))} may be D: if so, "
        f"map it with columns={{'D': {names[0]!r}}} (CLI: --column D={names[0]})"
    )
    return [str(error(problem, None, None))]


def _checkpoints(
    frame: pd.DataFrame, table: pd.DataFrame, found: Mapping[str, str], error: ErrorFn
) -> list[str]:
    """Rows that look like the checkpoints of learning curves: by a run column, or by size."""
    points = pd.DataFrame({"N": table["N"].to_numpy(), "D": table["D"].to_numpy()})
    advice = (
        "A checkpoint in the middle of a run's schedule is not a run planned to stop there: "
        "fit the finished runs with --run-id {run} (sb.load_curves(..., run={key})); kept as given"
    )
    for name in _single_columns(frame):
        if name in found.values():
            continue
        labels = frame[name].reset_index(drop=True)
        try:
            n_labels = labels.nunique(dropna=False)
        except TypeError:  # unhashable cells (lists in a DataFrame) name no runs
            continue
        # Most labels must hold CURVE_MIN_CHECKPOINTS rows: so few labels, cheaply checked
        # first (a W&B export has hundreds of columns of distinct floats).
        if n_labels < 2 or n_labels > 2 * len(labels) / CURVE_MIN_CHECKPOINTS:
            continue
        curves = _curves(points.groupby(labels, dropna=False), one_curve=True)
        if curves is None:
            continue
        rows = labels.isin(curves.index).to_numpy()
        problem = (
            f"these look like checkpoints of learning curves: column {name!r} labels "
            f"{len(curves)} runs of {_span(curves)} rows, each at one N and growing D. "
        ) + advice.format(run=name, key=repr(name))
        return [str(error(problem, None, rows))]
    # No one column names a run (misfitting's runs are a size, a horizon and a learning rate).
    sizes = _curves(points.groupby("N"), one_curve=False)
    if sizes is None:
        return []
    key = _run_key(frame, points, found)
    run = " ".join(key) if key else "and the columns that together name a run"
    problem = (
        f"these look like checkpoints of learning curves: {len(sizes)} model sizes with "
        f"{_span(sizes)} rows each, at {CURVE_MIN_CHECKPOINTS} or more token counts. "
    ) + advice.format(run=run, key=repr(key) if key else "[...]")
    if key:
        problem += (
            f" ({' and '.join(map(repr, key[1:]))} with N name runs of one curve each; "
            "--step and --end say where a schedule ends, if a column has it)"
        )
    return [str(error(problem, None, points["N"].isin(sizes.index).to_numpy()))]


def _run_key(frame: pd.DataFrame, points: pd.DataFrame, found: Mapping[str, str]) -> list[str]:
    """N's column and the one or two columns that with it name runs (one curve each), or [].

    Of the keys whose labels are one curve (no D twice) in :data:`RUN_KEY_SHARE` of labels,
    the one naming the most runs: a coarser key merges runs whose checkpoints never meet.
    """
    import itertools

    limit = 2 * len(points) / CURVE_MIN_CHECKPOINTS
    counts = {}
    for name in _single_columns(frame):
        if name in found.values():
            continue
        try:
            n_values = frame[name].nunique(dropna=False)
        except TypeError:
            continue
        if 2 <= n_values <= limit:
            counts[name] = n_values
    candidates = sorted(counts, key=counts.__getitem__)[:RUN_KEY_CANDIDATES]
    for size in (1, 2):
        keys = []
        for combo in itertools.combinations(candidates, size):
            labels = [points["N"], *(frame[name].reset_index(drop=True) for name in combo)]
            groups = points.groupby(labels, dropna=False)["D"]
            one_curve = (groups.nunique() == groups.size()).mean() >= RUN_KEY_SHARE
            if one_curve and groups.ngroups <= len(points) / 2:
                keys.append((groups.ngroups, -sum(counts[name] for name in combo), combo))
        if keys:
            return [found["N"], *max(keys)[2]]
    return []


def _curves(groups: pd.api.typing.DataFrameGroupBy, one_curve: bool) -> pd.Series | None:
    """Rows per group where most groups look like curves (:data:`CURVE_MIN_CHECKPOINTS` D's).

    ``one_curve``: each group must also be one run: one N and no D twice (a column naming
    sizes, whose runs reach the same D, is no run column).
    """
    checkpoints = groups["D"].nunique()
    looks = checkpoints >= CURVE_MIN_CHECKPOINTS
    if one_curve:
        looks &= (groups["N"].nunique() == 1) & (checkpoints == groups.size())
    if looks.mean() <= 0.5:
        return None
    return groups.size()[looks]


def _span(counts: pd.Series) -> str:
    """``"60-525"``, or ``"30"`` when all are equal."""
    low, high = int(counts.min()), int(counts.max())
    return f"{low}-{high}" if high > low else f"{low}"


def _single_columns(frame: pd.DataFrame) -> list[str]:
    """Column names that appear once (a repeated name selects several columns)."""
    names = list(frame.columns)
    return [name for name in names if names.count(name) == 1]
