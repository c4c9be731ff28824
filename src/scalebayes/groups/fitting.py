"""Fit one law to several groups of runs at once, with partial pooling: :func:`fit_groups`."""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from scalebayes import model_sampling
from scalebayes.data import Runs, load_runs
from scalebayes.discrepancy.base import Stage
from scalebayes.engine import ProgressCallback
from scalebayes.errors import ScalebayesError
from scalebayes.fitting import package_versions, prepare, sampler_settings
from scalebayes.groups.log_lik import pointwise_log_lik
from scalebayes.groups.pooling import (
    DISCREPANCY_SPREAD,
    DISCREPANCY_SPREAD_SITE,
    DISCREPANCY_Z_SITE,
    Pooling,
    grouped_model,
)
from scalebayes.groups.result import GroupedFit
from scalebayes.groups.terms import term_priors
from scalebayes.laws import Law
from scalebayes.likelihood import Likelihood
from scalebayes.model import ModelData, reference_point
from scalebayes.preflight import check_finite, check_identifiable
from scalebayes.priors import Prior
from scalebayes.results import FitSettings, Settings, tree_diagnostics, warn_if_unhealthy
from scalebayes.runtime import precision


def fit_groups(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str] = "chinchilla",
    *,
    group: str | Sequence[str] | None = None,
    pooling: Pooling | None = None,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    **sampler: Any,
) -> GroupedFit:
    """Sample the hierarchical posterior of ``law`` over the groups of ``runs`` with NUTS.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        Training runs with a group column (``group`` names it when reading a table).
    law : Law, name or path
        As in :func:`scalebayes.fit`; its priors are the population values' priors.
    group : column name or names, optional
        The column(s) labelling each run's group, joined into one label when several.
    pooling : Pooling, optional
        Which parameters the groups share, pool or keep separate; default :class:`Pooling()`
        (everything pooled, coefficients on the log scale, ``nu`` shared).
    priors, settings, progress, **sampler
        As in :func:`scalebayes.fit`.
    likelihood : Likelihood, optional
        Noise on log loss and the discrepancy the groups pool; default Student-t(4) and
        ``auto``, which here is the ``quadratic`` discrepancy (one recipe's curvature that the
        law lacks, measured on every ladder at once). One sampled apart from the law (``gp``)
        is refused; ``none`` fits the plain law.

    Returns
    -------
    GroupedFit
        Failed diagnostics (R-hat, ESS, divergences) also raise a ``ConvergenceWarning``.
    """
    if not isinstance(runs, Runs):
        runs = load_runs(runs, group=group)
    elif group is not None:
        raise ScalebayesError("group= names the column when reading a table; these runs are read")
    labels = runs.group
    if labels is None:
        raise ScalebayesError(
            f"{runs.source} has no group column: name it with group=COLUMN (CLI: --group COLUMN)"
        )
    groups = tuple(str(g) for g in pd.unique(labels))
    if len(groups) < 2:
        raise ScalebayesError(f"{runs.source}: one group ({groups[0]!r}); fit it with fit()")
    likelihood = likelihood or Likelihood()
    shared = likelihood.discrepancy.for_groups(load_law_of(law))
    likelihood = dataclasses.replace(likelihood, discrepancy=shared)
    settings = sampler_settings(settings, sampler)
    law, likelihood = prepare(law, likelihood, priors)
    missing = [name for name in law.inputs if name not in runs.inputs()]
    if missing:
        raise ScalebayesError(f"law {law.name!r} needs input(s) {missing}, not in {runs.source}")
    check_identifiable(law, likelihood, runs, where=runs.source)
    plan = (pooling or Pooling()).plan(law, likelihood, strong_groups(runs, groups))
    with precision(settings.precision):
        check_finite(law, runs, seed=settings.seed, precision=settings.precision)
        started = time.perf_counter()
        data = grouped_data(law, likelihood, runs, groups)
        model_data = by_group(data, len(groups))
        stage = Stage(
            f"{law.key}:{plan.key}:{likelihood.discrepancy!r}",
            likelihood,
            functools.partial(grouped_model, law, likelihood, plan),
            {**plan.sites(), **discrepancy_sites(law, likelihood, plan)},
            label="groups",
            min_target_accept=MIN_TARGET_ACCEPT,
            terms=plan.terms,
        )
        (samples, stats), compile_s, devices = model_sampling.sample_model_carefully(
            stage, model_data, settings, progress
        )
        names = likelihood.discrepancy.param_names(law, ())
        if plan.discrepancy == "separate":  # per group: named as the law's per-group values
            samples.update({f"{n}_group": samples.pop(n) for n in names})
        values = {n: samples[f"{n}_group"] for n in (*law.param_names, *likelihood.param_names)}
        shared = {}
        for n in names:
            if plan.discrepancy == "shared":
                shared[n] = samples[n]
            else:
                values[n] = samples[f"{n}_group"]
        log_lik = pointwise_log_lik(law, likelihood, values, shared, data)
        samples["_log_lik"] = np.asarray(log_lik)
        log_ref = {k: np.asarray(v) for k, v in data.log_ref.items()}
    wall = {"compile": compile_s, "sampling": time.perf_counter() - started - compile_s}
    record = FitSettings(
        **settings.sampler.to_dict(), wall_time=wall, devices=devices, versions=package_versions()
    )
    idata = grouped_datatree(runs, groups, samples, stats)
    discrepancy = plan.discrepancy_names(
        likelihood.discrepancy.param_names(law, ()), likelihood.discrepancy.group_spread_name
    )
    sampled = [n for n in (*plan.reported_names(law), *discrepancy) if not _pinned(law, n)]
    diagnostics = tree_diagnostics(idata, sampled)
    warn_if_unhealthy(diagnostics)
    return GroupedFit(law, runs, likelihood, plan, groups, idata, record, diagnostics, log_ref)


