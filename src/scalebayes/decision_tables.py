"""The decisions as people read them: a tidy table, its text form and what was asked.

:func:`prediction_table`, :func:`allocation_table`, :func:`chance_table` and :func:`plan_table`
call the library's decisions (``predict``, an allocation estimator, ``chance``, ``plan``) and
lay the result out once, for every front end: the CLI prints ``str(result)`` or
:meth:`DecisionTable.to_dict`, a notebook shows ``result.table``.

Each takes ``group=`` for a grouped fit (:func:`scalebayes.fit_groups`): a group's label, or
``"new"`` for a ladder not yet run; without it, every group's table, stacked with a ``group``
column (:func:`for_groups`). The tables themselves are laid out from one group's ordinary
:class:`~scalebayes.results.Fit` (:func:`scalebayes.groups.select.select_group`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalebayes.formatting import format_interval, format_number, text_columns
from scalebayes.groups.select import NEW, is_grouped, select_group

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from scalebayes.engine import ProgressCallback
    from scalebayes.groups.result import GroupedFit
    from scalebayes.health import Diagnostics
    from scalebayes.results import Fit

INPUTS = ("N", "D", "C", "U")


@dataclass(frozen=True)
class DecisionTable:
    """One decision's result: ``table`` (one row per run or budget), ``text`` and ``meta``.

    ``meta`` holds what was asked (probability, target, ...) for machine output;
    ``diagnostics`` are those of the sampling behind the table (the fit's, or approach 2's own);
    ``diagnostics_in_text``: the text already ends with them (every approach's, side by side),
    so a printer adds no diagnostics line of its own.
    """

    law: str
    table: pd.DataFrame
    text: str
    diagnostics: Diagnostics
    meta: dict[str, Any] = field(default_factory=dict)
    diagnostics_in_text: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the law, ``meta``, one record per row, and the diagnostics."""
        return {
            "law": self.law,
            **self.meta,
            "rows": json.loads(self.table.to_json(orient="records")),
            "diagnostics": {
                **self.diagnostics.to_dict(),
                "ok": self.diagnostics.ok,
                "line": str(self.diagnostics),
            },
        }

    def __str__(self) -> str:
        return self.text


def for_groups(
    fit: Fit | GroupedFit, group: str | None, build: Callable[[Fit], DecisionTable]
) -> DecisionTable:
    """``build`` on the fit a decision uses: ``fit``, or ``group`` of a grouped fit.

    On a grouped fit without ``group``: ``build`` on every group's fit, the tables stacked
    (a leading ``group`` column), the texts one after another, ``meta`` what all groups share
    plus ``by_group`` for what differs, and the diagnostics of the first group whose own
    sampling (approach 2's, say) failed, or else the fit's.
    """
    if group is not None or not is_grouped(fit):
        result = build(select_group(fit, group))
        # one group: the caller prints its diagnostics line after the text, once
        return result if group is None else _labelled(result, fit, group, own_line=False)
    parts = [_labelled(build(fit.for_group(label)), fit, label) for label in fit.groups]
    first = parts[0].meta
    common = {k: v for k, v in first.items() if all(p.meta.get(k) == v for p in parts)}
    common.pop("group", None)
    by_group = {p.meta["group"]: {k: v for k, v in p.meta.items() if k not in common}
                for p in parts}  # fmt: skip
    if any(len(m) > 1 for m in by_group.values()):
        common["by_group"] = by_group
    failed = [p.diagnostics for p in parts if not p.diagnostics.ok]
    return DecisionTable(
        fit.law.name,
        pd.concat([p.table for p in parts], ignore_index=True),
        "\n\n".join(p.text for p in parts),
        failed[0] if failed else parts[0].diagnostics,
        {"groups": list(fit.groups), **common},
        diagnostics_in_text=all(p.diagnostics_in_text for p in parts),
    )


def _labelled(
    result: DecisionTable, fit: GroupedFit, group: str, *, own_line: bool = True
) -> DecisionTable:
    """``result`` of one group: a ``group`` column, a heading naming it, the group in ``meta``.

    ``own_line``: end the text with the group's own diagnostics where they differ from the
    fit's (a stacked table prints only one diagnostics line after all groups).
    """
    table = result.table.copy()
    table.insert(0, "group", group)
    if group == NEW:
        heading = (
            f"a new group (not yet run): per posterior draw, its parameters drawn from the "
            f"population of the {len(fit.groups)} fitted groups"
        )
    else:
        heading = f"group {group} ({int((fit.runs.group == group).sum())} runs)"
    own_line = own_line and not result.diagnostics_in_text
    own = f"\n{result.diagnostics}" if own_line and result.diagnostics != fit.diagnostics else ""
    return DecisionTable(
        result.law,
        table,
        f"{heading}\n{result.text}{own}",
        result.diagnostics,
        {**result.meta, "group": group},
        diagnostics_in_text=result.diagnostics_in_text,
    )


def prediction_table(
    fit: Fit | GroupedFit,
    *,
    prob: float = 0.9,
    interval: str = "eti",
    seed: int = 0,
    group: str | None = None,
    **points: ArrayLike,
) -> DecisionTable:
    """Loss at planned runs (``points``: two of N, D, C, and U if the law takes it), credible and predictive.

    Columns: the inputs, ``median``, ``credible_lb/ub`` (the law's mean), ``predictive_lb/ub``
    (a new run, noise included; ``seed`` draws the noise) at probability ``prob``, equal-tailed
    (``interval="eti"``) or highest-density (``"hdi"``), and ``extrapolation``. ``group``: see
    :func:`for_groups`.
    """
    return for_groups(fit, group, lambda one: _prediction_table(one, prob, interval, seed, points))


def _prediction_table(
    fit: Fit, prob: float, interval: str, seed: int, points: dict[str, ArrayLike]
) -> DecisionTable:
    from scalebayes.prediction import predict

    mean = predict(fit, kind="mean", **points).summary(probs=(prob,), kind=interval)
    new = predict(fit, kind="new_run", seed=seed, **points).summary(probs=(prob,), kind=interval)
    label = f"{interval}{prob * 100:g}"
    table = mean.drop(columns=["beyond", "extrapolation"]).rename(
        columns={f"{label}_lb": "credible_lb", f"{label}_ub": "credible_ub"}
    )
    table["predictive_lb"] = new[f"{label}_lb"]
    table["predictive_ub"] = new[f"{label}_ub"]
    table["extrapolation"] = mean["extrapolation"]
    inputs = [c for c in INPUTS if c in table]
    rows = [
        [*(format_number(r[c]) for c in inputs), format_number(r["median"]),
         format_interval(r["credible_lb"], r["credible_ub"]),
         format_interval(r["predictive_lb"], r["predictive_ub"]), r["extrapolation"]]
        for _, r in table.iterrows()
    ]  # fmt: skip
    pct = f"{prob * 100:g}%"
    header = [*inputs, "median", f"{pct} credible", f"{pct} predictive", "extrapolation"]
    beyond = fit.likelihood.discrepancy.beyond_data_note(fit.law)
    outside = (mean["beyond"] > 1).to_numpy()
    note = f"\nnote: {beyond}" if beyond and outside.any() else ""
    note += _discrepancy_shift(fit, points, mean["median"].to_numpy(), outside)
    text = (
        f"loss (nats/token) predicted by law {fit.law.name!r}; credible: the law's own "
        "uncertainty; predictive: a new run's loss, with run-to-run noise\n"
        + text_columns(header, rows)
        + note
    )
    return DecisionTable(
        fit.law.name, table, text, fit.diagnostics, {"prob": prob, "interval": interval}
    )


def _discrepancy_shift(
    fit: Fit, points: dict[str, ArrayLike], median: np.ndarray, outside: np.ndarray
) -> str:
    """A note where the discrepancy's term moves a median beyond the runs by more than the noise.

    One run's noise is the fitted sigma; past it the prediction leans on the shape the term took
    where the runs are, carried on. Empty otherwise, or without a discrepancy.
    """
    from scalebayes.prediction import predict

    law = fit.law_module(log_likelihood=False)
    if law is fit or not outside.any():
        return ""
    law_median = predict(law, kind="mean", **points).summary(probs=(0.9,))["median"].to_numpy()
    shift = np.where(outside, np.log(median / law_median), 0.0)
    far = int(np.argmax(np.abs(shift)))
    sigma = float(np.median(fit.posterior["sigma"]))
    if abs(shift[far]) <= sigma:
        return ""
    return (
        f"\nnote: beyond the runs the {fit.likelihood.discrepancy.name} term moves the median "
        f"by {np.expm1(shift[far]):+.1%} at row {far + 1} (the law alone: "
        f"{format_number(law_median[far])}), more than one run's noise ({100 * sigma:.2g}%): "
        "there the prediction leans on the shape the term took where the runs are, carried on"
    )


def allocation_table(
    fit: Fit | GroupedFit,
    budgets: ArrayLike,
    *,
    approach: str | int = 3,
    prob: float = 0.9,
    cost_k: float | None = None,
    group: str | None = None,
    unique_tokens: float | None = None,
    progress: ProgressCallback | None = None,
) -> DecisionTable:
    """The compute-optimal allocation at ``budgets`` (FLOPs) by one approach, one row per budget.

    Columns ``budget``, then median and ``prob`` interval of N, D, tokens_per_param, loss and
    the allocation exponents, ``beyond``/``extrapolation``, and (when the estimator's L* is the
    law's alone) the whole model's loss at the optimum. ``approach="all"``: every approach that
    can run, side by side, with a verdict and the recommended one
    (:func:`scalebayes.allocation.compare_approaches`). ``group``: see :func:`for_groups` (a
    new group has no runs: approach 3 only). ``unique_tokens``: the unique tokens a law of
    repeated data is given (approach 3; :func:`scalebayes.allocate.optimal`). ``progress``:
    ``progress(done, total, phase)`` while approaches 1 and 2 sample.
    """
    from scalebayes.allocation import check_group_approach, check_unique_approach

    check_group_approach(group, approach)
    check_unique_approach(unique_tokens, approach)
    options: dict[str, Any] = {"progress": progress}
    if unique_tokens is not None:
        options["unique_tokens"] = unique_tokens
    return for_groups(
        fit, group, lambda one: _allocation_table(one, budgets, approach, prob, cost_k, options)
    )


def _allocation_table(
    fit: Fit,
    budgets: ArrayLike,
    approach: str | int,
    prob: float,
    cost_k: float | None,
    options: dict[str, Any],
) -> DecisionTable:
    from scalebayes.allocate import extrapolation_of
    from scalebayes.allocation import estimator
    from scalebayes.summaries import summarise

    if str(approach) == "all":
        return _all_approaches(fit, budgets, prob=prob, cost_k=cost_k, progress=options["progress"])
    chosen = estimator(str(approach), **options)
    result = chosen.allocate(fit, budgets, cost_k=cost_k)
    long = result.summary(probs=(prob,))
    label = f"eti{prob * 100:g}"
    table = long.pivot(
        index="budget", columns="quantity", values=["median", f"{label}_lb", f"{label}_ub"]
    )
    table.columns = [
        f"{quantity}_{stat.replace(label + '_', '')}" for stat, quantity in table.columns
    ]
    table = table.reset_index()
    table["beyond"], table["extrapolation"] = extrapolation_of(fit, result)
    whole = chosen.whole_model_loss(fit, result)
    if whole is not None:  # L* is the law's; the discrepancy's uncertainty beyond the data
        spread = summarise(whole, probs=(prob,)).to_numpy()[:, :3].T
        for column, values in zip(("median", "lb", "ub"), spread, strict=True):
            table[f"loss_whole_model_{column}"] = values

    def cell(r: Any, q: str) -> str:
        if not np.isfinite(r[f"{q}_median"]):
            return "-"  # approach 2's L* away from its sweeps
        return f"{format_number(r[f'{q}_median'])} {format_interval(r[f'{q}_lb'], r[f'{q}_ub'])}"

    rows = [
        [format_number(r["budget"]), *(cell(r, q) for q in ("N", "D", "tokens_per_param", "loss")),
         f"{r['exponent_N_median']:.3f}", r["extrapolation"]]
        for _, r in table.iterrows()
    ]  # fmt: skip
    header = ["C (FLOPs)", "N*", "D*", "tokens/param", "loss L*", "dlogN*/dlogC", "extrapolation"]
    notes = "".join(f"\nnote: {note}" for note in chosen.notes(fit, result))
    if whole is not None:
        notes += (
            f"\nnote: L*, like N* and D*, is the law's alone (the "
            f"{fit.likelihood.discrepancy.name} discrepancy's mean beyond the data would bend "
            "it); with its uncertainty beyond the data, the loss at these runs is "
            + ", ".join(
                f"{format_number(r['loss_whole_model_median'])} "
                + format_interval(r["loss_whole_model_lb"], r["loss_whole_model_ub"])
                for _, r in table.iterrows()
            )
        )
    text = (
        f"{chosen.heading(fit, result)}: median [{prob * 100:g}% interval] over posterior draws\n"
        + text_columns(header, rows)
        + notes
    )
    meta = {"approach": chosen.approach, "cost_k": result.cost_k, "n_at_bound": result.n_at_bound}
    if getattr(result, "unique_tokens", None) is not None:
        meta["unique_tokens"] = result.unique_tokens
    return DecisionTable(fit.law.name, table, text, chosen.diagnostics(fit, result), meta)


def _all_approaches(
    fit: Fit,
    budgets: ArrayLike,
    *,
    prob: float,
    cost_k: float | None,
    progress: ProgressCallback | None,
) -> DecisionTable:
    import dataclasses

    from scalebayes.allocation import compare_approaches

    result = compare_approaches(fit, budgets, cost_k=cost_k, progress=progress)
    result = dataclasses.replace(result, prob=prob)
    meta = {
        "approach": "all",
        "verdict": result.verdict,
        "sentences": [pair.sentence(result.budgets) for pair in result.pairs],
        "refused": dict(result.refused),
        "recommended": result.recommended,
        "why": result.why,
        "diagnostics_by_approach": {k: str(d) for k, d in result.diagnostics.items()},
    }
    diagnostics = result.diagnostics[result.recommended]
    return DecisionTable(
        fit.law.name, result.table(), result.summary(), diagnostics, meta, diagnostics_in_text=True
    )


def chance_table(
    fit: Fit | GroupedFit, target: float, *, group: str | None = None, **points: ArrayLike
) -> DecisionTable:
    """P(loss <= ``target``) at planned runs (two of N, D, C): the law's mean, and a new run's.

    ``group``: see :func:`for_groups`.
    """
    return for_groups(fit, group, lambda one: _chance_table(one, target, dict(points)))


def _chance_table(fit: Fit, target: float, points: dict[str, ArrayLike]) -> DecisionTable:
    from scalebayes.planning import chance

    result = chance(fit, points.pop("N", None), points.pop("D", None), target, **points)
    table = result.summary().drop(columns=["beyond"])
    inputs = [c for c in INPUTS if c in table]
    rows = [
        [*(format_number(r[c]) for c in inputs), f"{r['p_mean']:.3f}", f"{r['p_new_run']:.3f}",
         r["extrapolation"]]
        for _, r in table.iterrows()
    ]  # fmt: skip
    header = [*inputs, "P(law <= target)", "P(run <= target)", "extrapolation"]
    text = f"chance of loss <= {target:g} under law {fit.law.name!r}\n" + text_columns(header, rows)
    return DecisionTable(fit.law.name, table, text, fit.diagnostics, {"target": target})


def plan_table(
    fit: Fit | GroupedFit,
    target: float,
    *,
    prob: float = 0.9,
    kind: str = "new_run",
    inference_tokens: float | Sequence[float] = 0.0,
    cost_k: float | None = None,
    group: str | None = None,
    unique_tokens: float | None = None,
) -> DecisionTable:
    """The cheapest run reaching ``target`` with probability ``prob``, per inference volume.

    One row per lifetime inference volume (``scalebayes.plan``'s table); the text adds each
    draw's own cheapest run (median and 90 % interval) and what the discrepancy adds.
    ``group``: see :func:`for_groups`. ``unique_tokens``: for a law of repeated data.
    """
    return for_groups(
        fit,
        group,
        lambda one: _plan_table(one, target, prob, kind, inference_tokens, cost_k, unique_tokens),
    )


def _plan_table(
    fit: Fit,
    target: float,
    prob: float,
    kind: str,
    inference_tokens: float | Sequence[float],
    cost_k: float | None,
    unique_tokens: float | None = None,
) -> DecisionTable:
    from scalebayes.planning import plan

    result = plan(
        fit, target, prob=prob, kind=kind, inference_tokens=inference_tokens, cost_k=cost_k,
        unique_tokens=unique_tokens,
    )  # fmt: skip
    table = result.table
    spread = result.per_draw_summary(probs=(0.9,))
    who = "a new run" if kind == "new_run" else "the law's mean"
    rows = [
        [format_number(r["inference_tokens"]), format_number(r["N"]), format_number(r["D"]),
         f"{r['tokens_per_param']:.1f}", format_number(r["C"]), format_number(r["total_cost"]),
         f"{r['p_new_run']:.3f}", f"{r['p_mean']:.3f}", r["extrapolation"]]
        for _, r in table.iterrows()
    ]  # fmt: skip
    header = ["inference T", "N", "D", "tokens/param", "train C", "total cost",
              "P(run)", "P(law)", "extrapolation"]  # fmt: skip
    lines = [
        f"cheapest run with P({who} <= {target:g}) >= {prob:g} under law "
        f"{fit.law.name!r} (cost = {result.cost_k:g} N D + 2 N T FLOPs"
        + ("" if unique_tokens is None else f"; U = {unique_tokens:.3g} unique tokens")
        + ")",
        text_columns(header, rows),
        "",
        "per draw, the cheapest run its own law needs (no noise): median [90% interval]",
    ]
    per_rows = []
    for t, group in spread.groupby("inference_tokens", sort=True):
        cells = {r["quantity"]: r for _, r in group.iterrows()}
        per_rows.append(
            [format_number(t), *(
                f"{format_number(cells[q]['median'])} {format_interval(cells[q]['eti90_lb'], cells[q]['eti90_ub'])}"
                for q in ("N", "D", "C")
            )]
        )  # fmt: skip
    lines.append(text_columns(["inference T", "N", "D", "train C"], per_rows))
    if result.n_unreachable:
        lines.append(
            f"note: {result.n_unreachable} draws cannot reach the target with N <= 1e16, "
            "D <= 1e19 (counted as infinite)"
        )
    if "p_whole_model" in table:  # the plan is the law's: say what the discrepancy adds
        lines.append(
            f"note: like `optimal`, the plan is the law's alone (the "
            f"{fit.likelihood.discrepancy.name} discrepancy's mean beyond the data would steer "
            f"it); with its uncertainty beyond the data, P({'run' if kind == 'new_run' else 'law'}) "
            "at these runs is " + ", ".join(f"{p:.3f}" for p in table["p_whole_model"])
        )
    meta = {
        "target": target,
        "prob": prob,
        "kind": kind,
        "n_unreachable": result.n_unreachable,
        "per_draw": spread.to_dict(orient="records"),
        **({} if unique_tokens is None else {"unique_tokens": unique_tokens}),
    }
    return DecisionTable(fit.law.name, table, "\n".join(lines), fit.diagnostics, meta)
