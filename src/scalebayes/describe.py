"""A fit in words and in plain JSON: the parameter table, the full text report, the record.

What ``scalebayes fit``, ``show`` and ``demo`` print, as library functions on a
:class:`~scalebayes.results.Fit` (the meanings come from ``fit.param_docs()``, that is from
the law and the likelihood).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scalebayes.formatting import format_number

if TYPE_CHECKING:
    from scalebayes.results import Fit
    from scalebayes.saved import SavedFit

__all__ = ["fit_record", "fit_text", "parameter_table"]


def parameter_table(fit: Fit | SavedFit, truth: Mapping[str, float] | None = None) -> str:
    """Per reported parameter: median, 90% equal-tailed interval, R-hat, bulk and tail ESS, meaning.

    With ``truth`` (e.g. the constants a synthetic table was drawn from), a column of the
    true values is added.
    """
    table = fit.summary()
    width = max(8, *(len(name) for name in table.index))
    rows = [
        f"{'param':{width}s} {'median':>10s} {'90% interval':>25s} {'R-hat':>6s} {'ESS bulk':>8s} "
        f"{'ESS tail':>8s}" + (f" {'truth':>9s}" if truth else "") + "  meaning"
    ]
    docs = fit.param_docs()
    for name in table.index:
        row = table.loc[name]
        interval = f"[{format_number(row['lower'])}, {format_number(row['upper'])}]"
        line = (
            f"{name:{width}s} {format_number(row['median']):>10s} {interval:>25s} {row['r_hat']:6.3f} "
            f"{row['ess_bulk']:8.0f} {row['ess_tail']:8.0f}"
        )
        if truth:
            line += f" {format_number(truth[name]) if name in truth else '':>9s}"
        rows.append(f"{line}  {docs.get(name, '')}")
    return "\n".join(rows)


def fit_text(fit: Fit | SavedFit, truth: Mapping[str, float] | None = None) -> str:
    """The law and model in one line, :func:`parameter_table`, time, diagnostics and warnings."""
    discrepancy = fit.likelihood.discrepancy
    model = f"{len(fit.runs)} runs, {fit.likelihood.family} noise on log loss"
    if discrepancy.param_names(fit.law, ()):
        model += f", {discrepancy.label} discrepancy"
    lines = [f"law {fit.law.name}: {fit.law.title}    ({model})", parameter_table(fit, truth)]
    wall = fit.settings.wall_time
    if wall:
        lines.append(
            f"time: {wall.get('compile', 0):.1f} s compile, {wall.get('sampling', 0):.1f} s sampling"
        )
    lines.extend(fit.diagnostics.lines())
    return "\n".join(lines)


def fit_record(fit: Fit | SavedFit) -> dict[str, Any]:
    """JSON-serialisable summary: law, number of runs, parameter table, diagnostics, wall time."""
    table = fit.summary()
    return {
        "law": fit.law.name,
        "runs": len(fit.runs),
        "params": {name: {k: float(v) for k, v in table.loc[name].items()} for name in table.index},
        "diagnostics": {
            **fit.diagnostics.to_dict(),
            "ok": fit.diagnostics.ok,
            "problems": fit.diagnostics.problems,
        },
        "wall_time_s": dict(fit.settings.wall_time),
    }
