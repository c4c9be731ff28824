"""Build a real :class:`~scalebayes.results.Fit` from known posterior draws, without NUTS.

Everything downstream of inference (predict, optimal, plots, io, compare) reads only a Fit,
so tests and examples can hand it draws whose answer they know and run in milliseconds.

>>> import numpy as np, scalebayes as sb
>>> from scalebayes.testing import fit_from_draws, jittered_draws
>>> runs = sb.simulate("chinchilla", sb.simulation.EPOCH_CHINCHILLA,
...                    sb.isoflop_design([1e19, 1e20]), seed=0)   # doctest: +SKIP
>>> draws = jittered_draws({**sb.simulation.EPOCH_CHINCHILLA, "sigma": 0.01},
...                        rel_sd=0.01, chains=2, draws=100)      # doctest: +SKIP
>>> fit = fit_from_draws("chinchilla", runs, draws)             # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalebayes.data import Runs, load_runs
from scalebayes.discrepancy import Auto
from scalebayes.errors import ScalebayesError
from scalebayes.laws import Law, load_law
from scalebayes.likelihood import Likelihood, model_param_names
from scalebayes.model import model_data, pointwise_log_lik
from scalebayes.results import Fit, FitSettings, compute_diagnostics, to_datatree
from scalebayes.runtime import DEFAULT_PRECISION, precision

if TYPE_CHECKING:
    from scalebayes.groups.pooling import Pooling
    from scalebayes.groups.result import GroupedFit

__all__ = ["fit_from_draws", "grouped_fit_from_draws", "jittered_draws"]


def fit_from_draws(
    law: Law | str | os.PathLike[str],
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    draws: Mapping[str, ArrayLike],
    *,
    likelihood: Likelihood | None = None,
) -> Fit:
    """A :class:`Fit` whose posterior is exactly ``draws``; no sampling.

    The result has the same DataTree groups as :func:`scalebayes.fit` returns: posterior,
    log_likelihood (each run's log density on the loss scale, from
    :func:`scalebayes.model.pointwise_log_lik`), observed_data, constant_data and sample_stats
    (no divergences, no tree-depth saturation), and diagnostics computed by ArviZ from the draws.

    Parameters
    ----------
    law : Law, name or path
        The law the draws belong to.
    runs : Runs, DataFrame or path
        The runs the "fit" conditions on (used for the log-likelihood and the fitted range).
    draws : mapping of str to array, each of shape (chains, draws)
        Every sampled parameter of the law and of the likelihood (``sigma``, and ``nu`` when the
        likelihood estimates it). Parameters pinned with a ``Delta`` prior may be omitted.
    likelihood : Likelihood, optional
        Observation model; default Student-t with 4 degrees of freedom. Its discrepancy
        ``"auto"`` means ``"none"`` here (draws from elsewhere carry no GP); with ``"gp"`` the
        draws must hold ``sigma_law``, ``gp_amplitude`` and the ``gp_w*`` too.

    Raises
    ------
    ScalebayesError
        If a parameter is missing or unknown, shapes differ, or a value is not finite.
    """
    law = load_law(law)
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    likelihood = likelihood or Likelihood()
    if likelihood.discrepancy == Auto():
        likelihood = likelihood.without_discrepancy()
    likelihood = likelihood.for_law(law)
    posterior = _posterior(law, likelihood, draws)
    chains, n_draws = next(iter(posterior.values())).shape

    with precision(DEFAULT_PRECISION):
        data = model_data(law, runs, likelihood)
        params = {name: values[..., None] for name, values in posterior.items()}
        log_lik = np.asarray(
            pointwise_log_lik(law, likelihood, params, data.log_inputs, data.log_loss, data.log_ref)
        )
    stats = {
        "diverging": np.zeros((chains, n_draws), dtype=bool),
        "n_steps": np.zeros((chains, n_draws), dtype=int),
        "reached_max_treedepth": np.zeros((chains, n_draws), dtype=bool),
    }
    idata = to_datatree(runs, {**posterior, "_log_lik": log_lik}, stats)
    settings = FitSettings(chains=chains, draws=n_draws, warmup=0)
    # Constant draws (a pinned value, rel_sd=0) have no variance: R-hat is NaN, not an error.
    with np.errstate(invalid="ignore", divide="ignore"):
        diagnostics = compute_diagnostics(idata, law, likelihood)
    log_ref = {k: np.asarray(v) for k, v in data.log_ref.items()}
    return Fit(law, runs, likelihood, idata, settings, diagnostics, log_ref)


def grouped_fit_from_draws(
    law: Law | str | os.PathLike[str],
    runs: Runs,
    draws: Mapping[str, ArrayLike],
    *,
    pooling: Pooling | None = None,
    likelihood: Likelihood | None = None,
) -> GroupedFit:
    """A :class:`~scalebayes.groups.result.GroupedFit` whose posterior is exactly ``draws``.

    ``runs`` has a group column (e.g. :func:`scalebayes.simulation.simulate_groups`); ``draws``
    holds what :func:`scalebayes.fit_groups` reports for ``pooling`` (default
    :class:`~scalebayes.groups.pooling.Pooling`): population values (chains, draws) under the
    parameters' names, ``<name>_spread`` for pooled ones, and each group's values
    ``<name>_group`` (chains, draws, groups) for every law and noise parameter (pinned ones may
    be omitted), and the discrepancy's parameters if ``likelihood`` has one (default:
    Student-t(4) without one): (chains, draws) when shared, ``<name>_group`` when separate,
    both and the discrepancy's ``group_spread_name`` when pooled.
    """
    from scalebayes.fitting import prepare
    from scalebayes.groups.fitting import grouped_data, grouped_datatree, strong_groups
    from scalebayes.groups.log_lik import pointwise_log_lik
    from scalebayes.groups.pooling import Pooling
    from scalebayes.groups.result import GroupedFit
    from scalebayes.results import tree_diagnostics

    law, likelihood = prepare(law, likelihood or Likelihood(discrepancy="none"), None)
    likelihood = dataclasses.replace(likelihood, discrepancy=likelihood.discrepancy.for_groups(law))
    groups = tuple(str(g) for g in pd.unique(runs.group))
    plan = (pooling or Pooling()).plan(law, likelihood, strong_groups(runs, groups))
    arrays = {name: np.asarray(value, dtype=float) for name, value in draws.items()}
    chains, n_draws = np.shape(arrays[f"{likelihood.param_names[0]}_group"])[:2]
    for name in law.param_names:
        if name not in law.free_param_names:
            value = float(law.params[name].prior.kwargs["v"])
            arrays.setdefault(f"{name}_group", np.full((chains, n_draws, len(groups)), value))
    discrepancy_names = likelihood.discrepancy.param_names(law, ())
    shared_names = discrepancy_names if plan.discrepancy == "shared" else ()
    own = () if shared_names else discrepancy_names  # per group: <name>_group
    spread = likelihood.discrepancy.group_spread_name
    expected = [*plan.reported_names(law), *plan.discrepancy_names(discrepancy_names, spread)]
    missing = [name for name in expected if name not in arrays]
    unknown = [name for name in arrays if name not in expected]
    if missing or unknown:
        raise ScalebayesError(
            f"grouped_fit_from_draws: this pooling takes draws of {expected}; missing {missing}, "
            f"unknown {unknown}"
        )
    names = (*law.param_names, *likelihood.param_names, *own)
    with precision(DEFAULT_PRECISION):
        data = grouped_data(law, likelihood, runs, groups)
        values = {n: arrays[f"{n}_group"] for n in names}
        shared = {n: arrays[n] for n in shared_names}
        log_lik = np.asarray(pointwise_log_lik(law, likelihood, values, shared, data))
    stats = {
        "diverging": np.zeros((chains, n_draws), dtype=bool),
        "reached_max_treedepth": np.zeros((chains, n_draws), dtype=bool),
    }
    idata = grouped_datatree(runs, groups, {**arrays, "_log_lik": log_lik}, stats)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws: R-hat NaN
        sampled = [n for n in expected if n.removesuffix("_group") not in law.params
                   or n.removesuffix("_group") in law.free_param_names]  # fmt: skip
        diagnostics = tree_diagnostics(idata, sampled)
    settings = FitSettings(chains=chains, draws=n_draws, warmup=0)
    log_ref = {k: np.asarray(v) for k, v in data.log_ref.items()}
    return GroupedFit(law, runs, likelihood, plan, groups, idata, settings, diagnostics, log_ref)


def jittered_draws(
    values: Mapping[str, float],
    *,
    rel_sd: float = 0.01,
    chains: int = 4,
    draws: int = 500,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Draws scattered log-normally around ``values``: ``value * exp(rel_sd * z)``, z standard Normal.

    Returns a mapping of name to an array of shape (chains, draws), ready for
    :func:`fit_from_draws`. With ``rel_sd=0`` every draw equals the value.
    """
    if not rel_sd >= 0:
        raise ScalebayesError(f"rel_sd={rel_sd!r}: expected a number >= 0")
    rng = np.random.default_rng(seed)
    return {
        name: float(value) * np.exp(rel_sd * rng.standard_normal((chains, draws)))
        for name, value in values.items()
    }


