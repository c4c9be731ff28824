"""A one-page, self-contained HTML report of a fit.

The page holds the law, the data, the parameters, diagnostics, figures, decisions at the
budgets asked for, and a comparison with other laws' fits.

Figures are embedded as base64 PNGs, so the single file can be mailed or attached to a
planning document as it is.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.errors import (
    AllocationWarning,
    ExtrapolationWarning,
    OutputError,
    ScalebayesError,
)
from scalebayes.formatting import format_number
from scalebayes.outputs import check_folder, replacing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from scalebayes.engine import ProgressCallback
    from scalebayes.groups.result import GroupedFit
    from scalebayes.results import Fit

REPORT_NAME = "report.html"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:last-child { text-align: left; }
pre, code { background: #f6f6f6; font-size: 0.9em; } pre { padding: 0.6em; overflow-x: auto; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.ok { color: #1a7f37; font-weight: bold; } .check { color: #b3261e; font-weight: bold; }
.note { color: #555; font-size: 0.9em; }
"""


# The figures of the page's "Checks" section, after its predictions.
CHECK_KINDS = ("residuals", "prior", "trace", "rank", "pairs")


def write_report(
    fit: Fit,
    out: str | os.PathLike[str],
    *,
    others: Mapping[str, Fit] | None = None,
    budgets: Sequence[float] | None = None,
    seed: int = 0,
    approaches: bool = False,
    unique_tokens: float | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write ``out/report.html`` (or ``out`` itself, a ``.html`` path) for ``fit``; return its path.

    Parameters
    ----------
    fit : Fit
        The posterior to report.
    out : path
        Directory to write ``report.html`` into (created if missing), or the page's own path
        ending in ``.html``.
    others : mapping of name to Fit, optional
        Fits of other laws to the same runs; adds a PSIS-LOO comparison (table and plot).
    budgets : sequence of float, optional
        Training budgets (FLOPs) to decide at: compute-optimal N*, D*, D*/N*, L* with
        intervals. Default: 10x, 100x and 1000x the largest run's compute.
    seed : int
        Seed of the new-run noise in the bands figure.
    approaches : bool
        Also every allocation approach side by side at ``budgets``, with the verdict
        (:func:`scalebayes.compare_approaches`; approaches 1 and 2 sample their own models).
        Without it the page still sets approach 3m beside the law where 3m is the one
        recommended (a default fit of isoFLOP sweeps; 3m samples nothing).
    unique_tokens : float, optional
        For a law of repeated data (it reads U): the unique tokens to allocate on, so that the
        page has its decisions and frontier (approach 3 only).
    progress : callable, optional
        ``progress(done, total, phase)`` while approaches 1 and 2 sample (with ``approaches``).
    """
    import matplotlib.pyplot as plt

    from scalebayes.figures import draw, frontier_budgets

    path = _page(out)
    if budgets is None:
        budgets = [float(fit.runs.C.max()) * f for f in (10.0, 100.0, 1000.0)]
    from scalebayes.allocate import allocates_alone, fixed_inputs
    from scalebayes.allocation import check_unique_approach

    if unique_tokens is not None:
        fixed_inputs(fit.law, unique_tokens)  # a law that reads U, and a positive count
        check_unique_approach(unique_tokens, "all" if approaches else "3")
    allocates = allocates_alone(fit.law) or unique_tokens is not None

    sections = [_header(fit), _data(fit), _parameters(fit)]
    figures: list[tuple[str, str, str]] = []
    if allocates_alone(fit.law):
        kinds = ["bands", "isoflop", "frontier"]
    else:  # a law of repeated data has a frontier at given unique tokens, no isoFLOP curves
        kinds = ["bands", "frontier"] if allocates else ["bands"]
    captions = {
        "bands": "Loss against compute: posterior median, 50% (darker) and 90% credible bands of "
        "the law (blue) and predictive bands of a new run (orange); grey: beyond the largest run. "
        "For a law of N and D the bands run along D/N = 20 tokens per parameter: filled dots are "
        "the runs within x2 of it, which the bands describe; open circles are runs at other D/N "
        "(an isoFLOP sweep's off-optimum sizes), above the bands by design, not by "
        "under-coverage.",
        "isoflop": "IsoFLOP curves: at each budget in the data (fixed compute), loss against N: "
        "the law's median and the 90% credible band of its mean. Single runs scatter around it by "
        "the fitted noise, so some fall outside this band. Stars: posterior median N* with its "
        "90% interval; with --approaches, white diamonds: approach 2's minimum of each sweep it "
        "used, with its 90% interval.",
        "frontier": "Compute-optimal frontier N*(C), D*(C), L*(C), each draw optimised separately, with "
        "90% bands (other laws' fits, when compared, in their own colours); dashed and dotted: "
        "published point fits for orientation.",
        "trace": "Trace and marginal density per chain (ArviZ).",
        "rank": "Rank ECDF of each chain minus the uniform, with the 95% simultaneous envelope of "
        "uniform ranks (grey; chains thinned to about independent draws): chains that agree stay "
        "inside it. With many parameters one line may graze it by chance; the verdict in each "
        "title is the diagnostics line's rule (R-hat <= 1.01, bulk ESS >= 100 per chain).",
        "prior": "Prior (dashed) against posterior (filled) per parameter, over the prior's central "
        "99% (a note gives its range where the panel stops short); positive parameters as "
        "densities of their log10.",
        "residuals": "Residual log loss of each run against compute, with the 90% band of the fitted "
        "run-to-run noise. The axis spans the runs within 3 interquartile ranges; runs beyond "
        "are red triangles at its edge, counted in the legend.",
        "pairs": "Pairwise posterior of the parameters, marginal densities on the diagonal (ArviZ).",
    }
    allocation = None
    decisions = ""
    minima = None
    if allocates:
        from scalebayes.allocate import optimal
        from scalebayes.plots.isoflop import data_budgets

        frontier = np.concatenate([frontier_budgets(fit, budgets), budgets])
        with warnings.catch_warnings():
            # Past the runs on purpose: the frontier shades it, the table says how far.
            warnings.simplefilter("ignore", ExtrapolationWarning)
            # One allocation for the table and both figures: each new number of budgets
            # compiled the solver again (~1 s each).
            everywhere = np.unique(np.concatenate([frontier, data_budgets(fit.runs)]))
            allocation = optimal(fit, everywhere, unique_tokens=unique_tokens)
            side_by_side = None
            if approaches:
                from scalebayes.allocation import compare_approaches

                side_by_side = compare_approaches(fit, budgets, progress=progress)
            elif unique_tokens is None:
                side_by_side = _whole_model_recommended(fit, budgets)
            decisions = _decisions(fit, allocation.at(budgets), side_by_side)
            if side_by_side is not None:
                decisions += _approaches(side_by_side) + _approaches_figure(fit, side_by_side)
                if "2" in side_by_side.results:  # its sweep minima go on the isoFLOP figure
                    minima = side_by_side.results["2"].fit.minima()
    # Other laws' frontiers go on the same axes, when they have one (laws of N and D).
    overlay = {n: f for n, f in (others or {}).items() if allocates_alone(f.law)}
    opened_before = set(plt.get_fignums())
    try:
        for kind in (*kinds, *CHECK_KINDS):
            try:
                figure = draw(
                    fit,
                    kind,
                    budgets=budgets if kind == "frontier" else None,
                    allocation=allocation.at(frontier)
                    if kind == "frontier" and allocation is not None
                    else allocation,
                    others=overlay if kind == "frontier" else None,
                    seed=seed,
                    minima=minima if kind == "isoflop" else None,
                    unique_tokens=unique_tokens if kind == "frontier" else None,
                )
            except ScalebayesError as err:  # e.g. no isoFLOP budgets in the data
                figures.append((kind, "", f"not drawn: {err}"))
                continue
            figures.append((kind, _png(figure), captions[kind]))
            plt.close(figure)
    finally:  # a plot that failed half-way leaves no figure behind
        for number in set(plt.get_fignums()) - opened_before:
            plt.close(number)

    sections.append(_figures("Posterior predictions", [f for f in figures if f[0] in kinds]))
    if decisions:
        sections.append(decisions)
    else:
        why = (
            "its allocation depends on the unique tokens available: <code>scalebayes report "
            "FIT --unique-tokens U</code> (or <code>scalebayes optimal FIT --compute ... "
            "--unique-tokens U</code>)"
            if "U" in fit.law.inputs
            else "not both N and D"
        )
        sections.append(
            "<h2>Decisions</h2><p class='note'>No compute-optimal allocation: law "
            f"{html.escape(fit.law.name)} takes {', '.join(fit.law.inputs)}; {why}.</p>"
        )
    sections.append(_diagnostics(fit))
    sections.append(_figures("Checks", [f for f in figures if f[0] not in kinds]))
    if others:
        sections.append(_comparison(fit, others))
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>scalebayes: {html.escape(fit.law.name)} on {html.escape(fit.runs.source)}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def write_group_reports(fit: GroupedFit, out: str | os.PathLike[str], **options: Any) -> Path:
    """Write a report per group of a grouped fit and an index; return the index's path.

    Each group's page (:func:`write_report` of :meth:`GroupedFit.for_group`, with ``options``,
    its keyword arguments but ``others``) goes to ``out/<group>/report.html``;
    ``out/report.html`` holds the grouped fit's summary (population and per-group parameters,
    diagnostics) and links to the pages. ``out`` may name the index itself (``.html``): the
    group folders then sit beside it.
    """
    if "others" in options:
        raise ScalebayesError("others= compares one law's fits: report one group (for_group)")
    index = _page(out)
    directory = index.parent
    folders = _group_folders(fit.groups)
    rows = []
    for group, folder in folders.items():
        write_report(fit.for_group(group), directory / folder, **options)
        link = (
            f"<a href='{html.escape(folder)}/{REPORT_NAME}'>{html.escape(folder)}/{REPORT_NAME}</a>"
        )
        rows.append(f"<tr><td>{html.escape(group)}</td><td>{np.sum(fit.runs.group == group)}</td>"
                    f"<td>{link}</td></tr>")  # fmt: skip
    title = f"scalebayes report: {fit.law.name} on {fit.runs.source}, {len(fit.groups)} groups"
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>"
        "<h2>Groups</h2><p class='note'>One page per group: its runs, its posterior (the "
        "population's pooling included) and its decisions.</p>"
        "<table><tr><th>group</th><th>runs</th><th>report</th></tr>" + "".join(rows) + "</table>"
        f"<h2>Grouped fit</h2><pre>{html.escape(str(fit))}</pre>\n</body></html>\n"
    )
    directory.mkdir(parents=True, exist_ok=True)
    with replacing(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return index


def _page(out: str | os.PathLike[str]) -> Path:
    """The page's path: ``out`` itself if it ends in .html (or .htm), else ``out/report.html``.

    Refused before any work where the folder cannot be written or the page's path is a folder.
    """
    path = Path(out)
    if path.suffix.lower() in (".html", ".htm"):
        if path.is_dir():
            raise OutputError(f"--out {out}: is a folder; name a page, or the folder to hold it")
        check_folder(path.parent, option="--out")
        return path
    check_folder(path, option="--out")
    return path / REPORT_NAME


def _group_folders(groups: Sequence[str]) -> dict[str, str]:
    """A folder name per group: its name with characters unsafe in paths replaced, kept apart."""
    folders: dict[str, str] = {}
    for group in groups:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", group).strip("._") or "group"
        name, k = base, 2
        while name in folders.values():
            name, k = f"{base}_{k}", k + 1
        folders[group] = name
    return folders


def _png(figure: Figure, dpi: int = 90) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _header(fit: Fit) -> str:
    from scalebayes import __version__

    law = fit.law
    noise = fit.likelihood.family.replace("_", "-")
    if fit.likelihood.family == "student_t":
        noise += f" (nu = {fit.likelihood.df:g})" if fit.likelihood.df else " (nu estimated)"
    table = fit.runs.table
    groups = table["group"].unique() if "group" in table else ()
    of_group = f", group {groups[0]}" if len(groups) == 1 else ""  # a grouped fit's group
    return (
        f"<h1>scalebayes report: {html.escape(law.name + of_group)}</h1>"
        f"<p class='note'>scalebayes {__version__}; {fit.settings.chains} chains x "
        f"{fit.settings.draws} draws, seed {fit.settings.seed}</p>"
        f"<h2>Law</h2><p><b>{html.escape(law.title)}</b></p>"
        f"<p>formula <code>{html.escape(law.formula)}</code>, inputs {', '.join(law.inputs)}; "
        f"{html.escape(noise)} noise on log loss</p>"
        + (f"<p class='note'>reference: {html.escape(law.reference)}</p>" if law.reference else "")
    )


def _data(fit: Fit) -> str:
    return f"<h2>Data</h2><p>{html.escape(str(fit.runs))}</p>"


def _parameters(fit: Fit) -> str:
    table = fit.summary()
    docs = fit.param_docs()
    shown = pd.DataFrame(
        {
            "median": table["median"].map(format_number),
            "90% interval": [
                f"[{format_number(lo)}, {format_number(hi)}]"
                for lo, hi in zip(table["lower"], table["upper"], strict=True)
            ],
            "R-hat": table["r_hat"].map(lambda v: f"{v:.3f}"),
            "ESS bulk": table["ess_bulk"].map(lambda v: f"{v:.0f}"),
            "ESS tail": table["ess_tail"].map(lambda v: f"{v:.0f}"),
            "meaning": [meaning(docs, str(name)) for name in table.index],
        },
        index=table.index,
    )
    return "<h2>Parameters</h2>" + _table(shown)


def meaning(docs: Mapping[str, str], name: str) -> str:
    """The one-line meaning of a reported parameter; never empty (a law file may give none)."""
    found = docs.get(name) or docs.get(name.split("[")[0])
    return found or f"{name}: the law file gives no meaning (add doc = ... to its [params])"


def _diagnostics(fit: Fit) -> str:
    d = fit.diagnostics
    verdict = "<span class='ok'>ok</span>" if d.ok else "<span class='check'>CHECK</span>"
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in d.problems)
    return f"<h2>Diagnostics</h2><p>{verdict} <code>{html.escape(str(d))}</code></p>" + (
        f"<ul>{problems}</ul>" if problems else ""
    )


def _decisions(fit: Fit, allocation: Any, side_by_side: Any = None) -> str:
    """The law's allocation table; led by the recommended approach when another is."""
    from scalebayes.allocate import extrapolation_of

    table = allocation.summary(probs=(0.9,))
    beyond = dict(zip(allocation.budgets, extrapolation_of(fit, allocation)[1], strict=True))
    rows = []
    for budget, group in table.groupby("budget", sort=True):
        row: dict[str, str] = {"budget (FLOPs)": f"{budget:.3g}"}
        for quantity, label in (
            ("N", "N* (parameters)"),
            ("D", "D* (tokens)"),
            ("tokens_per_param", "D*/N*"),
            ("loss", "L* (nats/token)"),
        ):
            r = group[group["quantity"] == quantity].iloc[0]
            row[label] = (
                f"{format_number(r['median'])} [{format_number(r['eti90_lb'])}, {format_number(r['eti90_ub'])}]"
            )
        row["extrapolation"] = beyond[budget]
        rows.append(row)
    note = (
        "Median [90% interval] over posterior draws, each draw optimised on its own "
        f"({allocation.assumptions}). L* is the law's mean loss; a single run adds the fitted noise."
    )
    if allocation.n_at_bound:
        note += f" {allocation.n_at_bound} draw-budget pairs hit the search bound."
    lead, heading = "", "Decisions: compute-optimal runs"
    if side_by_side is not None and side_by_side.recommended != "3":
        heading += " by the law (approach 3)"
        lead = (
            f"<p><b>Recommended for these runs: approach {side_by_side.recommended}</b>, in "
            "<i>Every approach side by side</i> below with why. This table is the law's own "
            "allocation, with its loss L* and how far each budget lies beyond the runs.</p>"
        )
    return (
        f"<h2>{heading}</h2>{lead}"
        + _table(pd.DataFrame(rows), index=False)
        + f"<p class='note'>{html.escape(note)}</p>"
    )


