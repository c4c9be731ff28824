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

    The widest band has opacity ``alpha``, each narrower one 2.2 times more (drawn over it),
    so a 50% band stands out inside a 90% band. Each band's ``gid`` is
    ``"{label} {percent}%"`` so callers and tests can find it.
    """
    bands = []
    for i, prob in enumerate(sorted(probs, reverse=True)):
        low, high = interval_bounds(table, prob)
        band = ax.fill_between(
            x,
            low,
            high,
            color=color,
            alpha=min(1.0, alpha * 2.2**i),
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


def log_ticks(ax: Axes, axis: str = "x", *, at_least: int = 4) -> None:
    """Label a log-scaled ``axis`` of ``ax`` with ``at_least`` ticks where the view allows.

    A log axis spanning two or three decades labels only two or three powers of ten; this
    adds labelled ticks at 3, or at 2 and 5, (or every digit) within each decade until
    ``at_least`` of them fall in the view. Wide views keep matplotlib's decade ticks.
    """
    from matplotlib.ticker import LogFormatterSciNotation, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(_log_locator(at_least))
    # every major tick labelled (2 x 10^8 too), minor ticks unlabelled
    target.set_major_formatter(
        LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf))
    )
    target.set_minor_formatter(NullFormatter())


# Characters per line of a title above the axes: longer lines are wrapped, not cut at the
# figure's edges.
TITLE_WIDTH = 64


def wrapped_title(ax: Axes, text: str, *, width: int = TITLE_WIDTH) -> None:
    """Set ``ax``'s title with each line of ``text`` wrapped at ``width`` characters."""
    import textwrap

    lines = (textwrap.fill(line, width) for line in text.split("\n"))
    ax.set_title("\n".join(lines), fontsize="medium")


def place_legend(ax: Axes, **kwargs: Any) -> Any:
    """The legend of ``ax`` beside it, right of the axes: never over the data.

    Extra keyword arguments go to ``Axes.legend``; returns the Legend.
    """
    kwargs.setdefault("fontsize", "small")
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


# Digits labelled within each decade, fewest first, until enough ticks fall in the view.
_LOG_SUBS = ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0), tuple(float(d) for d in range(1, 10)))


def _log_locator(at_least: int) -> Any:
    from matplotlib.ticker import LogLocator

    class EnoughLogLocator(LogLocator):
        """Decade ticks, plus 3 (or 2 and 5, ...) within each decade on a narrow view."""

        def tick_values(self, vmin: float, vmax: float) -> Any:
            low, high = sorted((vmin, vmax))
            if not (np.isfinite(low) and np.isfinite(high) and low > 0 and high > low):
                return super().tick_values(vmin, vmax)
            decades = np.arange(np.floor(np.log10(low)) - 1, np.ceil(np.log10(high)) + 1)
            for subs in _LOG_SUBS:
                ticks = np.sort(np.outer(10.0**decades, subs).ravel())
                if np.count_nonzero((ticks >= low) & (ticks <= high)) >= at_least:
                    break
            if len(subs) == 1:  # enough decades in view: matplotlib's own (it thins many)
                return super().tick_values(vmin, vmax)
            return ticks

    return EnoughLogLocator()


def _loss_locator() -> Any:
    from matplotlib.ticker import LogLocator

    class LossLocator(LogLocator):
        """Plain ticks spread evenly in log space when the view spans under a decade.

        Linear steps on a log axis crowd its top and leave its bottom bare (2.05 to 5.2: 3, 4,
        5); so the roundest numbers come first (integers, then halves, quarters, fifths, ...),
        each kept only if it is at least a seventh of the view's log span from those kept.
        """

        def tick_values(self, vmin: float, vmax: float) -> Any:
            low, high = sorted((vmin, vmax))
            if low > 0 and high / low < 10:
                return _spread_ticks(low, high)
            return super().tick_values(vmin, vmax)

    return LossLocator()


def _spread_ticks(low: float, high: float, n: int = 7) -> np.ndarray:
    """About ``n`` round numbers in [low, high], at least log(high/low)/n apart in log space."""
    top = np.floor(np.log10(high))
    units = [10.0**e * f for e in np.arange(top, top - 4, -1) for f in (1.0, 0.5, 0.25, 0.2)]
    # every multiple of a unit down to a twelfth of the view
    candidates = np.unique(
        np.concatenate(
            [
                np.arange(np.ceil(low / unit), np.floor(high / unit) + 1) * unit
                for unit in units
                if unit >= (high - low) / 12
            ]
            or [np.array([low, high])]
        )
    )
    candidates = candidates[candidates > 0]

    def roundness(value: float) -> int:
        for rank, unit in enumerate(units):
            if abs(value / unit - round(value / unit)) < 1e-6:
                return rank
        return len(units)

    gap = np.log(high / low) / n
    kept: list[float] = []
    for value in sorted(candidates, key=roundness):
        if all(abs(np.log(value / other)) >= gap * (1 - 1e-9) for other in kept):
            kept.append(float(value))
    return np.sort(np.asarray(kept))


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
