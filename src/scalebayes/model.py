"""The statistical model: a law's mean in log space and a robust likelihood on log loss.

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

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.typing import ArrayLike
from numpyro.distributions import constraints

from scalebayes import gp
from scalebayes.errors import LawError
from scalebayes.formula import Expr, Num, Op, Sym, additive_terms, log_evaluate
from scalebayes.laws import Law
from scalebayes.priors import Prior

LIKELIHOOD_PARAMS = ("sigma", "nu", "curvature", "gp_amplitude")  # names a prior override may use
DISCREPANCIES = ("auto", "none", "curvature", "gp")
GP_RAW_SITE = "_gp_raw"  # the GP's standardised basis weights, one vector site


@dataclass(frozen=True)
class Likelihood:
    """Observation model for log loss.

    Parameters
    ----------
    family : {"student_t", "normal"}
        Student-t (default) keeps one odd run from dragging the exponents; Chinchilla
        itself used a Huber loss for the same reason.
    df : float or None
        Student-t degrees of freedom, or ``None`` to estimate them (prior ``nu_prior``).
        Default 4, chosen on Epoch's Chinchilla data (benchmarks/likelihood_choice.py):
        PSIS-LOO elpd is 388 for a Normal, 591 for t(4) and 613 for estimated nu (~1.6);
        the last two differ by 20 +/- 12 (< 2 se) and stacking weighs t(4) higher, so the
        fixed value that samples in fewer steps and matches the Huber-loss refit wins.
        Issue 6 revisits this by leave-future-out.
    sigma_prior : str
        Prior of the noise scale on log loss (relative error of a run's final loss).
    nu_prior : str
        Prior of the degrees of freedom when ``df is None`` (Juárez & Steel 2010).
    discrepancy : {"auto", "none", "curvature", "gp"}
        ``"auto"`` (default) is ``"gp"`` for a law of at most two inputs and ``"none"`` for one
        of three, which the GP cannot serve (:meth:`for_law`). Fits store the resolved value.
        Why ``"gp"``: fitted on the smaller runs of 9 public tables and scored on the larger, its
        90 % intervals held 83 % of the held-out runs against 56 % for ``"none"``, with half the
        error, and exponents and allocations are exactly the plain law's
        (benchmarks/backtest.py; README "How far can you trust it?"). ``"none"`` trusts the
        law's shape beyond the data. ``"gp"`` adds a Gaussian-process discrepancy in the law's
        log inputs (:mod:`scalebayes.gp`): smooth, orthogonal to what the law's own parameters
        can do near the data, and more uncertain the further a point lies beyond them; the
        allocation leaves it out.
        ``"curvature"`` adds to the law's log mean a quadratic in the centred log inputs,
        ``sum_{i<=j} c_ij (log x_i - ref_i)(log x_j - ref_j)`` (ref: mean log inputs of the
        fitted runs), with ``c_ij = curvature * z_ij``, ``z_ij ~ Normal(0, 1)``. It stands
        for the curvature in log-log space that the law lacks: the data pin it down where they
        are, and its uncertainty grows with the square of the distance beyond them, which is
        what keeps extrapolation intervals honest (benchmarks/backtest.py).
    curvature_prior : str
        Prior of ``curvature``, the scale of the ``c_ij`` (log loss per squared natural-log
        unit of the inputs).
    gp_amplitude_prior : str
        Prior of ``gp_amplitude``, the GP's standard deviation in log loss.
    """

    family: str = "student_t"
    df: float | None = 4.0
    # HalfNormal(0.1) on log loss: a run-to-run spread of 0.5-10 % is typical, 30 % is not.
    sigma_prior: str = "HalfNormal(scale=0.1)"
    nu_prior: str = "Gamma(concentration=2.0, rate=0.1)"
    discrepancy: str = "auto"
    # HalfNormal(0.01): a coefficient of 0.01 bends log loss by 5 % one decade (2.3 ln units)
    # from the centre of the data, more than published ladders show; 0.001 bends it by 0.5 %.
    curvature_prior: str = "HalfNormal(scale=0.01)"
    # LogNormal(log 0.01, 0.75): median 1 % of the loss, 95 % in [0.2 %, 4 %]; held-out errors of
    # the plain law on the public ladders are 0.3-2 % (benchmarks/results/backtest.json). It keeps
    # away from 0 (no law is exact) and lets the data push it up: Epoch's runs give ~0.09.
    gp_amplitude_prior: str = "LogNormal(loc=-4.6, scale=0.75)"

    def __post_init__(self) -> None:
        if self.family not in ("student_t", "normal"):
            raise LawError(f"likelihood family {self.family!r}: expected 'student_t' or 'normal'")
        if self.df is not None and not self.df > 0:
            raise LawError(f"likelihood df={self.df!r}: expected a positive number or None")
        if self.discrepancy not in DISCREPANCIES:
            raise LawError(
                f"likelihood discrepancy {self.discrepancy!r}: expected one of "
                + ", ".join(repr(d) for d in DISCREPANCIES)
            )
        Prior.parse(self.sigma_prior)
        Prior.parse(self.nu_prior)
        Prior.parse(self.curvature_prior)
        Prior.parse(self.gp_amplitude_prior)

    def for_law(self, law: Law) -> Likelihood:
        """Return the likelihood with ``discrepancy="auto"`` resolved for ``law`` (others unchanged)."""
        if self.discrepancy != "auto":
            return self
        serves = len(law.inputs) <= gp.MAX_INPUTS
        return dataclasses.replace(self, discrepancy="gp" if serves else "none")

    @property
    def param_names(self) -> tuple[str, ...]:
        """The noise model's own parameters: ``sigma``, and ``nu`` when it is estimated."""
        return ("sigma", "nu") if self.estimates_nu else ("sigma",)

    @property
    def estimates_nu(self) -> bool:
        """Whether the Student-t degrees of freedom are a parameter of the model."""
        return self.family == "student_t" and self.df is None

    def with_priors(self, overrides: Mapping[str, str | Prior]) -> Likelihood:
        """Return a copy with the ``sigma`` / ``nu`` / ``curvature`` / ``gp_amplitude`` priors replaced."""
        changes = {f"{name}_prior": str(Prior.parse(str(p))) for name, p in overrides.items()}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable description (stored with every fit)."""
        return dict(self.__dict__)


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
    reference point (scalar) used by centring; ``weight`` multiplies each run's log-likelihood
    (0 leaves a run out, keeping the shape: see ``inference.fit(mask=...)``).
    """

    log_inputs: Mapping[str, jax.Array]
    log_loss: jax.Array | None
    weight: jax.Array
    log_ref: Mapping[str, jax.Array]
    gp_basis: jax.Array | None = None  # with the GP discrepancy: its basis at the runs, (n, K)
    law_at_mode: jax.Array | None = None  # and the law's log mean at its mode there, (n,)


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
    """NumPyro model: priors on the law's parameters, Student-t/Normal on log loss.

    With ``data.log_loss=None`` it draws from the prior predictive (the ``obs=None`` idiom).
    The gp discrepancy is two models sampled apart (:func:`gp_model`): this one with
    ``discrepancy="none"`` is its first module.
    """
    likelihood = likelihood.for_law(law)
    if likelihood.discrepancy == "gp":
        raise LawError(
            "the gp discrepancy is sampled as two models: numpyro_model with discrepancy "
            "'none' (the law) and gp_model (the GP on what the law's mode misses)"
        )
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
        if (likelihood.estimates_nu)
        else likelihood.df
    )
    if likelihood.discrepancy == "curvature":
        scale = numpyro.sample("curvature", Prior.parse(likelihood.curvature_prior).to_numpyro())
        for name in curvature_names(law):
            raw = numpyro.sample(f"_{name}_raw", dist.Normal(0.0, 1.0))  # non-centred
            values[name] = numpyro.deterministic(name, scale * raw)
    mu = log_mean(law, likelihood, values, data.log_inputs, data.log_ref)
    _observe("log_loss", likelihood, mu, sigma, nu, data)


