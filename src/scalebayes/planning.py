"""Chance of reaching a target loss, and the cheapest run that reaches it with a given probability.

``chance`` gives P(loss <= target) at planned runs, for the law's mean (how sure we are that the
law itself gets there) and for a new run (adds the fitted run-to-run noise). ``plan`` finds the
single run (N, D) that a user would actually train: the one of least total cost
``k N D + 2 N T`` (training plus ``T`` lifetime inference tokens; Sardana et al. 2023, "Beyond
Chinchilla-Optimal", arXiv:2401.00448) whose chance of reaching the target is at least ``prob``.
With ``T = 0`` that is the compute-optimal run for the target. Per draw, ``plan`` also sizes the
run that the draw's own law needs, so the spread of N, D and cost across the posterior is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from scalebayes import plan_search
from scalebayes.allocate import fixed_inputs
from scalebayes.errors import ScalebayesError, UnreachableTargetError
from scalebayes.groups.select import select_group
from scalebayes.plan_search import D_BOUNDS, N_BOUNDS
from scalebayes.prediction import (
    extrapolation,
    fitted_range,
    log_mean_at,
    planned_points,
)
from scalebayes.summaries import per_draw, summarise

if TYPE_CHECKING:
    from scalebayes.results import Fit

CHANCE_KINDS = ("mean", "new_run")
__all__ = ["D_BOUNDS", "N_BOUNDS", "Chance", "Plan", "chance", "law_floor", "plan"]
# The law's floor (loss with unlimited N and D) is evaluated at inputs of 1e300.
_HUGE_LOG = 690.0
# A target the law's floor is below in fewer than this share of draws is called unreachable.
UNREACHABLE_SHARE = 1e-3


@dataclass(frozen=True)
class Chance:
    """P(loss <= target) at planned runs.

    Attributes
    ----------
    points : DataFrame
        N, D, C of each planned run.
    target : ndarray
        Target loss per point, nats/token.
    mean : DataArray, dims (chain, draw, point)
        1 where the draw's law predicts a loss at or below the target, else 0.
    new_run : DataArray, dims (chain, draw, point)
        Probability, under the draw's law and noise, that a new run reaches the target.
    fitted_range : mapping
        Smallest and largest N, D, C among the fitted runs.

    Averaging either over (chain, draw) gives the probability; per-draw values are kept so that
    results of several fits can be mixed by weight.
    """

    points: pd.DataFrame
    target: np.ndarray
    mean: xr.DataArray
    new_run: xr.DataArray
    fitted_range: dict[str, tuple[float, float]]

    def probability(self, kind: str = "new_run") -> np.ndarray:
        """P(loss <= target) per point for ``kind`` "mean" (the law) or "new_run" (a training run)."""
        if kind not in CHANCE_KINDS:
            raise ScalebayesError(f"kind={kind!r}: expected 'mean' or 'new_run'")
        return getattr(self, kind).mean(dim=("chain", "draw")).to_numpy()

    def summary(self) -> pd.DataFrame:
        """One row per point: N, D, C, target, ``p_mean``, ``p_new_run``, extrapolation."""
        table = self.points.copy()
        table["target"] = self.target
        table["p_mean"] = self.probability("mean")
        table["p_new_run"] = self.probability("new_run")
        factors, words = extrapolation(self.points, self.fitted_range)
        table["beyond"] = factors
        table["extrapolation"] = words
        table.index.name = "point"
        return table

    def __str__(self) -> str:
        return f"chance of reaching the target loss:\n{self.summary().to_string()}"


def chance(
    fit: Fit,
    N: ArrayLike | None,
    D: ArrayLike | None,
    target: ArrayLike,
    *,
    C: ArrayLike | None = None,
    U: ArrayLike | None = None,
    group: str | None = None,
) -> Chance:
    """P(loss <= target) at planned runs, for the law's mean and for a new training run.

    Parameters
    ----------
    fit : Fit
        The posterior.
    N, D : array-like or None
        Parameters and training tokens of each planned run; one may be None when ``C`` is given.
    target : array-like
        Target loss, nats/token; a scalar or one per point.
    C : array-like, optional
        Training FLOPs (``C = k N D``), instead of N or D.
    U : array-like, optional
        Unique training tokens, for laws of data repetition.
    group : str, optional
        For a grouped fit: the group's label, or ``"new"`` for a group not yet run.

    Returns
    -------
    Chance

    Raises
    ------
    UnreachableTargetError
        If the target is below the law's floor (its loss with unlimited N and D) in nearly every
        draw: no run of any size reaches it.
    """
    fit = select_group(fit, group)
    points = planned_points(fit, N=N, D=D, C=C, U=U)
    log_target = _log_target(target, len(points))
    check_reachable(fit, log_target.min())
    log_mu = log_mean_at(fit, points)
    mean_ok = (log_mu <= log_target).astype(float)
    new_run = np.asarray(_new_run_probability(fit, log_mu, log_target))
    coord = np.arange(len(points))

    def as_array(values: np.ndarray, name: str) -> xr.DataArray:
        return per_draw(values, fit.posterior, dim="point", coord=coord, name=name)

    return Chance(
        points,
        np.exp(log_target),
        as_array(mean_ok, "p_mean"),
        as_array(new_run, "p_new_run"),
        fitted_range(fit),
    )


def law_floor(fit: Fit, fixed: Mapping[str, float] | None = None) -> xr.DataArray:
    """The law's loss with unlimited N, D (and C) per draw, dims (chain, draw), nats/token.

    For the catalogue's Chinchilla-type laws this is the irreducible loss E. ``fixed``: logs of
    inputs held as given (``{"U": log unique tokens}``: repeats of U unique tokens, however
    many, buy less than unlimited fresh data). A fit's discrepancy term is left out: it
    describes curvature near the fitted runs, not the limit.
    """
    params = {name: fit.posterior[name].to_numpy() for name in fit.law.param_names}
    log_inputs = {name: _HUGE_LOG for name in fit.law.inputs} | dict(fixed or {})
    floor = np.exp(fit.law.log_mean(params, log_inputs, xp=np))
    return xr.DataArray(floor, dims=("chain", "draw"), name="floor")


def check_reachable(fit: Fit, log_target: float, fixed: Mapping[str, float] | None = None) -> None:
    """Raise :class:`UnreachableTargetError` if the law's floor is below the target in almost no draw."""
    floor = law_floor(fit, fixed)
    share = float((np.log(floor) < log_target).mean())
    if share < UNREACHABLE_SHARE:
        low, high = np.quantile(floor, [0.05, 0.95])
        given = "".join(f", {name} = {np.exp(v):.3g}" for name, v in (fixed or {}).items())
        raise UnreachableTargetError(
            f"target loss {np.exp(log_target):.4g} is below the law's floor (its loss with "
            f"unlimited N and D{given}; 90% interval {low:.4g}-{high:.4g}) in {1 - share:.1%} "
            "of posterior draws: no run of any size reaches it; choose a higher target"
        )


