"""The sweeps' minima around approach 2's curve, with their scatter tau integrated out.

Each sweep's minimum misses the curve x(C) by a residual r_b ~ Normal(0, tau). With an
inverse-gamma prior on tau^2 the residuals' joint density has a closed form (a multivariate
Student-t, :func:`log_marginal`), so tau is not sampled and makes no funnel; each posterior
draw's tau is drawn afterwards from its exact conditional (:func:`scatter_draws`).

The residuals are sampled in polar form, r = R z / |z| with z ~ Normal(0, I) and log R a site
of its own (:func:`polar_residuals`, :func:`polar_log_density`): the data pin each minimum,
hence r, hence R and the direction z / |z|, while |z| is free and independent. Sampled with
tau (non-centred, a HalfNormal(0.1) prior), tau was the slowest quantity (bulk ESS 450 of 4000
draws on Epoch's runs; benchmarks/results/allocation_approaches_edge.json at commit d842940).
With tau integrated out but each minimum in its own coordinate (``ProfileModel(minima="own")``)
the residuals' overall size mixed slowly instead: R-hat 1.013-1.039 on Epoch's, Llama 3's and
(Mis)Fitting's tables; over seeds 0-2 on the nine public tables 13 of 27 fits read R-hat over
1.01 or a divergence in own coordinates, 3 of 27 in polar form (allocation_approaches_own_minima*
and allocation_approaches_edge* in benchmarks/results). z / |z| is undefined
at z = 0, which z ~ Normal(0, I) keeps away from in 3 or more dimensions (|z|^2 is chi-square
with B degrees of freedom); fewer sweeps are sampled in their own coordinates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The polar form for this many sweeps or more (z / |z| needs |z| kept off 0).
POLAR_MIN_BUDGETS = 3
# log R's site: a Normal this wide, its density cancelled in :func:`polar_log_density` so the
# prior on the residuals is exactly the marginal; its centre is only where sampling starts.
LOG_R_SITE = {"loc": -1.5, "scale": 10.0}


def log_marginal(alpha: float, beta: float, residual_ss: Any, n: int) -> Any:
    """The residuals' joint log density with tau integrated out.

    tau^2 ~ InverseGamma(alpha, beta), each of the ``n`` residuals ~ Normal(0, tau), and
    ``residual_ss`` is half their sum of squares. The closed form,
    ``Gamma(alpha + n/2) / Gamma(alpha) beta^alpha (2 pi)^(-n/2) (beta + ss)^(-(alpha + n/2))``,
    is bounded at zero residuals: no funnel.
    """
    # NumPyro's MultivariateStudentT(2 alpha, 0, sqrt(beta / alpha) I) is the same density
    # (tests/test_isoflop.py checks it), but in its dense form, a triangular solve per
    # evaluation: on Epoch's runs approach 2 took 9.0 s (4.2 compiling, 4.3 sampling) with it
    # against 7.7 s (3.3, 3.8) with this isotropic closed form (one run each, this VM).
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    half_n = 0.5 * n
    return (
        gammaln(alpha + half_n) - gammaln(alpha) + alpha * jnp.log(beta)
        - half_n * jnp.log(2.0 * jnp.pi) - (alpha + half_n) * jnp.log(beta + residual_ss)
    )  # fmt: skip


def polar_residuals(log_r: Any, z: Any) -> Any:
    """The residuals ``R z / |z|`` (shape of ``z``) from log R and a direction vector z."""
    import jax.numpy as jnp

    return jnp.exp(log_r) * z / jnp.sqrt(jnp.sum(z**2))


def polar_log_density(alpha: float, beta: float, log_r: Any, n: int) -> Any:
    """The log density to add for log R's site, ``n`` residuals.

    The residuals' marginal at |r| = R, times the Jacobian R^n of (log R, direction) -> r, less
    log R's own site density (:data:`LOG_R_SITE`). z ~ Normal(0, I) makes z / |z| uniform on
    the sphere and |z| an independent nuisance.
    """
    import jax.numpy as jnp
    from jax.scipy.stats import norm

    site = norm.logpdf(log_r, LOG_R_SITE["loc"], LOG_R_SITE["scale"])
    return log_marginal(alpha, beta, 0.5 * jnp.exp(2.0 * log_r), n) + n * log_r - site


def scatter_draws(
    alpha: float, beta: float, residual_ss: np.ndarray, n: int, seed: int
) -> np.ndarray:
    """The scatter tau per draw from its conditional, tau^2 ~ InverseGamma(alpha + n/2, beta + ss).

    ``residual_ss`` is each draw's half sum of squared residuals (any shape); the draws are
    seeded, so a fit's tau is reproducible.
    """
    rng = np.random.default_rng(seed)
    precision = rng.gamma(alpha + 0.5 * n, 1.0 / (beta + residual_ss))
    return 1.0 / np.sqrt(precision)
