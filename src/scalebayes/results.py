"""What a fit is: the sampler's settings, its health, and the posterior with all a decision needs.

A leaf of the package's graph: it evaluates the fitted mean through the likelihood (in NumPy)
and imports nothing that uses a fit. Sampling lives in :mod:`scalebayes.engine` and :mod:`scalebayes.fitting`,
saving in :mod:`scalebayes.io`, decisions in their own modules; each takes a :class:`Fit`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.data import Runs
from scalebayes.errors import ConvergenceWarning, ScalebayesError
from scalebayes.health import Diagnostics, diagnose
from scalebayes.laws import Law
from scalebayes.likelihood import (
    Likelihood,
    model_param_names,
    param_docs,
    reported_param_names,
)
from scalebayes.runtime import DEFAULT_PRECISION, check_precision, precision

if TYPE_CHECKING:  # xarray loads with the first fit's draws: `show` reads none (scalebayes.saved)
    import xarray as xr


@dataclass(frozen=True)
class Settings:
    """How the posterior is sampled: one value passed to every function that fits.

    ``fit``, ``fit_batch``, ``backtest``, ``lfo`` and ``calibrate`` take it, and refits reuse a
    fit's own (``fit.settings.sampler``). ``precision`` is JAX's float width for the fit and
    every JAX computation on it: float64 on CPU by default; float32 halves memory and suits
    GPUs. (Predictions and the searches of ``optimal`` and ``plan`` compute in NumPy, float64.)
    ``pooled_warmup``: each warmup window's mass matrix from all of a table's chains together,
    in the law's and the GP's stages (:mod:`scalebayes.pooled_warmup`); fits saved before it
    read False.
    """

    chains: int = 4
    draws: int = 1000
    warmup: int = 1000
    seed: int = 0
    target_accept: float = 0.8
    max_tree_depth: int = 10
    dense_mass: bool = True
    precision: str = DEFAULT_PRECISION
    pooled_warmup: bool = True

    def __post_init__(self) -> None:
        for name, low in (("chains", 1), ("draws", 1), ("warmup", 0), ("max_tree_depth", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ScalebayesError(f"{name}={value!r}: expected an integer >= {low}")
        if not 0.5 <= self.target_accept < 1:
            raise ScalebayesError(
                f"target_accept={self.target_accept!r}: expected a number in [0.5, 1)"
            )
        check_precision(self.precision)

    @classmethod
    def make(cls, settings: Settings | None = None, **changes: Any) -> Settings:
        """``settings`` (default: the defaults) with ``changes``; unknown names are an error."""
        known = {f.name for f in dataclasses.fields(Settings)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ScalebayesError(
                f"unknown sampler setting(s) {unknown}: expected some of {sorted(known)}"
            )
        base = Settings() if settings is None else settings.sampler
        return dataclasses.replace(base, **changes) if changes else base

    @property
    def sampler(self) -> Settings:
        """Just the sampler's settings (a :class:`FitSettings` also records what happened)."""
        return Settings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Settings)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class FitSettings(Settings):
    """A fit's :class:`Settings` and what the run recorded: devices, batch position, versions, time."""

    devices: int = 1  # devices the chains were spread over
    batch_index: int | None = None  # position in a fit_batch() call, None for fit()
    versions: Mapping[str, str] = field(default_factory=dict)
    # Seconds: "compile" (waiting for the samplers' programs; a program compiled in the
    # background while other work ran counts there), "sampling" (everything else, from the
    # tables' arrays, the GP's reference included, to the draws).
    wall_time: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy."""
        return {
            **super().to_dict(),
            "versions": dict(self.versions),
            "wall_time": dict(self.wall_time),
        }


def compute_diagnostics(idata: xr.DataTree, law: Law, likelihood: Likelihood) -> Diagnostics:
    """R-hat, bulk/tail ESS (ArviZ), divergences and tree-depth saturation of a posterior.

    Over every sampled parameter (:func:`scalebayes.model.model_param_names`, the
    discrepancy's included); :func:`scalebayes.health.diagnose` does the arithmetic.
    """
    names = [n for n in model_param_names(law, likelihood) if _is_sampled(law, n)]
    return tree_diagnostics(idata, names)


def tree_diagnostics(idata: xr.DataTree, names: list[str]) -> Diagnostics:
    """:class:`Diagnostics` of the posterior variables ``names`` of any NUTS run's DataTree."""
    posterior, stats = idata["posterior"], idata["sample_stats"]
    return diagnose(
        {name: posterior[name].to_numpy() for name in names},
        {
            name: stats[name].to_numpy()
            for name in (
                "diverging",
                "reached_max_treedepth",
                "extended",
                "smaller_steps",
                "retried",
                "retry_kept",
            )
            if name in stats
        },
    )


def warn_if_unhealthy(diagnostics: Diagnostics) -> None:
    """Raise a :class:`ConvergenceWarning` naming each failed check and what to try."""
    if not diagnostics.ok:
        warnings.warn("; ".join(diagnostics.problems), ConvergenceWarning, stacklevel=3)


def _is_sampled(law: Law, name: str) -> bool:
    """Parameters pinned with a ``Delta`` prior are constants, not sampled."""
    return name not in law.params or name in law.free_param_names


def to_datatree(
    runs: Runs, samples: Mapping[str, np.ndarray], stats: Mapping[str, np.ndarray]
) -> xr.DataTree:
    """The ArviZ DataTree of a fit: draws (``_log_lik`` is each run's log density), the runs, stats."""
    import arviz_base as azb

    log_lik = samples["_log_lik"]
    posterior = {k: v for k, v in samples.items() if not k.startswith("_")}
    constant = {name: runs.table[name].to_numpy() for name in ("N", "D", "C")}
    if runs.weight is not None:
        constant["weight"] = runs.weight
    return azb.from_dict(
        {
            "posterior": posterior,
            "log_likelihood": {"loss": log_lik},
            "observed_data": {"loss": runs.loss},
            "constant_data": constant,
            "sample_stats": dict(stats),
        },
        dims={"loss": ["run"], **{name: ["run"] for name in constant}},
        coords={"run": np.arange(len(runs))},
    )


@dataclass(frozen=True)
class Fit:
    """Posterior of one law on one set of runs. Every later step reads only this.

    ``idata`` is an xarray DataTree with groups posterior (law parameters, noise and
    discrepancy, dims chain, draw), log_likelihood (``loss``: log density of each run's loss,
    dims chain, draw, run), observed_data, constant_data and sample_stats. ``log_ref`` is where
    the fit is anchored: the fitted runs' centre in log inputs and what the discrepancy took
    from them (the GP's reference); it is saved with the fit, so no decision recomputes it.
    """

    law: Law
    runs: Runs
    likelihood: Likelihood
    idata: xr.DataTree
    settings: FitSettings
    diagnostics: Diagnostics
    log_ref: Mapping[str, np.ndarray]
    # summary() tables by interval probability, filled on first use and read back from a saved
    # fit (io), so that showing a saved fit needs no statistics. Not copied by replace().
    summaries: dict[float, pd.DataFrame] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws of the law's parameters and the noise, dims (chain, draw)."""
        return self.idata["posterior"].to_dataset()

    @property
    def param_names(self) -> tuple[str, ...]:
        """Law parameters, then the noise's (``sigma``, ``nu``) and the discrepancy's, if any."""
        return model_param_names(self.law, self.likelihood)

    @property
    def reported_names(self) -> tuple[str, ...]:
        """:attr:`param_names` less the discrepancy's hidden ones (GP weights): what summaries show."""
        return reported_param_names(self.law, self.likelihood)

    def param_docs(self) -> dict[str, str]:
        """One-line meaning of every reported parameter: the law's, the noise's, the discrepancy's."""
        return param_docs(self.law, self.likelihood)

    def log_mean(self, params: Mapping[str, Any], log_inputs: Mapping[str, Any]) -> np.ndarray:
        """Log mean loss at ``log_inputs`` for parameter values ``params`` (e.g. posterior draws).

        The law plus this fit's discrepancy term; arrays broadcast as in ``Law.log_mean``.
        Every prediction goes through this. Computed in NumPy: a one-off evaluation, which as
        a JAX program spent longer compiling than running (the same values to rounding).
        """
        return self.likelihood.numpy_log_mean(self.law, params, log_inputs, self.log_ref)

    def law_module(self, *, log_likelihood: bool = True) -> Fit:
        """The fit of the model that decisions searching over runs use (``optimal``, ``plan``).

        With the GP discrepancy, the law's own module: exactly the plain law's fit, its noise
        ``sigma_law`` renamed ``sigma``, each run's log density the plain law's. So the GP's
        mean beyond the data does not steer where compute goes. Other fits are returned as
        they are. ``log_likelihood=False`` leaves the runs' log densities out (a JAX program
        to compile), for decisions that need only the draws.
        """
        decided = self.likelihood.for_decisions()
        if decided == self.likelihood:
            return self
        renamed = {
            stored: noise for noise, stored in self.likelihood.discrepancy.law_noise_names().items()
        }
        wanted = model_param_names(self.law, decided)
        # The law's parameters and the noise: the law module's own where the discrepancy keeps
        # one apart (the GP's sigma_law), else the fit's (the quadratic's, sampled with the law).
        names = [
            n for n in self.param_names
            if n in renamed or (n in wanted and n not in renamed.values())
        ]  # fmt: skip
        posterior = self.posterior[names].rename({n: renamed[n] for n in names if n in renamed})
        params = {n: posterior[n].to_numpy()[..., None] for n in wanted}
        # The plain law's reference point: the law's inputs only, as the plain fit has it (the
        # discrepancy's own entries would give every jitted decision a second compile).
        log_ref = {n: v for n, v in self.log_ref.items() if n in self.law.inputs}
        groups = {
            name: self.idata[name].to_dataset()
            for name in self.idata.children
            if name not in ("posterior", "log_likelihood")
        }
        import xarray as xr

        if not log_likelihood:
            idata = xr.DataTree.from_dict({"posterior": posterior[list(wanted)], **groups})
            return dataclasses.replace(self, likelihood=decided, idata=idata, log_ref=log_ref)
        with precision(self.settings.precision):
            log_inputs = {n: v for n, v in self.runs.log_inputs().items() if n in self.law.inputs}
            from scalebayes.model import pointwise_log_lik
            from scalebayes.runtime import compiled

            log_lik = compiled(pointwise_log_lik, self.law, decided)(
                params, log_inputs, np.log(self.runs.loss), log_ref
            )
        log_likelihood = xr.Dataset(
            {"loss": (("chain", "draw", "run"), np.asarray(log_lik))},
            coords={**posterior.coords, "run": np.arange(len(self.runs))},
        )
        idata = xr.DataTree.from_dict(
            {"posterior": posterior[list(wanted)], "log_likelihood": log_likelihood, **groups}
        )
        return dataclasses.replace(self, likelihood=decided, idata=idata, log_ref=log_ref)

    def summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Per parameter: median, mean, sd, equal-tailed ``ci_prob`` interval (lower, upper), R-hat, ESS.

        Rows are :attr:`reported_names`; ``DataFrame.attrs["ci_prob"]`` records the interval's probability.
        """
        if ci_prob in self.summaries:
            return self.summaries[ci_prob].copy()
        import arviz_stats as azs

        # Constant draws (a value pinned by the draws' author) have no variance: their R-hat is
        # NaN, not an error.
        with np.errstate(invalid="ignore", divide="ignore"):
            stats = azs.summary(
                self.idata,
                var_names=list(self.reported_names),
                kind="all",
                ci_prob=ci_prob,
                ci_kind="eti",
                round_to="none",
            )
        label = f"eti{round(ci_prob * 100):g}"
        stats = stats.rename(columns={f"{label}_lb": "lower", f"{label}_ub": "upper"})
        median = self.posterior[list(self.reported_names)].median(dim=("chain", "draw"))
        stats.insert(0, "median", [float(median[name]) for name in stats.index])
        stats.attrs["ci_prob"] = ci_prob
        self.summaries[ci_prob] = stats.copy()
        return stats

    def __str__(self) -> str:
        return (
            f"Fit of law {self.law.name!r} ({self.law.title}) to {len(self.runs)} runs "
            f"from {self.runs.source}\n" + "\n".join(self.diagnostics.lines())
        )
