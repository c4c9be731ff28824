"""The simulator draws from the law it is given."""

from __future__ import annotations

import numpy as np
import pytest

from scalebayes.errors import ScalebayesError
from scalebayes.simulation import EPOCH_CHINCHILLA, grid_design, isoflop_design, simulate


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


def test_bad_arguments():
    design = grid_design([1e8], [1e10])
    with pytest.raises(ScalebayesError, match="missing"):
        simulate("chinchilla", {"E": 1.8}, design)
    with pytest.raises(ScalebayesError, match="budgets"):
        isoflop_design([])
