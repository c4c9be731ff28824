"""Approach 1's model: each model size's loss against tokens, from its finished runs.

Finished runs (final or cooled-down checkpoints, :mod:`scalebayes.curves`) are grouped into
model sizes s (N equal within :data:`SIZE_TOL` decades); several runs at one (N, D), as in a
learning-rate sweep, are one point at their least loss (the envelope over runs there). Each
size's loss against tokens is

    L_s(D) = E_s + B_s (D / D_c)^-beta,

``E_s`` and ``B_s`` free per size (no law in N: that is approach 3's assumption, not this
one's), ``beta`` shared. Partial pooling of log B_s (a spread tau_B around a shared log B) was
tried and dropped: tau_B near 0 made a funnel (bulk ESS 72 of 600 draws on a simulated table
whose a had ESS 550), and free B_s lets the sizes' curves differ as an N x D interaction does.
For a Chinchilla-form truth E + A/N^alpha + B/D^beta this is exact (E_s = E + A/N_s^alpha,
B_s = B); a truth with any extra dependence on N alone is exact too. Log loss is observed with
the likelihood's noise (Student-t(4) by default). The envelope over sizes and its argmin are
computed per draw afterwards (:mod:`scalebayes.allocation.envelope`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scalebayes.data import Runs, repeats
from scalebayes.discrepancy.base import Sites, Stage
from scalebayes.errors import EnvelopeError
from scalebayes.likelihood import Likelihood
from scalebayes.priors import Prior

if TYPE_CHECKING:  # JAX loads when the model is first built
    from scalebayes.model import ModelData

SIZE_TOL = 0.01  # decades: digitised sizes (Epoch's Chinchilla) repeat within 0.1 %
MIN_HORIZONS = 2  # a size's curve needs finished runs at two token counts or more
MIN_SIZES = 3  # an argmin over sizes that is not at an edge needs three
# Finished runs below this many tokens per parameter are left out of the curves: there a run is
# still in its first, steep phase (a 100-step run with 50 warmup steps), which no E + B D^-beta
# follows. On (Mis)Fitting's runs (D/N 0.2-218) keeping them pulled the shared beta to 0.76 and
# approach 1's a to 0.31, against 0.51 from the envelope interpolated between the runs
# themselves; the compute-optimal runs sit at 10-100 tokens per parameter, far above.
MIN_TOKENS_PER_PARAM = 5.0
# E_s sits below the size's least loss: a share of it between E_FLOOR and 1, logistic-normal
# with spread E_SPREAD (close to uniform over the range). A LogNormal around 0.8 of it (sd 0.3)
# gave the same a on simulated runs; this one assumes less.
E_FLOOR, E_SPREAD = 0.2, 1.6
# log B_s at D_c: centred on a fifth of the mean loss, within a factor e^{+-1.5} at one sd.
B_CENTRE, B_SCALE = np.log(0.2), 1.5
STANDARD = "Normal(loc=0.0, scale=1.0)"


@dataclass(frozen=True)
class Sizes:
    """The model sizes found among finished runs and the (N, D) points each contributes.

    ``N`` per used size (ascending); ``size`` each point's size index; ``D`` and ``loss`` per
    point (the least loss of the runs at that (N, D)); ``runs`` finished runs behind each point;
    ``ignored`` sizes with fewer than :data:`MIN_HORIZONS` token counts (N, runs); ``short``
    finished runs below :data:`MIN_TOKENS_PER_PARAM` left out; ``repeated`` runs left out for
    repeating their data (D > U: the envelope is of fresh-data runs).
    """

    N: np.ndarray
    size: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    runs: np.ndarray
    ignored: tuple[tuple[float, int], ...]
    short: int = 0
    repeated: int = 0

    @property
    def n_sizes(self) -> int:
        """Model sizes used."""
        return len(self.N)

    def horizons(self) -> np.ndarray:
        """Token counts (points) per size, shape (n_sizes,)."""
        return np.bincount(self.size, minlength=self.n_sizes)

    def d_range(self) -> np.ndarray:
        """Least and largest D of each size's points, shape (n_sizes, 2)."""
        return np.array([[self.D[self.size == s].min(), self.D[self.size == s].max()]
                         for s in range(self.n_sizes)])  # fmt: skip

    def __str__(self) -> str:
        line = (
            f"{self.n_sizes} model sizes with finished runs at {MIN_HORIZONS}+ token counts "
            f"({int(self.runs.sum())} runs, {len(self.D)} (N, D) points; points per size: "
            f"{', '.join(str(h) for h in self.horizons())})"
        )
        if self.short:
            line += f"; left out {self.short} runs below {MIN_TOKENS_PER_PARAM:g} tokens/param"
        if self.ignored:
            line += f"; ignored {len(self.ignored)} size(s) with one token count"
        if self.repeated:
            line += f"; left out {self.repeated} runs that repeat their data (D > U)"
        return line


