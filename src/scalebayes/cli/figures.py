"""The commands that draw: plot (one figure of a saved fit) and report (the HTML page).

matplotlib is imported inside the handlers, with the Agg backend (:func:`figures_closed`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalebayes.cli._common import (
    RAW,
    ProgressBar,
    add_quiet,
    figures_closed,
    progress_bar,
    warnings_to_stderr,
)
from scalebayes.errors import ScalebayesError
from scalebayes.outputs import IMAGE_SUFFIXES, check_file, check_folder

if TYPE_CHECKING:
    from scalebayes.results import Fit

# The kinds of scalebayes.figures.draw, spelled out so that --help does not import matplotlib
# (tests/test_plots_cli.py checks that the two agree).
PLOT_KINDS = (
    "bands", "frontier", "isoflop", "trace", "rank", "pairs", "prior", "residuals", "pit", "forest"
)  # fmt: skip

EXAMPLES_PLOT = """\
examples:
  scalebayes plot fit.nc --kind bands --out bands.png
  scalebayes plot fit.nc --kind frontier --compute 5.76e23 1e25 --out frontier.svg
  scalebayes plot fit.nc --kind isoflop --out isoflop.pdf
  scalebayes plot fit.nc --kind bands --axis N --out loss_vs_n.png
  scalebayes plot small_runs.nc --kind bands --heldout big_runs.csv --out backtest.png
  scalebayes plot chinchilla.nc --kind frontier --compare kaplan.nc --out frontiers.png
  scalebayes plot small_runs.nc --kind pit --heldout big_runs.csv --out pit.png
  scalebayes plot fit.nc --kind frontier --approach all --compute 5.76e23 1e25 --out approaches.png
  scalebayes plot fit.nc --kind isoflop --approach 2 --out minima.png

