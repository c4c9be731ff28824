"""Is pooling worth it here? Complete pooling, partial pooling and separate fits, scored two ways.

:func:`compare_pooling` fits one law to the groups of a table three ways (every parameter
``shared``: one law for all; the default partial pooling; every parameter ``separate``: each
group alone, no population) and scores them by

- PSIS-LOO on all runs (:func:`scalebayes.compare`): how well each predicts a run like the
  ones fitted;
- leave-future-out within each group: every group's largest budget(s) held out, the three
  refitted on the rest, each held-out run scored by its group's predictive (log predictive
  density, 90 % interval score, coverage; :func:`scalebayes.holdout.score`): how well each
  predicts the next, larger run of a ladder, which is the question before a big run.

The verdict names the choice leave-future-out supports, and says whether PSIS-LOO agrees.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.data import Runs, load_runs
from scalebayes.errors import ScalebayesError
from scalebayes.groups.backtest import budget_of
from scalebayes.groups.pooling import MODES, Pooling

if TYPE_CHECKING:
    from scalebayes.comparison import Comparison
    from scalebayes.groups.result import GroupedFit
    from scalebayes.laws import Law
    from scalebayes.likelihood import Likelihood

__all__ = ["CHOICES", "PoolingComparison", "compare_pooling"]

CHOICES = ("complete", "partial", "separate")
"""The three poolings compared: every parameter shared, the default, every parameter separate."""

# A difference in summed elpd within this many standard errors of 0 is not a preference.
SE_MARGIN = 2.0


@dataclass(frozen=True)
class PoolingComparison:
    """Complete, partial and no pooling of one table's groups, by PSIS-LOO and leave-future-out.

    Attributes
    ----------
    loo : Comparison
        PSIS-LOO of the three fits on all runs (:func:`scalebayes.compare`).
    future : DataFrame
        Leave-future-out, one row per (choice, group) and a pooled row per choice (group
        ``"all"``): held-out runs, their summed log predictive density ``elpd`` (loss scale;
        higher is better), its difference from the best choice's and that difference's
        standard error (paired over runs), mean 90 % interval score of log loss (lower is
        better) and 90 % coverage.
    held_out : str
        Which runs leave-future-out held out, in words.
    verdict : str
        The choice the data support, in words.
    fits : mapping of str to GroupedFit
        The fits on all runs, by choice.
    """

    loo: Comparison
    future: pd.DataFrame
    held_out: str
    verdict: str
    fits: Mapping[str, GroupedFit] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: both tables, what was held out, the verdict."""
        import json

        return {
            "loo": json.loads(self.loo.table.to_json(orient="index")),
            "leave_future_out": json.loads(self.future.to_json(orient="records")),
            "held_out": self.held_out,
            "verdict": self.verdict,
        }

    def __str__(self) -> str:
        rows = [
            f"{r['choice']:<9} {r['group']:<12} {r['runs']:>5d} {r['elpd']:>9.1f} "
            f"{r['elpd_diff']:>9.1f} {r['dse']:>7.1f} {r['interval_score_90']:>10.4f} "
            f"{r['coverage_90']:>9.0%}"
            for _, r in self.future.iterrows()
        ]
        header = (
            f"{'pooling':<9} {'group':<12} {'runs':>5} {'elpd':>9} {'diff':>9} {'dse':>7} "
            f"{'int. score':>10} {'coverage':>9}"
        )
        return "\n".join(
            [
                "Pooling, by PSIS-LOO on all runs:",
                str(self.loo),
                "",
                f"Pooling, by leave-future-out within each group ({self.held_out}):",
                header,
                *rows,
                "",
                f"verdict: {self.verdict}",
            ]
        )


