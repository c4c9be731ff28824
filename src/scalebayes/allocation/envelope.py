"""Approach 1 (Hoffmann et al. 2022): the lower envelope of finished runs, per posterior draw.

:func:`fit_envelope` samples each model size's loss-against-tokens curve from its finished
runs (:mod:`~scalebayes.allocation.curve_model`, the package's NUTS engine). Then, per draw,
at each of :data:`LEVELS` compute levels C across the runs' range, every size's loss at
D = C / (k N_s) is read off its curve; the envelope is their least, and its argmin N* is the
vertex of the least-squares quadratic in log N through that draw's least size and
:data:`HALF` sizes each side (the discrete argmin moves in steps of a size; the quadratic
follows the valley between them, and seven sizes rather than five or three keep one size's
error from holding the vertex). Which levels are measured is decided once, along a line: a
first line through the posterior-median argmins of the levels whose median envelope has its
least size inside the sizes (and read within :data:`SUPPORT` decades of their own runs' tokens)
places N*(C); the levels where that line lies between the second-smallest and second-largest
size, with the sizes around it read within their support, are measured. A least-squares line
through the measured levels' log N* gives N* = G C^a per draw, so a, G and N* at any budget
carry the curves' uncertainty. :class:`EnvelopeEstimator` is approach 1 behind the estimator
interface.

Why a line chooses the levels: choosing each level by its own noisy argmin (inside the sizes,
and at most 5 % of draws at an end) keeps, at the ends of the compute range, exactly the levels
whose noise pushed N* inwards, so N*(C) came out flattened. On finished runs simulated from
Epoch's law (11 sizes x 6 horizons, 1 % noise, 32 tables; ``benchmarks/allocation_approaches.py
--envelope-truth``) a's 90 % intervals held the truth in 24 of 32, medians 0.078 low; chosen
along the line, with seven sizes per vertex, 28 of 32 and 0.010 low (Hoffmann et al.'s law, 9
sizes x 5 horizons: 29 of 32 either way, medians 0.041 low against 0.001 high). The curves were
not the cause: least-squares curves show the same flattening under the old choice (median a
0.481 over 200 tables for 0.513) and none along the line (0.515), as with levels chosen from
the truth's own N*.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from scalebayes.allocate import checked_budgets
from scalebayes.allocation.base import Estimator
from scalebayes.allocation.curve_model import CurveModel, Sizes, curve_data, find_sizes
from scalebayes.allocation.profiles import ProfileAllocation
from scalebayes.data import Runs, load_runs
from scalebayes.errors import EnvelopeError
from scalebayes.formatting import format_interval, format_number, text_columns
from scalebayes.results import Diagnostics, Fit, Settings, tree_diagnostics, warn_if_unhealthy
from scalebayes.runtime import precision
from scalebayes.summaries import SAMPLE_DIMS

if TYPE_CHECKING:  # the sampler (JAX, NumPyro) loads when an approach samples
    from scalebayes import engine

LEVELS = 60  # compute levels across the runs' range (log-spaced)
# A size's curve is read at most this many decades beyond its own runs' token counts.
SUPPORT = 0.2
MIN_LEVELS = 3
# The measured levels must also span a factor of 2 in compute: a slope read over less follows
# the vertices' bias between neighbouring levels, not N*(C). On an over-training ladder of 5
# sizes x 6 tokens-per-parameter ratios from Epoch's law (1 % noise), 3 levels spanning 0.16
# decades put a at 1.10 [0.63, 2.77] for a truth of 0.51.
MIN_SPAN_DECADES = 0.3
HALF = 3  # the quadratic through a draw's least size is fitted to it and HALF sizes each side
_DIAGNOSED = ("beta", "tau_B", "E_s", "log_B_s", "sigma", "nu")
PARAMS = {
    "a": "allocation exponent of N* = G C^a through the envelope's argmins (b = 1 - a)",
    "log_G": "log of G in N* = G C^a (C in FLOPs)",
    "beta": "token exponent of every size's curve L_s(D) = E_s + B_s D^-beta",
    "tau_B": "spread of the sizes' log B_s around the shared log B",
    "sigma": "noise: sd of log loss around the curves",
    "nu": "noise: Student-t degrees of freedom",
}


def fit_envelope(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    *,
    model: CurveModel | None = None,
    settings: Settings | None = None,
    cost_k: float | None = None,
    progress: engine.ProgressCallback | None = None,
    **sampler: Any,
) -> EnvelopeFit:
    """Sample approach 1's posterior: per-size curves, their envelope and N* = G C^a.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        Finished runs only (final or cooled-down checkpoints; see
        :func:`scalebayes.curves.load_curves` for a table of every checkpoint).
    model : CurveModel, optional
        Priors and noise of the curves.
    settings : Settings, optional
        Chains, draws, warmup, seed, NUTS settings and precision (``**sampler`` changes them).
    cost_k : float, optional
        FLOPs per parameter per token for the compute levels; default the runs' (6).

    Raises
    ------
    EnvelopeError
        Fewer than 3 sizes with 2+ token counts, or fewer than 3 compute levels whose envelope
        is measured (its argmin away from the smallest and largest size), or measured levels
        spanning less than :data:`MIN_SPAN_DECADES` decades of compute.
    """
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    model = model or CurveModel()
    settings = Settings.make(settings, **sampler)
    sizes = find_sizes(runs)
    k = runs.cost_k if cost_k is None else float(cost_k)
    from scalebayes import model_sampling

    with precision(settings.precision):
        started = time.perf_counter()
        data = curve_data(sizes)
        (samples, stats), compile_s, _ = model_sampling.sample_model_carefully(
            model.stage(sizes.n_sizes), data, settings, progress
        )
        wall = {"compile": compile_s, "sampling": time.perf_counter() - started - compile_s}
    curves = {name: np.asarray(samples[name]) for name in ("E_s", "log_B_s", "beta")}
    log_d_ref = float(data.extra["log_d_ref"])
    compute = np.exp(np.linspace(*np.log([runs.C.min(), runs.C.max()]), LEVELS))
    log_n, _, readable = envelope(curves, log_d_ref, sizes, compute, k)
    kept = measured_levels(log_n, readable, sizes, compute, k)
    check_measured(kept, compute, runs.source)
    a, log_g = _power_law(np.log(compute[kept]), log_n[..., kept])
    samples = {**samples, "a": a, "log_G": log_g}
    idata = _datatree(samples, stats, sizes)
    names = [n for n in (*_DIAGNOSED, "a") if n in samples]
    diagnostics = tree_diagnostics(idata, names)
    result = EnvelopeFit(runs, sizes, model, idata, settings, diagnostics, compute[kept], k,
                         log_d_ref, wall)  # fmt: skip
    warn_if_unhealthy(diagnostics)
    return result


def check_measured(kept: np.ndarray, compute: np.ndarray, source: str) -> None:
    """Raise :class:`EnvelopeError` unless the measured levels can carry a power law's slope.

    ``kept`` masks the ``compute`` levels (FLOPs) whose envelope is measured: at least
    :data:`MIN_LEVELS` of them, spanning at least :data:`MIN_SPAN_DECADES` decades.
    """
    if kept.sum() < MIN_LEVELS:
        raise EnvelopeError(
            f"approach 1: the envelope of {source}'s finished runs is measured at "
            f"{int(kept.sum())} of {len(compute)} compute levels (at least {MIN_LEVELS} needed: "
            "where the line through its argmins lies between the second-smallest and "
            "second-largest size, and the sizes around it have runs within "
            f"{SUPPORT:g} decades of the tokens read there)"
        )
    low, high = compute[kept].min(), compute[kept].max()
    span = float(np.log10(high / low))
    if span < MIN_SPAN_DECADES:
        raise EnvelopeError(
            f"approach 1: the envelope of {source}'s finished runs is measured only over "
            f"{low:.3g}-{high:.3g} FLOPs ({span:.2f} decades; at least {MIN_SPAN_DECADES:g}, a "
            "factor 2, needed for the slope of N* = G C^a): more model sizes, or each size's "
            "runs over a wider range of tokens, widen it"
        )


def envelope(
    curves: dict[str, np.ndarray], log_d_ref: float, sizes: Sizes, compute: np.ndarray, k: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The envelope's argmin log N* and least loss per draw at each compute level.

    ``curves`` holds per-draw ``E_s``, ``log_B_s`` (dims ..., size) and ``beta`` (dims ...).
    Returns log N* and L*, shape (..., level), and which levels are readable (shape (level,)):
    the posterior-median envelope's least size is inside the sizes and it and its neighbours
    are read within their support (:func:`measured_levels` chooses among them).
    """
    x = np.log(sizes.N)
    log_d = np.log(compute)[:, None] - np.log(k) - x[None, :]  # (level, size)
    loss = curves["E_s"][..., None, :] + np.exp(
        curves["log_B_s"][..., None, :] - curves["beta"][..., None, None] * (log_d - log_d_ref)
    )  # (..., level, size)
    supported = _supported(sizes, log_d)
    typical = np.where(supported, np.median(loss.reshape(-1, *loss.shape[-2:]), axis=0), np.inf)
    best = np.argmin(typical, axis=1)
    readable = (best >= 1) & (best <= len(x) - 2) & _around(supported, best)
    readable &= np.isfinite(typical.min(1))
    # Each draw's own least size: a stencil fixed by the median envelope would hold every
    # draw's vertex inside it, and N*(C) would climb in steps of a size, flat in between
    # (a 0.35-0.42 for a truth of 0.51 on simulated runs).
    half = min(HALF, (len(x) - 1) // 2)
    raw = np.argmin(np.where(supported, loss, np.inf), axis=-1)
    own = np.clip(raw, half, len(x) - 1 - half)
    stencils = own[..., None] + np.arange(-half, half + 1)  # (..., level, window)
    xs = x[stencils]
    ys = np.take_along_axis(loss, stencils, axis=-1)
    log_n, least = _vertex(xs, ys)
    return log_n, least, readable


def measured_levels(
    log_n: np.ndarray, readable: np.ndarray, sizes: Sizes, compute: np.ndarray, k: float
) -> np.ndarray:
    """The levels to fit N* = G C^a through, chosen along a first line (module docstring).

    ``log_n`` per draw and level (..., level), ``readable`` from :func:`envelope`; returns a
    mask of shape (level,).
    """
    if readable.sum() < 2:
        return readable
    log_c = np.log(compute)
    median = np.median(log_n.reshape(-1, len(compute)), axis=0)
    a, log_g = _power_law(log_c[readable], median[readable])
    line = log_g + a * log_c
    x = np.log(sizes.N)
    near = np.clip(np.rint(np.interp(line, x, np.arange(len(x)))).astype(int), 1, len(x) - 2)
    supported = _supported(sizes, log_c[:, None] - np.log(k) - x[None, :])
    return (line >= x[1]) & (line <= x[-2]) & _around(supported, near)


def _supported(sizes: Sizes, log_d: np.ndarray) -> np.ndarray:
    """Whether each size's curve is read within SUPPORT decades of its runs' tokens (level, size)."""
    low, high = np.log(sizes.d_range()).T
    margin = SUPPORT * np.log(10.0)
    return (log_d >= low - margin) & (log_d <= high + margin)


def _around(supported: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Whether the sizes centre-1, centre, centre+1 are all supported, per level."""
    centre = np.clip(centre, 1, supported.shape[1] - 2)
    rows = np.arange(len(supported))[:, None]
    return supported[rows, centre[:, None] + np.array([-1, 0, 1])].all(axis=1)


def _vertex(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex (x, y) of the least-squares quadratic through each row's points, kept in their range.

    ``xs`` and ``ys`` have the points last. A quadratic that opens downwards (no valley)
    gives the row's least point instead.
    """
    xs = np.broadcast_to(xs, ys.shape)
    mid = xs.mean(-1, keepdims=True)
    v = xs - mid
    design = np.stack([np.ones_like(v), v, v**2], axis=-1)  # (..., points, 3)
    gram = np.einsum("...pi,...pj->...ij", design, design)
    coef = np.linalg.solve(gram, np.einsum("...pi,...p->...i", design, ys)[..., None])[..., 0]
    c0, c1, c2 = coef[..., 0], coef[..., 1], coef[..., 2]
    valley = c2 > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        top = np.clip(-c1 / (2.0 * c2), v.min(-1), v.max(-1))
    lowest = np.argmin(ys, axis=-1)[..., None]
    vx = np.where(valley, top, np.take_along_axis(v, lowest, axis=-1)[..., 0])
    vy = np.where(valley, c0 + c1 * vx + c2 * vx**2, ys.min(-1))
    return vx + mid[..., 0], vy


def _power_law(log_c: np.ndarray, log_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope a and intercept log G of log N* on log C, per draw."""
    centred = log_c - log_c.mean()
    a = (log_n * centred).sum(-1) / (centred**2).sum()
    return a, log_n.mean(-1) - a * log_c.mean()


@dataclass(frozen=True)
class EnvelopeFit:
    """Posterior of approach 1: per-size curves, and a, log_G of N* = G C^a per draw.

    ``idata`` holds ``beta``, ``tau_B``, the noise, per size ``E_s`` and ``log_B_s`` (dim
    ``size``, coordinate N) and the derived ``a`` and ``log_G``; ``levels`` the compute levels
    (FLOPs) whose envelope was measured and fitted; ``cost_k`` the FLOPs per parameter-token.
    """

    runs: Runs
    sizes: Sizes
    model: CurveModel
    idata: xr.DataTree
    settings: Settings
    diagnostics: Diagnostics
    levels: np.ndarray
    cost_k: float
    log_d_ref: float
    wall_time: dict[str, float]

    @property
    def posterior(self) -> xr.Dataset:
        """The draws, dims (chain, draw[, size])."""
        return self.idata["posterior"].to_dataset()

    @property
    def a(self) -> xr.DataArray:
        """Exponent of N* = G C^a, dims (chain, draw)."""
        return self.posterior["a"]

    def argmins(self, compute: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log N*, least loss (shape (chain, draw, level)) and the measured mask at ``compute``."""
        post = self.posterior
        curves = {name: post[name].to_numpy() for name in ("E_s", "log_B_s", "beta")}
        return envelope(curves, self.log_d_ref, self.sizes, np.asarray(compute, float), self.cost_k)

    def optimal(self, budgets: Any, *, cost_k: float | None = None) -> EnvelopeAllocation:
        """N*, D*, tokens per parameter and exponents at ``budgets`` from N* = G C^a.

        ``loss`` is the envelope's least loss at budgets among the measured levels' range and
        NaN elsewhere (approach 1 has no law for L* beyond its runs).
        """
        budgets = checked_budgets(budgets)
        k = self.cost_k if cost_k is None else float(cost_k)
        post = self.posterior
        coords = {"budget": budgets}
        log_c = xr.DataArray(np.log(budgets), dims="budget", coords=coords)
        n = np.exp(post["log_G"] + post["a"] * log_c).transpose(*SAMPLE_DIMS, "budget")
        d = xr.DataArray(budgets, dims="budget", coords=coords) / (k * n)
        a = post["a"].broadcast_like(n)
        _, least, measured = self.argmins(budgets)
        inside = measured & (budgets >= self.levels.min()) & (budgets <= self.levels.max())
        loss = xr.DataArray(np.where(inside, least, np.nan), dims=n.dims, coords=n.coords)
        named = {"N": n, "D": d, "loss": loss, "tokens_per_param": d / n,
                 "exponent_N": a, "exponent_D": 1.0 - a}  # fmt: skip
        dims = (*SAMPLE_DIMS, "budget")
        arrays = {name: v.transpose(*dims).rename(name).drop_attrs() for name, v in named.items()}
        return EnvelopeAllocation(**arrays, budgets=budgets, cost_k=k, fit=self)

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Per parameter (a, b, log_G, beta, tau_B, noise): median and equal-tailed interval."""
        post = self.posterior
        values = {name: post[name].to_numpy().ravel() for name in PARAMS if name in post}
        values = {"a": values["a"], "b": 1.0 - values["a"],
                  **{k: v for k, v in values.items() if k != "a"}}  # fmt: skip
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        return pd.DataFrame(
            {
                name: {
                    "median": np.median(v),
                    "lower": np.quantile(v, lo),
                    "upper": np.quantile(v, hi),
                }
                for name, v in values.items()
            }
        ).T

    def notes(self) -> list[str]:
        """What was used: sizes, points, the measured compute range."""
        return [
            f"approach 1: the envelope of {self.sizes}",
            f"N* = G C^a fitted through the envelope's argmin at {len(self.levels)} compute levels "
            f"{self.levels.min():.3g}-{self.levels.max():.3g} FLOPs (where a first line through "
            "the argmins lies inside the sizes, with runs near the tokens read there)",
        ]

    def __str__(self) -> str:
        rows = [[name, format_number(r["median"]), format_interval(r["lower"], r["upper"]),
                 PARAMS.get(name, "1 - a")] for name, r in self.summary().iterrows()]  # fmt: skip
        return "\n".join(
            [f"approach 1 (envelope of finished runs) on {self.runs.source}",
             text_columns(["param", "median", "90% interval", "meaning"], rows),
             *(f"note: {note}" for note in self.notes()), *self.diagnostics.lines()]
        )  # fmt: skip


@dataclass(frozen=True)
class EnvelopeAllocation(ProfileAllocation):
    """Approach 1's compute-optimal runs per budget and draw (dims chain, draw, budget).

    Shaped as :class:`~scalebayes.allocate.Allocation`; ``loss`` is NaN outside the measured
    compute levels; ``fit`` is the :class:`EnvelopeFit` behind it.
    """

    def notes(self) -> list[str]:
        """What was used, and that L* exists only inside the runs' compute."""
        return [*self.fit.notes(), "L* exists only within the measured compute levels (NaN "
                "elsewhere): approach 1 has no law for it"]  # fmt: skip

    def __str__(self) -> str:
        return (
            f"compute-optimal allocation, approach 1 (C = {self.cost_k:g} N D):\n"
            + self.summary().to_string()
            + "".join(f"\nnote: {note}" for note in self.notes())
        )


class EnvelopeEstimator(Estimator):
    """Approach 1 on a fit's runs, which must be finished runs of several sizes and horizons."""

    approach: ClassVar[str] = "1"
    title: ClassVar[str] = "envelope of finished runs"
    samples: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        self.options = options

    def allocate(self, fit: Fit, budgets: ArrayLike, *, cost_k: float | None = None) -> Any:
        """Sample the curves on ``fit.runs`` (the fit's sampler settings unless given)."""
        options = {"settings": fit.settings.sampler, **self.options}
        return fit_envelope(fit.runs, cost_k=cost_k, **options).optimal(budgets, cost_k=cost_k)

    def heading(self, fit: Fit, result: Any) -> str:
        """One line naming what was estimated."""
        return f"compute-optimal allocation from the envelope of finished runs (approach 1; C = {result.cost_k:g} N D)"

    def notes(self, fit: Fit, result: Any) -> list[str]:
        """The result's own notes."""
        return result.notes()

    def at_budgets(self, fit: Fit, result: Any, budgets: ArrayLike) -> Any:
        """The result's own posterior (curves) at other ``budgets``: nothing sampled again."""
        return result.fit.optimal(budgets, cost_k=result.cost_k)

    def diagnostics(self, fit: Fit, result: Any) -> Diagnostics:
        """The curves' sampler diagnostics."""
        return result.diagnostics


def _datatree(samples: dict[str, np.ndarray], stats: dict[str, np.ndarray], sizes: Sizes) -> Any:
    import arviz_base as azb

    per_size = ("E_s", "log_B_s", "b_dev_raw", "e_raw")
    return azb.from_dict(
        {"posterior": samples, "sample_stats": dict(stats)},
        dims={name: ["size"] for name in per_size},
        coords={"size": sizes.N},
    )