def _observe(
    site: str, likelihood: Likelihood, mu: jax.Array, sigma: jax.Array, nu: object, data: ModelData
) -> None:
    # Weight 0 marks a run held out by fit(mask=...): masked out (scale must stay positive).
    counted = data.weight > 0
    with (
        numpyro.plate("run" if site == "log_loss" else f"run_{site}", mu.shape[-1]),
        numpyro.handlers.mask(mask=counted),
        numpyro.handlers.scale(scale=jnp.where(counted, data.weight, 1.0)),
    ):
        numpyro.sample(site, noise_distribution(likelihood, mu, sigma, nu), obs=data.log_loss)


def gp_model(law: Law, likelihood: Likelihood, data: ModelData, centred: bool = False) -> None:
    """Module 2 of the gp discrepancy (see gp.py): the GP and ``sigma`` on what the law's mode misses.

    log loss ~ law(mode) + GP, with ``data.law_at_mode`` and ``data.gp_basis`` computed once per
    table (:func:`scalebayes.inference.model_data`). Module 1 is :func:`numpyro_model` with
    ``discrepancy="none"``, its noise scale reported as ``sigma_law``. The two share no
    parameter, so their posterior is the product of the two, and each is sampled on its own:
    the GP module costs ~15 leapfrog steps of a 36-column product, not the law's ~23 steps
    of the law's formula (on Epoch's runs, benchmarks/fit_chinchilla.py).
    """
    if data.gp_basis is None or data.law_at_mode is None:
        raise LawError("the gp discrepancy needs model_data(..., likelihood) to build its basis")
    sigma = numpyro.sample("sigma", Prior.parse(likelihood.sigma_prior).to_numpyro())
    nu = (
        numpyro.sample("nu", Prior.parse(likelihood.nu_prior).to_numpyro())
        if likelihood.estimates_nu
        else likelihood.df
    )
    amplitude = numpyro.sample(
        "gp_amplitude", Prior.parse(likelihood.gp_amplitude_prior).to_numpyro()
    )
    # Non-centred (raw ~ Normal(0, 1)) by default: where the law fits, the data say little about
    # the weights, and a centred GP would be a funnel in its amplitude. Where the law misses by
    # far (Kaplan's law on Epoch's runs: amplitude 0.5) the data pin the weights and the funnel
    # turns round: there the centred form samples (inference._sample_gp_modules picks it).
    names = gp.weight_names(law.inputs)
    scale = amplitude * gp.spectral_scale(len(law.inputs))
    if centred:
        weights = numpyro.sample(GP_RAW_SITE, dist.Normal(0.0, scale).to_event(1))
    else:
        raw = numpyro.sample(GP_RAW_SITE, dist.Normal(0.0, 1.0).expand([len(names)]).to_event(1))
        weights = scale * raw
    for k, name in enumerate(names):
        numpyro.deterministic(name, weights[k])
    mu = data.law_at_mode + data.gp_basis @ weights
    _observe("log_loss", likelihood, mu, sigma, nu, data)