def _whole_model_recommended(fit: Fit, budgets: Sequence[float]) -> Any:
    """Approaches 3 and 3m side by side where 3m is the one recommended, else None.

    On a default fit (law + GP) of runs that form isoFLOP sweeps the tool recommends 3m, not
    the law's own N* above it (:func:`scalebayes.allocation.verdict.recommend`); 3m samples
    nothing, so the page shows it without being asked.
    """
    if fit.likelihood.for_decisions() == fit.likelihood:  # no discrepancy: 3m is the law
        return None
    from scalebayes.allocation import compare_approaches

    result = compare_approaches(fit, budgets, approaches=("3", "3m"))
    return result if result.recommended == "3m" else None


def _approaches(result: Any) -> str:
    """The side-by-side table of :class:`~scalebayes.allocation.verdict.Approaches` and its verdict."""
    table = result.table()
    labels = {"N": "N*", "D": "D*", "tokens_per_param": "D*/N*", "exponent_N": "a (N* ~ C^a)"}
    rows = [
        {"budget (FLOPs)": f"{r['budget']:.3g}",
         "approach": r["approach"] + ("" if r["located"] else " *"),
         **{label: f"{format_number(r[f'{q}_median'])} [{format_number(r[f'{q}_lb'])}, "
                   f"{format_number(r[f'{q}_ub'])}]" for q, label in labels.items()}}
        for _, r in table.iterrows()
    ]  # fmt: skip
    notes = "".join(f"<p class='note'>{html.escape(line)}</p>" for line in result.remarks())
    return "<h2>Every approach side by side</h2>" + _table(pd.DataFrame(rows), index=False) + notes


