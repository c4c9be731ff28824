"""The Gaussian-process discrepancy: what the law misses, bounded, and uncertain beyond the data.

``Likelihood(discrepancy="gp")`` adds to the law's log mean a smooth function ``delta`` of the
law's log inputs: a squared-exponential Gaussian process with amplitude ``gp_amplitude`` (log
loss) and a length scale of half the fitted runs' span in each input, in the Hilbert-space
approximation of Solin & Särkkä (2020) and Riutort-Mayol et al. (2023) that NumPyro ships
(``numpyro.contrib.hsgp``): ``delta(x) = sum_k w_k phi_k(z)`` with
``w_k ~ Normal(0, gp_amplitude * sqrt(S(omega_k)))``, ``S`` the unit SE spectral density.

Why this shape (benchmarks/noise_models.py, benchmarks/backtest.py):

- Near the data the GP bends log loss where the law cannot, with an amplitude the data set;
  beyond them its uncertainty grows with distance, so extrapolated intervals widen, and it
  stops growing at the edge of the approximation's box (below).
- Each basis function has its least-squares fit on ``(1, z_i, z_i z_j)`` over the fitted runs
  removed, so the GP cannot trade with what the law's own parameters do near the data (a
  level, slopes, curvature): the law keeps its exponents and the sampler its geometry. With a
  linear projection only, Epoch's fit moved beta from 0.37 to 0.64 and hit tree depth 10.
- The compute-optimal allocation leaves the GP out (``allocate.allocation_likelihood``).
- ``z`` is each log input minus the fitted runs' mean, over half their span, so the fitted runs
  lie in [-1, 1]. The approximation holds in the box ``|z| < BOX``; beyond it the inputs are
  clamped to the box's edge, where every basis function is 0, so the discrepancy there is
  constant. :func:`outside` tells callers which points lie past half the box.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from numpyro.contrib.hsgp.laplacian import eigenfunctions
from numpyro.contrib.hsgp.spectral_densities import diag_spectral_density_squared_exponential

from scalebayes.errors import LawError

BOX = 5.0  # half-width of the approximation's box, in half-spans of the fitted runs
LENGTH = 1.0  # the length scale, in half-spans
# Riutort-Mayol et al. (2023), Fig. 8: a faithful SE kernel needs m >= 1.75 c / (l / S) basis
# functions per input, c = BOX / S = 5 and l / S = 1 here, so 8.75. We keep 6 (36 for a law of N
# and D): the approximation is then a slightly smoother GP, and a fit samples in fewer steps
# (benchmarks/backtest.py measures the version shipped).
BASIS = 6
MAX_INPUTS = 2  # 6**3 basis weights for a 3-input law: too many for the sampler
SPAN_FLOOR = 1e-6  # an input that does not vary still gets a finite scale


def weight_names(law_inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The GP's basis weights, ``gp_w0`` ... : one per basis function (BASIS ** inputs)."""
    check_inputs(law_inputs)
    return tuple(f"gp_w{k}" for k in range(BASIS ** len(law_inputs)))


def check_inputs(law_inputs: tuple[str, ...]) -> None:
    """Raise a LawError when the GP discrepancy cannot serve a law with these inputs."""
    if len(law_inputs) > MAX_INPUTS:
        raise LawError(
            f"the 'gp' discrepancy supports laws of at most {MAX_INPUTS} inputs; this law has "
            f"{len(law_inputs)} ({', '.join(law_inputs)}): use discrepancy 'none' or 'curvature'"
        )


