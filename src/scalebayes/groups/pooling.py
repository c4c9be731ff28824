"""Partial pooling over groups: which law parameters the groups share, pool or keep apart.

Each parameter of the law and of the noise takes one of three modes:

``shared``
    one value for every group;
``pooled``
    a value per group, drawn around a population value with a learned spread (on the
    parameter's unconstrained scale: the log for a positive parameter), non-centred
    (``group value = population value + spread * z``, ``z ~ Normal(0, 1)``, which samples well
    when each group's data are weak), centred where a group's data pin the value, or partly
    centred between the two (a new ladder's few cheapest runs: :class:`Pooling`'s ``centred``
    and ``weak_centring``);
``separate``
    a value per group, each from the law's own prior, with no population (so a new group
    has none either).

Coefficients are pooled on the log scale at the reference point (the centre of all runs' log
inputs), which is how a single fit samples them (:mod:`scalebayes.model`): the pooled quantity of
``A`` in ``A / N**alpha`` is ``log(A / N_ref**alpha)``, the log of its term at the runs' centre,
not ``log A`` (the loss term at N = 1, twenty e-folds outside the data, where every group's
``log A`` moves with its exponent: pooled there, the sampler crawled, ESS 56 of 600 draws on
three simulated ladders). So a coefficient ``shared`` means the groups' terms agree at the
centre of the runs; with the exponent shared too, that is ``A`` itself. Population values get
the law's priors, as a single fit's parameters do, except a pooled term's: its prior is on the
term at the runs' centre (:func:`term_priors`), unless the rest of its term is shared.

:class:`Pooling` is the user's choice (defaults per kind); :meth:`Pooling.plan` resolves it for
a law into a :class:`Plan`, which owns the NumPyro model (:func:`grouped_model`), its sites, and
the draws of a new group's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from scalebayes.discrepancy.base import Sites
from scalebayes.errors import ScalebayesError
from scalebayes.formula import log_evaluate
from scalebayes.groups.terms import symbols
from scalebayes.laws import Law
from scalebayes.likelihood import Likelihood
from scalebayes.model import Centring, ModelData, find_centrings
from scalebayes.priors import FrozenDict, Prior

MODES = ("shared", "pooled", "separate")
DISCREPANCY_MODES = ("shared", "pooled", "separate")

# Default spreads (sd across groups, on the unconstrained scale). Exponents and E: the same
# recipe on another data mix moves an exponent by ~5-20 % (Marin's three mixes, Kaplan vs
# Chinchilla fits of one data set): mean 0.16. A term's log at the reference point moves more
# (a mix can shift the whole loss by 10-30 %, and E trades off against the terms): mean 0.4.
# The noise's log sd: one ladder may be 2-3x noisier than another: mean 0.4.
# Gamma(3, rate), not HalfNormal: with a handful of groups the data barely bound a spread from
# below, and a prior with its mode at 0 lets the sampler into the neck of the funnel that a
# spread near 0 makes with the group values (Chung et al. 2013, "A nondegenerate penalized
# likelihood estimator for variance parameters in multilevel models", recommend Gamma(2, .),
# the least shape that keeps the estimate off 0). Below what one group's data resolve (an exponent to ~0.015 on a full
# ladder) the data cannot tell spreads apart, so the prior's shape there is ours to choose:
# Gamma(2, .), whose density rises linearly from 0, still let one of six fits of Marin's three
# ladders (beta shared, 4 x 500) into the neck at alpha's spread ~0.003 (96 divergent, R-hat
# 1.078; the others 1-4 divergent); Gamma(3, .) none (0-1 divergent, R-hat <= 1.009, the alpha
# spread's median 0.079 against 0.060). Its 90 % interval for an exponent's spread is 0.04-0.34.
# Same means as the HalfNormal(0.2) and (0.5) they replaced: 0.16 and 0.4.
VALUE_SPREAD = "Gamma(concentration=3.0, rate=18.75)"
TERM_SPREAD = "Gamma(concentration=3.0, rate=7.5)"
NOISE_SPREAD = "Gamma(concentration=3.0, rate=7.5)"
# A pooled discrepancy's spread, in units of its coefficients' prior sd: Gamma(3, .) as above,
# mean 0.5 (90 %: 0.14-1.05): mixes miss the law's shape apart by half what the law may miss.
DISCREPANCY_SPREAD = "Gamma(concentration=3.0, rate=6.0)"
DISCREPANCY_SPREAD_SITE = "_discrepancy_spread"
DISCREPANCY_Z_SITE = "_z_discrepancy"
_STANDARD = "Normal(loc=0.0, scale=1.0)"
# How far a weak group's law values are centred (0: non-centred, 1: centred), by the variationally
# inferred parameterisation of Gorinova et al. 2020 ("Automatic reparameterisation of
# probabilistic programs"): r ~ Normal(w * mu, spread**w), value = loc + spread**(1 - w) *
# (r - w * mu). A new ladder's cheapest runs pin some combinations of its values (the loss level,
# its slopes) tightly and others not at all: non-centred, the pinned ones are ridges that turn
# with the spreads; centred, the free ones make funnels with them. Measured on Marin's three
# new-ladder backtests (one ladder cut to its 3 cheapest budgets, 4 x 1000, seeds 0-2):
# w = 0: 300-500 leapfrog steps per draw, 17-1015 draws at the maximum depth, R-hat up to 1.34;
# 0.3: ~250 steps; 0.5: ~180; 0.7: 92-134 steps, none at the maximum depth, 0-7 divergent,
# R-hat <= 1.009; 1: ~45 steps but 29-72 divergent. Four simulated three-budget ladders, all
# weak (benchmarks/hierarchy_truth.py, seeds 0-3, 2 x 500): the same intervals' hits, half the
# time, 0 draws at the maximum depth against 1-13. (All with the Gamma(2, .) spreads of the time;
# with Gamma(3, .), Marin's new-ladder backtests at 0.7: 0 divergent, none at the maximum depth.)
WEAK_CENTRING = 0.7


@dataclass(frozen=True)
class Pooling:
    """How each parameter varies across groups: ``modes`` and ``spreads`` by parameter name.

    Defaults: every law parameter (exponents, E, coefficients on the log scale) and the noise
    ``sigma`` pooled; Student-t ``nu``, when estimated, shared. ``modes`` overrides by name,
    e.g. ``{"alpha": "shared", "E": "separate"}``; ``spreads`` overrides the prior of a pooled
    parameter's spread, e.g. ``{"beta": "HalfNormal(scale=0.05)"}`` (unconstrained scale).
    ``centred``: how pooled values are sampled. ``"law"`` (default): the law's parameters
    centred in groups with strong data (:func:`~scalebayes.groups.fitting.strong_groups`) and
    partly centred in the others, the noise non-centred; ``"floor"``: only ``E`` centred in strong
    groups; a tuple of parameter names: those centred in strong groups; ``"auto"``: every
    pooled parameter centred in strong groups; ``False``: none; ``True``: all.
    ``weak_centring``: with ``"law"``, ``"floor"``, ``"auto"`` or names, how far the same
    parameters are centred in the other groups (0 non-centred, 1 centred; default
    :data:`WEAK_CENTRING`).
    """

    modes: Mapping[str, str] = field(default_factory=dict)
    spreads: Mapping[str, str] = field(default_factory=dict)
    # A full ladder pins combinations of its law's parameters (E with the exponents, each term
    # with its exponent) far more tightly than mixes differ in them. Non-centred, each such
    # combination is a ridge in the standardised offsets whose direction turns with the ratio
    # of the spreads, which no mass matrix follows. On Marin (shared quadratic, 2 x 500) with E
    # alone centred ("floor", the default before): 135 of 1000 draws at the maximum tree depth,
    # 43 s (step size ~0.01, ~500 leapfrog steps per draw); the law centred: none, 18 s (~0.07,
    # ~57 steps). The noise stays non-centred: three ladders' sigmas agree within their own
    # uncertainty, and centred they make a funnel ("auto": 2 divergent, against 0). A new
    # ladder's few runs are weak data: partly centred (WEAK_CENTRING; benchmarks/marin_groups.py).
    centred: bool | str | tuple[str, ...] = "law"
    weak_centring: float = WEAK_CENTRING
    # The discrepancy's parameters: "pooled" (each group's around a population's), "shared"
    # or "separate" (each from the prior); also modes={"discrepancy": ...}. Pooled by known
    # truth (benchmarks/grouped_curvature_truth.py): ladders bent apart, 85 % covered against
    # shared's 35 %; alike, 79 % against 74 %; Marin's, within 7 % of shared (docs/groups.md).
    discrepancy: str = "pooled"

    def __post_init__(self) -> None:
        modes = dict(self.modes)
        if "discrepancy" in modes:
            object.__setattr__(self, "discrepancy", modes.pop("discrepancy"))
            object.__setattr__(self, "modes", modes)
        if self.discrepancy not in DISCREPANCY_MODES:
            raise ScalebayesError(
                f"discrepancy pooling {self.discrepancy!r}: expected one of "
                f"{list(DISCREPANCY_MODES)}"
            )
        if isinstance(self.centred, (list, tuple)):
            object.__setattr__(self, "centred", tuple(str(n) for n in self.centred))
        elif self.centred not in (True, False, "auto", "law", "floor"):
            raise ScalebayesError(
                f"centred={self.centred!r}: expected 'law', 'floor', 'auto', True, False or "
                "parameter names"
            )
        if not 0.0 <= float(self.weak_centring) <= 1.0:
            raise ScalebayesError(
                f"weak_centring={self.weak_centring!r}: expected a number from 0 to 1"
            )
        object.__setattr__(self, "weak_centring", float(self.weak_centring))
        bad = {name: mode for name, mode in self.modes.items() if mode not in MODES}
        if bad:
            raise ScalebayesError(f"pooling modes {bad}: expected one of {list(MODES)}")
        object.__setattr__(self, "modes", FrozenDict(self.modes))
        spreads = {name: str(Prior.parse(str(p))) for name, p in self.spreads.items()}
        object.__setattr__(self, "spreads", FrozenDict(spreads))

    def plan(self, law: Law, likelihood: Likelihood, strong: Sequence[bool]) -> Plan:
        """Resolve the modes for ``law`` and the noise of ``likelihood``; one ``strong`` per group.

        ``strong`` says which groups have enough runs to be sampled centred (``centred="auto"``).
        """
        centred_terms = find_centrings(law)
        centred = {c.param: c for c in centred_terms}
        names = (*law.free_param_names, *likelihood.param_names)
        named = self.centred if isinstance(self.centred, tuple) else ()
        unknown = sorted((set(self.modes) | set(self.spreads) | set(named)) - set(names))
        if unknown:
            raise ScalebayesError(f"pooling names {unknown} unknown: the parameters are {names}")
        params = []
        for name in names:
            noise = name in likelihood.param_names
            default = "shared" if name == "nu" else "pooled"
            mode = self.modes.get(name, default)
            # A coefficient alone (E) spreads as a value; one with an exponent, as a term.
            coefficient = name in centred and bool(symbols(centred[name].rest))
            kind = "term" if coefficient else "noise" if noise else "value"
            spread = self.spreads.get(
                name, {"term": TERM_SPREAD, "noise": NOISE_SPREAD, "value": VALUE_SPREAD}[kind]
            )
            prior = (
                Prior.parse(getattr(likelihood, f"{name}_prior"))
                if noise
                else law.params[name].prior
            )
            pooled = Pooled(name, mode, kind, prior, Prior.parse(spread), centred.get(name))
            params.append(pooled)
        which = self.centred if isinstance(self.centred, tuple) else None
        if self.centred == "floor":
            which = tuple(n for n in ("E",) if n in names)
        elif self.centred == "law":
            which = tuple(law.free_param_names)
        auto = self.centred == "auto" or which is not None
        centred = tuple(bool(x) for x in (strong if auto else [self.centred] * len(strong)))
        weak = self.weak_centring if auto else 0.0
        plan = Plan(
            tuple(params), centred, max(len(centred_terms), 1), which, self.discrepancy, weak
        )
        plan.check(law)
        return plan


@dataclass(frozen=True)
class Pooled:
    """One parameter's resolved pooling: its mode, kind (term, value, noise), priors, centring."""

    name: str
    mode: str
    kind: str
    prior: Prior
    spread: Prior
    centring: Centring | None = None