def _approaches_figure(fit: Fit, result: Any) -> str:
    """Every approach's N* and D* bands overlaid (:func:`scalebayes.figures.draw_approaches`)."""
    import matplotlib.pyplot as plt

    from scalebayes.allocate import MAX_AT_BOUND
    from scalebayes.figures import draw_approaches

    with warnings.catch_warnings():
        # Its search-end count is the figure's many budgets'; the caption says what it means.
        warnings.simplefilter("ignore", AllocationWarning)
        figure = draw_approaches(fit, result)
    image = _png(figure)
    plt.close(figure)
    caption = (
        "N* (left) and D* (right) against compute by every approach that ran: medians and 90% "
        "bands from the same posteriors as the table; the title gives the verdict at the "
        "table's budgets. Past the runs, approach 2 carries its largest sweep's local exponent "
        "on, approach 1 its power law through the envelope's argmins, approach 3 the law, and "
        "approach 3m the whole model's (law + GP) local exponent at its largest fitted sweep. "
        f"Budgets where an approach's optimum is not located (more than {MAX_AT_BOUND:.0%} "
        "of its draws at "
        "the end of its search: for 3m the whole model's isoFLOP line still falls 2.5 e-folds "
        "of N from the law's N*) are left as gaps."
    )
    return _figure("approaches", image, caption)


