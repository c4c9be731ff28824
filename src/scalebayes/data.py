"""Load and validate a table of training runs.

Canonical columns: ``N`` (parameters), ``D`` (training tokens), ``C`` (training FLOPs),
``loss`` (final loss, nats/token); optional ``group`` and ``weight``. Columns are found by
the names people already use, or mapped explicitly. Bad values are errors that name the
file, the rows and the column; nothing is dropped or coerced silently.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalebayes.errors import DataWarning, RunsFileError, ScalebayesError

NUMERIC = ("N", "D", "C", "loss", "weight")
OPTIONAL = ("group", "weight")

# Normalised names (lower case, no spaces, underscores or dashes) people use for each column.
ALIASES: dict[str, tuple[str, ...]] = {
    "N": (
        "n",
        "modelsize",
        "params",
        "parameters",
        "nparams",
        "numparams",
        "nparameters",
        "paramcount",
        "parametercount",
        "modelparams",
    ),
    "D": (
        "d",
        "tokens",
        "ntokens",
        "numtokens",
        "trainingtokens",
        "traintokens",
        "datasize",
        "datasetsize",
        "data",
    ),
    "C": ("c", "trainingflop", "trainingflops", "flop", "flops", "compute", "trainingcompute"),
    "loss": ("loss", "valloss", "evalloss", "finalloss", "validationloss", "testloss", "trainloss"),
    "group": ("group", "groups"),
    "weight": ("weight", "weights"),
}

SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}


@dataclass(frozen=True)
class Runs:
    """Validated training runs.

    ``table`` has columns N, D, C, loss (float64) and, when given, group (str) and weight
    (float64), one row per run with index 0..n-1.
    """

    table: pd.DataFrame
    source: str
    cost_k: float = 6.0
    column_map: Mapping[str, str] = field(default_factory=dict)
    derived: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.table)

    @property
    def N(self) -> np.ndarray:
        """Parameters per run, shape (n,)."""
        return self.table["N"].to_numpy(float)

    @property
    def D(self) -> np.ndarray:
        """Training tokens per run, shape (n,)."""
        return self.table["D"].to_numpy(float)

    @property
    def C(self) -> np.ndarray:
        """Training compute per run, FLOPs, shape (n,)."""
        return self.table["C"].to_numpy(float)

    @property
    def loss(self) -> np.ndarray:
        """Final loss per run, nats/token, shape (n,)."""
        return self.table["loss"].to_numpy(float)

    @property
    def group(self) -> np.ndarray | None:
        """Group label per run, or None."""
        return self.table["group"].to_numpy(str) if "group" in self.table else None

    @property
    def weight(self) -> np.ndarray | None:
        """Likelihood weight per run, or None."""
        return self.table["weight"].to_numpy(float) if "weight" in self.table else None

    def inputs(self) -> dict[str, np.ndarray]:
        """Inputs a law may use: ``{"N", "D", "C"}`` as float64 arrays of shape (n,)."""
        return {name: self.table[name].to_numpy(float) for name in ("N", "D", "C")}

    def log_inputs(self) -> dict[str, np.ndarray]:
        """Natural logs of :meth:`inputs`."""
        return {name: np.log(values) for name, values in self.inputs().items()}

    def to_frame(self) -> pd.DataFrame:
        """A copy of the table."""
        return self.table.copy()

    def subset(self, mask: np.ndarray) -> Runs:
        """The runs where ``mask`` is True (re-indexed from 0)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise ScalebayesError(f"subset mask has shape {mask.shape}; expected ({len(self)},)")
        table = self.table[mask].reset_index(drop=True)
        return Runs(table, self.source, self.cost_k, dict(self.column_map), self.derived)

    def __str__(self) -> str:
        def span(name: str, fmt: str) -> str:
            values = self.table[name]
            return f"{name} {values.min():{fmt}}-{values.max():{fmt}}"

        formula = {"C": f"C = {self.cost_k:g} N D", "D": f"D = C / ({self.cost_k:g} N)"}
        derived = "".join(f"; derived {formula[name]}" for name in self.derived)
        groups = f"; {self.table['group'].nunique()} groups" if "group" in self.table else ""
        return (
            f"{len(self)} runs from {self.source}: {span('N', '.2e')}, {span('D', '.2e')}, "
            f"{span('C', '.2e')}, {span('loss', '.3f')}{groups}{derived}"
        )


