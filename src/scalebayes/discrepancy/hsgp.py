"""The GP discrepancy's basis: a Hilbert-space approximate GP, projected off the law's tangent space.

A squared-exponential Gaussian process in the law's log inputs, amplitude ``gp_amplitude`` (log
loss), length scale half the fitted runs' span in each input, in the Hilbert-space approximation
of Solin & Särkkä (2020) and Riutort-Mayol et al. (2023) that NumPyro ships
(``numpyro.contrib.hsgp``): ``delta(x) = sum_k w_k phi_k(z)`` with
``w_k ~ Normal(0, gp_amplitude * sqrt(S(omega_k)))``, ``S`` the unit SE spectral density.

- Each basis function has its least-squares fit on the law's tangent space removed: the
  Jacobian of the law's log mean in its parameters at the plain law's posterior mode on the
  fitted runs. Near the data the GP then does only what no small change of the law's
  parameters can, so the GP's module does not re-fit what the law's spread already covers.
- ``z`` is each log input minus the fitted runs' mean, over half their span, so the fitted runs
  lie in [-1, 1]. The approximation holds in the box ``|z| < BOX``; beyond it the inputs are
  clamped to the box's edge, where every basis function is 0, so the discrepancy there is
  constant. :func:`outside` tells callers which points lie past half the box.
- Optionally (``quadratic``) a second kernel adds the products ``(x_i - c_i)(x_j - c_j)`` of the
  centred log inputs (ln units, not clamped), also projected off the tangent space: curvature
  in log-log space that the law lacks, whose uncertainty grows with the square of the distance
  from the runs instead of stopping at the box. Its weights follow the GP's in one vector; a
  reference says which basis it was built with (:func:`has_quadratic`).

The reference and the fitted runs' basis are computed once per table in NumPy (:func:`reference`,
:func:`numpy_basis`), as are predictions (:func:`numpy_term`): nothing to compile. Inside JAX
programs the same basis is :func:`basis` and the term :func:`term`. The component that
samples it is :class:`scalebayes.discrepancy.gp.GP`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from scalebayes.errors import LawError
from scalebayes.formula_jacobian import log_jacobian
from scalebayes.laws import Law

if TYPE_CHECKING:  # JAX and NumPyro load when the basis is first computed
    import jax

BOX = 5.0  # half-width of the approximation's box, in half-spans of the fitted runs
LENGTH = 1.0  # the length scale, in half-spans
# Riutort-Mayol et al. (2023), Fig. 8: a faithful SE kernel needs m >= 1.75 c / (l / S) basis
# functions per input, c = BOX / S = 5 and l / S = 1 here, so 8.75. We keep 6 (36 for a law of N
# and D): the approximation is then a slightly smoother GP, and a fit samples in fewer steps
# (benchmarks/backtest.py measures the version shipped).
BASIS = 6
MAX_INPUTS = 2  # 6**3 basis weights for a 3-input law: too many for the sampler
SPAN_FLOOR = 1e-6  # an input that does not vary still gets a finite scale


def weight_names(law_inputs: tuple[str, ...], quadratic: bool = False) -> tuple[str, ...]:
    """The basis weights, ``gp_w0`` ...: one per basis function.

    ``BASIS ** inputs`` of the GP, then (``quadratic``) one per product of two inputs.
    """
    check_inputs(law_inputs)
    count = BASIS ** len(law_inputs) + (len(quadratic_pairs(law_inputs)) if quadratic else 0)
    return tuple(f"gp_w{k}" for k in range(count))


def quadratic_pairs(law_inputs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The input pairs ``(a, b)``, ``a`` not after ``b``, of the quadratic's products."""
    return tuple((a, b) for i, a in enumerate(law_inputs) for b in law_inputs[i:])


def has_quadratic(law_inputs: tuple[str, ...], ref: Mapping[str, Any]) -> bool:
    """Whether the reference ``ref`` was built with the quadratic's columns."""
    return int(np.shape(ref["_gp_projection"])[-1]) > BASIS ** len(law_inputs)


def check_inputs(law_inputs: tuple[str, ...]) -> None:
    """Raise a LawError when the GP discrepancy cannot serve a law with these inputs."""
    if len(law_inputs) > MAX_INPUTS:
        raise LawError(
            f"the 'gp' discrepancy supports laws of at most {MAX_INPUTS} inputs; this law has "
            f"{len(law_inputs)} ({', '.join(law_inputs)}): use discrepancy 'none' or 'curvature'"
        )


