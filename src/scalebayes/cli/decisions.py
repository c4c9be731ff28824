"""The decision commands: predict, optimal, chance, plan.

Each is one library call on a saved fit plus its table: text by default, ``--json`` or
``--csv`` for machines, and the fit's diagnostics line at the end of every output
(:func:`scalebayes.cli._common.emit`). JAX and the library are imported inside the handlers,
so ``scalebayes --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from scalebayes.cli._common import RAW, emit, warnings_to_stderr
from scalebayes.errors import ScalebayesError
from scalebayes.formatting import format_interval, format_number, text_columns

# The keys of scalebayes.allocation.ESTIMATORS, spelled out so that --help need not import JAX
# (tests/test_isoflop.py checks that the two agree).
APPROACHES = ("3", "2", "1")

EXAMPLES_PREDICT = """\
examples:
  scalebayes predict fit.nc --N 70e9 --D 1.4e12           # Chinchilla itself
  scalebayes predict fit.nc --N 1e9 7e9 70e9 --C 1e23     # three model sizes at one budget
  scalebayes predict fit.nc --runs planned.csv --csv      # columns N and D (or C), like `fit`

Give two of N, D, C (C = k N D with the fit's k, default 6); values broadcast. "credible" is
the uncertainty about the law itself; "predictive" adds the run-to-run noise the fit measured:
it is the range your own run's loss should fall in."""

EXAMPLES_OPTIMAL = """\
examples:
  scalebayes optimal fit.nc --compute 5.76e23 1e24 1e25
  scalebayes optimal fit.nc --compute 1e24 --cost-k 6 --json
  scalebayes optimal fit.nc --compute 1e24 --approach 2
  scalebayes optimal fit.nc --compute 1e22 1e24 --approach all

Approach 3 (default): for every posterior draw and budget C, the N that minimises the law's loss
with D = C / (k N); medians and 90% intervals over draws of N*, D*, tokens per parameter D*/N*,
the loss L*, and the allocation exponent d log N* / d log C. Approach 2: the fit's runs grouped
into isoFLOP sweeps (a budget column, or equal C), each sweep's loss minimum sampled as a latent
variable with a power law N* = G C^a through them (its own NUTS run, the fit's settings); L* is
given at the sweeps' budgets only. Approach 1: the fit's runs taken as finished runs of several
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
    predict.set_defaults(handler=_predict)

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
    optimal.add_argument(
        "--approach",
        choices=(*APPROACHES, "all"),
        default="3",
        help="3: minimise the fitted law (default); 2: isoFLOP sweep minima and a power law; "
        "1: envelope of finished runs; all: every approach side by side, with a verdict",
    )
    _add_output(optimal)
    optimal.set_defaults(handler=_optimal)

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
    chance.set_defaults(handler=_chance)

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
    _add_output(plan)
    plan.set_defaults(handler=_plan)


def _add_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("fit", help="a fit written by `scalebayes fit --out`")


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


def _predict(args: argparse.Namespace) -> int:
    from scalebayes.io import load_fit
    from scalebayes.prediction import predict

    fit = load_fit(args.fit)
    points = _points(args)
    kind = "hdi" if args.hdi else "eti"
    with warnings_to_stderr():
        mean = predict(fit, kind="mean", **points).summary(probs=(args.prob,), kind=kind)
        new = predict(fit, kind="new_run", seed=args.seed, **points)
        new = new.summary(probs=(args.prob,), kind=kind)
    label = f"{kind}{args.prob * 100:g}"
    table = mean.drop(columns=["beyond", "extrapolation"]).rename(
        columns={
            f"{label}_lb": "credible_lb",
            f"{label}_ub": "credible_ub",
        }
    )
    table["predictive_lb"] = new[f"{label}_lb"]
    table["predictive_ub"] = new[f"{label}_ub"]
    table["extrapolation"] = mean["extrapolation"]
    inputs = [c for c in ("N", "D", "C", "U") if c in table]

    def text() -> str:
        rows = [
            [*(format_number(r[c]) for c in inputs), format_number(r["median"]),
             format_interval(r["credible_lb"], r["credible_ub"]),
             format_interval(r["predictive_lb"], r["predictive_ub"]), r["extrapolation"]]
            for _, r in table.iterrows()
        ]  # fmt: skip
        pct = f"{args.prob * 100:g}%"
        header = [*inputs, "median", f"{pct} credible", f"{pct} predictive", "extrapolation"]
        note = ""
        beyond = fit.likelihood.discrepancy.beyond_data_note(fit.law)
        if beyond and (mean["beyond"] > 1).any():
            note = f"\nnote: {beyond}"
        return (
            f"loss (nats/token) predicted by law {fit.law.name!r}; credible: the law's own "
            "uncertainty; predictive: a new run's loss, with run-to-run noise\n"
            + text_columns(header, rows)
            + note
        )

    emit(args, fit, table, text, {"prob": args.prob, "interval": kind})
    return 0


def _optimal(args: argparse.Namespace) -> int:
    import numpy as np

    from scalebayes.allocate import extrapolation_of
    from scalebayes.allocation import estimator
    from scalebayes.io import load_fit
    from scalebayes.summaries import summarise

    fit = load_fit(args.fit)
    if args.approach == "all":
        return _optimal_all(args, fit)
    chosen = estimator(args.approach)
    with warnings_to_stderr():
        result = chosen.allocate(fit, args.compute, cost_k=args.cost_k)
    long = result.summary(probs=(args.prob,))
    label = f"eti{args.prob * 100:g}"
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
        spread = summarise(whole, probs=(args.prob,)).to_numpy()[:, :3].T
        for column, values in zip(("median", "lb", "ub"), spread, strict=True):
            table[f"loss_whole_model_{column}"] = values

    def text() -> str:
        def cell(r: Any, q: str) -> str:
            if not np.isfinite(r[f"{q}_median"]):
                return "-"  # approach 2's L* away from its sweeps
            return (
                f"{format_number(r[f'{q}_median'])} {format_interval(r[f'{q}_lb'], r[f'{q}_ub'])}"
            )

        rows = [
            [format_number(r["budget"]), *(cell(r, q) for q in ("N", "D", "tokens_per_param", "loss")),
             f"{r['exponent_N_median']:.3f}", r["extrapolation"]]
            for _, r in table.iterrows()
        ]  # fmt: skip
        header = ["C (FLOPs)", "N*", "D*", "tokens/param", "loss L*", "dlogN*/dlogC",
                  "extrapolation"]  # fmt: skip
        notes = "".join(f"\nnote: {note}" for note in chosen.notes(result))
        if whole is not None:
            notes += (
                f"\nnote: L*, like N* and D*, is the law's alone (the {fit.likelihood.discrepancy.name} "
                "discrepancy's mean beyond the data would bend it); with its uncertainty beyond "
                "the data, the loss at these runs is " + ", ".join(
                    f"{format_number(r['loss_whole_model_median'])} "
                    + format_interval(r["loss_whole_model_lb"], r["loss_whole_model_ub"])
                    for _, r in table.iterrows()
                )
            )  # fmt: skip
        return (
            f"{chosen.heading(fit, result)}: median [{args.prob * 100:g}% interval] over "
            "posterior draws\n" + text_columns(header, rows) + notes
        )

    extra = {"approach": chosen.approach, "cost_k": result.cost_k, "n_at_bound": result.n_at_bound}
    emit(args, fit, table, text, extra, diagnostics=chosen.diagnostics(fit, result))
    return 0


def _optimal_all(args: argparse.Namespace, fit: Any) -> int:
    from scalebayes.allocation import compare_approaches

    with warnings_to_stderr():
        result = compare_approaches(fit, args.compute, cost_k=args.cost_k)
    result = dataclasses.replace(result, prob=args.prob)
    extra = {
        "approach": "all",
        "verdict": result.verdict,
        "sentences": [pair.sentence(result.budgets) for pair in result.pairs],
        "refused": dict(result.refused),
        "recommended": result.recommended,
        "why": result.why,
        "diagnostics_by_approach": {k: str(d) for k, d in result.diagnostics.items()},
    }
    emit(args, fit, result.table(), result.summary, extra,
         diagnostics=result.diagnostics[result.recommended])  # fmt: skip
    return 0


def _chance(args: argparse.Namespace) -> int:
    from scalebayes.io import load_fit
    from scalebayes.planning import chance

    fit = load_fit(args.fit)
    points = _points(args)
    with warnings_to_stderr():
        result = chance(fit, points.pop("N", None), points.pop("D", None), args.target, **points)
    table = result.summary().drop(columns=["beyond"])
    inputs = [c for c in ("N", "D", "C", "U") if c in table]

    def text() -> str:
        rows = [
            [*(format_number(r[c]) for c in inputs), f"{r['p_mean']:.3f}", f"{r['p_new_run']:.3f}",
             r["extrapolation"]]
            for _, r in table.iterrows()
        ]  # fmt: skip
        header = [*inputs, "P(law <= target)", "P(run <= target)", "extrapolation"]
        return f"chance of loss <= {args.target:g} under law {fit.law.name!r}\n" + text_columns(
            header, rows
        )

    emit(args, fit, table, text, {"target": args.target})
    return 0


def _plan(args: argparse.Namespace) -> int:
    from scalebayes.io import load_fit
    from scalebayes.planning import plan

    fit = load_fit(args.fit)
    with warnings_to_stderr():
        result = plan(
            fit,
            args.target,
            prob=args.prob,
            kind=args.kind,
            inference_tokens=args.inference_tokens,
            cost_k=args.cost_k,
        )
    table = result.table
    spread = result.per_draw_summary(probs=(0.9,))
    whole = "p_whole_model" in table  # the plan is the law's: say what the discrepancy adds

    def text() -> str:
        who = "a new run" if args.kind == "new_run" else "the law's mean"
        rows = [
            [format_number(r["inference_tokens"]), format_number(r["N"]), format_number(r["D"]),
             f"{r['tokens_per_param']:.1f}", format_number(r["C"]), format_number(r["total_cost"]),
             f"{r['p_new_run']:.3f}", f"{r['p_mean']:.3f}", r["extrapolation"]]
            for _, r in table.iterrows()
        ]  # fmt: skip
        header = ["inference T", "N", "D", "tokens/param", "train C", "total cost",
                  "P(run)", "P(law)", "extrapolation"]  # fmt: skip
        lines = [
            f"cheapest run with P({who} <= {args.target:g}) >= {args.prob:g} under law "
            f"{fit.law.name!r} (cost = {result.cost_k:g} N D + 2 N T FLOPs)",
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
        if whole:
            lines.append(
                f"note: like `optimal`, the plan is the law's alone (the {fit.likelihood.discrepancy.name} "
                "discrepancy's mean beyond the data would steer it); with its uncertainty beyond the "
                f"data, P({'run' if args.kind == 'new_run' else 'law'}) at these runs is "
                + ", ".join(f"{p:.3f}" for p in table["p_whole_model"])
            )
        return "\n".join(lines)

    emit(
        args,
        fit,
        table,
        text,
        {
            "target": args.target,
            "prob": args.prob,
            "kind": args.kind,
            "n_unreachable": result.n_unreachable,
            "per_draw": spread.to_dict(orient="records"),
        },
    )
    return 0


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
    from scalebayes.data import read_table
    from scalebayes.prediction import points_from_table

    table, lines = read_table(path)
    return points_from_table(table, source=path, lines=lines)