def load_runs(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    cost_k: float = 6.0,
    c_rtol: float = 0.1,
    accept_inconsistent_c: bool = False,
) -> Runs:
    """Read and validate a table of runs from CSV, TSV, Parquet or a DataFrame.

    Parameters
    ----------
    source : path or DataFrame
        The table; a DataFrame is never modified.
    columns : mapping, optional
        Explicit ``{canonical: your column}``, e.g. ``{"N": "non-embedding params"}``; wins over
        the recognised names.
    cost_k : float
        FLOPs per parameter per token: the missing one of C and D is derived from ``C = k N D``.
    c_rtol : float
        When C, N and D are all given, each row must satisfy ``|C - k N D| <= c_rtol * C``.
    accept_inconsistent_c : bool
        Keep C as given where it breaks that check (with a warning) instead of failing.

    Returns
    -------
    Runs

    Raises
    ------
    RunsFileError
        Naming the file, the rows (file line numbers, or DataFrame index labels) and the column.
    """
    if not cost_k > 0:
        raise ScalebayesError(
            f"cost_k={cost_k!r}: expected a positive number of FLOPs per parameter-token"
        )
    frame, label, row_label, row_names = _read(source)
    found = _match_columns(frame, label, columns or {})

    def fail(
        problem: str, column: str | None = None, mask: np.ndarray | None = None
    ) -> RunsFileError:
        rows = list(np.asarray(row_names)[mask]) if mask is not None else None
        return RunsFileError(label, problem, column=column, rows=rows, row_label=row_label)

    if len(frame) == 0:
        raise fail("the table has no runs (no data rows)")
    table = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for canonical, column in found.items():
        if canonical == "group":
            values = frame[column]
            # CSV cells are read as text with keep_default_na=False, so empty shows up as "".
            empty = values.isna() | (values.astype(str).str.strip() == "")
            if empty.any():
                raise fail("group label is empty", column, empty.to_numpy())
            table["group"] = values.astype(str).to_numpy()
        else:
            table[canonical] = _numbers(frame[column], column, fail, positive=True)

    derived: tuple[str, ...] = ()
    if "C" not in table and "D" not in table:
        raise fail(
            "needs training tokens (D) or training compute (C); found neither among columns "
            f"{list(frame.columns)}. Accepted names: D {_accepted('D')}; C {_accepted('C')}"
        )
    if "C" not in table:
        table["C"] = cost_k * table["N"] * table["D"]
        derived = ("C",)
    elif "D" not in table:
        table["D"] = table["C"] / (cost_k * table["N"])
        derived = ("D",)
    else:
        mismatch = (
            np.abs(table["C"] - cost_k * table["N"] * table["D"]) > c_rtol * table["C"]
        ).to_numpy()
        if mismatch.any():
            problem = (
                f"C differs from {cost_k:g} * N * D by more than {c_rtol:.0%}; pass cost_k= "
                "(--cost-k) if your FLOP count uses another constant, or accept_inconsistent_c=True "
                "(--accept-inconsistent-c) to keep C as given"
            )
            if not accept_inconsistent_c:
                raise fail(problem, found["C"], mismatch)
            warnings.warn(
                str(fail(problem + " (kept as given)", found["C"], mismatch)),
                DataWarning,
                stacklevel=2,
            )

    _warn_suspicious(table, fail, found)
    order = [c for c in ("N", "D", "C", "loss", "group", "weight") if c in table]
    column_map = {k: v for k, v in found.items()}
    return Runs(table[order], label, float(cost_k), column_map, derived)


def _read(
    source: str | os.PathLike[str] | pd.DataFrame,
) -> tuple[pd.DataFrame, str, str, list[object]]:
    """The raw table, its label, how rows are named, and each row's name."""
    if isinstance(source, pd.DataFrame):
        return source, "<DataFrame>", "row", list(source.index)
    path = Path(source)
    label = str(source)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise RunsFileError(
            label,
            f"unknown file type {suffix or '(none)'!r}; expected one of {', '.join(SUFFIXES)}",
        )
    if not path.is_file():
        raise RunsFileError(label, "no such file")
    if SUFFIXES[suffix] is None:
        try:
            frame = pd.read_parquet(path)
        except ImportError as err:
            raise ScalebayesError(
                f'{label}: reading Parquet needs pyarrow: pip install "scalebayes[parquet]"'
            ) from err
        return frame.reset_index(drop=True), label, "row", list(range(1, len(frame) + 1))
    return _read_text_table(path, label, SUFFIXES[suffix])


