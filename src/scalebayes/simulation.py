"""Draw training runs from a known law: the truth that tests, calibration and the demo check against."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from scalebayes.data import Runs, load_runs
from scalebayes.errors import ScalebayesError
from scalebayes.laws import Law, load_law
from scalebayes.runtime import precision

# Besiroglu et al. 2024 (arXiv:2404.10102), Epoch AI's refit of Hoffmann et al.'s data.
EPOCH_CHINCHILLA = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}

# Roughly the compute range of the Chinchilla isoFLOP sweeps (Hoffmann et al. 2022, Fig. 3).
CHINCHILLA_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)


def chinchilla_optimum(
    params: Mapping[str, float], compute: Sequence[float] | np.ndarray, *, cost_k: float = 6.0
) -> dict[str, np.ndarray]:
    """The Chinchilla law's compute-optimal runs at ``compute`` (FLOPs), in closed form.

    With C = k N D (Hoffmann et al. 2022, eq. 4): N* = G (C/k)^(beta/(alpha+beta)),
    G = (alpha A / (beta B))^(1/(alpha+beta)); returns ``N``, ``D``, ``tokens_per_param`` and
    ``loss`` (L at the optimum), arrays shaped like ``compute``. The truth of a ladder simulated
    from that law; the package's own search (:func:`scalebayes.optimal`) is checked against it.
    """
    e, a, b = params["E"], params["A"], params["B"]
    alpha, beta = params["alpha"], params["beta"]
    c = np.asarray(compute, dtype=float) / cost_k
    n = (alpha * a / (beta * b)) ** (1.0 / (alpha + beta)) * c ** (beta / (alpha + beta))
    d = c / n
    return {"N": n, "D": d, "tokens_per_param": d / n, "loss": e + a * n**-alpha + b * d**-beta}


def isoflop_design(
    budgets: Sequence[float],
    *,
    points_per_budget: int = 9,
    tokens_per_param: float = 20.0,
    span: float = 30.0,
    cost_k: float = 6.0,
) -> pd.DataFrame:
    """An isoFLOP ladder: at each compute budget, model sizes log-spaced around a centre.

    Parameters
    ----------
    budgets : sequence of float
        Training compute per sweep, FLOPs.
    points_per_budget : int
        Runs per budget.
    tokens_per_param : float
        Where each sweep is centred: ``D / N`` at the centre (20 is Chinchilla's rule of thumb).
    span : float
        Ratio of the largest to the smallest model in a sweep.
    cost_k : float
        FLOPs per parameter per token, ``C = cost_k * N * D``.

    Returns
    -------
    DataFrame
        Columns ``N``, ``D``, ``C``; ``points_per_budget * len(budgets)`` rows.
    """
    budgets = np.asarray(budgets, dtype=float)
    if budgets.ndim != 1 or budgets.size == 0 or not np.all(budgets > 0):
        raise ScalebayesError("budgets: expected a non-empty list of positive FLOP counts")
    if points_per_budget < 2 or not span > 1:
        raise ScalebayesError("isoflop_design: expected points_per_budget >= 2 and span > 1")
    centre = np.sqrt(budgets / (cost_k * tokens_per_param))
    offsets = np.geomspace(1 / np.sqrt(span), np.sqrt(span), points_per_budget)
    n = (centre[:, None] * offsets[None, :]).ravel()
    c = np.repeat(budgets, points_per_budget)
    return pd.DataFrame({"N": n, "D": c / (cost_k * n), "C": c})


def grid_design(N: Sequence[float], D: Sequence[float], *, cost_k: float = 6.0) -> pd.DataFrame:
    """Every combination of model sizes ``N`` and token counts ``D``; columns ``N``, ``D``, ``C``."""
    n, d = np.meshgrid(np.asarray(N, dtype=float), np.asarray(D, dtype=float), indexing="ij")
    return pd.DataFrame({"N": n.ravel(), "D": d.ravel(), "C": cost_k * n.ravel() * d.ravel()})


def simulate(
    law: Law | str,
    params: Mapping[str, float],
    design: pd.DataFrame,
    *,
    noise: float = 0.01,
    df: float | None = None,
    seed: int = 0,
    cost_k: float = 6.0,
) -> Runs:
    """Draw one final loss per design point from ``law`` with known ``params``.

    ``log loss = log L(x; params) + noise * e`` with ``e`` standard Normal, or Student-t with
    ``df`` degrees of freedom: ``noise`` is the relative run-to-run spread of the loss.

    Returns
    -------
    Runs
        The design's columns plus ``loss`` (nats/token), labelled with source ``"<simulated ...>"``.
    """
    law = load_law(law)
    missing = set(law.param_names) - set(params)
    unknown = set(params) - set(law.param_names)
    if missing or unknown:
        raise ScalebayesError(
            f"simulate: law {law.name!r} takes parameters {list(law.param_names)}; "
            f"missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    if not noise >= 0:
        raise ScalebayesError(f"simulate: noise={noise!r}: expected a number >= 0")
    log_inputs = {name: np.log(design[name].to_numpy(float)) for name in law.inputs}
    with precision("float64"):
        log_mean = np.asarray(law.log_mean({k: float(v) for k, v in params.items()}, log_inputs))
    rng = np.random.default_rng(seed)
    shocks = (
        rng.standard_t(df, size=len(design)) if df is not None else rng.standard_normal(len(design))
    )
    table = design.copy()
    table["loss"] = np.exp(log_mean + noise * shocks)
    runs = load_runs(table, cost_k=cost_k)
    label = f"<simulated from {law.name}, noise {noise:g}, seed {seed}>"
    return dataclasses.replace(runs, source=label)


def simulate_groups(
    law: Law | str,
    population: Mapping[str, float],
    spreads: Mapping[str, float],
    designs: Sequence[pd.DataFrame],
    *,
    noise: float = 0.01,
    seed: int = 0,
    cost_k: float = 6.0,
    terms_at: Mapping[str, float] | None = None,
) -> tuple[Runs, list[dict[str, float]]]:
    """Ladders of several groups whose parameters vary around a population: a grouped fit's truth.

    Group ``g`` (one per design, labelled ``g0``, ``g1``, ...) has ``value * exp(spread * z)``
    for each parameter named in ``spreads`` (``z`` standard Normal: the log-scale spread of
    :class:`scalebayes.Pooling`) and the ``population`` value for the others; its runs are
    :func:`simulate` from those. ``terms_at`` (log inputs, e.g. the runs' centre): a
    coefficient's spread moves its term there instead, ``A / N**alpha`` at that N, so the
    coefficient moves with the group's exponent (the quantity the grouped model pools).
    Returns the runs (with a ``group`` column) and each group's parameters.
    """
    law = load_law(law)
    unknown = set(spreads) - set(law.param_names)
    if unknown:
        raise ScalebayesError(f"simulate_groups: spreads for unknown parameters {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    frames, truths = [], []
    for g, design in enumerate(designs):
        params = {name: float(value) for name, value in population.items()}
        z = {name: float(rng.standard_normal()) for name in spreads}
        for name, spread in spreads.items():
            params[name] *= float(np.exp(spread * z[name]))
        if terms_at is not None:
            params.update(_terms_moved(law, population, params, spreads, z, terms_at))
        runs = simulate(law, params, design, noise=noise, seed=seed * 1000 + g, cost_k=cost_k)
        frames.append(runs.table.assign(group=f"g{g}"))
        truths.append(params)
    table = pd.concat(frames, ignore_index=True)
    runs = load_runs(table, cost_k=cost_k)
    label = f"<simulated groups from {law.name}, noise {noise:g}, seed {seed}>"
    return dataclasses.replace(runs, source=label), truths


def _terms_moved(
    law: Law,
    population: Mapping[str, float],
    params: Mapping[str, float],
    spreads: Mapping[str, float],
    z: Mapping[str, float],
    at: Mapping[str, float],
) -> dict[str, float]:
    """Coefficients whose terms at log inputs ``at`` sit ``spread * z`` from the population's."""
    from scalebayes.formula import log_evaluate
    from scalebayes.model import find_centrings

    moved = {}
    for c in find_centrings(law):
        if c.param not in spreads:
            continue
        rest_population = float(log_evaluate(c.rest, population, at, xp=np))
        u = c.sign * np.log(population[c.param]) + rest_population + spreads[c.param] * z[c.param]
        moved[c.param] = float(
            np.exp(c.sign * (u - float(log_evaluate(c.rest, params, at, xp=np))))
        )
    return moved
