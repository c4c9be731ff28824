"""The observation model: robust noise on log loss around the law, plus a discrepancy component."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scalebayes.discrepancy import Auto, Discrepancy, NoDiscrepancy, from_dict, from_spec
from scalebayes.errors import LawError
from scalebayes.laws import Law
from scalebayes.priors import Prior

NOISE_PARAMS = ("sigma", "nu")


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
    sigma_prior : str
        Prior of the noise scale on log loss (relative error of a run's final loss).
    nu_prior : str
        Prior of the degrees of freedom when ``df is None`` (Juárez & Steel 2010).
    discrepancy : Discrepancy or str
        What the law's shape misses (:mod:`scalebayes.discrepancy`): ``"auto"`` (default: the GP
        for laws of at most two inputs, none for more), ``"none"``, ``"curvature"``, ``"gp"``, a
        name with fields (``"gp:curvature_scale=0.005"``, :func:`~scalebayes.discrepancy.from_spec`),
        or a component such as ``GP(amplitude_prior=...)``. Fits store the resolved one.
    """

    family: str = "student_t"
    df: float | None = 4.0
    # HalfNormal(0.1) on log loss: a run-to-run spread of 0.5-10 % is typical, 30 % is not.
    sigma_prior: str = "HalfNormal(scale=0.1)"
    nu_prior: str = "Gamma(concentration=2.0, rate=0.1)"
    discrepancy: Discrepancy = field(default_factory=Auto)

    def __post_init__(self) -> None:
        if self.family not in ("student_t", "normal"):
            raise LawError(f"likelihood family {self.family!r}: expected 'student_t' or 'normal'")
        if self.df is not None and not self.df > 0:
            raise LawError(f"likelihood df={self.df!r}: expected a positive number or None")
        if isinstance(self.discrepancy, str):
            object.__setattr__(self, "discrepancy", from_spec(self.discrepancy))
        if not isinstance(self.discrepancy, Discrepancy):
            raise LawError(
                f"likelihood discrepancy {self.discrepancy!r}: expected a name or a Discrepancy"
            )
        Prior.parse(self.sigma_prior)
        Prior.parse(self.nu_prior)

    def for_law(self, law: Law) -> Likelihood:
        """Return the likelihood with its discrepancy resolved for ``law`` (``auto`` picks one)."""
        resolved = self.discrepancy.resolve(law)
        return (
            self
            if resolved == self.discrepancy
            else dataclasses.replace(self, discrepancy=resolved)
        )

    def for_decisions(self) -> Likelihood:
        """The model that decisions searching over runs minimise (the GP left out; curvature kept)."""
        return dataclasses.replace(self, discrepancy=self.discrepancy.for_decisions())

    def without_discrepancy(self) -> Likelihood:
        """The same noise around the plain law."""
        return dataclasses.replace(self, discrepancy=NoDiscrepancy())

    @property
    def param_names(self) -> tuple[str, ...]:
        """The noise model's own parameters: ``sigma``, and ``nu`` when it is estimated."""
        return ("sigma", "nu") if self.estimates_nu else ("sigma",)

    def param_docs(self, law: Law) -> dict[str, str]:
        """One-line meaning of the noise's parameters and the discrepancy's (reported for ``law``)."""
        docs = {
            "sigma": "noise: sd of log loss (about the relative error of one run's loss)",
            "nu": "noise: Student-t degrees of freedom",
        }
        return {**docs, **self.discrepancy.param_docs(law)}

    @property
    def estimates_nu(self) -> bool:
        """Whether the Student-t degrees of freedom are a parameter of the model."""
        return self.family == "student_t" and self.df is None

    @property
    def prior_names(self) -> tuple[str, ...]:
        """Parameter names a prior override may use here: the noise's and the discrepancy's."""
        return (*NOISE_PARAMS, *self.discrepancy.prior_fields)

    def priors(self) -> dict[str, Prior]:
        """The prior of every parameter of the noise and the discrepancy that has one."""
        found = {"sigma": Prior.parse(self.sigma_prior), "nu": Prior.parse(self.nu_prior)}
        for noise, stored in self.discrepancy.law_noise_names().items():
            found[stored] = found[noise]
        return {**found, **self.discrepancy.priors()}

    def with_priors(self, overrides: Mapping[str, str | Prior]) -> Likelihood:
        """Return a copy with the named priors (``sigma``, ``nu``, the discrepancy's) replaced."""
        noise = {
            f"{n}_prior": str(Prior.parse(str(p)))
            for n, p in overrides.items()
            if n in NOISE_PARAMS
        }
        other = {n: p for n, p in overrides.items() if n not in NOISE_PARAMS}
        discrepancy = self.discrepancy.with_priors(other) if other else self.discrepancy
        return dataclasses.replace(self, **noise, discrepancy=discrepancy)

    def noise_distribution(self, mu: Any, sigma: Any, nu: Any) -> Any:
        """Distribution of log loss around log mean ``mu``: Student-t(``nu``) or Normal, scale ``sigma``."""
        import numpyro.distributions as dist

        if self.family == "normal":
            return dist.Normal(mu, sigma)
        return dist.StudentT(nu, mu, sigma)

    def noise_draws(self, seed: int, sigma: Any, nu: Any, shape: tuple[int, ...]) -> Any:
        """Draws of the noise on log loss (centred), ``shape``; ``sigma``, ``nu`` broadcast to it.

        The same distribution as :meth:`noise_distribution`, drawn with NumPy: a compiled
        Student-t sampler (Gamma rejection loops) cost seconds of compile per command.
        """
        import numpy as np

        rng = np.random.default_rng(seed)
        sigma = np.broadcast_to(sigma, shape)
        if self.family == "normal":
            return sigma * rng.standard_normal(shape)
        return sigma * rng.standard_t(np.broadcast_to(nu, shape))

    def log_mean(
        self,
        law: Law,
        params: Mapping[str, Any],
        log_inputs: Mapping[str, Any],
        log_ref: Mapping[str, Any],
    ) -> Any:
        """The model's log mean in JAX, the law's plus the discrepancy's term (traceable).

        ``log_ref`` (scalar per input) is the centre of the fitted runs' log inputs, plus what
        the discrepancy took from them. Arrays broadcast as in ``Law.log_mean``.
        """
        return law.log_mean(params, log_inputs) + self.discrepancy.term(
            law, params, log_inputs, log_ref
        )

    def numpy_log_mean(
        self,
        law: Law,
        params: Mapping[str, Any],
        log_inputs: Mapping[str, Any],
        log_ref: Mapping[str, Any],
        *,
        xp: Any = None,
    ) -> Any:
        """The model's log mean, the law's plus the discrepancy's term, computed in NumPy.

        As :meth:`log_mean`, to rounding, for one-off evaluations outside a JAX program
        (predictions, the searches of ``plan`` and ``optimal``): nothing to trace or compile.
        ``xp=scalebayes.jets`` carries derivatives along seeded inputs (the GP's term has none:
        decisions that search leave it out).
        """
        if xp is None:
            import numpy as xp

        params = {name: xp.asarray(value) for name, value in params.items()}
        log_inputs = {name: xp.asarray(value) for name, value in log_inputs.items()}
        term = self.discrepancy.numpy_term(law, params, log_inputs, log_ref)
        return xp.asarray(law.log_mean(params, log_inputs, xp=xp) + term)

    def noise_cdf(self, x: Any, sigma: Any, nu: Any) -> Any:
        """P(noise on log loss <= ``x``): the CDF of :meth:`noise_distribution` centred at 0.

        In NumPy (SciPy's ``stdtr``/``ndtr``); arguments broadcast. ``nu`` is ignored unless
        estimated (:attr:`estimates_nu`); the fixed ``df`` is used otherwise.
        """
        from scipy.special import ndtr, stdtr

        if self.family == "normal":
            return ndtr(x / sigma)
        return stdtr(nu if self.estimates_nu else self.df, x / sigma)

    def location_information(self, sigma: Any, nu: Any) -> Any:
        """Fisher information one run carries about its log mean (traceable; arguments broadcast).

        1 / sigma^2 for Normal noise, (nu + 1) / ((nu + 3) sigma^2) for Student-t(nu).
        """
        if self.family == "normal":
            return 1.0 / sigma**2
        return (nu + 1.0) / ((nu + 3.0) * sigma**2)

    def observe(self, mu: Any, sigma: Any, nu: Any, data: Any) -> None:
        """Inside a NumPyro model: condition on ``data.log_loss`` (weight 0 leaves a run out)."""
        import jax.numpy as jnp
        import numpyro

        counted = data.weight > 0
        with (
            numpyro.plate("run", mu.shape[-1]),
            numpyro.handlers.mask(mask=counted),
            numpyro.handlers.scale(scale=jnp.where(counted, data.weight, 1.0)),
        ):
            numpyro.sample("log_loss", self.noise_distribution(mu, sigma, nu), obs=data.log_loss)

    def log_density(self, mu: Any, params: Mapping[str, Any], log_loss: Any) -> Any:
        """Log density of each loss on the loss scale: ``log p(log loss) - log loss``."""
        nu = params["nu"] if self.estimates_nu else self.df
        return self.noise_distribution(mu, params["sigma"], nu).log_prob(log_loss) - log_loss

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable description (stored with every fit)."""
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                "discrepancy": self.discrepancy.to_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Likelihood:
        """Rebuild from :meth:`to_dict`; reads the older layout (``gp_amplitude_prior`` beside)."""
        fields = dict(stored)
        discrepancy = from_dict(fields.pop("discrepancy", "auto"))
        for old, name in (("gp_amplitude_prior", "gp_amplitude"), ("curvature_prior", "curvature")):
            prior = fields.pop(old, None)
            if prior is not None and name in discrepancy.prior_fields:
                discrepancy = discrepancy.with_priors({name: prior})
        return cls(**fields, discrepancy=discrepancy)


def model_param_names(law: Law, likelihood: Likelihood) -> tuple[str, ...]:
    """Every parameter a fit reports: the law's, the noise's (``sigma``, ``nu``) and the discrepancy's."""
    likelihood = likelihood.for_law(law)
    noise = likelihood.param_names
    return (*law.param_names, *noise, *likelihood.discrepancy.param_names(law, noise))


def reported_param_names(law: Law, likelihood: Likelihood) -> tuple[str, ...]:
    """The parameters summaries and plots show: :func:`model_param_names` less the hidden ones."""
    likelihood = likelihood.for_law(law)
    hidden = set(likelihood.discrepancy.hidden_names(law))
    return tuple(n for n in model_param_names(law, likelihood) if n not in hidden)


def param_docs(law: Law, likelihood: Likelihood) -> dict[str, str]:
    """One-line meaning of every reported parameter: the law's, the noise's, the discrepancy's."""
    docs = {name: p.doc for name, p in law.params.items()}
    return {**docs, **likelihood.param_docs(law)}
