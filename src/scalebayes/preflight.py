"""Checks before sampling: runs that can identify the law, and a law that is finite at them.

A fit that cannot succeed is refused here, in one line, before any compile or draw:

- fewer runs than free parameters: the law's own (``Delta`` priors pinned) plus the noise's
  (``sigma``, and ``nu`` when estimated). A discrepancy's parameters are not counted: their
  priors are centred on "no discrepancy" and shrink them to it where the runs are silent, so
  they need no runs of their own; the law's parameters do.
- fewer distinct input points (rows of the law's inputs, e.g. distinct (N, D)) than the law's
  free parameters: at m distinct points the law's means span at most m numbers, so with fewer
  than its k parameters a (k - m)-dimensional family of laws fits equally well.
- terms that are constant over the runs (every input in them takes one value) hold more than
  one free parameter among them: they add up to one number, which cannot tell them apart
  (all runs at one D: E and B / D**beta of Chinchilla's law).
- a law whose log mean is not finite at the runs (overflow, NaN) for most prior draws, or with
  a term that underflows to zero at every run for most of them (its parameters then have no
  effect): checked on :data:`PRIOR_DRAWS` draws of the law's priors, in the fit's precision.

One more finding is a warning, not a refusal (:func:`one_ratio_note`): runs that all keep one
tokens-per-parameter ratio identify the law only through its curvature along the ladder, so how
it splits compute is barely determined (Kricheli et al. 2026).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scalebayes import formula as fm
from scalebayes.data import Runs
from scalebayes.errors import LawEvaluationError, UnidentifiableError
from scalebayes.laws import Law
from scalebayes.likelihood import Likelihood

PRIOR_DRAWS = 256
# A law is refused when more than this share of prior draws fail at the runs: a few failing
# draws in a prior's far tail are the sampler's business (it rejects them), most are the law's.
MAX_FAILING_SHARE = 0.5
# Runs whose tokens per parameter D/N span less than this factor are "one ratio": along
# D = r N a law of N and D is a function of N alone, and its N and D terms are told apart only
# by their exponents. On a simulated ladder at exactly 20 tokens per parameter (Epoch's law, 10
# runs, 1 % noise) the default fit read R-hat 1.033 and 960 draws at the maximum tree depth
# after its retry, and N* at 1e22 FLOPs spanned 1e-4 to 3e5 tokens per parameter.
ONE_RATIO_FACTOR = 1.5


def check_identifiable(law: Law, likelihood: Likelihood, runs: Runs, *, where: str = "") -> None:
    """Refuse runs that cannot identify ``law``'s parameters (see the module's rules).

    Parameters
    ----------
    law, likelihood
        What will be fitted (the likelihood's noise parameters count).
    runs : Runs
        The runs the fit sees.
    where : str
        Prefix naming the runs in the message, e.g. ``"runs.csv"`` (default ``runs.source``).

    Raises
    ------
    UnidentifiableError
        One line: how many runs or distinct inputs there are and how many the law needs.
    """
    where = where or runs.source
    free = law.free_param_names
    noise = likelihood.param_names
    needed = len(free) + len(noise)
    if len(runs) < needed:
        raise UnidentifiableError(
            f"{where}: {len(runs)} run{'s' if len(runs) != 1 else ''} cannot fit law "
            f"{law.name!r}: it has {len(free)} free parameters ({', '.join(free)}) plus the "
            f"noise's ({', '.join(noise)}); give at least {needed} runs"
        )
    inputs = [name for name in law.inputs if name in runs.table]
    names = f"({', '.join(inputs)})" if len(inputs) > 1 else inputs[0]
    distinct = len(runs.table[inputs].drop_duplicates())
    if distinct < len(free):
        raise UnidentifiableError(
            f"{where}: the {len(runs)} runs have only {distinct} distinct {names}; law "
            f"{law.name!r} has {len(free)} free parameters ({', '.join(free)}) and needs runs "
            f"at {len(free)} or more distinct {names}"
        )
    fixed = [name for name in inputs if runs.table[name].nunique() == 1]
    constant = [
        term
        for term in fm.additive_terms(law.expr)
        if not (fm.symbols(term) & set(inputs)) - set(fixed)
    ]
    confounded = [name for name in free if any(name in fm.symbols(t) for t in constant)]
    if fixed and len(confounded) > 1:
        same = ", ".join(f"{name} = {runs.table[name].iloc[0]:.3g}" for name in fixed)
        raise UnidentifiableError(
            f"{where}: all {len(runs)} runs have {same}, so the terms "
            f"{', '.join(fm.to_string(t) for t in constant)} of law {law.name!r} add up to one "
            f"constant and {', '.join(confounded)} cannot be told apart; add runs at other "
            f"{', '.join(fixed)}"
        )


def one_ratio_note(law: Law, runs: Runs, *, where: str = "") -> str | None:
    """A warning's text when every run keeps nearly one tokens-per-parameter ratio, else None.

    Only for laws of both N and D (the ratio is what separates their terms); "nearly one" is a
    spread of D/N under :data:`ONE_RATIO_FACTOR`.
    """
    if not {"N", "D"} <= set(law.inputs) or len(runs) < 2:
        return None
    ratio = runs.table["D"].to_numpy() / runs.table["N"].to_numpy()
    low, high = float(ratio.min()), float(ratio.max())
    if high / low >= ONE_RATIO_FACTOR:
        return None
    span = f"{low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else f"{low:.3g}-{high:.3g}"
    return (
        f"{where or runs.source}: all {len(runs)} runs keep about one ratio of tokens to "
        f"parameters (D/N {span}): along it the N and D terms of law {law.name!r} can be told "
        "apart only by their exponents, so the fit is ill-conditioned and how it splits compute "
        "(N*, D*, tokens per parameter) is barely determined; runs at other ratios pin it "
        "(`scalebayes next FIT --objective nstar` says which)"
    )


def check_finite(law: Law, runs: Runs, *, seed: int = 0, precision: str = "float64") -> None:
    """Refuse a law that is not finite at ``runs`` for most draws of its priors.

    Evaluates the law's log mean, and each term of its top-level sum, at every run for
    :data:`PRIOR_DRAWS` prior draws, in ``precision`` (the fit's). Refused when more than
    :data:`MAX_FAILING_SHARE` of the draws give a non-finite log mean at some run, or a term
    that is exactly zero at every run.

    Raises
    ------
    LawEvaluationError
        One line naming the law file, the term (or the parameter whose prior is not finite)
        and the share of draws that failed.
    """
    # In NumPy, in the fit's precision: JAX would compile each operation (~1 s on a cold cache).
    dtype = np.float32 if precision == "float32" else np.float64
    rng = np.random.default_rng(seed)
    draws = {
        name: param.prior.sample(rng, PRIOR_DRAWS).astype(dtype)[:, None]
        for name, param in law.params.items()
    }
    log_inputs = {
        name: np.asarray(values, dtype=dtype)[None, :]
        for name, values in runs.log_inputs().items()
        if name in law.inputs
    }
    where = f"law {law.name!r}" + (f" ({law.source})" if law.source != "<python>" else "")
    for name, values in draws.items():
        bad = _share(~np.isfinite(np.asarray(values)))
        if bad > MAX_FAILING_SHARE:
            raise LawEvaluationError(
                f"{where}: the prior of {name} ({law.params[name].prior}) gives non-finite "
                f"values in {bad:.0%} of {PRIOR_DRAWS} draws"
            )
    with np.errstate(all="ignore"):
        terms = {
            t: _log_terms(t, draws, log_inputs, len(runs)) for t in fm.additive_terms(law.expr)
        }
        total = np.asarray(law.log_mean(draws, log_inputs, xp=np))
    failing = _share(~np.isfinite(total).all(axis=1))
    if failing > MAX_FAILING_SHARE:
        shares = {t: _share(_overflow(v).any(axis=1)) for t, v in terms.items()}
        culprit = max(shares, key=shares.__getitem__)
        term = f"the term {fm.to_string(culprit)}" if shares[culprit] > 0 else "the formula"
        raise LawEvaluationError(
            f"{where}: the law is not finite (overflow or NaN) at the runs for {failing:.0%} "
            f"of {PRIOR_DRAWS} prior draws; look at {term} (inputs span {_spans(runs, law)})"
        )
    if len(terms) > 1:
        for term, values in terms.items():
            vanished = _share(np.isneginf(values).all(axis=1))
            if vanished > MAX_FAILING_SHARE:
                params = sorted(fm.symbols(term) & set(law.free_param_names))
                raise LawEvaluationError(
                    f"{where}: the term {fm.to_string(term)} is 0 (underflow) at every run for "
                    f"{vanished:.0%} of {PRIOR_DRAWS} prior draws, so {', '.join(params) or 'it'} "
                    f"cannot be fitted; rescale it (inputs span {_spans(runs, law)})"
                )


def _log_terms(
    term: fm.Expr, draws: Mapping[str, Any], log_inputs: Mapping[str, Any], n_runs: int
) -> np.ndarray:
    """Log of one term per prior draw and run, shape (draws, runs)."""
    names = fm.symbols(term)
    params = {k: v for k, v in draws.items() if k in names}
    inputs = {k: v for k, v in log_inputs.items() if k in names}
    values = fm.log_evaluate(term, params, inputs, xp=np)
    return np.broadcast_to(np.asarray(values), (PRIOR_DRAWS, n_runs))


def _overflow(values: np.ndarray) -> np.ndarray:
    return np.isnan(values) | np.isposinf(values)


def _share(flags: np.ndarray) -> float:
    return float(np.mean(flags)) if flags.size else 0.0


def _spans(runs: Runs, law: Law) -> str:
    table = runs.table
    return ", ".join(f"{n} {table[n].min():.3g}-{table[n].max():.3g}" for n in law.inputs)