def gp_sites(law: Law, likelihood: Likelihood) -> dict[str, tuple[Prior, tuple[int, ...]]]:
    """Each site NUTS samples in :func:`gp_model`: its prior and its shape."""
    sites = {
        name: (Prior.parse(getattr(likelihood, f"{name}_prior")), ())
        for name in likelihood.param_names
    }
    sites["gp_amplitude"] = (Prior.parse(likelihood.gp_amplitude_prior), ())
    standard = Prior.parse("Normal(loc=0, scale=1)")
    sites[GP_RAW_SITE] = (standard, (len(gp.weight_names(law.inputs)),))
    return sites


def law_module(likelihood: Likelihood) -> Likelihood:
    """The likelihood of the law's own module: ``likelihood`` without the GP discrepancy.

    Module 1 of a gp fit, and the model every decision that searches over runs minimises
    (``optimal``, ``plan``). The GP describes where the law misses near the data; decades away
    it is a random wiggle of up to its amplitude, and an argmin of law + wiggle along a shallow
    isoFLOP curve follows the wiggle, not the data: with the GP in (fitted jointly with the law),
    Epoch's all-runs fit put 5.76e23 FLOPs at 79 [11, 363] tokens per parameter. The curvature
    discrepancy, fitted and smooth, stays. Other likelihoods are returned as they are.
    """
    if likelihood.discrepancy != "gp":
        return likelihood
    return dataclasses.replace(likelihood, discrepancy="none")


