"""The commands that fit: fit, show, backtest, compare.

Each parses, calls one library function and prints its result's text or JSON
(:mod:`scalebayes.describe`, :mod:`scalebayes.backtesting`,
:mod:`scalebayes.law_comparison`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalebayes.cli._common import (
    RAW,
    add_fit_options,
    figures_closed,
    fit_options,
    pairs,
    print_json,
    progress_bar,
    read_runs,
    warnings_to_stderr,
)
from scalebayes.cli.curves import add_curve_options
from scalebayes.errors import OutputError, ScalebayesError
from scalebayes.outputs import FIT_SUFFIXES, check_file

if TYPE_CHECKING:
    from scalebayes.groups.result import GroupedFit
    from scalebayes.results import Fit
    from scalebayes.saved import SavedFit

EXAMPLES_FIT = """\
examples:
  scalebayes fit chinchilla.csv --law chinchilla --out fit.nc
  scalebayes fit runs.csv --law my_law.toml --prior alpha="Gamma(concentration=4, rate=12)"
  scalebayes fit runs.csv --column N="non-embedding params" --column loss=val_bpb --out fit.nc
  scalebayes fit scaling_results.csv --run-id N peak_lr total_steps \\
      --step current_steps --end total_steps --out curves.nc   # learning curves: finished runs
  scalebayes fit ladders.csv --group dataset --pool beta=shared   # groups, partial pooling
  scalebayes fit runs.csv --column C=   # leave the table's FLOPs unread: C = 6 N D
  scalebayes fit isoflops.csv --where experiment=llama_3__raw_loss   # one experiment of a file

