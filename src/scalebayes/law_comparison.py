"""Which law? Fit several laws to the same runs and rank them: :func:`compare_laws`.

The loop behind ``scalebayes compare`` and ``benchmarks/compare.py``: fit every law with the
same likelihood and NUTS settings, score them by PSIS-LOO, WAIC and/or leave-future-out by
compute (:func:`scalebayes.comparison.compare`), and say in a sentence when the interpolation
score and leave-future-out prefer different laws (:func:`scalebayes.comparison.disagreement`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalebayes.comparison import METHODS, Comparison, compare, disagreement
from scalebayes.data import Runs, load_runs
from scalebayes.errors import ScalebayesError
from scalebayes.fitting import fit
from scalebayes.io import save_fit
from scalebayes.laws import Law, available_laws, load_law
from scalebayes.leave_future_out import LFO, compute_cuts, lfo
from scalebayes.likelihood import Likelihood
from scalebayes.outputs import FIT_SUFFIXES, check_file
from scalebayes.results import Settings

if TYPE_CHECKING:
    import pandas as pd

    from scalebayes.engine import ProgressCallback
    from scalebayes.priors import Prior
    from scalebayes.results import Fit

__all__ = ["LawComparison", "compare_laws"]


@dataclass(frozen=True)
class LawComparison:
    """Several laws fitted to the same runs, ranked by each method asked for.

    Attributes
    ----------
    runs : Runs
        The runs every law was fitted to.
    fits : mapping of str to Fit
        By law name, in the order the laws were given.
    comparisons : mapping of str to Comparison
        By method (``"loo"``, ``"waic"``, ``"lfo"``), in the order asked for.
    saved : mapping of str to str
        Where each fit was saved (empty unless ``out_dir`` was given).
    seconds : mapping of str to mapping of str to float
        Per law, wall time: ``fit`` (its fit, compile included) and, with leave-future-out,
        ``lfo`` (its refits and their scoring).
    """

    runs: Runs
    fits: Mapping[str, Fit]
    comparisons: Mapping[str, Comparison]
    saved: Mapping[str, str] = field(default_factory=dict)
    seconds: Mapping[str, Mapping[str, float]] = field(default_factory=dict, repr=False)

    @property
    def disagreement(self) -> str | None:
        """The sentence of :func:`~scalebayes.comparison.disagreement` when PSIS-LOO and leave-future-out prefer different laws."""
        if "loo" in self.comparisons and "lfo" in self.comparisons:
            return disagreement(self.comparisons["loo"], self.comparisons["lfo"])
        return None

    @property
    def healthy(self) -> bool:
        """True when every fit's sampler diagnostics pass."""
        return all(f.diagnostics.ok for f in self.fits.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: number of runs, each comparison, the disagreement, each fit's diagnostics."""
        return {
            "runs": len(self.runs),
            "comparisons": {m: c.to_dict() for m, c in self.comparisons.items()},
            "disagreement": self.disagreement,
            "fits": {
                name: {
                    "diagnostics": {**f.diagnostics.to_dict(), "ok": f.diagnostics.ok},
                    "saved": self.saved.get(name),
                }
                for name, f in self.fits.items()
            },
        }

    def __str__(self) -> str:
        sections = []
        for result in self.comparisons.values():
            sections.append(str(result))
            sections.extend(str(one) for one in (result.lfo or {}).values())
        if self.disagreement:
            sections.append(self.disagreement)
        width = max(map(len, self.fits))
        closing = [f"{name:<{width}s}  {f.diagnostics}" for name, f in self.fits.items()]
        closing += [f"saved {name} to {path}" for name, path in self.saved.items()]
        return "\n\n".join([*sections, "\n".join(closing)])


def default_laws(runs: Runs) -> list[str]:
    """The catalogue's laws that read both N and D and nothing the runs lack (U's where given).

    What :func:`compare_laws` ranks when no laws are named: the forms that compete for the
    allocation (a law of N, D or C alone cannot allocate).
    """
    have = set(runs.inputs())
    return [name for name, law in available_laws().items()
            if {"N", "D"} <= set(law.inputs) <= have]  # fmt: skip


def compare_laws(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    laws: Sequence[Law | str | os.PathLike[str]] | None = None,
    *,
    methods: str | Sequence[str] = "loo",
    cuts: int | Sequence[float] = 4,
    priors: Mapping[str, str | Prior] | None = None,
    likelihood: Likelihood | None = None,
    settings: Settings | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    log: Callable[[str], None] | None = None,
    **sampler: Any,
) -> LawComparison:
    """Fit each law to ``runs`` and rank them by expected log predictive density.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        The runs, as :func:`scalebayes.fit` takes them.
    laws : sequence of Law, name or path, optional
        Two or more different laws; default :func:`default_laws` of the runs.
    methods : str or sequence of str
        ``"loo"`` (default), ``"waic"``, ``"lfo"`` (leave-future-out by compute), several of
        them, or ``"all"`` for the three.
    cuts : int or sequence of float
        Leave-future-out's compute cut-offs, the same for every law (see
        :func:`scalebayes.leave_future_out.compute_cuts`).
    priors : mapping, optional
        Prior overrides by parameter name, applied to every law that has the parameter.
    likelihood : Likelihood, optional
        Default ``Likelihood(discrepancy="none")``: laws are compared as laws, since a
        discrepancy would absorb the very differences between forms that the scores measure.
    settings, **sampler
        NUTS settings for every fit and refit, as for :func:`scalebayes.fit`.
    out_dir : path, optional
        An existing folder: each fit is saved there as ``<law>.nc``.
    progress : callable, optional
        ``progress(done, total, phase)`` while each law's fit samples.
    log : callable, optional
        Called with one line as each step starts ("[1/3] fitting kaplan", each refit).

    Returns
    -------
    LawComparison
        The fits, one :class:`~scalebayes.comparison.Comparison` per method, the
        disagreement sentence, and where the fits were saved.
    """
    say = log or (lambda text: None)
    methods = _methods(methods)
    runs = runs if isinstance(runs, Runs) else load_runs(runs)
    if laws is None:
        laws = default_laws(runs)
        say(f"comparing the catalogue's laws of N and D{' (and U)' if runs.U is not None else ''}"
            f": {', '.join(laws)} (others: --laws, or laws= in Python)")  # fmt: skip
    laws = [load_law(law) for law in laws]
    names = [law.name for law in laws]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ScalebayesError(
            f"laws {' '.join(names)}: expected two or more different laws to compare"
        )
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:  # before the fits, not after them
        for name in names:
            check_file(folder / f"{name}.nc", suffixes=FIT_SUFFIXES)
    likelihood = likelihood or Likelihood(discrepancy="none")
    settings = Settings.make(settings, **sampler)
    fits: dict[str, Fit] = {}
    seconds: dict[str, dict[str, float]] = {}
    for index, law in enumerate(laws, start=1):
        say(f"[{index}/{len(laws)}] fitting {law.name}")
        started = time.perf_counter()
        fits[law.name] = fit(
            runs, law, priors=priors, likelihood=likelihood, settings=settings, progress=progress
        )
        seconds[law.name] = {"fit": time.perf_counter() - started}
    comparisons = {}
    for method in methods:
        future = None
        if method == "lfo":
            say("leave-future-out: refitting every law below each compute cut-off")
            future = _leave_future_out(fits, cuts, seconds, say)
        comparisons[method] = compare(fits, method=method, lfo_results=future)
    saved = {}
    if folder is not None:
        saved = {name: str(save_fit(f, folder / f"{name}.nc")) for name, f in fits.items()}
    return LawComparison(runs, fits, comparisons, saved, seconds)


def _methods(methods: str | Sequence[str]) -> tuple[str, ...]:
    chosen = (methods,) if isinstance(methods, str) else tuple(methods)
    if chosen == ("all",):
        return METHODS
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise ScalebayesError(
            f"methods={list(chosen)}: expected some of {', '.join(METHODS)}, or 'all'"
        )
    return tuple(dict.fromkeys(chosen))


def _leave_future_out(
    fits: Mapping[str, Fit],
    cuts: int | Sequence[float],
    seconds: dict[str, dict[str, float]],
    say: Callable[[str], None],
) -> dict[str, LFO]:
    """Each law refitted below the same cuts with its fit's own priors, likelihood and settings."""
    first = next(iter(fits.values()))
    values = list(compute_cuts(first.runs, cuts))
    future = {}
    for name, fitted in fits.items():
        started = time.perf_counter()
        future[name] = lfo(
            fitted.runs,
            fitted.law,
            cuts=values,
            likelihood=fitted.likelihood,
            settings=fitted.settings.sampler,
            progress=lambda done, total, phase, name=name: say(f"  {name}: {phase}"),
        )
        seconds[name]["lfo"] = time.perf_counter() - started
    return future