LAW_MODULE_NAMES = {"sigma": "sigma_law", "nu": "nu_law"}
"""How module 1's noise parameters are reported in a gp fit (the GP module's keep the plain names)."""


def curvature_names(law: Law) -> tuple[str, ...]:
    """Coefficients of the curvature discrepancy: ``curvature_X_Y`` for inputs X <= Y of the law."""
    inputs = law.inputs
    return tuple(f"curvature_{a}_{b}" for i, a in enumerate(inputs) for b in inputs[i:])


def model_param_names(law: Law, likelihood: Likelihood) -> tuple[str, ...]:
    """Every parameter a fit reports: the law's, the noise's (``sigma``, ``nu``) and the discrepancy's."""
    likelihood = likelihood.for_law(law)
    names = (*law.param_names, *likelihood.param_names)
    if likelihood.discrepancy == "curvature":
        names += ("curvature", *curvature_names(law))
    if likelihood.discrepancy == "gp":
        law_noise = tuple(LAW_MODULE_NAMES[n] for n in likelihood.param_names)
        names += (*law_noise, "gp_amplitude", *gp.weight_names(law.inputs))
    return names


def reported_param_names(law: Law, likelihood: Likelihood) -> tuple[str, ...]:
    """The parameters summaries and plots show: :func:`model_param_names` less the GP's weights."""
    return tuple(n for n in model_param_names(law, likelihood) if not n.startswith("gp_w"))


def log_mean(
    law: Law,
    likelihood: Likelihood,
    params: Mapping[str, jax.Array],
    log_inputs: Mapping[str, jax.Array],
    log_ref: Mapping[str, jax.Array] | None = None,
) -> jax.Array:
    """Log of the model's mean loss: the law's log mean plus the discrepancy, if any.

    ``log_ref`` (scalar per input) is the centre of the fitted runs' log inputs, plus what the GP
    discrepancy needs (:func:`reference_point`); needed with any discrepancy. Arrays broadcast
    as in ``Law.log_mean``.
    """
    likelihood = likelihood.for_law(law)
    mu = law.log_mean(params, log_inputs)
    if likelihood.discrepancy == "curvature":
        if log_ref is None:
            raise LawError("the curvature discrepancy needs the reference point (log_ref)")
        for name in curvature_names(law):
            _, a, b = name.split("_")
            mu = mu + params[name] * (log_inputs[a] - log_ref[a]) * (log_inputs[b] - log_ref[b])
    if likelihood.discrepancy == "gp":
        if log_ref is None or "_gp_projection" not in log_ref:
            raise LawError("the gp discrepancy needs the reference point (log_ref) of the fit")
        mu = mu + gp.term(law, params, log_inputs, log_ref)
    return mu


