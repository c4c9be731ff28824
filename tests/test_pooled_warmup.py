"""Warmup's mass-matrix statistics pooled over a table's chains (scalebayes.pooled_warmup)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from scalebayes.pooled_warmup import pool_at_window_ends, pool_states, window_ends
from scalebayes.results import Settings
from scalebayes.runtime import precision


class Adapt(NamedTuple):
    mm_state: tuple


class State(NamedTuple):
    i: object
    adapt_state: Adapt


def welford(samples: np.ndarray, dense: bool) -> tuple:
    """NumPyro's running (mean, m2, n) of one chain's window of draws, shape (n, d)."""
    import jax.numpy as jnp
    from numpyro.infer.hmc_util import welford_covariance

    init, update, _ = welford_covariance(diagonal=not dense)
    state = init(samples.shape[1])
    for x in samples:
        state = update(jnp.asarray(x), state)
    return state


@pytest.mark.parametrize("dense", [True, False])
def test_each_table_gets_the_statistics_of_all_its_chains_and_only_its_own(dense):
    """Two tables of two chains, windows of unequal length and far-apart means: every chain's
    pooled state is exactly (float64 round-off) that of its table's draws taken together."""
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    draws = [rng.normal(loc, scale, size=(n, 3)) for loc, scale, n in
             ((0.0, 1.0, 20), (5.0, 2.0, 30), (-40.0, 0.1, 25), (-41.0, 0.3, 25))]  # fmt: skip
    with precision("float64"):
        states = [welford(d, dense) for d in draws]
        stacked = tuple(jnp.stack(parts) for parts in zip(*states, strict=True))
        pooled = pool_states(State(jnp.zeros(4, int), Adapt(stacked)), 2, 4, None)
        mean, m2, n = (np.asarray(x) for x in pooled.adapt_state.mm_state)
    for chain, table in enumerate((0, 0, 1, 1)):
        together = np.concatenate(draws[2 * table : 2 * table + 2])
        centred = together - together.mean(0)
        expected = centred.T @ centred if dense else (centred**2).sum(0)
        assert n[chain] == len(together)
        np.testing.assert_allclose(mean[chain], together.mean(0), rtol=1e-12)
        np.testing.assert_allclose(m2[chain], expected, rtol=1e-10)


def test_pooling_happens_only_before_a_window_s_last_iteration_and_when_asked():
    import jax.numpy as jnp

    assert list(window_ends(1000)) == [99, 149, 249, 449, 949]  # NumPyro's for 1000 warmup
    assert list(window_ends(10)) == []  # one window: nothing to pool
    chains = (jnp.arange(2.0)[:, None] * jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.array([3, 3]))
    pool = pool_at_window_ends(Settings(chains=2, warmup=1000), 2, sharded=False)
    for i, pooled in ((98, False), (99, True), (100, False), (949, True)):
        out = pool(State(jnp.full(2, i), Adapt(chains))).adapt_state.mm_state
        assert bool(np.all(out[2] == 6)) is pooled  # counts summed over the two chains
    off = pool_at_window_ends(Settings(chains=2, pooled_warmup=False), 2, sharded=False)
    assert off(State(jnp.full(2, 99), Adapt(chains))).adapt_state.mm_state is chains


def test_only_the_law_s_and_the_gp_s_stages_pool_and_never_a_retry():
    """Pooled, approach 2 kept fewer effective draws and Marin's grouped fit failed its checks."""
    from scalebayes.allocation.profile import ProfileModel
    from scalebayes.discrepancy.base import Stage
    from scalebayes.discrepancy.gp import GP
    from scalebayes.engine import stage_settings
    from scalebayes.laws import load_law
    from scalebayes.likelihood import Likelihood
    from scalebayes.retry import careful, careful_settings

    settings = Settings()
    law = Stage("law", Likelihood(discrepancy="none"), pooled_warmup=True)
    gp = GP()._stage(load_law("chinchilla"), Likelihood(), "whitened")
    isoflop = ProfileModel().stage(5)
    assert (
        stage_settings(settings, law).pooled_warmup and stage_settings(settings, gp).pooled_warmup
    )
    assert not stage_settings(settings, isoflop).pooled_warmup
    assert not stage_settings(settings, Stage("groups", None)).pooled_warmup  # the default
    assert not stage_settings(settings, careful(law)).pooled_warmup
    assert not careful_settings(settings).pooled_warmup
    assert not stage_settings(Settings(pooled_warmup=False), law).pooled_warmup


def test_a_fit_records_it_and_an_older_file_reads_false(chinchilla_fit, tmp_path):
    """A file saved before pooling existed was sampled chain by chain: it says so."""
    import json

    import h5py

    import scalebayes as sb
    from scalebayes.saved import read_saved_fit

    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    assert chinchilla_fit.settings.pooled_warmup and read_saved_fit(path).settings.pooled_warmup
    with h5py.File(path, "r+") as file:
        stored = json.loads(file.attrs["scalebayes_settings"])
        del stored["pooled_warmup"]
        file.attrs["scalebayes_settings"] = json.dumps(stored)
    assert read_saved_fit(path).settings.pooled_warmup is False
    assert sb.load_fit(path).settings.pooled_warmup is False


def test_the_command_line_turns_it_off():
    import argparse

    from scalebayes.cli._common import add_fit_options, fit_options

    parser = argparse.ArgumentParser()
    add_fit_options(parser)
    assert fit_options(parser.parse_args([]))["pooled_warmup"] is True
    assert fit_options(parser.parse_args(["--no-pooled-warmup"]))["pooled_warmup"] is False