@dataclass(frozen=True)
class Plan:
    """The cheapest run reaching a target loss with a given probability, per inference volume.

    Attributes
    ----------
    table : DataFrame
        One row per lifetime inference volume ``inference_tokens``: the single run to train
        (``N``, ``D``, ``tokens_per_param``, training FLOPs ``C``, ``total_cost`` = C + 2 N T
        FLOPs), its chance ``p_mean`` / ``p_new_run`` of reaching the target, and how far
        beyond the fitted runs it lies in N, D, C and D/N (``beyond``, ``extrapolation``, as in
        ``predict``).
    per_draw : Dataset, dims (chain, draw, inference_tokens)
        For each draw, the cheapest run its own law needs to reach the target (no noise):
        N, D, C, total_cost; NaN in ``unreachable`` draws (target below that draw's floor, or
        needing N > 1e16 or D > 1e19).
    target, prob, kind, cost_k
        What was asked.
    """

    table: pd.DataFrame
    per_draw: xr.Dataset
    target: float
    prob: float
    kind: str
    cost_k: float

    @property
    def n_unreachable(self) -> int:
        """Draws whose law cannot reach the target within N <= 1e16 and D <= 1e19."""
        return int(self.per_draw["unreachable"].isel(inference_tokens=0).sum())

    def per_draw_summary(self, probs: Sequence[float] = (0.9,)) -> pd.DataFrame:
        """Median and equal-tailed intervals over draws of N, D, D/N, C and total cost, per T.

        Unreachable draws count as infinitely large (they are never dropped): an infinite upper
        bound means more than ``(1 - prob) / 2`` of the draws cannot reach the target.
        """
        tables = []
        for name in ("N", "D", "tokens_per_param", "C", "total_cost"):
            values = self.per_draw[name].fillna(np.inf)
            table = summarise(values, probs=probs, method="nearest").reset_index(drop=True)
            table.insert(0, "quantity", name)
            table.insert(0, "inference_tokens", self.per_draw["inference_tokens"].to_numpy())
            tables.append(table)
        return (
            pd.concat(tables, ignore_index=True)
            .sort_values("inference_tokens", kind="stable")
            .reset_index(drop=True)
        )

    def __str__(self) -> str:
        label = "a new run" if self.kind == "new_run" else "the law's mean"
        return (
            f"cheapest run with P({label} <= {self.target:g}) >= {self.prob:g}:\n"
            f"{self.table.to_string()}"
        )


