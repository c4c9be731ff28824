"""The statistical model: a law's mean in log space, its discrepancy, a robust likelihood on log loss.

Two layers, as in STYLE.md: pure functions (``Law.log_mean``, :func:`pointwise_log_lik`)
that predict/allocate reuse without NumPyro, and a thin NumPyro model (:func:`numpyro_model`)
with the ``obs=None`` idiom.

Geometry. For a term ``A / N**alpha`` the data pin down the term's value near the
middle of the runs, not ``A`` itself: ``log A`` moves with ``alpha * log N``, a ridge
that made plain NUTS hit tree depth 10 on the Chinchilla data. So every positive
coefficient that multiplies (or divides) one additive term, and appears nowhere else,
is sampled as the log of that term at a reference point (the mean of the log inputs),
and mapped back exactly: the user's prior on the coefficient is added as a factor with
its log-Jacobian, so the posterior is the same distribution, only easier to sample.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.typing import ArrayLike
from numpyro.distributions import constraints

from scalebayes.data import Runs
from scalebayes.discrepancy.base import Sites
from scalebayes.formula import Expr, Num, Op, Sym, additive_terms, log_evaluate
from scalebayes.laws import Law
from scalebayes.likelihood import Likelihood
from scalebayes.priors import Prior


@dataclass(frozen=True)
class Centring:
    """How one positive coefficient is sampled: as the log of its term at the reference point.

    ``term = coefficient**sign * rest``, so ``log coefficient = sign * (u - log rest(x_ref))``
    where ``u`` is the sampled site.
    """

    param: str
    sign: int
    rest: Expr

    @property
    def site(self) -> str:
        """Name of the sampled site (internal; not part of the posterior users see)."""
        return f"_log_{self.param}_term"


class ModelData(NamedTuple):
    """Arrays the model conditions on; a pytree so one compiled sampler serves any data of this shape.

    ``log_inputs`` maps input name to log values, shape (n,); ``log_ref`` maps input name to the
    reference point (scalar) used by centring, plus what the discrepancy takes from the fitted
    runs (keys starting with ``_``); ``weight`` multiplies each run's log-likelihood (0 leaves a
    run out, keeping the shape: see ``fit(mask=...)``); ``extra`` holds the discrepancy's arrays
    for this table (:meth:`~scalebayes.discrepancy.base.Discrepancy.table_arrays`).
    """

    log_inputs: Mapping[str, jax.Array]
    log_loss: jax.Array | None
    weight: jax.Array
    log_ref: Mapping[str, jax.Array]
    extra: Mapping[str, jax.Array] = {}


def model_data(
    law: Law, runs: Runs, likelihood: Likelihood, mask: np.ndarray | None = None
) -> ModelData:
    """The arrays the model conditions on, as JAX arrays in the current precision.

    Runs outside the boolean ``mask`` (shape (n,)) stay in the arrays with weight 0, so fits of
    different subsets of one table have one shape and share one compiled sampler; the reference
    is computed from the runs that count.
    """
    likelihood = likelihood.for_law(law)
    weight = runs.weight if runs.weight is not None else np.ones(len(runs))
    if mask is not None:
        weight = np.where(mask, weight, 0.0)
    weight = np.asarray(weight, dtype=float)
    log_inputs = {
        name: np.asarray(values, dtype=float)
        for name, values in runs.log_inputs().items()
        if name in law.inputs
    }
    log_loss = np.log(np.asarray(runs.loss, dtype=float))
    log_ref = reference_point(law, likelihood, log_inputs, log_loss, weight)
    extra = likelihood.discrepancy.table_arrays(law, log_inputs, log_ref)
    # Computed in NumPy (JAX would compile each operation), kept in the current precision.
    return ModelData(
        {name: jnp.asarray(values) for name, values in log_inputs.items()},
        jnp.asarray(log_loss),
        jnp.asarray(weight),
        log_ref,
        extra,
    )


class Tables:
    """Tables' arrays for a fit: for the law alone now, with the discrepancy's parts on demand.

    ``plain[i]`` is :func:`model_data` of table ``i`` under the likelihood without its
    discrepancy; :meth:`full` under the whole likelihood, computed once, when first asked
    (see :class:`~scalebayes.discrepancy.base.TableSet`).
    """

    def __init__(
        self,
        law: Law,
        runs: Sequence[Runs],
        likelihood: Likelihood,
        masks: Sequence[np.ndarray] | None = None,
    ):
        self._law, self._runs, self._likelihood = law, list(runs), likelihood
        self._masks = list(masks) if masks is not None else [None] * len(self._runs)
        plain = likelihood.without_discrepancy()
        self.plain = [
            model_data(law, r, plain, m) for r, m in zip(self._runs, self._masks, strict=True)
        ]
        self._full: list[ModelData | None] = [None] * len(self._runs)

    def full(self) -> list[ModelData]:
        """Each table with the discrepancy's reference and arrays."""
        return [self.full_one(i) for i in range(len(self._runs))]

    def full_one(self, i: int) -> ModelData:
        """Table ``i`` with the discrepancy's reference and arrays (computed once)."""
        if self._full[i] is None:
            self._full[i] = model_data(self._law, self._runs[i], self._likelihood, self._masks[i])
        return self._full[i]  # type: ignore[return-value]

    def one(self, i: int) -> OneTable:
        """Table ``i`` alone, as a table set of one (its arrays shared with this set)."""
        return OneTable(self, i)