def reference(
    law: Law,
    log_inputs: Mapping[str, Any],
    centre: Mapping[str, Any],
    counted: Any,
    mode: Mapping[str, Any],
    quadratic: bool = False,
) -> dict[str, np.ndarray]:
    """What the GP needs from the fitted runs: each input's half-span, the mode, the projection.

    ``counted`` (bool, shape (n,)) marks the fitted runs; others (held out by a mask) are
    ignored. ``mode`` holds the plain law's parameters (scalars) where its tangent space is
    taken; ``quadratic`` adds the quadratic's columns to the projection. Keys start with
    ``_gp_`` so they sit beside the centre in the reference point. In NumPy (float64), once per
    table: nothing to compile.
    """
    counted = np.asarray(counted, dtype=bool)
    arrays = {name: np.asarray(log_inputs[name], dtype=float) for name in law.inputs}
    out: dict[str, np.ndarray] = {}
    for name, values in arrays.items():
        high, low = np.max(values[counted]), np.min(values[counted])
        out[f"_gp_half_span_{name}"] = np.maximum((high - low) / 2, SPAN_FLOOR)
    for name in law.param_names:
        out[f"_gp_mode_{name}"] = np.asarray(mode[name], dtype=float)
    ref = {**{k: np.asarray(v, dtype=float) for k, v in centre.items()}, **out}
    z = np.clip(_scaled(law.inputs, arrays, ref, np), -BOX, BOX)
    phi = _numpy_eigenfunctions(z)
    if quadratic:
        phi = np.concatenate([phi, products(law.inputs, arrays, ref, np)], axis=-1)
    at_mode = {name: out[f"_gp_mode_{name}"] for name in law.param_names}
    out["_gp_projection"] = tangent_projection(law, arrays, counted, at_mode, phi)
    return out


def tangent_projection(
    law: Law,
    arrays: Mapping[str, np.ndarray],
    counted: np.ndarray,
    at_mode: Mapping[str, Any],
    columns: np.ndarray,
) -> np.ndarray:
    """Least-squares coefficients of ``columns`` (n, K) on the law's tangent space: (P, K).

    The tangent space is the Jacobian of the law's log mean in its free parameters at
    ``at_mode``, over the runs ``counted`` marks (the others are ignored); ``columns`` minus
    the tangent times these coefficients is what no small change of the law's parameters can do.
    """
    columns = columns * counted[:, None]
    jacobian = log_jacobian(law.expr, at_mode, arrays, law.free_param_names) * counted[:, None]
    # Columns in units of their norm over the fitted runs: a coefficient's and an exponent's
    # derivatives differ by orders of magnitude, and the ridge below must not favour either.
    norm = np.sqrt(np.sum(jacobian**2, axis=0))
    norm = np.where(norm > 0, norm, 1.0)
    unit = jacobian / norm
    gram = unit.T @ unit + 1e-9 * np.eye(unit.shape[-1])
    return np.linalg.solve(gram, unit.T @ columns) / norm[:, None]


def spectral_scale(dim: int) -> jax.Array:
    """Square root of the unit-amplitude SE spectral density at each basis frequency, (BASIS**dim,)."""
    import jax.numpy as jnp
    from numpyro.contrib.hsgp.spectral_densities import (
        diag_spectral_density_squared_exponential,
    )

    return jnp.sqrt(
        diag_spectral_density_squared_exponential(
            alpha=1.0, length=LENGTH, ell=BOX, m=BASIS, dim=dim
        )
    )


def term(
    law: Law,
    params: Mapping[str, jax.Array],
    log_inputs: Mapping[str, jax.Array],
    ref: Mapping[str, jax.Array],
) -> jax.Array:
    """The discrepancy ``delta`` in log loss at ``log_inputs``; broadcasts as ``Law.log_mean``.

    The weights ``gp_w*`` (already scaled by the amplitude and spectral density) of shape P
    broadcast against inputs of shape X as scalars do; the basis axis is internal.
    """
    import jax.numpy as jnp

    quadratic = has_quadratic(law.inputs, ref)
    weights = stacked_weights(law.inputs, params, quadratic)
    return jnp.sum(weights * basis(law, log_inputs, ref), axis=-1)


def stacked_weights(
    law_inputs: tuple[str, ...], params: Mapping[str, jax.Array], quadratic: bool = False
) -> jax.Array:
    """The weights ``gp_w*`` stacked on a last axis: shape P + (K,)."""
    import jax.numpy as jnp

    names = weight_names(law_inputs, quadratic)
    return jnp.stack([jnp.asarray(params[n]) for n in names], axis=-1)


