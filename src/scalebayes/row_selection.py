"""Which rows of a table to read: ``where={"experiment": "llama_3__raw_loss"}``.

A leaf: :func:`scalebayes.data.load_runs` and :func:`scalebayes.curves.load_curves` read only the
rows whose columns hold the values asked for, so one file of many experiments (Open-Athena's
isoFLOP table, a W&B export with a QC column) is fitted one experiment at a time without
editing it. Rows keep their lines in the file: messages name them as the file numbers them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from scalebayes.errors import RunsFileError

# At most this many of a column's values are listed when none matched.
SHOWN_VALUES = 12
_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})

Where = Mapping[str, object | Sequence[object]]


def select(
    frame: pd.DataFrame,
    names: np.ndarray,
    label: str,
    where: Where,
    error: Callable[[str], RunsFileError],
) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The rows ``where`` asks for, their names in messages, and the selection's label.

    The label names the source and the selection: ``"runs.csv where experiment=b"``.
    """
    keep = selected_rows(frame, where, error)
    return frame[keep].reset_index(drop=True), names[keep], f"{label} {describe(where)}"


def selected_rows(
    frame: pd.DataFrame, where: Where, error: Callable[[str], RunsFileError]
) -> np.ndarray:
    """Boolean mask of the rows where every named column holds one of its values.

    A value matches a text cell by its text (surrounding spaces ignored), a number by value
    (``1e20`` matches ``1e+20``), a true/false cell by any of true/false, 1/0, yes/no.
    ``error(problem)`` makes the error raised for an unknown column or a selection of no rows.
    """
    mask = np.ones(len(frame), bool)
    for column, wanted in where.items():
        if column not in frame.columns:
            raise error(f"where: column {column!r} not found; columns are {list(frame.columns)}")
        values = _values(wanted)
        hits = np.zeros(len(frame), bool)
        for value in values:
            hits |= _matches(frame[column], value)
        if not (mask & hits).any():
            present = pd.unique(frame[column].astype(str).str.strip())
            shown = ", ".join(repr(v) for v in present[:SHOWN_VALUES])
            more = f" and {len(present) - SHOWN_VALUES} more" if len(present) > SHOWN_VALUES else ""
            raise error(
                f"where: no row has {column} = {' or '.join(repr(str(v)) for v in values)}"
                f"{' among the rows selected so far' if not mask.all() else ''}; its values "
                f"are {shown}{more}"
            )
        mask &= hits
    return mask


def describe(where: Where) -> str:
    """The selection as the runs' source names it: ``"where experiment=llama_3__raw_loss"``."""
    parts = []
    for column, wanted in where.items():
        parts.append(f"{column}={'|'.join(str(v) for v in _values(wanted))}")
    return "where " + " and ".join(parts)


def _values(wanted: object | Sequence[object]) -> list[object]:
    """One accepted value, or several, as a list."""
    return [wanted] if isinstance(wanted, str) or not isinstance(wanted, Sequence) else list(wanted)


def _matches(cells: pd.Series, value: object) -> np.ndarray:
    """Which cells hold ``value``: as text, as a number or as a true/false flag."""
    text = str(value).strip()
    present = cells.notna().to_numpy()
    if pd.api.types.is_bool_dtype(cells):
        cells = cells.astype(str)
    strings = cells.astype(str).str.strip()
    hits = (strings == text).to_numpy(copy=True)
    try:  # "1e20" is the cell "1e+20"; a CSV's cells are text
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        numbers = pd.to_numeric(strings, errors="coerce").to_numpy(float)
        hits |= np.isclose(numbers, number, rtol=1e-9, atol=0.0) | (numbers == number)
    flag = text.lower()
    if flag in _TRUE | _FALSE:  # "False" in a column of False/false/0
        hits |= strings.str.lower().isin(_TRUE if flag in _TRUE else _FALSE).to_numpy()
    return hits & present
