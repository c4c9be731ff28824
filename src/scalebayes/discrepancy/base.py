"""The interface every discrepancy implements: what a law misses, as a term in the log mean.

A discrepancy owns its sample sites and priors, its term in the log mean, the reference it
takes from the fitted runs, how it is sampled (jointly with the law, or in stages), and whether
decisions that search over runs include it. The model, the engine and the decisions ask it;
none of them switches on its name. A new discrepancy is one module with a subclass of
:class:`Discrepancy`, registered in :mod:`scalebayes.discrepancy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from scalebayes.errors import LawError
from scalebayes.laws import Law
from scalebayes.priors import Prior
from scalebayes.retry import sample_carefully

Sites = dict[str, tuple[Prior | None, tuple[int, ...]]]
"""Sampled sites: name -> (prior, or None for a site the model gives its own density; shape)."""

Block = tuple[dict[str, Any], dict[str, Any]]
"""One table's draws and sample stats, arrays with leading dims (chain, draw)."""


class NoiseModel(Protocol):
    """What a discrepancy may ask of the observation model (:class:`scalebayes.Likelihood`)."""

    sigma_prior: str
    nu_prior: str
    df: float | None

    @property
    def param_names(self) -> tuple[str, ...]:
        """The noise's own parameters (``sigma``, maybe ``nu``)."""

    @property
    def estimates_nu(self) -> bool:
        """Whether ``nu`` is a parameter."""

    def observe(self, mu: Any, sigma: Any, nu: Any, data: Any) -> None:
        """Inside a NumPyro model: condition on the table's log losses around ``mu``."""

    def log_density(self, mu: Any, params: Mapping[str, Any], log_loss: Any) -> Any:
        """Each loss's log density (loss scale) around ``mu``."""

    def without_discrepancy(self) -> Any:
        """The same noise around the plain law."""


@dataclass(frozen=True)
class Stage:
    """One NUTS run of a model sampled in stages.

    ``model`` is a NumPyro model of one argument (the table's ``ModelData``), or None for the
    law's own model under ``likelihood``; ``sites`` its sampled sites (None: the law's); the
    stage samples at a target acceptance of at least ``min_target_accept`` (and with trees of at
    most ``warmup_tree_depth`` levels during warmup, if set, and ``warmup_factor`` times the
    settings' warmup). ``key`` names the
    stage in the engine's cache of compiled samplers, ``label`` in the progress bar.
    """

    key: str
    likelihood: Any
    model: Callable[[Any], None] | None = None
    sites: Sites | None = None
    min_target_accept: float = 0.0
    label: str = "law"  # what the progress bar calls it
    # A cap on NUTS's tree depth during warmup only (None: the settings' max_tree_depth
    # throughout), for models whose first warmup iterations, before the mass matrix adapts,
    # would otherwise run at the maximum depth.
    warmup_tree_depth: int | None = None
    # For a model of its own: how many additive terms its sites with no prior (logs of terms
    # at the reference point) share the loss among at the start point (the law's: its centrings).
    terms: int = 1
    # Warmup iterations as a multiple of the settings' (a careful retry doubles it:
    # :mod:`scalebayes.retry`).
    warmup_factor: int = 1
    # Whether warmup may pool the chains' mass-matrix statistics (scalebayes.pooled_warmup,
    # when the settings ask): set for the stages it was measured to help, the law's own model
    # and the GP's; a careful retry never pools.
    pooled_warmup: bool = False


class TableSet(Protocol):
    """The fitted tables' arrays, as the engine hands them to :meth:`Discrepancy.sample_posterior`.

    ``plain``: each table for the law alone (the centre as reference, no extra arrays);
    ``full()``: with this discrepancy's reference and arrays, computed on first call (the GP's
    takes an optimisation and compiles, which a staged sampler can overlap with other work).
    """

    plain: Sequence[Any]

    def full(self) -> Sequence[Any]:
        """Each table with the discrepancy's reference and arrays."""


