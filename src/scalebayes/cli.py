"""Command-line interface: each command is one library call plus formatting.

JAX and friends are imported inside the commands, so ``scalebayes --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from scalebayes import __version__
from scalebayes.errors import ScalebayesError
from scalebayes.formatting import format_number

# scalebayes.discrepancy.KINDS, spelled out so that --help need not import JAX (a test checks).
DISCREPANCY_NAMES = ("auto", "none", "curvature", "gp")

if TYPE_CHECKING:
    from scalebayes.results import Fit

EXAMPLES_FIT = """\
examples:
  scalebayes fit chinchilla.csv --law chinchilla --out fit.nc
  scalebayes fit runs.csv --law my_law.toml --prior alpha="Gamma(concentration=4, rate=12)"
  scalebayes fit runs.csv --column N="non-embedding params" --column loss=val_bpb --out fit.nc

Columns are recognised by their usual names (Model Size / params / N, tokens / D,
Training FLOP / flops / C, loss / val_loss); the missing one of C and D is derived
with C = k N D (--cost-k, default 6). Prints medians with 90% intervals, then R-hat,
ESS and divergences."""

EXAMPLES_COMPARE = """\
examples:
  scalebayes compare chinchilla.csv --laws chinchilla kaplan chinchilla_cross
  scalebayes compare runs.csv --laws chinchilla power_c bnsl_c --method all --out-dir fits/
  scalebayes compare runs.csv --laws chinchilla kaplan --method lfo --cuts 1e20 3e20 1e21 --json

Fits every law (same NUTS settings), then ranks them by expected log predictive density:
loo (PSIS-LOO, default), waic, lfo (leave-future-out by compute: refit below each compute
cut-off, score the runs above; --cuts N cut-offs at the 0.5-0.8 quantiles of compute, or the
FLOP values) or all three. Prints elpd, se, the difference to the best and its se, stacking
and pseudo-BMA weights, warnings (Pareto k by run row), and every fit's diagnostics line."""

EXAMPLES_BACKTEST = """\
examples:
  scalebayes backtest chinchilla.csv --law chinchilla --holdout-top 1 2 --budget 5.76e23
  scalebayes backtest sweep.csv --holdout-budgets 1 2          # an isoFLOP sweep's largest budgets
  scalebayes backtest runs.csv --cut 1e21 --discrepancy none   # the plain law, to compare

A calibrated fit puts about 90% of the held-out losses inside its 90% predictive intervals.
All cut-offs and the all-runs fit sample together (one compile)."""

EXAMPLES_DEMO = """\
examples:
  scalebayes demo                       # synthetic Chinchilla-scale isoFLOP ladder, known truth
  scalebayes demo --data chinchilla.csv # the same on real data
  scalebayes demo --figures figs/       # write the figures to figs/ (default ./scalebayes-demo/)
"""

# The kinds of scalebayes.plots.draw, spelled out so that --help does not import matplotlib.
PLOT_KINDS = ("bands", "frontier", "isoflop", "trace", "rank", "pairs", "prior", "residuals")

EXAMPLES_PLOT = """\
examples:
  scalebayes plot fit.nc --kind bands --out bands.png
  scalebayes plot fit.nc --kind frontier --compute 5.76e23 1e25 --out frontier.svg
  scalebayes plot fit.nc --kind isoflop --out isoflop.pdf
  scalebayes plot fit.nc --kind bands --axis N --out loss_vs_n.png
  scalebayes plot small_runs.nc --kind bands --heldout big_runs.csv --out backtest.png
  scalebayes plot chinchilla.nc --kind frontier --compare kaplan.nc --out frontiers.png

bands: loss against compute with the law's credible and a new run's predictive 50%/90% bands;
frontier: N*, D*, L* against compute (per-draw optima, 90% bands; dashed: Hoffmann et al. and
Epoch's published fits); isoflop: loss against N per budget in the data, with N*; trace, rank,
pairs: ArviZ's sampler checks; prior: prior vs posterior; residuals: log loss against compute."""