def basis(law: Law, log_inputs: Mapping[str, jax.Array], ref: Mapping[str, jax.Array]) -> jax.Array:
    """The projected basis functions at ``log_inputs``: shape X + (K,), K = BASIS ** inputs.

    Past the box the inputs are clamped to its edge, so the GP's basis (and the tangent part
    taken off it) is constant there; the quadratic's columns, if any, are not clamped.
    """
    import jax.numpy as jnp

    z = jnp.clip(_scaled(law.inputs, log_inputs, ref, jnp), -BOX, BOX)
    clamped = {
        name: ref[name] + ref[f"_gp_half_span_{name}"] * z[..., i]
        for i, name in enumerate(law.inputs)
    }
    projection = ref["_gp_projection"]
    k = BASIS ** len(law.inputs)
    out = _eigenfunctions(z) - _tangent(law, clamped, ref) @ projection[:, :k]
    if not has_quadratic(law.inputs, ref):
        return out
    quad = projected_products(law, log_inputs, ref, mode(law, ref), projection[:, k:], jnp)
    return jnp.concatenate([out, quad], axis=-1)


def broadcast_inputs(law_inputs: tuple[str, ...], log_inputs: Mapping[str, Any], xp: Any) -> dict:
    """The law's inputs broadcast against each other, by name."""
    arrays = xp.broadcast_arrays(*(xp.asarray(log_inputs[n]) for n in law_inputs))
    return dict(zip(law_inputs, arrays, strict=True))


def projected_products(
    law: Law,
    log_inputs: Mapping[str, Any],
    centre: Mapping[str, Any],
    at_mode: Mapping[str, Any],
    projection: Any,
    xp: Any,
) -> Any:
    """The quadratic's columns less their tangent-space part: shape X + (pairs,).

    :func:`products` at ``log_inputs`` (not clamped) minus the law's Jacobian at ``at_mode``
    times ``projection`` ((free parameters, pairs), from :func:`tangent_projection`); in JAX
    (``xp`` jax.numpy, inside programs) or NumPy (one-off predictions, no compile).
    """
    inputs = broadcast_inputs(law.inputs, log_inputs, xp)
    if xp is np:
        jacobian = log_jacobian(law.expr, at_mode, inputs, law.free_param_names)
    else:
        jacobian = tangent(law, inputs, at_mode)
    return products(law.inputs, inputs, centre, xp) - jacobian @ projection


def products(
    law_inputs: tuple[str, ...], log_inputs: Mapping[str, Any], ref: Mapping[str, Any], xp: Any
) -> Any:
    """The quadratic's columns: ``(x_a - c_a)(x_b - c_b)`` per pair, shape X + (pairs,)."""
    arrays = broadcast_inputs(law_inputs, log_inputs, xp)
    return xp.stack(
        [(arrays[a] - ref[a]) * (arrays[b] - ref[b]) for a, b in quadratic_pairs(law_inputs)],
        axis=-1,
    )


def _eigenfunctions(z: jax.Array) -> jax.Array:
    """The unprojected basis at scaled inputs ``z`` of shape X + (inputs,): shape X + (K,)."""
    from numpyro.contrib.hsgp.laplacian import eigenfunctions

    # eigenfunctions reads a 1-D x as points of one input: give it (points, inputs) always, so
    # that a single point of a two-input law (shape () inputs, z of shape (2,)) is one point.
    flat = z.reshape(-1, z.shape[-1])
    return eigenfunctions(x=flat, ell=BOX, m=BASIS).reshape(*z.shape[:-1], -1)


def outside(
    law_inputs: tuple[str, ...], log_inputs: Mapping[str, Any], ref: Mapping[str, Any]
) -> np.ndarray:
    """Boolean, shape of the inputs: points where the approximation no longer widens the band.

    Past half the box the basis functions shrink towards the box's edge, so the GP's spread
    there understates what a true GP would give. (NumPy: a one-off check, nothing to compile.)
    """
    z = _scaled(law_inputs, log_inputs, ref, np)
    return np.any(np.abs(z) > BOX / 2, axis=-1)


def _scaled(
    law_inputs: tuple[str, ...], log_inputs: Mapping[str, Any], ref: Mapping[str, Any], xp: Any
) -> Any:
    """Each input minus the fitted runs' centre, over their half-span: shape X + (inputs,)."""
    arrays = xp.broadcast_arrays(*(xp.asarray(log_inputs[n]) for n in law_inputs))
    return xp.stack(
        [(a - ref[n]) / ref[f"_gp_half_span_{n}"] for a, n in zip(arrays, law_inputs, strict=True)],
        axis=-1,
    )