def reference_point(
    law: Law,
    log_inputs: Mapping[str, ArrayLike],
    likelihood: Likelihood | None = None,
    counted: ArrayLike | None = None,
    *,
    log_loss: ArrayLike | None = None,
    weight: ArrayLike | None = None,
) -> dict[str, jax.Array]:
    """Centre of the fitted runs: the mean of each of the law's log inputs (shape (n,) each).

    ``counted`` (bool, shape (n,)) restricts it to the runs a masked fit counts. With the GP
    discrepancy it also holds what the GP takes from the fitted runs (:func:`gp.reference`),
    which needs their ``log_loss`` (and ``weight``, if they carry one), shape (n,).
    """
    likelihood = None if likelihood is None else likelihood.for_law(law)
    arrays = {name: jnp.asarray(log_inputs[name]) for name in law.inputs}
    n = next(iter(arrays.values())).shape[-1]
    mask = jnp.ones(n, bool) if counted is None else jnp.asarray(counted, bool)
    centre = {
        name: jnp.sum(jnp.where(mask, values, 0.0)) / jnp.sum(mask)
        for name, values in arrays.items()
    }
    if likelihood is not None and likelihood.discrepancy == "gp":
        if log_loss is None:
            raise LawError("the gp discrepancy's reference point needs the fitted runs' losses")
        w = jnp.ones(n) if weight is None else jnp.asarray(weight, dtype=float)
        data = ModelData(arrays, jnp.asarray(log_loss), jnp.where(mask, w, 0.0), centre)
        mode = plain_mode(law, likelihood, data)
        centre.update(compiled(gp.reference, law)(arrays, centre, mask, mode))
    return centre


@functools.lru_cache(maxsize=64)
def compiled(fn: Any, *static: Any) -> Any:
    """``fn`` with its leading hashable arguments (law, likelihood) fixed, compiled as one program.

    Run eagerly, each of the GP's array operations compiles on its own the first time a shape
    is seen: ~2 s of tiny compiles per fit on a cold cache, against ~0.3 s for one program.
    """
    return jax.jit(functools.partial(fn, *static))


def plain_mode(law: Law, likelihood: Likelihood, data: ModelData) -> dict[str, jax.Array]:
    """The posterior mode of the law with no discrepancy: its parameters (scalars), by name.

    L-BFGS (SciPy) on the unconstrained sites from :func:`start_point`, with JAX gradients;
    deterministic, so a masked table and its subset give the same mode to the tolerance.
    Should the search end at a non-finite point, the starting point. (JAX's own BFGS stalled in its line
    search after 3 steps on Epoch's runs; SciPy's L-BFGS-B converged in 65.)
    """
    import numpy as np
    from jax.flatten_util import ravel_pytree
    from scipy.optimize import minimize

    plain = law_module(likelihood)
    energy, constrain, centrings = _mode_programs(law, plain)
    sites = sampled_sites(law, plain, centrings)
    flat, unravel = ravel_pytree(start_point(sites, data, len(centrings)))

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = energy(jnp.asarray(x), data)
        return float(value), np.asarray(grad, dtype=float)

    found = minimize(
        value_and_grad,
        np.asarray(flat, dtype=float),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-8},
    )
    x = found.x if np.all(np.isfinite(found.x)) else np.asarray(flat)
    values = constrain(unravel(jnp.asarray(x)), data)
    return {name: values[name] for name in law.param_names}


