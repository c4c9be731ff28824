"""What the commands share: the fit options, reading them, progress, warnings, output.

Standard library only at import time (``scalebayes --help`` must not import JAX, NumPy or
matplotlib); the library is imported inside the functions that need it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from scalebayes.cli.curves import read_curves
from scalebayes.errors import ScalebayesError

if TYPE_CHECKING:
    from scalebayes.data import Runs
    from scalebayes.decision_tables import DecisionTable
    from scalebayes.likelihood import Likelihood

# The keys of scalebayes.discrepancy.KINDS, spelled out so that --help need not import JAX
# (tests/test_cli.py checks that the two agree).
DISCREPANCY_NAMES = ("auto", "none", "curvature", "quadratic", "gp", "gp_alone")

RAW = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """argparse's parser, reading ``-7e10`` and ``-1.5E-3`` as numbers, not as option names.

    argparse takes ``-7`` and ``-0.5`` for values but ``-7e10`` for an unknown option, so
    ``--N -7e10`` failed with "expected at least one argument" instead of the check that says
    N must be positive. Sub-command parsers are made of the same class.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE
        )


def add_table_options(p: argparse.ArgumentParser) -> None:
    """The options that say how a table of runs is read: columns, rows, C's constant."""
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="CANONICAL=NAME",
        help="use column NAME as N, D, C, U, loss, group or weight (repeatable); CANONICAL= "
        "with no NAME leaves that column unread (--column C= derives C from N and D)",
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
        "--keep-best",
        action="store_true",
        help="of runs that share N and D (a learning-rate sweep per size and horizon), keep "
        "the one of least loss; not for repeats over seeds",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="read only the rows whose COLUMN holds VALUE (repeatable: one column's values are "
        "alternatives, several columns must all match), e.g. --where experiment=llama_3__raw_loss",
    )