@dataclass(frozen=True)
class Plan:
    """Pooling resolved for one law, noise and number of groups: the model's sites and draws."""

    params: tuple[Pooled, ...]
    centred: tuple[bool, ...]  # per group: sampled centred (strong data) or not (weak data)
    terms: int = 1  # the law's coefficients sampled as terms (where their logs start)
    centred_params: tuple[str, ...] | None = None  # centred where the group is; None: all
    discrepancy: str = "shared"  # the discrepancy's parameters: DISCREPANCY_MODES
    weak_centring: float = 0.0  # how far the centred parameters are centred in the other groups

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return len(self.centred)

    def check(self, law: Law) -> None:
        """Refuse a shared or pooled term whose other parameters are separate (no population)."""
        separate = {p.name for p in self.params if p.mode == "separate"}
        for p in self.params:
            if p.centring is None or p.mode == "separate":
                continue
            rest = [s for s in symbols(p.centring.rest) if s in separate]
            if rest:
                raise ScalebayesError(
                    f"pooling: {p.name} is {p.mode} but {rest} separate; a {p.mode} coefficient "
                    "needs the rest of its term shared or pooled (or make it separate too)"
                )

    @property
    def key(self) -> str:
        """Names everything that changes the model (the engine caches compiled samplers by it)."""
        return (
            f"groups:{self.centred}:{self.centred_params}:{self.weak_centring}:"
            f"{self.discrepancy}:{self.params!r}"
        )

    def term_prior(self, p: Pooled) -> bool:
        """Whether ``p``'s population prior is on its term at the runs' centre (:func:`term_priors`).

        So when the rest of its term (its exponent) is pooled; otherwise the law's prior on ``p``.
        """
        modes = self.modes()
        rest = symbols(p.centring.rest) if p.centring is not None else set()
        return p.mode != "separate" and any(modes.get(s) == "pooled" for s in rest)

    def modes(self) -> dict[str, str]:
        """Each parameter's mode, by name."""
        return {p.name: p.mode for p in self.params}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the modes, every pooled parameter's spread prior, per-group centring.

        With the law and the likelihood, :meth:`from_dict` rebuilds the same plan (a saved fit).
        """
        spreads = {p.name: str(p.spread) for p in self.params if p.mode == "pooled"}
        record = {"modes": self.modes(), "spreads": spreads, "centred": list(self.centred),
                  "discrepancy": self.discrepancy,
                  "weak_centring": self.weak_centring}  # fmt: skip
        if self.centred_params is not None:
            record["centred_params"] = list(self.centred_params)
        return record

    @staticmethod
    def from_dict(record: Mapping[str, Any], law: Law, likelihood: Likelihood) -> Plan:
        """The plan :meth:`to_dict` wrote, resolved again for ``law`` and ``likelihood``."""
        which = record.get("centred_params")
        centred = tuple(which) if which is not None else "auto"
        pooling = Pooling(
            modes=record["modes"],
            spreads=record["spreads"],
            centred=centred,
            discrepancy=record.get("discrepancy", "shared"),  # files before the choice: shared
            weak_centring=record.get("weak_centring", 0.0),  # files before: non-centred
        )
        # "auto" centres exactly the groups marked strong: the stored per-group choice.
        return pooling.plan(law, likelihood, [bool(c) for c in record["centred"]])

    def sites(self) -> Sites:
        """Every site :func:`grouped_model` samples: name -> (prior or None, shape)."""
        g = (self.n_groups,)
        sites: Sites = {}
        standard = Prior.parse(_STANDARD)
        for p in self.params:
            if p.mode == "separate":
                sites[_separate_site(p)] = (None if p.centring else p.prior, g)
                continue
            sites[_population_site(p)] = (None if p.centring else p.prior, ())
            if p.mode == "pooled":
                sites[f"{p.name}_spread"] = (p.spread, ())
                sites[f"_z_{p.name}"] = (standard, g)
        return sites

    def reported_names(self, law: Law) -> list[str]:
        """Posterior variables a grouped fit reports: population values, spreads, group values."""
        names = []
        for p in self.params:
            if p.mode != "separate":
                names.append(p.name)
            if p.mode == "pooled":
                names.append(f"{p.name}_spread")
        return names + [f"{n}_group" for n in (*law.param_names, *self.noise_names)]

    def discrepancy_names(self, names: Sequence[str], spread: str) -> tuple[str, ...]:
        """A discrepancy's posterior variables: ``names``, ``<name>_group`` or both and ``spread``."""
        per_group = tuple(f"{n}_group" for n in names)
        if not names or self.discrepancy == "shared":
            return tuple(names)
        return per_group if self.discrepancy == "separate" else (*names, *per_group, spread)

    @property
    def noise_names(self) -> tuple[str, ...]:
        """The noise's parameters (``sigma``, maybe ``nu``)."""
        return tuple(p.name for p in self.params if p.kind == "noise")

    def new_group(
        self,
        law: Law,
        posterior: Mapping[str, np.ndarray],
        log_ref: Mapping[str, Any],
        seed: int,
        likelihood: Likelihood | None = None,
    ) -> dict[str, np.ndarray]:
        """Parameters of a group not yet run: per posterior draw, one draw from the population.

        ``posterior`` holds the population values and spreads, arrays (chain, draw); returns
        every law and noise parameter, same shape, and with ``likelihood`` its discrepancy's
        parameters unless the groups share them (pooled: drawn around the population's, as in
        :func:`_pooled_discrepancy`). Refused when a parameter or the discrepancy is separate.
        """
        separate = [p.name for p in self.params if p.mode == "separate"]
        if separate:
            raise ScalebayesError(
                f"a new group has no value for {separate}: they are separate per group (no "
                "population); fit with them pooled or shared to predict a new group"
            )
        discrepancy = likelihood.discrepancy if likelihood is not None else None
        names = discrepancy.param_names(law, ()) if discrepancy is not None else ()
        if names and self.discrepancy == "separate":
            raise ScalebayesError(
                f"a new group has no {discrepancy.name} discrepancy: each group's is separate "
                "(no population); fit with it pooled or shared to predict a new group"
            )
        values: dict[str, Any] = {}
        if names and self.discrepancy == "pooled":
            spread = posterior[discrepancy.group_spread_name]
            offsets = np.random.default_rng([seed, 1]).standard_normal((len(names), *spread.shape))
            values = {n: posterior[n] + spread * z for n, z in zip(names, offsets, strict=True)}
        rng = np.random.default_rng(seed)
        values |= {
            n: np.full_like(posterior["sigma"], float(law.params[n].prior.kwargs["v"]))
            for n in law.param_names
            if n not in law.free_param_names
        }
        population = {**{p.name: jnp.asarray(posterior[p.name]) for p in self.params}, **values}
        z = {p.name: rng.standard_normal(np.shape(posterior["sigma"])) for p in self.params}
        for p in self.params:
            if p.centring is not None:
                continue
            spread = posterior[p.name + "_spread"] if p.mode == "pooled" else 0.0
            t = biject_to(p.prior.to_numpyro().support)
            values[p.name] = np.asarray(t(t.inv(population[p.name]) + spread * z[p.name]))
        for p in self.params:
            c = p.centring
            if c is None:
                continue
            u = c.sign * jnp.log(population[p.name]) + log_evaluate(c.rest, population, log_ref)
            if p.mode == "pooled":
                u = u + posterior[p.name + "_spread"] * z[p.name]
            rest = log_evaluate(c.rest, {k: jnp.asarray(v) for k, v in values.items()}, log_ref)
            values[p.name] = np.exp(np.asarray(c.sign * (u - rest)))
        return {k: np.asarray(v) for k, v in values.items()}


