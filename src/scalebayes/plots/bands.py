"""Loss against compute (or N at fixed D, D at fixed N): observed runs and posterior bands.

:func:`band_predictions` computes the two predictions on a grid (the law's mean: credible;
a new run: predictive); :func:`bands` only draws them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scalebayes.data import Runs, load_runs, repeats
from scalebayes.errors import ScalebayesError
from scalebayes.plots._common import (
    AXIS_LABELS,
    CREDIBLE_COLOR,
    HELDOUT_STYLE,
    LOSS_LABEL,
    OBSERVED_STYLE,
    PREDICTIVE_COLOR,
    check_axis,
    fill_bands,
    log_ticks,
    mark_extrapolation,
    new_axes,
    place_legend,
    plain_loss_ticks,
    wrapped_title,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scalebayes.prediction import Prediction
    from scalebayes.results import Fit

# Runs whose other input lies within this factor of a slice's fixed value are drawn on it.
SLICE_FACTOR = 1.5
# Along compute (at a fixed D/N), runs within this factor of that D/N are drawn solid, the
# others open: an isoFLOP sweep's runs far from the slice's D/N lie above its bands.
RATIO_FACTOR = 2.0
OFF_SLICE_STYLE = {
    "facecolors": "none",
    "edgecolors": "0.55",
    "marker": "o",
    "s": 14,
    "zorder": 4,
    "linewidths": 0.7,
}


def default_axis(fit: Fit) -> str:
    """C for laws of N and D (or of C); otherwise the law's own single input."""
    inputs = set(fit.law.inputs)
    if {"N", "D"} <= inputs or "C" in inputs:
        return "C"
    return "N" if "N" in inputs else "D"


def bands(
    fit: Fit,
    prediction_mean: Prediction,
    prediction_new_run: Prediction,
    *,
    ax: Axes | None = None,
    axis: str = "C",
    heldout: Runs | pd.DataFrame | None = None,
    probs: Sequence[float] = (0.5, 0.9),
) -> Axes:
    """Observed runs with credible and predictive bands of loss, on log-log axes.

    Parameters
    ----------
    fit : Fit
        The posterior whose runs are drawn as points.
    prediction_mean, prediction_new_run : Prediction
        Loss at the same grid points, ``kind="mean"`` (credible bands, blue) and
        ``kind="new_run"`` (predictive bands, orange), e.g. from :func:`band_predictions`.
    ax : Axes, optional
        Where to draw; a new figure if None.
    axis : {"C", "N", "D"}
        Horizontal axis. For N (D) the grid is a slice at fixed D (N), and only runs within
        a factor 1.5 of that value are drawn.
    heldout : Runs or DataFrame, optional
        Runs the fit did not see, drawn as open red diamonds; a DataFrame is read as
        :func:`scalebayes.load_runs` reads one (so its columns are checked the same way).
    probs : sequence of float
        Interval probabilities, one band each per kind.

    Returns
    -------
    Axes
        With the bands (``PolyCollection`` with gids ``"credible (mean loss) 90%"``,
        ``"predictive (new run) 50%"``, ...), the median line (gid ``"median"``),
        the runs (gid ``"observed"``, ``"held-out"``) and the extrapolation shading. Along
        compute at a fixed D/N, ``"observed"`` holds the runs within a factor 2 of that D/N
        and ``"off slice"`` (open circles) the others, which the bands do not describe.
    """
    check_axis(axis)
    if prediction_mean.kind != "mean" or prediction_new_run.kind != "new_run":
        raise ScalebayesError(
            f"bands: expected a 'mean' and a 'new_run' prediction, got "
            f"{prediction_mean.kind!r} and {prediction_new_run.kind!r}"
        )
    points = prediction_mean.points
    other = prediction_new_run.points.to_numpy()
    if other.shape != points.shape or not np.allclose(points.to_numpy(), other, equal_nan=True):
        raise ScalebayesError("bands: the two predictions are at different points")
    x = points[axis].to_numpy(float)
    if not np.all(np.isfinite(x)):
        raise ScalebayesError(f"bands: the predictions have no {axis} to draw along")
    order = np.argsort(x)
    x = x[order]
    credible = prediction_mean.summary(probs=probs).iloc[order]
    predictive = prediction_new_run.summary(probs=probs).iloc[order]

    ax = new_axes(ax, figsize=(8.2, 4.6))
    fill_bands(
        ax, x, predictive, probs, color=PREDICTIVE_COLOR, label="predictive (new run)", alpha=0.2
    )
    fill_bands(
        ax,
        x,
        credible,
        probs,
        color=CREDIBLE_COLOR,
        label="credible (mean loss)",
        alpha=0.3,
        zorder=2,
    )
    (line,) = ax.plot(
        x, credible["median"], color=CREDIBLE_COLOR, lw=1.6, label="posterior median", zorder=3
    )
    line.set_gid("median")

    fixed, note = _slice(points, axis)
    shown = _in_slice(fit.runs.table, axis, fixed)
    ratio = _ratio(points) if axis == "C" else None
    fresh_only = "U" in points and "U" in shown  # a law of repeated data, drawn for U = D
    if fresh_only:
        note += "\nfor fresh data (U = D): runs that repeat theirs (open) lie above"
    if ratio is not None:
        near = np.abs(np.log(shown["D"] / shown["N"] / ratio)) <= np.log(RATIO_FACTOR)
        if fresh_only:
            near &= ~repeats(shown)
        off = shown[~near]
        shown = shown[near]
        if len(off):
            others = ax.scatter(
                off[axis],
                off["loss"],
                **OFF_SLICE_STYLE,
                label=f"fitted runs at other D/N{' or repeating data' if fresh_only else ''}"
                f" ({len(off)}):\nnot on this slice",
            )
            others.set_gid("off slice")
        what = f"fitted runs at D/N {ratio / RATIO_FACTOR:.3g}-{ratio * RATIO_FACTOR:.3g}"
    else:
        what = "fitted runs"
    observed = ax.scatter(
        shown[axis], shown["loss"], **OBSERVED_STYLE, label=f"{what} ({len(shown)})"
    )
    observed.set_gid("observed")
    if heldout is not None:
        if not isinstance(heldout, Runs):
            heldout = load_runs(heldout, cost_k=fit.runs.cost_k)
        held = _in_slice(heldout.table, axis, fixed)
        marker = ax.scatter(
            held[axis], held["loss"], **HELDOUT_STYLE, label=f"held-out runs ({len(held)})"
        )
        marker.set_gid("held-out")
    mark_extrapolation(ax, x, *prediction_mean.fitted_range[axis])

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(AXIS_LABELS[axis])
    ax.set_ylabel(LOSS_LABEL)
    log_ticks(ax, "x")
    plain_loss_ticks(ax)
    # A long law title (the data-constrained law's) is wrapped rather than cut at the edges.
    wrapped_title(ax, f"{fit.law.name}: {fit.law.title}{note}")
    place_legend(ax)
    return ax


