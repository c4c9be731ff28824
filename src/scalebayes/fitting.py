"""Fit a law to runs: the public :func:`fit` and :func:`fit_batch`.

They read the runs and the law, apply prior overrides, build each table's arrays
(:func:`scalebayes.model.model_data`), hand them to the engine, and wrap its draws in a
:class:`~scalebayes.results.Fit` with diagnostics. Sampler settings are one
:class:`~scalebayes.results.Settings` value.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scalebayes import engine
from scalebayes.data import Runs, load_runs, repeats
from scalebayes.engine import ProgressCallback
from scalebayes.errors import DataWarning, RunsFileError, ScalebayesError
from scalebayes.laws import Law, load_law
from scalebayes.likelihood import Likelihood
from scalebayes.model import Tables
from scalebayes.preflight import check_finite, check_identifiable, one_ratio_note
from scalebayes.priors import Prior
from scalebayes.results import (
    Fit,
    FitSettings,
    Settings,
    compute_diagnostics,
    to_datatree,
    warn_if_unhealthy,
)
from scalebayes.runtime import precision


def fit(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str] = "chinchilla",
    *,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    **sampler: Any,
) -> Fit:
    """Sample the posterior of ``law`` given ``runs`` with NUTS.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        Training runs; anything :func:`scalebayes.load_runs` accepts.
    law : Law, name or path
        A catalogue name (``scalebayes laws`` lists them), a ``.toml`` law file, or a :class:`Law`.
    priors : mapping, optional
        Prior overrides by parameter name, e.g. ``{"alpha": "Gamma(concentration=2, rate=6)"}``;
        ``sigma``, ``nu`` and the discrepancy's parameters (``gp_amplitude``) are accepted too.
    likelihood : Likelihood, optional
        Observation model on log loss; default Student-t with 4 degrees of freedom plus, for a
        law of at most two inputs, the GP discrepancy (``Likelihood(discrepancy="auto")``).
    settings : Settings, optional
        Chains, draws, warmup, seed, NUTS settings and precision; default ``Settings()``.
    mask : bool array, shape (n_runs,), optional
        Fit only the runs where True (``Fit.runs`` is that subset). The others stay in the
        compiled data with weight 0, so fits of different subsets of one table (backtests,
        leave-future-out) share one compiled sampler.
    progress : callable, optional
        ``progress(done, total, phase)`` called as sampling proceeds.
    **sampler
        Changes to ``settings`` by name, e.g. ``chains=2, seed=1``.

    Returns
    -------
    Fit
        Posterior and diagnostics. Failed diagnostics also raise a :class:`ConvergenceWarning`.
    """
    (result,) = _fit_all(
        [runs],
        None if mask is None else [mask],
        law,
        priors=priors,
        likelihood=likelihood,
        settings=sampler_settings(settings, sampler),
        progress=progress,
    )
    warn_if_unhealthy(result.diagnostics)
    return result


def fit_batch(
    datasets: Sequence[Runs | pd.DataFrame | str | os.PathLike[str]],
    law: Law | str | os.PathLike[str] = "chinchilla",
    *,
    masks: Sequence[np.ndarray] | None = None,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    **sampler: Any,
) -> list[Fit]:
    """Fit one law to many tables of runs at once: simulation studies, backtests, sweeps.

    Every table must have the same number of runs (fit subsets of one table with ``masks``).
    All fits share one compiled sampler: on a GPU their chains run as one batch (spread over
    devices; see :class:`engine.Sampler`); on a CPU, which runs chains one after another anyway,
    the tables take turns on the one-table sampler (:func:`engine.batches_together`), so a
    backtest after an ordinary fit of the same table compiles nothing.
    Arguments are as in :func:`fit`; ``masks`` holds one boolean array per table. Fit ``i``
    records ``settings.batch_index = i``; the same ``seed`` gives identical draws for the same
    batch. Unlike :func:`fit`, poor diagnostics do not warn here (a study of hundreds of fits
    reads ``fit.diagnostics`` instead).
    """
    if not len(datasets):
        raise ScalebayesError("fit_batch needs at least one table of runs")
    if masks is not None and len(masks) != len(datasets):
        raise ScalebayesError(
            f"fit_batch got {len(masks)} masks for {len(datasets)} tables: expected one per table"
        )
    return _fit_all(
        list(datasets),
        None if masks is None else list(masks),
        law,
        priors=priors,
        likelihood=likelihood,
        settings=sampler_settings(settings, sampler),
        progress=progress,
    )


def sampler_settings(settings: Settings | None, changes: Mapping[str, Any]) -> Settings:
    """``settings`` with the keyword ``changes`` of a fitting call; warns for one chain."""
    result = Settings.make(settings, **changes)
    if result.chains < 2:
        warnings.warn("one chain: R-hat cannot be computed; use chains >= 2", stacklevel=4)
    return result


def prepare(
    law: Law | str | os.PathLike[str],
    likelihood: Likelihood | None,
    priors: Mapping[str, str | Prior] | None,
) -> tuple[Law, Likelihood]:
    """The law and the likelihood a fit uses: loaded, the discrepancy resolved, priors applied."""
    law = load_law(law)
    likelihood = (likelihood or Likelihood()).for_law(law)
    return apply_priors(law, likelihood, priors or {})


def _fit_all(
    datasets: list[Any],
    masks: list[np.ndarray] | None,
    law: Law | str | os.PathLike[str],
    *,
    priors: Mapping[str, str | Prior] | None,
    likelihood: Likelihood | None,
    settings: Settings,
    progress: ProgressCallback | None,
) -> list[Fit]:
    tables = [runs if isinstance(runs, Runs) else load_runs(runs) for runs in datasets]
    sizes = {len(runs) for runs in tables}
    if len(sizes) > 1:
        raise ScalebayesError(
            f"tables of different sizes ({sorted(sizes)} runs) cannot share one compiled "
            "sampler: fit them separately, or fit subsets of one table with masks"
        )
    fitted = []
    for i, runs in enumerate(tables):
        subset = runs if masks is None else runs.subset(masks[i])  # subset() validates the mask
        if not len(subset):
            raise ScalebayesError(f"mask {i} selects no runs: expected at least one True")
        fitted.append(subset)
    law, likelihood = prepare(law, likelihood, priors)
    for runs in tables:
        _check_inputs(law, runs)
    for i, runs in enumerate(fitted):
        where = runs.source if masks is None else f"{runs.source} (the runs of mask {i})"
        check_identifiable(law, likelihood, runs, where=where)
    for runs in {id(t): t for t in tables}.values():  # once per table, not per mask of it
        note = one_ratio_note(law, runs)
        if note:
            warnings.warn(note, DataWarning, stacklevel=3)

    with precision(settings.precision):
        check_finite(law, tables[0], seed=settings.seed, precision=settings.precision)
        started = time.perf_counter()
        arrays = Tables(law, tables, likelihood, masks)
        blocks, compile_s, n_devices = engine.sample(law, likelihood, arrays, settings, progress)
        wall = {"compile": compile_s, "sampling": time.perf_counter() - started - compile_s}
        tables_data = arrays.full()
    versions = package_versions()
    results = []
    for i, (samples, stats) in enumerate(blocks):
        if masks is not None:
            samples["_log_lik"] = samples["_log_lik"][..., np.asarray(masks[i])]
        record = FitSettings(
            **settings.sampler.to_dict(),
            wall_time=wall,
            devices=n_devices,
            batch_index=i if len(tables) > 1 else None,
            versions=versions,
        )
        idata = to_datatree(fitted[i], samples, stats)
        diagnostics = compute_diagnostics(idata, law, likelihood)
        log_ref = {k: np.asarray(v) for k, v in tables_data[i].log_ref.items()}
        results.append(Fit(law, fitted[i], likelihood, idata, record, diagnostics, log_ref))
    return results


def apply_priors(
    law: Law, likelihood: Likelihood, priors: Mapping[str, str | Prior]
) -> tuple[Law, Likelihood]:
    """Prior overrides by name, split between the law's parameters and the likelihood's."""
    names = likelihood.prior_names
    noise = {k: v for k, v in priors.items() if k in names}
    if "nu" in noise and not likelihood.estimates_nu:
        raise ScalebayesError(
            "a prior for 'nu' was given but the likelihood fixes the Student-t degrees of freedom; "
            "use Likelihood(df=None) (CLI: --df estimate) to estimate them"
        )
    law = law.with_priors({k: v for k, v in priors.items() if k not in names})
    return law, likelihood.with_priors(noise) if noise else likelihood


def _check_inputs(law: Law, runs: Runs) -> None:
    available = runs.inputs()
    missing = [name for name in law.inputs if name not in available]
    if missing:
        raise ScalebayesError(
            f"law {law.name!r} needs input(s) {missing}, which {runs.source} does not provide"
        )
    if "U" not in law.inputs:
        repeated = repeats(runs.table)
        if repeated.any():
            epochs = float((runs.table["D"] / runs.table["U"]).max())
            problem = (
                f"{int(repeated.sum())} runs repeat their data (D > U, up to {epochs:.3g} "
                f"epochs), but law {law.name!r} does not read U and counts a repeated token as "
                "a fresh one; the catalogue's data_constrained law discounts repeats "
                "(--law data_constrained)"
            )
            rows = [r for r, hit in zip(runs.rows, repeated, strict=True) if hit]
            where = RunsFileError(
                runs.source, problem, column=runs.column_map.get("U", "U"), rows=rows,
                row_label=runs.row_label,
            )  # fmt: skip
            warnings.warn(str(where), DataWarning, stacklevel=4)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a fit records."""
    from importlib.metadata import version

    found = {"python": platform.python_version()}
    for package in (
        "scalebayes",
        "jax",
        "jaxlib",
        "numpyro",
        "arviz-base",
        "arviz-stats",
        "numpy",
        "xarray",
    ):
        found[package] = version(package)
    return found
