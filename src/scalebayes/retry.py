"""A sampling that fails the checks is continued, or sampled once more more carefully.

Continued first, which costs a second sampling phase and nothing else (no compile, no warmup):

- a run that fails by R-hat or ESS alone (bulk or tail: its chains mixed too slowly, none
  diverged) goes on for as many draws again with the step size and mass matrix its warmup
  adapted, and every second draw of the chains twice as long is kept (so a fit's shape stays),
  a divergence in either draw of a pair counting for the one kept; while it still fails it
  goes on again, to at most :data:`MAX_SLOW_SEGMENTS` times its draws, every k-th draw kept
  (a first run whose bulk ESS could not reach the floor even then goes to the retry at once:
  :func:`_worth_going_on`);
- a run that diverged goes on with half its adapted step size for as many draws again, and
  those draws alone are kept: the chains start where the run left them, already in the
  posterior, and NUTS at any fixed step size and mass matrix leaves it invariant; a smaller step
  follows the curvature that diverged (what a higher target acceptance buys, without a warmup);
  one that no longer diverges there but is still short of effective draws goes on slowly, as
  above, at the smaller step.

A run that still fails is sampled once more, more carefully: twice the warmup, so the mass
matrix adapts on more draws, and a target acceptance of at least 0.95 (or as the caller's
``retries`` say: the GP module is sampled centred first). :func:`healthier`
decides, table by table, which run to keep; the kept block's sample stats say ``extended``,
``smaller_steps``, ``retried`` and ``retry_kept`` (:attr:`Diagnostics.notes`). A stage is any
frozen dataclass with ``min_target_accept``, ``warmup_factor``, ``label`` and
``pooled_warmup`` fields (:class:`scalebayes.discrepancy.base.Stage`); the engine applies them
to the settings.

Measured (this project's 2-core VM), the checks with tail ESS. Law fits of the public tables,
seeds 0-2 (``benchmarks/retry.py``, 66 fits): 15 failed at first, 13 passed once continued (8
at half the step, among them the data-constrained law's 4 on datablations, whose ``min()``
kinks had failed even the careful retry), 2 passed the careful retry, none fails after.
Approach 2 on nine tables x seeds 0-3: 7 of 36 at first, all 7 passed once continued. On
Epoch's runs its slow tail is the valley shape's q, about 120 effective tail draws per segment
of 4 x 1000: 3 of 6 seeds went on for 3-4 times as many draws again (``allocation_cost.py
--seeds``), where the careful retry of seed 2 read tail ESS 65.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scalebayes.health import ESS_PER_CHAIN_MIN, Diagnostics, diagnose, healthier

RETRY_WARMUP_FACTOR = 2
RETRY_TARGET_ACCEPT = 0.95
DIVERGED_STEP_SCALE = 0.5  # a run that diverged goes on with half its adapted step size
# A run that mixed too slowly goes on for at most 5 times its draws again (6 segments, every
# 6th draw kept): a sampling phase each, without compile or warmup. Approach 2 on Epoch's runs,
# seed 2, passed its tail ESS at the fifth segment (q's 95 % quantile: ~120 effective draws a
# segment); a sixth leaves room for the noise of such estimates.
MAX_SLOW_SEGMENTS = 6

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
    retries: Sequence[S] | None = None,
) -> tuple[list[Block], float, int]:
    """``sample(stage)``; where a table's run fails the checks, continued, then sampled again.

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
        ``extend``); without it a failing run goes straight to the retries.
    retries : sequence of Stage, optional
        What to sample, in turn, while a table still fails (default: ``careful(stage)``).

    Returns
    -------
    The blocks kept (each table's healthiest run, ``extended``, ``smaller_steps``,
    ``retried`` and ``retry_kept`` added to its stats), the compile seconds of every run, and
    the devices used.
    """
    health = health or block_health
    blocks, compile_s, devices = sample(stage)
    best = [health(block) for block in blocks]
    # The continuation kept: of a slow run, how many times as many draws again; of one that
    # diverged, whether at the smaller step.
    extended, smaller = [0] * len(blocks), [False] * len(blocks)
    if extend is not None:
        _go_on_slowly(blocks, best, extended, lambda: extend(stage, 1.0), health)
        diverged = [i for i, d in enumerate(best) if not d.ok and d.n_divergent]
        if diverged:
            more = extend(stage, DIVERGED_STEP_SCALE)
            for i in diverged:
                if healthier(best[i], d := health(more[i])):
                    blocks[i], best[i], extended[i], smaller[i] = more[i], d, 0, True
            # One that no longer diverges at the smaller step but is still short of effective
            # draws goes on slowly there (the engine keeps the halved step: scale 1 from now).
            slow = [i for i in diverged if smaller[i] and not best[i].n_divergent]
            _go_on_slowly(blocks, best, extended, lambda: extend(stage, 1.0), health, slow)
    retried = [not d.ok for d in best]
    kept = [False] * len(blocks)
    for again_stage in (careful(stage),) if retries is None else retries:
        failing = [i for i, d in enumerate(best) if not d.ok]
        if not failing:
            break
        again, seconds, _ = sample(again_stage)
        compile_s += seconds
        for i in failing:
            if healthier(best[i], d := health(again[i])):
                blocks[i], best[i], kept[i] = again[i], d, True
                extended[i], smaller[i] = 0, False
    return (
        [_marked(*row) for row in zip(blocks, extended, smaller, retried, kept, strict=True)],
        compile_s,
        devices,
    )


def _go_on_slowly(
    blocks: list[Block],
    best: list[Diagnostics],
    extended: list[int],
    more: Callable[[], list[Block]],
    health: Callable[[Block], Diagnostics],
    tables: Sequence[int] | None = None,
) -> None:
    """Continue the runs that mixed too slowly, in place, while going on can still pass.

    Of ``tables`` only, when given (default every table).

    ``extended[i]`` counts the continuations of the run kept. Each continuation adds as many draws again; the chains ``k`` times as long keep every k-th
    draw (:func:`thinned`). A run stops going on once it passes, diverges, has
    :data:`MAX_SLOW_SEGMENTS` segments, or, a first run, could not reach the ESS floor even
    then (:func:`_worth_going_on`).
    """
    among = range(len(best)) if tables is None else tables
    segments = {i: [blocks[i]] for i in among if _worth_going_on(best[i], 1)}
    while segments:
        continued = more()
        for i in list(segments):
            segments[i].append(continued[i])
            went_on = thinned(segments[i])
            if healthier(best[i], d := health(went_on)):
                blocks[i], best[i], extended[i] = went_on, d, len(segments[i]) - 1
            if not _worth_going_on(d, len(segments[i])):
                del segments[i]


def _worth_going_on(d: Diagnostics, segments: int) -> bool:
    """Whether a run of ``segments`` segments that fails without diverging may pass longer.

    Effective draws grow about as the chains' length, so a first run whose bulk ESS, scaled to
    :data:`MAX_SLOW_SEGMENTS` segments, stays under the floor (chains stuck apart: R-hat 1.19,
    ESS 16) goes to the careful retry at once. Tail ESS is too noisy to project so (approach 2
    on Epoch's runs, seed 2, read 120, 114, 334, 393 and 611 after one to five segments), and
    so are later segments.
    """
    if d.ok or d.n_divergent or segments >= MAX_SLOW_SEGMENTS:
        return False
    return segments > 1 or bool(d.min_ess_bulk * MAX_SLOW_SEGMENTS >= ESS_PER_CHAIN_MIN * d.chains)


def thinned(segments: Sequence[Block]) -> Block:
    """A run and its continuations as one chain ``k`` times as long, every k-th draw kept.

    Leading dims (chain, draw) everywhere; the draw count stays. A divergence or a draw at the
    maximum tree depth among the ``k`` draws of a group marks the draw kept, so none is hidden.
    """
    k = len(segments)

    def joined(name: str, part: int) -> np.ndarray:
        return np.concatenate([block[part][name] for block in segments], axis=1)

    draws = {name: joined(name, 0)[:, k - 1 :: k] for name in segments[0][0]}
    stats = {name: joined(name, 1)[:, k - 1 :: k] for name in segments[0][1]}
    for flag in ("diverging", "reached_max_treedepth"):
        both = joined(flag, 1)
        stats[flag] = np.logical_or.reduce([both[:, j::k] for j in range(k)])
    return draws, stats


def _marked(block: Block, extended: int, smaller: bool, retried: bool, kept: bool) -> Block:
    draws, stats = block
    shape = np.shape(stats["diverging"])
    flags = {"extended": np.int32(extended), "smaller_steps": smaller,
             "retried": retried, "retry_kept": kept}  # fmt: skip
    return draws, {**stats, **{k: np.full(shape, v) for k, v in flags.items()}}