EXAMPLES_REPORT = """\
examples:
  scalebayes report fit.nc --out report/
  scalebayes report fit.nc --compute 5.76e23 1e24 1e25 --out report/
  scalebayes report chinchilla.nc --compare kaplan.nc chinchilla_cross.nc --out report/

Writes report/report.html: one self-contained page (figures embedded) with the law, the data,
the parameter table, diagnostics, bands, isoFLOP curves, the frontier, compute-optimal runs at
the --compute budgets (default 10x, 100x, 1000x the largest run) and, with --compare, a
PSIS-LOO comparison with fits of other laws to the same runs."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scalebayes`` command line; returns the exit status (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    if getattr(args, "needs_jax", True):
        from scalebayes.runtime import configure

        configure()
    try:
        return args.handler(args)
    except ScalebayesError as err:
        print(f"scalebayes: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalebayes: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (each with a worked example in its epilog)."""
    parser = argparse.ArgumentParser(
        prog="scalebayes",
        description="Bayesian scaling-law inference: fit a law to training runs with NUTS and "
        "carry the whole posterior into decisions.",
        epilog="Start with `scalebayes demo`. Every command has --help with examples.",
    )
    parser.add_argument("--version", action="version", version=f"scalebayes {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    fit = commands.add_parser(
        "fit",
        help="fit a law to a table of runs (NUTS)",
        epilog=EXAMPLES_FIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sample the posterior of a scaling law given a CSV/Parquet table of runs.",
    )
    fit.add_argument("runs", help="CSV, TSV or Parquet file with one row per training run")
    _add_fit_options(fit)
    fit.add_argument("--out", help="write the fit to this NetCDF file (e.g. fit.nc)")
    fit.set_defaults(handler=_fit)

    show = commands.add_parser(
        "show",
        help="print the parameter table and diagnostics of a saved fit",
        epilog="example:\n  scalebayes show fit.nc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("fit", help="a fit written by `scalebayes fit --out`")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_show)

    laws = commands.add_parser(
        "laws",
        help="list the law catalogue with formulas and default priors",
        epilog="examples:\n  scalebayes laws\n  scalebayes laws chinchilla\n  scalebayes laws ./my_law.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    laws.add_argument("law", nargs="?", help="show one law (catalogue name or .toml path) in full")
    laws.add_argument("--json", action="store_true", help="machine-readable output")
    laws.set_defaults(handler=_laws, needs_jax=False)

    env = commands.add_parser(
        "env", help="versions, JAX devices and precision (paste into bug reports)"
    )
    env.set_defaults(handler=_env)

    from scalebayes.cli_decisions import add_commands  # predict, optimal, chance, plan

    add_commands(commands)

    compare = commands.add_parser(
        "compare",
        help="fit several laws to the same runs and rank them (LOO, WAIC, leave-future-out)",
        epilog=EXAMPLES_COMPARE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Which functional form should you believe? Fit each law, then compare by "
        "PSIS-LOO, WAIC and/or leave-future-out by compute, with stacking weights.",
    )
    compare.add_argument("runs", help="CSV, TSV or Parquet file with one row per training run")
    compare.add_argument(
        "--laws",
        nargs="+",
        required=True,
        metavar="LAW",
        help="two or more catalogue names or .toml paths (see `scalebayes laws`)",
    )
    compare.add_argument(
        "--method",
        choices=("loo", "waic", "lfo", "all"),
        default="loo",
        help="how to score: loo (default), waic, lfo (leave-future-out by compute) or all",
    )
    compare.add_argument(
        "--cuts",
        nargs="+",
        default=["4"],
        metavar="CUT",
        help="for lfo: a number of compute cut-offs (default 4) or the cut-offs in FLOPs",
    )
    compare.add_argument("--out-dir", help="save every fit as OUT_DIR/<law>.nc")
    _add_fit_options(compare, law=False, discrepancy="none")
    compare.set_defaults(handler=_compare)

    backtest = commands.add_parser(
        "backtest",
        help="fit the smaller runs, predict the larger ones: how far can you trust it?",
        epilog=EXAMPLES_BACKTEST,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For each compute cut-off, fit the runs at or below it and score the "
        "predictions of the runs above it: errors, bias, 50% and 90% predictive coverage, "
        "log predictive density, and the compute-optimal allocation at a planning budget "
        "against the one from all the runs.",
    )
    backtest.add_argument("runs", help="CSV, TSV or Parquet file with one row per training run")
    held = backtest.add_mutually_exclusive_group()
    held.add_argument(
        "--holdout-top",
        nargs="+",
        type=float,
        metavar="DECADES",
        help="hold out the top DECADES of compute (default: 1 2)",
    )
    held.add_argument(
        "--holdout-budgets",
        nargs="+",
        type=int,
        metavar="K",
        help="hold out the K largest distinct budgets (isoFLOP sweeps)",
    )
    held.add_argument("--cut", nargs="+", type=float, metavar="FLOPS", help="compute cut-offs")
    backtest.add_argument(
        "--budget",
        type=float,
        help="planning budget in FLOPs for the allocation check (default 10x the largest run)",
    )
    _add_fit_options(backtest)
    backtest.set_defaults(handler=_backtest)

    plot = commands.add_parser(
        "plot",
        help="draw a figure of a saved fit (bands, frontier, isoflop, diagnostics)",
        epilog=EXAMPLES_PLOT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--heldout", metavar="RUNS", help="runs the fit did not see, marked on the bands"
    )
    plot.add_argument(
        "--axis",
        choices=("C", "N", "D"),
        help="bands against compute (default), N at the runs' median D, or D at their median N",
    )
    plot.add_argument("--out", required=True, help="image file: .png, .svg or .pdf")
    plot.add_argument("--seed", type=int, default=0, help="seed of the new-run noise (bands)")
    plot.set_defaults(handler=_plot)

    report = commands.add_parser(
        "report",
        help="write a one-page HTML report of a saved fit",
        epilog=EXAMPLES_REPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    report.add_argument("--out", required=True, help="directory for report.html")
    report.add_argument("--seed", type=int, default=0, help="seed of the new-run noise (bands)")
    report.set_defaults(handler=_report_page)

    demo = commands.add_parser(
        "demo",
        help="the main job end to end on an embedded synthetic ladder (or --data)",
        epilog=EXAMPLES_DEMO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Simulate a Chinchilla-scale isoFLOP ladder from known constants (Epoch AI's "
        "refit), fit it, and show the posterior beside the truth.",
    )
    demo.add_argument("--data", help="run on this table of runs instead of the synthetic ladder")
    demo.add_argument("--law", default="chinchilla", help="law to fit (default: chinchilla)")
    demo.add_argument("--chains", type=int, default=4)
    demo.add_argument("--draws", type=int, default=1000)
    demo.add_argument("--warmup", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", help="also write the fit to this NetCDF file")
    demo.add_argument(
        "--figures",
        default="scalebayes-demo",
        metavar="DIR",
        help="write the demo's figures here (default ./scalebayes-demo; '' for none)",
    )
    demo.set_defaults(handler=_demo)
    return parser


def _add_fit_options(
    p: argparse.ArgumentParser, *, law: bool = True, discrepancy: str = "auto"
) -> None:
    if law:
        p.add_argument(
            "--law",
            default="chinchilla",
            help="catalogue name or path to a .toml law file "
            "(default: chinchilla; see `scalebayes laws`)",
        )
    p.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar='NAME="Family(k=v, ...)"',
        help="override a prior (repeatable); also sigma (noise on log loss)",
    )
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="CANONICAL=NAME",
        help="use column NAME as N, D, C, loss, group or weight (repeatable)",
    )
    p.add_argument(
        "--cost-k", type=float, default=6.0, help="FLOPs per parameter per token (default 6)"
    )
    p.add_argument(
        "--accept-inconsistent-c",
        action="store_true",
        help="keep C as given even where it disagrees with k*N*D (warns)",
    )
    p.add_argument(
        "--likelihood",
        choices=("student_t", "normal"),
        default="student_t",
        help="noise model on log loss (default student_t)",
    )
    p.add_argument(
        "--df", default="4", help="Student-t degrees of freedom, or 'estimate' (default 4)"
    )
    explain = (
        "auto (default): gp for laws of at most two inputs, none for three"
        if discrepancy == "auto"
        else "default none here: a discrepancy absorbs the differences between laws that a "
        "comparison measures; auto or gp compares each law plus its GP"
    )
    p.add_argument(
        "--discrepancy",
        choices=DISCREPANCY_NAMES,
        default=discrepancy,
        help=f"model error beyond noise. {explain}. gp adds a Gaussian process in the log inputs "
        "for what the law misses, so intervals widen beyond the data (backtests on 9 public "
        "tables: 90%% intervals held 83%% of the larger runs, against 56%% for none); exponents "
        "and allocations stay the plain law's. none trusts the law's shape (about 2x faster to "
        "fit); curvature adds a quadratic. See README 'How far can you trust it?'",
    )
    p.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    p.add_argument("--draws", type=int, default=1000, help="kept draws per chain (default 1000)")
    p.add_argument(
        "--warmup", type=int, default=1000, help="warmup iterations per chain (default 1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--target-accept", type=float, default=0.8, help="NUTS target acceptance (default 0.8)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--strict", action="store_true", help="exit 1 when diagnostics fail")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ScalebayesError(f"{option} {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _likelihood(args: argparse.Namespace) -> Any:
    from scalebayes.likelihood import Likelihood

    if args.df == "estimate":
        df = None
    else:
        try:
            df = float(args.df)
        except ValueError:
            raise ScalebayesError(f"--df {args.df!r}: expected a number or 'estimate'") from None
    return Likelihood(
        family=args.likelihood, df=df, discrepancy=getattr(args, "discrepancy", "auto")
    )


def _model_and_nuts(args: argparse.Namespace) -> dict[str, Any]:
    """The fit options every fitting command shares (see _add_fit_options), as keyword arguments."""
    return {
        "priors": _pairs(args.prior, "--prior"),
        "likelihood": _likelihood(args),
        "chains": args.chains,
        "draws": args.draws,
        "warmup": args.warmup,
        "seed": args.seed,
        "target_accept": args.target_accept,
    }


def _run_fit(args: argparse.Namespace, runs: Any) -> Fit:
    from scalebayes.fitting import fit

    bar = None if args.quiet or args.json else ProgressBar()
    result = fit(runs, args.law, **_model_and_nuts(args), progress=bar)
    if bar is not None:
        bar.close()
    return result


def _load(args: argparse.Namespace, path: str) -> Any:
    from scalebayes.data import load_runs

    return load_runs(
        path,
        columns=_pairs(args.column, "--column") or None,
        cost_k=args.cost_k,
        accept_inconsistent_c=args.accept_inconsistent_c,
    )


def _fit(args: argparse.Namespace) -> int:
    with _warnings_to_stderr():
        runs = _load(args, args.runs)
        if not args.json:
            print(runs)
        result = _run_fit(args, runs)
    if args.out:
        from scalebayes.io import save_fit

        save_fit(result, args.out)
    _report(result, args.json, saved=args.out)
    return 1 if args.strict and not result.diagnostics.ok else 0


def _show(args: argparse.Namespace) -> int:
    from scalebayes.io import load_fit

    _report(load_fit(args.fit), args.json)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from scalebayes import simulation as sim

    truth = None
    with _warnings_to_stderr():
        if args.data:
            runs = _load(
                argparse.Namespace(column=[], cost_k=6.0, accept_inconsistent_c=False), args.data
            )
            print(f"scalebayes demo on {args.data}")
        else:
            truth = sim.EPOCH_CHINCHILLA
            design = sim.isoflop_design(sim.CHINCHILLA_BUDGETS)
            runs = sim.simulate("chinchilla", truth, design, noise=0.01, seed=args.seed)
            print(
                "scalebayes demo: SYNTHETIC data - an isoFLOP ladder of "
                f"{len(runs)} runs ({len(sim.CHINCHILLA_BUDGETS)} budgets, "
                f"{min(sim.CHINCHILLA_BUDGETS):.0e}-{max(sim.CHINCHILLA_BUDGETS):.0e} FLOPs)\n"
                "drawn from L = E + A/N^alpha + B/D^beta with Epoch AI's refit of Chinchilla "
                "(Besiroglu et al. 2024) and 1% log-normal run-to-run noise."
            )
        print(runs)
        fit_args = argparse.Namespace(
            law=args.law,
            prior=[],
            likelihood="student_t",
            df="4",
            chains=args.chains,
            draws=args.draws,
            warmup=args.warmup,
            seed=args.seed,
            target_accept=0.8,
            quiet=False,
            json=False,
        )
        result = _run_fit(fit_args, runs)
    if args.out:
        from scalebayes.io import save_fit

        save_fit(result, args.out)
    if args.figures:
        _demo_figures(result, args.figures)
    _report(result, False, truth=truth, saved=args.out)
    if truth is not None:
        table = result.summary()
        inside = sum(
            table.loc[name, "lower"] <= value <= table.loc[name, "upper"]
            for name, value in truth.items()
        )
        print(
            f"truth inside the 90% interval for {inside} of {len(truth)} parameters "
            "(across many seeds, expect about 90%)"
        )
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from scalebayes.backtest import backtest

    with _warnings_to_stderr():
        runs = _load(args, args.runs)
        if not args.json:
            print(runs)
        bar = None if args.quiet or args.json else ProgressBar()
        result = backtest(
            runs,
            args.law,
            holdout_top=args.holdout_top,
            holdout_budgets=args.holdout_budgets,
            cuts=args.cut,
            budget=args.budget,
            **_model_and_nuts(args),
            progress=bar,
        )
        if bar is not None:
            bar.close()
    if args.json:
        print(
            json.dumps(
                {
                    "law": result.law,
                    "budget": result.budget,
                    "cuts": result.table.to_dict(orient="records"),
                    "diagnostics": [
                        {**f.diagnostics.to_dict(), "ok": f.diagnostics.ok} for f in result.fits
                    ],
                },
                indent=2,
            )
        )
    else:
        print(result)
    healthy = all(f.diagnostics.ok for f in result.fits)
    return 1 if args.strict and not healthy else 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scalebayes.comparison import compare, disagreement
    from scalebayes.laws import load_law

    names = [load_law(law).name for law in args.laws]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ScalebayesError(f"--laws {' '.join(args.laws)}: expected two or more different laws")
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir is not None and not out_dir.is_dir():
        raise ScalebayesError(f"--out-dir {out_dir}: not an existing folder")
    cuts = _cuts(args.cuts)
    methods = ("loo", "waic", "lfo") if args.method == "all" else (args.method,)
    say = (lambda text: None) if args.json else (lambda text: print(text, file=sys.stderr))
    fits = {}
    with _warnings_to_stderr():
        runs = _load(args, args.runs)
        if not args.json:
            print(runs)
        for index, (name, law) in enumerate(zip(names, args.laws, strict=True), start=1):
            say(f"[{index}/{len(names)}] fitting {name}")
            fits[name] = _run_fit(argparse.Namespace(**{**vars(args), "law": law}), runs)
        results = {}
        for method in methods:
            if method == "lfo":
                say("leave-future-out: refitting every law below each compute cut-off")
            progress = None if args.quiet else lambda done, total, phase: say(f"  {phase}")
            results[method] = compare(fits, method=method, cuts=cuts, progress=progress)
    saved = {}
    if out_dir is not None:
        for name, result in fits.items():
            saved[name] = str(result.save(out_dir / f"{name}.nc"))
    note = (
        disagreement(results["loo"], results["lfo"])
        if "loo" in results and "lfo" in results
        else None
    )
    if args.json:
        print(
            json.dumps(
                {
                    "runs": len(runs),
                    "comparisons": {m: r.to_dict() for m, r in results.items()},
                    "disagreement": note,
                    "fits": {
                        name: {
                            "diagnostics": {**f.diagnostics.to_dict(), "ok": f.diagnostics.ok},
                            "saved": saved.get(name),
                        }
                        for name, f in fits.items()
                    },
                },
                indent=2,
            )
        )
    else:
        for result in results.values():
            print(f"\n{result}")
            for lfo_result in (result.lfo or {}).values():
                print(f"\n{lfo_result}")
        if note:
            print(f"\n{note}")
        print()
        width = max(map(len, fits))
        for name, f in fits.items():
            print(f"{name:<{width}s}  {f.diagnostics}")
        for name, path in saved.items():
            print(f"saved {name} to {path}")
    strict_fail = args.strict and not all(f.diagnostics.ok for f in fits.values())
    return 1 if strict_fail else 0


def _cuts(items: Sequence[str]) -> int | list[float]:
    if len(items) == 1 and items[0].isdigit():
        return int(items[0])
    try:
        return [float(item) for item in items]
    except ValueError:
        raise ScalebayesError(
            f"--cuts {' '.join(items)}: expected a number of cut-offs or FLOP values"
        ) from None


@contextlib.contextmanager
def _figures_closed() -> Iterator[None]:
    """Agg backend, and every figure opened inside the block closed at its end, even on error."""
    import matplotlib

    # A command writes files and never opens a window: no display, no GUI toolkit needed.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        yield
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def _plot(args: argparse.Namespace) -> int:
    from scalebayes.io import load_fit

    fit = load_fit(args.fit)
    others = _named_fits(fit, args.compare)
    with _figures_closed(), _warnings_to_stderr():
        from scalebayes import plots
        from scalebayes.data import load_runs

        heldout = load_runs(args.heldout, cost_k=fit.runs.cost_k) if args.heldout else None
        figure = plots.draw(
            fit,
            args.kind,
            budgets=args.compute,
            others=others,
            heldout=heldout,
            axis=args.axis,
            seed=args.seed,
        )
        plots.save(figure, args.out)
    print(f"wrote {args.kind} figure of {fit.law.name} to {args.out}")
    print(fit.diagnostics)
    return 0


def _report_page(args: argparse.Namespace) -> int:
    from scalebayes.io import load_fit

    fit = load_fit(args.fit)
    others = _named_fits(fit, args.compare)
    with _figures_closed(), _warnings_to_stderr():
        from scalebayes.report import write_report

        page = write_report(fit, args.out, others=others, budgets=args.compute, seed=args.seed)
    print(f"wrote {page}")
    print(fit.diagnostics)
    return 0


def _named_fits(fit: Fit, paths: Sequence[str]) -> dict[str, Fit]:
    """Fits at ``paths`` by law name (the file's stem where two share a law)."""
    from pathlib import Path

    from scalebayes.io import load_fit

    others: dict[str, Fit] = {}
    for path in paths:
        other = load_fit(path)
        name = other.law.name if other.law.name not in (fit.law.name, *others) else Path(path).stem
        others[name] = other
    return others


def _demo_figures(fit: Fit, directory: str) -> None:
    from pathlib import Path

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    with _figures_closed(), _warnings_to_stderr():
        from scalebayes import plots

        for kind in ("bands", "isoflop", "frontier", "residuals", "prior", "trace"):
            path = folder / f"{kind}.png"
            try:
                budgets = [5.76e23, 1e25] if kind == "frontier" else None
                plots.save(plots.draw(fit, kind, budgets=budgets), str(path))
            except ScalebayesError as err:  # e.g. a law without both N and D has no frontier
                skipped.append(f"{kind} ({err})")
                continue
            written.append(path.name)
    print(f"\nfigures written to {folder.resolve()}/: {', '.join(written)}")
    for note in skipped:
        print(f"  not drawn: {note}")


def _laws(args: argparse.Namespace) -> int:
    from scalebayes.laws import available_laws, load_law

    laws = {args.law: load_law(args.law)} if args.law else available_laws()
    if args.json:
        print(json.dumps({name: law.to_dict() for name, law in laws.items()}, indent=2))
    elif args.law:
        print(laws[args.law])
    else:
        for name, law in laws.items():
            print(f"{name:18s} {law.formula}")
            print(f"{'':18s} {law.title}; inputs {', '.join(law.inputs)}")
            for pname, param in law.params.items():
                print(f"{'':20s}{pname:8s} ~ {param.prior}   {param.doc}")
            print()
        print(
            "Use --law NAME, or --law path/to/law.toml for your own (see `scalebayes laws chinchilla`)."
        )
    return 0


def _env(args: argparse.Namespace) -> int:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import jax

    print(f"scalebayes {__version__}  python {platform.python_version()}  {platform.platform()}")
    for package in (
        "jax",
        "jaxlib",
        "numpyro",
        "arviz",
        "arviz-base",
        "arviz-stats",
        "arviz-plots",
        "xarray",
        "h5netcdf",
        "numpy",
        "pandas",
        "matplotlib",
    ):
        try:
            print(f"  {package:12s} {version(package)}")
        except PackageNotFoundError:
            print(f"  {package:12s} not installed")
    print(
        f"JAX backend: {jax.default_backend()}; devices: {', '.join(str(d) for d in jax.devices())}"
    )
    from scalebayes.runtime import DEFAULT_PRECISION, default_cache_dir

    print(
        f"precision: {DEFAULT_PRECISION} unless a fit's settings say otherwise; chains are spread "
        "over the devices above"
    )
    print(f"compile cache: {default_cache_dir()} (SCALEBAYES_COMPILE_CACHE=0 turns it off)")
    return 0


# --- formatting -------------------------------------------------------------------------------


def format_table(fit: Fit, truth: dict[str, float] | None = None) -> str:
    """Parameter table: median, 90% equal-tailed interval, R-hat, ESS, meaning."""
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


def _report(
    fit: Fit, as_json: bool, *, truth: dict[str, float] | None = None, saved: str | None = None
) -> None:
    if as_json:
        table = fit.summary()
        print(
            json.dumps(
                {
                    "law": fit.law.name,
                    "runs": len(fit.runs),
                    "params": {
                        name: {k: float(v) for k, v in table.loc[name].items()}
                        for name in table.index
                    },
                    "diagnostics": {
                        **fit.diagnostics.to_dict(),
                        "ok": fit.diagnostics.ok,
                        "problems": fit.diagnostics.problems,
                    },
                    "wall_time_s": dict(fit.settings.wall_time),
                    "saved": saved,
                },
                indent=2,
            )
        )
        return
    print(
        f"\nlaw {fit.law.name}: {fit.law.title}    ({len(fit.runs)} runs, {fit.likelihood.family} "
        f"noise on log loss"
        + (
            ""
            if not fit.likelihood.discrepancy.param_names(fit.law, ())
            else f", {fit.likelihood.discrepancy.name} discrepancy"
        )
        + ")"
    )
    print(format_table(fit, truth))
    wall = fit.settings.wall_time
    if wall:
        print(
            f"time: {wall.get('compile', 0):.1f} s compile, {wall.get('sampling', 0):.1f} s sampling"
        )
    print(fit.diagnostics)
    for problem in fit.diagnostics.problems:
        print(f"  warning: {problem}")
    if saved:
        print(f"saved to {saved}")


class ProgressBar:
    """A one-line progress bar on stderr (plain periodic lines when stderr is not a terminal)."""

    def __init__(self, width: int = 30) -> None:
        self.width = width
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_quarter = -1

    def __call__(self, done: int, total: int, phase: str) -> None:
        """Show ``done`` of ``total`` iterations."""
        fraction = done / total
        if self.tty:
            filled = int(self.width * fraction)
            print(
                f"\rsampling [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                f"{phase} {time.perf_counter() - self.started:.1f}s",
                end="",
                file=sys.stderr,
            )
        elif int(fraction * 4) > self.last_quarter:
            self.last_quarter = int(fraction * 4)
            print(f"sampling: {done}/{total} iterations ({phase})", file=sys.stderr)

    def close(self) -> None:
        """End the bar's line."""
        if self.tty:
            print(file=sys.stderr)


class _warnings_to_stderr(warnings.catch_warnings):
    """Show library warnings as one `warning:` line each instead of Python's tracebacky format."""

    def __init__(self) -> None:
        super().__init__(record=True)

    def __enter__(self) -> list[warnings.WarningMessage]:
        self.log = super().__enter__() or []
        warnings.simplefilter("always")
        return self.log

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        from scalebayes.errors import ConvergenceWarning

        for w in self.log:
            if issubclass(w.category, ConvergenceWarning):
                continue  # the diagnostics line below says it, with what to try
            print(f"warning: {w.message}", file=sys.stderr)