def add_fit_options(
    p: argparse.ArgumentParser, *, law: bool = True, discrepancy: str = "auto"
) -> None:
    """The options of every command that fits: law, priors, columns, likelihood, NUTS, output."""
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
    add_table_options(p)
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
        "auto (default): gp for laws of at most two inputs, none for three; quadratic in a "
        "grouped fit (--group)"
        if discrepancy == "auto"
        else "default none here: a discrepancy absorbs the differences between laws that a "
        "comparison measures; auto or gp compares each law plus its GP"
    )
    p.add_argument(
        "--discrepancy",
        type=_discrepancy_spec,
        default=discrepancy,
        metavar="{" + ",".join(DISCREPANCY_NAMES) + "}[:FIELD=VALUE]",
        help=f"model error beyond noise. {explain}. gp adds a Gaussian process and a quadratic "
        "in the log inputs for what the law misses, so intervals widen beyond the data "
        "(backtests on 9 public tables: 90%% intervals held 94%% of the larger runs, against "
        "57%% for none, at 0.40 of its interval score); exponents and allocations stay the "
        "plain law's. gp_alone leaves the quadratic out (narrower intervals far out: "
        "83%% held). none trusts the law's shape (about 2x faster to "
        "fit); curvature fits a quadratic with the law; quadratic fits one off the law's tangent "
        "space with the law, pooled by a grouped fit's groups (their curvature). A component's "
        "own fields after a colon: gp:curvature_scale=0.002, a tighter quadratic (README 'The "
        "default's quadratic'). See README 'How far can you trust it?'",
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
    p.add_argument(
        "--no-pooled-warmup",
        dest="pooled_warmup",
        action="store_false",
        help="each chain adapts its own mass matrix during warmup (by default a table's chains "
        "pool their draws in the law's and the GP's stages: README 'Speed')",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when the diagnostics still fail after the sampler went on and retried "
        "(R-hat > 1.01, bulk or tail ESS < 100 per chain, or a divergent transition)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def pairs(items: Sequence[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` items of a repeatable option as a mapping."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ScalebayesError(f"{option} {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def column_map(args: argparse.Namespace) -> dict[str, str | None] | None:
    """--column's ``CANONICAL=NAME`` items; ``CANONICAL=`` (no name) leaves it unread (None)."""
    unread = [item.partition("=")[0].strip() for item in args.column if item.strip().endswith("=")]
    if any(not name for name in unread):
        raise ScalebayesError("--column '=': expected CANONICAL=NAME, or CANONICAL= to leave it")
    named = [item for item in args.column if not item.strip().endswith("=")]
    columns: dict[str, str | None] = {**pairs(named, "--column"), **dict.fromkeys(unread)}
    return columns or None


def row_selection(args: argparse.Namespace) -> dict[str, list[str]] | None:
    """--where's ``COLUMN=VALUE`` items: each column's accepted values, in the order given."""
    chosen: dict[str, list[str]] = {}
    for item in getattr(args, "where", None) or []:
        column, sep, value = item.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise ScalebayesError(f"--where {item!r}: expected COLUMN=VALUE")
        chosen.setdefault(column.strip(), []).append(value.strip())
    return chosen or None


def _discrepancy_spec(text: str) -> str:
    """--discrepancy's value, checked while parsing: a name, and any fields it sets."""
    name = text.partition(":")[0].strip()
    if name not in DISCREPANCY_NAMES:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {name!r} (choose from {', '.join(DISCREPANCY_NAMES)}, each with "
            "optional :FIELD=VALUE)"
        )
    if ":" in text:
        from scalebayes.discrepancy import from_spec

        try:
            from_spec(text)
        except ScalebayesError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return text


def likelihood_of(args: argparse.Namespace) -> Likelihood:
    """The observation model of --likelihood, --df and --discrepancy."""
    from scalebayes.likelihood import Likelihood

    if args.df == "estimate":
        df = None
    else:
        try:
            df = float(args.df)
        except ValueError:
            raise ScalebayesError(f"--df {args.df!r}: expected a number or 'estimate'") from None
    return Likelihood(family=args.likelihood, df=df, discrepancy=args.discrepancy)


def fit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The fit options of :func:`add_fit_options` as keyword arguments of ``scalebayes.fit``."""
    return {
        "priors": pairs(args.prior, "--prior"),
        "likelihood": likelihood_of(args),
        "chains": args.chains,
        "draws": args.draws,
        "warmup": args.warmup,
        "seed": args.seed,
        "target_accept": args.target_accept,
        "pooled_warmup": args.pooled_warmup,
    }


def read_runs(args: argparse.Namespace, path: str) -> Runs:
    """The table of runs at ``path``, read with the options that shape it (--column, --keep-best, ...).

    With --run-id (``fit``'s learning-curve options) the table holds every checkpoint and only
    finished runs are returned (:func:`scalebayes.curves.load_curves`, its summary printed).
    """
    from scalebayes.data import load_runs

    if getattr(args, "run_id", None):
        if getattr(args, "group", None):
            raise ScalebayesError("--run-id (learning curves) and --group: fit one table at a time")
        return read_curves(args, path, column_map(args), row_selection(args))
    return load_runs(
        path,
        columns=column_map(args),
        group=getattr(args, "group", None),
        cost_k=args.cost_k,
        accept_inconsistent_c=args.accept_inconsistent_c,
        keep_best=getattr(args, "keep_best", False),
        where=row_selection(args),
    )


def progress_bar(args: argparse.Namespace) -> ProgressBar | None:
    """A progress bar unless --quiet or --json."""
    return None if args.quiet or getattr(args, "json", False) else ProgressBar()


def add_quiet(p: argparse.ArgumentParser) -> None:
    """--quiet for a command that samples only with approaches 1 and 2."""
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar while approaches 1 and 2 sample"
    )


def print_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout."""
    print(json.dumps(payload, indent=2))


def emit(args: argparse.Namespace, result: DecisionTable) -> None:
    """Print a decision's result as its text, JSON or CSV, ending with its diagnostics."""
    diagnostics = result.diagnostics
    if args.json:
        payload = result.to_dict()
        print_json({"law": payload.pop("law"), "fit": args.fit, **payload})
    elif args.csv:
        result.table.to_csv(sys.stdout, index=False)
        print(f"# {diagnostics}")
    elif result.diagnostics_in_text:
        print(result)
    else:
        print(result)
        print("\n".join(diagnostics.lines()))


class ProgressBar:
    """A one-line progress bar on stderr (plain periodic lines when stderr is not a terminal).

    One bar serves several fits in a row: a count that goes back down starts a new bar.
    """

    drawing: ClassVar[ProgressBar | None] = None  # the bar whose terminal line is open

    def __init__(self, width: int = 30) -> None:
        self.width = width
        self.tty = sys.stderr.isatty()
        self._restart()

    def _restart(self) -> None:
        self.started = time.perf_counter()
        self.last_quarter = -1
        self.done = 0
        self.open = False  # a terminal line is being drawn

    def __call__(self, done: int, total: int, phase: str) -> None:
        """Show ``done`` of ``total`` iterations."""
        if done < self.done:
            self.close()
            self._restart()
        self.done = done
        fraction = done / total
        if self.tty:
            filled = int(self.width * fraction)
            print(
                f"\rsampling [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                f"{phase} {time.perf_counter() - self.started:.1f}s",
                end="",
                file=sys.stderr,
            )
            self.open = True
            ProgressBar.drawing = self
        elif int(fraction * 4) > self.last_quarter:
            self.last_quarter = int(fraction * 4)
            print(f"sampling: {done}/{total} iterations ({phase})", file=sys.stderr)

    def close(self) -> None:
        """End the bar's line (before anything else is written to stderr)."""
        if self.open:
            print(file=sys.stderr)
            self.open = False
            ProgressBar.drawing = None

    @classmethod
    def end_open_line(cls) -> None:
        """End any bar's open line, so a message written now starts a line of its own."""
        if cls.drawing is not None:
            cls.drawing.close()


class warnings_to_stderr(warnings.catch_warnings):
    """Show each library warning as one `warning:` line on stderr, when it is raised.

    Not at the command's end: a warning about the table (checkpoints fitted as runs, duplicate
    runs) must come before minutes of sampling, not after them. Each message is shown once.
    """

    def __enter__(self) -> None:
        super().__enter__()
        warnings.simplefilter("always")
        self.shown: set[str] = set()
        warnings.showwarning = self._show  # catch_warnings restores it on exit

    def _show(
        self, message: Warning | str, category: type[Warning], *_: object, **__: object
    ) -> None:
        from scalebayes.errors import ConvergenceWarning

        text = str(message)
        if issubclass(category, ConvergenceWarning) or text in self.shown:
            return  # the diagnostics line says a convergence problem, with what to try
        self.shown.add(text)
        ProgressBar.end_open_line()
        print(f"warning: {text}", file=sys.stderr)


@contextlib.contextmanager
def figures_closed() -> Iterator[None]:
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
