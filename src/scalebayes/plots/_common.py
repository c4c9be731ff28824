"""What every plot shares: axis labels with units, new axes, interval bands, the extrapolation mark."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.errors import ScalebayesError
from scalebayes.outputs import IMAGE_SUFFIXES, check_file, replacing

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

AXIS_LABELS = {
    "N": "parameters N (count)",
    "D": "training tokens D (tokens)",
    "C": "training compute C (FLOPs)",
    "loss": "loss (nats/token)",
    "tokens_per_param": "tokens per parameter D/N",
}
LOSS_LABEL = AXIS_LABELS["loss"]

# Credible (the law's own uncertainty) in blue, predictive (a new run's outcome) in orange:
# a reader must never mistake the narrow band for the one a single run falls in.
CREDIBLE_COLOR = "tab:blue"
PREDICTIVE_COLOR = "tab:orange"
OBSERVED_STYLE = {"color": "0.15", "marker": "o", "s": 14, "zorder": 5, "linewidths": 0}
HELDOUT_STYLE = {
    "facecolors": "none",
    "edgecolors": "tab:red",
    "marker": "D",
    "s": 30,
    "zorder": 6,
    "linewidths": 1.2,
}
EXTRAPOLATION_STYLE = {"color": "0.5", "alpha": 0.12, "lw": 0, "zorder": 0}


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.4)) -> Axes:
    """``ax`` itself, or the axes of a new pyplot figure (closed by whoever saves it)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, created = plt.subplots(figsize=figsize, layout="constrained")
    return created


def check_axis(axis: str, allowed: Sequence[str] = ("C", "N", "D")) -> str:
    """Raise a :class:`ScalebayesError` unless ``axis`` is one of ``allowed``."""
    if axis not in allowed:
        raise ScalebayesError(f"axis={axis!r}: expected one of {', '.join(map(repr, allowed))}")
    return axis


def interval_bounds(table: pd.DataFrame, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound columns of a summary table (``eti90_lb``/``eti90_ub`` style)."""
    kind = table.attrs.get("kind", "eti")
    label = f"{kind}{prob * 100:g}"
    try:
        return table[f"{label}_lb"].to_numpy(float), table[f"{label}_ub"].to_numpy(float)
    except KeyError:
        raise ScalebayesError(
            f"the summary has no {prob:g} interval (columns {list(table.columns)}); "
            f"summarise with probs including {prob:g}"
        ) from None


def fill_bands(
    ax: Axes,
    x: np.ndarray,
    table: pd.DataFrame,
    probs: Sequence[float],
    *,
    color: str,
    label: str,
    alpha: float = 0.3,
    zorder: float = 1,
) -> list[Any]:
    """One filled band per probability, widest first and palest; returns the PolyCollections.

    Each band's ``gid`` is ``"{label} {percent}%"`` so callers and tests can find it.
    """
    bands = []
    for prob in sorted(probs, reverse=True):
        low, high = interval_bounds(table, prob)
        band = ax.fill_between(
            x,
            low,
            high,
            color=color,
            alpha=alpha * (1.6 if prob <= 0.5 else 1.0),
            lw=0,
            label=f"{prob:.0%} {label}",
            zorder=zorder,
        )
        band.set_gid(f"{label} {prob:.0%}")
        bands.append(band)
    return bands


def mark_extrapolation(ax: Axes, x: np.ndarray, low: float, high: float) -> list[Any]:
    """Shade the stretches of ``x`` outside the fitted range [low, high]; returns the patches."""
    patches = []
    if np.max(x) > high:
        patch = ax.axvspan(high, np.max(x), **EXTRAPOLATION_STYLE, label="extrapolation")
        patch.set_gid("extrapolation")
        patches.append(patch)
    if np.min(x) < low:
        patch = ax.axvspan(
            np.min(x), low, **EXTRAPOLATION_STYLE, label=None if patches else "extrapolation"
        )
        patch.set_gid("extrapolation")
        patches.append(patch)
    return patches


def plain_loss_ticks(ax: Axes) -> None:
    """Label a log-scaled loss axis with plain numbers, five or so of them (1.9, 2, 2.1, ...).

    Losses span less than a decade, where a log axis labels only the integers it crosses (often
    two ticks for a whole panel); within a decade the ticks are chosen as on a linear axis.
    """
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.yaxis.set_major_locator(_loss_locator())
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _loss_locator() -> Any:
    from matplotlib.ticker import LogLocator, MaxNLocator

    class LossLocator(LogLocator):
        """Linear 'nice' ticks when the view spans under a decade; log ticks otherwise."""

        def tick_values(self, vmin: float, vmax: float) -> Any:
            low, high = sorted((vmin, vmax))
            if low > 0 and high / low < 10:
                ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
                return ticks[ticks > 0]
            return super().tick_values(vmin, vmax)

    return LossLocator()


def figure_of(obj: Any) -> Figure:
    """The matplotlib Figure behind an Axes, an array of Axes, a Figure or an ArviZ PlotCollection."""
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(obj, Figure):
        return obj
    if isinstance(obj, Axes):
        return obj.get_figure(root=True)
    if isinstance(obj, np.ndarray):
        return figure_of(obj.flat[0])
    viz = getattr(obj, "viz", None)
    if viz is not None:
        return viz["figure"].item()
    raise TypeError(f"no matplotlib figure in {type(obj).__name__}")


def save(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 110) -> None:
    """Write ``figure`` (PNG, SVG or PDF by the suffix), whole or not at all, and close it."""
    import matplotlib.pyplot as plt

    try:
        target = check_file(path, suffixes=IMAGE_SUFFIXES)
        with replacing(target) as tmp:
            figure.savefig(tmp, dpi=dpi, format=target.suffix[1:].lower())
    finally:
        plt.close(figure)
