"""Approach 2 (Hoffmann et al. 2022): sample the isoFLOP profile model, then allocate.

:func:`fit_isoflops` finds the sweeps (:mod:`~scalebayes.allocation.budgets`), samples the
profile model (:mod:`~scalebayes.allocation.profile`) with the package's NUTS engine and returns
an :class:`~scalebayes.allocation.profiles.IsoflopFit`; :func:`isoflop_optimal` adds the
allocation at any budgets. :class:`IsoflopEstimator` is approach 2 behind the estimator
interface, so ``sb.optimal(fit, budgets, approach=2)`` runs it on a fit's runs.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalebayes.allocation.base import Estimator
from scalebayes.allocation.budgets import LOG10_TOL, MIN_BUDGETS, Budgets, find_budgets
from scalebayes.allocation.profile import ProfileModel, profile_data
from scalebayes.allocation.profiles import IsoflopFit, ProfileAllocation
from scalebayes.allocation.scatter import scatter_draws
from scalebayes.data import Runs, load_runs
from scalebayes.errors import SweepEdgeWarning
from scalebayes.health import diagnose
from scalebayes.results import Diagnostics, Fit, Settings, tree_diagnostics, warn_if_unhealthy
from scalebayes.retry import Block, careful_settings
from scalebayes.runtime import precision

if TYPE_CHECKING:  # the sampler (JAX, NumPyro) loads when an approach samples
    from scalebayes import engine

# Diagnosed: every reported parameter and per-sweep quantity (R-hat, ESS over all of them).
_DIAGNOSED = ("a", "kappa", "log_G", "tau", "p", "q", "sigma", "nu", "log_N_star", "L_star", "K")


def fit_isoflops(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    *,
    model: ProfileModel | None = None,
    settings: Settings | None = None,
    log10_tol: float = LOG10_TOL,
    min_budgets: int = MIN_BUDGETS,
    edge_sweeps: str = "drop",
    progress: engine.ProgressCallback | None = None,
    **sampler: Any,
) -> IsoflopFit:
    """Sample approach 2's posterior: each sweep's latent minimum and the power law through them.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        Training runs with N and loss; sweeps from a ``budget`` column, else from C
        (:func:`~scalebayes.allocation.budgets.find_budgets`, tolerance ``log10_tol``).
    model : ProfileModel, optional
        Priors and noise; default :class:`ProfileModel()`.
    settings : Settings, optional
        Chains, draws, warmup, seed, NUTS settings and precision (``**sampler`` changes them).
    min_budgets : int
        Fewest sweeps accepted (default 3, for the power law through the minima; 1 measures
        each sweep's minimum alone, as the allocation backtest does with held-out sweeps).
    edge_sweeps : {"drop", "keep"}
        Sweeps whose least loss is at their smallest or largest model show no valley:
        ``"drop"`` (default) leaves them out (the fit's ``budgets`` lists them),
        ``"keep"`` uses them (:data:`~scalebayes.allocation.budgets.EDGE_SWEEPS`).

    Raises
    ------
    IsoflopError
        Fewer than ``min_budgets`` sweeps with three runs or more.

    Warns
    -----
    SweepEdgeWarning
        Sweeps whose minimum sits at or beyond an edge of their model sizes.
    ConvergenceWarning
        Poor sampler diagnostics.
    """
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    model = model or ProfileModel()
    settings = Settings.make(settings, **sampler)
    budgets = find_budgets(
        runs, log10_tol=log10_tol, min_budgets=min_budgets, edge_sweeps=edge_sweeps
    )
    from scalebayes import model_sampling

    with precision(settings.precision):
        started = time.perf_counter()
        data = profile_data(runs, budgets)
        stage = model.stage(budgets.n_budgets)
        (samples, stats), compile_s, _ = model_sampling.sample_model_carefully(
            stage, data, settings, progress, health=_health
        )
        if stats["retry_kept"].any():
            settings = careful_settings(settings)
        wall = {"compile": compile_s, "sampling": time.perf_counter() - started - compile_s}
    samples = dict(samples)
    samples["tau"] = scatter_draws(
        *model.scatter_kwargs, np.asarray(samples.pop("residual_ss")), budgets.n_budgets,
        settings.seed,
    )  # fmt: skip
    idata = _datatree(samples, stats, budgets)
    names = [n for n in _DIAGNOSED if n in samples]
    diagnostics = tree_diagnostics(idata, names)
    edge = _edges(runs, budgets, np.median(samples["log_N_star"], axis=(0, 1)))
    result = IsoflopFit(runs, budgets, model, idata, settings, diagnostics, edge, wall)
    if edge.any():
        warnings.warn(
            "isoFLOP sweeps whose loss minimum sits at or beyond an edge of their model sizes "
            "(fewer than two runs on one side; its place rests on the valley's shape): "
            + ", ".join(f"{c:.3g} FLOPs" for c in budgets.compute[edge]),
            SweepEdgeWarning,
            stacklevel=2,
        )
    warn_if_unhealthy(diagnostics)
    return result


def isoflop_optimal(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    budgets: ArrayLike,
    *,
    cost_k: float | None = None,
    **options: Any,
) -> ProfileAllocation:
    """Approach 2's N*, D*, tokens per parameter and exponents at ``budgets``, per draw.

    ``options`` go to :func:`fit_isoflops`; see :meth:`IsoflopFit.optimal` for what is returned.
    """
    return fit_isoflops(runs, **options).optimal(budgets, cost_k=cost_k)


class IsoflopEstimator(Estimator):
    """Approach 2 on a fit's runs: the law is not used, only the runs it was fitted to."""

    approach: ClassVar[str] = "2"
    title: ClassVar[str] = "isoFLOP minima"
    samples: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        self.options = options

    def allocate(self, fit: Fit, budgets: ArrayLike, *, cost_k: float | None = None) -> Any:
        """Sample the profile model on ``fit.runs`` and allocate at ``budgets``.

        The fit's sampler settings are used unless ``settings`` is among the options.
        """
        options = {"settings": fit.settings.sampler, **self.options}
        return isoflop_optimal(fit.runs, budgets, cost_k=cost_k, **options)

    def heading(self, fit: Fit, result: Any) -> str:
        """One line naming what was estimated."""
        return f"compute-optimal allocation from isoFLOP minima (approach 2; C = {result.cost_k:g} N D)"

    def notes(self, fit: Fit, result: Any) -> list[str]:
        """The result's own notes."""
        return result.notes()

    def at_budgets(self, fit: Fit, result: Any, budgets: ArrayLike) -> Any:
        """The result's own posterior (isoFLOP fit) at other ``budgets``: nothing sampled again."""
        return result.fit.optimal(budgets, cost_k=result.cost_k)

    def diagnostics(self, fit: Fit, result: Any) -> Diagnostics:
        """The isoFLOP fit's diagnostics (the law's are not involved)."""
        return result.diagnostics

    def sweep_scatter(self, result: Any) -> Any:
        """``tau``: the spread of the sweeps' minima around the power law, per draw."""
        return result.fit.posterior["tau"]


def _datatree(
    samples: dict[str, np.ndarray], stats: dict[str, np.ndarray], budgets: Budgets
) -> Any:
    import arviz_base as azb

    per_budget = ("log_N_star", "L_star", "K", "x_star_raw", "scatter_z", "l_star_raw",
                  "curvature_raw")  # fmt: skip
    return azb.from_dict(
        {"posterior": samples, "sample_stats": dict(stats)},
        dims={name: ["budget"] for name in per_budget},
        coords={"budget": budgets.compute},
    )


def _health(block: Block) -> Diagnostics:
    """One run's health over the sampled quantities (tau, drawn afterwards, follows residual_ss)."""
    samples, stats = block
    names = [n for n in (*_DIAGNOSED, "residual_ss") if n in samples and n != "tau"]
    return diagnose({n: np.asarray(samples[n]) for n in names}, stats)


def _edges(runs: Runs, budgets: Budgets, log_n_star: np.ndarray) -> np.ndarray:
    """Sweeps whose median minimum lies beyond their second-smallest or second-largest N."""
    flags = []
    for b in range(budgets.n_budgets):
        u = np.sort(np.log(runs.N[budgets.index == b]))
        flags.append(bool(log_n_star[b] <= u[1] or log_n_star[b] >= u[-2]))
    return np.array(flags)
