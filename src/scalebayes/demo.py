"""The main job end to end: :func:`run_demo`, what ``scalebayes demo`` runs.

Simulate a Chinchilla-scale isoFLOP ladder from known constants (Epoch AI's refit of
Chinchilla), fit it, write the figures, and set the posterior beside the truth. Or the same on
a table of real runs, without a truth to compare with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalebayes import simulation as sim
from scalebayes.data import Runs, load_runs
from scalebayes.describe import fit_text
from scalebayes.errors import ScalebayesError
from scalebayes.fitting import fit
from scalebayes.formatting import format_interval, format_number, text_columns
from scalebayes.io import save_fit
from scalebayes.outputs import FIT_SUFFIXES, check_file, check_folder
from scalebayes.results import Settings

if TYPE_CHECKING:
    from scalebayes.allocate import Allocation
    from scalebayes.engine import ProgressCallback
    from scalebayes.laws import Law
    from scalebayes.results import Fit

__all__ = ["FIGURES", "Demo", "run_demo"]

FIGURES = ("bands", "isoflop", "frontier", "residuals", "prior", "trace")
"""The figure kinds the demo writes (see :data:`scalebayes.figures.KINDS`)."""

# The frontier, and the allocation the demo prints, reach Chinchilla's own budget and 1e25 FLOPs.
FRONTIER_BUDGETS = (5.76e23, 1e25)
# The allocation's quantities the demo prints: (attribute, column heading).
DECIDED = (("N", "N*"), ("tokens_per_param", "tokens/param"), ("loss", "loss L*"))


@dataclass(frozen=True)
class Demo:
    """What the demo did: the data, the fit, the figures, and how the fit compares with the truth.

    Attributes
    ----------
    runs : Runs
        The synthetic ladder or the table given.
    fit : Fit
        The posterior.
    about : str
        What the runs are, in a sentence or two.
    truth : mapping of str to float, optional
        The constants the synthetic runs were drawn from (None for real data).
    figures : Path, optional
        The folder the figures were written to (None when none were asked for).
    written : tuple of str
        File names of the figures written there.
    skipped : tuple of str
        Figures not drawn, each with the reason (e.g. a law without both N and D has no frontier).
    saved : str, optional
        Where the fit was saved.
    allocation : Allocation, optional
        The compute-optimal runs at :data:`FRONTIER_BUDGETS` under the fitted law (None for a
        law without both N and D).
    whole_model : Allocation, optional
        The same from the whole model, law + GP (approach 3m, which ``optimal --approach all``
        recommends on isoFLOP sweeps); None where the fit has no GP or the runs no sweeps.
    """

    runs: Runs
    fit: Fit
    about: str
    truth: Mapping[str, float] | None = None
    figures: Path | None = None
    written: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    saved: str | None = None
    allocation: Allocation | None = None
    whole_model: Allocation | None = None

    @property
    def truth_inside(self) -> int | None:
        """How many true constants lie inside their 90% posterior interval (None without a truth)."""
        if self.truth is None:
            return None
        table = self.fit.summary(ci_prob=0.9)
        return sum(
            bool(table.loc[name, "lower"] <= value <= table.loc[name, "upper"])
            for name, value in self.truth.items()
        )

    def __str__(self) -> str:
        lines = [self.about, str(self.runs)]
        if self.figures is not None:
            lines += ["", f"figures written to {self.figures}/: {', '.join(self.written)}"]
            lines += [f"  not drawn: {note}" for note in self.skipped]
        lines += ["", fit_text(self.fit, self.truth)]
        if self.saved:
            lines.append(f"saved to {self.saved}")
        if self.truth is not None:
            lines.append(
                f"truth inside the 90% interval for {self.truth_inside} of {len(self.truth)} "
                "parameters (across many seeds, expect about 90%)"
            )
        if self.allocation is not None:
            heading = "compute-optimal runs under the fitted law (approach 3)"
            lines += ["", *self._allocation_lines(self.allocation, heading)]
        if self.whole_model is not None:
            heading = (
                "the same from the whole model, law + GP (approach 3m, recommended on isoFLOP "
                "sweeps: wider, it trusts the law's shape only where the runs are)"
            )
            lines += ["", *self._allocation_lines(self.whole_model, heading)]
        return "\n".join(lines)

    def _allocation_lines(self, allocation: Allocation, heading: str) -> list[str]:
        """The compute-optimal runs with 90 % intervals, and the truth's beside them if known."""
        budgets = allocation.budgets
        truth = None if self.truth is None else sim.chinchilla_optimum(self.truth, budgets)
        rows, inside = [], 0
        for i, c in enumerate(budgets):
            row = [f"{c:.3g}"]
            for name, _ in DECIDED:
                draws = getattr(allocation, name).isel(budget=i).to_numpy().ravel()
                low, mid, high = np.quantile(draws, [0.05, 0.5, 0.95])
                cell = f"{format_number(mid)} {format_interval(low, high)}"
                if truth is not None:
                    cell += f" ({format_number(truth[name][i])})"
                    inside += int(low <= truth[name][i] <= high)
                row.append(cell)
            rows.append(row)
        lines = [
            f"{heading}: median [90% interval]" + (", truth in ()" if truth is not None else "")
        ]
        lines.append(text_columns(["C (FLOPs)", *(title for _, title in DECIDED)], rows))
        if truth is not None:
            lines.append(
                f"truth inside the 90% interval for {inside} of {len(rows) * len(DECIDED)} "
                "(they come from the same draws, so they miss together)"
            )
        return lines


