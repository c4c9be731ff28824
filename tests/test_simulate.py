"""The simulator draws from the law it is given."""

from __future__ import annotations

import numpy as np
import pytest

from scalebayes.errors import ScalebayesError
from scalebayes.simulation import (
    EPOCH_CHINCHILLA,
    grid_design,
    isoflop_design,
    simulate,
    simulate_groups,
)


def test_isoflop_design_is_iso_flop():
    design = isoflop_design([1e19, 1e21], points_per_budget=5, span=16)
    assert len(design) == 10
    np.testing.assert_allclose(6 * design["N"] * design["D"], design["C"], rtol=1e-12)
    first = design.iloc[:5]
    assert first["N"].max() / first["N"].min() == pytest.approx(16)
    # centred at 20 tokens per parameter (geometric middle of the sweep)
    assert np.exp(np.log(first["D"] / first["N"]).mean()) == pytest.approx(20)


def test_noise_free_simulation_is_the_law():
    design = grid_design([1e8, 1e9], [1e10, 1e11])
    runs = simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.0)
    p = EPOCH_CHINCHILLA
    expected = p["E"] + p["A"] / design["N"] ** p["alpha"] + p["B"] / design["D"] ** p["beta"]
    np.testing.assert_allclose(runs.loss, expected, rtol=1e-12)


def test_noise_has_the_requested_spread():
    design = isoflop_design(np.geomspace(1e18, 1e22, 50), points_per_budget=40)
    clean = simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.0)
    noisy = simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.02, seed=3)
    residual = np.log(noisy.loss) - np.log(clean.loss)
    # 2000 draws: the sample sd of a Normal is within 5 % of the truth with overwhelming probability.
    assert residual.std() == pytest.approx(0.02, rel=0.05)


def test_groups_vary_their_terms_at_a_point_when_asked():
    """With ``terms_at``, a group's A / N**alpha at that N sits spread * z from the population's,
    the same z that moves A without it; E and the exponents move alike either way."""
    design = isoflop_design([1e19, 1e21], points_per_budget=4)
    at = {"N": 20.0, "D": 23.0}
    spreads = dict.fromkeys(EPOCH_CHINCHILLA, 0.1)
    kept = simulate_groups("chinchilla", EPOCH_CHINCHILLA, spreads, [design] * 3, seed=2)[1]
    moved = simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, spreads, [design] * 3, seed=2, terms_at=at
    )[1]
    p = EPOCH_CHINCHILLA
    for k, m in zip(kept, moved, strict=True):
        for name in ("E", "alpha", "beta"):
            assert m[name] == pytest.approx(k[name], rel=1e-12)
        for coef, exponent, x in (("A", "alpha", "N"), ("B", "beta", "D")):
            z_spread = np.log(k[coef] / p[coef])  # spread * z, as drawn for the coefficient
            term_shift = (np.log(m[coef]) - m[exponent] * at[x]) - (
                np.log(p[coef]) - p[exponent] * at[x]
            )
            assert term_shift == pytest.approx(z_spread, abs=1e-12)


def test_bad_arguments():
    design = grid_design([1e8], [1e10])
    with pytest.raises(ScalebayesError, match="missing"):
        simulate("chinchilla", {"E": 1.8}, design)
    with pytest.raises(ScalebayesError, match="budgets"):
        isoflop_design([])
