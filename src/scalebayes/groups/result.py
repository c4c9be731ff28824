"""A grouped fit's result: the hierarchical posterior, and each group's fit for decisions.

:meth:`GroupedFit.for_group` turns the posterior into an ordinary :class:`Fit` of one group (its
values of the law's parameters and noise, its runs), or of a new group (one draw from the
population per posterior draw), so that ``predict``, ``optimal``, ``chance`` and ``plan`` work on
groups unchanged (:func:`scalebayes.groups.select.select_group`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from scalebayes.data import Runs
from scalebayes.errors import ScalebayesError
from scalebayes.formatting import text_columns
from scalebayes.groups.select import NEW
from scalebayes.health import Diagnostics
from scalebayes.laws import Law
from scalebayes.likelihood import Likelihood
from scalebayes.results import Fit, FitSettings, to_datatree
from scalebayes.runtime import precision

if TYPE_CHECKING:
    from scalebayes.groups.pooling import Plan


@dataclass(frozen=True)
class GroupedFit:
    """Posterior of one law fitted to several groups of runs with partial pooling.

    ``idata`` is a DataTree: posterior (population values under the parameters' names,
    ``<name>_spread`` for pooled ones, ``<name>_group`` with dims chain, draw, group),
    log_likelihood (``loss``, dims chain, draw, run), observed_data, constant_data (with the
    ``group`` index of each run) and sample_stats. ``groups`` are the labels in order,
    ``plan`` the resolved pooling, ``log_ref`` the centre of all runs' log inputs.
    """

    law: Law
    runs: Runs
    likelihood: Likelihood
    plan: Plan
    groups: tuple[str, ...]
    idata: xr.DataTree
    settings: FitSettings
    diagnostics: Diagnostics
    log_ref: Mapping[str, np.ndarray]
    _cache: dict[str, Fit] = field(default_factory=dict, repr=False, compare=False)

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws, dims (chain, draw) and, for per-group values, group."""
        return self.idata["posterior"].to_dataset()

    def group_runs(self, group: str) -> Runs:
        """The runs of ``group``."""
        return self.runs.subset(self.runs.group == self._label(group))

    def for_group(self, group: str, *, seed: int = 0) -> Fit:
        """The :class:`Fit` of ``group`` (a label), or of a new group with ``group="new"``.

        A group's fit has that group's draws of every law and noise parameter and its runs;
        a new group's has, per posterior draw, parameters drawn from the population (``seed``
        seeds those draws) and all the runs (so decisions see the whole fitted range).
        """
        key = f"{group}\0{seed}" if group == NEW else group
        if key in self._cache:
            return self._cache[key]
        names = self._per_group_names
        posterior = self.posterior
        shared = {n: posterior[n].to_numpy() for n in self.shared_names}
        if group == NEW and NEW not in self.groups:
            with precision(self.settings.precision):  # drawn with JAX in the fit's precision
                draws = self.plan.new_group(
                    self.law, {n: posterior[n].to_numpy() for n in posterior.data_vars
                               if "group" not in posterior[n].dims}, self.log_ref, seed,
                    self.likelihood,
                )  # fmt: skip
            runs, log_lik = self.runs, self.idata["log_likelihood"]["loss"].to_numpy()
        else:
            label = self._label(group)
            draws = {n: posterior[f"{n}_group"].sel(group=label).to_numpy() for n in names}
            mask = self.runs.group == label
            runs = self.runs.subset(mask)
            log_lik = self.idata["log_likelihood"]["loss"].to_numpy()[..., mask]
        stats = {k: v.to_numpy() for k, v in self.idata["sample_stats"].data_vars.items()}
        idata = to_datatree(runs, {**{n: np.asarray(draws[n]) for n in names}, **shared,
                                   "_log_lik": log_lik}, stats)  # fmt: skip
        source = f"{runs.source}, group {group!r} of a grouped fit"
        result = Fit(
            self.law,
            dataclasses.replace(runs, source=source),
            self.likelihood,
            idata,
            self.settings,
            self.diagnostics,
            dict(self.log_ref),
        )
        self._cache[key] = result
        return result

    def _label(self, group: str) -> str:
        if group not in self.groups:
            raise ScalebayesError(
                f"group {group!r} not in the fit: its groups are {list(self.groups)} "
                f"(or {NEW!r} for a group not yet run)"
            )
        return group

    @property
    def shared_names(self) -> tuple[str, ...]:
        """The discrepancy's parameters when every group shares them (none without one)."""
        return self._discrepancy_names if self.plan.discrepancy == "shared" else ()

    @property
    def _discrepancy_names(self) -> tuple[str, ...]:
        return self.likelihood.discrepancy.param_names(self.law, ())

    @property
    def _per_group_names(self) -> tuple[str, ...]:
        """Parameters with a value per group: the law's, the noise's, a discrepancy's unshared."""
        return (*self.law.param_names, *self.likelihood.param_names, *self._unshared)

    @property
    def _pooled_discrepancy(self) -> bool:
        return self.plan.discrepancy == "pooled" and bool(self._discrepancy_names)

    @property
    def _unshared(self) -> tuple[str, ...]:
        """The discrepancy's parameters when each group has its own (pooled or separate)."""
        return () if self.plan.discrepancy == "shared" else self._discrepancy_names

    def population(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Population value and spread of each parameter: mode, median and ``ci_prob`` interval.

        Rows are the law's and the noise's parameters (a separate one has no population value),
        then the discrepancy's (its mode; pooled, each coefficient's spread is the one
        ``<discrepancy>_spread`` they share).
        """
        lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
        posterior = self.posterior
        rows = []
        modes = {
            **self.plan.modes(),
            **dict.fromkeys(self._discrepancy_names, self.plan.discrepancy),
        }
        spreads = dict.fromkeys(
            self._discrepancy_names, self.likelihood.discrepancy.group_spread_name
        )
        for name, mode in modes.items():
            row: dict[str, Any] = {"parameter": name, "mode": mode}
            for column, var in (("", name), ("spread ", spreads.get(name, f"{name}_spread"))):
                if var in posterior and mode != "separate":
                    x = posterior[var].to_numpy().ravel()
                    row |= {f"{column}median": np.median(x), f"{column}lower": np.quantile(x, lo),
                            f"{column}upper": np.quantile(x, hi)}  # fmt: skip
            rows.append(row)
        return pd.DataFrame(rows).set_index("parameter")

    def per_group(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Each group's value of each parameter: rows (group, parameter), median and interval."""
        lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
        posterior = self.posterior
        rows = []
        for name in (*self.law.free_param_names, *self.likelihood.param_names, *self._unshared):
            values = posterior[f"{name}_group"].to_numpy()
            for i, label in enumerate(self.groups):
                x = values[..., i].ravel()
                rows.append({"group": label, "parameter": name, "median": np.median(x),
                             "lower": np.quantile(x, lo), "upper": np.quantile(x, hi)})  # fmt: skip
        return pd.DataFrame(rows).set_index(["group", "parameter"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: law, groups and their runs, population and per-group tables, health."""
        population = self.population().reset_index()
        per_group = self.per_group().reset_index()
        return {
            "law": self.law.name,
            "runs": len(self.runs),
            "groups": {g: int(np.sum(self.runs.group == g)) for g in self.groups},
            "pooling": self.plan.to_dict(),
            "population": json.loads(population.to_json(orient="records")),
            "per_group": json.loads(per_group.to_json(orient="records")),
            "diagnostics": {
                **self.diagnostics.to_dict(),
                "ok": self.diagnostics.ok,
                "problems": self.diagnostics.problems,
            },
            "wall_time_s": dict(self.settings.wall_time),
        }

    def __str__(self) -> str:
        lines = [
            f"Grouped fit of law {self.law.name!r} ({self.law.title}) to {len(self.runs)} runs "
            f"in {len(self.groups)} groups from {self.runs.source}",
            *describe_groups(self.runs, self.groups),
            "",
            "population (90% intervals; spreads on the log scale of positive parameters"
            + ("; the discrepancy's in its own units):" if self._pooled_discrepancy else "):"),
            _population_text(self.population()),
            "",
            "per group (median [90% interval]):",
            _per_group_text(self.per_group(), self.groups),
            "",
            *self.diagnostics.lines(),
        ]
        return "\n".join(lines)


def describe_groups(runs: Runs, groups: tuple[str, ...] | None = None) -> list[str]:
    """One line per group: its runs, compute budgets (isoFLOP sweeps) and compute range."""
    labels = runs.group
    if labels is None:
        return []
    groups = groups or tuple(pd.unique(labels))
    lines = []
    for label in groups:
        table = runs.table[labels == label]
        budgets = table["budget"] if "budget" in table else None
        count = f", {budgets.nunique()} budgets" if budgets is not None else ""
        lines.append(
            f"  group {label}: {len(table)} runs{count}, C {table['C'].min():.2e}-"
            f"{table['C'].max():.2e} FLOPs, loss {table['loss'].min():.3f}-"
            f"{table['loss'].max():.3f}"
        )
    return lines


def _interval(median: float, lower: float, upper: float) -> str:
    return f"{median:.4g} [{lower:.4g}, {upper:.4g}]"


def _population_text(table: pd.DataFrame) -> str:
    w = max(10, *(len(str(name)) for name in table.index))
    lines = [f"  {'parameter':<{w}} {'mode':<9} {'value':<32} spread"]
    for name, row in table.iterrows():
        value = _interval(row["median"], row["lower"], row["upper"]) if "median" in row and \
            pd.notna(row.get("median")) else "-"  # fmt: skip
        spread = (
            _interval(row["spread median"], row["spread lower"], row["spread upper"])
            if pd.notna(row.get("spread median", np.nan))
            else "-"
        )
        lines.append(f"  {name!s:<{w}} {row['mode']:<9} {value:<32} {spread}")
    return "\n".join(lines)


def _per_group_text(table: pd.DataFrame, groups: tuple[str, ...], width: int = 120) -> str:
    """The per-group table as text no wider than ``width`` characters.

    Parameters as rows and groups as columns where that fits; else groups as rows and the
    parameters in blocks of columns (8 experiments side by side made lines of ~370 characters).
    """
    names = list(dict.fromkeys(table.index.get_level_values("parameter")))
    cells = {
        name: [
            _interval(*table.loc[(label, name), ["median", "lower", "upper"]]) for label in groups
        ]
        for name in names
    }
    column = max(*(len(c) + 2 for v in cells.values() for c in v), *(len(g) + 2 for g in groups))
    first = max(len("parameter") + 1, *map(len, names)) + 1  # quadratic_N_N: 13 characters
    wide = [f"  {'parameter':<{first}}" + "".join(f"{g:<{column}}" for g in groups).rstrip()]
    wide += [f"  {name:<{first}}" + "".join(f"{c:<{column}}" for c in cells[name]).rstrip()
             for name in names]  # fmt: skip
    if max(map(len, wide)) <= width:
        return "\n".join(wide)
    label_width = max(len("group"), *(len(g) for g in groups))
    blocks: list[list[str]] = [[]]
    used = label_width
    for name in names:
        needed = 2 + max(len(name), *(len(c) for c in cells[name]))
        if blocks[-1] and used + needed > width - 2:
            blocks.append([])
            used = label_width
        blocks[-1].append(name)
        used += needed
    texts = []
    for block in blocks:
        rows = [[label, *(cells[name][i] for name in block)] for i, label in enumerate(groups)]
        text = text_columns(["group", *block], rows)
        texts.append("\n".join(f"  {line}" for line in text.splitlines()))
    return "\n\n".join(texts)
