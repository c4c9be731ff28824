"""A sampling that fails the checks is continued, or sampled once more more carefully.

Continued first, which costs a second sampling phase and nothing else (no compile, no warmup):

- a run that fails by R-hat or bulk ESS alone (its chains mixed too slowly, none diverged) goes
  on for as many draws again with the step size and mass matrix its warmup adapted, and every
  second draw of the chains twice as long is kept (so a fit's shape stays), a divergence in
  either draw of a pair counting for the one kept;
- a run that diverged goes on with half its adapted step size for as many draws again, and
  those draws alone are kept: the chains start where the run left them, already in the
  posterior, and NUTS at any fixed step size and mass matrix leaves it invariant; a smaller step
  follows the curvature that diverged (what a higher target acceptance buys, without a warmup).

A run that still fails is sampled once more, more carefully: twice the warmup, so the mass
matrix adapts on more draws, and a target acceptance of at least 0.95. :func:`healthier`
decides, table by table, which run to keep; the kept block's sample stats say ``extended``,
``smaller_steps``, ``retried`` and ``retry_kept`` (:attr:`Diagnostics.notes`). A stage is any
frozen dataclass with ``min_target_accept``, ``warmup_factor``, ``label`` and
``pooled_warmup`` fields (:class:`scalebayes.discrepancy.base.Stage`); the engine applies them
to the settings.

Measured (this project's 2-core VM). Approach 2 on Epoch's runs, seeds 0-5 (cold processes,
``benchmarks/allocation_cost.py --seeds``): 3 of 6 fits failed at first, each by R-hat
1.011-1.015 and bulk ESS 220-539 on the valley's shape p, q; continued, all 3 passed (R-hat
1.007-1.009), where the careful retry had left one failing (R-hat 1.011). Law fits of the
public tables, seeds 0-2 (``benchmarks/retry.py``, 66 fits): 11 failed at first, 10 passed once
continued (8 of them had diverged, among them the data-constrained law's 4 on datablations that
had failed even the careful retry), none fails after, against 4; approach 2 on nine tables x
seeds 0-3, 6 of 36 at first, all 6 passed once continued, none after, against 3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from scalebayes.health import Diagnostics, diagnose, healthier

RETRY_WARMUP_FACTOR = 2
RETRY_TARGET_ACCEPT = 0.95
DIVERGED_STEP_SCALE = 0.5  # a run that diverged goes on with half its adapted step size

Block = tuple[dict[str, Any], dict[str, Any]]  # one table's draws and sample stats


def careful[S](stage: S) -> S:
    """``stage`` more carefully: twice its warmup, acceptance >= 0.95, no pooled warmup."""
    return dataclasses.replace(
        stage,  # type: ignore[type-var]
        min_target_accept=max(stage.min_target_accept, RETRY_TARGET_ACCEPT),  # type: ignore[attr-defined]
        warmup_factor=stage.warmup_factor * RETRY_WARMUP_FACTOR,  # type: ignore[attr-defined]
        label=f"{stage.label} retry",  # type: ignore[attr-defined]
        pooled_warmup=False,
    )


def careful_settings(settings: Any) -> Any:
    """The sampler :class:`~scalebayes.Settings` a careful retry ran with (what a fit records)."""
    return dataclasses.replace(
        settings,
        warmup=settings.warmup * RETRY_WARMUP_FACTOR,
        target_accept=max(settings.target_accept, RETRY_TARGET_ACCEPT),
        pooled_warmup=False,
    )


def block_health(block: Block) -> Diagnostics:
    """R-hat, ESS, divergences and tree depth of one table's draws of a stage (:func:`diagnose`).

    Over the block's reported sites (a leading underscore marks the sampler's own, such as the
    GP's standardised weights, whose scaled copy ``gp_weights`` is reported).
    """
    draws, stats = block
    return diagnose({k: v for k, v in draws.items() if not k.startswith("_")}, stats)


def sample_carefully[S](
    sample: Callable[[S], tuple[list[Block], float, int]],
    stage: S,
    health: Callable[[Block], Diagnostics] | None = None,
    extend: Callable[[S, float], list[Block]] | None = None,
) -> tuple[list[Block], float, int]:
    """``sample(stage)``; where a table's run fails the checks, continued, then sampled carefully.

    Parameters
    ----------
    sample : callable
        Samples a stage: per table the draws and stats, the seconds spent compiling, and the
        number of devices used.
    stage : Stage
        The stage to sample.
    health : callable, optional
        One table's :class:`Diagnostics` from its block (default :func:`block_health`).
    extend : callable, optional
        ``extend(stage, step_scale)`` continues the chains of the last ``sample(stage)`` for as
        many draws again, per table, with the step size times ``step_scale`` (the engine's
        ``extend``); without it a failing run goes straight to the careful retry.

    Returns
    -------
    The blocks kept (each table's healthiest run, ``extended``, ``smaller_steps``,
    ``retried`` and ``retry_kept`` added to its stats), the compile seconds of every run, and
    the devices used.
    """
    health = health or block_health
    blocks, compile_s, devices = sample(stage)
    best = [health(block) for block in blocks]
    how = [""] * len(blocks)  # "extended" or "smaller_steps": the continuation kept
    for kind, scale in (("extended", 1.0), ("smaller_steps", DIVERGED_STEP_SCALE)):
        which = [i for i, d in enumerate(best)
                 if not d.ok and bool(d.n_divergent) == (kind == "smaller_steps")]  # fmt: skip
        if extend is None or not which:
            continue
        more = extend(stage, scale)
        for i in which:
            went_on = thinned_pairs(blocks[i], more[i]) if kind == "extended" else more[i]
            if healthier(best[i], d := health(went_on)):
                blocks[i], best[i], how[i] = went_on, d, kind
    retried = [not d.ok for d in best]
    kept = [False] * len(blocks)
    if any(retried):
        again, seconds, _ = sample(careful(stage))
        compile_s += seconds
        for i, block in enumerate(again):
            if retried[i] and healthier(best[i], health(block)):
                blocks[i], kept[i], how[i] = block, True, ""
    return (
        [_marked(*row) for row in zip(blocks, how, retried, kept, strict=True)],
        compile_s,
        devices,
    )


def thinned_pairs(first: Block, more: Block) -> Block:
    """A run and its continuation as one chain twice as long, every second draw kept.

    Leading dims (chain, draw) everywhere; the draw count stays. A divergence or a draw at the
    maximum tree depth in either draw of a pair marks the draw kept, so none is hidden.
    """
    (draws, stats), (draws_more, stats_more) = first, more

    def joined(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {k: np.concatenate([a[k], b[k]], axis=1)[:, 1::2] for k in a}

    stats_kept = joined(stats, stats_more)
    for flag in ("diverging", "reached_max_treedepth"):
        both = np.concatenate([stats[flag], stats_more[flag]], axis=1)
        stats_kept[flag] = both[:, 0::2] | both[:, 1::2]
    return joined(draws, draws_more), stats_kept


def _marked(block: Block, how: str, retried: bool, kept: bool) -> Block:
    draws, stats = block
    shape = np.shape(stats["diverging"])
    flags = {"extended": how == "extended", "smaller_steps": how == "smaller_steps",
             "retried": retried, "retry_kept": kept}  # fmt: skip
    return draws, {**stats, **{k: np.full(shape, v) for k, v in flags.items()}}
