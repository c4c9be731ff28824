"""The sampler engine: NumPyro's NUTS, compiled once per model and data shape, run on any data.

The sampler is NumPyro's own NUTS (functional ``hmc`` interface). The data travel as arguments
of one jitted function, so a second fit of the same law and data shape (backtests, comparisons,
calibration) reuses the compiled code instead of paying the compile again. A model may be
sampled in stages: its discrepancy decides (:meth:`Discrepancy.sample_posterior`), and the
engine runs each :class:`~scalebayes.discrepancy.base.Stage` it is handed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from scalebayes import interrupts
from scalebayes.discrepancy.base import Block, Stage
from scalebayes.laws import Law
from scalebayes.likelihood import Likelihood
from scalebayes.model import (
    Centring,
    ModelData,
    OneTable,
    Tables,
    find_centrings,
    numpyro_model,
    pointwise_log_lik,
    sampled_sites,
    start_point,
)
from scalebayes.pooled_warmup import pool_at_window_ends
from scalebayes.progress import (
    ProgressCallback,
    extend_progress,
    stage_progress,
    table_progress,
)
from scalebayes.results import Settings


def sample(
    law: Law,
    likelihood: Likelihood,
    tables: Tables,
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> tuple[list[Block], float, int]:
    """Sample the posterior of ``law`` under ``likelihood`` for each table, in stages if it asks.

    Several tables sample as one batch of chains where that pays (:func:`batches_together`),
    else one table after another through the one-table sampler, which a fit of the same law
    and table shape has usually compiled already. Returns per table the draws (with
    ``_log_lik``) and sample stats, leading dims (chain, draw); the seconds spent compiling;
    and the number of devices the chains used.
    """
    import jax

    key = jax.random.key(settings.seed)
    n = len(tables.plain)
    if n > 1 and not batches_together():
        blocks: list[Block] = []
        compile_s, devices = 0.0, 1
        for i in range(n):
            one = tables.one(i)
            runner = _Runner(law, one, settings, table_progress(progress, i, n))
            table_key = jax.random.fold_in(key, i)
            got, seconds, devices = likelihood.discrepancy.sample_posterior(
                law, likelihood, one, table_key, runner
            )
            blocks += got
            compile_s += seconds
        return blocks, compile_s, devices
    runner = _Runner(law, tables, settings, progress)
    return likelihood.discrepancy.sample_posterior(law, likelihood, tables, key, runner)


BATCH_ON_CPU = False
"""Whether tables of one call sample as one batch of chains on a CPU (tests set it to check the
batched sampler that GPUs run)."""


def batches_together() -> bool:
    """Whether the tables of one call sample as one batch of chains: on GPUs, not on CPUs.

    A GPU runs a batch's chains side by side (vmapped). A CPU runs chains one after another
    whatever the batch, so a batch there saves no sampling time but costs a program of its own
    to compile (measured on 2 cores, plain law, 81 runs, 4 x (500 + 500) per table: see
    benchmarks/batch_cpu.py), while one table at a time reuses the one-table program.
    """
    import jax

    return BATCH_ON_CPU or jax.local_devices()[0].platform != "cpu"


_PRELOAD = "scalebayes-preload"  # the thread's name


def _preload(module: str) -> None:
    """Import ``module`` ahead of need; a failure is left to the import that needs it."""
    with contextlib.suppress(Exception):
        importlib.import_module(module)


class _Runner:
    """What a discrepancy's ``sample_posterior`` is handed: runs one stage."""

    def __init__(
        self,
        law: Law,
        tables: Tables | OneTable,
        settings: Settings,
        progress: ProgressCallback | None,
    ):
        self.law, self.settings, self.progress = law, settings, progress
        self.n_runs, self.batch = int(tables.plain[0].weight.shape[0]), len(tables.plain)

    def _sampler(self, stage: Stage) -> Sampler:
        return cached_sampler(
            self.law, stage, self.n_runs, stage_settings(self.settings, stage), self.batch
        )

    def prepare(self, stage: Stage, tables: Sequence[ModelData]) -> None:
        self._sampler(stage).prepare(tables)

    def __call__(
        self, stage: Stage, tables: Sequence[ModelData], key: Any, slot: tuple[int, int]
    ) -> tuple[list[Block], float, int]:
        sampler = self._sampler(stage)
        blocks, compile_s = sampler.run(tables, key, stage_progress(self.progress, stage, slot))
        return blocks, compile_s, sampler.n_devices

    def extend(self, stage: Stage, step_scale: float = 1.0) -> list[Block]:
        """The last run of ``stage``, continued for as many draws again (:meth:`Sampler.extend`)."""
        progress = extend_progress(self.progress, stage)
        return self._sampler(stage).extend(progress, step_scale)


