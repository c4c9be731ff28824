"""A saved fit's description, read without its draws: what ``scalebayes show`` prints.

A fit file (:mod:`scalebayes.io`) keeps the law, likelihood, settings, diagnostics, reference
and parameter table as JSON in its root attributes and the runs in two small groups. Read with
h5py, those need neither the draws nor xarray, whose import alone took ~0.2 s of a ~1 s
``show`` (benchmarks/cli_latency.py). :func:`fit_parts` turns the stored JSON and the runs'
columns into the fit's parts for both readers, this one and :func:`scalebayes.io.load_fit`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from scalebayes.data import Runs
from scalebayes.errors import ScalebayesError
from scalebayes.health import Diagnostics
from scalebayes.laws import Law, law_from_dict
from scalebayes.likelihood import Likelihood, param_docs, reported_param_names
from scalebayes.results import FitSettings

# 2: the reference point is stored (scalebayes_log_ref) and the likelihood's discrepancy is a
# component ({"name": ..., its priors}); files of version 1 are read as before.
# 3: the discrepancy's hidden parameters are stacked in one posterior variable (HIDDEN).
SCHEMA_VERSION = 3
# 4: a grouped fit (scalebayes_kind "grouped", scalebayes_pooling). Plain fits are still written
# as 3, so an older scalebayes reads them; it refuses a grouped file ("upgrade scalebayes")
# instead of misreading it as a plain fit.
GROUPED_SCHEMA_VERSION = 4
READS_UP_TO = GROUPED_SCHEMA_VERSION
GROUPED = "grouped"
SCHEMA_KEY = "scalebayes_schema_version"
SUMMARY_CI = 0.9  # the interval of the stored parameter table (`show`, `fit`)
META = ("law", "likelihood", "settings", "diagnostics", "runs", "log_ref")
RUN_COLUMNS = ("N", "D", "C", "loss")  # always stored; U, group, weight, budget when present
OPTIONAL_RUN_COLUMNS = ("U", "group", "weight", "budget")


class FitParts(NamedTuple):
    """What a fit file's root attributes and runs describe (no draws)."""

    law: Law
    runs: Runs
    likelihood: Likelihood
    settings: FitSettings
    diagnostics: Diagnostics
    log_ref: dict[str, np.ndarray] | None  # None in files written before it was stored


def fit_parts(attrs: Mapping[str, Any], columns: Mapping[str, np.ndarray], path: Path) -> FitParts:
    """The parts of a fit from its file's root attributes and the runs' columns (1-D arrays).

    Raises ``KeyError``, ``TypeError``, ``ValueError`` or ``ScalebayesError`` on a damaged
    file; the readers turn them into :class:`~scalebayes.errors.FitFileError`.
    """
    meta = {k: json.loads(attrs[f"scalebayes_{k}"]) for k in META if f"scalebayes_{k}" in attrs}
    law = law_from_dict(meta["law"], source=f"{path} (stored law)")
    table = pd.DataFrame({name: np.asarray(columns[name]) for name in RUN_COLUMNS})
    for name in OPTIONAL_RUN_COLUMNS:
        if name in columns:
            table[name] = np.asarray(columns[name])
    log_ref = meta.get("log_ref")
    return FitParts(
        law=law,
        runs=Runs(table=table, **meta["runs"]),
        likelihood=Likelihood.from_dict(meta["likelihood"]),
        # Sampled before warmup pooled the chains' statistics: say so, and refit the same way.
        settings=FitSettings(**{"pooled_warmup": False, **meta["settings"]}),
        diagnostics=Diagnostics(**meta["diagnostics"]),
        log_ref=None
        if log_ref is None
        else {k: np.asarray(v, dtype=float) for k, v in log_ref.items()},
    )


def stored_table(text: str, reported: tuple[str, ...]) -> pd.DataFrame | None:
    """The parameter table saved with a fit, if it lists exactly the ``reported`` parameters."""
    table = pd.read_json(io.StringIO(text), orient="split")
    table.attrs["ci_prob"] = SUMMARY_CI
    return table if tuple(table.index) == reported else None


@dataclass(frozen=True)
class SavedFit:
    """A saved fit as ``show`` prints it: its parts and stored parameter table, no draws."""

    path: Path
    law: Law
    runs: Runs
    likelihood: Likelihood
    settings: FitSettings
    diagnostics: Diagnostics
    table: pd.DataFrame

    @property
    def reported_names(self) -> tuple[str, ...]:
        """The parameters the table lists (as :attr:`Fit.reported_names`)."""
        return reported_param_names(self.law, self.likelihood)

    def param_docs(self) -> dict[str, str]:
        """One-line meaning of every reported parameter (as :meth:`Fit.param_docs`)."""
        return param_docs(self.law, self.likelihood)

    def summary(self, ci_prob: float = SUMMARY_CI) -> pd.DataFrame:
        """The stored table (median, mean, sd, 90 % interval, R-hat, ESS per parameter)."""
        if ci_prob != SUMMARY_CI:
            raise ScalebayesError(
                f"{self.path}: the saved table has {SUMMARY_CI:.0%} intervals; load the fit "
                f"(scalebayes.load_fit) for {ci_prob:.0%}"
            )
        return self.table.copy()


def read_saved_fit(path: str | Path) -> SavedFit | None:
    """The description of the plain fit saved at ``path``, or None if it cannot be read so.

    None for anything but a complete plain fit with its stored table and reference (grouped
    fits, older files, damaged or foreign files): :func:`scalebayes.io.load_fit` reads those,
    and says what is wrong with a bad one.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as file:
            attrs = {k: _text(v) for k, v in file.attrs.items()}
            version = int(np.ravel(file.attrs.get(SCHEMA_KEY, -1))[0])  # stored as [3]
            if not 2 <= version <= SCHEMA_VERSION or attrs.get("scalebayes_kind") == GROUPED:
                return None
            if any(f"scalebayes_{k}" not in attrs for k in (*META, "summary")):
                return None
            columns = {
                name: _column(group[name])
                for group in (file["constant_data"], file["observed_data"])
                for name in (*RUN_COLUMNS, *OPTIONAL_RUN_COLUMNS)
                if name in group
            }
        parts = fit_parts(attrs, columns, path)
        table = stored_table(
            attrs["scalebayes_summary"], reported_param_names(parts.law, parts.likelihood)
        )
    except (OSError, KeyError, TypeError, ValueError, ScalebayesError):
        return None
    if table is None or len(parts.runs) != len(columns["loss"]):
        return None
    return SavedFit(
        path, parts.law, parts.runs, parts.likelihood, parts.settings, parts.diagnostics, table
    )


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _column(dataset: Any) -> np.ndarray:
    """A run group's variable as a 1-D array (strings decoded)."""
    if dataset.dtype.kind in "OS":
        return np.asarray(dataset.asstr()[()], dtype=object)
    return np.asarray(dataset[()])