bands: loss against compute with the law's credible and a new run's predictive 50%/90% bands;
frontier: N*, D*, L* against compute (per-draw optima, 90% bands; dashed: Hoffmann et al. and
Epoch's published fits; --approach all: N* and D* by every allocation approach overlaid, the
verdict in the title); isoflop: loss against N per budget in the data, with N* (--approach 2:
and each sweep's minimum by approach 2); trace, rank, pairs: ArviZ's sampler checks; prior:
prior vs posterior; residuals: log loss against compute; pit: histogram of the held-out runs'
PIT (share of predictive draws below each observed loss; flat when calibrated). A backtest
draws its own per cut: scalebayes backtest ... --plot pit.png

A grouped fit (scalebayes fit --group ... --out groups.nc): forest (each group's parameters
beside the population's and a new group's), bands (a panel per group), frontier (a colour per
group); --group NAME draws any kind for one group (or 'new', a ladder not yet run):
  scalebayes plot groups.nc --kind forest --out forest.png
  scalebayes plot groups.nc --kind isoflop --group dclm --out dclm.png"""

EXAMPLES_REPORT = """\
examples:
  scalebayes report fit.nc --out report/
  scalebayes report fit.nc --out ladder.html
  scalebayes report fit.nc --compute 5.76e23 1e24 1e25 --out report/
  scalebayes report chinchilla.nc --compare kaplan.nc chinchilla_cross.nc --out report/

Writes report/report.html: one self-contained page (figures embedded) with the law, the data,
the parameter table, diagnostics, bands, isoFLOP curves, the frontier, compute-optimal runs at
the --compute budgets (default 10x, 100x, 1000x the largest run) and, with --compare, a
PSIS-LOO comparison with fits of other laws to the same runs."""


def add_commands(commands: Any) -> None:
    """Register plot and report on the CLI's sub-parser collection."""
    plot = commands.add_parser(
        "plot",
        help="draw a figure of a saved fit (bands, frontier, isoflop, diagnostics)",
        epilog=EXAMPLES_PLOT,
        formatter_class=RAW,
    )
    plot.add_argument("fit", help="a fit written by `scalebayes fit --out`")
    plot.add_argument("--kind", choices=PLOT_KINDS, default="bands", help="figure (default bands)")
    plot.add_argument(
        "--compute",
        type=float,
        nargs="+",
        metavar="FLOPS",
        help="budgets the frontier must reach, or of the isoflop curves (default: the data's)",
    )
    plot.add_argument(
        "--compare", nargs="+", default=[], metavar="FIT", help="overlay these fits' frontiers"
    )
    plot.add_argument(
        "--heldout",
        metavar="RUNS",
        help="runs the fit did not see: marked on the bands, scored by the pit plot",
    )
    plot.add_argument(
        "--axis",
        choices=("C", "N", "D"),
        help="bands against compute (default), N at the runs' median D, or D at their median N",
    )
    plot.add_argument(
        "--approach",
        choices=("3", "3m", "2", "1", "all"),
        default="3",
        help="frontier by which allocation approach: 3 the law (default); 3m the whole fitted "
        "model (law + GP) up to its largest sweep, its own trend beyond; 2 isoFLOP minima; "
        "1 envelope of finished runs; all every approach that runs, overlaid, with the verdict "
        "at --compute (default 10x and 100x the largest run); 1 and 2 sample their own models. "
        "With --kind isoflop, 2 (or all) adds approach 2's sweep minima",
    )
    plot.add_argument(
        "--unique-tokens",
        type=float,
        metavar="U",
        help="frontier of a law of repeated data (data_constrained) at U unique tokens",
    )
    plot.add_argument("-o", "--out", required=True, help="image file: .png, .svg or .pdf")
    plot.add_argument("--seed", type=int, default=0, help="seed of the new-run noise (bands, pit)")
    plot.add_argument(
        "--group",
        metavar="NAME",
        help="for a grouped fit: draw this group's figure ('new': a ladder not yet run); "
        "without it a grouped fit draws forest, bands (a panel per group) or frontier",
    )
    add_quiet(plot)
    plot.set_defaults(handler=_plot, needs_jax=False)  # JAX_KINDS configure it

    report = commands.add_parser(
        "report",
        help="write a one-page HTML report of a saved fit",
        epilog=EXAMPLES_REPORT,
        formatter_class=RAW,
    )
    report.add_argument("fit", help="a fit written by `scalebayes fit --out`")
    report.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="FIT",
        help="fits of other laws to the same runs",
    )
    report.add_argument(
        "--compute", type=float, nargs="+", metavar="FLOPS", help="budgets to decide at"
    )
    report.add_argument(
        "-o",
        "--out",
        required=True,
        help="the page (a path ending in .html), or a directory to write report.html in",
    )
    report.add_argument("--seed", type=int, default=0, help="seed of the new-run noise (bands)")
    report.add_argument(
        "--group",
        metavar="NAME",
        help="for a grouped fit: the group to report on ('new': a ladder not yet run); "
        "without it, one page per group and an index linking them",
    )
    report.add_argument(
        "--approaches",
        action="store_true",
        help="also every allocation approach side by side at the budgets, with a verdict "
        "(approaches 1 and 2 sample; without this flag a default fit of isoFLOP sweeps still "
        "gets approach 3m beside the law where 3m is the one recommended)",
    )
    report.add_argument(
        "--unique-tokens",
        type=float,
        metavar="U",
        help="for a law of repeated data (data_constrained): the unique tokens its decisions "
        "and frontier allocate on",
    )
    add_quiet(report)
    report.set_defaults(handler=_report)


# Plot kinds that compute with JAX (NumPyro's prior densities, held-out runs' scores); the
# others draw from NumPy arithmetic and need no JAX set up.
JAX_KINDS = ("prior", "pit")


def _plot(args: argparse.Namespace) -> int:
    from scalebayes.io import load_fit

    if args.kind in JAX_KINDS:
        from scalebayes.runtime import configure

        configure()

    sweeps = args.kind == "isoflop" and args.approach in ("2", "all")
    if args.approach != "3" and args.kind != "frontier" and not sweeps:
        raise ScalebayesError(
            f"--approach {args.approach} draws a frontier (add --kind frontier), or approach 2's "
            "sweep minima on the isoflop plot (--kind isoflop --approach 2)"
        )
    check_file(args.out, suffixes=IMAGE_SUFFIXES, option="--out")  # before drawing
    fit = load_fit(args.fit)
    if args.kind == "frontier" and args.approach != "3":
        return _plot_approaches(fit, args)
    if sweeps and (args.group is not None or args.compare):
        raise ScalebayesError("--approach 2 on the isoflop plot takes one law's fit, no --group")
    minima = _sweep_minima(fit, progress_bar(args)) if sweeps else None
    others = _named_fits(fit, args.compare)
    with figures_closed(), warnings_to_stderr():
        from scalebayes import plots
        from scalebayes.data import load_runs
        from scalebayes.figures import draw

        heldout = load_runs(args.heldout, cost_k=fit.runs.cost_k) if args.heldout else None
        figure = draw(
            fit,
            args.kind,
            budgets=args.compute,
            others=others,
            heldout=heldout,
            axis=args.axis,
            seed=args.seed,
            group=args.group,
            minima=minima,
            unique_tokens=args.unique_tokens,
        )
        plots.save(figure, args.out)
    print(f"wrote {args.kind} figure of {fit.law.name} to {args.out}")
    print(fit.diagnostics)
    return 0


