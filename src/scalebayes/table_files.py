"""A user's table file as scalebayes reads it: CSV, TSV or Parquet, with each row's line.

A leaf below :mod:`scalebayes.data`: cells stay text (CSV, TSV) so that every number is parsed
and checked where it is read, and each row keeps the line an editor shows for it, so that every
message names rows as the file numbers them.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from scalebayes.errors import RunsFileError, ScalebayesError

# Accepted suffixes and their field separators (None: Parquet).
SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}
SPREADSHEETS = frozenset({".xlsx", ".xls", ".xlsm", ".ods", ".numbers"})


def read_table(source: str | os.PathLike[str]) -> tuple[pd.DataFrame, list[int]]:
    """A CSV, TSV or Parquet file as :func:`load_runs` reads it, and each row's line number.

    CSV and TSV cells stay text; lines are the file's own (header = line 1, blank lines
    counted), Parquet rows numbered from 2 as if written out with the header. Used for tables
    of planned runs, so that their errors name lines as the runs' do.
    """
    raw = read_raw(os.fspath(source))
    return raw.frame, [int(line) for line in raw.row_names]


@dataclass(frozen=True)
class Raw:
    """The user's table as read, with what is needed to point at its rows."""

    frame: pd.DataFrame
    label: str  # the path as given, or "<DataFrame>"
    row_label: str  # "line" (file line numbers, header = 1) or "row" (DataFrame index labels)
    row_names: np.ndarray  # what each row is called in messages

    def error(
        self, problem: str, column: str | None = None, mask: np.ndarray | None = None
    ) -> RunsFileError:
        """The error naming the file, the rows where ``mask`` holds and the column."""
        rows = None if mask is None else self.row_names[mask].tolist()
        return RunsFileError(
            self.label, problem, column=column, rows=rows, row_label=self.row_label
        )


def read_raw(source: str | os.PathLike[str] | pd.DataFrame) -> Raw:
    """The table at ``source`` (or a DataFrame, its rows named by index labels), as read."""
    if isinstance(source, pd.DataFrame):
        return Raw(source, "<DataFrame>", "row", source.index.to_numpy())
    label = os.fspath(source)
    path = Path(label)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        spreadsheet = "; save the sheet as CSV" if suffix in SPREADSHEETS else ""
        raise RunsFileError(
            label,
            f"unknown file type {suffix or '(none)'!r}; expected one of {', '.join(SUFFIXES)}"
            + spreadsheet,
        )
    if not path.is_file():
        raise RunsFileError(label, "not a file" if path.exists() else "no such file")
    separator = SUFFIXES[suffix]
    if separator is None:
        return _read_parquet(path, label)
    frame, lines = _read_text(path, label, separator)
    return Raw(frame, label, "line", np.asarray(lines))


def _read_parquet(path: Path, label: str) -> Raw:
    try:
        frame = pd.read_parquet(path)
    except ImportError as err:
        raise ScalebayesError(
            f'{label}: reading Parquet needs pyarrow: pip install "scalebayes[parquet]"'
        ) from err
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise RunsFileError(label, f"cannot be read as Parquet: {err}") from err
    # A Parquet file has no lines: its rows are numbered as lines of the same table written
    # out with its header (the first run is line 2), as for CSV; its index is not the user's.
    return Raw(frame, label, "line", np.arange(len(frame)) + 2)


def _read_text(path: Path, label: str, separator: str) -> tuple[pd.DataFrame, list[int]]:
    """Every cell as text, and the line each row starts on.

    Read with the csv module rather than pandas so that line numbers stay the file's own across
    blank lines and quoted line breaks, and so that no cell becomes a number or NaN here.
    """
    records: list[list[str]] = []
    lines: list[int] = []
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            separator = _separator(handle, separator)
            reader = csv.reader(handle, delimiter=separator, skipinitialspace=True, strict=True)
            start = 1
            for record in reader:
                if any(cell.strip() for cell in record):  # blank lines are skipped, not rows
                    records.append(record)
                    lines.append(start)
                start = reader.line_num + 1
    except UnicodeDecodeError as err:
        raise RunsFileError(
            label, f"not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
        ) from err
    except csv.Error as err:
        raise RunsFileError(label, f"line {reader.line_num}: not valid CSV ({err})") from err
    if not records:
        raise RunsFileError(label, "the file is empty (no header, no runs)")
    header, rows = [name.strip() for name in records[0]], records[1:]
    ragged = [line for line, row in zip(lines[1:], rows, strict=True) if len(row) != len(header)]
    if ragged:
        raise RunsFileError(
            label,
            f"expected {len(header)} fields as in the header (line {lines[0]}); check the "
            "separator, the quoting and trailing separators",
            rows=ragged,
            row_label="line",
        )
    return pd.DataFrame(rows, columns=header, dtype=object), lines[1:]


def _separator(handle: TextIO, separator: str) -> str:
    """``separator``, or ";" for a .csv whose header has semicolons and no commas.

    Spreadsheets in locales with a decimal comma write CSV with semicolons. ``handle`` is left
    at its start.
    """
    header = next((line for line in handle if line.strip()), "")
    handle.seek(0)
    if separator == "," and "," not in header and ";" in header:
        return ";"
    return separator