def plan(
    fit: Fit,
    target: float,
    *,
    prob: float = 0.9,
    kind: str = "new_run",
    inference_tokens: float | Sequence[float] = 0.0,
    cost_k: float | None = None,
    group: str | None = None,
    unique_tokens: float | None = None,
) -> Plan:
    """The smallest-cost run whose chance of reaching ``target`` is at least ``prob``.

    Cost is training plus inference FLOPs, ``k N D + 2 N T``, with ``T`` the lifetime inference
    tokens (Sardana et al. 2023); with ``T = 0`` (default) the plan is the least training compute
    at which a compute-optimal run reaches the target. Probability is over the whole posterior
    (and, for ``kind="new_run"``, the fitted run-to-run noise), so the plan inverts
    :func:`chance`: at a row's ``N`` and ``D`` of :attr:`Plan.table`, ``chance`` returns ``prob``.
    With the GP discrepancy the plan, like :func:`scalebayes.optimal`, is the law's
    (:meth:`Fit.law_module`): ``chance`` on ``fit.law_module()`` returns ``prob``, and
    ``chance`` on the fit itself adds the GP's uncertainty beyond the data.

    Parameters
    ----------
    fit : Fit
        A posterior of a law of N and D.
    target : float
        Target loss, nats/token.
    prob : float in (0, 1)
        Required probability of reaching the target.
    kind : {"new_run", "mean"}
        Whether the training run itself (default) or the law's mean must reach the target.
    inference_tokens : float or sequence of float
        Lifetime inference tokens T; a sequence shows how the plan moves as T grows.
    cost_k : float, optional
        FLOPs per parameter per training token; default the fit's ``runs.cost_k``.
    group : str, optional
        For a grouped fit: the group's label, or ``"new"`` for a group not yet run.
    unique_tokens : float, optional
        For a law of repeated data (one that reads U): the unique tokens available, held
        fixed; D beyond them repeats them (as :func:`scalebayes.optimal`). The table gets a
        ``U`` column.

    Returns
    -------
    Plan

    Raises
    ------
    UnreachableTargetError
        If the target is below the law's floor in nearly every draw, or no run within
        N <= 1e16, D <= 1e19 reaches it with probability ``prob``.
    """
    fit = select_group(fit, group)
    fixed = fixed_inputs(fit.law, unique_tokens)
    if kind not in CHANCE_KINDS:
        raise ScalebayesError(f"kind={kind!r}: expected 'new_run' or 'mean'")
    if not 0 < prob < 1:
        raise ScalebayesError(f"prob={prob!r}: expected a probability in (0, 1)")
    k = fit.runs.cost_k if cost_k is None else float(cost_k)
    if not (np.isfinite(k) and k > 0):
        raise ScalebayesError(f"cost_k={k!r}: expected a positive number")
    tokens = np.atleast_1d(np.asarray(inference_tokens, dtype=float))
    if tokens.ndim != 1 or not np.all(np.isfinite(tokens) & (tokens >= 0)):
        raise ScalebayesError(
            f"inference_tokens={inference_tokens!r}: expected numbers of tokens >= 0"
        )
    log_target = float(_log_target(target, 1)[0])
    # Like the compute-optimal allocation, the search is the law's: with the GP discrepancy in
    # it, the plan followed the GP's mean beyond the data (Epoch's runs: 155 tokens per
    # parameter at 1/20 of the plain law's compute, against 17 for optimal()).
    whole, fit = fit, fit.law_module(log_likelihood=False)
    check_reachable(fit, log_target, fixed)

    params = {name: fit.posterior[name].to_numpy().reshape(-1) for name in fit.param_names}
    model = (fit.law, fit.likelihood)
    rows, draws = [], []
    for t in tokens:
        args = ((params, fit.log_ref), log_target, np.log(k), np.log(2 * t) if t > 0 else -np.inf)
        x, y, feasible = plan_search.pooled(*model, kind, *args, prob, fixed)
        if not feasible:
            raise UnreachableTargetError(
                f"no run with N <= {N_BOUNDS[1]:.0e} and D <= {D_BOUNDS[1]:.0e} reaches loss "
                f"{target:g} with probability {prob:g} ({kind.replace('_', ' ')}); lower prob or "
                "raise the target"
            )
        n, d = float(np.exp(x)), float(np.exp(y))
        rows.append({"inference_tokens": t, "N": n, "D": d, "tokens_per_param": d / n,
                     "C": k * n * d, "total_cost": k * n * d + 2 * n * t})  # fmt: skip
        draws.append(list(plan_search.per_draw(*model, *args, fixed)))
    table = pd.DataFrame(rows)
    unique = None if unique_tokens is None else np.full(len(table), float(unique_tokens))
    if unique is not None:
        table.insert(table.columns.get_loc("tokens_per_param"), "U", unique)
    reached = chance(fit, table["N"].to_numpy(), table["D"].to_numpy(), target, U=unique)
    table["p_mean"] = reached.probability("mean")
    table["p_new_run"] = reached.probability("new_run")
    table["beyond"], table["extrapolation"] = extrapolation(reached.points, reached.fitted_range)
    if fit is not whole:  # what the whole model (the discrepancy's spread beyond the data) says
        table["p_whole_model"] = chance(
            whole, table["N"].to_numpy(), table["D"].to_numpy(), target, U=unique
        ).probability(kind)
    at_edge = (table["N"] >= N_BOUNDS[1] * 0.999) | (table["D"] >= D_BOUNDS[1] * 0.999)
    table["at_bound"] = at_edge.to_numpy()
    return Plan(table, _per_draw_dataset(fit, draws, tokens, k), float(target), prob, kind, k)


