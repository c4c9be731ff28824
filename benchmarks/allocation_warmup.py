"""Benchmark: where approach 2's sampling time goes, warmup against draws (issue 14's cost).

Approach 2 costs 1.3-1.5x a plain-law fit on Epoch's runs (``allocation_cost.py``). This
splits each fit's sampling time into warmup and draws (from the progress callback, every 100
iterations, compile excluded: each case is compiled by a discarded fit first) and asks how
much a better mass matrix could save. Cases, each over ``--seeds`` seeds at 4 chains x 1000
draws after 1000 warmup:

- ``law, plain``: Chinchilla's law, no discrepancy;
- ``approach 2``: ``fit_isoflops`` as a user runs it;
- ``approach 2, oracle matrix``: the chains start with the inverse mass matrix of a
  reference fit's draws (another seed) and NumPyro's windows adapt it as usual;
- ``approach 2, oracle matrix kept``: the same matrix, never re-estimated (step size adapts).

The oracle cases are not a method (the matrix comes from a finished fit); they bound what an
initial mass matrix could save. They patch the engine's chain start in this process only.

    python benchmarks/allocation_warmup.py [--data DIR] [--seeds 3]

Writes benchmarks/results/allocation_warmup.json (the stored one was measured at commit 0bf85c7,
before the law's warmup pooled its chains: rerun, the law's case samples faster).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from _common import RESULTS, add_data_argument, chinchilla_csv, machine, missing, write_results

CASES = ("law, plain", "approach 2", "approach 2, oracle matrix", "approach 2, oracle matrix kept")
SETTINGS = {"chains": 4, "draws": 1000, "warmup": 1000}


def unconstrained_cov(fit: Any) -> np.ndarray:
    """Covariance of an approach-2 fit's draws in the sampler's flat unconstrained layout."""
    from numpyro.distributions.transforms import biject_to

    sites = fit.model.sites(fit.budgets.n_budgets)
    columns = []
    for name in sorted(sites):  # ravel_pytree's order: the dict's keys sorted
        prior, shape = sites[name]
        values = fit.posterior[name].to_numpy().reshape(-1, int(np.prod(shape, dtype=int)))
        columns.append(np.asarray(biject_to(prior.to_numpyro().support).inv(values)))
    return np.cov(np.concatenate(columns, axis=1).T)


@contextlib.contextmanager
def oracle_start(matrix: np.ndarray | None, adapt: bool) -> Iterator[None]:
    """Start every chain with ``matrix`` as its inverse mass matrix (``adapt``: re-estimate it)."""
    from scalebayes import engine

    if matrix is None:
        yield
        return
    original = engine.Sampler._init_one

    def init_one(self: Any, key: Any, data: Any) -> Any:
        import jax.numpy as jnp

        kernel = self._init_kernel
        self._init_kernel = functools.partial(
            kernel, inverse_mass_matrix=jnp.asarray(matrix, dtype=jnp.result_type(float)),
            adapt_mass_matrix=adapt,
        )  # fmt: skip
        try:
            return original(self, key, data)
        finally:
            self._init_kernel = kernel

    engine._SAMPLERS.clear()  # a compiled start holds its matrix
    engine.Sampler._init_one = init_one
    try:
        yield
    finally:
        engine.Sampler._init_one = original
        engine._SAMPLERS.clear()


def timed_fit(case: str, runs: Any, seed: int) -> dict[str, Any]:
    """One fit of ``case``: warmup and draw seconds, leapfrog steps per draw, health."""
    import scalebayes as sb

    stamps: list[tuple[float, int, str]] = []

    def progress(done: int, total: int, phase: str) -> None:
        stamps.append((time.perf_counter(), done, phase))

    started = time.perf_counter()
    if case == "law, plain":
        fit = sb.fit(runs, "chinchilla", likelihood=sb.Likelihood(discrepancy="none"),
                     seed=seed, progress=progress, **SETTINGS)  # fmt: skip
        wall = fit.settings.wall_time
    else:
        fit = sb.fit_isoflops(runs, seed=seed, progress=progress, **SETTINGS)
        wall = fit.wall_time
    # The first chunk's clock starts when sampling does: after the (cached) compile and the
    # chains' start, which the fit's own sampling time counts from.
    first = stamps[0][0] - (started + wall["compile"])
    chunks = np.diff([s[0] for s in stamps], prepend=stamps[0][0] - first)
    warm = [c for c, (_, done, _) in zip(chunks, stamps, strict=True) if done <= SETTINGS["warmup"]]
    steps = fit.idata["sample_stats"]["n_steps"].to_numpy()
    return {
        "case": case,
        "seed": seed,
        "sampling_s": wall["sampling"],
        "warmup_s": float(sum(warm)),
        "draws_s": float(sum(chunks) - sum(warm)),
        "steps_per_draw": float(steps.mean()),
        **fit.diagnostics.to_dict(),
        "healthy": fit.diagnostics.ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--seeds", type=int, default=3, help="timed fits per case")
    args = parser.parse_args()
    if missing(chinchilla_csv(args.data)):
        return 0
    import scalebayes as sb

    sb.configure()
    runs = sb.load_runs(chinchilla_csv(args.data))
    reference = sb.fit_isoflops(runs, seed=99, **SETTINGS)
    matrix = unconstrained_cov(reference)
    rows = []
    for case in CASES:
        oracle = matrix if "oracle" in case else None
        with oracle_start(oracle, adapt=not case.endswith("kept")):
            timed_fit(case, runs, seed=1000)  # compiles; not timed
            for seed in range(args.seeds):
                rows.append(timed_fit(case, runs, seed))
                print({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()
                       if k in ("case", "seed", "warmup_s", "draws_s", "steps_per_draw",
                                "max_rhat", "min_ess_bulk", "healthy")}, flush=True)  # fmt: skip
    keys = ("sampling_s", "warmup_s", "draws_s", "steps_per_draw")
    medians = {
        case: {key: statistics.median(r[key] for r in rows if r["case"] == case) for key in keys}
        for case in CASES
    }
    print(f"\n{'case (median)':<32} {'sampling s':>11} {'warmup s':>9} {'draws s':>8} "
          f"{'steps/draw':>11} {'healthy':>8}")  # fmt: skip
    for case, m in medians.items():
        healthy = sum(r["healthy"] for r in rows if r["case"] == case)
        print(f"{case:<32} {m['sampling_s']:>11.2f} {m['warmup_s']:>9.2f} {m['draws_s']:>8.2f} "
              f"{m['steps_per_draw']:>11.1f} {healthy:>5}/{args.seeds}")  # fmt: skip
    write_results(
        RESULTS / "allocation_warmup.json",
        {"settings": {**SETTINGS, "seeds": args.seeds, "data": str(args.data)}, "rows": rows,
         "medians": medians, "machine": machine()},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