# A group is sampled centred when its runs alone pin its values: at least this many runs over
# at least a decade of compute (a full ladder: Marin's have 85-88 runs over two decades, the
# simulated ones 30 over 1.7). A new ladder's few cheapest runs are sampled partly centred
# (pooling.WEAK_CENTRING).
STRONG_RUNS = 20
STRONG_DECADES = 1.0
# Spreads near zero (groups alike in a parameter) leave a narrow neck for centred groups:
# smaller steps there (28 divergences of 600 at 0.8 on three simulated ladders).
MIN_TARGET_ACCEPT = 0.9


def strong_groups(runs: Runs, groups: Sequence[str]) -> tuple[bool, ...]:
    """Per group, whether its data are strong enough to sample its pooled values centred."""
    strong = []
    for label in groups:
        c = runs.C[runs.group == label]
        strong.append(len(c) >= STRONG_RUNS and np.log10(c.max() / c.min()) >= STRONG_DECADES)
    return tuple(strong)


def discrepancy_sites(law: Law, likelihood: Likelihood, plan: Any) -> dict[str, Any]:
    """The discrepancy's sites in the grouped model: its own, or one set per group.

    Separate: each of its sites once per group. Pooled: its own (the population's), with each
    group's standardised offsets and their spread.
    """
    sites = likelihood.discrepancy.sites(law)
    if plan.discrepancy == "separate":
        sites = {n: (prior, (plan.n_groups, *shape)) for n, (prior, shape) in sites.items()}
    k = len(likelihood.discrepancy.param_names(law, ()))
    if plan.discrepancy == "pooled" and k:
        likelihood.discrepancy.group_scale(law)  # refuses a discrepancy that cannot be pooled
        sites[DISCREPANCY_SPREAD_SITE] = (Prior.parse(DISCREPANCY_SPREAD), ())
        sites[DISCREPANCY_Z_SITE] = (Prior.parse("Normal(loc=0.0, scale=1.0)"), (plan.n_groups, k))
    return sites


def load_law_of(law: Law | str | os.PathLike[str]) -> Law:
    """The law itself (loaded from a name or file)."""
    from scalebayes.laws import load_law

    return load_law(law)


