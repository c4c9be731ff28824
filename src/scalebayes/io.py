"""Save and load a :class:`~scalebayes.results.Fit` or a grouped fit as one NetCDF file (no pickle).

The file is the ArviZ DataTree of the fit; the law, likelihood, settings, diagnostics, the
fit's reference point (the discrepancy's included, exactly) and the runs' metadata ride along
as JSON in the root attributes, and the runs themselves are
the ``constant_data`` (N, D, C, U, group, weight) and ``observed_data`` (loss) groups. So every
later command works from the file alone. A :class:`~scalebayes.groups.result.GroupedFit` adds
its resolved pooling (``scalebayes_pooling``) and is marked ``scalebayes_kind = "grouped"``.
The discrepancy's hidden parameters (the GP's 36 weights) are one variable in the file, split
again on loading: opening each variable of a NetCDF file costs milliseconds, and they were half
of a fit's variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scalebayes.errors import FitFileError, ScalebayesError
from scalebayes.groups.select import is_grouped
from scalebayes.outputs import FIT_SUFFIXES, check_file, replacing
from scalebayes.results import Fit
from scalebayes.saved import (
    GROUPED,
    GROUPED_SCHEMA_VERSION,
    META,
    OPTIONAL_RUN_COLUMNS,
    READS_UP_TO,
    RUN_COLUMNS,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    SUMMARY_CI,
    SavedFit,
    fit_parts,
    read_saved_fit,
    stored_table,
)

if TYPE_CHECKING:  # imported when a grouped file is read: `show` of a plain fit needs no JAX
    import xarray as xr

    from scalebayes.data import Runs
    from scalebayes.groups.result import GroupedFit
    from scalebayes.laws import Law
    from scalebayes.likelihood import Likelihood
    from scalebayes.results import FitSettings

__all__ = ["SCHEMA_VERSION", "SUMMARY_CI", "load_description", "load_fit", "save_fit"]
_GROUPS = ("posterior", "log_likelihood", "observed_data", "constant_data", "sample_stats")
_RUNS = ("observed_data", "constant_data")  # the groups that hold the runs
HIDDEN = "hidden_params"  # the posterior's hidden parameters, stacked along HIDDEN_DIM
HIDDEN_DIM = "hidden_param"


def save_fit(fit: Fit | GroupedFit, path: str | os.PathLike[str]) -> Path:
    """Write ``fit`` (a :class:`Fit` or a grouped fit) to ``path`` (NetCDF4/HDF5), whole or not at all.

    The file is written beside ``path`` and moved over it when complete
    (:func:`scalebayes.outputs.replacing`): a crash or Ctrl-C leaves the previous file as it was.
    """
    path = check_file(path, suffixes=FIT_SUFFIXES)
    tree = fit.idata.copy()
    runs = fit.runs
    if runs.group is not None:
        tree["constant_data"] = (
            tree["constant_data"].to_dataset().assign(group=("run", runs.group.astype(str)))
        )
    hidden = [n for n in fit.likelihood.discrepancy.hidden_names(fit.law) if n in fit.posterior]
    if hidden:
        posterior = fit.posterior
        stacked = posterior[hidden].to_dataarray(dim=HIDDEN_DIM)
        tree["posterior"] = posterior.drop_vars(hidden).assign({HIDDEN: stacked})
    for name, values in (("U", runs.U), ("budget", runs.budget)):
        if values is not None and name not in tree["constant_data"]:
            tree["constant_data"] = (
                tree["constant_data"].to_dataset().assign({name: ("run", values)})
            )
    tree.attrs = {
        SCHEMA_KEY: SCHEMA_VERSION,
        "scalebayes_law": json.dumps(fit.law.to_dict()),
        "scalebayes_likelihood": json.dumps(fit.likelihood.to_dict()),
        "scalebayes_settings": json.dumps(fit.settings.to_dict()),
        "scalebayes_diagnostics": json.dumps(fit.diagnostics.to_dict()),
        # json writes floats by repr, so the reference reads back bit for bit.
        "scalebayes_log_ref": json.dumps(
            {k: np.asarray(v).tolist() for k, v in fit.log_ref.items()}
        ),
        "scalebayes_runs": json.dumps(
            {
                "source": runs.source,
                "cost_k": runs.cost_k,
                "column_map": dict(runs.column_map),
                "derived": list(runs.derived),
                # Index labels of a DataFrame may be of any type: kept as text unless plain.
                "rows": [r if isinstance(r, int | float | str) else str(r) for r in runs.rows],
                "row_label": runs.row_label,
            }
        ),
    }
    if is_grouped(fit):
        tree.attrs[SCHEMA_KEY] = GROUPED_SCHEMA_VERSION
        tree.attrs["scalebayes_kind"] = GROUPED
        tree.attrs["scalebayes_pooling"] = json.dumps(fit.plan.to_dict())
    else:
        # The parameter table `show` prints, so that reading a fit needs no statistics.
        summary = fit.summary(SUMMARY_CI)
        tree.attrs["scalebayes_summary"] = summary.to_json(orient="split", double_precision=15)
    with replacing(path) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")
    return path


def load_fit(
    path: str | os.PathLike[str], *, groups: Sequence[str] | None = None
) -> Fit | GroupedFit:
    """Read a fit written by :func:`save_fit` (a grouped fit comes back as a :class:`GroupedFit`).

    Refuses files it did not write or cannot read.

    ``groups`` names the groups of draws to read, of ``posterior``, ``log_likelihood`` and
    ``sample_stats`` (default all); what describes the fit (law, likelihood, settings,
    diagnostics, the stored parameter table) and the runs are always read. Opening a group of a
    NetCDF file costs a tenth of a second or more: a description (:func:`load_description`) reads none, the decision
    commands the posterior alone. The fit's ``idata`` then lacks the others (comparisons need
    ``log_likelihood``, the diagnostic plots ``sample_stats``). Files without a stored table or
    reference are read whole.

    Raises
    ------
    FitFileError
        Naming what is wrong: no such file, not NetCDF, not a fit, a newer schema, or the part
        of a fit that is missing or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise FitFileError(
            f"{path}: no such file (write one with `scalebayes fit ... --out {path}`)"
        )
    unknown = sorted(set(groups or ()) - set(_GROUPS))
    if unknown:
        raise ScalebayesError(f"groups={unknown}: a fit's groups are {', '.join(_GROUPS)}")
    try:
        tree = _read_tree(path, groups)
    except Exception as err:  # h5py/netCDF raise many types for a damaged file
        if groups is not None:  # read it whole, to say what is wrong
            return load_fit(path)
        raise FitFileError(
            f"{path}: not a readable NetCDF file ({type(err).__name__}: {err})"
        ) from err
    needed = {f"scalebayes_{k}" for k in ("summary", "log_ref")}
    if groups is not None and not needed <= set(tree.attrs):
        return load_fit(path)  # the table (or the reference) is computed from the draws
    attrs = tree.attrs
    posterior = tree["posterior"].to_dataset() if "posterior" in tree.children else {}
    if HIDDEN in posterior:
        split = posterior[HIDDEN].to_dataset(dim=HIDDEN_DIM)
        tree["posterior"] = posterior.drop_vars([HIDDEN, HIDDEN_DIM]).assign(split.data_vars)
    if SCHEMA_KEY not in attrs:
        raise FitFileError(
            f"{path}: a NetCDF file, but not a scalebayes fit (no {SCHEMA_KEY!r} attribute)"
        )
    version = int(attrs[SCHEMA_KEY])
    if version > READS_UP_TO:
        raise FitFileError(
            f"{path}: written with fit schema version {version}; this scalebayes reads up to "
            f"{READS_UP_TO}: upgrade scalebayes"
        )
    grouped = attrs.get("scalebayes_kind") == GROUPED
    needed = (*META, "pooling") if grouped else META
    missing = [f"attribute scalebayes_{k}" for k in needed if f"scalebayes_{k}" not in attrs]
    if version < 2:  # written before the reference was stored: recomputed below
        missing = [m for m in missing if not m.endswith("log_ref")]
    wanted = _GROUPS if groups is None else (*groups, *_RUNS)
    missing += [f"group {g}" for g in _GROUPS if g in wanted and g not in tree.children]
    if missing:
        raise FitFileError(f"{path}: not a complete scalebayes fit: missing {', '.join(missing)}")
    try:
        constant = tree["constant_data"].to_dataset()
        columns = {name: constant[name].to_numpy() for name in constant.data_vars}
        columns["loss"] = tree["observed_data"]["loss"].to_numpy()
        columns = {k: v for k, v in columns.items() if k in (*RUN_COLUMNS, *OPTIONAL_RUN_COLUMNS)}
        law, runs, likelihood, settings, diagnostics, log_ref = fit_parts(attrs, columns, path)
        if "group" in constant:
            tree["constant_data"] = constant.drop_vars("group")
        if log_ref is None:
            log_ref = _recomputed_reference(law, likelihood, runs, settings)
        if grouped:
            from scalebayes.groups.pooling import Plan
            from scalebayes.groups.result import GroupedFit

            plan = Plan.from_dict(json.loads(attrs["scalebayes_pooling"]), law, likelihood)
            groups = tuple(str(g) for g in tree["posterior"]["group"].to_numpy())
            parts = (law, runs, likelihood, plan, groups, tree, settings, diagnostics, log_ref)
            tree.attrs = {}
            result = GroupedFit(*parts)
            _check_grouped(result, path)
            return result
        fit = Fit(
            law=law,
            runs=runs,
            likelihood=likelihood,
            idata=tree,
            settings=settings,
            diagnostics=diagnostics,
            log_ref=log_ref,
        )
    except (KeyError, TypeError, ValueError, ScalebayesError) as err:
        if isinstance(err, FitFileError):
            raise
        raise FitFileError(f"{path}: damaged scalebayes fit ({type(err).__name__}: {err})") from err
    if "scalebayes_summary" in attrs:  # optional: files before it compute the table on demand
        stored = stored_table(attrs["scalebayes_summary"], fit.reported_names)
        if stored is None and groups is not None:
            return load_fit(path)
        fit.summaries[SUMMARY_CI] = fit.summary(SUMMARY_CI) if stored is None else stored
    tree.attrs = {}
    _check_shapes(fit, path)
    return fit