def _comparison(fit: Fit, others: Mapping[str, Fit]) -> str:
    import matplotlib.pyplot as plt

    from scalebayes import plots
    from scalebayes.comparison import compare

    fits = {fit.law.name: fit}
    for name, other in others.items():
        if name in fits:
            raise ScalebayesError(
                f"two fits are named {name!r}; give each compared fit its own name"
            )
        fits[name] = other
    result = compare(fits, method="loo")
    pc = plots.comparison(result)
    figure = plots.figure_of(pc)
    image = _png(figure)
    plt.close(figure)
    table = result.table[
        ["rank", "elpd", "se", "elpd_diff", "dse", "p", "weight", "warning"]
    ].copy()
    for column in ("elpd", "se", "elpd_diff", "dse", "p"):
        table[column] = table[column].map(lambda v: f"{v:.1f}")
    table["weight"] = table["weight"].map(lambda v: f"{v:.3f}")
    return (
        "<h2>Comparison (PSIS-LOO)</h2>"
        + _table(table)
        + f"<img alt='comparison' src='data:image/png;base64,{image}'>"
        + "<p class='note'>Higher elpd predicts held-out runs better; differences under about "
        "4, or under two dse, are not decisive. Weights are stacking weights.</p>"
    )


def _figures(title: str, figures: list[tuple[str, str, str]]) -> str:
    return "\n".join([f"<h2>{html.escape(title)}</h2>", *(_figure(*f) for f in figures)])


def _figure(kind: str, image: str, caption: str) -> str:
    """One embedded PNG (base64) with its caption, or the caption alone if it was not drawn."""
    if not image:
        return f"<p class='note'>{kind}: {html.escape(caption)}</p>"
    return (
        f"<figure id='{kind}'><img alt='{kind}' src='data:image/png;base64,{image}'>\n"
        f"<figcaption class='note'>{html.escape(caption)}</figcaption></figure>"
    )


def _table(frame: pd.DataFrame, *, index: bool = True) -> str:
    return frame.to_html(escape=True, border=0, index=index)