def reference(
    law_inputs: tuple[str, ...],
    log_inputs: Mapping[str, jax.Array],
    centre: Mapping[str, jax.Array],
    counted: jax.Array,
) -> dict[str, jax.Array]:
    """What the GP needs from the fitted runs: each input's half-span and the projection.

    ``counted`` (bool, shape (n,)) marks the fitted runs; others (held out by a mask) are
    ignored. Keys start with ``_gp_`` so they sit beside the centre in the reference point.
    """
    out: dict[str, jax.Array] = {}
    for name in law_inputs:
        values = log_inputs[name]
        high = jnp.max(jnp.where(counted, values, -jnp.inf))
        low = jnp.min(jnp.where(counted, values, jnp.inf))
        out[f"_gp_half_span_{name}"] = jnp.maximum((high - low) / 2, SPAN_FLOOR)
    ref = {**centre, **out}
    z = _scaled(law_inputs, log_inputs, ref)
    phi = eigenfunctions(x=jnp.clip(z, -BOX, BOX), ell=BOX, m=BASIS)
    design = _design(z) * counted[:, None]
    # Weighted least squares of every basis function on (1, z): rows outside the mask are 0.
    gram = design.T @ design + 1e-9 * jnp.eye(design.shape[-1])
    out["_gp_projection"] = jnp.linalg.solve(gram, design.T @ (phi * counted[:, None]))
    return out


def spectral_scale(dim: int) -> jax.Array:
    """Square root of the unit-amplitude SE spectral density at each basis frequency, (BASIS**dim,)."""
    return jnp.sqrt(
        diag_spectral_density_squared_exponential(
            alpha=1.0, length=LENGTH, ell=BOX, m=BASIS, dim=dim
        )
    )


def term(
    law_inputs: tuple[str, ...],
    params: Mapping[str, jax.Array],
    log_inputs: Mapping[str, jax.Array],
    ref: Mapping[str, jax.Array],
) -> jax.Array:
    """The discrepancy ``delta`` in log loss at ``log_inputs``; broadcasts as ``Law.log_mean``.

    The weights ``gp_w*`` (already scaled by the amplitude and spectral density) of shape P
    broadcast against inputs of shape X as scalars do; the basis axis is internal.
    """
    names = weight_names(law_inputs)
    basis = _basis(law_inputs, log_inputs, ref)  # X + (K,)
    weights = jnp.stack([jnp.asarray(params[n]) for n in names], axis=-1)  # P + (K,)
    return jnp.sum(weights * basis, axis=-1)


def outside(
    law_inputs: tuple[str, ...], log_inputs: Mapping[str, jax.Array], ref: Mapping[str, jax.Array]
) -> jax.Array:
    """Boolean, shape of the inputs: points where the approximation no longer widens the band.

    Past half the box the basis functions shrink towards the box's edge, so the GP's spread
    there understates what a true GP would give.
    """
    z = _scaled(law_inputs, log_inputs, ref)
    return jnp.any(jnp.abs(z) > BOX / 2, axis=-1)


def _scaled(
    law_inputs: tuple[str, ...], log_inputs: Mapping[str, jax.Array], ref: Mapping[str, jax.Array]
) -> jax.Array:
    arrays = jnp.broadcast_arrays(*(jnp.asarray(log_inputs[n]) for n in law_inputs))
    return jnp.stack(
        [(a - ref[n]) / ref[f"_gp_half_span_{n}"] for a, n in zip(arrays, law_inputs, strict=True)],
        axis=-1,
    )


def _design(z: jax.Array) -> jax.Array:
    """(1, z_i, z_i z_j for i <= j): the directions the law's own parameters already move along."""
    d = z.shape[-1]
    products = [z[..., i : i + 1] * z[..., j : j + 1] for i in range(d) for j in range(i, d)]
    return jnp.concatenate([jnp.ones_like(z[..., :1]), z, *products], axis=-1)


def _basis(
    law_inputs: tuple[str, ...], log_inputs: Mapping[str, jax.Array], ref: Mapping[str, jax.Array]
) -> jax.Array:
    z = jnp.clip(_scaled(law_inputs, log_inputs, ref), -BOX, BOX)
    phi = eigenfunctions(x=z, ell=BOX, m=BASIS)
    return phi - _design(z) @ ref["_gp_projection"]
