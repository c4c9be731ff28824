"""The Gaussian-process discrepancy: what the law misses, and uncertain beyond the data.

``GP()`` adds to the law's log mean a smooth function of the law's log inputs plus a quadratic
in them (:mod:`scalebayes.discrepancy.hsgp` builds the basis): near the runs the GP follows what
the law misses; beyond them the GP's spread stops at its amplitude and the quadratic's keeps
growing with the square of the distance, as a law's shape error does. It is two modules that
do not feed back (Plummer 2015, "cutting feedback"), sampled apart in two stages:

1. the law alone, with its own noise scale ``sigma_law``: the law's parameters, and so the
   compute-optimal allocation, get exactly the posterior the plain law gives (same sampler,
   same seed, same draws);
2. the GP (and the quadratic) and ``sigma`` on what the law's posterior mode misses: log loss ~
   law(mode) + GP, ~15 leapfrog steps of a 39-column matrix product.

The modules share no parameter, so the joint posterior is the product of the two and chain k's
draw i of one pairs with chain k's draw i of the other. Predictions add the two, law(draw) +
GP(draw); decisions that search over runs (``optimal``, ``plan``) use the law alone
(:meth:`GP.for_decisions`): decades away the GP is a random wiggle of up to its amplitude, and
an argmin along a shallow isoFLOP curve would follow the wiggle, not the data.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, override

import numpy as np

from scalebayes.discrepancy import hsgp, whitening
from scalebayes.discrepancy.base import Block, Discrepancy, RunStage, Sites, Stage, TableSet
from scalebayes.discrepancy.none import NoDiscrepancy
from scalebayes.errors import ExtrapolationWarning, LawError
from scalebayes.laws import Law
from scalebayes.priors import Prior
from scalebayes.retry import careful, sample_carefully
from scalebayes.runtime import compiled

RAW_SITE = "_gp_raw"  # the GP's standardised basis weights, one vector site
# How the GP module's weights are sampled: "whitened" (the default), "centred" (a retry) and
# "non_centred" (the default before whitening; kept for benchmarks/gp_geometry.py).
FORMS = ("whitened", "centred", "non_centred")
WHITENING_SITE = "_gp_whitening"  # the whitened weights' prior and Jacobian
WEIGHTS_SITE = "gp_weights"  # the weights, scaled: the join reports them as gp_w0, gp_w1, ...
# With non-centred weights, at target_accept 0.8 the GP module diverged once in 24 fits of
# simulated ladders (1 of 48000 transitions), at 0.95 never. Whitened, neither diverges (10.7
# and 15.2 leapfrog steps per draw); 0.95 is kept for tables whose GP the ladders do not
# resemble, at ~4 more steps of a cheap gradient (benchmarks/gp_geometry.py).
TARGET_ACCEPT = 0.95
# No cap on the GP module's tree depth during warmup (the option profile.py uses): on Epoch's
# runs at 4 x 1000, seeds 0-9, caps of 2^4, 2^5 and 2^6 steps left 5, 8 and 8 fits of 10 healthy
# (no cap: 10), and on 24 simulated ladders at 4 x 500 none did better than no cap (23 of 24);
# 2^4 quadrupled the steps per draw there (benchmarks/gp_geometry.py, warmup_depth).
WARMUP_TREE_DEPTH: int | None = None
LAW_MODULE_NAMES = {"sigma": "sigma_law", "nu": "nu_law"}
"""How the law module's noise parameters are reported (the GP module's keep the plain names)."""


@dataclass(frozen=True)
class GP(Discrepancy):
    """Gaussian-process discrepancy in the law's log inputs, sampled apart from the law."""

    # LogNormal(log 0.01, 0.75): median 1 % of the loss, 95 % in [0.2 %, 4 %]; held-out errors of
    # the plain law on the public ladders are 0.3-2 % (benchmarks/results/backtest.json). It keeps
    # away from 0 (no law is exact) and lets the data push it up: Epoch's runs give ~0.07.
    amplitude_prior: str = "LogNormal(loc=-4.6, scale=0.75)"
    # The quadratic beside the GP (hsgp.py): the sd of each coefficient of the projected products
    # of the centred log inputs, in log loss per ln-unit squared (None: the GP alone). Along the
    # compute-optimal ray, k ln-units of C from the runs' centre, the prior sd of the bend is
    # sqrt(3) * scale * k**2 / 4: at 0.002, 0.5 % one decade away, 1.8 % two, 4.1 % three; the
    # known-truth bend of benchmarks/discrepancy_truth.py (2 % at two decades) is within one sd.
    # A fixed scale: with a scale of its own to learn (LogNormal around 0.002) the amplitude and
    # that scale traded off, and 38 of 54 backtest fits were unhealthy at 4 x 500 draws (20 with
    # the fixed scale, 6 with the GP alone). With it, on 9 public tables' top one and two budgets
    # held out, pooled 90 % coverage went from 82.9 % to 88.2 % and the mean 90 % interval score
    # from 0.0370 to 0.0310; on an exact law (known truth) the interval score rose from 0.0238 to
    # 0.0283, on a bent one it fell from 0.0340 to 0.0284 (benchmarks/backtest.py,
    # discrepancy_truth.py). At 0.005 (the default since the weights were whitened; before, its
    # GP module diverged at large amplitudes on 2 of 9 public tables) the bend's prior sd is
    # 1.1 % one decade away, 4.6 % two; against 0.002 on the same 18 cuts, whitened, the mean
    # interval score fell from 0.0313 to 0.0280 (better on 17), pooled coverage rose from 88.4 %
    # to 94.2 %, all 54 fits healthy; where the law is exact (known truth) the score rose 2-5 %
    # (benchmarks/results/*_quadratic_scale_whitened.json; README "The default's quadratic").
    # The GP and the quadratic can both follow a curvature on the runs:
    # with non-centred weights this module took ~27 leapfrog steps per iteration instead of 15;
    # whitened (whitening.py), 15 either way.
    curvature_scale: float | None = 0.005

    name = "gp"
    summary = (
        "a Gaussian process and a quadratic for what the law misses, sampled apart from the "
        "law: intervals that widen beyond the runs, the law's own allocation"
    )
    prior_fields: ClassVar[Mapping[str, str]] = {"gp_amplitude": "amplitude_prior"}

    def __post_init__(self) -> None:
        Prior.parse(self.amplitude_prior)
        scale = self.curvature_scale
        if scale is not None and not (isinstance(scale, int | float) and 0 < scale < np.inf):
            raise LawError(f"GP curvature_scale must be a positive number or None, not {scale!r}")

    @override
    @classmethod
    def from_stored(cls, fields: Mapping[str, Any]) -> Discrepancy:
        # Fits saved before the quadratic existed have no curvature_scale: they had none.
        return cls(**{"curvature_scale": None, **fields})

    @property
    def quadratic(self) -> bool:
        """Whether the discrepancy has the quadratic beside the GP."""
        return self.curvature_scale is not None

    @override
    def check(self, law: Law) -> None:
        hsgp.check_inputs(law.inputs)

    @override
    def for_decisions(self) -> Discrepancy:
        return NoDiscrepancy()

    @override
    def for_groups(self, law: Law) -> Discrepancy:
        raise LawError(
            f"the {self.name!r} discrepancy is sampled apart from the law, which a grouped fit "
            "cannot do: use 'quadratic' (the grouped default: curvature the groups pool) or "
            "'none' (CLI: --discrepancy quadratic)"
        )

    # --- parameters -------------------------------------------------------------------------

    @override
    def param_names(self, law: Law, noise: Sequence[str]) -> tuple[str, ...]:
        law_noise = tuple(LAW_MODULE_NAMES[n] for n in noise)
        return (*law_noise, "gp_amplitude", *hsgp.weight_names(law.inputs, self.quadratic))

    @override
    def hidden_names(self, law: Law) -> tuple[str, ...]:
        return hsgp.weight_names(law.inputs, self.quadratic)

    @override
    def param_docs(self, law: Law) -> dict[str, str]:
        return {
            "sigma": "noise: sd of log loss around the law plus the GP",
            "sigma_law": "the law alone: sd of log loss around it (the GP's noise is sigma)",
            "nu_law": "the law alone: Student-t degrees of freedom",
            "gp_amplitude": "GP discrepancy: sd in log loss of what the law misses",
        }

    # --- the reference and the table's arrays ------------------------------------------------

    @override
    def reference(
        self,
        law: Law,
        log_inputs: Mapping[str, Any],
        centre: Mapping[str, Any],
        counted: Any,
        plain_mode: Callable[[], Mapping[str, Any]],
    ) -> dict[str, Any]:
        import jax.numpy as jnp

        found = hsgp.reference(law, log_inputs, centre, counted, plain_mode(), self.quadratic)
        return {name: jnp.asarray(value) for name, value in found.items()}  # fit's precision

    @override
    def table_arrays(
        self, law: Law, log_inputs: Mapping[str, Any], ref: Mapping[str, Any]
    ) -> dict[str, Any]:
        import jax.numpy as jnp

        # In NumPy, once per table: nothing to compile; the sampler gets them in its precision.
        ref = {name: np.asarray(value, dtype=float) for name, value in ref.items()}
        inputs = {name: np.asarray(log_inputs[name], dtype=float) for name in law.inputs}
        law_at_mode = law.log_mean(hsgp.mode(law, ref), inputs, xp=np)
        return {
            "gp_basis": jnp.asarray(hsgp.numpy_basis(law, inputs, ref)),
            "law_at_mode": jnp.asarray(law_at_mode),
        }

    @override
    def term(
        self,
        law: Law,
        params: Mapping[str, Any],
        log_inputs: Mapping[str, Any],
        ref: Mapping[str, Any],
    ) -> Any:
        return hsgp.term(law, params, log_inputs, ref)

    @override
    def numpy_term(
        self,
        law: Law,
        params: Mapping[str, Any],
        log_inputs: Mapping[str, Any],
        ref: Mapping[str, Any],
    ) -> Any:
        return hsgp.numpy_term(law, params, log_inputs, ref)

    @override
    def check_points(self, law: Law, log_inputs: Mapping[str, Any], ref: Mapping[str, Any]) -> None:
        far = hsgp.outside(law.inputs, log_inputs, ref)
        if far.any():
            warnings.warn(
                f"{int(far.sum())} of {far.size} points lie more than {hsgp.BOX / 2:g} half-spans "
                "of the fitted runs from their centre (in log N or log D): there the GP "
                "discrepancy's approximation stops widening the interval"
                + (" (its quadratic goes on)" if self.quadratic else ", which is then too narrow"),
                ExtrapolationWarning,
                stacklevel=4,
            )

    # --- sampling in two stages -------------------------------------------------------------

    @override
    def sample_posterior(
        self, law: Law, likelihood: Any, tables: TableSet, key: Any, run_stage: RunStage
    ) -> tuple[list[Block], float, int]:
        import jax

        # Stage 1 sees the plain law's data, without the GP's arrays and reference entries, so
        # it is the plain law's compiled sampler and draws. Both stages' programs compile in
        # the background from the start: the law's while the GP's reference is searched for
        # (L-BFGS, one core), the GP's while the law's compile ends and its chains run. Measured
        # on 2 idle cores, cold default fit of Epoch's runs, 3 fresh processes each: mean 20.3 s
        # (19.8-21.2) compiling each stage when it was reached, 18.8 s (18.0-20.3) this way;
        # CPU time the same, ~31 s, so the gain is cores that idled.
        law_stage = Stage("law", likelihood.without_discrepancy(), pooled_warmup=True)
        run_stage.prepare(law_stage, tables.plain)
        full = [self.with_whitening(law, table) for table in tables.full()]
        gp_stage = self._stage(law, likelihood, "whitened")
        run_stage.prepare(gp_stage, full)
        law_blocks, law_compile, devices = sample_carefully(
            lambda stage: run_stage(stage, tables.plain, key, (0, 2)),
            law_stage,
            extend=lambda stage, scale: run_stage.extend(stage, scale),
        )
        gp_key = jax.random.fold_in(key, 1)
        centred_stage = self._stage(law, likelihood, "centred")

        def gp_run(stage: Stage) -> tuple[list[Block], float, int]:
            blocks, seconds, n = run_stage(stage, full, gp_key, (1, 2))
            return _tagged(blocks, centred=stage is centred_stage), seconds, n

        # Should the whitened module fail the checks, it is continued (scalebayes.retry), then
        # sampled in the centred form, then whitened once more, more carefully. Health decides,
        # not divergences alone: a centred retry with fewer divergences but R-hat 1.19 and bulk
        # ESS 16 is worse.
        gp_blocks, gp_compile, _ = sample_carefully(
            gp_run,
            gp_stage,
            extend=lambda stage, scale: _tagged(run_stage.extend(stage, scale), centred=False),
            retries=(centred_stage, careful(gp_stage)),
        )
        blocks = [
            self._join(law, likelihood, table, law_block, gp_block)
            for table, law_block, gp_block in zip(full, law_blocks, gp_blocks, strict=True)
        ]
        return blocks, law_compile + gp_compile, devices

    def with_whitening(self, law: Law, table: Any) -> Any:
        """``table`` with the whitened weights' arrays in its ``extra`` (whitening.py)."""
        import jax.numpy as jnp

        extra = table.extra
        arrays = whitening.table_arrays(
            basis=np.asarray(extra["gp_basis"]),
            weight=np.asarray(table.weight),
            left=np.asarray(table.log_loss) - np.asarray(extra["law_at_mode"]),
            gp_scale=hsgp.numpy_spectral_scale(len(law.inputs)),
            quadratic_scale=self.curvature_scale,
        )
        dtype = extra["gp_basis"].dtype  # the fit's precision
        more = {name: jnp.asarray(value, dtype=dtype) for name, value in arrays.items()}
        return table._replace(extra={**extra, **more})

    def _stage(self, law: Law, likelihood: Any, form: str) -> Stage:
        """The GP module's stage with its weights in ``form`` (one of :data:`FORMS`)."""
        if form not in FORMS:
            raise ValueError(f"GP weights' form must be one of {FORMS}, not {form!r}")
        return Stage(
            key="gp" if form == "whitened" else f"gp_{form}",
            likelihood=likelihood,
            model=functools.partial(_gp_model, law, likelihood, self, form),
            sites=self._sites(law, likelihood),
            min_target_accept=TARGET_ACCEPT,
            label="GP" if form == "whitened" else f"GP {form} retry",
            warmup_tree_depth=WARMUP_TREE_DEPTH,
            pooled_warmup=form == "whitened",  # a retry adapts chain by chain
        )

    def _sites(self, law: Law, likelihood: Any) -> Sites:
        sites: Sites = {
            name: (Prior.parse(getattr(likelihood, f"{name}_prior")), ())
            for name in likelihood.param_names
        }
        sites["gp_amplitude"] = (Prior.parse(self.amplitude_prior), ())
        standard = Prior.parse("Normal(loc=0, scale=1)")
        sites[RAW_SITE] = (standard, (len(hsgp.weight_names(law.inputs, self.quadratic)),))
        return sites

    def _join(
        self, law: Law, likelihood: Any, table: Any, law_block: Block, gp_block: Block
    ) -> Block:
        """One table's draws of both modules as one posterior, with each run's log-likelihood.

        Sample stats join as a sum over the modules where they add (leapfrog steps, log density,
        energy), either module where one counts for both (a divergence, a draw at the maximum
        depth, and whether a module was continued or sampled again:
        :func:`scalebayes.retry.sample_carefully`), and the law module's step size and
        acceptance rate; the GP module's are kept as ``gp_*``, and ``gp_centred`` says whether
        the GP module's kept run was sampled centred.
        """
        (law_draws, law_stats), (gp_draws, gp_stats) = law_block, gp_block
        samples = {LAW_MODULE_NAMES.get(k, k): v for k, v in law_draws.items() if k != "_log_lik"}
        weights = gp_draws.pop(WEIGHTS_SITE)
        samples.update(gp_draws)
        samples.update(
            {
                name: weights[..., k]
                for k, name in enumerate(hsgp.weight_names(law.inputs, self.quadratic))
            }
        )
        log_lik = compiled(_pointwise_log_lik, law, likelihood)(samples, table)
        samples["_log_lik"] = np.asarray(log_lik)
        stats = {
            "diverging": law_stats["diverging"] | gp_stats["diverging"],
            "reached_max_treedepth": law_stats["reached_max_treedepth"]
            | gp_stats["reached_max_treedepth"],
            "tree_depth": np.maximum(law_stats["tree_depth"], gp_stats["tree_depth"]),
            "n_steps": law_stats["n_steps"] + gp_stats["n_steps"],
            "lp": law_stats["lp"] + gp_stats["lp"],
            "energy": law_stats["energy"] + gp_stats["energy"],
            "acceptance_rate": law_stats["acceptance_rate"],
            "step_size": law_stats["step_size"],
        }
        for name in ("diverging", "n_steps", "acceptance_rate", "step_size"):
            stats[f"gp_{name}"] = gp_stats[name]
        stats["gp_centred"] = gp_stats["gp_centred"]
        shape = gp_stats["diverging"].shape
        for flag in ("retried", "retry_kept", "smaller_steps"):
            stats[flag] = law_stats.get(flag, np.zeros(shape, bool)) | gp_stats[flag]
        # Continuations of a slow run: the longer of the two modules'.
        stats["extended"] = np.maximum(law_stats.get("extended", 0), gp_stats["extended"])
        return samples, stats

    @override
    def law_noise_names(self) -> dict[str, str]:
        return dict(LAW_MODULE_NAMES)