def load_description(path: str | os.PathLike[str]) -> SavedFit | Fit | GroupedFit:
    """What ``scalebayes show`` prints of the fit at ``path``: its parts and parameter table.

    A plain fit with its stored table is described without reading its draws or importing
    xarray (:func:`scalebayes.saved.read_saved_fit`); any other file is read by
    :func:`load_fit` without its draws, which raises :class:`FitFileError` for a bad one.
    """
    return read_saved_fit(path) or load_fit(path, groups=())


def _read_tree(path: Path, groups: Sequence[str] | None) -> xr.DataTree:
    """The file's DataTree, loaded: whole, or the root's attributes, the runs and ``groups``."""
    import xarray as xr

    if groups is None:
        with xr.open_datatree(path, engine="h5netcdf") as opened:
            return opened.load()
    read = {}
    for group in (None, *_RUNS, *groups):
        with xr.open_dataset(path, engine="h5netcdf", group=group) as opened:
            read[group or "/"] = opened.load()
    return xr.DataTree.from_dict(read)


def _recomputed_reference(
    law: Law, likelihood: Likelihood, runs: Runs, settings: FitSettings
) -> dict[str, np.ndarray]:
    """The reference of a file written before it was stored (schema 1), computed as then."""
    from scalebayes.model import reference_point
    from scalebayes.runtime import precision

    with precision(settings.precision):
        ref = reference_point(law, likelihood, runs.log_inputs(), np.log(runs.loss), runs.weight)
    return {k: np.asarray(v) for k, v in ref.items()}


