"""A pooled term's population prior: the law's priors carried to the term at the runs' centre."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from scalebayes.formula import log_evaluate
from scalebayes.laws import Law
from scalebayes.model import find_centrings


def symbols(expr: Any) -> set[str]:
    """The names of the symbols (parameters and inputs) in ``expr``."""
    from scalebayes.formula import Op, Sym

    if isinstance(expr, Sym):
        return {expr.name}
    if isinstance(expr, Op):
        return set().union(*(symbols(a) for a in expr.args))
    return set()


# Prior draws that set a term's population prior: fixed, so one fit's model is one density.
TERM_PRIOR_DRAWS = 4000


def term_priors(law: Law, log_ref: Mapping[str, Any]) -> dict[str, jax.Array]:
    """Per centred coefficient with an exponent: (loc, sd) of the log of its term at ``log_ref``.

    The Normal that the law's priors imply for ``log(A / N_ref**alpha)`` (moment-matched over
    :data:`TERM_PRIOR_DRAWS` prior draws): a pooled term's population prior. The law's prior
    on the population ``A`` itself, with the data pinning the term at the centre, is a prior on
    the population alpha (``log A = term + alpha log N_ref``, log N_ref ~ 20): LogNormal(5, 1.5)
    on A pulled Marin's population alpha to 0.44, below all three groups' 0.65-0.67 (a single
    fit's data outweigh it; three groups' exponents do not; benchmarks/marin_groups.py).
    """
    return _term_prior_program(law)({n: jnp.asarray(log_ref[n]) for n in law.inputs})


@functools.lru_cache(maxsize=16)
def _term_prior_program(law: Law) -> Any:
    centrings = [c for c in find_centrings(law) if symbols(c.rest)]

    def program(log_ref: dict[str, jax.Array]) -> dict[str, jax.Array]:
        key = jax.random.PRNGKey(0)
        draws = {
            name: law.params[name]
            .prior.to_numpyro()
            .sample(jax.random.fold_in(key, i), (TERM_PRIOR_DRAWS,))
            for i, name in enumerate(law.param_names)
        }
        out = {}
        for c in centrings:
            u = c.sign * jnp.log(draws[c.param]) + log_evaluate(c.rest, draws, log_ref)
            out[c.param] = jnp.stack([jnp.mean(u), jnp.std(u)])
        return out

    return jax.jit(program)