def find_sizes(runs: Runs) -> Sizes:
    """Group finished ``runs`` into model sizes and (N, D) points; refuse too few sizes."""
    log_n, log_d = np.log10(runs.N), np.log10(runs.D)
    long_enough = runs.D / runs.N >= MIN_TOKENS_PER_PARAM
    repeated = repeats(runs.table)
    order = np.argsort(log_n)
    order = order[long_enough[order] & ~repeated[order]]
    breaks = np.flatnonzero(np.diff(log_n[order]) > SIZE_TOL) + 1
    kept_n, sizes, ds, losses, counts, ignored = [], [], [], [], [], []
    for members in np.split(order, breaks) if order.size else []:
        d_sorted = members[np.argsort(log_d[members])]
        cells = np.split(d_sorted, np.flatnonzero(np.diff(log_d[d_sorted]) > SIZE_TOL) + 1)
        n = float(10 ** np.median(log_n[members]))
        if len(cells) < MIN_HORIZONS:
            ignored.append((n, len(members)))
            continue
        for cell in cells:
            best = cell[np.argmin(runs.loss[cell])]
            sizes.append(len(kept_n))
            ds.append(runs.D[best])
            losses.append(runs.loss[best])
            counts.append(len(cell))
        kept_n.append(n)
    if len(kept_n) < MIN_SIZES:
        raise EnvelopeError(
            f"approach 1 needs finished runs of at least {MIN_SIZES} model sizes at "
            f"{MIN_HORIZONS} or more token counts each; {runs.source} has {len(kept_n)} "
            f"({len(kept_n) + len(ignored)} sizes within {SIZE_TOL:g} decades of N"
            + (f"; {int(repeated.sum())} runs that repeat their data (D > U) left out)"
               if repeated.any() else ")")
        )  # fmt: skip
    return Sizes(np.array(kept_n), np.array(sizes), np.array(ds), np.array(losses),
                 np.array(counts), tuple(ignored), int((~long_enough & ~repeated).sum()),
                 int(repeated.sum()))  # fmt: skip


@dataclass(frozen=True)
class CurveModel:
    """Priors and noise of the per-size curves (prior strings as in law files).

    ``beta_prior``: the shared token exponent (published fits: 0.25-0.45).
    """

    beta_prior: str = "LogNormal(loc=-1.2, scale=0.5)"
    likelihood: Likelihood = field(default_factory=lambda: Likelihood(discrepancy="none"))

    def __post_init__(self) -> None:
        Prior.parse(self.beta_prior)

    @property
    def key(self) -> str:
        """Names the model for the engine's cache of compiled samplers."""
        return f"envelope:{self!r}"

    def sites(self, n_sizes: int) -> Sites:
        """Every sampled site with its prior and shape."""
        standard = Prior.parse(STANDARD)
        priors = self.likelihood.priors()
        sites: Sites = {
            "beta": (Prior.parse(self.beta_prior), ()),
            "b_raw": (standard, (n_sizes,)),
            "e_raw": (standard, (n_sizes,)),
        }
        sites.update({name: (priors[name], ()) for name in self.likelihood.param_names})
        return sites

    def stage(self, n_sizes: int) -> Stage:
        """The engine's stage for tables of ``n_sizes`` sizes."""
        return Stage(
            key=self.key,
            likelihood=self.likelihood,
            model=functools.partial(curve_model, self),
            sites=self.sites(n_sizes),
            min_target_accept=0.9,  # E_s against B_s of a size with two horizons is a ridge
            warmup_tree_depth=7,
            label="curves",
        )


def curve_data(sizes: Sizes) -> ModelData:
    """What the model conditions on: each point's log loss, size and centred log D."""
    import jax.numpy as jnp

    from scalebayes.model import ModelData

    log_d = np.log(sizes.D)
    l_min = np.array([sizes.loss[sizes.size == s].min() for s in range(sizes.n_sizes)])
    extra = {
        "size": jnp.asarray(sizes.size, dtype=jnp.int32),
        "u": jnp.asarray(log_d - log_d.mean()),
        "log_l_min": jnp.asarray(np.log(l_min)),
        "log_l_mean": jnp.asarray(np.log(sizes.loss.mean())),
        "log_d_ref": jnp.asarray(log_d.mean()),
    }
    return ModelData(
        log_inputs={"D": jnp.asarray(log_d)},
        log_loss=jnp.asarray(np.log(sizes.loss)),
        weight=jnp.ones(len(log_d)),
        log_ref={},
        extra=extra,
    )


def curve_params(v: dict[str, Any], extra: dict[str, Any]) -> tuple[Any, Any]:
    """Each size's E_s and log B_s (at the table's mean log D) from the sampled sites."""
    import jax
    import jax.numpy as jnp

    share = E_FLOOR + (1.0 - E_FLOOR) * jax.nn.sigmoid(E_SPREAD * v["e_raw"])
    e = jnp.exp(extra["log_l_min"]) * share
    return e, extra["log_l_mean"] + B_CENTRE + B_SCALE * v["b_raw"]


def curve_model(model: CurveModel, data: ModelData) -> None:
    """The NumPyro model of the per-size curves (see the module's docstring)."""
    import jax.numpy as jnp
    import numpyro

    sites = model.sites(data.extra["log_l_min"].shape[0])
    v = {name: numpyro.sample(name, prior.to_numpyro().expand(shape).to_event(len(shape)))
         for name, (prior, shape) in sites.items()}  # fmt: skip
    e, log_b = curve_params(v, data.extra)
    numpyro.deterministic("E_s", e)
    numpyro.deterministic("log_B_s", log_b)
    s = data.extra["size"]
    mu = jnp.log(e[s] + jnp.exp(log_b[s] - v["beta"] * data.extra["u"]))
    model.likelihood.observe(mu, v["sigma"], v.get("nu", model.likelihood.df), data)