def choice_pooling(choice: str, law: Law, likelihood: Likelihood) -> Pooling:
    """The :class:`Pooling` of ``choice`` (one of :data:`CHOICES`) for ``law`` and its noise."""
    if choice not in CHOICES:
        raise ScalebayesError(f"pooling choice {choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "partial":
        return Pooling()
    mode = MODES[0] if choice == "complete" else MODES[2]
    names = (*law.free_param_names, *likelihood.param_names)
    # nu, when estimated, is shared by default in every choice: one tail for the noise.
    return Pooling(modes={n: mode for n in names if n != "nu"})


def compare_pooling(
    runs: Runs | pd.DataFrame | str | os.PathLike[str],
    law: Law | str | os.PathLike[str] = "chinchilla",
    *,
    group: str | Sequence[str] | None = None,
    holdout_top: int = 1,
    likelihood: Likelihood | None = None,
    log: Callable[[str], None] | None = None,
    **sampler: Any,
) -> PoolingComparison:
    """Fit ``law`` to the groups of ``runs`` with complete, partial and no pooling; compare.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        Runs with a group column (``group`` names it when reading a table).
    law : Law, name or path
        The law all three fits take.
    holdout_top : int
        Leave-future-out holds out each group's largest ``holdout_top`` budgets
        (:func:`~scalebayes.groups.backtest.budget_of`); every group must keep at least 2.
    likelihood : Likelihood, optional
        Noise and shared discrepancy, as :func:`scalebayes.fit_groups` takes them.
    log : callable, optional
        Called with one line as each of the six fits starts.
    **sampler
        NUTS settings for all six fits (three on all runs, three below the cut).

    Returns
    -------
    PoolingComparison
    """
    import scalebayes as sb
    from scalebayes.comparison import compare
    from scalebayes.fitting import prepare

    if not isinstance(runs, Runs):
        runs = load_runs(runs, group=group)
    elif group is not None:
        raise ScalebayesError("group= names the column when reading a table; these runs are read")
    if runs.group is None:
        raise ScalebayesError(f"{runs.source} has no group column: name it with group=COLUMN")
    held = top_budgets(runs, holdout_top)
    resolved_law, resolved = prepare(law, likelihood, None)
    fits: dict[str, GroupedFit] = {}
    below: dict[str, GroupedFit] = {}
    train = runs.subset(~held)
    started = 0
    for choice in CHOICES:
        pooling = choice_pooling(choice, resolved_law, resolved.without_discrepancy())
        for table, into, what in ((runs, fits, "all runs"), (train, below, "runs below the cut")):
            started += 1
            if log is not None:
                log(f"fitting {choice} pooling to {what} ({started} of 6)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # each fit's health is in the tables' warnings
                into[choice] = sb.fit_groups(
                    table, law, pooling=pooling, likelihood=likelihood, **sampler
                )
    loo = compare(fits)
    future = _future_table(below, runs, held)
    held_out = (
        f"each group's largest {holdout_top} budget{'s' if holdout_top > 1 else ''}, "
        f"{int(held.sum())} runs"
    )
    return PoolingComparison(loo, future, held_out, _verdict(loo, future), fits)


def top_budgets(runs: Runs, top: int) -> np.ndarray:
    """Boolean mask of each group's ``top`` largest budgets; each group must keep 2 below."""
    if isinstance(top, bool) or int(top) < 1:
        raise ScalebayesError(f"holdout_top={top!r}: expected an integer >= 1")
    budget = budget_of(runs)
    held = np.zeros(len(runs), dtype=bool)
    for label in pd.unique(runs.group):
        mine = runs.group == label
        budgets = np.unique(budget[mine])
        if len(budgets) < top + 2:
            raise ScalebayesError(
                f"group {label!r} has {len(budgets)} budgets: holding out its largest {top} "
                "leaves fewer than 2 to fit"
            )
        held |= mine & (budget >= budgets[-top])
    return held


def _future_table(fits: Mapping[str, GroupedFit], runs: Runs, held: np.ndarray) -> pd.DataFrame:
    from scalebayes.holdout import score

    per_run = {}
    for choice, fit in fits.items():
        parts = []
        for label in fit.groups:
            mine = runs.group == label
            scored = score(fit.for_group(label), runs.subset(mine), held[mine])
            parts.append(scored.assign(group=label))
        per_run[choice] = pd.concat(parts)
    rows = []
    for label in (*next(iter(fits.values())).groups, "all"):
        lpd = {
            c: (t if label == "all" else t[t["group"] == label])["lpd"].to_numpy()
            for c, t in per_run.items()
        }
        best = max(lpd, key=lambda c: lpd[c].sum())
        for choice, table in per_run.items():
            mine = table if label == "all" else table[table["group"] == label]
            diff = lpd[choice] - lpd[best]
            rows.append(
                {
                    "choice": choice,
                    "group": label,
                    "runs": len(mine),
                    "elpd": float(lpd[choice].sum()),
                    "elpd_diff": float(diff.sum()),
                    "dse": float(np.sqrt(len(diff) * np.var(diff))),
                    "interval_score_90": float(mine["interval_score_90"].mean()),
                    "coverage_90": float(mine["inside_90"].mean()),
                }
            )
    return pd.DataFrame(rows)


NAMES = {
    "complete": "complete pooling",
    "partial": "partial pooling",
    "separate": "separate fits",
}


def _verdict(loo: Comparison, future: pd.DataFrame) -> str:
    pooled = future[future["group"] == "all"].set_index("choice")
    best = str(pooled["elpd"].idxmax())
    others = pooled.drop(index=best)
    close = [NAMES[str(c)] for c, r in others.iterrows() if -r["elpd_diff"] <= SE_MARGIN * r["dse"]]
    loo_best = str(loo.table.index[0])
    if close:
        said = (
            f"leave-future-out prefers {NAMES[best]}, but {' and '.join(close)} "
            f"{'is' if len(close) == 1 else 'are'} within {SE_MARGIN:g} standard errors of it"
        )
    else:
        said = (
            f"the data support {NAMES[best]}: leave-future-out (each group's next budget) "
            f"prefers it by {-others['elpd_diff'].max():.1f} elpd or more, beyond "
            f"{SE_MARGIN:g} standard errors"
        )
    agree = (
        "agrees" if loo_best == best else f"prefers {NAMES[loo_best]} (runs like the fitted ones)"
    )
    return f"{said}; PSIS-LOO {agree}"
