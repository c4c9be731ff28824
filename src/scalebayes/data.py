"""Load and validate a table of training runs.

Canonical columns: ``N`` (parameters), ``D`` (training tokens), ``C`` (training FLOPs),
``loss`` (final loss, nats/token); optional ``U`` (unique tokens, for data-constrained laws),
``group``, ``weight`` and ``budget`` (the isoFLOP sweep's nominal compute). Columns are found
by the names people already use (:data:`~scalebayes.columns.ALIASES`), or mapped explicitly.
Bad values are errors that name the file, the rows and the column; nothing is dropped or
coerced silently.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalebayes.columns import (
    ALIASES,
    COUNTED,
    PERPLEXITY,
    canonical,
    is_perplexity,
    loss_in_bits,
    normalise,
    suggest,
    unit_of,
)
from scalebayes.counts import parse_counts, suffixed
from scalebayes.errors import DataWarning, ScalebayesError, name_rows
from scalebayes.row_selection import Where, select
from scalebayes.table_checks import suspicious
from scalebayes.table_files import Raw, read_raw

# D above U by more than this factor is data seen more than once (:func:`repeats`).
REPEAT_FACTOR = 1.01
# Cells that mean "no value" (compared in lower case), as pandas reads them by default.
_MISSING = frozenset({"", "nan", "-nan", "na", "n/a", "#n/a", "<na>", "null", "none"})


@dataclass(frozen=True, eq=False)  # eq=False: == on DataFrames has no single truth value
class Runs:
    """Validated training runs.

    ``table`` has columns N, D, C, loss (float64) and, when given, U (unique tokens, float64),
    group (str), weight (float64) and budget (float64, an isoFLOP sweep's nominal FLOPs), one
    row per run with index 0..n-1. ``column_map`` says which of the user's columns each
    canonical column came from; ``derived`` which of C and D were computed with
    ``C = cost_k * N * D``. U may exceed D (a data set larger than the tokens trained on);
    data-constrained laws then count D unique tokens.

    ``rows`` names each run as messages do (:meth:`where`): with ``row_label`` "line", its line
    in the file, the header being line 1 (Parquet rows are numbered the same way, as if the
    table were written out with its header); with "row", its DataFrame index label. Runs made
    without names count lines from 2, as a CSV of the table would.
    """

    table: pd.DataFrame
    source: str
    cost_k: float = 6.0
    column_map: Mapping[str, str] = field(default_factory=dict)
    derived: tuple[str, ...] = ()
    rows: tuple[object, ...] = ()
    row_label: str = "line"

    def __post_init__(self) -> None:
        # Runs rebuilt from JSON (io.load_fit) hand in lists; keep one form.
        object.__setattr__(self, "column_map", dict(self.column_map))
        object.__setattr__(self, "derived", tuple(self.derived))
        rows = tuple(self.rows) or tuple(range(2, len(self.table) + 2))
        if len(rows) != len(self.table):
            raise ScalebayesError(f"{self.source}: {len(rows)} row names for {len(self)} runs")
        object.__setattr__(self, "rows", rows)

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
    def U(self) -> np.ndarray | None:
        """Unique training tokens per run, shape (n,), or None without a U column."""
        return self.table["U"].to_numpy(float) if "U" in self.table else None

    @property
    def loss(self) -> np.ndarray:
        """Final loss per run, nats/token, shape (n,)."""
        return self.table["loss"].to_numpy(float)

    @property
    def group(self) -> np.ndarray | None:
        """Group label per run, shape (n,), or None without a group column."""
        return self.table["group"].to_numpy(str) if "group" in self.table else None

    @property
    def weight(self) -> np.ndarray | None:
        """Likelihood weight per run, shape (n,), or None without a weight column."""
        return self.table["weight"].to_numpy(float) if "weight" in self.table else None

    @property
    def budget(self) -> np.ndarray | None:
        """Nominal isoFLOP budget per run, FLOPs, shape (n,), or None without a budget column."""
        return self.table["budget"].to_numpy(float) if "budget" in self.table else None

    def inputs(self) -> dict[str, np.ndarray]:
        """Inputs a law may use: N, D, C, and U when given, as float64 arrays of shape (n,)."""
        names = ("N", "D", "C", "U") if "U" in self.table else ("N", "D", "C")
        return {name: self.table[name].to_numpy(float) for name in names}

    def log_inputs(self) -> dict[str, np.ndarray]:
        """Natural logs of :meth:`inputs`."""
        return {name: np.log(values) for name, values in self.inputs().items()}

    def to_frame(self) -> pd.DataFrame:
        """A copy of the table."""
        return self.table.copy()

    def subset(self, mask: np.ndarray) -> Runs:
        """The runs where the boolean ``mask`` (shape (n,)) is True, re-indexed from 0."""
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self),):
            raise ScalebayesError(
                f"subset mask has dtype {mask.dtype} and shape {mask.shape}; "
                f"expected bool of shape ({len(self)},)"
            )
        table = self.table[mask].reset_index(drop=True)
        rows = tuple(r for r, keep in zip(self.rows, mask, strict=True) if keep)
        return dataclasses.replace(self, table=table, rows=rows)

    def where(self, mask: np.ndarray) -> str:
        """The runs where ``mask`` holds, as every message names them: "lines 12, 40 of runs.csv"."""
        rows = [r for r, hit in zip(self.rows, np.asarray(mask), strict=True) if hit]
        return f"{name_rows(rows, self.row_label)} of {self.source}"

    def __str__(self) -> str:
        def span(name: str, fmt: str) -> str:
            values = self.table[name]
            return f"{name} {values.min():{fmt}}-{values.max():{fmt}}"

        formula = {"C": f"C = {self.cost_k:g} N D", "D": f"D = C / ({self.cost_k:g} N)"}
        derived = "".join(f"; derived {formula[name]}" for name in self.derived)
        n_groups = self.table["group"].nunique() if "group" in self.table else 0
        groups = {0: "", 1: "; 1 group"}.get(n_groups, f"; {n_groups} groups")
        unique = f", {span('U', '.2e')}" if "U" in self.table else ""
        units = [
            f"{column!r} x {unit.describe()}"
            for key, column in self.column_map.items()
            if (unit := unit_of(column, key)) is not None
        ]
        if is_perplexity(self.column_map.get("loss", "loss")):
            units.append(f"loss = log({self.column_map['loss']!r})")
        if loss_in_bits(self.column_map.get("loss", "loss")):
            units.append(f"loss = ln 2 x {self.column_map['loss']!r} (bits to nats)")
        scaled = f"; read {', '.join(units)}" if units else ""
        return (
            f"{len(self)} runs from {self.source}: {span('N', '.2e')}, {span('D', '.2e')}, "
            f"{span('C', '.2e')}{unique}, {span('loss', '.3f')}{groups}{derived}{scaled}"
        )


def load_runs(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    columns: Mapping[str, str | None] | None = None,
    group: str | Sequence[str] | None = None,
    cost_k: float = 6.0,
    c_rtol: float = 0.1,
    accept_inconsistent_c: bool = False,
    keep_best: bool = False,
    where: Where | None = None,
) -> Runs:
    """Read and validate a table of runs from CSV, TSV, Parquet or a DataFrame.

    Parameters
    ----------
    source : path or DataFrame
        ``.csv`` (comma), ``.tsv`` or ``.txt`` (tab), ``.parquet`` or ``.pq``; a DataFrame is
        never modified. Columns that are not recognised are ignored.
    columns : mapping, optional
        Explicit ``{canonical: your column}``, e.g. ``{"N": "non-embedding params"}``; wins over
        the recognised names (:data:`ALIASES`). ``None`` leaves a recognised column unread:
        ``{"C": None}`` derives C from N and D where the table's FLOPs are counted otherwise.
    group : column name or names, optional
        The column(s) whose values label each run's group (ladder, data set, eval set); several
        are joined into one label, ``"dclm/val"``. Same as ``columns={"group": name}`` for one.
    cost_k : float
        FLOPs per parameter per token: the missing one of C and D is derived from ``C = k N D``.
    c_rtol : float
        When C, N and D are all given, each row must satisfy ``|C - k N D| <= c_rtol * C``.
    accept_inconsistent_c : bool
        Keep C as given where it fails that check, with a :class:`DataWarning`, instead of
        raising.
    keep_best : bool
        Of runs that share N and D (and U and group), keep the one of least loss: for a table
        whose repeats are a hyperparameter sweep (a learning rate per size and horizon), so that
        the law is fitted to the tuned runs. Not for repeats over seeds, which measure the noise.
    where : mapping, optional
        Read only the rows whose columns hold these values, ``{"experiment": "llama_3__raw_loss"}``
        (a list of values accepts any; :func:`scalebayes.row_selection.selected_rows`). The
        runs' source says so; rows keep their lines in the file.

    Returns
    -------
    Runs

    Raises
    ------
    RunsFileError
        Naming the file, the rows and the column as the user wrote it. Rows are line numbers
        for files, the header being line 1 (Parquet rows are numbered as if written out with
        the header: the first run is line 2), and index labels for DataFrames.

    Warns
    -----
    DataWarning
        Duplicate runs, tokens that look like the wrong unit, loss above 20 or far off the
        others, D derived from C while a column names tokens in words, rows that look like
        learning-curve checkpoints (:mod:`scalebayes.table_checks`); the rows are kept.
    """
    if not (np.isfinite(cost_k) and cost_k > 0):
        raise ScalebayesError(
            f"cost_k={cost_k!r}: expected a positive number of FLOPs per parameter per token"
        )
    if not (np.isfinite(c_rtol) and c_rtol >= 0):
        raise ScalebayesError(f"c_rtol={c_rtol!r}: expected a relative tolerance >= 0")
    raw = read_raw(source)
    if where:
        frame, names, label = select(raw.frame, raw.row_names, raw.label, where, raw.error)
        raw = dataclasses.replace(raw, frame=frame, row_names=names, label=label)
    columns = dict(columns or {})
    if group is not None:
        raw, columns["group"] = _group_column(raw, group)
    found = _match_columns(raw, columns)
    if len(raw.frame) == 0:
        raise raw.error("the table has no runs (only a header)")

    table = pd.DataFrame(index=pd.RangeIndex(len(raw.frame)))
    for key in ALIASES:
        if key in found:
            table[key] = _values(raw, key, found[key])

    notes: list[str] = []
    derived: tuple[str, ...] = ()
    if "C" not in table:
        table["C"] = cost_k * table["N"] * table["D"]
        derived = ("C",)
    elif "D" not in table:
        table["D"] = table["C"] / (cost_k * table["N"])
        derived = ("D",)
    else:
        off = (
            np.abs(table["C"] - cost_k * table["N"] * table["D"]) > c_rtol * table["C"]
        ).to_numpy()
        if off.any():
            problem = (
                f"C differs from {cost_k:g} * N * D by more than {c_rtol:.0%}; pass cost_k= "
                "(--cost-k) if your FLOP count uses another constant, columns={'C': None} "
                "(--column C=) to leave it unread and derive C from N and D, or "
                "accept_inconsistent_c=True (--accept-inconsistent-c) to keep C as given"
            )
            if not accept_inconsistent_c:
                raise raw.error(problem, found["C"], off)
            notes.append(str(raw.error(f"{problem} (kept as given)", found["C"], off)))
    if keep_best:  # each (N, D)'s tuned run, before the checks (its repeats are gone)
        best = best_per_point(table)
        frame = raw.frame.iloc[best].reset_index(drop=True)
        raw = dataclasses.replace(raw, frame=frame, row_names=raw.row_names[best])
        table = table[best].reset_index(drop=True)
    notes += suspicious(raw.frame, table, found, derived, raw.error)
    for note in notes:
        warnings.warn(note, DataWarning, stacklevel=2)

    order = [key for key in ALIASES if key in table]
    column_map = {key: found[key] for key in order if key in found}
    rows = tuple(raw.row_names.tolist())
    return Runs(table[order], raw.label, float(cost_k), column_map, derived, rows, raw.row_label)


def best_per_point(table: pd.DataFrame) -> np.ndarray:
    """Boolean mask, shape (n,), of each point's run of least loss.

    Of the rows of a runs table (index 0..n-1) that share N and D (and U and group, where
    there), the tuned one.
    """
    keys = ["N", "D", *(key for key in ("U", "group") if key in table)]
    best = np.zeros(len(table), bool)
    best[table.groupby(keys, sort=False)["loss"].idxmin().to_numpy()] = True
    return best


def repeats(table: pd.DataFrame) -> np.ndarray:
    """Runs (rows of a :class:`Runs` table) that saw their data more than once: D > U.

    D above U by more than :data:`REPEAT_FACTOR` (not U's rounding); none without a U column.
    """
    if "U" not in table:
        return np.zeros(len(table), bool)
    return (table["D"] > REPEAT_FACTOR * table["U"]).to_numpy()


def _group_column(raw: Raw, group: str | Sequence[str]) -> tuple[Raw, str]:
    """The table with the group column(s) joined into one label column, and its name."""
    names = [group] if isinstance(group, str) else list(group)
    absent = [name for name in names if name not in raw.frame.columns]
    if not names or absent:
        raise raw.error(
            f"group column(s) {absent} not found; columns are {list(raw.frame.columns)}"
        )
    if len(names) == 1:
        return raw, names[0]
    label = "/".join(names)
    parts = [raw.frame[name].astype(str).str.strip() for name in names]
    joined = parts[0].str.cat(parts[1:], sep="/")
    return dataclasses.replace(raw, frame=raw.frame.assign(**{label: joined})), label


def _accepted(key: str) -> str:
    names = ", ".join(repr(alias) for alias in ALIASES[key])
    if key == "loss":
        names += f", or a perplexity, read as its log: {', '.join(map(repr, PERPLEXITY[:4]))} and the like"
    return names


def _match_columns(raw: Raw, given: Mapping[str, str | None]) -> dict[str, str]:
    """Map canonical names to the user's column names: explicit first, then recognised names.

    A name mapped to None is left unread, its recognised column too.
    """
    names = list(raw.frame.columns)
    explicit = {key: name for key, name in given.items() if name is not None}
    unread = {key for key, name in given.items() if name is None}
    unknown = sorted(set(given) - set(ALIASES))
    if unknown:
        raise raw.error(f"columns= names {unknown} unknown; canonical names are {list(ALIASES)}")
    targets = list(explicit.values())
    doubled = sorted({name for name in targets if targets.count(name) > 1})
    if doubled:
        raise raw.error(f"columns= maps {doubled} to more than one canonical name")
    for key, name in explicit.items():
        if name not in names:
            raise raw.error(f"column {name!r} (mapped to {key}) not found; columns are {names}")
    # A repeated name matters only where it would be read; unused columns may repeat.
    repeated = sorted(
        {n for n in names if names.count(n) > 1 and (n in targets or canonical(n) is not None)}
    )
    if repeated:
        where = "line 1: " if raw.row_label == "line" else ""
        raise raw.error(f"{where}column name(s) {repeated} appear more than once")

    found = dict(explicit)
    candidates: dict[str, list[str]] = {}
    for name in names:
        key = canonical(name)
        if key is not None and key not in found and key not in unread and name not in targets:
            candidates.setdefault(key, []).append(name)
    for key, matches in candidates.items():
        if len(matches) > 1 and _same_values(raw.frame, matches):
            # Copies of one column (misfitting's D and train_tokens) leave nothing to choose.
            matches = sorted(matches, key=lambda name: normalise(name) != normalise(key))[:1]
        if len(matches) > 1:
            raise raw.error(
                f"columns {matches} could all be {key}; say which with "
                f"columns={{{key!r}: ...}} (CLI: --column {key}=NAME)"
            )
        found[key] = matches[0]
    if "loss" not in found and "loss" not in unread:
        perplexities = [n for n in names if is_perplexity(n) and n not in targets]
        if len(perplexities) > 1:
            raise raw.error(
                f"no loss column, and columns {perplexities} could all be its perplexity; say "
                "which with columns={'loss': ...} (CLI: --column loss=NAME)"
            )
        if perplexities:  # read as its log: the loss in nats per token
            found["loss"] = perplexities[0]

    missing = [key for key in ("N", "loss") if key not in found]
    either = "D" not in found and "C" not in found  # one of them is enough: C = k N D
    if missing or either:
        wanted = " and ".join(missing)
        if either:
            wanted = f"{wanted} and (D or C)" if missing else "D or C"
        listed = [*missing, *(["D", "C"] if either else [])]
        accepted = "; ".join(f"{key}: {_accepted(key)}" for key in listed)
        raise raw.error(
            f"no column for {wanted}; found columns {names}{_suggestions(names, found, listed)}. "
            f"Recognised names (case, spaces, '_', '-', '/', '.' and ':' ignored; a unit may "
            f"end a count's name, 'params (M)', 'tokens_B'): {accepted}. Or map yours: "
            f"columns={{{listed[0]!r}: NAME}} (CLI: --column {listed[0]}=NAME)"
        )
    return found


def _same_values(frame: pd.DataFrame, names: list[str]) -> bool:
    """Whether the columns ``names`` hold the same value in every row."""
    first = frame[names[0]]
    return all(frame[name].equals(first) for name in names[1:])


def _suggestions(names: list[str], found: Mapping[str, str], listed: list[str]) -> str:
    """Columns that name a missing quantity in words (``params_N``), as a sentence; or ""."""
    taken = set(found.values())
    guesses = {k: v for k, v in suggest(n for n in names if n not in taken).items()
               if k not in found}  # fmt: skip
    if not guesses:
        return ""
    order = [*listed, *(k for k in ALIASES if k not in listed)]
    shown = "; ".join(
        f"{key}: {' or '.join(repr(n) for n in guesses[key])}" for key in order if key in guesses
    )
    sure = {key: guesses[key][0] for key in order if len(guesses.get(key, ())) == 1}
    cli = " ".join(f"--column {key}={name}" for key, name in sure.items())
    return f". Your columns that look like them: {shown}" + (
        f" (CLI: {cli}; Python: columns={sure!r})" if sure else ""
    )


def _values(raw: Raw, key: str, column: str) -> np.ndarray:
    """One column of the user's table, checked: str labels for group, else positive float64."""
    values = raw.frame[column]
    if key == "group":
        empty = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
        if empty.any():
            raise raw.error("group label is empty", column, empty)
        return values.astype(str).to_numpy()
    unit = unit_of(column, key)
    if pd.api.types.is_numeric_dtype(values) and not (
        pd.api.types.is_bool_dtype(values) or pd.api.types.is_complex_dtype(values)
    ):
        numbers = values.to_numpy(float, na_value=np.nan)
        missing = np.isnan(numbers)
    else:
        # Text (every CSV cell, object columns): parse cell by cell and name what does not
        # parse, so "1,000" or "7 GB" is an error, never a NaN.
        text = values.astype(str).str.strip()
        missing = (values.isna() | text.str.lower().isin(_MISSING)).to_numpy()
        text = text.mask(missing, "nan")
        if key in COUNTED:  # "2.8B" parameters, "1.4T" tokens
            numbers = parse_counts(text)
            expected = "plain numbers such as 7e10 or 70000000000, or counts such as 70B"
        else:
            numbers = pd.to_numeric(text, errors="coerce").to_numpy(float)
            expected = "plain numbers such as 2.95 or 2.95e0"
        not_number = np.isnan(numbers) & ~missing
        if not_number.any():
            comma = text[not_number].str.fullmatch(r"[+-]?\d+,\d+")
            hint = (
                f"; {text[not_number][comma].iloc[0]!r}: write a decimal point"
                if comma.any()
                else ""
            )
            raise raw.error(
                f"not a number (expected {expected}, without separators or units){hint}",
                column,
                not_number,
            )
        if unit is not None and (both := suffixed(text)).any():
            raise raw.error(
                f"the column's name gives the unit ({unit.text}) and these "
                "cells a suffix too: write plain numbers of the unit, or rename the column",
                column,
                both,
            )
    if unit is not None:  # "Parameters (M)" counts millions
        numbers = numbers * unit.factor
    if key == "loss" and is_perplexity(column):
        if (numbers < 1).any():
            raise raw.error("a perplexity is at least 1 (exp of a loss >= 0)", column, numbers < 1)
        numbers = np.log(numbers)
    if key == "loss" and loss_in_bits(column):
        numbers = numbers * np.log(2.0)
    if missing.any():
        why = (
            "every run needs its final loss here; a run that diverged or has not finished has "
            "none: leave its row out"
            if key == "loss"
            else "every run needs a number here"
        )
        raise raw.error(f"missing value (empty or NaN): {why}", column, missing)
    if np.isinf(numbers).any():
        raise raw.error("infinite value; expected a finite number", column, np.isinf(numbers))
    if (numbers <= 0).any():
        raise raw.error("must be positive (> 0)", column, numbers <= 0)
    return numbers
