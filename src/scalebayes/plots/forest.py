"""A grouped fit's forest: each group's value of each parameter beside the population's.

:func:`scalebayes.figures.forest_table` computes the rows (median and interval per group, a new
group's and the population's); :func:`forest` only draws them, one panel per parameter.
ArviZ's ``plot_forest`` puts every parameter on one horizontal axis, which does not hold an
exponent near 0.3 beside a coefficient near 1e5; hence these panels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scalebayes.errors import ScalebayesError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

POPULATION_COLOR = "0.55"
GROUP_COLOR = "tab:blue"
NEW_COLOR = "tab:orange"
# A parameter whose interval spans more than this ratio is drawn on a log axis (coefficients).
LOG_RATIO = 10.0


def forest(
    table: pd.DataFrame, *, law: str, shared: Sequence[str] = (), prob: float = 0.9
) -> np.ndarray:
    """One panel per parameter: each group's median and interval, a new group's, the population's.

    Parameters
    ----------
    table : DataFrame
        :func:`scalebayes.figures.forest_table`: columns ``parameter``, ``row`` (a group's
        label, ``"new group"`` or ``"population"``), ``kind`` (``group``, ``new``,
        ``population``), ``median``, ``lower``, ``upper``.
    law : str
        The law's name, for the title.
    shared : sequence of str
        Parameters shared by every group (named in the title; they have no panel).
    prob : float
        The intervals' probability (for the labels).

    Returns
    -------
    ndarray of Axes
        Groups as filled points with their interval (gid ``"groups"``), a new group as an open
        point (gid ``"new group"``), the population's median as a line and its interval as a
        band (gids ``"population"``, ``"population interval"``).
    """
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(table["parameter"]))
    if not names:
        raise ScalebayesError("forest: no parameter varies across groups (all shared)")
    cols = min(len(names), 3)
    rows = -(-len(names) // cols)
    rows_per_panel = int((table["parameter"] == names[0]).sum())
    height = 0.9 + 0.32 * rows_per_panel
    _, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, height * rows), layout="constrained", squeeze=False
    )
    for ax, name in zip(axes.flat, names, strict=False):
        _panel(ax, table[table["parameter"] == name], name, prob)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    note = f"; shared by all groups: {', '.join(shared)}" if shared else ""
    axes.flat[0].get_figure().suptitle(
        f"{law}: each group's value, a new group's and the population's "
        f"(median, {prob * 100:g}% interval){note}",
        fontsize="medium",
    )
    return axes.ravel()[: len(names)]


def _panel(ax: Axes, rows: pd.DataFrame, name: str, prob: float) -> None:
    population = rows[rows["kind"] == "population"]
    drawn = rows[rows["kind"] != "population"]
    y = np.arange(len(drawn))[::-1].astype(float)
    if len(population):
        p = population.iloc[0]
        band = ax.axvspan(p["lower"], p["upper"], color=POPULATION_COLOR, alpha=0.2, lw=0)
        band.set_gid("population interval")
        line = ax.axvline(p["median"], color=POPULATION_COLOR, lw=1.4, ls="--")
        line.set_gid("population")
    for kind, color, face, gid in (
        ("group", GROUP_COLOR, GROUP_COLOR, "groups"),
        ("new", NEW_COLOR, "white", "new group"),
    ):
        mask = (drawn["kind"] == kind).to_numpy()
        if not mask.any():
            continue
        part = drawn[mask]
        errors = np.vstack([part["median"] - part["lower"], part["upper"] - part["median"]])
        container = ax.errorbar(
            part["median"], y[mask], xerr=errors, fmt="o", color=color, mfc=face, ms=6, capsize=0
        )
        container.lines[0].set_gid(gid)
    ax.set_yticks(y, drawn["row"].tolist())
    ax.set_ylim(-0.7, len(drawn) - 0.3)
    low, high = rows["lower"].min(), rows["upper"].max()
    if low > 0 and high / low > LOG_RATIO:
        ax.set_xscale("log")
    ax.set_title(name, fontsize="medium")
    ax.tick_params(labelsize="small")
    ax.set_xlabel(f"{name} (median, {prob * 100:g}% interval)", fontsize="small")
