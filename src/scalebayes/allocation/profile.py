"""The isoFLOP profile model of approach 2: each sweep's loss valley with a latent minimum.

Within a sweep of budget C_b, with u = log N, the loss is

    L(u) = L*_b + K_b g(u - x*_b; p, q),
    g(v) = (q e^{-p v} + p e^{q v} - p - q) / (p q (p + q)),

so g(0) = g'(0) = 0 and g''(0) = 1: ``L*_b`` is the sweep's least loss, ``K_b`` its curvature
in log N and ``x*_b`` where it sits. ``g`` is exactly the fixed-compute profile of
E + A N^-p + B D^-q with C = k N D, so valleys of Chinchilla's shape (steeper towards small
models when p > q) are fitted without the bias a symmetric parabola has (Czech et al. 2026);
its shape p, q is shared by the sweeps. The minima are latent and lie near a power law whose
exponent may drift with compute,
``x*_b = x_mid + a lc_b + (kappa / 2) lc_b^2 + eps_b``, ``eps_b ~ Normal(0, tau)``, with
``lc_b = log C_b - log C_ref`` (C_ref the sweeps' geometric mean budget): ``a`` is the exponent
at C_ref and ``kappa`` the change of the local exponent per e-fold of compute (absent when
``drift_prior`` is None: a straight power law). So a, kappa and every N*_b carry the
uncertainty of each sweep's minimum. The scatter tau is integrated out, in closed form under an
inverse-gamma prior on tau^2, and the residuals eps_b sampled in polar form
(:mod:`scalebayes.allocation.scatter`). With 3 sweeps or more their curvatures are pooled the
same way: log K_b near a line in log C (exact for a two-power law), its spread integrated out.
Log loss is observed with the likelihood's noise
(Student-t(4) by default). Everything is sampled non-centred around scales taken from the data
(each sweep's least observed loss, its curvature, where its least loss sits), so one compiled
sampler serves any table of the same shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scalebayes.allocation import scatter
from scalebayes.allocation.budgets import Budgets
from scalebayes.data import Runs
from scalebayes.discrepancy.base import Sites, Stage
from scalebayes.errors import ScalebayesError
from scalebayes.likelihood import Likelihood
from scalebayes.priors import Prior

if TYPE_CHECKING:  # JAX loads when the model is first built
    from scalebayes.model import ModelData

# Prior scales of the non-centred sites, in natural-log units. The sweep minima's line passes
# within e^{+-2} of where the sweeps' least losses sit; a sweep's least loss L*_b is within
# about 20 % of its least observed loss (it can only be lower, by what the grid misses); its
# curvature within a factor e^{+-2} of the rough estimate from its loss range.
X_SCALE = 1.0
# With fewer than scatter.POLAR_MIN_BUDGETS sweeps each minimum is sampled in its own
# coordinate, in steps of 0.05 in log N (its posterior sd is 0.02-0.13 on the public tables)
# from the sweep's best run, under a weak Normal(0, 2) there (a factor 7 either way) besides
# the curve's Student-t.
X_STAR_STEP = 0.05
X_STAR_SCALE = 2.0
LSTAR_SCALE = 0.1
CURVATURE_SCALE = 1.0
# With 3 sweeps or more the curvatures are pooled (``ProfileModel.curvature_prior``): log K_b
# lies near a line in log C, exactly so for a two-power law (at the optimum K = (alpha + beta)
# alpha A N*^-alpha, a power of C), and its spread around the line is integrated out as the
# minima's is. The line's level is within e^{+-2} of the sweeps' rough estimates at one sd, its
# slope within +-0.5 per e-fold (Chinchilla's law: -alpha beta / (alpha + beta) = -0.18). Each
# curvature's own site is then nearly flat (e^{+-10}): the pooled density is its prior. The
# rough estimate from a sweep's loss range is far off for sweeps seen from one side of their
# valley ((Mis)Fitting's smallest: 1.9 above its pooled posterior median, 1.9 prior sds),
# whose curvature then mixed slowly (bulk ESS 193, R-hat 1.022, seed 0) under its own prior.
POOLED_CURVATURE_MIN_BUDGETS = 3
K_LINE_SCALE = 2.0
K_SLOPE_SCALE = 0.5
CURVATURE_FREE_SCALE = 10.0
STANDARD = "Normal(loc=0.0, scale=1.0)"
# Sampling units (the priors above are unchanged by them): each raw site counts its quantity in
# steps of about one posterior sd, so the unconstrained posterior's sds are 0.08-3 (on Epoch's
# runs) instead of 0.003-1 with unit-prior raw sites.
STEP = {
    "a_raw": 0.02,
    "kappa_raw": 0.015,
    "x_mid_raw": 0.05,
    "l_star_raw": 0.005,
    "curvature_raw": 0.2,
    "k_line_raw": 0.1,
    "k_slope_raw": 0.05,
}
# "shared": one valley shape p, q for every sweep (exact for a two-power law); "per_budget":
# each sweep's shape partially pooled around it (spread ``shape_spread`` in log p, log q).
# Shared is the default, chosen by simulation (benchmarks/results/allocation_truth_shapes.json,
# 6 tables per cell, unit-scale raw sites): both held a and N* 100x beyond the sweeps in 12 of
# 12 exact-law tables; on a bent truth per_budget held N* in 10 of 12 against 8 of 12, no
# clear gain for 8-10x the sampling time (29-38 s against 3-4 s per fit).
SHAPES = ("shared", "per_budget")
# How approach 2 carries the drifting curve beyond the sweeps' range of budgets: "edge" goes on
# straight in log N*-log C with the local exponent at the nearest outer sweep (the drift is a
# local curvature estimate), "quadratic" carries the fitted quadratic on as if it were a law.
# Inside the range both are the fitted curve. Edge is the default: on the same 40 known-truth
# fits (benchmarks/results/allocation_truth_drift_edge.json, N* 100x beyond the sweeps) both held
# the truth 40 of 40 times, edge with 90 % intervals 1.27 wide in log N (median) against 1.72;
# in the allocation backtest both covered 24 of 27 held-out budgets (allocation_backtest_edge.json
# against the quadratic's run of allocation_backtest.py at commit 1be34a9). A truth that keeps
# bending as a quadratic is missed high.
EXTRAPOLATIONS = ("edge", "quadratic")
# How the minima are sampled (tau integrated out either way): "polar", the residuals from the
# curve as R z / |z| (the default; scatter's docstring), or "own", each minimum in its own
# coordinate (always so below scatter.POLAR_MIN_BUDGETS sweeps). Kept to reproduce the
# comparison in benchmarks/allocation_backtest.py (--minima).
MINIMA = ("polar", "own")
MIN_TARGET_ACCEPT = 0.9
# Warmup trees of at most 2^7 steps: before the mass matrix adapts, the first warmup iterations
# ran at depth 10. On Epoch's runs (25 sweeps, 2 chains x 500 + 500, same process and load):
# 7-8 s with the cap and the STEP units, 14-20 s with neither, 35-50 s with the units alone.
WARMUP_TREE_DEPTH = 7


@dataclass(frozen=True)
class ProfileModel:
    """Priors and noise of the isoFLOP profile model (prior strings as in law files).

    ``a_prior``: the allocation exponent of N* = G C^a (0.5 +- 0.25: from data-starved to
    parameter-starved). ``shape_prior``: each of the valley's exponents p, q, around 0.3 (the
    range published laws fit) with a factor of 1.8 either way at one sd; a pair gives p's and
    q's apart (e.g. :meth:`IsoflopFit.shape_as_prior` of other sweeps). ``scatter_prior``: the
    prior of tau^2, tau the spread of the sweeps' minima around the curve in log N; an
    InverseGamma, whose marginal is closed-form. ``curvature_prior``: likewise for the spread
    of the sweeps' log curvature around a line in log C (:data:`POOLED_CURVATURE_MIN_BUDGETS`);
    InverseGamma(1, 0.01) puts it at 12 % (median), 6-44 % (90 %); None gives each sweep's
    curvature its own prior around a rough estimate from its loss range, the model before
    pooling. The default InverseGamma(1, 0.001) of ``scatter_prior`` puts tau
    at 3.8 % (median), 1.8-14 % (90 %): sweeps trained apart miss a smooth curve by a few
    percent (the public tables read 1-11 % under a HalfNormal(0.1) on tau). In the allocation
    backtest (benchmarks/allocation_backtest.py, 27 held-out sweeps), before the curvatures
    were pooled, it covered 24 of 27 with intervals 0.30 wide in log N* (median) and 21 rows
    healthy (pooled since: 24, 0.29 and 22); the HalfNormal(0.1) on tau
    sampled before, 24 with 0.34 and 16; InverseGamma(2, 0.01), which keeps tau off zero
    (4.6-17 %), 23 with 0.42 and a larger median error (0.139 against 0.118).
    ``drift_prior``: kappa, the change of the local exponent d log N* / d log C per e-fold of
    compute (a Normal; None for a straight power law). Published exponents span ~0.45-0.75
    across setups and compute from ~1e17 to ~1e24 FLOPs (7 decades): a drift of that size is
    ~0.05 per decade, 0.02 per e-fold, taken as one sd around 0.
    ``minima``: ``"polar"`` (default) or ``"own"`` (:data:`MINIMA`).
    ``extrapolation``: how :meth:`IsoflopFit.optimal` carries the drifting curve beyond the
    sweeps' range of budgets: ``"edge"`` (default) straight on with the local exponent at the
    nearest outer sweep, ``"quadratic"`` the fitted quadratic in log C carried on as a law.
    Sampling is the same either way (it is not part of :attr:`key`).
    """

    a_prior: str = "Normal(loc=0.5, scale=0.25)"
    drift_prior: str | None = "Normal(loc=0.0, scale=0.02)"
    shape_prior: str | tuple[str, str] = "LogNormal(loc=-1.2, scale=0.6)"
    scatter_prior: str = "InverseGamma(concentration=1.0, rate=0.001)"
    curvature_prior: str | None = "InverseGamma(concentration=1.0, rate=0.01)"
    minima: str = "polar"
    shape: str = "shared"
    shape_spread_prior: str = "HalfNormal(scale=0.3)"
    likelihood: Likelihood = field(default_factory=lambda: Likelihood(discrepancy="none"))
    extrapolation: str = "edge"

    def __post_init__(self) -> None:
        for name in ("a_prior", "shape_spread_prior"):
            Prior.parse(getattr(self, name))
        for name in ("scatter_prior", "curvature_prior"):
            text = getattr(self, name)
            if text is not None and Prior.parse(text).family != "InverseGamma":
                raise ScalebayesError(
                    f"{name}={text!r}: expected InverseGamma(concentration=..., rate=...), the "
                    "prior of a spread's square (its marginal is what the sampler uses)"
                )
        self.shape_priors()
        for name in ("a_prior", "drift_prior"):
            text = getattr(self, name)
            if text is not None and Prior.parse(text).family != "Normal":
                raise ScalebayesError(
                    f"{name}={text!r}: expected Normal(loc=..., scale=...) or None"
                )
        if self.minima not in MINIMA:
            raise ScalebayesError(f"minima={self.minima!r}: expected one of {', '.join(MINIMA)}")
        if self.shape not in SHAPES:
            raise ScalebayesError(f"shape={self.shape!r}: expected one of {', '.join(SHAPES)}")
        if self.extrapolation not in EXTRAPOLATIONS:
            raise ScalebayesError(
                f"extrapolation={self.extrapolation!r}: expected one of {', '.join(EXTRAPOLATIONS)}"
            )

    @property
    def key(self) -> str:
        """Names the model for the engine's cache of compiled samplers (not its extrapolation)."""
        return f"isoflop:{dataclasses.replace(self, extrapolation=EXTRAPOLATIONS[0])!r}"

    def sites(self, n_budgets: int) -> Sites:
        """Every sampled site with its prior and shape."""
        standard = Prior.parse(STANDARD)

        def stepped(site: str, scale: float) -> Prior:  # prior sd ``scale`` in STEP units
            return Prior.parse(f"Normal(loc=0.0, scale={scale / STEP[site]!r})")

        a_scale = Prior.parse(self.a_prior).kwargs["scale"]
        sites: Sites = {
            "a_raw": (stepped("a_raw", a_scale), ()),
            "x_mid_raw": (stepped("x_mid_raw", X_SCALE), ()),
            **self._minima_sites(n_budgets),
            "p": (self.shape_priors()[0], ()),
            "q": (self.shape_priors()[1], ()),
            "l_star_raw": (stepped("l_star_raw", LSTAR_SCALE), (n_budgets,)),
        }
        if self.pools_curvature(n_budgets):
            sites["curvature_raw"] = (stepped("curvature_raw", CURVATURE_FREE_SCALE), (n_budgets,))
            sites["k_line_raw"] = (stepped("k_line_raw", K_LINE_SCALE), ())
            sites["k_slope_raw"] = (stepped("k_slope_raw", K_SLOPE_SCALE), ())
        else:
            sites["curvature_raw"] = (stepped("curvature_raw", CURVATURE_SCALE), (n_budgets,))
        if self.drift_prior is not None:
            sites["kappa_raw"] = (stepped("kappa_raw", self.drift_kwargs["scale"]), ())
        if self.shape == "per_budget":
            sites["shape_spread"] = (Prior.parse(self.shape_spread_prior), ())
            sites["p_dev_raw"] = (standard, (n_budgets,))
            sites["q_dev_raw"] = (standard, (n_budgets,))
        sites.update({name: (prior, ()) for name, prior in self._noise_priors().items()})
        return sites

    def shape_priors(self) -> tuple[Prior, Prior]:
        """The priors of p and q."""
        pair = (self.shape_prior,) * 2 if isinstance(self.shape_prior, str) else self.shape_prior
        if len(pair) != 2:
            raise ScalebayesError(f"shape_prior={self.shape_prior!r}: expected one prior or two")
        return Prior.parse(pair[0]), Prior.parse(pair[1])

    def _minima_sites(self, n_budgets: int) -> Sites:
        """The sweeps' minima: polar residuals from the curve, or each in its own coordinate."""
        if self.minima == "polar" and n_budgets >= scatter.POLAR_MIN_BUDGETS:
            log_r = Prior.parse("Normal(loc={loc!r}, scale={scale!r})".format(**scatter.LOG_R_SITE))
            return {"scatter_log_r": (log_r, ()),
                    "scatter_z": (Prior.parse(STANDARD), (n_budgets,))}  # fmt: skip
        own = Prior.parse(f"Normal(loc=0.0, scale={X_STAR_SCALE / X_STAR_STEP!r})")
        return {"x_star_raw": (own, (n_budgets,))}

    def pools_curvature(self, n_budgets: int) -> bool:
        """Whether the sweeps' curvatures are pooled around a line in log C."""
        return self.curvature_prior is not None and n_budgets >= POOLED_CURVATURE_MIN_BUDGETS

    @property
    def scatter_kwargs(self) -> tuple[float, float]:
        """``(alpha, beta)``: concentration and rate of tau^2's InverseGamma prior."""
        return _inverse_gamma(self.scatter_prior)

    @property
    def curvature_kwargs(self) -> tuple[float, float]:
        """``(alpha, beta)`` of the curvatures' spread's InverseGamma prior (pooled only)."""
        return _inverse_gamma(str(self.curvature_prior))

    @property
    def drift_kwargs(self) -> dict[str, float]:
        """``loc`` and ``scale`` of kappa's Normal prior; empty without drift."""
        return Prior.parse(self.drift_prior).kwargs if self.drift_prior else {}

    def _noise_priors(self) -> dict[str, Prior]:
        priors = self.likelihood.priors()
        return {name: priors[name] for name in self.likelihood.param_names}

    def stage(self, n_budgets: int) -> Stage:
        """The engine's stage for tables of ``n_budgets`` sweeps."""
        import functools

        return Stage(
            key=self.key,
            likelihood=self.likelihood,
            model=functools.partial(profile_model, self),
            sites=self.sites(n_budgets),
            # At 0.8 instead, with the polar residuals (the nine public tables, 2 seeds each):
            # 30-40 % fewer leapfrog steps, but R-hat up to 1.039 (Llama 3) and 1-9 divergences
            # on ml-scalefit's and Llama 3's sweeps, where 0.9 reads R-hat <= 1.004 and none.
            min_target_accept=MIN_TARGET_ACCEPT,
            warmup_tree_depth=WARMUP_TREE_DEPTH,
            label="isoFLOP",
        )


