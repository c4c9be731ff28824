"""Simulation-based calibration: do posterior intervals contain the truth as often as they claim.

For many simulated tables of runs, each drawn from a law with known parameters (drawn from the
prior, which makes the check exact for any design: Talts et al. 2018, "Validating Bayesian
inference algorithms with simulation-based calibration"; or one fixed realistic truth), the
law is fitted and the rank of the true value among the posterior draws is recorded, for every
parameter and for two things users extrapolate: the mean loss at a budget far beyond the data
(at the true compute-optimal allocation) and the compute-optimal N* there. Calibrated
inference gives uniform ranks, and central intervals that contain the truth at their nominal
rate. All fits of one study share one compiled sampler (:func:`scalebayes.fit_batch`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalebayes.allocate import TOKENS_PER_PARAM_BOUNDS
from scalebayes.discrepancy import Auto, NoDiscrepancy
from scalebayes.errors import AllocationWarning, ExtrapolationWarning, ScalebayesError
from scalebayes.laws import Law, load_law
from scalebayes.likelihood import Likelihood
from scalebayes.priors import Prior
from scalebayes.results import Settings

RANK_DRAWS = 99  # posterior draws each truth is ranked among (thinned evenly): ranks 0..99

# A prior concentrated on realistic Chinchilla-type laws: simulation-based calibration is exact
# for any prior used both to simulate and to fit, and this one keeps every simulated ladder
# informative enough for healthy NUTS at small sizes. Centred on Epoch's refit of Chinchilla.
REALISTIC_CHINCHILLA_PRIORS = {
    "E": "LogNormal(loc=0.6, scale=0.1)",
    "A": "LogNormal(loc=6.2, scale=0.3)",
    "B": "LogNormal(loc=7.6, scale=0.3)",
    "alpha": "LogNormal(loc=-1.05, scale=0.1)",
    "beta": "LogNormal(loc=-1.0, scale=0.1)",
    "sigma": "LogNormal(loc=-4.6, scale=0.3)",
}


@dataclass(frozen=True)
class Calibration:
    """Ranks of the truth among posterior draws, one row per simulated fit.

    ``ranks`` has one column per checked quantity (parameters, ``loss_extrapolated``,
    ``N_opt_extrapolated``) with integer ranks in ``0..RANK_DRAWS``; ``truth`` holds the true
    values; ``healthy`` says whether each fit passed its diagnostics (R-hat, ESS, divergences).
    """

    ranks: pd.DataFrame
    truth: pd.DataFrame
    healthy: np.ndarray
    extrapolation_budget: float

    def coverage(self, probs: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
        """Share of fits whose central ``prob`` interval contains the truth, per quantity."""
        u = (self.ranks + 0.5) / (RANK_DRAWS + 1)  # rank -> quantile of the truth
        rows = {f"{p:.0%}": ((u - 0.5).abs() <= p / 2).where(u.notna()).mean() for p in probs}
        rows["fits"] = u.notna().sum()
        return pd.DataFrame(rows)

    def uniformity(self, bins: int = 10) -> pd.Series:
        """Chi-square p-value of the rank histogram per quantity (uniform ranks: p ~ U(0, 1))."""
        from scipy import stats

        edges = np.linspace(0, RANK_DRAWS + 1, bins + 1)
        out = {}
        for name, ranks in self.ranks.items():
            counts, _ = np.histogram(ranks.dropna(), bins=edges)
            out[name] = float(stats.chisquare(counts).pvalue)
        return pd.Series(out, name="p_uniform")

    def __str__(self) -> str:
        table = self.coverage().join(self.uniformity())
        return (
            f"simulation-based calibration: {len(self.ranks)} fits "
            f"({int(self.healthy.sum())} with healthy diagnostics); extrapolation to "
            f"{self.extrapolation_budget:.3g} FLOPs\n{table.to_string(float_format='{:.3f}'.format)}"
        )


def calibrate(
    law: Law | str = "chinchilla",
    design: pd.DataFrame | None = None,
    *,
    n_fits: int = 100,
    truth: Mapping[str, float] | None = None,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    extrapolate: float = 100.0,
    batch: int = 25,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
    **sampler: Any,
) -> Calibration:
    """Simulate ``n_fits`` tables of runs on ``design``, fit each, and rank the truth.

    Parameters
    ----------
    law : Law or name
        The law that simulates and fits (a law with inputs N and D).
    design : DataFrame, optional
        Columns N, D, C of the runs of every table; default Chinchilla's nine-budget isoFLOP
        ladder (81 runs).
    truth : mapping, optional
        Fixed true values of every law parameter and ``sigma``; by default each fit draws its
        own from the priors (the exact check).
    priors : mapping, optional
        Prior overrides (as in :func:`scalebayes.fit`), used both to draw the truths and to fit:
        the check stays exact for any prior, and a prior concentrated on realistic laws spends
        the study where users are.
    likelihood : Likelihood, optional
        Fitted noise model; the simulations use the same Student-t (or Normal). Its discrepancy
        must be ``"none"``; ``"auto"`` (the default) means ``"none"`` here. The default fit's
        law module is exactly this model (see :mod:`scalebayes.discrepancy.gp`), so this checks the law's
        parameters and allocations of default fits; the GP's intervals are checked against
        known truth by benchmarks/discrepancy_truth.py instead.
    extrapolate : float
        The extrapolated quantities are read at ``extrapolate`` x the design's largest budget.
    batch : int
        Fits per :func:`scalebayes.fit_batch` call (chains of a batch share a compiled sampler).
    settings, **sampler
        NUTS settings of every fit (default 500 warmup, 500 draws); ``seed`` also seeds the
        simulations, and batch ``b`` samples with seed ``seed + b * batch``.
    progress : callable, optional
        ``progress(fits_done, n_fits)`` after each batch.
    """
    from scalebayes.allocate import optimal, require_n_and_d
    from scalebayes.fitting import apply_priors, fit_batch
    from scalebayes.simulation import CHINCHILLA_BUDGETS, isoflop_design, simulate

    settings = Settings.make(settings or Settings(warmup=500, draws=500), **sampler)
    seed = settings.seed
    law = load_law(law)
    require_n_and_d(law)
    likelihood = likelihood or Likelihood()
    if likelihood.discrepancy == Auto():
        likelihood = likelihood.without_discrepancy()
    law, likelihood = apply_priors(law, likelihood, priors or {})
    if likelihood.discrepancy != NoDiscrepancy() or likelihood.estimates_nu:
        raise ScalebayesError(
            "calibrate simulates from the law plus noise with a fixed df: use a likelihood "
            "without a discrepancy and with a fixed df"
        )
    design = isoflop_design(CHINCHILLA_BUDGETS) if design is None else design
    budget = float(design["C"].max()) * extrapolate
    rng = np.random.default_rng(seed)
    truths = [_truth(law, likelihood, truth, rng) for _ in range(n_fits)]
    df = None if likelihood.family == "normal" else likelihood.df
    tables = [
        simulate(law, _law_part(law, t), design, noise=t["sigma"], df=df, seed=seed + i)
        for i, t in enumerate(truths)
    ]
    ranks, healthy = [], []
    for start in range(0, n_fits, batch):
        fits = fit_batch(
            tables[start : start + batch],
            law,
            likelihood=likelihood,
            settings=dataclasses.replace(settings, seed=seed + start),
        )
        for fit, t in zip(fits, truths[start : start + batch], strict=True):
            ranks.append(_ranks(fit, t, budget, optimal))
            healthy.append(fit.diagnostics.ok)
        if progress is not None:
            progress(min(start + batch, n_fits), n_fits)
    return Calibration(
        ranks=pd.DataFrame(ranks),
        truth=pd.DataFrame(truths),
        healthy=np.asarray(healthy),
        extrapolation_budget=budget,
    )


def _truth(
    law: Law, likelihood: Likelihood, fixed: Mapping[str, float] | None, rng: np.random.Generator
) -> dict[str, float]:
    names = (*law.param_names, "sigma")
    if fixed is not None:
        missing = [n for n in names if n not in fixed]
        if missing:
            raise ScalebayesError(f"calibrate: truth lacks {missing}; give all of {list(names)}")
        return {n: float(fixed[n]) for n in names}
    import jax

    priors = {n: p.prior for n, p in law.params.items()}
    priors["sigma"] = Prior.parse(likelihood.sigma_prior)
    key = jax.random.key(int(rng.integers(2**31)))
    keys = jax.random.split(key, len(priors))
    return {
        n: float(prior.to_numpyro().sample(k))
        for (n, prior), k in zip(priors.items(), keys, strict=True)
    }


def _law_part(law: Law, truth: Mapping[str, float]) -> dict[str, float]:
    return {n: truth[n] for n in law.param_names}


def _thin(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1)
    return flat[np.linspace(0, flat.size - 1, RANK_DRAWS).round().astype(int)]


def _ranks(fit: Any, truth: Mapping[str, float], budget: float, optimal: Any) -> dict[str, float]:
    posterior = fit.posterior
    out = {
        name: int(np.sum(_thin(posterior[name].to_numpy()) < truth[name]))
        for name in (*fit.law.free_param_names, "sigma")
    }
    n_true = _true_optimum(fit.law, truth, budget, fit.runs.cost_k)
    log_inputs = {"N": np.log(n_true), "D": np.log(budget / (fit.runs.cost_k * n_true))}
    true_loss = float(np.exp(fit.law.log_mean(dict(truth), log_inputs)))
    params = {name: posterior[name].to_numpy() for name in fit.param_names}
    loss = np.exp(np.asarray(fit.log_mean(params, log_inputs)))
    out["loss_extrapolated"] = int(np.sum(_thin(loss) < true_loss))
    with warnings.catch_warnings():
        # A draw whose optimum sits at a search bound is ranked like any other (it is kept).
        warnings.simplefilter("ignore", AllocationWarning)
        warnings.simplefilter("ignore", ExtrapolationWarning)  # the budget is chosen beyond them
        n_opt = optimal(fit, [budget]).N.to_numpy()[..., 0]
    low, high = TOKENS_PER_PARAM_BOUNDS
    tokens_per_param = budget / (fit.runs.cost_k * n_true**2)
    # A prior draw can put the true optimum where no search looks (D/N of 1e18): no rank then.
    inside = low < tokens_per_param < high
    out["N_opt_extrapolated"] = int(np.sum(_thin(n_opt) < n_true)) if inside else np.nan
    return out


def _true_optimum(law: Law, truth: Mapping[str, float], budget: float, cost_k: float) -> float:
    """N minimising the true law on the budget's isoFLOP line (bounded scalar search in log N)."""
    from scipy.optimize import minimize_scalar

    def loss(log_n: float) -> float:
        log_d = np.log(budget / cost_k) - log_n
        return float(law.log_mean(dict(truth), {"N": log_n, "D": log_d}))

    log_c = np.log(budget / cost_k)
    found = minimize_scalar(
        loss, bounds=(0.1 * log_c, 0.9 * log_c), method="bounded", options={"xatol": 1e-10}
    )
    return float(np.exp(found.x))
