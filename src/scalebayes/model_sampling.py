"""Sampling a model that is not a law's (approach 1 and 2's, a grouped fit's) with its checks.

One stage, one table: :func:`sample_model` warms up and samples it on the engine's cached
compiled sampler, :func:`extend_model` continues those chains, and
:func:`sample_model_carefully` does both, and a careful retry, as the checks ask
(:func:`scalebayes.retry.sample_carefully`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scalebayes.discrepancy.base import Block, Stage
from scalebayes.engine import ProgressCallback, Sampler, cached_sampler, stage_settings
from scalebayes.health import Diagnostics
from scalebayes.progress import extend_progress, retry_progress
from scalebayes.results import Settings
from scalebayes.retry import sample_carefully


def sample_model(
    stage: Stage, data: Any, settings: Settings, progress: ProgressCallback | None = None
) -> tuple[Block, float, int]:
    """Sample a NumPyro model that is not a law's: ``stage.model`` of one pytree ``data``.

    ``data`` is a :class:`~scalebayes.model.ModelData` (its ``weight`` and ``log_loss`` give the
    start point, its ``extra`` whatever else the model needs); ``stage.sites`` names every
    sampled site with its prior. The compiled sampler is cached by ``stage.key`` (which must
    name everything that changes the model), the data's shapes and the NUTS settings as the
    stage asks (:func:`stage_settings`). Returns
    the draws and sample stats (leading dims chain, draw), the seconds spent compiling and the
    number of devices the chains used.
    """
    import jax

    sampler = _model_sampler(stage, data, settings)
    blocks, compile_s = sampler.run(
        [data], jax.random.key(settings.seed), retry_progress(progress, stage)
    )
    return blocks[0], compile_s, sampler.n_devices


def extend_model(
    stage: Stage,
    data: Any,
    settings: Settings,
    progress: ProgressCallback | None = None,
    step_scale: float = 1.0,
) -> Block:
    """The last :func:`sample_model` run of ``stage`` on ``data``, continued as many draws again.

    ``step_scale`` multiplies the step size its warmup adapted (:meth:`Sampler.extend`).
    """
    sampler = _model_sampler(stage, data, settings)
    return sampler.extend(extend_progress(progress, stage), step_scale)[0]


def _model_sampler(stage: Stage, data: Any, settings: Settings) -> Sampler:
    import jax

    if stage.model is None or stage.sites is None:
        raise ValueError("sample_model needs a stage with its own model and sites")
    shapes = tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(data))
    return cached_sampler(None, stage, shapes, stage_settings(settings, stage), 1)


def sample_model_carefully(
    stage: Stage,
    data: Any,
    settings: Settings,
    progress: ProgressCallback | None = None,
    *,
    health: Callable[[Block], Diagnostics] | None = None,
) -> tuple[Block, float, int]:
    """:func:`sample_model`, continued or sampled again more carefully if it fails the checks.

    :func:`scalebayes.retry.sample_carefully`: a run that mixed too slowly or diverged is
    continued (:func:`extend_model`), one that still fails is sampled again more carefully, and
    the healthiest is kept, its stats saying ``extended``, ``smaller_steps``, ``retried`` and
    ``retry_kept``; the compile seconds count every run.
    """

    def one(st: Stage) -> tuple[list[Block], float, int]:
        block, compile_s, devices = sample_model(st, data, settings, progress)
        return [block], compile_s, devices

    def more(st: Stage, step_scale: float) -> list[Block]:
        return [extend_model(st, data, settings, progress, step_scale)]

    blocks, compile_s, devices = sample_carefully(one, stage, health, extend=more)
    return blocks[0], compile_s, devices
