"""fit_batch: many fits of one law as one batch of chains (calibration studies, backtests)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import CI_FIT, LADDER_SEEDS, PLAIN, assert_healthy

import scalebayes as sb
from scalebayes import engine
from scalebayes.errors import ScalebayesError


@pytest.fixture(scope="module")
def batch_tables(ladder_runs):
    """Three of the session's ladders; the last one masked to its runs below 80 % of its compute.

    Whole tables and a subset in one batch: every table pads to the same size, so they share one
    compiled sampler (as a backtest's cuts do; a batch of three is also the shape of
    test_backtest's two cuts plus the whole table, so the suite compiles it once).
    """
    runs = ladder_runs[:3]
    last = runs[-1]
    masks = [np.ones(len(one), bool) for one in runs[:-1]]
    masks.append(last.C < np.quantile(last.C, 0.8))
    return runs, masks


@pytest.fixture(scope="module", params=["one at a time", "batched"])
def batch_fits(request, batch_tables):
    """The tables as one fit_batch call: one after another (a CPU's way), or as one batch of
    chains (a GPU's way, forced here so that a CPU checks the batched sampler too).

    The plain law: batching is the same for any model. One at a time reuses the one-table
    sampler the session's plain fits compiled; the batched sampler compiles here.
    """
    runs, masks = batch_tables
    before = engine.BATCH_ON_CPU
    engine.BATCH_ON_CPU = request.param == "batched"
    try:
        return sb.fit_batch(runs, "chinchilla", masks=masks, likelihood=PLAIN, seed=0, **CI_FIT)
    finally:
        engine.BATCH_ON_CPU = before


@pytest.fixture(scope="module")
def single_fits(batch_tables, ladder_fits):
    """The same tables fitted one by one: the session's ladder fits, and the masked table's fit."""
    runs, masks = batch_tables
    masked = sb.fit(
        runs[-1], "chinchilla", mask=masks[-1], likelihood=PLAIN, seed=LADDER_SEEDS[2], **CI_FIT
    )
    return [*ladder_fits[:2], masked]


def test_each_table_gets_its_own_posterior(batch_tables, batch_fits):
    runs, masks = batch_tables
    assert [f.settings.batch_index for f in batch_fits] == [0, 1, 2]
    assert batch_fits[0].settings.devices == 4  # batched, 12 chains on 4 devices: three each
    for table, mask, fit in zip(runs, masks, batch_fits, strict=True):
        assert fit.posterior.sizes == {"chain": CI_FIT["chains"], "draw": CI_FIT["draws"]}
        assert_healthy(fit.diagnostics)
        assert len(fit.runs) == mask.sum()
        np.testing.assert_array_equal(fit.runs.C, table.C[mask])
        np.testing.assert_array_equal(fit.runs.loss, table.loss[mask])
        assert fit.idata["log_likelihood"]["loss"].shape[-1] == mask.sum()
    # Different data, different posteriors: the chains did not share a table by mistake.
    medians = [float(f.posterior["alpha"].median()) for f in batch_fits]
    assert len(set(medians)) == len(medians)


def test_batched_fits_match_single_fits_of_the_same_tables(batch_fits, single_fits):
    """Each table's batched posterior is its own single fit's, to Monte Carlo error.

    Same posterior, different random streams: the medians differ as two independent samples'
    do. A median's Monte Carlo sd is about 1.25 posterior sd / sqrt(bulk ESS), so the
    difference's is 1.25 sqrt(1/ESS_a + 1/ESS_b) sd; the bound is 5 of those (a 1-in-10^6
    miss per check for a normal error). With ESS >= 200 (asserted) the bound is at most
    0.63 sd, and two tables swapped would be caught: every pair of these tables differs by
    at least 1.7 posterior sd in one median.
    """
    for batched, single in zip(batch_fits, single_fits, strict=True):
        assert len(batched.runs) == len(single.runs)
        ess_a, ess_b = batched.diagnostics.min_ess_bulk, single.diagnostics.min_ess_bulk
        assert min(ess_a, ess_b) >= 200
        bound = 5 * 1.25 * np.sqrt(1 / ess_a + 1 / ess_b)
        for name in ("alpha", "beta", "E"):
            sd = float(single.posterior[name].std())
            a = float(single.posterior[name].median())
            b = float(batched.posterior[name].median())
            assert abs(a - b) < bound * sd, (name, a, b, sd, bound)


def test_batch_round_trips_through_netcdf(batch_fits, tmp_path):
    path = sb.save_fit(batch_fits[2], tmp_path / "fit.nc")
    loaded = sb.load_fit(path)
    assert loaded.settings.batch_index == 2
    np.testing.assert_array_equal(loaded.posterior["beta"], batch_fits[2].posterior["beta"])


def test_batch_errors(ladder_runs):
    small = ladder_runs[0].subset(np.arange(len(ladder_runs[0])) < 10)
    with pytest.raises(ScalebayesError, match="different sizes"):
        sb.fit_batch([ladder_runs[0], small], "chinchilla")
    with pytest.raises(ScalebayesError, match="masks"):
        sb.fit_batch(ladder_runs[:2], "chinchilla", masks=[np.ones(len(small), bool)])
    with pytest.raises(ScalebayesError, match="at least one"):
        sb.fit_batch([], "chinchilla")