def _per_draw_dataset(
    fit: Fit, draws: list[list[np.ndarray]], tokens: np.ndarray, k: float
) -> xr.Dataset:
    x = np.stack([d[0] for d in draws], axis=-1)
    y = np.stack([d[1] for d in draws], axis=-1)
    ok = np.stack([d[2] for d in draws], axis=-1).astype(bool)
    n = np.where(ok, np.exp(x), np.nan)
    d = np.where(ok, np.exp(y), np.nan)

    def as_array(values: np.ndarray, name: str, units: str = "") -> xr.DataArray:
        return per_draw(
            values, fit.posterior, dim="inference_tokens", coord=tokens, name=name, units=units
        )

    return xr.Dataset(
        {
            "N": as_array(n, "N", "parameters"),
            "D": as_array(d, "D", "tokens"),
            "tokens_per_param": as_array(d / n, "tokens_per_param"),
            "C": as_array(k * n * d, "C", "FLOPs"),
            "total_cost": as_array(k * n * d + 2 * n * tokens, "total_cost", "FLOPs"),
            "unreachable": as_array(~ok, "unreachable"),
        }
    )


def _log_target(target: ArrayLike, n: int) -> np.ndarray:
    values = np.atleast_1d(np.asarray(target, dtype=float))
    if values.ndim != 1 or not np.all(np.isfinite(values) & (values > 0)):
        raise ScalebayesError(f"target={target!r}: expected a positive loss (nats/token)")
    if values.size not in (1, n):
        raise ScalebayesError(f"target: expected one value or one per planned run ({n})")
    return np.log(np.broadcast_to(values, (n,)))


def _new_run_probability(fit: Fit, log_mu: Any, log_target: Any) -> Any:
    """P(new run's loss <= target) per draw: the noise's CDF at the target."""
    sigma = fit.posterior["sigma"].to_numpy()[..., None]
    nu = fit.posterior["nu"].to_numpy()[..., None] if fit.likelihood.estimates_nu else None
    return fit.likelihood.noise_cdf(log_target - log_mu, sigma, nu)
