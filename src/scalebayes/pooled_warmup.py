"""Warmup's mass matrix estimated from all of a table's chains at once, not from each alone.

NumPyro adapts the (dense) mass matrix per chain at the end of each warmup window, from that
chain's draws in the window: 25, 50 and 100 draws in the first three windows of 1000, too few
for a covariance in tens of dimensions. Here, just before each window's last iteration, every
chain's running (Welford) statistics are replaced by those of all its table's chains together;
NumPyro finishes the window as usual, each chain adapting to the pooled estimate (4 chains: 4x
the draws). Nothing after warmup changes: the chains keep their own positions, step sizes and
randomness, so R-hat still compares independent chains.

Only the stages it was measured to help pool (``Stage.pooled_warmup``): the law's own model
and the GP's. On Epoch's runs (``benchmarks/pooled_warmup.py``, 4 chains x 1000 + 1000, seeds
0-1, medians) the default model (law + GP) sampled in 2.81 s against 3.89 s, min bulk ESS 4003
against 2464; the plain law in 1.28 s against 1.79 s, 13 leapfrog steps a draw against 21.5.
Approach 2's isoFLOP model took fewer steps (37 against 44) but kept
fewer effective draws (568 against 841) and failed the checks more often (1 of 2 seeds here;
5 of 27 fits on the nine public tables against 3 of 27); Marin's grouped fit failed them on
every seed tried (divergent transitions), also with only the within-chain spread pooled or
only the last window. Those stages, and every careful retry, adapt chain by chain. Over the
66 law fits of ``benchmarks/retry.py`` (public tables, plain and default, seeds 0-2) the
checks failed at first 15 times against 14 and after the retry 4 against 4, in 363 s against
380: faster on 16 of the 20 tables and models, slower with the data-constrained law on
datablations' runs (66 leapfrog steps a draw against 27; its min() kinks) and on three others
by a retry or a few per cent (``retry_pooled_warmup.json`` against ``retry.json``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scalebayes.results import Settings


def window_ends(num_warmup: int) -> np.ndarray:
    """The last iteration of each of NumPyro's slow (mass-matrix) windows for ``num_warmup``."""
    from numpyro.infer.hmc_util import build_adaptation_schedule

    schedule = build_adaptation_schedule(num_warmup)
    return np.array([window.end for window in schedule[1:-1]], dtype=int)


def pool_at_window_ends(settings: Settings, n_chains: int, sharded: bool) -> Callable[[Any], Any]:
    """The chains' states, pooled (:func:`pool_states`) when their next iteration ends a window.

    Unchanged otherwise, and always when ``settings.pooled_warmup`` is off. ``n_chains``: the
    program's chains, ``settings.chains`` per table; ``sharded``: split over devices along the
    axis "chain".
    """
    import jax
    import jax.numpy as jnp

    if not settings.pooled_warmup:
        return lambda states: states
    ends = jnp.asarray(window_ends(settings.warmup))
    pool = functools.partial(pool_states, chains_per_table=settings.chains, n_chains=n_chains,
                             axis_name="chain" if sharded else None)  # fmt: skip

    def at_window_ends(states: Any) -> Any:
        # Every chain is at the same iteration; NumPyro adapts at a window's last one.
        return jax.lax.cond(jnp.any(states.i[0] == ends), pool, lambda same: same, states)

    return at_window_ends


def pool_states(states: Any, chains_per_table: int, n_chains: int, axis_name: str | None) -> Any:
    """``states`` (leading axis: this device's chains) with pooled mass-matrix statistics.

    Of the program's ``n_chains`` chains (counted over every device, in order), chains
    ``k * chains_per_table`` to ``(k + 1) * chains_per_table - 1`` are table ``k``'s;
    ``axis_name`` names the devices' axis when the chains are split over several (the sums are
    then taken over all of them), None on one device.
    """
    import jax
    import jax.numpy as jnp

    adapt = states.adapt_state
    mean, m2, n = adapt.mm_state
    local = mean.shape[0]
    first = 0 if axis_name is None else jax.lax.axis_index(axis_name) * local
    table = (first + jnp.arange(local)) // chains_per_table
    # One-hot (chain, table): a table's sums are one product, then a sum over devices.
    onehot = jax.nn.one_hot(table, n_chains // chains_per_table, dtype=mean.dtype)

    def over_tables(x: Any) -> Any:  # per-chain values -> each chain's table total
        summed = jnp.tensordot(onehot, x, axes=(0, 0))
        if axis_name is not None:
            summed = jax.lax.psum(summed, axis_name)
        return jnp.tensordot(onehot, summed, axes=(1, 0))

    weight = n.astype(mean.dtype)
    total = over_tables(weight)
    pooled_mean = over_tables(weight[:, None] * mean) / jnp.maximum(total, 1.0)[:, None]
    # Chan et al.'s combination about the pooled mean: each chain's sum of squares plus its
    # count times its mean's offset (outer product for a dense matrix), so no large terms cancel.
    offset = mean - pooled_mean
    if m2.ndim == 3:
        spread = weight[:, None, None] * offset[:, :, None] * offset[:, None, :]
    else:
        spread = weight[:, None] * offset**2
    pooled = (pooled_mean, over_tables(m2 + spread), total.astype(n.dtype))
    return states._replace(adapt_state=adapt._replace(mm_state=pooled))
