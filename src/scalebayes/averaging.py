"""Model averaging: mix per-draw results of several laws in proportion to their weights.

Stacking weights (Yao et al. 2018) say how much of each law's predictive distribution to
blend; the blend of posterior draws is a sample from that mixture. So any per-draw quantity
(a predicted loss, an optimal N*, P(L <= target)) computed from each fit separately is
averaged by resampling the draws: each output draw comes from law ``m`` with probability
``w_m``, and then uniformly from that law's draws. Summaries (intervals, medians) are taken
on the mixed draws afterwards, as for a single fit.

:func:`average` mixes any per-draw DataArray or Dataset (a Dataset's variables are mixed
jointly, draw by draw); :func:`predict_mixture` and :func:`optimal_mixture` apply it to
:func:`scalebayes.predict` and :func:`scalebayes.optimal` of several fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from scalebayes.allocate import Allocation, optimal
from scalebayes.comparison import check_same_runs, compare
from scalebayes.errors import ScalebayesError
from scalebayes.prediction import Prediction, predict

if TYPE_CHECKING:
    from scalebayes.results import Fit

__all__ = ["average", "draw_counts", "optimal_mixture", "predict_mixture", "stacking_weights"]

SAMPLE_DIMS = ("chain", "draw")


def average[PerDraw: (xr.DataArray, xr.Dataset)](
    results: Mapping[str, PerDraw],
    weights: Mapping[str, float],
    *,
    n_draws: int | None = None,
    seed: int = 0,
) -> PerDraw:
    """Mix per-draw results of several fits according to ``weights``.

    Parameters
    ----------
    results : mapping of str to DataArray or Dataset
        Name (of the law or fit) to a per-draw quantity with dims (chain, draw, ...); the
        other dims and their coordinates must agree across entries. The variables of a
        Dataset are mixed jointly: output draw ``i`` takes every variable from the same draw.
    weights : mapping of str to float
        Non-negative weight per name (e.g. ``Comparison.weights``, stacking by default);
        normalised to sum to 1. Every name in ``results`` needs one; names with weight 0 are
        left out.
    n_draws : int, optional
        Draws in the result; default the largest number of draws among the inputs.
    seed : int
        Seed of the resampling.

    Returns
    -------
    DataArray or Dataset
        As the inputs, dims (chain, draw, ...) with one chain and ``n_draws`` draws; ``attrs["weights"]``
        records the normalised weights and ``attrs["draws_from"]`` how many draws came from
        each input. Each input contributes ``round(w * n_draws)`` draws (largest remainders,
        so the counts add up), drawn without replacement where it has enough.

    Raises
    ------
    ScalebayesError
        Missing or negative weights, weights summing to 0, or inputs whose dims differ.
    """
    if not results:
        raise ScalebayesError("average: no results to mix")
    missing = [name for name in results if name not in weights]
    if missing:
        raise ScalebayesError(
            f"average: no weight for {missing}; weights given for {list(weights)}"
        )
    w = np.array([float(weights[name]) for name in results])
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ScalebayesError(
            f"average: weights {dict(zip(results, w, strict=True))} must be "
            "finite, non-negative and not all 0"
        )
    w = w / w.sum()
    arrays = {name: _check_sample_dims(name, array) for name, array in results.items()}
    first_name, first = next(iter(arrays.items()))
    for name, array in arrays.items():
        if (
            tuple(array.sizes) != tuple(first.sizes)
            or any(
                not np.array_equal(array[d].values, first[d].values)
                for d in first.sizes
                if d not in SAMPLE_DIMS and d in first.coords
            )
            or any(array.sizes[d] != first.sizes[d] for d in first.sizes if d not in SAMPLE_DIMS)
        ):
            raise ScalebayesError(
                f"average: {name!r} has dims {dict(array.sizes)}, {first_name!r} has "
                f"{dict(first.sizes)}: compute every result at the same points"
            )
    total = n_draws or max(a.sizes["chain"] * a.sizes["draw"] for a in arrays.values())
    if total < 1:
        raise ScalebayesError(f"average: n_draws={n_draws!r}: expected a positive integer")
    counts = draw_counts(w, total)
    rng = np.random.default_rng(seed)
    pieces = []
    for array, count in zip(arrays.values(), counts, strict=True):
        if count == 0:
            continue
        flat = array.stack(_sample=SAMPLE_DIMS).transpose("_sample", ...)
        available = flat.sizes["_sample"]
        picked = rng.choice(available, size=count, replace=count > available)
        pieces.append(
            flat.isel(_sample=picked).drop_vars(["_sample", *SAMPLE_DIMS], errors="ignore")
        )
    mixed = xr.concat(pieces, dim="_sample")
    # Shuffle so that any block of draws is itself a sample of the mixture.
    mixed = mixed.isel(_sample=rng.permutation(total)).rename(_sample="draw")
    mixed = mixed.expand_dims("chain").transpose("chain", "draw", ...)
    mixed = mixed.assign_coords(chain=[0], draw=np.arange(total))
    mixed.attrs = {
        **first.attrs,
        "weights": {name: float(x) for name, x in zip(arrays, w, strict=True)},
        "draws_from": {name: int(c) for name, c in zip(arrays, counts, strict=True)},
    }
    if isinstance(first, xr.DataArray):
        mixed.name = first.name
    return mixed


def draw_counts(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer draws per component, proportional to ``weights`` (summing to 1) and adding to ``total``.

    Largest-remainder rounding: each gets ``floor(w * total)``, and the draws left over go to
    the largest fractional parts, so no component is off by more than one draw.
    """
    exact = np.asarray(weights, dtype=float) * total
    counts = np.floor(exact).astype(int)
    left = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:left]] += 1
    return counts


