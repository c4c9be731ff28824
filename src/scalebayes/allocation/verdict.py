"""The approaches side by side: each one's N*, D*, tokens per parameter and exponent, and a verdict.

Every approach that can run on the table runs (:func:`side_by_side`); one that cannot (no
isoFLOP sweeps for approach 2, no sizes with several horizons for approach 1) is listed with
its reason. Two approaches *disagree* when their posteriors are sure they differ by more than
an allocation would care about: P(|a_i - a_j| > :data:`EXPONENT_GAP`) or, at some budget,
P(N*_i / N*_j beyond :data:`RATIO_GAP` either way) at least :data:`SURE`; they *agree* when
each of those is below :data:`UNSURE`; in between the verdict is *unclear*. The posteriors are
separate fits of one table, so the probabilities pair their draws as independent (which, for
two fits of the same runs, overstates how much they could differ, not how little).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalebayes.allocate import MAX_AT_BOUND
from scalebayes.allocation.base import Estimator
from scalebayes.allocation.whole_model import MIN_SWEEPS as MIN_SWEEPS_3M
from scalebayes.allocation.whole_model import VALIDATED as VALIDATED_3M
from scalebayes.errors import ScalebayesError
from scalebayes.formatting import format_interval, format_number, text_columns
from scalebayes.results import Diagnostics, Fit

EXPONENT_GAP = 0.02  # a difference of 0.02 in a is 10 % in N* over two decades of compute
RATIO_GAP = 1.5  # Porian et al. and Open-Athena call 1.5x in N* a practical disagreement
SURE = 0.9
UNSURE = 0.5
MAX_DRAWS = 1000  # per approach, thinned evenly, for the pairwise probabilities
QUANTITIES = ("N", "D", "tokens_per_param", "exponent_N")


@dataclass(frozen=True)
class Pair:
    """How two approaches compare: their exponents and, per budget, their N*.

    ``p_exponent``: P(a_first - a_second > gap) or P(< -gap), whichever is larger (how sure
    they differ by more than the gap, in one direction); ``p_exponent_apart``: P(|difference| >
    gap). ``p_ratio`` and ``p_ratio_apart`` the same per budget for N*_first / N*_second
    beyond RATIO_GAP. A wide posterior makes ``*_apart`` large without making either approach
    sure of a direction, so only the one-sided probabilities can call a disagreement.
    """

    first: str
    second: str
    exponent_gap: float  # median of a_first - a_second
    p_exponent: float
    p_exponent_apart: float
    ratio: np.ndarray  # median N*_first / N*_second per budget
    p_ratio: np.ndarray  # per budget
    p_ratio_apart: np.ndarray  # per budget

    @property
    def verdict(self) -> str:
        """'agree', 'disagree' or 'unclear' (see the module's docstring)."""
        if max(self.p_exponent, float(np.max(self.p_ratio))) >= SURE:
            return "disagree"
        if max(self.p_exponent_apart, float(np.max(self.p_ratio_apart))) < UNSURE:
            return "agree"
        return "unclear"

    def sentence(self, budgets: np.ndarray) -> str:
        """The verdict in words, with how much and how sure."""
        worst = int(np.argmax(self.p_ratio))
        side = ">" if self.exponent_gap > 0 else "<"
        gap = EXPONENT_GAP if side == ">" else -EXPONENT_GAP
        ratio_side = f"> {RATIO_GAP}" if self.ratio[worst] > 1 else f"< 1/{RATIO_GAP}"
        return (
            f"approaches {self.first} and {self.second} {self.verdict}: a differs by "
            f"{self.exponent_gap:+.3f} (P(diff {side} {gap:+g}) = {self.p_exponent:.2f}, "
            f"P(|diff| > {EXPONENT_GAP}) = {self.p_exponent_apart:.2f}); N* ratio "
            f"{self.ratio[worst]:.2f} at {budgets[worst]:.3g} FLOPs (P(ratio {ratio_side}) = "
            f"{self.p_ratio[worst]:.2f}, P(beyond {RATIO_GAP}x either way) = "
            f"{self.p_ratio_apart[worst]:.2f})"
        )


@dataclass(frozen=True)
class Approaches:
    """Every approach's allocation at the same budgets, those that could not run, and a verdict.

    ``results`` maps an approach key to its allocation (dims chain, draw, budget), made by
    ``estimators[key]``;
    ``refused`` maps an approach that could not run to why; ``pairs`` compares each two that
    ran; ``recommended`` is the approach the tool suggests for this table and ``why``.
    """

    budgets: np.ndarray
    titles: Mapping[str, str]
    results: Mapping[str, Any]
    refused: Mapping[str, str]
    diagnostics: Mapping[str, Diagnostics]
    pairs: tuple[Pair, ...]
    recommended: str
    why: str
    prob: float = 0.9
    estimators: Mapping[str, Estimator] = dataclasses.field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per (budget, approach): median and interval of N*, D*, tokens/param, a.

        ``located`` is False where the approach's search did not locate the optimum
        (``Allocation.located``): its interval there is the search's, not the posterior's.
        """
        rows = []
        lo, hi = (1 - self.prob) / 2, (1 + self.prob) / 2
        for key, result in self.results.items():
            located = result.located()
            for b, budget in enumerate(self.budgets):
                row: dict[str, Any] = {"budget": budget, "approach": key,
                                       "located": bool(located[b])}  # fmt: skip
                for name in QUANTITIES:
                    v = getattr(result, name).isel(budget=b).to_numpy().ravel()
                    row[f"{name}_median"] = float(np.median(v))
                    row[f"{name}_lb"], row[f"{name}_ub"] = np.quantile(v, [lo, hi])
                rows.append(row)
        return pd.DataFrame(rows).sort_values(["budget", "approach"], kind="stable")

    @property
    def verdict(self) -> str:
        """'agree', 'disagree' or 'unclear' over all pairs; 'one approach' with fewer than two."""
        if not self.pairs:
            return "one approach"
        found = {pair.verdict for pair in self.pairs}
        return "disagree" if "disagree" in found else "unclear" if "unclear" in found else "agree"

    @property
    def pair_verdicts(self) -> str:
        """Each pair's verdict in a few words, e.g. '1 & 2 disagree, 1 & 3 agree'."""
        if not self.pairs:
            return "one approach"
        return ", ".join(f"{pair.first} & {pair.second} {pair.verdict}" for pair in self.pairs)

    def remarks(self) -> list[str]:
        """The approaches left out and why, the verdict per pair, and the recommendation."""
        lines = [
            f"approach {k} ({self.titles[k]}): not run: {why}" for k, why in self.refused.items()
        ]
        unlocated = [k for k, result in self.results.items() if not result.located().all()]
        if unlocated:
            lines.append(
                f"not located (*): approach {' and '.join(unlocated)}'s optimum at budgets where "
                f"more than {MAX_AT_BOUND:.0%} of draws sit at the end of its search; the "
                "interval there is the "
                "search's, not the posterior's"
            )
        for pair in self.pairs:
            pair_keys = (pair.first, pair.second)
            failed = [k for k in pair_keys if not usable(self.diagnostics[k])]
            caveat = "".join(
                f" (approach {k}'s sampler failed its checks: do not read this)" for k in failed
            ) + "".join(f" (approach {k} not located: do not read this)"
                        for k in pair_keys if k in unlocated)  # fmt: skip
            lines.append(f"verdict: {pair.sentence(self.budgets)}{caveat}")
        title = self.titles[self.recommended]
        lines.append(f"recommended: approach {self.recommended} ({title}): {self.why}")
        return lines

    def over(self, fit: Fit, budgets: ArrayLike) -> Approaches:
        """The same posteriors at other ``budgets`` (FLOPs), e.g. a grid for a figure.

        Nothing is sampled again (:meth:`Estimator.at_budgets`): approaches 1 and 2 carry their
        fits, approach 3 and 3m read ``fit``. The verdict and recommendation stay those at
        :attr:`budgets`.
        """
        grid = np.asarray(budgets, float)
        results = {
            key: self.estimators[key].at_budgets(fit, result, grid)
            for key, result in self.results.items()
        }
        return dataclasses.replace(self, budgets=grid, results=results)

    def summary(self) -> str:
        """The side-by-side table, the approaches left out, the verdict and the recommendation."""

        def cell(r: Any, q: str) -> str:
            return (
                f"{format_number(r[f'{q}_median'])} {format_interval(r[f'{q}_lb'], r[f'{q}_ub'])}"
            )

        rows = [[format_number(r["budget"]), r["approach"] + ("" if r["located"] else " *"),
                 *(cell(r, q) for q in QUANTITIES)] for _, r in self.table().iterrows()]  # fmt: skip
        header = ["C (FLOPs)", "approach", "N*", "D*", "tokens/param", "a (N* ~ C^a)"]
        lines = [
            f"compute-optimal allocation by {len(self.results)} approach(es): median "
            f"[{self.prob * 100:g}% interval] over posterior draws",
            text_columns(header, rows),
        ]
        lines += self.remarks()
        for k, d in self.diagnostics.items():
            first, *rest = d.lines()
            lines += [f"approach {k} {first}", *rest]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def side_by_side(
    fit: Fit,
    budgets: np.ndarray,
    estimators: Mapping[str, Estimator],
    *,
    cost_k: float | None = None,
) -> Approaches:
    """Run each estimator on ``fit`` at ``budgets`` (FLOPs); compare those that ran.

    An estimator that raises a :class:`~scalebayes.errors.ScalebayesError` (the table cannot
    support it) is listed in ``refused`` with the message, not raised.
    """
    results, refused, diagnostics = {}, {}, {}
    for key, chosen in estimators.items():
        try:
            results[key] = chosen.allocate(fit, budgets, cost_k=cost_k)
        except ScalebayesError as err:
            refused[key] = str(err)
            continue
        diagnostics[key] = chosen.diagnostics(fit, results[key])
    if not results:
        raise ScalebayesError("no allocation approach can run on this table: " + "; ".join(
            f"{k}: {why}" for k, why in refused.items()))  # fmt: skip
    budgets = np.asarray(next(iter(results.values())).budgets, float)
    pairs = tuple(
        compare(i, j, results[i], results[j]) for i, j in combinations(sorted(results), 2)
    )
    recommended, why = recommend(results, diagnostics, pairs, refused)
    titles = {key: type(chosen).title for key, chosen in estimators.items()}
    ran = {key: estimators[key] for key in results}
    return Approaches(
        budgets, titles, results, refused, diagnostics, pairs, recommended, why, estimators=ran
    )


def _draws(values: Any) -> np.ndarray:
    """Per-draw values flattened over (chain, draw), thinned evenly to MAX_DRAWS: (draws, ...)."""
    flat = np.asarray(values).reshape(-1, *np.shape(values)[2:])
    step = max(1, len(flat) // MAX_DRAWS)
    return flat[::step][:MAX_DRAWS]


def compare(first: str, second: str, one: Any, other: Any) -> Pair:
    """Exponents and N* of two allocations compared, their draws paired as independent."""
    a1, a2 = _draws(one.exponent_N)[:, 0], _draws(other.exponent_N)[:, 0]
    gap = (a1[:, None] - a2[None, :]).ravel()
    log_ratio = np.log(_draws(one.N))[:, None, :] - np.log(_draws(other.N))[None, :, :]
    log_ratio = log_ratio.reshape(-1, log_ratio.shape[-1])
    cut = np.log(RATIO_GAP)
    above, below = (log_ratio > cut).mean(0), (log_ratio < -cut).mean(0)
    return Pair(
        first,
        second,
        exponent_gap=float(np.median(gap)),
        p_exponent=float(max(np.mean(gap > EXPONENT_GAP), np.mean(gap < -EXPONENT_GAP))),
        p_exponent_apart=float(np.mean(np.abs(gap) > EXPONENT_GAP)),
        ratio=np.exp(np.median(log_ratio, axis=0)),
        p_ratio=np.maximum(above, below),
        p_ratio_apart=above + below,
    )


def usable(diagnostics: Diagnostics) -> bool:
    """Whether a fit is healthy enough to recommend: clear failures only, with margin.

    The strict line (R-hat < 1.01, ESS > 200) is reported beside every result; a
    recommendation should not flip on R-hat 1.011 from 2 chains. Broken fits read R-hat > 1.1
    and dozens of divergences.
    """
    return diagnostics.max_rhat < 1.05 and diagnostics.n_divergent <= 10


def _unlocated(whole: Any) -> str | None:
    """Why 3m's N* is not located, or None (:meth:`scalebayes.allocate.Allocation.located`)."""
    share = whole.share_at_bound()
    worst = int(np.argmax(share))
    if whole.located()[worst]:
        return None
    return (
        f"the whole model's loss still falls at the end of its search in "
        f"{share[worst]:.0%} of draws at {float(whole.budgets[worst]):.3g} FLOPs, so its "
        "interval there is the search's, not the posterior's"
    )


def _outvoted(pairs: tuple[Pair, ...]) -> str:
    """A caution where the two approaches that measure optima agree and both part from the law."""
    verdicts = {(p.first, p.second): p.verdict for p in pairs}
    apart = verdicts.get(("1", "3")) == verdicts.get(("2", "3")) == "disagree"
    if not apart or verdicts.get(("1", "2")) == "disagree":
        return ""
    return (
        "; but approaches 1 and 2, each weak here, do not disagree with each other and both "
        "disagree with the law: its shape may miss these runs, so take its allocation with care"
    )


def recommend(
    results: Mapping[str, Any],
    diagnostics: Mapping[str, Diagnostics],
    pairs: tuple[Pair, ...],
    refused: Mapping[str, str],
) -> tuple[str, str]:
    """The approach to use for this table and why.

    Chosen by the allocation backtest (``benchmarks/allocation_backtest.py --approaches 3 2 3m``:
    on Epoch's and Open-Athena's 9 public tables, the top one and two isoFLOP budgets held out,
    27 held-out sweeps' own optima), scored by coverage and by the mean interval score of log
    N* (a proper scoring rule: width plus misses):

    - **3m** (the whole fitted model, law + GP, carried on from its largest sweep) when it ran
      (a fit with the GP discrepancy), its sampler is usable, the runs form at least
      :data:`MIN_SWEEPS_3M` isoFLOP sweeps that show a valley (least loss inside their runs),
      as every backtested table did, and its search
      located the minimum at every budget (``Allocation.located``; on (Mis)Fitting's final
      checkpoints of cosine runs at many horizons 85 % of draws at 1e22 FLOPs were at the
      search's end): its intervals held
      24 of 27 (as approach 2's) with mean interval score 0.48 (approach 2: 0.68; the law's own
      N*: 6 of 27, 1.84). On runs without such sweeps it is shown, not recommended: on a
      simulated over-training ladder its intervals 100x beyond were a factor ~2000 wide, and
      a ladder's runs that share a budget by chance show no valley.
    - else **2** when it ran (3 or more sweeps), its sampler is usable and at least half of its
      sweeps' minima lie inside their runs: it measures each budget's optimum without assuming
      the law's shape (where most sit at an edge the optima rest on the valley's shape, a
      law's assumption again, untested by the backtest).
    - else **3** (the law), whose allocation rests on the law's shape holding beyond the runs.

    Approach 1 is shown as a cross-check, never recommended: with known truth its 90 % intervals
    of a held 28 and 29 of 32 simulated tables (``benchmarks/allocation_approaches.py
    --envelope-truth``), but in the backtest they held 11 of 27 held-out sweeps' optima: a
    straight line through the envelope of sweeps that give each size two or three token counts.
    """
    whole = results.get("3m")
    unlocated = _unlocated(whole) if whole is not None else None
    untested = whole is not None and whole.discrepancy not in VALIDATED_3M
    if (whole is not None and usable(diagnostics["3m"]) and whole.edge_sweeps >= MIN_SWEEPS_3M
            and unlocated is None and not untested):  # fmt: skip
        apart = [
            p.second if p.first == "3m" else p.first
            for p in pairs
            if "3m" in (p.first, p.second) and p.verdict == "disagree"
        ]
        named = " and ".join(sorted(apart))
        apart_note = (
            f"; approach {named} disagrees with it"
            if len(apart) == 1
            else f"; approaches {named} disagree with it"
            if apart
            else ""
        )
        return "3m", (
            f"the default model's GP carries what the law's shape misses, and its runs form "
            f"{whole.edge_sweeps} isoFLOP sweeps with a valley: N* is the whole model's own up to "
            f"the largest ({whole.edge_budget:.3g} FLOPs) and its local trend beyond (on public "
            "tables' held-out sweeps its intervals held the measured optima as often as approach "
            "2's and were sharper; the law's held a quarter as many)" + apart_note
        )
    against = [p for p in pairs if (p.first, p.second) == ("2", "3") and p.verdict == "disagree"]
    law_note = (
        "; the law (approach 3) disagrees with it: its shape misses these runs" if against else ""
    )
    iso = results["2"].fit if "2" in results else None
    edges = int(iso.edge.sum()) if iso is not None else 0
    mostly_measured = iso is not None and edges <= iso.budgets.n_budgets / 2
    if iso is not None and usable(diagnostics["2"]) and mostly_measured:
        edge_note = (
            f", {edges} with the minimum at an edge (their optima rest on the valley's shape)"
            if edges
            else ", none with the minimum at an edge"
        )
        whole_note = (
            f"; not 3m: {unlocated}" if unlocated
            else f"; not 3m: tested with the GP discrepancy, not {whole.discrepancy}" if untested
            else ""
        )  # fmt: skip
        return "2", (
            f"{iso.budgets.n_budgets} isoFLOP sweeps{edge_note}: each budget's optimum is "
            "measured, no law shape assumed (on public tables' held-out sweeps its intervals held "
            "the measured optima far more often than the law's)" + law_note + whole_note
        )
    # The first clause of each refusal: the whole of it is printed above, as "not run".
    others = [f"{k}: {why.split('; ')[0]}" for k, why in refused.items()]
    if iso is not None and not usable(diagnostics["2"]):
        others.append("2: sampler diagnostics failed")
    elif iso is not None:
        others.append(
            f"2: {edges} of its {iso.budgets.n_budgets} sweeps have their minimum at an edge, so "
            "most of its optima rest on the valley's shape rather than being measured"
        )
    if "1" in results:
        others.append("1: a cross-check only, it held 11 of 27 held-out optima in the backtest")
    if whole is not None and not usable(diagnostics["3m"]):
        others.append("3m: sampler diagnostics failed")
    elif untested:
        others.append(
            f"3m: its whole model is the law + {whole.discrepancy}; the backtest tested it with "
            f"the {' or '.join(VALIDATED_3M)} discrepancy only"
        )
    elif unlocated:
        others.append(f"3m: {unlocated}")
    elif whole is not None:
        others.append(
            f"3m: the runs form {whole.edge_sweeps} isoFLOP sweeps with a valley; it is tested "
            f"on {MIN_SWEEPS_3M} or more"
        )
    if "3" in results:
        why = "the others cannot be trusted on this table (" + "; ".join(others) + ")"
        return "3", why + _outvoted(pairs)
    key = sorted(results)[0]
    return key, "the only approach that ran"