def grouped_model(law: Law, likelihood: Likelihood, plan: Plan, data: ModelData) -> None:
    """NumPyro model of a grouped fit; ``data`` laid out by group (:func:`fitting.by_group`).

    Population values keep the parameters' names (``alpha``), spreads are ``alpha_spread``,
    per-group values ``alpha_group`` (shape (groups,)); the discrepancy of ``likelihood``, if
    any, is one term that every group shares, one per group around a population's
    (:func:`_pooled_discrepancy`) or one per group from its prior (``"separate"``, its sites
    then of shape (groups, ...)); its reference is taken from all runs.
    """
    g = plan.n_groups
    population: dict[str, Any] = {}
    group: dict[str, Any] = {}
    for name in law.param_names:
        prior = law.params[name].prior
        if prior.family == "Delta":  # pinned: a constant
            population[name] = jnp.asarray(prior.kwargs["v"])
            group[name] = jnp.broadcast_to(population[name], (g,))
    for p in plan.params:
        if p.centring is not None:
            continue
        prior = p.prior.to_numpyro()
        if p.mode == "separate":
            group[p.name] = numpyro.sample(_separate_site(p), prior.expand([g]))
            continue
        population[p.name] = numpyro.sample(p.name, prior)
        t = biject_to(prior.support)
        loc = t.inv(population[p.name])
        group[p.name] = t(loc + _offsets(plan, p, loc, t.inv(jnp.asarray(p.prior.median()))))
    # Where the sampler starts a term's log (engine.start_point): an equal share of the loss.
    start = jnp.sum(data.weight * data.log_loss) / jnp.sum(data.weight) - jnp.log(plan.terms)
    for p in plan.params:
        c = p.centring
        if c is None:
            continue
        prior = p.prior.to_numpyro()
        if p.mode == "separate":
            u = numpyro.sample(_separate_site(p), dist.ImproperUniform(constraints.real, (g,), ()))
            log_value = c.sign * (u - log_evaluate(c.rest, group, data.log_ref))
            density = prior.log_prob(jnp.exp(log_value)) + log_value
            numpyro.factor(f"_prior_{p.name}", jnp.sum(density))
        else:
            flat = dist.ImproperUniform(constraints.real, (), ())
            u_pop = numpyro.sample(_population_site(p), flat)
            log_pop = c.sign * (u_pop - log_evaluate(c.rest, population, data.log_ref))
            population[p.name] = numpyro.deterministic(p.name, jnp.exp(log_pop))
            if plan.term_prior(p):
                loc, scale = data.extra["term_prior"][p.name]
                numpyro.factor(f"_prior_{p.name}", dist.Normal(loc, scale).log_prob(u_pop))
            else:  # the law's prior on the coefficient, with its log-Jacobian (as model.py)
                numpyro.factor(f"_prior_{p.name}", prior.log_prob(population[p.name]) + log_pop)
            # The term's log at the reference point, pooled (shared: offset 0).
            u = u_pop + _offsets(plan, p, u_pop, start)
            log_value = c.sign * (u - log_evaluate(c.rest, group, data.log_ref))
        group[p.name] = jnp.exp(log_value)
    for name, values in group.items():
        numpyro.deterministic(f"{name}_group", values)
    discrepancy: dict[str, Any] = {}
    if plan.discrepancy == "separate":
        with numpyro.plate("groups", g):
            likelihood.discrepancy.sample(law, discrepancy)
        discrepancy = {k: _per_run(v) for k, v in discrepancy.items()}
    else:
        likelihood.discrepancy.sample(law, discrepancy)
    if plan.discrepancy == "pooled" and discrepancy:
        discrepancy = _pooled_discrepancy(law, likelihood, plan, discrepancy)
    mu = law.log_mean({n: _per_run(group[n]) for n in law.param_names}, data.log_inputs)
    mu = mu + likelihood.discrepancy.table_term(law, discrepancy, data)
    nu = _per_run(group["nu"]) if "nu" in group else likelihood.df
    likelihood.observe(mu, _per_run(group["sigma"]), nu, data)