@dataclass(frozen=True)
class GPAlone(GP):
    """The GP without its quadratic: its spread stops growing beyond the runs.

    Beyond the runs its spread stops at the GP's amplitude and box, so its intervals there are
    narrower: on the public backtests 82.9 % pooled coverage against the default's 94.2 %, but
    the better interval score where the law is exact (benchmarks/backtest.py,
    discrepancy_truth.py).
    """

    curvature_scale: float | None = None

    name = "gp_alone"
    summary = "the GP without its quadratic: its spread stops growing beyond the runs"


def _gp_model(law: Law, likelihood: Any, gp: GP, form: str, data: Any) -> None:
    """The GP module: the GP and ``sigma`` on what the law's mode misses.

    log loss ~ law(mode) + GP, with ``law_at_mode`` and ``gp_basis`` computed once per table
    (:meth:`GP.table_arrays`), and for the whitened ``form`` the arrays of
    :meth:`GP.with_whitening`.
    """
    import numpyro
    import numpyro.distributions as dist

    sigma = numpyro.sample("sigma", Prior.parse(likelihood.sigma_prior).to_numpyro())
    nu = (
        numpyro.sample("nu", Prior.parse(likelihood.nu_prior).to_numpyro())
        if likelihood.estimates_nu
        else likelihood.df
    )
    amplitude = numpyro.sample("gp_amplitude", Prior.parse(gp.amplitude_prior).to_numpyro())
    import jax.numpy as jnp

    size = len(hsgp.weight_names(law.inputs, gp.quadratic))
    scale = amplitude * hsgp.spectral_scale(len(law.inputs))
    if gp.curvature_scale is not None:
        pairs = len(hsgp.quadratic_pairs(law.inputs))
        scale = jnp.concatenate([scale, jnp.full(pairs, gp.curvature_scale, scale.dtype)])
    standard = dist.Normal(0.0, 1.0).expand([size]).to_event(1)
    if form == "centred":
        weights = numpyro.sample(RAW_SITE, dist.Normal(0.0, scale).to_event(1))
    elif form == "non_centred":
        weights = scale * numpyro.sample(RAW_SITE, standard)
    else:
        # Whitened (whitening.py): the sampler moves the weights in units of their conditional
        # posterior given the amplitude and the noise, so neither a weak signal (a funnel for
        # centred weights) nor a strong one (for non-centred weights) bends its path.
        z = numpyro.sample(RAW_SITE, standard)
        information = likelihood.location_information(sigma, nu)
        raw, log_jacobian = whitening.raw_weights(z, amplitude, information, data.extra)
        # the weights' prior at raw, less z's own (both Normal(0, 1): the constants cancel)
        numpyro.factor(WHITENING_SITE, 0.5 * (z @ z - raw @ raw) + log_jacobian)
        weights = scale * raw
    numpyro.deterministic(WEIGHTS_SITE, weights)  # one vector: the join names its entries
    mu = data.extra["law_at_mode"] + data.extra["gp_basis"] @ weights
    likelihood.observe(mu, sigma, nu, data)


def _pointwise_log_lik(law: Law, likelihood: Any, params: Mapping[str, Any], data: Any) -> Any:
    """Each run's log density (loss scale) for draws of shape P (no run axis): shape P + (n,).

    It uses the basis computed for the table, so that the (P, n, K) product of weights and
    basis is never formed.
    """
    import jax.numpy as jnp

    per_run = {k: jnp.asarray(v)[..., None] for k, v in params.items()}
    quadratic = data.extra["gp_basis"].shape[-1] > hsgp.BASIS ** len(law.inputs)
    weights = hsgp.stacked_weights(law.inputs, params, quadratic)
    mu = law.log_mean(per_run, data.log_inputs) + weights @ data.extra["gp_basis"].T
    return likelihood.log_density(mu, per_run, data.log_loss)


def _tagged(blocks: list[Block], *, centred: bool) -> list[Block]:
    """The GP module's blocks, their stats saying whether they were sampled centred."""
    return [
        (draws, {**stats, "gp_centred": np.full(np.shape(stats["diverging"]), centred)})
        for draws, stats in blocks
    ]
