"""Progress of sampling as a share of the whole: tables one after another, stages, retries.

Every callback is a :data:`ProgressCallback`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scalebayes.discrepancy.base import Stage

ProgressCallback = Callable[[int, int, str], None]
"""Called as ``progress(done, total, phase)`` with iterations done so far; phase names the stage
and 'warmup' or 'sampling'."""


def table_progress(progress: ProgressCallback | None, i: int, n: int) -> ProgressCallback | None:
    """Progress of table ``i`` of ``n`` sampled one after another, as a share of the whole."""
    if progress is None:
        return None
    return lambda done, total, phase: progress(i * total + done, n * total, phase)


def stage_progress(
    progress: ProgressCallback | None, stage: Stage, slot: tuple[int, int]
) -> ProgressCallback | None:
    """Progress of one stage as a share of the whole: stage ``index`` of ``count``."""
    if progress is None:
        return None
    index, count = slot
    if count == 1:
        return retry_progress(progress, stage)
    return lambda done, total, phase: progress(
        index * total + done, count * total, f"{stage.label} {phase}"
    )


def extend_progress(progress: ProgressCallback | None, stage: Stage) -> ProgressCallback | None:
    """Progress of a stage's continued chains: their own count, named ("law more sampling").

    Not a share of the whole as :func:`stage_progress` gives: the continuation comes after the
    stage's run, and a count that ends where it does says when it is done.
    """
    if progress is None:
        return None
    return lambda done, total, phase: progress(done, total, f"{stage.label} more {phase}")


def retry_progress(progress: ProgressCallback | None, stage: Stage) -> ProgressCallback | None:
    """A lone stage's progress, its phases named when it is a retry ("law retry warmup")."""
    if progress is None or not stage.label.endswith(" retry"):
        return progress
    return lambda done, total, phase: progress(done, total, f"{stage.label} {phase}")
