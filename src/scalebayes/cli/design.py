"""The design command: ``scalebayes next``, which runs to train next for an objective.

One library call (:func:`scalebayes.design.next_runs`) on a saved fit, printed as the result's
own text, or ``--json`` / ``--csv``; the fit's diagnostics line ends every output.
"""

from __future__ import annotations

import argparse
from typing import Any

from scalebayes.cli._common import RAW, emit, warnings_to_stderr

# The keys of scalebayes.design.OBJECTIVES, spelled out so that --help need not import JAX
# (tests/test_design.py checks that the two agree).
OBJECTIVE_KEYS = ("loss", "run", "region", "nstar", "chance", "regret")

EXAMPLES_NEXT = """\
examples:
  scalebayes next fit.nc --grid 1e19 1e20 1e21 --budget 3e21 --objective nstar --compute 5.76e23
  scalebayes next fit.nc --grid 1e20 --budget 5e20 --objective nstar --compute 1e22 --approach 3m
  scalebayes next fit.nc --candidates pool.csv --budget 1e21 --objective loss --N 70e9 --D 1.4e12
  scalebayes next fit.nc --grid 1e20 --budget 5e20 --objective chance --N 7e10 --D 1.4e12 --target 2.0
  scalebayes next fit.nc --grid 1e20 1e21 --budget 3e21 --objective regret --compute 5.76e23
  scalebayes next fit.nc --grid 1e20 --budget 5e20 --objective region --N 1e9 2e9 4e9 --D 8e10 4e10 2e10

Objectives: loss (width of the 90% credible interval of the loss at a planned run --N, --D),
run (the same for the run's own loss, the noise the fit measured included: the interval it
should fall in, as predict's "predictive"), region (mean posterior sd of the log loss over several planned runs, --N and --D as lists: e.g.
the isoFLOP sweep the next budget will train), nstar (width of the 90% interval of log10 N* at
--compute FLOPs, the law's allocation per draw; --approach 3m: the whole model's), chance (posterior sd of P(loss <= --target) at
a planned run --N, --D), regret (the value of information of the allocation: the expected
compute wasted, % of --compute, by the N chosen now against each posterior draw's own optimum). Candidates: a table
(columns N and D, or C; an optional cost column, FLOPs, default 6 N D; U for a law of repeated
data) or --grid budgets with --tokens-per-param ratios (and --unique-tokens). Runs are chosen
greedily by the objective's expected reduction per FLOP, computed by re-weighting the fit's
draws under simulated outcomes (no refit): re-fit once the runs are trained. A batch stops
where the weights keep too few draws (10% of them, at least 100) to measure what another run
adds, even within the budget: train those runs, re-fit and ask again."""


def add_commands(commands: Any) -> None:
    """Register ``next`` on the CLI's sub-parser collection."""
    p = commands.add_parser(
        "next",
        help="which runs to train next: expected shrinkage of an objective's interval per FLOP",
        epilog=EXAMPLES_NEXT,
        formatter_class=RAW,
        description="Choose a batch of next runs that most shrinks an objective's uncertainty "
        "per FLOP, from a saved fit's posterior.",
    )
    p.add_argument("fit", help="a fit written by `scalebayes fit --out`")
    p.add_argument(
        "--group",
        metavar="NAME",
        help="for a grouped fit: the group to design runs for ('new': a ladder not yet run)",
    )
    pool = p.add_mutually_exclusive_group(required=True)
    pool.add_argument("--candidates", help="CSV/TSV/Parquet of feasible runs (N, D or C, cost)")
    pool.add_argument(
        "--grid", type=float, nargs="+", metavar="FLOPS", help="isoFLOP budgets of generated runs"
    )
    p.add_argument(
        "--tokens-per-param",
        type=float,
        nargs="+",
        metavar="R",
        help="D/N ratios of --grid's runs (default 1 2 5 10 20 50 100 200 500)",
    )
    p.add_argument("--budget", type=float, required=True, help="FLOPs the batch may cost")
    p.add_argument("--objective", choices=OBJECTIVE_KEYS, required=True, help="what to make surer")
    p.add_argument(
        "--N",
        type=float,
        nargs="+",
        help="parameters of the planned run (loss, run, chance; region: runs)",
    )
    p.add_argument(
        "--D",
        type=float,
        nargs="+",
        help="training tokens of the planned run (loss, run, chance; region: runs)",
    )
    p.add_argument("--compute", type=float, help="target budget in FLOPs (nstar, regret)")
    p.add_argument(
        "--unique-tokens",
        type=float,
        metavar="U",
        help="for a law of repeated data (data_constrained): the unique tokens the planned "
        "run, the target budget and --grid's runs train on (a --candidates table gives a U "
        "column)",
    )
    p.add_argument(
        "--approach",
        choices=("3", "3m"),
        help="nstar: whose N* to make surer, the law's (3, default) or the whole model's (3m, "
        "law + GP: the one `optimal --approach all` recommends on isoFLOP sweeps)",
    )
    p.add_argument("--target", type=float, help="target loss (chance)")
    p.add_argument(
        "--prob", type=float, help="interval probability (loss, run, nstar; default 0.9)"
    )
    p.add_argument("--max-runs", type=int, help="at most this many runs")
    p.add_argument("--outcomes", type=int, default=32, help="simulated outcomes per run (32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated outcomes")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable JSON")
    out.add_argument("--csv", action="store_true", help="CSV table (diagnostics as a # comment)")
    p.set_defaults(handler=_next)


def _next(args: argparse.Namespace) -> int:
    from scalebayes.design import candidate_grid, make_objective, next_runs
    from scalebayes.errors import ScalebayesError
    from scalebayes.groups.select import select_group
    from scalebayes.io import load_fit

    if args.tokens_per_param and args.grid is None:
        raise ScalebayesError("--tokens-per-param goes with --grid")
    fit = select_group(load_fit(args.fit), args.group)
    n, d = args.N, args.D
    if args.objective != "region":
        several = [f"--{name}" for name, v in (("N", n), ("D", d)) if v is not None and len(v) > 1]
        if several:
            raise ScalebayesError(
                f"{' and '.join(several)}: --objective {args.objective} takes one planned run; "
                "--objective region takes several"
            )
        n, d = (None if v is None else v[0] for v in (n, d))
    objective = make_objective(
        args.objective, N=n, D=d, compute=args.compute, target=args.target, prob=args.prob,
        unique_tokens=args.unique_tokens, approach=args.approach,
    )  # fmt: skip
    if args.grid is not None:
        ratios = {"tokens_per_param": args.tokens_per_param} if args.tokens_per_param else {}
        candidates = candidate_grid(
            args.grid, cost_k=fit.runs.cost_k, unique_tokens=args.unique_tokens, **ratios
        )
    else:
        candidates = args.candidates
    with warnings_to_stderr():
        result = next_runs(
            fit, candidates, objective=objective, budget=args.budget, max_runs=args.max_runs,
            outcomes=args.outcomes, seed=args.seed,
        )  # fmt: skip
    emit(args, result.decision_table(fit))
    return 0
