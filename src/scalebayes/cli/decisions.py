"""The decision commands: predict, optimal, chance, plan.

Each is one library call on a saved fit (:mod:`scalebayes.decision_tables`) whose result is
printed as its own text by default, ``--json`` or ``--csv`` for machines, with the diagnostics
line at the end of every output (:func:`scalebayes.cli._common.emit`). JAX and the library are imported inside the handlers,
so ``scalebayes --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from scalebayes.cli._common import RAW, add_quiet, emit, progress_bar, warnings_to_stderr
from scalebayes.errors import ScalebayesError

# The keys of scalebayes.allocation.ESTIMATORS, spelled out so that --help need not import JAX
# (tests/test_isoflop.py checks that the two agree).
APPROACHES = ("3", "3m", "2", "1")

EXAMPLES_PREDICT = """\
examples:
  scalebayes predict fit.nc --N 70e9 --D 1.4e12           # Chinchilla itself
  scalebayes predict fit.nc --N 1e9 7e9 70e9 --C 1e23     # three model sizes at one budget
  scalebayes predict fit.nc --runs planned.csv --csv      # columns N and D (or C), like `fit`
  scalebayes predict groups.nc --N 7e9 --D 1.4e11 --group new   # a grouped fit: a ladder not yet run

Give two of N, D, C (C = k N D with the fit's k, default 6); values broadcast. "credible" is
the uncertainty about the law itself; "predictive" adds the run-to-run noise the fit measured:
it is the range your own run's loss should fall in."""

EXAMPLES_OPTIMAL = """\
examples:
  scalebayes optimal fit.nc --compute 5.76e23 1e24 1e25
  scalebayes optimal fit.nc --compute 1e24 --cost-k 6 --json
  scalebayes optimal fit.nc --compute 1e24 --approach 2
  scalebayes optimal fit.nc --compute 1e22 1e24 --approach all
  scalebayes optimal repeats.nc --compute 1e21 1e22 --unique-tokens 1e10   # data_constrained

Approach 3 (default): for every posterior draw and budget C, the N that minimises the law's loss
with D = C / (k N); medians and 90% intervals over draws of N*, D*, tokens per parameter D*/N*,
the loss L*, and the allocation exponent d log N* / d log C. Approach 3m (a fit with the default
GP discrepancy): the same from the whole model, law plus GP, up to the largest fitted isoFLOP
sweep (else the largest run), and beyond it N* carried on straight with the whole model's own
exponent there. Approach 2: the fit's runs grouped
into isoFLOP sweeps (a budget column, or equal C; a sweep whose least loss is at its smallest or
largest model shows no valley and is left out, and said so), each sweep's loss minimum sampled as
a latent variable with a power law N* = G C^a through them (its own NUTS run, the fit's
settings); L* is given at the sweeps' budgets only. Approach 1: the fit's runs taken as finished runs of several
model sizes and horizons (load a learning-curve table with scalebayes.load_curves), each size's
loss-against-tokens curve sampled, and per draw the lower envelope over sizes, its argmin and a
power law N* = G C^a through them. --approach all: every approach that can run on the table,
side by side, the ones that cannot with the reason, a verdict (agree / disagree / unclear, with
how much and how sure) and the approach recommended for this table."""

EXAMPLES_CHANCE = """\
examples:
  scalebayes chance fit.nc --N 7e9 --D 2e12 --target 2.05
  scalebayes chance fit.nc --N 7e9 70e9 --D 2e12 1.4e12 --target 2.0

P(law <= target): how sure the posterior is that the law's mean loss gets there.
P(run <= target): the chance that an actual training run does (adds run-to-run noise)."""

EXAMPLES_PLAN = """\
examples:
  scalebayes plan fit.nc --target 2.0                       # 90% sure a run reaches 2.0
  scalebayes plan fit.nc --target 2.0 --prob 0.5 --kind mean
  scalebayes plan fit.nc --target 2.0 --inference-tokens 0 1e12 1e13 1e14

The cheapest single run (N, D) whose chance of reaching the target is at least --prob. With
--inference-tokens T the cost is training plus inference, 6 N D + 2 N T (Sardana et al. 2023):
as T grows the plan moves to a smaller model trained on more tokens."""


def add_commands(commands: Any) -> None:
    """Register predict, optimal, chance and plan on the CLI's sub-parser collection."""
    predict = commands.add_parser(
        "predict",
        help="loss at planned runs with credible and predictive intervals",
        epilog=EXAMPLES_PREDICT,
        formatter_class=RAW,
        description="Predicted loss of planned runs under every posterior draw of a saved fit.",
    )
    _add_fit(predict)
    _add_points(predict)
    predict.add_argument(
        "--runs", help="CSV/TSV/Parquet table of planned runs (columns N and D, or C)"
    )
    predict.add_argument(
        "--prob", type=float, default=0.9, help="interval probability (default 0.9)"
    )
    predict.add_argument(
        "--hdi", action="store_true", help="highest-density instead of equal-tailed intervals"
    )
    predict.add_argument("--seed", type=int, default=0, help="seed of the noise draws")
    _add_output(predict)
    predict.set_defaults(handler=_predict, needs_jax=False)

    optimal = commands.add_parser(
        "optimal",
        help="compute-optimal N*, D*, tokens/param and loss per budget, with intervals",
        epilog=EXAMPLES_OPTIMAL,
        formatter_class=RAW,
        description="Compute-optimal allocation per posterior draw for each training budget.",
    )
    _add_fit(optimal)
    optimal.add_argument(
        "--compute", type=float, nargs="+", required=True, metavar="FLOPS", help="budgets"
    )
    optimal.add_argument(
        "--cost-k", type=float, help="FLOPs per parameter per token (default: the fit's, 6)"
    )
    optimal.add_argument(
        "--prob", type=float, default=0.9, help="interval probability (default 0.9)"
    )
    _add_unique_tokens(optimal)
    optimal.add_argument(
        "--approach",
        choices=(*APPROACHES, "all"),
        default="3",
        help="3: minimise the fitted law (default); 3m: the whole fitted model (law + GP) where "
        "it has runs, its own trend beyond; 2: isoFLOP sweep minima and a power law; 1: "
        "envelope of finished runs; all: every approach side by side, with a verdict",
    )
    _add_output(optimal)
    add_quiet(optimal)
    optimal.set_defaults(handler=_optimal, needs_jax=False)  # approaches 1 and 2 configure it

    chance = commands.add_parser(
        "chance",
        help="P(loss <= target) of planned runs",
        epilog=EXAMPLES_CHANCE,
        formatter_class=RAW,
        description="Probability that planned runs reach a target loss.",
    )
    _add_fit(chance)
    _add_points(chance)
    chance.add_argument("--target", type=float, required=True, help="target loss (nats/token)")
    _add_output(chance)
    chance.set_defaults(handler=_chance, needs_jax=False)

    plan = commands.add_parser(
        "plan",
        help="the cheapest run that reaches a target loss with a given probability",
        epilog=EXAMPLES_PLAN,
        formatter_class=RAW,
        description="The smallest-cost run whose chance of reaching the target is at least --prob.",
    )
    _add_fit(plan)
    plan.add_argument("--target", type=float, required=True, help="target loss (nats/token)")
    plan.add_argument("--prob", type=float, default=0.9, help="required probability (default 0.9)")
    plan.add_argument(
        "--kind",
        choices=("new_run", "mean"),
        default="new_run",
        help="who must reach the target: the training run (default) or the law's mean",
    )
    plan.add_argument(
        "--inference-tokens",
        type=float,
        nargs="+",
        default=[0.0],
        metavar="T",
        help="lifetime inference tokens; several show how the plan moves (default 0)",
    )
    plan.add_argument(
        "--cost-k", type=float, help="FLOPs per parameter per token (default: the fit's, 6)"
    )
    _add_unique_tokens(plan)
    _add_output(plan)
    plan.set_defaults(handler=_plan, needs_jax=False)


def _add_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("fit", help="a fit written by `scalebayes fit --out`")
    p.add_argument(
        "--group",
        metavar="NAME",
        help="for a grouped fit (`fit --group`): this group's table, or 'new' for a ladder not "
        "yet run (parameters drawn from the population); default one table per group",
    )


def _add_points(p: argparse.ArgumentParser) -> None:
    for name, meaning in (("N", "parameters"), ("D", "training tokens"), ("C", "training FLOPs")):
        p.add_argument(f"--{name}", type=float, nargs="+", metavar=name, help=meaning)
    p.add_argument(
        "--U", type=float, nargs="+", metavar="U", help="unique tokens (data-constrained laws)"
    )


def _add_output(p: argparse.ArgumentParser) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    out.add_argument("--csv", action="store_true", help="CSV table (diagnostics as a # comment)")


# --- handlers ----------------------------------------------------------------------------------

# What the decisions read of a saved fit: the draws of the parameters, not each run's
# log-likelihood nor the sampler's statistics (opening those groups cost more than deciding).
DECISION_GROUPS = ("posterior",)


def _predict(args: argparse.Namespace) -> int:
    from scalebayes.decision_tables import prediction_table
    from scalebayes.io import load_fit

    fit = load_fit(args.fit, groups=DECISION_GROUPS)
    points = _points(args)
    interval = "hdi" if args.hdi else "eti"
    with warnings_to_stderr():
        result = prediction_table(
            fit, prob=args.prob, interval=interval, seed=args.seed, group=args.group, **points
        )
    emit(args, result)
    return 0


def _optimal(args: argparse.Namespace) -> int:
    from scalebayes.decision_tables import allocation_table
    from scalebayes.io import load_fit

    if args.approach not in ("3", "3m"):  # 1 and 2 sample their own models; 3 and 3m: NumPy
        from scalebayes.runtime import configure

        configure()

    fit = load_fit(args.fit, groups=DECISION_GROUPS)
    with warnings_to_stderr():
        result = allocation_table(
            fit,
            args.compute,
            approach=args.approach,
            prob=args.prob,
            cost_k=args.cost_k,
            group=args.group,
            unique_tokens=args.unique_tokens,
            progress=progress_bar(args),
        )
    emit(args, result)
    return 0


def _chance(args: argparse.Namespace) -> int:
    from scalebayes.decision_tables import chance_table
    from scalebayes.io import load_fit

    fit = load_fit(args.fit, groups=DECISION_GROUPS)
    points = _points(args)
    with warnings_to_stderr():
        result = chance_table(fit, args.target, group=args.group, **points)
    emit(args, result)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from scalebayes.decision_tables import plan_table
    from scalebayes.io import load_fit

    fit = load_fit(args.fit, groups=DECISION_GROUPS)
    with warnings_to_stderr():
        result = plan_table(
            fit,
            args.target,
            prob=args.prob,
            kind=args.kind,
            inference_tokens=args.inference_tokens,
            cost_k=args.cost_k,
            group=args.group,
            unique_tokens=args.unique_tokens,
        )
    emit(args, result)
    return 0


def _add_unique_tokens(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unique-tokens",
        type=float,
        metavar="U",
        help="for a law of repeated data (data_constrained): the unique tokens available; "
        "D beyond U repeats them (the law's approach)",
    )


# --- formatting --------------------------------------------------------------------------------


def _points(args: argparse.Namespace) -> dict[str, Any]:
    """Planned runs from --N/--D/--C/--U or from --runs (a table), never both."""
    given = {name: getattr(args, name) for name in ("N", "D", "C", "U")}
    given = {name: value for name, value in given.items() if value is not None}
    table_path = getattr(args, "runs", None)
    if table_path is None:
        return given
    if given:
        raise ScalebayesError("give planned runs either with --N/--D/--C or with --runs, not both")
    return _read_planned(table_path)


def _read_planned(path: str) -> dict[str, Any]:
    from scalebayes.prediction import points_from_table
    from scalebayes.table_files import read_table

    table, lines = read_table(path)
    return points_from_table(table, source=path, lines=lines)
