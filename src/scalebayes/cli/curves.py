"""Learning-curve tables on the command line: ``fit --run-id ...`` fits their finished runs."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalebayes.data import Runs


def add_curve_options(parser: Any) -> None:
    """--run-id, --step, --end, --cooled: read the table as learning curves."""
    curves = parser.add_argument_group(
        "learning curves",
        "a table of every evaluated checkpoint: only finished runs are fitted (a mid-run "
        "checkpoint of a cosine schedule is not a run planned to stop there), so that "
        "`scalebayes optimal fit.nc --approach 1` reads the envelope of finished runs",
    )
    curves.add_argument(
        "--run-id",
        nargs="+",
        metavar="COLUMN",
        help="columns whose values together identify one run (one curve); each run's last "
        "checkpoint is kept",
    )
    curves.add_argument(
        "--step", metavar="COLUMN", help="a checkpoint's position in its run (default: tokens D)"
    )
    curves.add_argument(
        "--end",
        metavar="COLUMN",
        help="the step at which the run's schedule ends: runs stopped before it are dropped",
    )
    curves.add_argument(
        "--cooled", metavar="COLUMN", help="true/false: checkpoints after a cool-down count too"
    )


def read_curves(
    args: argparse.Namespace,
    path: str,
    columns: Mapping[str, str | None] | None,
    where: Mapping[str, list[str]] | None = None,
) -> Runs:
    """The finished runs of the learning-curve table at ``path``; prints what was kept.

    ``where``: read only those rows (--where's selection).
    """
    from scalebayes.curves import load_curves

    curves = load_curves(
        path,
        run=args.run_id,
        step=args.step,
        end=args.end,
        cooled=args.cooled,
        columns=columns,
        cost_k=args.cost_k,
        accept_inconsistent_c=args.accept_inconsistent_c,
        where=where,
        keep_best=getattr(args, "keep_best", False),
    )
    if not getattr(args, "json", False):
        print(curves)
    return curves.runs