def stage_settings(settings: Settings, stage: Stage) -> Settings:
    """``settings`` as ``stage`` asks: least target acceptance, warmup multiple, pooling."""
    return dataclasses.replace(
        settings,
        target_accept=max(settings.target_accept, stage.min_target_accept),
        warmup=settings.warmup * stage.warmup_factor,
        pooled_warmup=settings.pooled_warmup and stage.pooled_warmup,
    )


class Sampler:
    """NUTS for one (law, likelihood, number of runs, settings, batch): compiled once, run on any data.

    ``law`` is None for a stage whose model is not a law's (:func:`sample_model`); ``n_runs``
    is then the data's shapes.

    A batch of ``batch`` tables runs ``batch * chains`` chains, each carrying its own table; with
    one table every chain shares it. Chains are spread over the devices JAX sees (GPUs, or CPU
    cores exposed as devices) with no cross-device traffic, since NUTS chains are independent.
    A device that holds one chain runs it directly. Several chains on one device are vmapped on
    a GPU and run one after the other (``lax.map``) on a CPU: there vmap's batched while-loops
    make every chain wait for the longest tree and cost more to compile. Measured on 2 cores
    (4 CPU devices, plain law, 81 runs, 4 x (500 + 500) per table): a batch of 3 tables took
    24.6 CPU-s to compile and run looped against 39.1 vmapped (6.2 against 14.9 to run again);
    a batch of 8, 32.9 against 61.4 (13.2 against 31.9).
    """

    CHUNK = 100  # iterations per compiled call; progress is reported between calls

    def __init__(self, law: Law | None, stage: Stage, n_runs: Any, settings: Settings, batch: int):
        import jax
        from jax.sharding import PartitionSpec as P
        from numpyro.infer.hmc import hmc

        self.law, self.likelihood, self.settings = law, stage.likelihood, settings
        self.own_model = stage.model is None  # the law's model: its draws give each run's density
        self.warmup_tree_depth = stage.warmup_tree_depth
        self.terms = stage.terms
        self.centrings: tuple[Centring, ...] = (
            find_centrings(law) if self.own_model and law is not None else ()
        )
        if stage.model is None:
            assert law is not None  # the law's own model
            self.model = functools.partial(numpyro_model, law, stage.likelihood, self.centrings)
            self.sites = sampled_sites(law, stage.likelihood, self.centrings)
        else:
            self.model = stage.model
            self.sites = dict(stage.sites or {})
        self.n_runs, self.batch = n_runs, batch
        self.n_chains = settings.chains * batch
        # One (init, sample) pair: sample_kernel reads settings that tracing init_kernel stores.
        self._init_kernel, self._sample_kernel = hmc(
            potential_fn_gen=self._potential_gen, algo="NUTS"
        )
        self._compiled: tuple[Any, Any, Any] | None = None
        self._end: tuple[Any, ModelData] | None = None  # the last run's chains and data
        self._pending: tuple[Future[Any], Future[Any], Future[Any]] | None = None
        devices = jax.local_devices()
        self.platform = devices[0].platform
        self.n_devices = max(k for k in range(1, len(devices) + 1) if self.n_chains % k == 0)
        self.chains_per_device = self.n_chains // self.n_devices
        data_axis = 0 if batch > 1 else None  # a table per chain, or one shared by all
        data_spec = P("chain") if batch > 1 else P()
        init = self._each_chain(self._init_one, (0, data_axis))
        chunk = functools.partial(self._run_chunk, data_axis=data_axis)
        self._sharding = None
        if self.n_devices > 1:
            from jax.sharding import Mesh, NamedSharding

            mesh = Mesh(np.array(devices[: self.n_devices]), ("chain",))
            self._sharding = NamedSharding(mesh, P("chain"))
            init = jax.shard_map(
                init,
                mesh=mesh,
                in_specs=(P("chain"), data_spec),
                out_specs=P("chain"),
                check_vma=False,
            )
            chunk = jax.shard_map(
                chunk,
                mesh=mesh,
                in_specs=(P("chain"), data_spec),
                out_specs=(P("chain"), P(None, "chain")),
                check_vma=False,
            )
        chains = self.n_chains

        def init_all(key: Any, data: ModelData) -> Any:
            # Each chain's key is split off here, in the program: split eagerly it compiled
            # a program of its own.
            return init(jax.random.split(key, chains), data)

        self._init = jax.jit(init_all)
        self._chunk = jax.jit(chunk)
        self._constrain = jax.jit(jax.vmap(self._constrain_chain, in_axes=(0, data_axis)))

    def _each_chain(self, fn: Callable[..., Any], in_axes: tuple[int | None, ...]) -> Any:
        """``fn`` applied to each chain of a device's block (leading axis of the mapped args)."""
        import jax

        if self.chains_per_device > 1 and self.platform != "cpu":
            return jax.vmap(fn, in_axes=in_axes)
        if self.chains_per_device > 1:

            def looped(*args: Any) -> Any:
                mapped = tuple(arg for arg, axis in zip(args, in_axes, strict=True) if axis == 0)

                def one(xs: tuple[Any, ...]) -> Any:
                    it = iter(xs)
                    return fn(*(next(it) if axis == 0 else arg
                                for arg, axis in zip(args, in_axes, strict=True)))  # fmt: skip

                return jax.lax.map(one, mapped)

            return looped

        def single(*args: Any) -> Any:
            args = tuple(
                jax.tree.map(lambda x: x[0], arg) if axis == 0 else arg
                for arg, axis in zip(args, in_axes, strict=True)
            )
            return jax.tree.map(lambda x: x[None], fn(*args))

        return single

    def _unravel(self, flat: Any) -> dict[str, Any]:
        """The sites' unconstrained values from one flat vector (the layout NUTS moves in)."""
        import jax.numpy as jnp
        from jax.flatten_util import ravel_pytree

        # Built while tracing: eagerly it would compile small programs of its own.
        _, unravel = ravel_pytree(
            {site: jnp.zeros(shape, flat.dtype) for site, (_, shape) in self.sites.items()}
        )
        return unravel(flat)

    def _potential_gen(self, data: ModelData) -> Callable[[Any], Any]:
        # NUTS moves one flat vector, not the dict of sites: each leapfrog step then updates
        # one array instead of one per site (a grouped fit has ~20 sites).
        from numpyro.infer.util import potential_energy

        return lambda flat: potential_energy(self.model, (data,), {}, self._unravel(flat))

    def _init_one(self, key: Any, data: ModelData) -> Any:
        import jax
        from jax.flatten_util import ravel_pytree

        start, _ = ravel_pytree(start_point(self.sites, data, len(self.centrings) or self.terms))
        key, key_jitter = jax.random.split(key)
        # Chains start a little apart so that R-hat can see disagreement.
        jitter = jax.random.uniform(key_jitter, start.shape, minval=-0.5, maxval=0.5)
        s = self.settings
        return self._init_kernel(
            start + jitter,
            s.warmup,
            dense_mass=s.dense_mass,
            target_accept_prob=s.target_accept,
            max_tree_depth=(
                s.max_tree_depth
                if self.warmup_tree_depth is None
                else (min(self.warmup_tree_depth, s.max_tree_depth), s.max_tree_depth)
            ),
            model_args=(data,),
            rng_key=key,
        )

    def _run_chunk(
        self, states: Any, data: ModelData, data_axis: int | None
    ) -> tuple[Any, dict[str, Any]]:
        import jax

        step = self._each_chain(
            lambda state, data: self._sample_kernel(state, model_args=(data,)), (0, data_axis)
        )
        # A table's chains pool their mass-matrix statistics as each warmup window ends.
        pool = pool_at_window_ends(self.settings, self.n_chains, sharded=self.n_devices > 1)

        def body(states: Any, _: None) -> tuple[Any, dict[str, Any]]:
            states = pool(step(states, data))
            return states, {
                "z": states.z,
                "diverging": states.diverging,
                "n_steps": states.num_steps,
                "energy": states.energy,
                "lp": -states.potential_energy,
                "acceptance_rate": states.accept_prob,
                "step_size": states.adapt_state.step_size,
            }

        return jax.lax.scan(body, states, None, length=self.CHUNK)

    def _constrain_chain(self, z: Any, data: ModelData) -> tuple[dict[str, Any], Any]:
        """One chain's unconstrained draws -> parameter values, and each run's log-likelihood.

        A stage with a model of its own has no log-likelihood of its own (it needs the other
        stages' draws too): its discrepancy computes it when it joins them.
        """
        import jax
        from numpyro.infer.util import constrain_fn

        def one(flat: Any) -> dict[str, Any]:
            return constrain_fn(
                self.model, (data,), {}, self._unravel(flat), return_deterministic=True
            )

        values = jax.vmap(one)(z)
        if not self.own_model:
            return values, None
        params = {k: v[..., None] for k, v in values.items() if not k.startswith("_")}
        log_lik = pointwise_log_lik(
            self.law, self.likelihood, params, data.log_inputs, data.log_loss, data.log_ref
        )
        return values, log_lik

    def prepare(self, tables_data: Sequence[ModelData]) -> None:
        """Trace the three programs here and compile them in the pool; :meth:`run` waits.

        XLA compiles without holding the GIL, so each compile runs beside the next trace.
        Tracing stays in the calling thread: NumPyro's effect handlers are process-global.
        """
        import jax

        if self._compiled is not None or self._pending is not None:
            return
        data = self._inputs(tables_data)
        s = self.settings
        init_lowered = self._init.lower(jax.random.key(0), data)
        one_shot = ONE_SHOT_OPTIONS if self.platform == "cpu" else None
        init = _COMPILER.submit(init_lowered.compile, one_shot)
        states = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self._sharding),
            init_lowered.out_info,
        )
        chunk = _COMPILER.submit(self._chunk.lower(states, data).compile)
        z = states.z  # one flat vector per chain
        draws = jax.ShapeDtypeStruct((self.n_chains, s.draws, *z.shape[1:]), z.dtype)
        constrain = _COMPILER.submit(self._constrain.lower(draws, data).compile, one_shot)
        self._pending = (init, chunk, constrain)

    def _inputs(self, tables_data: Sequence[ModelData]) -> ModelData:
        """The data every chain carries."""
        import jax
        import jax.numpy as jnp

        if self.batch == 1:
            data = tables_data[0]
        else:  # chain k of the batch carries table k // chains
            data = jax.tree.map(
                lambda *xs: jnp.repeat(jnp.stack(xs), self.settings.chains, axis=0), *tables_data
            )
        return data

    def run(
        self, tables_data: Sequence[ModelData], key: Any, progress: ProgressCallback | None
    ) -> tuple[list[Block], float]:
        """Warm up and sample each table (:func:`model_data`; weight 0 leaves a run out).

        Returns, per table, constrained draws (plus ``_log_lik``, each run's log-likelihood,
        all runs, for the law's own model) and sample stats, all with leading dims
        (chain, draw); and the seconds spent waiting for the programs to compile (0 when an
        earlier run compiled them, less when :meth:`prepare` started them earlier). ``key`` is
        a JAX PRNG key. Where the chains end is kept for :meth:`extend`.
        """
        s = self.settings
        data = self._inputs(tables_data)
        compile_s = 0.0
        if self._compiled is None:
            started = time.perf_counter()
            self.prepare(tables_data)
            assert self._pending is not None
            self._compiled = tuple(future.result() for future in self._pending)  # type: ignore[assignment]
            self._pending = None
            compile_s = time.perf_counter() - started
        init = self._compiled[0]
        # The diagnostics need arviz-stats (~1 s to import): load it while the chains run.
        preload = threading.Thread(target=_preload, args=("arviz_stats",), name=_PRELOAD)
        preload.start()
        states = init(key, data)
        blocks, states = self._draw(states, data, s.warmup, progress, preload)
        self._end = (states, data)
        return blocks, compile_s

    def extend(self, progress: ProgressCallback | None, step_scale: float = 1.0) -> list[Block]:
        """As many draws again, per table, from where the last :meth:`run` left the chains.

        No warmup: the mass matrix stays as the run's warmup adapted it, and the step size too,
        times ``step_scale``, so the new draws continue the same Markov chains (with a smaller
        step where the run diverged: :func:`scalebayes.retry.sample_carefully`).
        """
        if self._end is None:
            raise ValueError("extend() continues a run: run() first")
        states, data = self._end
        if step_scale != 1.0:
            adapted = states.adapt_state
            states = states._replace(
                adapt_state=adapted._replace(step_size=adapted.step_size * step_scale)
            )
        blocks, states = self._draw(states, data, 0, progress)
        self._end = (states, data)
        return blocks

    def _draw(
        self,
        states: Any,
        data: ModelData,
        warmup: int,
        progress: ProgressCallback | None,
        preload: threading.Thread | None = None,
    ) -> tuple[list[Block], Any]:
        """``warmup`` iterations, then the settings' draws: per table its draws and stats."""
        import jax

        s = self.settings
        _, chunk, constrain = self._compiled  # type: ignore[misc]
        total = warmup + s.draws
        pieces = []
        done = 0
        while done < total:
            states, trace = chunk(states, data)
            pieces.append(jax.device_get(trace))
            interrupts.check()  # a Ctrl-C a JAX callback swallowed stops the fit here
            done += self.CHUNK
            if progress is not None:
                progress(min(done, total), total, "warmup" if done <= warmup else "sampling")
        if preload is not None:
            # Imports in two threads can meet in SciPy's import cycles: none until it ends.
            preload.join()
        trace = jax.tree.map(lambda *xs: np.concatenate(xs, axis=0)[warmup:total], *pieces)
        # scan stacks iterations first: (draw, chain, ...) -> (chain, draw, ...)
        trace = jax.tree.map(lambda x: np.swapaxes(x, 0, 1), trace)
        constrained, log_lik = jax.device_get(constrain(trace.pop("z"), data))
        interrupts.check()
        samples = {k: np.asarray(v) for k, v in constrained.items() if not k.startswith("_")}
        if log_lik is not None:
            samples["_log_lik"] = np.asarray(log_lik)
        stats = {k: np.asarray(v) for k, v in trace.items()}
        stats["tree_depth"] = np.ceil(np.log2(stats["n_steps"] + 1)).astype(int)
        stats["reached_max_treedepth"] = stats["tree_depth"] >= s.max_tree_depth
        blocks = []
        for i in range(self.batch):
            rows = slice(i * s.chains, (i + 1) * s.chains)
            blocks.append(
                ({k: v[rows] for k, v in samples.items()}, {k: v[rows] for k, v in stats.items()})
            )
        return blocks, states