def _inverse_gamma(text: str) -> tuple[float, float]:
    kwargs = Prior.parse(text).kwargs
    return float(kwargs["concentration"]), float(kwargs["rate"])


def valley(v: Any, p: Any, q: Any) -> Any:
    """g(v; p, q): the fixed-compute loss profile of a two-power law, unit curvature at 0."""
    import jax.numpy as jnp

    # expm1 keeps the small-v differences exact; their sum cancels to O(v^2).
    return (q * jnp.expm1(-p * v) + p * jnp.expm1(q * v)) / (p * q * (p + q))


def valley_np(v: np.ndarray, p: float, q: float) -> np.ndarray:
    """NumPy twin of :func:`valley` (for simulation and tests)."""
    return (q * np.expm1(-p * v) + p * np.expm1(q * v)) / (p * q * (p + q))


def profile_data(runs: Runs, budgets: Budgets) -> ModelData:
    """The arrays the model conditions on: the runs of the used sweeps and the data's scales.

    ``extra`` holds each run's sweep (``budget``), each sweep's centred log budget (``log_c``),
    least observed log loss (``y_min``), rough log curvature (``log_k0``) and log N of its least
    loss (``x_best``), and their mean (``x0``) with the mean log budget it belongs to
    (``log_c_ref``).
    """
    import jax.numpy as jnp

    from scalebayes.model import ModelData

    used = budgets.used
    u = np.log(runs.N[used])
    y = np.log(runs.loss[used])
    index = budgets.index[used]
    n_b = budgets.n_budgets
    loss = runs.loss[used]
    y_min = np.array([y[index == b].min() for b in range(n_b)])
    x_best = np.array([u[index == b][np.argmin(y[index == b])] for b in range(n_b)])
    k0 = []
    for b in range(n_b):
        span = np.ptp(u[index == b])
        rise = np.ptp(loss[index == b])
        # L - L* = K v^2 / 2 with the farthest run about half the span from the minimum.
        k0.append(max(2.0 * rise / max(span / 2.0, 0.1) ** 2, 1e-4))
    log_c = np.log(budgets.compute)
    extra = {
        "budget": jnp.asarray(index, dtype=jnp.int32),
        "log_c": jnp.asarray(log_c - log_c.mean()),
        "log_c_ref": jnp.asarray(log_c.mean()),
        "y_min": jnp.asarray(y_min),
        "log_k0": jnp.asarray(np.log(k0)),
        "x0": jnp.asarray(x_best.mean()),
        "x_best": jnp.asarray(x_best),
    }
    return ModelData(
        log_inputs={"N": jnp.asarray(u)},
        log_loss=jnp.asarray(y),
        weight=jnp.ones(len(u)),
        log_ref={},
        extra=extra,
    )