class OneTable:
    """One table of a :class:`Tables`, itself a table set (``plain``, ``full()``) of one."""

    def __init__(self, tables: Tables, i: int):
        self._tables, self._i = tables, i
        self.plain = [tables.plain[i]]

    def full(self) -> list[ModelData]:
        """The table with the discrepancy's reference and arrays (computed once)."""
        return [self._tables.full_one(self._i)]


def find_centrings(law: Law) -> tuple[Centring, ...]:
    """Find the coefficients that can be sampled as 'log term at the reference point'.

    A parameter qualifies when its prior is on the positive reals, it appears exactly once
    in the formula, and that occurrence is a factor (``*`` or ``/``) of one additive term.
    """
    counts = _symbol_counts(law.expr)
    found = []
    for term in additive_terms(law.expr):
        factors = _factors(term, 1)
        for index, (factor, sign) in enumerate(factors):
            if not (isinstance(factor, Sym) and factor.name in law.params):
                continue
            if counts.get(factor.name) != 1 or not _positive_support(law.params[factor.name].prior):
                continue
            rest = _product([f for i, f in enumerate(factors) if i != index], sign)
            found.append(Centring(factor.name, sign, rest))
            break
    return tuple(found)


def numpyro_model(
    law: Law,
    likelihood: Likelihood,
    centrings: tuple[Centring, ...],
    data: ModelData,
) -> None:
    """NumPyro model: priors on the law's parameters, its discrepancy, Student-t/Normal on log loss.

    With ``data.log_loss=None`` it draws from the prior predictive (the ``obs=None`` idiom).
    A discrepancy sampled in stages (the GP) samples its own module; this is then its law's.
    """
    centred = {c.param: c for c in centrings}
    values: dict[str, jax.Array] = {}
    for name, param in law.params.items():
        if param.prior.family == "Delta":  # pinned: a constant, not a sampled site
            values[name] = numpyro.deterministic(name, jnp.asarray(param.prior.kwargs["v"]))
        elif name not in centred:
            values[name] = numpyro.sample(name, param.prior.to_numpyro())
    for c in centrings:
        u = numpyro.sample(c.site, dist.ImproperUniform(constraints.real, (), ()))
        log_rest = log_evaluate(c.rest, values, data.log_ref)
        log_value = c.sign * (u - log_rest)
        value = numpyro.deterministic(c.param, jnp.exp(log_value))
        # The user's prior on the coefficient, plus log|d coefficient / d log coefficient|;
        # the map u -> log coefficient is a shift, so it adds nothing.
        prior = law.params[c.param].prior.to_numpyro()
        numpyro.factor(f"_prior_{c.param}", prior.log_prob(value) + log_value)
        values[c.param] = value
    sigma = numpyro.sample("sigma", Prior.parse(likelihood.sigma_prior).to_numpyro())
    values["sigma"] = sigma
    nu = (
        numpyro.sample("nu", Prior.parse(likelihood.nu_prior).to_numpyro())
        if likelihood.estimates_nu
        else likelihood.df
    )
    likelihood.discrepancy.sample(law, values)
    mu = law.log_mean(values, data.log_inputs) + likelihood.discrepancy.table_term(
        law, values, data
    )
    likelihood.observe(mu, sigma, nu, data)


