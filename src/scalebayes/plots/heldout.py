"""Calibration on runs a fit did not see: the PIT histogram of held-out runs.

Each held-out run's PIT is the share of its new-run predictive draws below its observed log
loss (:func:`scalebayes.scoring.pit`). Calibrated predictions make these uniform: a flat
histogram. A U shape means the intervals are too narrow (runs land in the tails), a hump that
they are too wide, a tilt that the predictions are biased (more mass right: losses higher than
predicted). :func:`scalebayes.scoring.pit_histogram` bins the values; this module only draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from scalebayes.plots._common import PREDICTIVE_COLOR, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scalebayes.scoring import PitHistogram

PIT_LABEL = "PIT: share of predictive draws below the observed log loss"


def pit(histogram: PitHistogram, *, law: str, ax: Axes | None = None) -> Axes:
    """One PIT histogram: the counts, the uniform reference and its sampling band.

    Parameters
    ----------
    histogram : PitHistogram
        From :func:`scalebayes.scoring.pit_histogram`; its ``label`` names the held-out runs
        (a backtest's cut) in the title.
    law : str
        The law's name, for the title.
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Axes
        Artists with gids ``"pit"`` (the histogram), ``"uniform"`` (the expected count per
        bin) and ``"uniform band"`` (the central interval of one bin's count under uniformity).
    """
    ax = new_axes(ax, figsize=(5.4, 4.0))
    low, high = histogram.band
    band = ax.axhspan(
        low,
        high,
        color="0.5",
        alpha=0.18,
        lw=0,
        label=f"{histogram.prob:.0%} range of a bin if uniform",
        zorder=0,
    )
    band.set_gid("uniform band")
    bars = ax.stairs(
        histogram.counts,
        histogram.edges,
        fill=True,
        color=PREDICTIVE_COLOR,
        alpha=0.8,
        label="held-out runs",
        zorder=2,
    )
    bars.set_gid("pit")
    ax.stairs(histogram.counts, histogram.edges, color="0.2", lw=0.8, zorder=3)
    line = ax.axhline(
        histogram.expected, color="0.15", ls="--", lw=1.2, label="uniform: calibrated", zorder=4
    )
    line.set_gid("uniform")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.2 * max(float(np.max(histogram.counts)), high) + 0.5)
    ax.set_xlabel(PIT_LABEL)
    ax.set_ylabel("held-out runs per bin")
    which = f", {histogram.label}" if histogram.label else ""
    ax.set_title(
        f"{law}: PIT of {histogram.n} held-out runs{which}\n"
        "U shape: intervals too narrow; hump: too wide; tilt: biased",
        fontsize="medium",
    )
    ax.legend(fontsize="x-small", loc="upper center", ncols=3)
    return ax


def pit_panels(histograms: Sequence[PitHistogram], *, law: str) -> np.ndarray:
    """One :func:`pit` panel per histogram (a backtest's cuts), side by side; the Axes array."""
    import matplotlib.pyplot as plt

    k = len(histograms)
    _, axes = plt.subplots(1, k, figsize=(5.4 * k, 4.0), layout="constrained", squeeze=False)
    for histogram, ax in zip(histograms, axes[0], strict=True):
        pit(histogram, law=law, ax=ax)
    return axes[0]