def run_demo(
    data: Runs | str | os.PathLike[str] | None = None,
    *,
    law: Law | str | os.PathLike[str] = "chinchilla",
    figures: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    **sampler: Any,
) -> Demo:
    """Fit ``law`` to a synthetic ladder with known truth (or to ``data``) and draw the figures.

    Parameters
    ----------
    data : Runs or path, optional
        Real runs to use instead of the synthetic ladder: 81 runs at 9 budgets from 6e18 to
        3e21 FLOPs, drawn from the Chinchilla law with Epoch AI's refit of its constants and 1 %
        log-normal run-to-run noise (seeded by ``settings.seed``).
    law : Law, name or path
        The law to fit (default chinchilla).
    figures : path, optional
        A folder (created if missing) to write :data:`FIGURES` into as PNG files.
    out : path, optional
        Also save the fit there (NetCDF).
    settings, **sampler
        NUTS settings, as for :func:`scalebayes.fit`; the likelihood is the default one.
    progress : callable, optional
        ``progress(done, total, phase)`` while sampling.

    Returns
    -------
    Demo
        Its text is what ``scalebayes demo`` prints.
    """
    settings = Settings.make(settings, **sampler)
    truth = None
    if data is None:
        truth = dict(sim.EPOCH_CHINCHILLA)
        design = sim.isoflop_design(sim.CHINCHILLA_BUDGETS)
        runs = sim.simulate("chinchilla", truth, design, noise=0.01, seed=settings.seed)
        budgets = sim.CHINCHILLA_BUDGETS
        about = (
            f"scalebayes demo: SYNTHETIC data - an isoFLOP ladder of {len(runs)} runs "
            f"({len(budgets)} budgets, {min(budgets):.0e}-{max(budgets):.0e} FLOPs)\n"
            "drawn from L = E + A/N^alpha + B/D^beta with Epoch AI's refit of Chinchilla "
            "(Besiroglu et al. 2024) and 1% log-normal run-to-run noise."
        )
    else:
        runs = data if isinstance(data, Runs) else load_runs(data)
        about = f"scalebayes demo on {runs.source if isinstance(data, Runs) else data}"
    if out is not None:  # before the fit, not after it
        check_file(out, suffixes=FIT_SUFFIXES)
    if figures is not None:
        check_folder(figures)
    result = fit(runs, law, settings=settings, progress=progress)
    saved = str(save_fit(result, out)) if out is not None else None
    allocation, whole_model = _allocation(result, "3"), _whole_model(result)
    folder, written, skipped = None, [], []
    if figures is not None:
        folder = Path(figures)
        folder.mkdir(parents=True, exist_ok=True)
        folder = folder.resolve()
        written, skipped = _draw(result, folder)
    return Demo(
        runs,
        result,
        about,
        truth,
        folder,
        tuple(written),
        tuple(skipped),
        saved,
        allocation,
        whole_model,
    )


def _allocation(result: Fit, approach: str) -> Allocation | None:
    """The compute-optimal runs at :data:`FRONTIER_BUDGETS` by approach 3 or 3m, if it applies.

    None where the approach cannot run (a law without N and D; for 3m, a fit without a GP).
    """
    from scalebayes.allocation import estimator

    try:
        return estimator(approach).allocate(result, FRONTIER_BUDGETS)
    except ScalebayesError:  # LawError among them
        return None


def _whole_model(result: Fit) -> Allocation | None:
    """Approach 3m's allocation where it is recommended: runs forming enough isoFLOP sweeps."""
    from scalebayes.allocation.whole_model import MIN_SWEEPS

    allocation = _allocation(result, "3m")
    return allocation if allocation is not None and allocation.edge_sweeps >= MIN_SWEEPS else None


def _draw(result: Fit, folder: Path) -> tuple[list[str], list[str]]:
    """Each of :data:`FIGURES` as ``folder/<kind>.png``; the ones that cannot be drawn, with why."""
    from scalebayes import figures, plots

    written, skipped = [], []
    for kind in FIGURES:
        path = folder / f"{kind}.png"
        budgets = list(FRONTIER_BUDGETS) if kind == "frontier" else None
        try:
            plots.save(figures.draw(result, kind, budgets=budgets), str(path))
        except ScalebayesError as err:  # e.g. a law without both N and D has no frontier
            skipped.append(f"{kind} ({err})")
            continue
        written.append(path.name)
    return written, skipped
