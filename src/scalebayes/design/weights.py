"""The importance re-weighting behind :func:`scalebayes.design.next_runs`, vectorised in JAX.

Draws are sorted by the objective's quantity once, so a weighted quantile is a walk along the
weights; candidates are processed in chunks of a few fixed sizes (one compiled program each).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.design.objectives import Objective
from scalebayes.errors import ScalebayesError
from scalebayes.prediction import log_mean_at
from scalebayes.runtime import compiled, padded_size

if TYPE_CHECKING:
    from scalebayes.results import Fit

__all__ = ["Worlds", "spread_under"]

_CHUNK_ELEMENTS = 1 << 22  # scenarios x draws x candidates per compiled call (~16 MB of float32)


@dataclass
class Worlds:
    """The draws (in the objective's order) and the simulated worlds (scenarios).

    Scenario m is one possible world: a posterior draw taken as the truth, and in it one
    simulated outcome of every candidate. ``log_w`` holds, per scenario, the log weights of all
    draws given the outcomes of the runs chosen so far.
    """

    likelihood: Any
    objective: Objective
    q: np.ndarray  # (S, ...) the objective per draw, as Objective.arrange orders and shifts it
    mu: np.ndarray  # (J, S) log mean at each candidate less its median, draws in q's order
    sigma: np.ndarray  # (S,)
    nu: np.ndarray  # (S,) degrees of freedom, or () when fixed (ignored by a Normal)
    y: np.ndarray  # (M, J) simulated log loss of each candidate in each scenario (as mu, centred)
    log_w: np.ndarray  # (M, S) log weights from the runs chosen so far
    resolution: float  # spreads closer than this are float32 rounding of the quantity
    centre: np.ndarray  # (J,) each candidate's median log mean, taken off mu and y

    @classmethod
    def build(cls, fit: Fit, objective: Objective, pool: pd.DataFrame, m: int, seed: int) -> Worlds:
        """``m`` scenarios for the candidates ``pool`` (columns N, D, C), from ``fit``'s draws.

        ``fit`` is the objective's model (:meth:`Objective.model`); ``seed`` picks each
        scenario's true draw and its outcomes' noise.
        """
        q = np.asarray(objective.per_draw(fit), dtype=float)
        if not np.all(np.isfinite(q)):
            raise ScalebayesError(f"{objective.describe()}: not finite under some draws")
        order, arranged = objective.arrange(q)
        mu = np.asarray(log_mean_at(fit, pool)).reshape(order.size, -1)[order].T  # (J, S)
        centre = np.median(mu, axis=1)  # per candidate: the kernel's float32 keeps the digits
        posterior = fit.posterior
        sigma = posterior["sigma"].to_numpy().reshape(-1)[order]
        likelihood = fit.likelihood
        nu = (
            posterior["nu"].to_numpy().reshape(-1)[order]
            if likelihood.estimates_nu
            else np.asarray(float(likelihood.df or 1.0))  # a scalar: its constants fold once
        )
        resolution = 16 * float(np.finfo(np.float32).eps) * float(np.abs(q).max())
        unsimulated = cls(likelihood, objective, arranged, mu - centre[:, None], sigma, nu,
                          np.empty((m, 0)), np.zeros((m, order.size)), resolution, centre)  # fmt: skip
        return unsimulated._scenarios(np.random.default_rng(seed))

    def afresh(self, seed: int) -> Worlds:
        """The same draws in new scenarios (true draws and noise from ``seed``), none chosen.

        Drawn as :meth:`build` draws them, from another stream than its ``seed``'s, so a batch
        chosen in this world can be measured where it was not chosen.
        """
        return self._scenarios(np.random.default_rng((seed, 1)))

    def observed(self, log_loss: np.ndarray) -> Worlds:
        """The same draws in scenarios whose outcomes are given, none chosen yet.

        ``log_loss`` (K, J): the candidates' measured log losses (nats), one row per scenario.
        Conditioned on them, the spread is what the draws' weights say without a refit.
        """
        log_loss = np.atleast_2d(np.asarray(log_loss, dtype=float))
        if log_loss.ndim != 2 or log_loss.shape[1] != self.centre.size:
            raise ScalebayesError(
                f"observed: outcomes of shape {log_loss.shape}, expected (scenarios, "
                f"{self.centre.size}), one per candidate"
            )
        y = log_loss - self.centre
        return dataclasses.replace(self, y=y, log_w=np.zeros((y.shape[0], self.n_draws)))

    def _scenarios(self, rng: np.random.Generator) -> Worlds:
        """The same world with new scenarios from ``rng``: a true draw each and its outcomes."""
        m, s = self.log_w.shape
        truth = rng.integers(s, size=m)
        nu_truth = self.nu[truth, None] if self.nu.ndim else self.nu
        noise = self.likelihood.noise_draws(
            int(rng.integers(2**31)), self.sigma[truth, None], nu_truth, (m, self.mu.shape[0])
        )
        y = self.mu[:, truth].T + np.asarray(noise)  # (M, J), centred as mu is
        return dataclasses.replace(self, y=y, log_w=np.zeros((m, s)))

    @property
    def n_draws(self) -> int:
        """Posterior draws S."""
        return self.q.shape[0]

    def spread_now(self) -> np.ndarray:
        """The objective's spread under the weights so far, per scenario: shape (M,)."""
        import jax.numpy as jnp

        w = _normalised(self.log_w)
        return np.asarray(self.objective.spread(jnp.asarray(self.q, jnp.float32), w))

    def after(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spread per scenario (M, len) and median ESS (len,) after adding each of ``columns``."""
        m, s = self.log_w.shape
        # Powers of two from 16 up: every greedy step, pool and command shares a few programs.
        largest = 1 << max(0, (_CHUNK_ELEMENTS // (m * s)).bit_length() - 1)
        size = max(1, min(largest, padded_size(len(columns), 16)))
        padded = np.pad(columns, (0, -len(columns) % size), mode="edge")
        kernel = compiled(_kernel, self.likelihood)
        spread_of = compiled(_spread, self.objective)
        q = self.q.astype(np.float32)
        spreads, ess = [], []
        for start in range(0, len(padded), size):
            cols = padded[start : start + size]
            w, effective = kernel(self.log_w, self.mu[cols], self.y[:, cols], self.sigma, self.nu)
            spreads.append(np.asarray(spread_of(q, w)))
            ess.append(np.asarray(effective))
        spread = np.concatenate(spreads, axis=1)[:, : len(columns)]
        effective = np.concatenate(ess, axis=1)[:, : len(columns)]
        return spread, np.median(effective, axis=0)

    def condition(self, j: int) -> None:
        """Condition every scenario on candidate ``j``'s simulated outcome."""
        nu = self.nu[None, :] if self.nu.ndim else self.nu
        dist = self.likelihood.noise_distribution(self.mu[None, j], self.sigma[None, :], nu)
        self.log_w = self.log_w + np.asarray(dist.log_prob(self.y[:, j, None]))


def spread_under(objective: Objective, fit: Fit) -> float:
    """The objective's spread (a width, an sd or the risk) under ``fit``'s draws, equally weighted.

    What :func:`~scalebayes.design.next_runs` reports as the spread now, read the same way off
    any fit (e.g. a refit with the chosen runs), through :meth:`Objective.model`.
    """
    import jax.numpy as jnp

    _, q = objective.arrange(np.asarray(objective.per_draw(objective.model(fit)), dtype=float))
    return float(objective.spread(jnp.asarray(q), jnp.full(q.shape[0], 1.0 / q.shape[0])))


def _normalised(log_w: Any) -> Any:
    """Weights along the draws' axis (-1) from log weights, in the kernel's float32."""
    import jax.numpy as jnp
    import jax.scipy.special as jss

    log_w = jnp.asarray(log_w)
    return jnp.exp(log_w - jss.logsumexp(log_w, axis=-1, keepdims=True)).astype(jnp.float32)


def _kernel(likelihood: Any, log_w: Any, mu: Any, y: Any, sigma: Any, nu: Any) -> tuple[Any, Any]:
    """Weights (M, K, S) and ESS (M, K) per scenario and candidate after one more run.

    ``log_w`` (M, S) weights so far; ``mu`` (K, S) the candidates' log means per draw and ``y``
    (M, K) their simulated outcomes, both centred per candidate; ``sigma`` (S,) and ``nu``
    ((S,) or a scalar) the noise, draws in the objective's sorted order. Computed in
    float32: the log density's ``log1p`` is four times faster than in float64 on CPUs, and
    weights (then widths of centred quantities) and ESS need nowhere near float64's digits.
    """
    import jax.numpy as jnp

    f32 = jnp.float32
    sigma = sigma.astype(f32)
    nu = nu.astype(f32)  # (S,) broadcasts along the draws' axis, like sigma
    # The noise is a location-scale family (Normal, Student-t): p(y) = p0((y - mu) / s) / s.
    z = (y.astype(f32)[:, :, None] - mu.astype(f32)[None]) / sigma  # (M, K, S)
    standard = likelihood.noise_distribution(f32(0.0), f32(1.0), nu)
    log_p = (log_w.astype(f32) - jnp.log(sigma))[:, None, :] + standard.log_prob(z)
    e = jnp.exp(log_p - jnp.max(log_p, axis=-1, keepdims=True))
    w = e / jnp.sum(e, axis=-1, keepdims=True)
    return w, 1.0 / jnp.sum(w * w, axis=-1)


def _spread(objective: Objective, q: Any, w: Any) -> Any:
    """``objective.spread`` of ``q`` under ``w``, compiled apart from :func:`_kernel`.

    One program, XLA fused the weights' exponentials into each of the spread's reads and
    recomputed them: ten times slower than the two programs.
    """
    return objective.spread(q, w)
