"""Fits with known posterior draws (no NUTS), shared by the decision tests (predict, optimal, plan)."""

from __future__ import annotations

import functools

import numpy as np

import scalebayes as sb
from scalebayes.simulation import EPOCH_CHINCHILLA
from scalebayes.testing import fit_from_draws, jittered_draws

# Hoffmann et al. 2022's constants (approach 3): as printed in the paper, and with the exponents
# of its TeX source (alpha 0.3392, beta 0.2849), which Besiroglu et al. 2024 show the rounding
# distorts.
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
HOFFMANN_TEX = {**HOFFMANN, "alpha": 0.3392, "beta": 0.2849}


# The GP tests' ladder and the law they draw its losses from.
GP_LAW_TRUTH = {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}


def gp_ladder_log_inputs() -> dict[str, np.ndarray]:
    """Log N, log D of an isoFLOP-like ladder: 3 decades of compute, 5 sizes per budget."""
    budgets = np.logspace(18, 21, 7)
    n = np.concatenate([np.sqrt(c / 120) * np.logspace(-0.6, 0.6, 5) for c in budgets])
    c = np.repeat(budgets, 5)
    return {"N": np.log(n), "D": np.log(c / (6 * n))}


def tangent_part(law, log_inputs: dict, ref: dict, delta: np.ndarray) -> np.ndarray:
    """The least-squares fit of ``delta`` (draws, runs) on the law's tangent space at the GP's
    reference mode: what a small change of the law's parameters could make of it, (runs, draws).
    """
    import jax

    mode = {name: ref[f"_gp_mode_{name}"] for name in law.param_names}
    jacobian = jax.jacfwd(lambda p: law.log_mean(p, log_inputs))(mode)
    tangent = np.stack([np.asarray(jacobian[name]) for name in law.param_names], 1)
    tangent /= np.linalg.norm(tangent, axis=0)
    coef, *_ = np.linalg.lstsq(tangent, np.asarray(delta).T, rcond=None)
    return tangent @ coef


@functools.cache
def ladder(seed: int = 0) -> sb.Runs:
    """A small isoFLOP ladder (1e19-1e21 FLOPs) drawn from Epoch's constants."""
    design = sb.isoflop_design([1e19, 1e20, 1e21], points_per_budget=5)
    return sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.01, seed=seed)


@functools.cache
def chinchilla_known(
    rel_sd: float = 0.02, sigma: float = 0.01, chains: int = 4, draws: int = 500
) -> sb.Fit:
    """Chinchilla law, draws scattered log-normally (``rel_sd``) around Epoch's constants."""
    values = {**EPOCH_CHINCHILLA, "sigma": sigma}
    draws_ = jittered_draws(values, rel_sd=rel_sd, chains=chains, draws=draws, seed=7)
    draws_["sigma"] = np.full((chains, draws), sigma)
    return fit_from_draws("chinchilla", ladder(), draws_)


@functools.cache
def chinchilla_curved(scale: float = 0.002) -> sb.Fit:
    """Chinchilla law plus the curvature discrepancy, coefficients known per draw.

    The signs make log loss convex along every isoFLOP line (c_NN - c_ND + c_DD > 0), so each
    budget has one interior optimum: with the opposite sign the quadratic wins far from the data
    and the optimum runs to the search bound (counted by ``optimal``, not tested here).
    """
    values = {**EPOCH_CHINCHILLA, "sigma": 0.01}
    draws = jittered_draws(values, rel_sd=0.02, chains=2, draws=200, seed=8)
    rng = np.random.default_rng(9)
    draws["curvature"] = np.full((2, 200), scale)
    for name, sign in (("curvature_N_N", 1), ("curvature_N_D", -1), ("curvature_D_D", 1)):
        draws[name] = sign * scale * np.abs(rng.standard_normal((2, 200)))
    return fit_from_draws(
        "chinchilla", ladder(), draws, likelihood=sb.Likelihood(discrepancy="curvature")
    )