@functools.lru_cache(maxsize=16)
def _mode_programs(law: Law, likelihood: Likelihood) -> tuple[Any, Any, tuple[Centring, ...]]:
    """Jitted energy-and-gradient and constrain functions of the plain model, and its centrings."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import constrain_fn, potential_energy

    centrings = find_centrings(law)
    model = functools.partial(numpyro_model, law, likelihood, centrings)
    sites = sampled_sites(law, likelihood, centrings)
    _, unravel = ravel_pytree({site: jnp.zeros(shape) for site, (_, shape) in sites.items()})

    def energy(x: jax.Array, data: ModelData) -> jax.Array:
        return potential_energy(model, (data,), {}, unravel(x))

    def constrain(z: dict[str, jax.Array], data: ModelData) -> dict[str, jax.Array]:
        return constrain_fn(model, (data,), {}, z, return_deterministic=True)

    return jax.jit(jax.value_and_grad(energy)), jax.jit(constrain), centrings


def sampled_sites(
    law: Law, likelihood: Likelihood, centrings: tuple[Centring, ...]
) -> dict[str, tuple[Prior | None, tuple[int, ...]]]:
    """Each site NUTS samples in :func:`numpyro_model`: its prior (None for a centred term), its shape."""
    likelihood = likelihood.for_law(law)
    centred = {c.param for c in centrings}
    sites: dict[str, tuple[Prior | None, tuple[int, ...]]] = {}
    for name in law.free_param_names:
        if name not in centred:
            sites[name] = (law.params[name].prior, ())
    for c in centrings:
        sites[c.site] = (None, ())
    for name in likelihood.param_names:
        sites[name] = (Prior.parse(getattr(likelihood, f"{name}_prior")), ())
    standard = Prior.parse("Normal(loc=0, scale=1)")
    if likelihood.discrepancy == "curvature":
        sites["curvature"] = (Prior.parse(likelihood.curvature_prior), ())
        for name in curvature_names(law):
            sites[f"_{name}_raw"] = (standard, ())
    return sites


def start_point(
    sites: Mapping[str, tuple[Prior | None, tuple[int, ...]]], data: ModelData, n_terms: int = 1
) -> dict[str, jax.Array]:
    """Data-informed starting point of ``sites`` (:func:`sampled_sites`, :func:`gp_sites`), unconstrained.

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
            d = prior.to_numpyro()
            median = jnp.median(d.sample(jax.random.key(0), (501,)))
            value = biject_to(d.support).inv(median)
        start[site] = jnp.broadcast_to(value, shape)
    return start


def pointwise_log_lik(
    law: Law,
    likelihood: Likelihood,
    params: Mapping[str, jax.Array],
    log_inputs: Mapping[str, jax.Array],
    log_loss: jax.Array,
    log_ref: Mapping[str, jax.Array] | None = None,
) -> jax.Array:
    """Log density of each observed loss on the loss scale (not log loss), one value per run.

    ``log p(loss) = log p(log loss) - log loss``: the Jacobian makes the values comparable with
    any model that describes loss directly. Parameters broadcast, e.g. shape (draws, 1) against
    runs of shape (n,) gives (draws, n). ``log_ref`` as in :func:`log_mean`.
    """
    mu = log_mean(law, likelihood, params, log_inputs, log_ref)
    return _log_lik_around(likelihood, mu, params, log_loss)


def gp_pointwise_log_lik(
    law: Law, likelihood: Likelihood, params: Mapping[str, jax.Array], data: ModelData
) -> jax.Array:
    """:func:`pointwise_log_lik` of a gp fit's draws on the table it was fitted to, shape P + (n,).

    Parameters of shape P (e.g. (chain, draw)) with no run axis; it uses the basis
    :func:`scalebayes.inference.model_data` computed for the table, so that the (P, n, K)
    product of weights and basis is never formed.
    """
    if data.gp_basis is None:
        raise LawError("the gp discrepancy needs model_data(..., likelihood) to build its basis")
    per_run = {k: jnp.asarray(v)[..., None] for k, v in params.items()}
    weights = gp.stacked_weights(law.inputs, params)
    mu = law.log_mean(per_run, data.log_inputs) + weights @ data.gp_basis.T
    return _log_lik_around(likelihood, mu, per_run, data.log_loss)


def _log_lik_around(
    likelihood: Likelihood, mu: jax.Array, params: Mapping[str, jax.Array], log_loss: jax.Array
) -> jax.Array:
    nu = params["nu"] if likelihood.estimates_nu else likelihood.df
    return noise_distribution(likelihood, mu, params["sigma"], nu).log_prob(log_loss) - log_loss


def noise_distribution(
    likelihood: Likelihood, mu: jax.Array, sigma: jax.Array, nu: object
) -> dist.Distribution:
    """Distribution of log loss around log mean ``mu``: Student-t(``nu``) or Normal, scale ``sigma``."""
    if likelihood.family == "normal":
        return dist.Normal(mu, sigma)
    return dist.StudentT(nu, mu, sigma)


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
