"""Sampler health: R-hat, ESS, divergences and tree depth of draws, and which of two runs to keep.

A leaf (numpy and arviz-stats only), so that the engine's stages and the discrepancies can judge
their own draws: :func:`diagnose` turns draws and sample stats into :class:`Diagnostics`, and
:func:`healthier` says which of two samplings of one model to keep (the GP module's non-centred
run or its centred retry). :func:`scalebayes.results.compute_diagnostics` is :func:`diagnose`
over a fit's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ESS_PER_CHAIN_MIN", "RHAT_MAX", "Diagnostics", "diagnose", "healthier"]

# Thresholds from Vehtari et al. (2021), "Rank-normalization, folding, and localization".
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
TAIL_PROB = 0.95  # tail ESS at the 5 % and 95 % quantiles
_ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth"}


@dataclass(frozen=True)
class Diagnostics:
    """Sampler health, from ArviZ: worst R-hat and ESS over parameters, divergences, tree depth.

    R-hat, bulk and tail ESS and divergences are the checks (:attr:`problems`, :attr:`ok`):
    Vehtari et al. (2021) ask for R-hat <= 1.01 and both ESS >= 100 per chain, the tail ESS
    because the 90 % intervals every decision reports end at the 5 % and 95 % quantiles. Draws
    at the maximum tree depth are reported, and noted, but fail nothing (:attr:`notes`).
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    n_divergent: int
    n_max_treedepth: int
    n_draws: int
    chains: int
    # A sampler that sampled a stage again another way after its first run failed the checks
    # (the GP module centred; approach 2 with more warmup and smaller steps) says so, and
    # whether the retry was the run kept.
    retried: bool = False
    retry_kept: bool = False
    # A run continued after it failed the checks (scalebayes.retry): its chains mixed too
    # slowly and went on for ``extended`` times as many draws again (0: they did not), or it
    # diverged and went on with smaller steps. Files saved before counts read True as 1.
    extended: int = 0
    smaller_steps: bool = False

    @property
    def notes(self) -> list[str]:
        """What the sampler did again, and draws at the maximum tree depth, as sentences."""
        notes = []
        k = int(self.extended)
        again = "as many draws again" if k == 1 else f"{k} times as many draws again"
        nth = _ORDINALS.get(k + 1, f"{k + 1}th")
        if self.smaller_steps:
            notes.append(
                "a sampling stage diverged in its first draws; its chains were continued with "
                "half the step size and only those draws kept"
                + (
                    f"; mixing too slowly there, they went on at that step for {again}, every "
                    f"{nth} draw of those kept"
                    if k
                    else ""
                )
            )
        elif k:
            notes.append(
                "a sampling stage mixed too slowly for the checks in its first draws; its chains "
                f"were continued for {again} and every {nth} draw kept"
            )
        if self.retried:
            notes.append(
                "a sampling stage failed the checks and was sampled again another way "
                "(reparameterised, or more carefully); the retry was "
                + (
                    "healthier and is the run kept"
                    if self.retry_kept
                    else "no healthier, so the first run is kept"
                )
            )
        if self.n_max_treedepth:
            # Not a failed check: a trajectory cut at the maximum depth is still a valid NUTS
            # transition, only a shorter one (Stan's manual: an efficiency concern, not a
            # validity one), and what it costs in effective draws the ESS checks measure.
            notes.append(
                f"{self.n_max_treedepth} draws hit the maximum tree depth: an efficiency cost, "
                "not an error (the ESS checks measure it); max_tree_depth=12 or a "
                "reparameterised law may sample faster"
            )
        return notes

    @property
    def problems(self) -> list[str]:
        """Each failed check as a sentence with what to try; empty when all pass."""
        found = []
        # After a careful retry (twice the warmup, target acceptance 0.95) that advice is spent.
        again = " even sampled again with twice the warmup and target acceptance 0.95"
        if not self.max_rhat <= RHAT_MAX:
            found.append(
                f"max R-hat {self.max_rhat:.3f} > {RHAT_MAX}: chains disagree"
                + (
                    f"{again}; check that the law suits the data (two modes?) or tighten priors"
                    if self.retried
                    else "; try more warmup (--warmup) or check that the law suits the data"
                )
            )
        if not self.min_ess_bulk >= ESS_PER_CHAIN_MIN * self.chains:
            found.append(
                f"min ESS bulk {self.min_ess_bulk:.0f} < {ESS_PER_CHAIN_MIN * self.chains}: "
                "too few effective draws; try more draws"
            )
        if not self.min_ess_tail >= ESS_PER_CHAIN_MIN * self.chains:
            found.append(
                f"min ESS tail {self.min_ess_tail:.0f} < {ESS_PER_CHAIN_MIN * self.chains}: "
                "too few effective draws in the 5 % and 95 % tails, where the 90 % intervals "
                "end; try more draws"
            )
        if self.n_divergent:
            found.append(
                f"{self.n_divergent} divergent transitions: the posterior has regions NUTS "
                "cannot follow"
                + (
                    f"{again}; try tighter priors, or a law without kinks or with fewer "
                    "free parameters"
                    if self.retried
                    else "; try target_accept=0.95 or tighter priors"
                )
            )
        return found

    @property
    def ok(self) -> bool:
        """True when every check passes."""
        return not self.problems

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "CHECK"
        return (
            f"diagnostics: max R-hat {self.max_rhat:.3f}, min ESS bulk {self.min_ess_bulk:.0f} "
            f"/ tail {self.min_ess_tail:.0f}, {self.n_divergent} divergent, "
            f"{self.n_max_treedepth} at max tree depth "
            f"({self.chains} chains x {self.n_draws // self.chains} draws) [{verdict}]"
        )

    def lines(self, indent: str = "  ") -> list[str]:
        """The diagnostics line, then each failed check as a warning and each note, indented."""
        return [
            str(self),
            *(f"{indent}warning: {problem}" for problem in self.problems),
            *(f"{indent}note: {note}" for note in self.notes),
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy."""
        return dict(self.__dict__)


def diagnose(draws: Mapping[str, np.ndarray], stats: Mapping[str, np.ndarray]) -> Diagnostics:
    """The health of one sampling: worst R-hat and ESS over every entry of ``draws``.

    Parameters
    ----------
    draws : mapping of name to array, dims (chain, draw, ...)
        The sampled parameters; each entry of a vector parameter counts as one.
    stats : mapping of name to array, dims (chain, draw)
        Sample stats with ``diverging`` and ``reached_max_treedepth`` (booleans), and
        optionally ``extended``, ``smaller_steps``, ``retried`` and ``retry_kept`` (booleans,
        :attr:`Diagnostics.notes`).

    Returns
    -------
    Diagnostics
        Rank-normalised R-hat, bulk and tail ESS (arviz-stats) over the parameters that vary
        (a constant one, pinned by whoever wrote the draws, has none); NaN, which fails the
        checks, when none varies or a draw is not finite.
    """
    from arviz_stats.base import array_stats

    if not draws:
        raise ValueError("no draws to diagnose")
    values = [np.asarray(v, float) for v in draws.values()]
    first = next(iter(values))
    # A parameter constant over every draw (pinned by whoever wrote the draws) has nothing to
    # mix and no R-hat (0/0): it is left out, not failed. Non-finite draws stay and fail.
    flat = [v.reshape(v.shape[0], v.shape[1], -1) for v in values]
    values = [v[..., ~((v == v[:1, :1]).all(axis=(0, 1)) & np.isfinite(v[0, 0]))] for v in flat]
    values = [v for v in values if v.shape[-1]]

    def worst(fn: Any, reduce: Any, **kwargs: Any) -> float:
        if not values:  # every parameter constant: nothing was sampled, nothing is healthy
            return float("nan")
        return float(reduce([reduce(fn(v, chain_axis=0, draw_axis=1, **kwargs)) for v in values]))

    return Diagnostics(
        max_rhat=worst(array_stats.rhat, np.max),
        min_ess_bulk=worst(array_stats.ess, np.min, method="bulk"),
        # Tail ESS as Vehtari et al. define it: the smaller ESS of the 5 % and 95 % quantiles
        # (arviz-stats' own default follows its rcParams' ci_prob, 0.89).
        min_ess_tail=worst(array_stats.ess, np.min, method="tail", prob=TAIL_PROB),
        n_divergent=int(np.sum(stats["diverging"])),
        n_max_treedepth=int(np.sum(stats["reached_max_treedepth"])),
        n_draws=int(first.shape[0] * first.shape[1]),
        chains=int(first.shape[0]),
        retried=bool(np.any(stats["retried"])) if "retried" in stats else False,
        retry_kept=bool(np.any(stats["retry_kept"])) if "retry_kept" in stats else False,
        extended=int(np.max(stats["extended"])) if "extended" in stats else 0,
        smaller_steps=bool(np.any(stats["smaller_steps"])) if "smaller_steps" in stats else False,
    )


def healthier(first: Diagnostics, second: Diagnostics) -> int:
    """Which of two samplings of one posterior to keep: 0 for ``first``, 1 for ``second``.

    1. A healthy one (every check passes: :attr:`Diagnostics.ok`); ``first`` if both are.
    2. Neither healthy: the one failing fewer of the checks (R-hat, bulk and tail ESS,
       divergences), so a run whose chains disagree and barely move (R-hat 1.19, ESS 16)
       loses to one with a few divergent transitions.
    3. Still tied: fewer divergent transitions, then the lower R-hat, then ``first``.

    Whatever is kept keeps its diagnostics: an unhealthy choice still reads unhealthy.
    """
    if first.ok or second.ok:
        return int(not first.ok)

    def rank(d: Diagnostics) -> tuple[int, int, float]:
        rhat = d.max_rhat if np.isfinite(d.max_rhat) else np.inf
        return (len(d.problems), d.n_divergent, rhat)

    return int(rank(second) < rank(first))
