"""fit_batch: many fits of one law as one batch of chains (calibration studies, backtests)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import CI_FIT, assert_healthy

import scalebayes as sb
from scalebayes.errors import ScalebayesError

SEEDS = (21, 22, 23, 24)


@pytest.fixture(scope="module")
def batch_runs(truth):
    from scalebayes.simulation import CHINCHILLA_BUDGETS, isoflop_design, simulate

    design = isoflop_design(CHINCHILLA_BUDGETS)
    return [simulate("chinchilla", truth, design, noise=0.01, seed=seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def batch_fits(batch_runs):
    return sb.fit_batch(batch_runs, "chinchilla", seed=0, **CI_FIT)


def test_each_table_gets_its_own_posterior(batch_runs, batch_fits, truth):
    assert [f.settings.batch_index for f in batch_fits] == [0, 1, 2, 3]
    inside = 0
    for runs, fit in zip(batch_runs, batch_fits, strict=True):
        assert fit.runs is runs
        assert fit.posterior.sizes == {"chain": CI_FIT["chains"], "draw": CI_FIT["draws"]}
        assert_healthy(fit.diagnostics)
        table = fit.summary()
        inside += sum(
            table.loc[k, "lower"] <= truth[k] <= table.loc[k, "upper"]
            for k in ("E", "A", "B", "alpha", "beta")
        )
    # 20 checks of calibrated 90 % intervals: P(count <= 14) = 1.1 % under Binomial(20, 0.9).
    assert inside >= 15
    # Different data, different posteriors: the chains did not share a table by mistake.
    medians = [float(f.posterior["alpha"].median()) for f in batch_fits]
    assert len(set(medians)) == len(medians)


def test_batched_fit_matches_a_single_fit_of_the_same_table(batch_runs, batch_fits):
    # Same posterior, different random streams: medians agree within a few Monte Carlo se
    # (posterior sd of alpha ~0.01, ESS ~1000 -> se ~3e-4; 2e-3 is ~5 se of the difference).
    single = sb.fit(batch_runs[0], "chinchilla", seed=3, **CI_FIT)
    for name in ("alpha", "beta", "E"):
        a = float(single.posterior[name].median())
        b = float(batch_fits[0].posterior[name].median())
        assert a == pytest.approx(b, abs=2e-3 if name != "E" else 1e-2)


def test_masks_fit_subsets_of_one_table(batch_runs, batch_fits):
    runs = batch_runs[0]
    masks = [runs.C < cut for cut in np.quantile(runs.C, [0.6, 0.7, 0.8, 0.9])]
    fits = sb.fit_batch([runs] * 4, "chinchilla", masks=masks, seed=0, **CI_FIT)
    assert fits[0].settings.wall_time["compile"] == 0.0  # same batch shape as batch_fits
    for fit, mask in zip(fits, masks, strict=True):
        assert len(fit.runs) == mask.sum()
        assert fit.idata["log_likelihood"]["loss"].shape[-1] == mask.sum()
        assert_healthy(fit.diagnostics)


def test_batch_round_trips_through_netcdf(batch_fits, tmp_path):
    path = sb.save_fit(batch_fits[2], tmp_path / "fit.nc")
    loaded = sb.load_fit(path)
    assert loaded.settings.batch_index == 2
    np.testing.assert_array_equal(loaded.posterior["beta"], batch_fits[2].posterior["beta"])


def test_batch_errors(batch_runs):
    small = batch_runs[0].subset(np.arange(len(batch_runs[0])) < 10)
    with pytest.raises(ScalebayesError, match="different sizes"):
        sb.fit_batch([batch_runs[0], small], "chinchilla")
    with pytest.raises(ScalebayesError, match="masks"):
        sb.fit_batch(batch_runs[:2], "chinchilla", masks=[np.ones(len(small), bool)])
    with pytest.raises(ScalebayesError, match="at least one"):
        sb.fit_batch([], "chinchilla")
