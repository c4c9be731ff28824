"""Command-line interface: each command parses, calls one library function, prints its result.

The commands live by what they do: :mod:`~scalebayes.cli.demo` (demo), :mod:`~scalebayes.cli.fitting` (fit,
show, backtest, compare), :mod:`~scalebayes.cli.decisions` (predict, optimal, chance, plan),
:mod:`~scalebayes.cli.design` (next),
:mod:`~scalebayes.cli.figures` (plot, report) and :mod:`~scalebayes.cli.info` (laws, env);
:mod:`~scalebayes.cli._common` holds what they share. JAX, NumPy and matplotlib are imported
inside the commands, so ``scalebayes --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scalebayes import __version__, interrupts
from scalebayes.cli import decisions, demo, design, figures, fitting, info
from scalebayes.cli._common import DISCREPANCY_NAMES, Parser
from scalebayes.cli.figures import PLOT_KINDS
from scalebayes.errors import ScalebayesError

__all__ = ["DISCREPANCY_NAMES", "PLOT_KINDS", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scalebayes`` command line; returns the exit status (2 for bad input)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(
            f"unrecognized arguments: {' '.join(extra)}{_option_hint(parser, argv, extra)}"
        )
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    if getattr(args, "needs_jax", True):
        from scalebayes.runtime import configure

        configure()
    try:
        with interrupts.recorded():  # a Ctrl-C swallowed by a JAX callback still stops the command
            return args.handler(args)
    except ScalebayesError as err:
        print(f"scalebayes: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalebayes: interrupted", file=sys.stderr)
        return 130


def _option_hint(parser: argparse.ArgumentParser, argv: list[str], extra: list[str]) -> str:
    """A hint for words the command did not take: which option takes each as its value.

    ``plot fit.nc isoflop`` gets "; did you mean --kind isoflop?"; nothing ("") when no option
    of the command takes the words.
    """
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    name = next((word for word in argv if word in commands.choices), None)
    if name is None:
        return ""
    takes = {str(choice): option.option_strings[-1]
             for option in commands.choices[name]._actions
             if option.option_strings and option.choices
             for choice in option.choices}  # fmt: skip
    hints = [f"{takes[word]} {word}" for word in extra if word in takes]
    return f"; did you mean {' '.join(hints)}?" if hints else ""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (each with a worked example in its epilog)."""
    parser = Parser(
        prog="scalebayes",
        description="Bayesian scaling-law inference: fit a law to training runs with NUTS and "
        "carry the whole posterior into decisions.",
        epilog="Start with `scalebayes demo`. Every command has --help with examples.",
    )
    parser.add_argument("--version", action="version", version=f"scalebayes {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in (demo, fitting, decisions, design, figures, info):
        module.add_commands(commands)
    return parser