def _plot_approaches(fit: Any, args: argparse.Namespace) -> int:
    """The frontier of approach 1, 2 or every approach overlaid; prints the verdict."""
    from scalebayes.groups.select import is_grouped

    if is_grouped(fit) or args.compare:
        raise ScalebayesError(
            "--approach takes one law's fit, without --compare (a grouped fit: its groups' "
            "frontiers are --kind frontier)"
        )
    from scalebayes.runtime import configure

    configure()  # approaches 1 and 2 sample
    budgets = args.compute or [float(fit.runs.C.max()) * f for f in (10.0, 100.0)]
    keys = ("1", "2", "3", "3m") if args.approach == "all" else (args.approach,)
    with figures_closed(), warnings_to_stderr():
        from scalebayes import plots
        from scalebayes.allocation import compare_approaches
        from scalebayes.figures import draw_approaches

        result = compare_approaches(fit, budgets, approaches=keys, progress=progress_bar(args))
        plots.save(draw_approaches(fit, result), args.out)
    drawn = ", ".join(result.results)
    print(f"wrote the frontier of approach(es) {drawn} on {fit.runs.source} to {args.out}")
    print("\n".join(result.remarks()))
    for key, diagnostics in result.diagnostics.items():
        print(f"approach {key} {diagnostics}")
    return 0


def _sweep_minima(fit: Any, progress: ProgressBar | None) -> Any:
    """Approach 2 sampled on the fit's runs (its sampler settings): each sweep's minimum."""
    from scalebayes.runtime import configure

    configure()
    with warnings_to_stderr():
        from scalebayes.allocation.isoflop import fit_isoflops

        iso = fit_isoflops(fit.runs, settings=fit.settings.sampler, progress=progress)
    print(f"approach 2: {iso.budgets}")
    print(f"approach 2 {iso.diagnostics}")
    return iso.minima()


def _report(args: argparse.Namespace) -> int:
    from scalebayes.groups.select import is_grouped, select_group
    from scalebayes.io import load_fit

    check_folder(args.out, option="--out")  # before drawing
    loaded = load_fit(args.fit)
    options = {"budgets": args.compute, "seed": args.seed, "approaches": args.approaches,
               "unique_tokens": args.unique_tokens, "progress": progress_bar(args)}  # fmt: skip
    if is_grouped(loaded) and args.group is None:
        if args.compare:
            raise ScalebayesError(
                "--compare with a grouped fit: name the group it compares (--group NAME)"
            )
        with figures_closed(), warnings_to_stderr():
            from scalebayes.report import write_group_reports

            index = write_group_reports(loaded, args.out, **options)
        print(f"wrote {index} (links to one page per group: {', '.join(loaded.groups)})")
        print(loaded.diagnostics)
        return 0
    fit = select_group(loaded, args.group)
    others = _named_fits(fit, args.compare)
    with figures_closed(), warnings_to_stderr():
        from scalebayes.report import write_report

        page = write_report(fit, args.out, others=others, **options)
    print(f"wrote {page}")
    print(fit.diagnostics)
    return 0


def _named_fits(fit: Fit, paths: Sequence[str]) -> dict[str, Fit]:
    """Fits at ``paths`` by law name (the file's stem where two share a law)."""
    from scalebayes.io import load_fit

    others: dict[str, Fit] = {}
    for path in paths:
        other = load_fit(path)
        name = other.law.name if other.law.name not in (fit.law.name, *others) else Path(path).stem
        others[name] = other
    return others