def profile_model(model: ProfileModel, data: ModelData) -> None:
    """The NumPyro model of the sweeps (see the module's docstring); one argument, the data."""
    import jax.numpy as jnp
    import numpyro

    sites = model.sites(data.extra["y_min"].shape[0])
    v = {name: numpyro.sample(name, prior.to_numpyro().expand(shape).to_event(len(shape)))
         for name, (prior, shape) in sites.items()}  # fmt: skip
    extra = data.extra
    x_mid = extra["x0"] + STEP["x_mid_raw"] * v["x_mid_raw"]
    a_loc = Prior.parse(model.a_prior).kwargs["loc"]
    a = numpyro.deterministic("a", a_loc + STEP["a_raw"] * v["a_raw"])
    lc = extra["log_c"]
    line = x_mid + a * lc
    if model.drift_prior is not None:
        kappa = numpyro.deterministic(
            "kappa", model.drift_kwargs["loc"] + STEP["kappa_raw"] * v["kappa_raw"]
        )
        line = line + 0.5 * kappa * lc**2
    # tau integrated out (scatter's docstring says why, and why polar).
    alpha, beta = model.scatter_kwargs
    n_b = line.shape[0]
    if "scatter_z" in v:
        log_n_star = line + scatter.polar_residuals(v["scatter_log_r"], v["scatter_z"])
        residual_ss = 0.5 * jnp.exp(2.0 * v["scatter_log_r"])
        numpyro.factor("scatter", scatter.polar_log_density(alpha, beta, v["scatter_log_r"], n_b))
    else:
        log_n_star = extra["x_best"] + X_STAR_STEP * v["x_star_raw"]
        residual_ss = 0.5 * jnp.sum((log_n_star - line) ** 2)
        numpyro.factor("scatter", scatter.log_marginal(alpha, beta, residual_ss, n_b))
    numpyro.deterministic("residual_ss", residual_ss)
    log_l_star = extra["y_min"] + STEP["l_star_raw"] * v["l_star_raw"]
    log_k = extra["log_k0"] + STEP["curvature_raw"] * v["curvature_raw"]
    if "k_line_raw" in v:  # pooled around a line in log C, its spread integrated out
        k_line = (jnp.mean(extra["log_k0"]) + STEP["k_line_raw"] * v["k_line_raw"]
                  + STEP["k_slope_raw"] * v["k_slope_raw"] * lc)  # fmt: skip
        k_ss = 0.5 * jnp.sum((log_k - k_line) ** 2)
        numpyro.factor(
            "curvature_scatter", scatter.log_marginal(*model.curvature_kwargs, k_ss, n_b)
        )
    numpyro.deterministic("log_G", x_mid - a * extra["log_c_ref"])
    numpyro.deterministic("log_N_star", log_n_star)
    numpyro.deterministic("L_star", jnp.exp(log_l_star))
    numpyro.deterministic("K", jnp.exp(log_k))
    b = extra["budget"]
    p, q = v["p"], v["q"]
    if model.shape == "per_budget":  # each sweep's shape pooled around the shared one
        p = p * jnp.exp(v["shape_spread"] * v["p_dev_raw"])[b]
        q = q * jnp.exp(v["shape_spread"] * v["q_dev_raw"])[b]
    shape = valley(data.log_inputs["N"] - log_n_star[b], p, q)
    mu = jnp.log(jnp.exp(log_l_star[b]) + jnp.exp(log_k[b]) * shape)
    nu = v.get("nu", model.likelihood.df)
    model.likelihood.observe(mu, v["sigma"], nu, data)
