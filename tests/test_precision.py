"""Precision is a recorded setting: float32 (e.g. on a GPU) agrees with float64 on real data."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from tests.conftest import CI_FIT, assert_healthy

import scalebayes as sb


@pytest.fixture(scope="module")
def epoch_fits(chinchilla_csv):
    # Every third of Epoch's runs, 81 in all: the whole range of their compute, and the shape
    # of the suite's other plain fits, so the float64 fit reuses their compiled sampler.
    every = sb.load_runs(chinchilla_csv)
    runs = every.subset(np.isin(np.arange(len(every)), np.arange(0, len(every), 3)[:81]))
    assert len(runs) == 81
    plain = sb.Likelihood(discrepancy="none")
    return {
        precision: sb.fit(runs, "chinchilla", likelihood=plain, precision=precision, **CI_FIT)
        for precision in ("float64", "float32")
    }


def test_float32_agrees_with_float64_on_epoch_runs(epoch_fits):
    """Same posterior to Monte Carlo error.

    The two fits' draws differ from the first leapfrog step on, so their medians differ as two
    independent samples do: with bulk ESS >= 500 each, the median's Monte Carlo sd is below
    0.06 posterior sd, their difference's below 0.09; 0.35 sd is ~4 of those.
    """
    f64, f32 = epoch_fits["float64"], epoch_fits["float32"]
    assert f32.settings.precision == "float32" and f64.settings.precision == "float64"
    assert f32.posterior["alpha"].dtype == np.float32
    assert f64.posterior["alpha"].dtype == np.float64
    for fit in (f64, f32):
        assert_healthy(fit.diagnostics)
    for name in ("E", "A", "B", "alpha", "beta", "sigma"):
        sd = float(f64.posterior[name].std())
        gap = abs(float(f64.posterior[name].median()) - float(f32.posterior[name].median()))
        assert gap < 0.35 * sd, (name, gap, sd)


def test_decisions_in_float32_agree_and_converge(epoch_fits):
    """optimal() on a float32 fit computes in float32 and converges; N* agrees to 2 %.

    The interval of N* at 1e24 FLOPs is ~20 % wide on Epoch's runs, so 2 % is well inside the
    Monte Carlo error of two independent samples' medians.
    """
    budgets = [5.76e23, 1e24]
    n64 = sb.optimal(epoch_fits["float64"], budgets).N.median(("chain", "draw"))
    f32 = sb.optimal(epoch_fits["float32"], budgets)
    assert f32.n_not_converged == 0
    np.testing.assert_allclose(f32.N.median(("chain", "draw")), n64, rtol=0.02)


def test_precision_is_applied_as_a_context_not_globally(epoch_fits):
    """A fit in float32 leaves the process's JAX setting as it found it."""
    before = jax.config.jax_enable_x64
    sb.predict(epoch_fits["float32"], N=7e10, D=1.4e12)
    assert jax.config.jax_enable_x64 == before


def test_unknown_precision_is_refused():
    with pytest.raises(sb.ScalebayesError, match="precision"):
        sb.Settings(precision="float16")