def numpy_term(
    law: Law, params: Mapping[str, Any], log_inputs: Mapping[str, Any], ref: Mapping[str, Any]
) -> np.ndarray:
    """:func:`term` computed in NumPy, for one-off predictions (no JAX program to compile).

    Equal to :func:`term` to rounding: the tangent comes from
    :func:`~scalebayes.formula_jacobian.log_jacobian` instead of ``jax.jacfwd``.
    """
    names = weight_names(law.inputs, has_quadratic(law.inputs, ref))
    weights = np.stack([np.asarray(params[n]) for n in names], axis=-1)
    return np.einsum("...k,...k->...", weights, numpy_basis(law, log_inputs, ref))


def numpy_basis(law: Law, log_inputs: Mapping[str, Any], ref: Mapping[str, Any]) -> np.ndarray:
    """:func:`basis` computed in NumPy: shape X + (K,)."""
    z = np.clip(_scaled(law.inputs, log_inputs, ref, np), -BOX, BOX)
    clamped = {
        name: ref[name] + ref[f"_gp_half_span_{name}"] * z[..., i]
        for i, name in enumerate(law.inputs)
    }
    at_mode = {name: np.asarray(value, dtype=float) for name, value in mode(law, ref).items()}
    jacobian = log_jacobian(law.expr, at_mode, clamped, law.free_param_names)
    projection = np.asarray(ref["_gp_projection"])
    k = BASIS ** len(law.inputs)
    out = _numpy_eigenfunctions(z) - jacobian @ projection[:, :k]
    if not has_quadratic(law.inputs, ref):
        return out
    quad = projected_products(law, log_inputs, ref, at_mode, projection[:, k:], np)
    return np.concatenate([out, quad], axis=-1)


def _numpy_eigenfunctions(z: np.ndarray) -> np.ndarray:
    """NumPyro's ``eigenfunctions(z, ell=BOX, m=BASIS)`` in NumPy, z of shape X + (dim,): X + (K,).

    ``phi_k(z) = prod_d sqrt(1 / BOX) sin(pi j_kd (z_d + BOX) / (2 BOX))``, the index tuples
    ``j_k`` in NumPyro's order (``eigenindices``: the last input's index varies fastest).
    """
    frequencies = _frequencies(z.shape[-1])
    return np.prod(np.sqrt(1 / BOX) * np.sin(frequencies * (z[..., None] + BOX)), axis=-2)


def numpy_spectral_scale(dim: int) -> np.ndarray:
    """:func:`spectral_scale` in NumPy: sqrt of the SE spectral density (amplitude 1), (K,).

    ``S(w) = (sqrt(2 pi) LENGTH)^dim exp(-LENGTH^2 |w|^2 / 2)`` at each basis frequency.
    """
    frequencies = _frequencies(dim)
    density = (np.sqrt(2 * np.pi) * LENGTH) ** dim * np.exp(
        -0.5 * LENGTH**2 * np.sum(frequencies**2, axis=0)
    )
    return np.sqrt(density)


def _frequencies(dim: int) -> np.ndarray:
    """The basis functions' frequencies pi j / (2 BOX), (dim, K).

    In NumPyro's order (``eigenindices``: the last input's index varies fastest).
    """
    grids = np.meshgrid(*[np.arange(1, BASIS + 1)] * dim, indexing="ij")
    return np.stack(grids, axis=-1).reshape(-1, dim).T * np.pi / 2 / BOX


def mode(law: Law, ref: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """The plain law's mode on the fitted runs, as :func:`reference` stored it: scalars by name."""
    return {name: ref[f"_gp_mode_{name}"] for name in law.param_names}


def _tangent(
    law: Law, log_inputs: Mapping[str, jax.Array], ref: Mapping[str, jax.Array]
) -> jax.Array:
    """Jacobian of the law's log mean in its free parameters at the mode: shape X + (P,)."""
    return tangent(law, log_inputs, mode(law, ref))


def tangent(
    law: Law, log_inputs: Mapping[str, jax.Array], mode_values: Mapping[str, jax.Array]
) -> jax.Array:
    """Jacobian of the law's log mean in its free parameters at ``mode_values``: X + (P,)."""
    import jax
    import jax.numpy as jnp

    free = law.free_param_names

    def log_mean(values: dict[str, jax.Array]) -> jax.Array:
        return law.log_mean({**mode_values, **values}, log_inputs)

    jacobian = jax.jacfwd(log_mean)({name: mode_values[name] for name in free})
    shape = jnp.broadcast_shapes(*(jnp.shape(log_inputs[n]) for n in law.inputs))
    return jnp.stack([jnp.broadcast_to(jacobian[name], shape) for name in free], axis=-1)
