"""A sampling that fails the checks is sampled once more, more carefully; the healthier is kept.

More carefully: twice the warmup, so the mass matrix adapts on more draws, and a target
acceptance of at least 0.95, so the steps are smaller through the curvature that diverged.
:func:`scalebayes.health.healthier` decides, table by table, which run to keep, and the kept
block's sample stats say ``retried`` and ``retry_kept`` (:attr:`Diagnostics.notes`). A stage
is any frozen dataclass with ``min_target_accept``, ``warmup_factor``, ``label`` and
``pooled_warmup`` fields
(:class:`scalebayes.discrepancy.base.Stage`); the engine applies them to the settings.

Measured (this project's 2-core VM): law fits of the public tables, seeds 0-2
(benchmarks/retry.py): 13 of 60 failed the checks at first, 2 after (the data-constrained law
on datablations' runs, whose min() kinks still diverge 4 times); approach 2 on nine public
tables x seeds 0-2 (benchmarks/allocation_approaches.py): 3 of 27 before, 0 after.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from scalebayes.health import Diagnostics, diagnose, healthier

RETRY_WARMUP_FACTOR = 2
RETRY_TARGET_ACCEPT = 0.95

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
    health: Callable[[Block], Diagnostics] = block_health,
) -> tuple[list[Block], float, int]:
    """``sample(stage)``, and ``sample(careful(stage))`` when a table's run fails the checks.

    Parameters
    ----------
    sample : callable
        Samples a stage: per table the draws and stats, the seconds spent compiling, and the
        number of devices used.
    stage : Stage
        The stage to sample.
    health : callable
        One table's :class:`Diagnostics` from its block (default :func:`block_health`).

    Returns
    -------
    The blocks kept (each table's healthier run, ``retried`` and ``retry_kept`` added to its
    stats), the compile seconds of both runs, and the devices used.
    """
    blocks, compile_s, devices = sample(stage)
    first = [health(block) for block in blocks]
    retried = [not d.ok for d in first]
    kept = [False] * len(blocks)
    if any(retried):
        again, more, _ = sample(careful(stage))
        compile_s += more
        for i, block in enumerate(again):
            if retried[i] and healthier(first[i], health(block)):
                blocks[i], kept[i] = block, True
    return (
        [_marked(b, r, k) for b, r, k in zip(blocks, retried, kept, strict=True)],
        compile_s,
        devices,
    )


def _marked(block: Block, retried: bool, kept: bool) -> Block:
    draws, stats = block
    shape = np.shape(stats["diverging"])
    return draws, {**stats, "retried": np.full(shape, retried), "retry_kept": np.full(shape, kept)}