def _check_sample_dims[PerDraw: (xr.DataArray, xr.Dataset)](name: str, array: PerDraw) -> PerDraw:
    if not isinstance(array, xr.DataArray | xr.Dataset) or any(
        d not in array.sizes for d in SAMPLE_DIMS
    ):
        dims = getattr(array, "dims", type(array).__name__)
        raise ScalebayesError(
            f"average: {name!r} must be a DataArray with dims (chain, draw, ...); got {dims}"
        )
    return array


def stacking_weights(fits: Mapping[str, Fit], *, method: str = "loo") -> dict[str, float]:
    """Stacking weights of ``fits`` (all on the same runs) by PSIS-LOO, or by ``method``.

    A single fit gets weight 1.
    """
    if len(fits) == 1:
        return {next(iter(fits)): 1.0}
    return {str(k): float(v) for k, v in compare(fits, method=method).weights.items()}


def predict_mixture(
    fits: Mapping[str, Fit],
    *,
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
    **inputs: Any,
) -> Prediction:
    """:func:`scalebayes.predict` under several laws, draws mixed by ``weights``.

    Parameters
    ----------
    fits : mapping of str to Fit
        Fits of different laws to the same runs.
    weights : mapping of str to float, optional
        Default: stacking weights by PSIS-LOO (:func:`stacking_weights`).
    seed : int
        Seed of the noise draws (``kind="new_run"``) and of the mixing.
    **inputs
        ``N``, ``D``, ``C``, ``U`` and ``kind``, as for :func:`scalebayes.predict`.

    Returns
    -------
    Prediction
        ``loss`` dims (chain=1, draw, point); ``loss.attrs["weights"]`` the weights used.
    """
    fits = _fits(fits)
    weights = stacking_weights(fits) if weights is None else weights
    each = {name: predict(fit, seed=seed, **inputs) for name, fit in fits.items()}
    first = next(iter(each.values()))
    mixed = average({name: p.loss for name, p in each.items()}, weights, seed=seed)
    return Prediction(mixed, first.points, first.kind, first.fitted_range)


def optimal_mixture(
    fits: Mapping[str, Fit],
    budgets: Any,
    *,
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
    **options: Any,
) -> Allocation:
    """:func:`scalebayes.optimal` under several laws, draws mixed by ``weights``.

    Each output draw takes N*, D*, L* and the rest from one draw of one law, so their joint
    behaviour (a law that wants more tokens also predicts its own loss) is kept.

    Parameters
    ----------
    fits : mapping of str to Fit
        Fits of laws with inputs N and D, to the same runs.
    budgets : array-like of float
        Training compute, FLOPs.
    weights : mapping of str to float, optional
        Default: stacking weights by PSIS-LOO (:func:`stacking_weights`).
    seed : int
        Seed of the mixing.
    **options
        ``cost_k``, ``tokens_per_param_bounds``, as for :func:`scalebayes.optimal`.
    """
    fits = _fits(fits)
    weights = stacking_weights(fits) if weights is None else weights
    each = {name: optimal(fit, budgets, **options) for name, fit in fits.items()}
    first = next(iter(each.values()))
    mixed = average({name: a.to_dataset() for name, a in each.items()}, weights, seed=seed)
    fields = {name: mixed[name] for name in mixed.data_vars}
    return Allocation(**fields, budgets=first.budgets, cost_k=first.cost_k)


def _fits(fits: Mapping[str, Fit]) -> dict[str, Fit]:
    if not fits:
        raise ScalebayesError("expected at least one fit to average over")
    if len(fits) > 1:
        check_same_runs(fits)
    return dict(fits)
