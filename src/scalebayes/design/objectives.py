"""What a next run should make surer: one decision quantity per posterior draw, and its spread.

An :class:`Objective` is a small component: it names the model whose posterior it reads (the
whole fit, or the law alone for decisions that search over runs), computes its quantity once
per posterior draw, and measures the quantity's uncertainty under importance weights of the
draws. :func:`scalebayes.design.next_runs` only asks these three things, never an objective's
name. A new objective is a new class here plus an entry in :data:`OBJECTIVES`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from scalebayes.errors import ScalebayesError
from scalebayes.formatting import format_number

if TYPE_CHECKING:
    from scalebayes.results import Fit

__all__ = [
    "OBJECTIVES",
    "AllocationRegret",
    "ChanceAt",
    "LossAt",
    "LossOver",
    "Objective",
    "OptimalN",
    "RunLossAt",
    "make_objective",
]


def interval_width(q: Any, w: Any, prob: float) -> Any:
    """Width of the equal-tailed ``prob`` interval of ``q`` under weights ``w``.

    ``q`` (S,) is sorted ascending; ``w`` (..., S) are weights summing to 1 over the last axis,
    in the same order. Returns shape (...). See :func:`weighted_quantile`.
    """
    tail = 0.5 * (1.0 - prob)
    return weighted_quantile(q, w, 1.0 - tail) - weighted_quantile(q, w, tail)


def weighted_quantile(q: Any, w: Any, p: float) -> Any:
    """The ``p`` quantile of sorted ``q`` (S,) under weights ``w`` (..., S); shape (...).

    The weighted CDF at draw i is the weight of draws 0..i; the quantile interpolates linearly
    between the two draws whose CDF values bracket ``p``. Found in two levels (blocks of ~sqrt(S)
    draws, then the draws of one block), so it reads the weights once: XLA's cumulative sum on
    CPUs is a reduce-window that took longer than the whole rest of the ranking (and the short
    sums are products with a triangular matrix, for the same reason).
    """
    import jax.numpy as jnp

    size = q.shape[0]
    block = max(1, round(np.sqrt(size)))
    blocks = -(-size // block)
    pad = blocks * block - size
    w = jnp.pad(w, [(0, 0)] * (w.ndim - 1) + [(0, pad)])
    q = jnp.pad(q, (0, pad), mode="edge")
    wb = w.reshape(*w.shape[:-1], blocks, block)
    ends = _cumsum(wb.sum(axis=-1))  # (..., blocks): the CDF at each block's end
    b = jnp.clip(jnp.sum(ends < p, axis=-1, keepdims=True), 0, blocks - 1)  # (..., 1)
    start = jnp.where(b > 0, jnp.take_along_axis(ends, jnp.maximum(b - 1, 0), axis=-1), 0.0)
    inner = jnp.take_along_axis(wb, b[..., None], axis=-2)[..., 0, :]  # (..., block)
    cdf = start + _cumsum(inner)
    i = jnp.clip(jnp.sum(cdf < p, axis=-1, keepdims=True), 0, block - 1)
    at = jnp.take_along_axis(cdf, i, axis=-1)[..., 0]
    w_i = jnp.take_along_axis(inner, i, axis=-1)[..., 0]
    g = (b * block + i)[..., 0]  # the first draw whose CDF reaches p
    before = at - w_i
    t = jnp.clip((p - before) / jnp.maximum(w_i, jnp.finfo(w.dtype).tiny), 0.0, 1.0)
    low = q[jnp.maximum(g - 1, 0)]
    return low + t * (q[g] - low)


def _cumsum(x: Any) -> Any:
    """Cumulative sum over a short last axis as a product with a triangular matrix (fast on CPU)."""
    import jax.numpy as jnp

    n = x.shape[-1]
    return x @ jnp.triu(jnp.ones((n, n), x.dtype))


def weighted_sd(q: Any, w: Any) -> Any:
    """Standard deviation of ``q`` (S,) under weights ``w`` (..., S); shape (...).

    For ``q`` (S, K), of each column: shape (..., K).
    """
    import jax.numpy as jnp

    mean = w @ q
    second = w @ (q * q)
    return jnp.sqrt(jnp.maximum(second - mean * mean, 0.0))


class Objective(ABC):
    """A decision quantity per posterior draw whose uncertainty new runs should shrink.

    Subclasses are frozen dataclasses (hashable: the compiled selection kernel is keyed on
    them) with a registry ``key``.
    """

    key: ClassVar[str]
    measure: ClassVar[str] = "width"  # what :meth:`spread` measures, in the batch's header

    def model(self, fit: Fit) -> Fit:
        """The posterior this objective reads; new outcomes are weighed under its likelihood."""
        return fit

    @abstractmethod
    def per_draw(self, fit: Fit) -> np.ndarray:
        """The quantity under every draw of ``fit`` (already :meth:`model`'s), shape (chain * draw,)."""

    @abstractmethod
    def spread(self, q: Any, w: Any) -> Any:
        """Uncertainty of sorted ``q`` (S,) under weights ``w`` (..., S): shape (...)."""

    def arrange(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The draws' order for :meth:`spread`, and :meth:`per_draw`'s ``q`` in it, shifted.

        By default ascending (a weighted quantile walks sorted draws) and less the median (a
        spread does not depend on the centre, and the float32 weights keep more digits).
        """
        order = np.argsort(q, kind="stable")
        return order, q[order] - np.median(q)

    @abstractmethod
    def describe(self) -> str:
        """What is measured, in words, with units (one line)."""

    def show(self, value: float) -> str:
        """One spread value as text."""
        return format_number(value)


def _law_alone(fit: Fit, unique_tokens: float | None) -> Fit:
    """The law module of ``fit``, refused for a law that cannot allocate (at these unique tokens)."""
    from scalebayes.allocate import fixed_inputs

    fixed_inputs(fit.law, unique_tokens)
    return fit.law_module()


def _unique(fit: Fit, unique_tokens: float | None) -> dict[str, float]:
    """``{"U": unique_tokens}`` for planned runs of a law of repeated data; else ``{}``, checked."""
    if unique_tokens is None:
        if "U" in fit.law.inputs:
            raise ScalebayesError(
                f"law {fit.law.name!r} reads U, the unique tokens: give unique_tokens= "
                "(--unique-tokens U), how many the planned runs and candidates train on"
            )
        return {}
    from scalebayes.allocate import fixed_inputs

    fixed_inputs(fit.law, unique_tokens)  # refuses a law that does not read U
    return {"U": unique_tokens}


def _unique_text(unique_tokens: float | None) -> str:
    return "" if unique_tokens is None else f", U {format_number(unique_tokens)}"


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ScalebayesError(f"{name}={value!r}: expected a positive finite number")
    return value


def _check_unique(unique_tokens: float | None) -> None:
    if unique_tokens is not None:
        _check_positive("unique_tokens", unique_tokens)


def _check_prob(prob: float) -> None:
    if not 0 < prob < 1:
        raise ScalebayesError(f"prob={prob!r}: expected an interval probability in (0, 1)")


@dataclass(frozen=True)
class LossAt(Objective):
    """Width of the credible interval of the law's loss at a planned run (N, D), nats/token."""

    N: float
    D: float
    prob: float = 0.9
    unique_tokens: float | None = None  # U of the planned run, for a law of repeated data

    key: ClassVar[str] = "loss"

    def __post_init__(self) -> None:
        _check_positive("N", self.N)
        _check_positive("D", self.D)
        _check_prob(self.prob)
        _check_unique(self.unique_tokens)

    def per_draw(self, fit: Fit) -> np.ndarray:
        """Mean loss (the whole model's, discrepancy included) at (N, D) per draw."""
        from scalebayes.prediction import log_mean_at, planned_points

        points = planned_points(fit, N=self.N, D=self.D, **_unique(fit, self.unique_tokens))
        return np.exp(log_mean_at(fit, points)).reshape(-1)

    def spread(self, q: Any, w: Any) -> Any:
        """The interval's width."""
        return interval_width(q, w, self.prob)

    def describe(self) -> str:
        """E.g. "width of the 90% credible interval of the loss at N 7e10, D 1.4e12"."""
        return (
            f"width of the {self.prob:.0%} credible interval of the loss (nats/token) at "
            f"N {format_number(self.N)}, D {format_number(self.D)}"
            f"{_unique_text(self.unique_tokens)}"
        )


@dataclass(frozen=True)
class RunLossAt(LossAt):
    """Width of the predictive interval of a new run's loss at (N, D), nats/token.

    :class:`LossAt` with the run-to-run noise the fit measured: per draw, the mean loss times
    one draw of that draw's noise (a fixed ``seed``), so the interval is the one a planned run's
    own loss should fall in, as ``predict``'s "predictive" band. New runs shrink it through the
    mean's uncertainty and through the noise scale's: it values runs that pin sigma down too.
    """

    seed: int = 0

    key: ClassVar[str] = "run"

    def per_draw(self, fit: Fit) -> np.ndarray:
        """A new run's loss at (N, D) per draw: the whole model's mean with one noise draw."""
        from scalebayes.prediction import noise_draws

        mean = super().per_draw(fit)
        chains, draws = fit.posterior["sigma"].shape[:2]
        noise = noise_draws(fit, (chains, draws, 1), seed=self.seed).reshape(-1)
        return mean * np.exp(noise)

    def describe(self) -> str:
        """E.g. "width of the 90% predictive interval of a new run's loss at N 7e10, D 1.4e12"."""
        return (
            f"width of the {self.prob:.0%} predictive interval of a new run's loss (nats/token) "
            f"at N {format_number(self.N)}, D {format_number(self.D)}"
            f"{_unique_text(self.unique_tokens)}"
        )


@dataclass(frozen=True)
class LossOver(Objective):
    """Mean sd of the log loss over planned runs (a target region): relative, ~fraction of the loss.

    ``N`` and ``D`` list the runs (same length, or one of them a single value). Where
    :class:`LossAt` sharpens one run's prediction, this sharpens a whole sweep's, e.g. the
    isoFLOP sweep that the next big budget will train: each run's uncertainty counts alike.
    """

    N: tuple[float, ...]
    D: tuple[float, ...]
    unique_tokens: float | None = None  # U of every planned run, for a law of repeated data

    key: ClassVar[str] = "region"
    measure: ClassVar[str] = "sd"

    def __post_init__(self) -> None:
        n, d = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (self.N, self.D))
        try:
            n, d = np.broadcast_arrays(n, d)
        except ValueError:
            raise ScalebayesError(
                f"region: {n.size} values of N and {d.size} of D; expected as many of each "
                "(or one of either)"
            ) from None
        for name, values in (("N", n), ("D", d)):
            for value in values:
                _check_positive(name, value)
        object.__setattr__(self, "N", tuple(float(x) for x in n))
        object.__setattr__(self, "D", tuple(float(x) for x in d))
        _check_unique(self.unique_tokens)

    def per_draw(self, fit: Fit) -> np.ndarray:
        """Log mean loss (the whole model's) at each run per draw: (chain * draw, runs)."""
        from scalebayes.prediction import log_mean_at, planned_points

        unique = _unique(fit, self.unique_tokens)
        points = planned_points(fit, N=np.asarray(self.N), D=np.asarray(self.D), **unique)
        return log_mean_at(fit, points).reshape(-1, len(self.N))

    def arrange(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Any order serves (moments, not quantiles); each run's log loss less its median."""
        return np.arange(q.shape[0]), q - np.median(q, axis=0)

    def spread(self, q: Any, w: Any) -> Any:
        """The weighted sd of each run's log loss, averaged over the runs. ``q`` (S, runs)."""
        import jax.numpy as jnp

        return jnp.mean(weighted_sd(q, w), axis=-1)

    def describe(self) -> str:
        """E.g. "mean sd of the log loss over 15 planned runs (N 1e9-8e9, D 2e10-2e11)"."""
        span = [
            f"{name} {format_number(min(v))}-{format_number(max(v))}"
            for name, v in (("N", self.N), ("D", self.D))
        ]
        if self.unique_tokens is not None:
            span.append(f"U {format_number(self.unique_tokens)}")
        return f"mean sd of the log loss over {len(self.N)} planned runs ({', '.join(span)})"


@dataclass(frozen=True)
class OptimalN(Objective):
    """Width of the interval of log10 N* at a target budget, per draw by ``approach``.

    "3" (default): the law's N* (:func:`scalebayes.optimal`); "3m": the whole model's, law + GP
    (``optimal(..., approach="3m")``), the one ``optimal --approach all`` recommends on a
    default fit of isoFLOP sweeps. 3m's edge stays the fit's: a run beyond it counts through
    the parameters it shares with the edge (a sweep trained there moves the edge at a re-fit).
    """

    compute: float
    prob: float = 0.9
    unique_tokens: float | None = None  # U to train on, for a law of repeated data
    approach: str = "3"

    key: ClassVar[str] = "nstar"

    def __post_init__(self) -> None:
        _check_positive("compute", self.compute)
        _check_prob(self.prob)
        _check_unique(self.unique_tokens)
        if self.approach not in ("3", "3m"):
            raise ScalebayesError(f"approach={self.approach!r}: expected '3' or '3m'")
        if self.approach == "3m" and self.unique_tokens is not None:
            raise ScalebayesError("approach '3m' allocates fresh data: a law of U needs '3'")

    def model(self, fit: Fit) -> Fit:
        """The law alone for approach 3 (:meth:`Fit.law_module`), the whole fit for 3m."""
        return fit if self.approach == "3m" else _law_alone(fit, self.unique_tokens)

    def per_draw(self, fit: Fit) -> np.ndarray:
        """log10 N* at ``compute`` per draw, as ``optimal`` finds it by ``approach``."""
        import warnings

        from scalebayes.allocate import optimal
        from scalebayes.allocation.whole_model import whole_model_optimal

        with warnings.catch_warnings():  # `optimal` itself says these; here they are not news
            warnings.simplefilter("ignore")
            if self.approach == "3m":
                allocation = whole_model_optimal(fit, [self.compute])
            else:
                allocation = optimal(fit, [self.compute], unique_tokens=self.unique_tokens)
        return np.log10(allocation.N.to_numpy()).reshape(-1)

    def spread(self, q: Any, w: Any) -> Any:
        """The interval's width in decades of N*."""
        return interval_width(q, w, self.prob)

    def describe(self) -> str:
        """E.g. "width of the 90% interval of log10 N* at C 5.76e23 FLOPs"."""
        return (
            f"width of the {self.prob:.0%} interval of log10 N* (decades) at compute "
            f"{format_number(self.compute)} FLOPs{_unique_text(self.unique_tokens)}"
            + (" (approach 3m: the whole model's N*)" if self.approach == "3m" else "")
        )

    def show(self, value: float) -> str:
        """Decades, and the factor between the interval's ends."""
        return f"{value:.3f} (x{10**value:.3g})"


@dataclass(frozen=True)
class ChanceAt(Objective):
    """Posterior sd of P(a new run's loss <= target) at a planned run (N, D).

    Per draw the quantity is that draw's chance (its law plus noise); the sd across draws is how
    unsure the posterior is of the chance itself. Run-to-run noise is not reducible by more
    runs, so the sd goes to 0 as the law is pinned down, while the chance keeps its noise.
    """

    N: float
    D: float
    target: float
    unique_tokens: float | None = None  # U of the planned run, for a law of repeated data

    key: ClassVar[str] = "chance"

    def __post_init__(self) -> None:
        _check_positive("N", self.N)
        _check_positive("D", self.D)
        _check_positive("target", self.target)
        _check_unique(self.unique_tokens)

    def per_draw(self, fit: Fit) -> np.ndarray:
        """P(run <= target) per draw (:func:`scalebayes.chance`)."""
        from scalebayes.planning import chance

        unique = _unique(fit, self.unique_tokens)
        return chance(fit, self.N, self.D, self.target, **unique).new_run.to_numpy().reshape(-1)

    def spread(self, q: Any, w: Any) -> Any:
        """The standard deviation of the per-draw chance."""
        return weighted_sd(q, w)

    def describe(self) -> str:
        """E.g. "sd of P(loss <= 2.0) at N 7e10, D 1.4e12 across the posterior"."""
        return (
            f"posterior sd of P(a run's loss <= {self.target:g}) at N {format_number(self.N)}, "
            f"D {format_number(self.D)}{_unique_text(self.unique_tokens)}"
        )

    def show(self, value: float) -> str:
        """Three decimals (a probability's sd)."""
        return f"{value:.3f}"


# Choices of N per draw on the isoFLOP curve: over the posterior's range of N*, the grid's half
# step is ~0.01 decade for a 2-decade range, where an excess loss of 1/2 L'' dx^2 (L'' ~ 0.07 nats
# per ln-unit squared for Chinchilla's law) is ~1e-5 nats: ~1 % of a typical risk (1e-3).
REGRET_GRID = 160
# Half the step (ln units of compute) of the central difference that gives dL*/dln C per draw.
SLOPE_STEP = 0.05


@dataclass(frozen=True)
class AllocationRegret(Objective):
    """Expected compute wasted by the model size chosen now for a target budget (% of it).

    The value of information of the allocation decision. The decision is the N to train with
    ``compute`` FLOPs (D = C / (k N)); under the posterior it is the N of least expected waste,
    and its expected waste over each draw's own optimum (the Bayes risk) is what not knowing the
    law costs that run. Waste is the excess loss in compute-equivalent terms: the excess over
    the draw's optimal loss divided by how fast that optimal loss falls with log compute
    (-dL*/dln C), so 1 % means the run reaches the loss an optimal run of 1 % less compute
    would. A run is worth training for how much it lowers that risk, which weighs the
    uncertainty of N* by how flat the loss is around it: a wide N* interval on a flat valley
    costs little. The law alone, as :func:`scalebayes.optimal` decides.
    """

    compute: float
    unique_tokens: float | None = None  # U to train on, for a law of repeated data

    key: ClassVar[str] = "regret"
    measure: ClassVar[str] = "risk"

    def __post_init__(self) -> None:
        _check_positive("compute", self.compute)
        _check_unique(self.unique_tokens)

    def model(self, fit: Fit) -> Fit:
        """The law alone (:meth:`Fit.law_module`), as :func:`scalebayes.optimal` decides."""
        return _law_alone(fit, self.unique_tokens)

    def per_draw(self, fit: Fit) -> np.ndarray:
        """Waste of each choice of N per draw, % of ``compute``: (chain * draw, :data:`REGRET_GRID`).

        The choices span the draws' N* at ``compute`` (:func:`scalebayes.allocate.optimal`),
        log-spaced; each draw's excess loss is over its least loss on them.
        """
        import warnings

        from scalebayes.allocate import optimal
        from scalebayes.prediction import log_mean_at, planned_points

        budgets = self.compute * np.exp([-SLOPE_STEP, 0.0, SLOPE_STEP])
        with warnings.catch_warnings():  # `optimal` itself says these; here they are not news
            warnings.simplefilter("ignore")
            allocation = optimal(fit, budgets, unique_tokens=self.unique_tokens)
        n_star = np.log(allocation.N.to_numpy()[..., 1].reshape(-1))
        least = allocation.loss.to_numpy().reshape(-1, 3)
        slope = (least[:, 0] - least[:, 2]) / (2 * SLOPE_STEP)  # -dL*/dln C, nats per e-fold
        if not np.all(slope > 0):
            raise ScalebayesError(
                f"the optimal loss does not fall with compute at {format_number(self.compute)} "
                "FLOPs under some draws: no compute-equivalent waste there"
                + (
                    f" (with U {format_number(self.unique_tokens)} unique tokens more compute "
                    "only repeats them: a smaller budget, or more unique tokens)"
                    if self.unique_tokens is not None
                    else ""
                )
            )
        low, high = np.min(n_star), np.max(n_star)
        pad = max(0.05 * (high - low), 0.01)  # the extreme draws' optima lie inside the grid
        grid = np.exp(np.linspace(low - pad, high + pad, REGRET_GRID))
        unique = _unique(fit, self.unique_tokens)
        points = planned_points(fit, N=grid, C=np.full(grid.size, self.compute), **unique)
        loss = np.exp(log_mean_at(fit, points)).reshape(-1, grid.size)
        excess = loss - loss.min(axis=1, keepdims=True)
        return 100.0 * excess / slope[:, None]

    def arrange(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Any order serves; the waste is kept as it is (the risk is not shift-invariant)."""
        return np.arange(q.shape[0]), q

    def spread(self, q: Any, w: Any) -> Any:
        """The Bayes risk: the least weighted mean waste over the choices. ``q`` (S, G)."""
        import jax.numpy as jnp

        return jnp.min(w @ q, axis=-1)

    def describe(self) -> str:
        """E.g. "expected compute wasted (%) by the N chosen now for 5.76e23 FLOPs"."""
        return (
            f"expected compute wasted (% of the budget, loss-equivalent) by the N chosen now "
            f"for {format_number(self.compute)} FLOPs{_unique_text(self.unique_tokens)}"
        )

    def show(self, value: float) -> str:
        """Percent of the budget, three significant digits."""
        return f"{value:.3g} %"


OBJECTIVES: dict[str, type[Objective]] = {
    kind.key: kind for kind in (LossAt, RunLossAt, LossOver, OptimalN, ChanceAt, AllocationRegret)
}
"""Every objective by its key (the CLI's ``--objective``)."""


def make_objective(key: str, **options: Any) -> Objective:
    """The objective ``key`` (of :data:`OBJECTIVES`) built from the ``options`` it takes.

    Options it does not take are ignored when None (the CLI passes every option it has) and an
    error otherwise; a missing one is an error naming what the objective needs.
    """
    if key not in OBJECTIVES:
        raise ScalebayesError(f"objective {key!r}: expected one of {', '.join(OBJECTIVES)}")
    kind = OBJECTIVES[key]
    fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    given = {name: value for name, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ScalebayesError(
            f"objective {key!r} takes {', '.join(fields)}; not {', '.join(unknown)}"
        )
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
    missing = [name for name in required if name not in given]
    if missing:
        raise ScalebayesError(
            f"objective {key!r} needs {', '.join(required)}; missing {', '.join(missing)}"
        )
    return kind(**given)
