"""The demo command: the main job end to end on a synthetic ladder with known truth, or --data.

It parses, calls :func:`scalebayes.demo.run_demo` and prints the result.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from scalebayes.cli._common import (
    RAW,
    ProgressBar,
    add_table_options,
    figures_closed,
    read_runs,
    warnings_to_stderr,
)
from scalebayes.errors import ScalebayesError
from scalebayes.outputs import FIT_SUFFIXES, check_file, check_folder

EXAMPLES_DEMO = """\
examples:
  scalebayes demo                       # synthetic Chinchilla-scale isoFLOP ladder, known truth
  scalebayes demo --data chinchilla.csv # the same on real data
  scalebayes demo --data isoflops_extract.csv --where experiment=llama_3__exp_loss
                                        # one table of a file (--column, --where as for fit)
  scalebayes demo --figures figs/       # write the figures to figs/ (default ./scalebayes-demo/)
"""


def add_commands(commands: Any) -> None:
    """Register demo on the CLI's sub-parser collection."""
    demo = commands.add_parser(
        "demo",
        help="the main job end to end on an embedded synthetic ladder (or --data)",
        epilog=EXAMPLES_DEMO,
        formatter_class=RAW,
        description="Simulate a Chinchilla-scale isoFLOP ladder from known constants (Epoch AI's "
        "refit), fit it, and show the posterior beside the truth.",
    )
    demo.add_argument("--data", help="run on this table of runs instead of the synthetic ladder")
    add_table_options(demo)  # how --data is read
    demo.add_argument("--law", default="chinchilla", help="law to fit (default: chinchilla)")
    demo.add_argument("--chains", type=int, default=4)
    demo.add_argument("--draws", type=int, default=1000)
    demo.add_argument("--warmup", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("-o", "--out", help="also write the fit to this NetCDF file")
    demo.add_argument(
        "--figures",
        default="scalebayes-demo",
        metavar="DIR",
        help="write the demo's figures here (default ./scalebayes-demo; '' for none)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from scalebayes.demo import run_demo

    if not args.data and (args.column or args.where or args.keep_best):
        raise ScalebayesError("--column, --where and --keep-best say how --data is read: give it")
    if args.out:
        check_file(args.out, suffixes=FIT_SUFFIXES, option="--out")
    if args.figures:
        check_folder(args.figures, option="--figures")
    bar = ProgressBar()
    drawing = figures_closed() if args.figures else contextlib.nullcontext()
    with drawing, warnings_to_stderr():
        demo = run_demo(
            args.data and read_runs(args, args.data),
            law=args.law,
            figures=args.figures or None,
            out=args.out,
            chains=args.chains,
            draws=args.draws,
            warmup=args.warmup,
            seed=args.seed,
            progress=bar,
        )
        bar.close()
    print(demo)
    return 0
