"""A grouped fit's pointwise log-likelihood: each run's density under its group's values."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from scalebayes.laws import Law
from scalebayes.likelihood import Likelihood
from scalebayes.model import ModelData


@functools.partial(jax.jit, static_argnums=(0, 1))
def pointwise_log_lik(
    law: Law,
    likelihood: Likelihood,
    group_values: dict[str, Any],
    shared: dict[str, Any],
    data: ModelData,
) -> jax.Array:
    """Each run's log density (loss scale) under its group's values (arrays (..., groups)).

    ``shared``: the discrepancy's parameters, arrays (...), the same for every group (when
    each group has its own, pooled or separate, they are in ``group_values`` instead).
    Compiled once per law, noise and shapes (op by op it compiled each primitive: 4.4 s for
    three ladders' 1000 draws, against 0.3 s).
    """
    index = data.extra["group"]
    params = {n: jnp.asarray(v)[..., index] for n, v in group_values.items()}
    mu = law.log_mean({n: params[n] for n in law.param_names}, data.log_inputs)
    names = likelihood.discrepancy.param_names(law, ())
    per_run = {n: params[n] for n in names if n in params}  # each group's own
    per_run.update({n: jnp.asarray(v)[..., None] for n, v in shared.items()})
    mu = mu + likelihood.discrepancy.term(law, per_run, data.log_inputs, data.log_ref)
    return likelihood.log_density(mu, params, data.log_loss)
