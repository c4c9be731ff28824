"""The GP module's weights sampled through their own conditional posterior ("whitened").

The GP's log mean is linear in its weights, w = scale * x with x ~ Normal(0, I) a priori and
scale = (amplitude * spectral sd for the GP's basis, the fixed sd of the quadratic's). Given the
amplitude, the noise and the quadratic's coefficients x_q, the likelihood is close to Gaussian
in the GP's x_gp (exactly so for Normal noise; for Student-t(nu) its expected information is
(nu + 1) / (nu + 3) / sigma^2 per run: Likelihood.location_information), so x_gp given them is close to Normal with precision

    P_gg = I + p a^2 H_gg,   p = information per run,   a = amplitude,
    H = S0 B'WB S0,          S0 = diag(spectral sd, quadratic sd),   B the basis, W the weights,

and mean P_gg^-1 p a (S0 B'W r - H_gq x_q), r what the law's mode leaves. The sampler moves
standard z and the model sets x_gp = mean + P_gg^{-1/2} z_gp and x_q = z_q (the exact
likelihood and prior, and the transform's Jacobian, keep the posterior what it was). The
quadratic's coefficients have a fixed prior sd, so they make no funnel and stay non-centred.
Non-centred x_gp is a funnel where the data pin the weights (a large amplitude, or a loose
quadratic beside the GP): at prior sd 0.005 the quadratic's fits of (Mis)Fitting's and
ml-scalefit's runs failed the checks, with divergences, in 3 of 12
(benchmarks/results/backtest_quadratic_scale_health.json); whitened, z_gp is near Normal(0, I)
at every amplitude. Everything per step is matrix products: H_gg is diagonalised once per table
in NumPy (H_gg = U diag(lam) U'), so P_gg = U diag(1 + p a^2 lam) U' at any a and p. A general
Cholesky per step instead (the quadratic whitened too) cost ~40 us a gradient in LAPACK calls
on a CPU, against ~3 us for the whole non-centred potential, and seconds of contention between
chains.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GP_EIGENVECTORS = "whiten_u"  # U, (K_g, K_g)
GP_EIGENVALUES = "whiten_lam"  # lam, (K_g,)
GP_SCORE = "whiten_g"  # U' S0_g B'W r, (K_g,): r what the law's mode leaves
CROSS = "whiten_v"  # U' H_gq, (K_g, q)


def table_arrays(
    basis: np.ndarray,
    weight: np.ndarray,
    left: np.ndarray,
    gp_scale: np.ndarray,
    quadratic_scale: float | None,
) -> dict[str, np.ndarray]:
    """The per-table arrays of the whitening, in NumPy (float64).

    ``basis`` (n, K): the GP's basis then the quadratic's columns; ``weight`` (n,): each run's
    weight (0 leaves it out); ``left`` (n,): log loss minus the law at its mode; ``gp_scale``
    (K_g,): the GP weights' prior sd at unit amplitude; ``quadratic_scale``: the quadratic's
    coefficients' prior sd (None: no quadratic, K = K_g).
    """
    basis = np.asarray(basis, dtype=float)
    weight = np.where(np.asarray(weight, dtype=float) > 0, weight, 0.0)
    n_gp = len(gp_scale)
    q = basis.shape[1] - n_gp
    scales = np.concatenate([np.asarray(gp_scale, float), np.full(q, quadratic_scale or 0.0)])
    scaled = basis * scales
    information = scaled.T @ (scaled * weight[:, None])
    score = scaled.T @ (weight * np.asarray(left, dtype=float))
    lam, u = np.linalg.eigh(information[:n_gp, :n_gp])
    lam = np.clip(lam, 0.0, None)  # rounding can leave an eigenvalue of a PSD matrix at -1e-17
    return {
        GP_EIGENVECTORS: u,
        GP_EIGENVALUES: lam,
        GP_SCORE: u.T @ score[:n_gp],
        CROSS: u.T @ information[:n_gp, n_gp:],
    }


def raw_weights(z: Any, amplitude: Any, information: Any, arrays: Any) -> tuple[Any, Any]:
    """Standard ``z`` (K,) -> raw weights x = w / scale (K,), and log |dx/dz|.

    ``information``: the likelihood's information per unit weight of a run (p above);
    ``arrays``: :func:`table_arrays` as JAX arrays (the model's ``data.extra``).
    """
    import jax.numpy as jnp

    u, lam = arrays[GP_EIGENVECTORS], arrays[GP_EIGENVALUES]
    n_gp = lam.shape[0]
    pa = information * amplitude
    d = 1.0 + pa * amplitude * lam  # P's GP block in U's basis
    z_gp, z_q = z[:n_gp], z[n_gp:]  # the quadratic's raw coefficients are z_q itself
    # x_gp given x_q: Normal(P_gg^-1 (b_g - P_gq x_q), P_gg^-1), P_gg^-1 = U diag(1/d) U'.
    x_gp = u @ (pa * (arrays[GP_SCORE] - arrays[CROSS] @ z_q) / d + z_gp / jnp.sqrt(d))
    return jnp.concatenate([x_gp, z_q]), -0.5 * jnp.sum(jnp.log(d))