def _check_shapes(fit: Fit, path: Path) -> None:
    """Refuse draws that do not fit the law or the runs (in the groups that were read)."""
    read = fit.idata.children
    missing = (
        [n for n in fit.param_names if n not in fit.idata["posterior"]]
        if "posterior" in read
        else []
    )
    runs = (
        fit.idata["log_likelihood"]["loss"].shape[-1] if "log_likelihood" in read else len(fit.runs)
    )
    if missing or runs != len(fit.runs):
        raise FitFileError(
            f"{path}: damaged scalebayes fit (posterior lacks {missing} or runs mismatch)"
        )
    if not np.all(np.isfinite(fit.runs.loss)):
        raise FitFileError(f"{path}: damaged scalebayes fit (non-finite stored losses)")


def _check_grouped(fit: GroupedFit, path: Path) -> None:
    """Refuse a grouped file whose posterior, runs or groups do not fit together."""
    posterior = fit.idata["posterior"]
    missing = [name for name in fit.plan.reported_names(fit.law) if name not in posterior]
    if missing:
        raise FitFileError(f"{path}: damaged grouped fit (posterior lacks {missing})")
    if fit.idata["log_likelihood"]["loss"].shape[-1] != len(fit.runs):
        raise FitFileError(f"{path}: damaged grouped fit (log likelihood and runs mismatch)")
    labels = fit.runs.group
    strays = sorted(set(labels) - set(fit.groups)) if labels is not None else ["(no group column)"]
    if strays or len(fit.groups) != fit.plan.n_groups:
        raise FitFileError(
            f"{path}: damaged grouped fit (runs' groups {strays} not among {list(fit.groups)}, "
            f"or {fit.plan.n_groups} groups pooled)"
        )
    if not np.all(np.isfinite(fit.runs.loss)):
        raise FitFileError(f"{path}: damaged grouped fit (non-finite stored losses)")