def _read_text_table(
    path: Path, label: str, sep: str
) -> tuple[pd.DataFrame, str, str, list[object]]:
    """Read CSV/TSV as text, with each record's real starting line.

    Blank lines and quoted line breaks are counted, so errors point at the line a user sees
    in an editor.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=sep, skipinitialspace=True, strict=True)
            records, lines, start = [], [], 1
            for record in reader:
                if any(cell.strip() for cell in record):  # skip blank lines, as spreadsheets do
                    records.append(record)
                    lines.append(start)
                start = reader.line_num + 1
    except UnicodeDecodeError as err:
        raise RunsFileError(
            label, f"not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
        ) from err
    except csv.Error as err:
        raise RunsFileError(
            label, f"line {reader.line_num}: cannot be read as a table ({err})"
        ) from err
    if not records:
        raise RunsFileError(label, "the file is empty (no header, no runs)")
    header, rows = [name.strip() for name in records[0]], records[1:]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise RunsFileError(
            label, f"line {lines[0]}: column name(s) {repeated} appear more than once"
        )
    ragged = [line for line, row in zip(lines[1:], rows, strict=True) if len(row) != len(header)]
    if ragged:
        raise RunsFileError(
            label,
            f"expected {len(header)} fields as in the header (line {lines[0]})",
            rows=ragged,
            row_label="line",
        )
    frame = pd.DataFrame(rows, columns=header, dtype=str)  # text first: bad cells get named
    return frame, label, "line", lines[1:]


def _normalise(name: object) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def _accepted(canonical: str) -> str:
    return "/".join(ALIASES[canonical][:6])


def _match_columns(frame: pd.DataFrame, label: str, explicit: Mapping[str, str]) -> dict[str, str]:
    """Map canonical names to the user's column names."""
    unknown = set(explicit) - set(ALIASES)
    if unknown:
        raise RunsFileError(
            label, f"columns= names {sorted(unknown)} unknown; canonical names are {list(ALIASES)}"
        )
    doubled = sorted({c for c in explicit.values() if list(explicit.values()).count(c) > 1})
    if doubled:
        raise RunsFileError(
            label, f"columns= maps column(s) {doubled} to more than one canonical name"
        )
    found: dict[str, str] = {}
    for canonical, column in explicit.items():
        if column not in frame.columns:
            raise RunsFileError(
                label,
                f"column {column!r} (mapped to {canonical}) not found; "
                f"columns are {list(frame.columns)}",
            )
        found[canonical] = column
    taken = set(found.values())
    for canonical, aliases in ALIASES.items():
        if canonical in found:
            continue
        matches = [c for c in frame.columns if _normalise(c) in aliases and c not in taken]
        if len(matches) > 1:
            raise RunsFileError(
                label,
                f"columns {matches} could all be {canonical}; say which with "
                f"columns={{{canonical!r}: ...}} (CLI: --column {canonical}=NAME)",
            )
        if matches:
            found[canonical] = matches[0]
    missing = [c for c in ("N", "loss") if c not in found]
    if missing:
        wanted = "; ".join(f"{c}: {_accepted(c)}" for c in missing)
        raise RunsFileError(
            label,
            f"no column for {', '.join(missing)}; found columns "
            f"{list(frame.columns)}. Accepted names: {wanted} "
            "(or map one: --column N=NAME / columns={'N': NAME})",
        )
    return found


def _numbers(values: pd.Series, column: str, fail: object, *, positive: bool) -> np.ndarray:
    """The column as float64, or an error naming every bad cell."""
    is_text = values.dtype == object or pd.api.types.is_string_dtype(values)
    text = values.astype(str).str.strip() if is_text else None
    if text is not None:
        parsed = pd.to_numeric(text, errors="coerce")
        not_number = parsed.isna() & ~text.str.lower().isin(["nan", "", "inf", "-inf", "infinity"])
        if not_number.any():
            raise fail(
                "not a number (expected plain numbers such as 7e10 or 70000000000)",
                column,
                not_number.to_numpy(),
            )
        numbers = parsed.to_numpy(float)
    else:
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise fail(f"expected numbers, found {values.dtype}", column)
        numbers = values.to_numpy(float)
    missing = np.isnan(numbers)
    if missing.any():
        raise fail("missing value (empty or NaN)", column, missing)
    if np.isinf(numbers).any():
        raise fail("infinite value", column, np.isinf(numbers))
    if positive and (numbers <= 0).any():
        raise fail("must be positive (> 0)", column, numbers <= 0)
    return numbers


def _warn_suspicious(table: pd.DataFrame, fail: object, found: Mapping[str, str]) -> None:
    keys = ["N", "D", *(["group"] if "group" in table else [])]
    duplicated = table.duplicated(subset=keys, keep=False).to_numpy()
    if duplicated.any():
        warnings.warn(
            str(
                fail(
                    "duplicate runs (same N and D"
                    + (" and group" if "group" in table else "")
                    + "); kept all",
                    None,
                    duplicated,
                )
            ),
            DataWarning,
            stacklevel=3,
        )
    tiny = (table["D"] < table["N"] / 1e3).to_numpy()
    if tiny.any():
        column = found.get("D", found.get("C"))
        warnings.warn(
            str(
                fail(
                    "fewer than 1 token per 1000 parameters: are tokens (or FLOPs) given in "
                    "billions?",
                    column,
                    tiny,
                )
            ),
            DataWarning,
            stacklevel=3,
        )
    high = (table["loss"] > 20).to_numpy()
    if high.any():
        warnings.warn(
            str(
                fail(
                    "loss above 20 nats/token: is it a summed or percentage loss?",
                    found["loss"],
                    high,
                )
            ),
            DataWarning,
            stacklevel=3,
        )