def log_mean(
    law: Law,
    likelihood: Likelihood,
    params: Mapping[str, jax.Array],
    log_inputs: Mapping[str, jax.Array],
    log_ref: Mapping[str, jax.Array],
) -> jax.Array:
    """Log of the model's mean loss: the law's log mean plus the discrepancy's term.

    ``log_ref`` (scalar per input) is the centre of the fitted runs' log inputs, plus what the
    discrepancy took from them (:func:`reference_point`). Arrays broadcast as in ``Law.log_mean``.
    """
    return likelihood.log_mean(law, params, log_inputs, log_ref)


def reference_point(
    law: Law,
    likelihood: Likelihood,
    log_inputs: Mapping[str, ArrayLike],
    log_loss: ArrayLike,
    weight: ArrayLike | None = None,
) -> dict[str, jax.Array]:
    """Where a fit is anchored: the fitted runs' mean log inputs and the discrepancy's reference.

    The mean is over the runs with weight > 0 (arrays of shape (n,)); the discrepancy takes
    what it needs from the same runs (the GP: spans, the plain law's mode, its projection).
    """
    # The centre in NumPy, then in the current precision: JAX would compile each operation.
    arrays = {name: np.asarray(log_inputs[name], dtype=float) for name in law.inputs}
    n = next(iter(arrays.values())).shape[-1]
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    counted = w > 0
    centre = {name: jnp.asarray(np.mean(values[counted])) for name, values in arrays.items()}
    arrays = {name: jnp.asarray(values) for name, values in arrays.items()}
    data = ModelData(arrays, jnp.asarray(log_loss), jnp.asarray(w), centre)

    def mode() -> dict[str, jax.Array]:
        return plain_mode(law, likelihood, data)

    extra = likelihood.discrepancy.reference(law, arrays, centre, counted, mode)
    return {**centre, **extra}


def plain_mode(law: Law, likelihood: Likelihood, data: ModelData) -> dict[str, jax.Array]:
    """The posterior mode of the law with no discrepancy: its parameters (scalars), by name.

    L-BFGS (SciPy) on the unconstrained sites from :func:`start_point`, with JAX gradients;
    deterministic, so a masked table and its subset give the same mode to the tolerance.
    Should the search end at a non-finite point, the starting point. (JAX's own BFGS stalled in
    its line search after 3 steps on Epoch's runs; SciPy's L-BFGS-B converged in 65.)
    """
    from scipy.optimize import minimize

    start, energy = _mode_programs(law, likelihood.without_discrepancy())
    flat = np.asarray(start(data), dtype=float)

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        (value, _), grad = energy(jnp.asarray(x), data)
        return float(value), np.asarray(grad, dtype=float)

    found = minimize(
        value_and_grad,
        flat,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-8},
    )
    x = found.x if np.all(np.isfinite(found.x)) else flat
    (_, values), _ = energy(jnp.asarray(x), data)
    return values