class RunStage(Protocol):
    """The engine's runner of one stage."""

    def prepare(self, stage: Stage, tables: Sequence[Any]) -> None:
        """Start compiling ``stage``'s programs for ``tables`` in the background; returns at once.

        A later call of the runner on the same stage waits for them. Lets a staged model compile
        one stage while it prepares the next stage's tables or samples another stage.
        """

    def __call__(
        self, stage: Stage, tables: Sequence[Any], key: Any, slot: tuple[int, int]
    ) -> tuple[list[Block], float, int]:
        """Sample ``stage``: per table the draws and stats, compile wait (s), devices used.

        ``(index, count)`` places the stage in the progress bar.
        """

    def extend(self, stage: Stage, step_scale: float = 1.0) -> list[Block]:
        """The last run of ``stage``, its chains continued for as many draws again, per table.

        ``step_scale`` multiplies the step size warmup adapted (below 1 where the run diverged).
        """


@dataclass(frozen=True)
class Discrepancy:
    """Base class: no term at all. Subclasses override what they add.

    Subclasses are frozen dataclasses whose fields are their priors (strings parsed by
    :class:`~scalebayes.priors.Prior`), so a discrepancy is hashable and saved as its fields.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for --help and the fit's header
    prior_fields: ClassVar[Mapping[str, str]] = {}  # parameter name -> field holding its prior
    # Whether its term can make the loss rise again as D grows far from the data (a plan's
    # search then looks for the best D before the least one that reaches a target).
    term_can_rise: ClassVar[bool] = True

    # --- which discrepancy, and for which law ---------------------------------------------

    def resolve(self, law: Law) -> Discrepancy:
        """The discrepancy to use for ``law`` (``auto`` picks one; others return themselves)."""
        self.check(law)
        return self

    def check(self, law: Law) -> None:
        """Raise :class:`LawError` when this discrepancy cannot serve ``law``."""

    def for_groups(self, law: Law) -> Discrepancy:
        """The discrepancy a grouped fit uses in place of this one (its groups pool or share it).

        A grouped fit samples the discrepancy's sites inside its own model, so one sampled apart
        from the law (in stages) raises :class:`LawError`; by default this one, checked.
        """
        return self.resolve(law)

    def for_decisions(self) -> Discrepancy:
        """The discrepancy that decisions searching over runs (``optimal``, ``plan``) include."""
        return self

    @property
    def group_spread_name(self) -> str:
        """The reported spread of its coefficients across pooled groups (``quadratic_spread``)."""
        return f"{self.name}_spread"

    def group_scale(self, law: Law) -> float:
        """The prior sd of the coefficients, against which pooled groups' values spread.

        A grouped fit's ``Pooling(discrepancy="pooled")`` gives each group its own parameters
        around the population's at this scale times a learned spread; one whose parameters
        have no fixed scale raises :class:`LawError`.
        """
        raise LawError(
            f"the {self.name!r} discrepancy cannot be pooled over groups (no fixed prior scale "
            "for its coefficients): share it (--pool discrepancy=shared, "
            "Pooling(discrepancy='shared')), keep it separate, or use 'quadratic'"
        )

    def law_noise_names(self) -> dict[str, str]:
        """Where a fit keeps the noise of the decisions' model, if renamed (``sigma_law``).

        Set by a discrepancy sampled apart from the law, whose module has a noise of its own.
        """
        return {}

    # --- parameters -----------------------------------------------------------------------

    def param_names(self, law: Law, noise: Sequence[str]) -> tuple[str, ...]:
        """Posterior variables this discrepancy adds to a fit whose noise has ``noise`` params."""
        return ()

    def hidden_names(self, law: Law) -> tuple[str, ...]:
        """Of :meth:`param_names`, those too many to summarise (e.g. basis weights)."""
        return ()

    def param_docs(self, law: Law) -> dict[str, str]:
        """One-line meaning of each reported parameter this discrepancy adds."""
        return {}

    def priors(self) -> dict[str, Prior]:
        """The prior of each parameter that has one of its own, by name."""
        return {name: Prior.parse(getattr(self, f)) for name, f in self.prior_fields.items()}

    def with_priors(self, overrides: Mapping[str, str | Prior]) -> Discrepancy:
        """Return a copy with the named priors replaced (names from :attr:`prior_fields`)."""
        unknown = [name for name in overrides if name not in self.prior_fields]
        if unknown:
            raise LawError(f"the {self.name!r} discrepancy has no parameter(s) {unknown}")
        changes = {self.prior_fields[n]: str(Prior.parse(str(p))) for n, p in overrides.items()}
        return dataclasses.replace(self, **changes)

    # --- the model --------------------------------------------------------------------------

    def sites(self, law: Law) -> Sites:
        """Sites this discrepancy samples inside the law's model (a jointly sampled one)."""
        return {}

    def sample(self, law: Law, values: dict[str, Any]) -> None:
        """Inside the NumPyro model: sample this discrepancy's sites into ``values``."""

    def term(
        self,
        law: Law,
        params: Mapping[str, Any],
        log_inputs: Mapping[str, Any],
        ref: Mapping[str, Any],
    ) -> Any:
        """Its term in the log mean at ``log_inputs``; broadcasts as ``Law.log_mean``."""
        return 0.0

    def table_term(self, law: Law, params: Mapping[str, Any], data: Any) -> Any:
        """Its term at a fitted table's own runs, inside a model (``data``: the table's ModelData).

        By default :meth:`term` at the table's inputs; a discrepancy whose term at the runs is
        fixed arrays times its parameters reads them from :meth:`table_arrays` instead.
        """
        return self.term(law, params, data.log_inputs, data.log_ref)

    def numpy_term(
        self,
        law: Law,
        params: Mapping[str, Any],
        log_inputs: Mapping[str, Any],
        ref: Mapping[str, Any],
    ) -> Any:
        """:meth:`term` on NumPy arrays, outside any JAX program (one-off predictions).

        By default :meth:`term` itself, whose arithmetic serves NumPy arrays as it is.
        """
        return self.term(law, params, log_inputs, ref)

    def reference(
        self,
        law: Law,
        log_inputs: Mapping[str, Any],
        centre: Mapping[str, Any],
        counted: Any,
        plain_mode: Callable[[], Mapping[str, Any]],
    ) -> dict[str, Any]:
        """What it takes from the fitted runs, stored with the fit (keys start with ``_``).

        ``plain_mode()`` computes the plain law's posterior mode on those runs, if needed.
        """
        return {}

    def table_arrays(
        self, law: Law, log_inputs: Mapping[str, Any], ref: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Arrays computed once per fitted table for its sampler (``ModelData.extra``), one row per run."""
        return {}

    # --- sampling ---------------------------------------------------------------------------

    def sample_posterior(
        self, law: Law, likelihood: Any, tables: TableSet, key: Any, run_stage: RunStage
    ) -> tuple[list[Block], float, int]:
        """Sample the whole model: by default one stage, the law's model with this term in it.

        A table whose run fails the checks is continued or sampled once more, more carefully
        (:func:`scalebayes.retry.sample_carefully`).
        """
        full = tables.full()
        return sample_carefully(
            lambda stage: run_stage(stage, full, key, (0, 1)),
            Stage("law", likelihood, pooled_warmup=True),
            extend=lambda stage, scale: run_stage.extend(stage, scale),
        )

    # --- predictions ------------------------------------------------------------------------

    def beyond_data_note(self, law: Law) -> str | None:
        """What to tell a user about intervals beyond the fitted runs under this discrepancy."""
        return None

    def check_points(self, law: Law, log_inputs: Mapping[str, Any], ref: Mapping[str, Any]) -> None:
        """Warn (``ExtrapolationWarning``) about points where its term is not to be trusted."""

    @property
    def label(self) -> str:
        """Its name, with any field changed from the default: ``gp(curvature_scale=0.005)``."""
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.default is not dataclasses.MISSING and getattr(self, f.name) != f.default
        ]
        return f"{self.name}({', '.join(changed)})" if changed else self.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description: its name and prior fields."""
        return {"name": self.name, **dataclasses.asdict(self)}

    @classmethod
    def from_stored(cls, fields: Mapping[str, Any]) -> Discrepancy:
        """Rebuild from :meth:`to_dict`'s fields (less the name), as a saved fit holds them.

        A field missing from an older file takes its default; a subclass whose default has
        changed since says here what the older files meant.
        """
        return cls(**fields)