Columns are recognised by their usual names (Model Size / params / N, tokens / D, Training FLOP
/ C, loss / val_loss; a unit may end a count's, Parameters (M), FLOPs (1e21), compute (PF-days));
C = k N D gives the missing one of C and D (--cost-k, default 6); counts may carry a suffix (2.8B).
Prints medians with 90% intervals, then R-hat, ESS and divergences."""

EXAMPLES_COMPARE = """\
examples:
  scalebayes compare chinchilla.csv --laws chinchilla kaplan chinchilla_cross
  scalebayes compare runs.csv --laws chinchilla power_c bnsl_c --method all --out-dir fits/
  scalebayes compare runs.csv --laws chinchilla kaplan --method lfo --cuts 1e20 3e20 1e21 --json
  scalebayes compare ladders.csv --group dataset          # complete, partial or no pooling?

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
  scalebayes backtest runs.csv --holdout-tokens-per-param 80    # over-training: D/N > 80 held out
  scalebayes backtest chinchilla.csv --plot pit.png            # PIT histogram per cut
  scalebayes backtest sweep.csv --allocation --holdout-budgets 1 2   # N* at held-out budgets
  scalebayes backtest ladders.csv --column group=dataset --group dclm --keep-budgets 3  # a new ladder

Scores lead with proper scores, which wide intervals cannot game: IS90 (interval score of the
90% interval: its width plus 20x any miss, log loss) and CRPS (log loss), lower is better;
lpd (log predictive density per run), higher is better. Then coverage: a calibrated fit puts
about 90% of the held-out losses inside its 90% predictive intervals, and their PIT values
(--plot) are flat. All cut-offs and the all-runs fit share one compiled sampler."""


RUNS_HELP = "CSV, TSV or Parquet file with one row per training run"


def add_commands(commands: Any) -> None:
    """Register fit, show, backtest and compare on the CLI's sub-parser collection."""
    fit = commands.add_parser(
        "fit",
        help="fit a law to a table of runs (NUTS)",
        epilog=EXAMPLES_FIT,
        formatter_class=RAW,
        description="Sample the posterior of a scaling law given a CSV/Parquet table of runs.",
    )
    fit.add_argument("runs", help=RUNS_HELP)
    add_fit_options(fit)
    fit.add_argument("-o", "--out", help="write the fit to this NetCDF file (e.g. fit.nc)")
    fit.add_argument(
        "--group",
        nargs="+",
        metavar="COLUMN",
        help="fit the groups these columns label together, with partial pooling (several "
        "columns are joined into one label); prints population and per-group tables",
    )
    fit.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="NAME=MODE",
        help="with --group: parameter NAME shared, pooled or separate across groups "
        "(repeatable; default all pooled, nu shared); discrepancy=pooled|shared|separate: "
        "each group its own discrepancy around a population's with a learned spread "
        "(default), one for all groups, or each group its own alone",
    )
    add_curve_options(fit)
    fit.set_defaults(handler=_fit)

    show = commands.add_parser(
        "show",
        help="print the parameter table and diagnostics of a saved fit",
        epilog="example:\n  scalebayes show fit.nc",
        formatter_class=RAW,
    )
    show.add_argument("fit", help="a fit written by `scalebayes fit --out`")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_show, needs_jax=False)

    backtest = commands.add_parser(
        "backtest",
        help="fit the smaller runs, predict the larger ones: how far can you trust it?",
        epilog=EXAMPLES_BACKTEST,
        formatter_class=RAW,
        description="For each compute cut-off, fit the runs at or below it and score the "
        "predictions of the runs above it: interval score, CRPS, log predictive density, 50% "
        "and 90% predictive coverage, width, bias and errors, and the compute-optimal "
        "allocation at a planning budget against the one from all the runs.",
    )
    backtest.add_argument("runs", help=RUNS_HELP)
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
    held.add_argument(
        "--holdout-tokens-per-param",
        nargs="+",
        type=float,
        metavar="RATIO",
        help="fit the runs with D/N <= RATIO, predict the over-trained rest (e.g. 80)",
    )
    backtest.add_argument(
        "--budget",
        type=float,
        help="planning budget in FLOPs for the allocation check (default 10x the largest run)",
    )
    backtest.add_argument(
        "--allocation",
        action="store_true",
        help="score the compute-optimal allocation instead: N* at the held-out isoFLOP budgets "
        "(--holdout-budgets, default 1 2) from each approach, against each held-out sweep's own "
        "minimum (approach 2 on its runs alone)",
    )
    backtest.add_argument(
        "--approaches",
        nargs="+",
        choices=("3", "3m", "2", "1"),
        metavar="KEY",
        help="with --allocation: the approaches scored (default 3 2 3m; 3m fits the default "
        "model, law + GP, below each cut, and approach 3 reads its law)",
    )
    backtest.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the held-out runs' PIT histogram, one panel per cut (.png, .svg or .pdf)",
    )
    backtest.add_argument(
        "--group",
        dest="ladder",
        metavar="NAME",
        help="a new ladder: fit group NAME with only its --keep-budgets cheapest budgets, with "
        "the other groups (complete; column 'group' or --column group=COL), alone, and alone with "
        "the plain law",
    )
    backtest.add_argument(
        "--keep-budgets", type=int, metavar="K", help="with --group: budgets kept (default 3)"
    )
    add_fit_options(backtest)
    backtest.set_defaults(handler=_backtest)

    compare = commands.add_parser(
        "compare",
        help="fit several laws to the same runs and rank them (LOO, WAIC, leave-future-out)",
        epilog=EXAMPLES_COMPARE,
        formatter_class=RAW,
        description="Which functional form should you believe? Fit each law, then compare by "
        "PSIS-LOO, WAIC and/or leave-future-out by compute, with stacking weights.",
    )
    compare.add_argument("runs", help=RUNS_HELP)
    compare.add_argument(
        "--laws",
        nargs="+",
        metavar="LAW",
        help="two or more catalogue names or .toml paths (see `scalebayes laws`); default: the "
        "catalogue's laws of N and D (and U, where the table has it); with --group, the one law "
        "(default chinchilla)",
    )
    compare.add_argument(
        "--group",
        nargs="+",
        metavar="COLUMN",
        help="instead of laws, compare pooling over the groups these columns label: complete, "
        "partial and none (separate fits), by PSIS-LOO and by leave-future-out within each "
        "group. This command's --discrepancy defaults to none; --discrepancy auto gives the "
        "groups the pooled quadratic, as fit --group does",
    )
    compare.add_argument(
        "--holdout-top",
        type=int,
        default=1,
        metavar="K",
        help="with --group: leave-future-out holds out each group's largest K budgets (default 1)",
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
    add_fit_options(compare, law=False, discrepancy="none")
    compare.set_defaults(handler=_compare)


# --- handlers ----------------------------------------------------------------------------------


def _fit(args: argparse.Namespace) -> int:
    from scalebayes.fitting import fit

    if args.group or args.pool:
        return _fit_groups(args)
    if args.out:  # before the fit, not after it
        check_file(args.out, suffixes=FIT_SUFFIXES, option="--out")
    bar = progress_bar(args)
    with warnings_to_stderr():
        runs = read_runs(args, args.runs)
        if not args.json:
            print(runs)
        result = fit(runs, args.law, **fit_options(args), progress=bar)
        if bar is not None:
            bar.close()
    if args.out:
        from scalebayes.io import save_fit

        save_fit(result, args.out)
    _print_fit(result, args.json, saved=args.out)
    return 1 if args.strict and not result.diagnostics.ok else 0


def _fit_groups(args: argparse.Namespace) -> int:
    from scalebayes.groups.fitting import fit_groups
    from scalebayes.groups.pooling import Pooling

    if not args.group:
        raise ScalebayesError(
            "--pool applies to grouped fits: name the group column(s) with --group"
        )
    if args.out:  # before the fit, not after it
        check_file(args.out, suffixes=FIT_SUFFIXES, option="--out")
    pooling = Pooling(modes=pairs(args.pool, "--pool"))
    options = fit_options(args)
    bar = progress_bar(args)
    with warnings_to_stderr():
        runs = read_runs(args, args.runs)
        if not args.json:
            print(runs)
        result = fit_groups(runs, args.law, pooling=pooling, **options, progress=bar)
        if bar is not None:
            bar.close()
    if args.out:
        from scalebayes.io import save_fit

        save_fit(result, args.out)
    _print_fit(result, args.json, saved=args.out)
    return 1 if args.strict and not result.diagnostics.ok else 0


def _show(args: argparse.Namespace) -> int:
    from scalebayes.io import load_description

    _print_fit(load_description(args.fit), args.json)
    return 0


def _print_fit(
    fit: Fit | GroupedFit | SavedFit, as_json: bool, *, saved: str | None = None
) -> None:
    from scalebayes.describe import fit_record, fit_text
    from scalebayes.groups.select import is_grouped

    grouped = is_grouped(fit)
    if as_json:
        record = fit.to_dict() if grouped else fit_record(fit)
        print_json({**record, "saved": saved})
        return
    print(f"\n{fit if grouped else fit_text(fit)}")
    if saved:
        print(f"saved to {saved}")


def _backtest(args: argparse.Namespace) -> int:
    from scalebayes.backtesting import backtest

    if args.ladder is not None or args.keep_budgets is not None:
        return _ladder_backtest(args)
    if args.allocation:
        return _allocation_backtest(args)
    if args.approaches:
        raise ScalebayesError("--approaches chooses the allocation approaches: add --allocation")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        # Before the fits, not after minutes of sampling.
        raise ScalebayesError(f"--plot {args.plot!r}: expected a .png, .svg or .pdf file")
    bar = progress_bar(args)
    with warnings_to_stderr():
        runs = read_runs(args, args.runs)
        if not args.json:
            print(runs)
        result = backtest(
            runs,
            args.law,
            holdout_top=args.holdout_top,
            holdout_budgets=args.holdout_budgets,
            cuts=args.cut,
            holdout_tokens_per_param=args.holdout_tokens_per_param,
            budget=args.budget,
            **fit_options(args),
            progress=bar,
        )
        if bar is not None:
            bar.close()
    if args.plot:
        with figures_closed(), warnings_to_stderr():
            from scalebayes import plots
            from scalebayes.figures import draw_pit

            figure = draw_pit(result.law, result.scores, list(result.table["held_out"]))
            plots.save(figure, args.plot)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result)
        if args.plot:
            print(f"wrote the PIT histograms to {args.plot}")
    healthy = all(f.diagnostics.ok for f in result.fits)
    return 1 if args.strict and not healthy else 0