def grouped_data(
    law: Law, likelihood: Likelihood, runs: Runs, groups: tuple[str, ...]
) -> ModelData:
    """The model's data, one entry per run: log inputs, log loss, weights and each run's group.

    ``extra`` holds ``group`` (each run's group index), the discrepancy's per-run arrays and
    ``term_prior`` (per pooled term, the (loc, sd) of its population prior: per table, not per
    run). :func:`by_group` lays it out as :func:`~scalebayes.groups.pooling.grouped_model`
    takes it.
    """
    log_inputs = {n: np.asarray(v) for n, v in runs.log_inputs().items() if n in law.inputs}
    log_loss = np.log(np.asarray(runs.loss, dtype=float))
    weight = np.asarray(runs.weight if runs.weight is not None else np.ones(len(runs)), float)
    log_ref = reference_point(law, likelihood, log_inputs, log_loss, weight)
    index = {label: i for i, label in enumerate(groups)}
    group = np.asarray([index[str(g)] for g in runs.group], dtype=np.int32)
    extra = {
        "group": group,
        "term_prior": term_priors(law, log_ref),
        **likelihood.discrepancy.table_arrays(law, log_inputs, log_ref),
    }
    return jax.tree.map(jnp.asarray, ModelData(log_inputs, log_loss, weight, log_ref, extra))


def by_group(data: ModelData, n_groups: int) -> ModelData:
    """``data`` (:func:`grouped_data`) laid out by group: per-run arrays (groups, most runs, ...).

    A group with fewer runs is padded with copies of its first run at weight 0. Group values
    then broadcast over their runs. Gathered by each run's group index, their gradients were
    scatters, the slowest kernels of the model on a CPU: the potential and its gradient took
    19.7 us against 11.7 (Marin's 258 runs, quadratic).
    """
    rows, real = _group_rows(np.asarray(data.extra["group"]), n_groups)
    per_run = {k: v for k, v in data.extra.items() if k not in ("group", "term_prior")}
    return ModelData(
        {n: v[rows] for n, v in data.log_inputs.items()},
        data.log_loss[rows],
        jnp.where(jnp.asarray(real), data.weight[rows], 0.0),
        data.log_ref,
        {"term_prior": data.extra["term_prior"], **{k: v[rows] for k, v in per_run.items()}},
    )


def _group_rows(group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Run indices laid out (groups, most runs in a group) and which of them are real.

    A group with fewer runs is padded with its first run's index.
    """
    counts = np.bincount(group, minlength=n_groups)
    width = int(counts.max())
    rows = np.zeros((n_groups, width), dtype=int)
    for g in range(n_groups):
        own = np.flatnonzero(group == g)
        rows[g] = np.concatenate([own, np.full(width - len(own), own[0])])
    return rows, np.arange(width)[None, :] < counts[:, None]


def _pinned(law: Law, name: str) -> bool:
    base = name.removesuffix("_group")
    return base in law.params and base not in law.free_param_names


def grouped_datatree(
    runs: Runs, groups: tuple[str, ...], samples: dict[str, np.ndarray], stats: dict[str, Any]
) -> Any:
    """The ArviZ DataTree of a grouped fit (``samples["_log_lik"]``: each run's log density)."""
    import arviz_base as azb

    log_lik = samples.pop("_log_lik")
    index = {label: i for i, label in enumerate(groups)}
    constant = {name: runs.table[name].to_numpy() for name in ("N", "D", "C")}
    constant["group_index"] = np.asarray([index[str(g)] for g in runs.group])
    per_group = {n: ["group"] for n in samples if n.endswith("_group")}
    return azb.from_dict(
        {
            "posterior": samples,
            "log_likelihood": {"loss": log_lik},
            "observed_data": {"loss": runs.loss},
            "constant_data": constant,
            "sample_stats": dict(stats),
        },
        dims={"loss": ["run"], **per_group, **{name: ["run"] for name in constant}},
        coords={"run": np.arange(len(runs)), "group": list(groups)},
    )