def _pooled_discrepancy(
    law: Law, likelihood: Likelihood, plan: Plan, population: Mapping[str, Any]
) -> dict[str, Any]:
    """Each group's discrepancy parameters around the population's, laid over the runs.

    ``value_group = value + scale * spread * z``, ``scale`` the discrepancy's prior sd of its
    coefficients (:meth:`~scalebayes.discrepancy.base.Discrepancy.group_scale`), ``spread ~``
    :data:`DISCREPANCY_SPREAD`, ``z`` standard Normal; reported as ``group_spread_name``
    (``scale * spread``) and ``<name>_group``. Non-centred in every group: centred where the
    runs pin them (as the law's values are), Marin's fits failed the checks 3 times in 4 seeds
    against 1 (docs/groups.md).
    """
    names = likelihood.discrepancy.param_names(law, ())
    scale = likelihood.discrepancy.group_scale(law)
    spread = numpyro.sample(DISCREPANCY_SPREAD_SITE, Prior.parse(DISCREPANCY_SPREAD).to_numpyro())
    numpyro.deterministic(likelihood.discrepancy.group_spread_name, scale * spread)
    z = numpyro.sample(
        DISCREPANCY_Z_SITE, dist.Normal(0.0, 1.0).expand([plan.n_groups, len(names)]).to_event(2)
    )
    return {
        name: _per_run(
            numpyro.deterministic(f"{name}_group", population[name] + scale * spread * z[:, k])
        )
        for k, name in enumerate(names)
    }