def _ladder_backtest(args: argparse.Namespace) -> int:
    from scalebayes.groups.backtest import new_ladder_backtest

    other = [name for name in ("holdout_top", "holdout_budgets", "cut", "holdout_tokens_per_param",
             "plot", "budget") if getattr(args, name) not in (None, False)] + (
        ["allocation"] if args.allocation else [])  # fmt: skip
    if args.ladder is None:
        raise ScalebayesError("--keep-budgets needs --group NAME: the group whose ladder is cut")
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise ScalebayesError(f"--group NAME is a backtest of its own; not with {flags}")
    options = fit_options(args)
    options.pop("likelihood")  # each fit takes its own default and the plain law beside them
    with warnings_to_stderr():
        runs = read_runs(args, args.runs)
        if not args.json:
            print(runs)
        table = new_ladder_backtest(runs, args.ladder, args.keep_budgets or 3, args.law, **options)
    if args.json:
        print_json(table.to_dict("records"))
    else:
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 1 if args.strict and not table["healthy"].all() else 0


def _allocation_backtest(args: argparse.Namespace) -> int:
    from scalebayes.allocation_backtest import allocation_backtest

    other = [name for name in ("holdout_top", "cut", "holdout_tokens_per_param", "plot")
             if getattr(args, name) is not None]  # fmt: skip
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise ScalebayesError(
            f"--allocation holds out isoFLOP budgets (--holdout-budgets); not {flags}"
        )
    options = fit_options(args)
    options.pop("likelihood")  # set by the approaches: the default model when 3m is among them
    if args.approaches:
        options["approaches"] = tuple(dict.fromkeys(args.approaches))
    with warnings_to_stderr():
        runs = read_runs(args, args.runs)
        if not args.json:
            print(runs)
        result = allocation_backtest(
            runs, args.law, holdout_budgets=args.holdout_budgets or (1, 2), **options
        )
    if args.json:
        print_json(result.to_dict())
    else:
        print(result)
    healthy = all(d.ok for d in result.diagnostics.values())
    return 1 if args.strict and not healthy else 0