_SAMPLERS: dict[tuple[Any, ...], Sampler] = {}
# XLA compiles off the GIL: three programs per stage, and a staged model may have one stage
# compiling while the next is traced.
_COMPILER = ThreadPoolExecutor(max_workers=3, thread_name_prefix="scalebayes-compile")
# The chains' start and the draws' constraining run once per fit: on CPUs LLVM's optimisation
# of their code costs more than it saves. Without it, on Epoch's runs (fresh processes, no
# compile cache) approach 2 compiled in 3.0-3.5 s against 4.1-5.5 s, the plain law in 2.0-2.9
# s against 2.5-2.6 s; the chunk of NUTS iterations, run ~20 times, keeps it (at level 0 it
# sampled 3.5x slower).
ONE_SHOT_OPTIONS = {"xla_backend_optimization_level": 0}


def cached_sampler(
    law: Law | None, stage: Stage, n_runs: Any, settings: Settings, batch: int
) -> Sampler:
    """The cached compiled sampler for this stage, law, data shape, NUTS settings and batch."""
    law_key = None if law is None else law.key
    key = (stage.key, stage.warmup_tree_depth, law_key, stage.likelihood, n_runs, batch,
           dataclasses.replace(settings.sampler, seed=0))  # fmt: skip
    if key not in _SAMPLERS:
        _SAMPLERS[key] = Sampler(law, stage, n_runs, settings, batch)
    return _SAMPLERS[key]