def _per_run(values: Any) -> Any:
    """Group values (groups, ...) laid over the model's runs (groups, runs per group, ...)."""
    return jnp.expand_dims(values, 1)


def _offsets(plan: Plan, p: Pooled, loc: Any, start: Any) -> Any:
    """Each group's offset from the population value ``loc`` (unconstrained scale), shape (groups,).

    Zero unless ``p`` is pooled. A pooled parameter samples ``r`` per group, centred by weight
    ``w`` (:data:`WEAK_CENTRING`): ``r ~ Normal(w * mu, spread**w)`` and ``offset =
    spread**(1 - w) * (r - w * mu)``, with ``mu = loc - start`` the population value measured
    from the constant ``start`` (so that ``r = 0`` starts a centred group where a single fit
    starts). ``w = 0`` is non-centred (``offset = spread * r``, ``r ~ Normal(0, 1)``); ``w = 1``
    centred (``r`` is the group's value less ``start``): 1 in groups with strong data, the
    plan's ``weak_centring`` in the others, for the parameters the plan centres; 0 otherwise.
    """
    g = plan.n_groups
    if p.mode != "pooled":
        return jnp.zeros(g)
    spread = numpyro.sample(f"{p.name}_spread", p.spread.to_numpyro())
    if plan.centred_params is None or p.name in plan.centred_params:
        strong = np.asarray(plan.centred, dtype=float)
        w = jnp.asarray(strong + (1 - strong) * plan.weak_centring, dtype=jnp.result_type(float))
    else:
        w = jnp.zeros(g)
    mu = loc - start
    r = numpyro.sample(f"_z_{p.name}", dist.Normal(w * mu, spread**w))
    return spread ** (1 - w) * (r - w * mu)


def _population_site(p: Pooled) -> str:
    return p.centring.site if p.centring is not None else p.name


def _separate_site(p: Pooled) -> str:
    return f"_sep_{p.name}"