def _compare(args: argparse.Namespace) -> int:
    from scalebayes.law_comparison import compare_laws

    if args.group:
        return _compare_pooling(args)
    cuts = _cuts(args.cuts)
    if args.out_dir is not None and not os.path.isdir(args.out_dir):
        raise OutputError(f"--out-dir {args.out_dir}: not an existing folder")
    bar = progress_bar(args)

    def say(text: str) -> None:
        if args.json:
            return
        if bar is not None:
            bar.close()
        print(text, file=sys.stderr)

    with warnings_to_stderr():
        runs = read_runs(args, args.runs)
        if not args.json:
            print(runs)
        result = compare_laws(
            runs,
            args.laws,
            methods=args.method,
            cuts=cuts,
            out_dir=args.out_dir,
            **fit_options(args),
            progress=bar,
            log=say,
        )
        if bar is not None:
            bar.close()
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"\n{result}")
    return 1 if args.strict and not result.healthy else 0


def _compare_pooling(args: argparse.Namespace) -> int:
    from scalebayes.groups.pooling_comparison import compare_pooling

    laws = args.laws or ["chinchilla"]
    if len(laws) != 1:
        raise ScalebayesError("with --group, --laws takes one law: the pooling is compared")
    if args.out_dir is not None or args.method != "loo" or args.cuts != ["4"]:
        raise ScalebayesError("with --group: no --method, --cuts or --out-dir (not law options)")
    options = fit_options(args)

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr)

    with warnings_to_stderr():
        runs = read_runs(args, args.runs)
        if not args.json:
            print(runs)
        result = compare_pooling(runs, laws[0], holdout_top=args.holdout_top, log=say, **options)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"\n{result}")
    healthy = all(fit.diagnostics.ok for fit in result.fits.values())
    return 1 if args.strict and not healthy else 0


def _cuts(items: Sequence[str]) -> int | list[float]:
    if len(items) == 1 and items[0].isdigit():
        return int(items[0])
    try:
        return [float(item) for item in items]
    except ValueError:
        raise ScalebayesError(
            f"--cuts {' '.join(items)}: expected a number of cut-offs or FLOP values"
        ) from None