def _posterior(
    law: Law, likelihood: Likelihood, draws: Mapping[str, ArrayLike]
) -> dict[str, np.ndarray]:
    pinned = {
        name: float(p.prior.kwargs["v"])
        for name, p in law.params.items()
        if p.prior.family == "Delta"
    }
    expected = model_param_names(law, likelihood)
    missing = [name for name in expected if name not in draws and name not in pinned]
    unknown = [name for name in draws if name not in expected]
    if missing or unknown:
        raise ScalebayesError(
            f"fit_from_draws: law {law.name!r} with {likelihood.family} noise takes draws of "
            f"{list(expected)}; missing {missing}, unknown {unknown}"
        )
    arrays = {name: np.asarray(value, dtype=float) for name, value in draws.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    shape = next(iter(shapes.values()))
    if len(shape) != 2 or any(s != shape for s in shapes.values()):
        raise ScalebayesError(
            f"fit_from_draws: every draw array must have the same shape (chains, draws); got {shapes}"
        )
    bad = [name for name, a in arrays.items() if not np.all(np.isfinite(a))]
    if bad:
        raise ScalebayesError(f"fit_from_draws: non-finite draws of {bad}")
    for name, value in pinned.items():
        arrays.setdefault(name, np.full(shape, value))
    return {name: arrays[name] for name in expected}