@functools.lru_cache(maxsize=16)
def _mode_programs(law: Law, likelihood: Likelihood) -> tuple[Any, Any]:
    """The plain model's start point and its energy (with the law's parameters, and gradient).

    Two compiled programs: run eagerly, the start point's prior medians and the constraining
    transforms compiled op by op, ~1 s of small compiles on a cold cache.
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import constrain_fn, potential_energy

    centrings = find_centrings(law)
    model = functools.partial(numpyro_model, law, likelihood, centrings)
    sites = sampled_sites(law, likelihood, centrings)

    def start(data: ModelData) -> jax.Array:
        return ravel_pytree(start_point(sites, data, len(centrings)))[0]

    def energy(x: jax.Array, data: ModelData) -> tuple[jax.Array, dict[str, jax.Array]]:
        # The layout is built while tracing: built eagerly it compiled three small programs.
        _, unravel = ravel_pytree(
            {site: jnp.zeros(shape, x.dtype) for site, (_, shape) in sites.items()}
        )
        z = unravel(x)
        values = constrain_fn(model, (data,), {}, z, return_deterministic=True)
        law_values = {name: values[name] for name in law.param_names}
        return potential_energy(model, (data,), {}, z), law_values

    return jax.jit(start), jax.jit(jax.value_and_grad(energy, has_aux=True))


def sampled_sites(law: Law, likelihood: Likelihood, centrings: tuple[Centring, ...]) -> Sites:
    """Each site NUTS samples in :func:`numpyro_model`: its prior (None for a centred term), its shape."""
    centred = {c.param for c in centrings}
    sites: Sites = {}
    for name in law.free_param_names:
        if name not in centred:
            sites[name] = (law.params[name].prior, ())
    for c in centrings:
        sites[c.site] = (None, ())
    for name in likelihood.param_names:
        sites[name] = (Prior.parse(getattr(likelihood, f"{name}_prior")), ())
    sites.update(likelihood.discrepancy.sites(law))
    return sites


def start_point(
    sites: Mapping[str, tuple[Prior | None, tuple[int, ...]]], data: ModelData, n_terms: int = 1
) -> dict[str, jax.Array]:
    """Data-informed starting point of ``sites`` (:func:`sampled_sites`, a stage's), unconstrained.

    Prior medians, except that each of the ``n_terms`` centred terms (prior None) starts at an
    equal share of the fitted runs' loss and noise scales at 5 %.
    """
    from numpyro.distributions.transforms import biject_to

    log_loss_ref = jnp.sum(data.weight * data.log_loss) / jnp.sum(data.weight)
    start = {}
    for site, (prior, shape) in sites.items():
        if prior is None:
            value = log_loss_ref - jnp.log(max(n_terms, 1))
        elif site == "sigma":
            value = jnp.log(0.05)
        else:
            # The exact median, a constant: sampling the prior here cost a second of compile.
            value = biject_to(prior.to_numpyro().support).inv(jnp.asarray(prior.median()))
        start[site] = jnp.broadcast_to(value, shape)
    return start


def pointwise_log_lik(
    law: Law,
    likelihood: Likelihood,
    params: Mapping[str, jax.Array],
    log_inputs: Mapping[str, jax.Array],
    log_loss: jax.Array,
    log_ref: Mapping[str, jax.Array],
) -> jax.Array:
    """Log density of each observed loss on the loss scale (not log loss), one value per run.

    ``log p(loss) = log p(log loss) - log loss``: the Jacobian makes the values comparable with
    any model that describes loss directly. Parameters broadcast, e.g. shape (draws, 1) against
    runs of shape (n,) gives (draws, n). ``log_ref`` as in :func:`log_mean`.
    """
    mu = log_mean(law, likelihood, params, log_inputs, log_ref)
    return likelihood.log_density(mu, params, log_loss)


def _symbol_counts(expr: Expr) -> dict[str, int]:
    match expr:
        case Sym(name=name):
            return {name: 1}
        case Op(args=args):
            counts: dict[str, int] = {}
            for arg in args:
                for name, n in _symbol_counts(arg).items():
                    counts[name] = counts.get(name, 0) + n
            return counts
    return {}


def _factors(expr: Expr, sign: int) -> list[tuple[Expr, int]]:
    """Flatten a product/quotient into (factor, +1 | -1) pairs."""
    match expr:
        case Op(op="mul", args=(left, right)):
            return _factors(left, sign) + _factors(right, sign)
        case Op(op="div", args=(left, right)):
            return _factors(left, sign) + _factors(right, -sign)
    return [(expr, sign)]


def _product(factors: list[tuple[Expr, int]], sign: int) -> Expr:
    """Rebuild ``(prod of factors) ** sign`` as an expression (sign flips numerator/denominator)."""
    numerator = [f for f, s in factors if s * sign > 0]
    denominator = [f for f, s in factors if s * sign < 0]

    def chain(items: list[Expr]) -> Expr:
        out: Expr = Num(1.0)
        for item in items:
            out = item if out == Num(1.0) else Op("mul", (out, item))
        return out

    top, bottom = chain(numerator), chain(denominator)
    return top if bottom == Num(1.0) else Op("div", (top, bottom))


def _positive_support(prior: Prior) -> bool:
    support = prior.to_numpyro().support
    return support is constraints.positive or isinstance(support, type(constraints.positive))