def bands_panels(
    panels: Mapping[str, tuple[Fit, Prediction, Prediction]],
    *,
    axis: str = "C",
    probs: Sequence[float] = (0.5, 0.9),
) -> np.ndarray:
    """One :func:`bands` panel per label (a grouped fit's groups), side by side, one loss axis.

    ``panels`` maps each label to its fit and its ``mean`` and ``new_run`` predictions; each
    panel is titled with its label. Returns the Axes array.
    """
    import matplotlib.pyplot as plt

    k = len(panels)
    if not k:
        raise ScalebayesError("bands_panels: nothing to draw")
    _, axes = plt.subplots(
        1, k, figsize=(6.0 * k, 5.2), layout="constrained", squeeze=False, sharey=True
    )
    for (label, (fit, mean, new_run)), ax in zip(panels.items(), axes[0], strict=True):
        bands(fit, mean, new_run, ax=ax, axis=axis, probs=probs)
        ax.set_title(f"{label}\n{ax.get_title()}", fontsize="medium")
    return axes[0]


def _ratio(points: pd.DataFrame) -> float | None:
    """The D/N the grid's points share, if they share one."""
    ratio = (points["D"] / points["N"]).to_numpy(float)
    if np.all(np.isfinite(ratio)) and np.allclose(ratio, ratio[0], rtol=1e-6):
        return float(ratio[0])
    return None


def _slice(points: pd.DataFrame, axis: str) -> tuple[tuple[str, float] | None, str]:
    """The input held fixed along the grid (name, value) and a note for the title."""
    if axis == "C":
        ratio = _ratio(points)
        if ratio is not None:
            return None, (
                f"\nbands along D/N = {ratio:.3g} tokens per parameter;\n"
                "runs at other D/N (open) lie off this slice, mostly above it"
            )
        return None, ""
    other = "D" if axis == "N" else "N"
    values = points[other].to_numpy(float)
    if np.all(np.isfinite(values)) and np.allclose(values, values[0], rtol=1e-6):
        unit = "tokens" if other == "D" else "parameters"
        note = f"\nat {other} = {values[0]:.3g} {unit} (runs within x{SLICE_FACTOR:g})"
        return (other, float(values[0])), note
    return None, ""


def _in_slice(table: pd.DataFrame, axis: str, fixed: tuple[str, float] | None) -> pd.DataFrame:
    if fixed is None:
        return table
    name, value = fixed
    ratio = table[name].to_numpy(float) / value
    return table[(ratio <= SLICE_FACTOR) & (ratio >= 1 / SLICE_FACTOR)]
