"""Benchmark: where approach 2's sampling cost goes (issue 14's cost target).

Approach 2 on Epoch's runs takes about 42 leapfrog steps per draw after warmup, the plain law
23. This samples the isoFLOP profile model (:mod:`scalebayes.allocation.profile`) with NumPyro's
NUTS directly (dense mass matrix and target acceptance 0.9 as the library; 2 chains x (1000 +
1000) per seed) on Epoch's sweeps: with every site free, then with one block of sites held at its
posterior median from the library's fit (each sweep's least loss, each curvature, both, the
valley shape p and q, the directions of the minima's residuals), and with the minima in their
own coordinates (``ProfileModel(minima="own")``). A held block is the most any
reparameterisation of it could save. Prints, per variant and seed, the sampled dimensions,
leapfrog steps per draw, divergences, the least bulk ESS of a and the sweeps' log N*, and
seconds; writes benchmarks/results/isoflop_geometry.json.

    python benchmarks/isoflop_geometry.py [--data DIR] [--seeds 0 1 2 3]
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings
from typing import Any

import numpy as np
from _common import RESULTS, add_data_argument, chinchilla_csv, machine, missing, write_results

# Blocks of sites held at their posterior medians, by what they are.
HELD = {
    "nothing": (),
    "least losses": ("l_star_raw",),
    "curvatures": ("curvature_raw",),
    "least losses and curvatures": ("l_star_raw", "curvature_raw"),
    "valley shape": ("p", "q"),
    "minima's directions": ("scatter_z",),
}


def sample(model: Any, data: Any, held: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """NUTS on the profile model with ``held`` sites fixed: steps per draw, ESS, seconds."""
    import jax
    from numpyro import handlers
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC, NUTS

    from scalebayes.allocation.profile import profile_model

    base = functools.partial(profile_model, model)
    kernel = NUTS(handlers.condition(base, held), dense_mass=True, target_accept_prob=0.9)
    mcmc = MCMC(kernel, num_warmup=1000, num_samples=1000, num_chains=2,
                chain_method="sequential", progress_bar=False)  # fmt: skip
    started = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), data, extra_fields=("num_steps", "diverging"))
    seconds = time.perf_counter() - started
    extra = mcmc.get_extra_fields()
    draws = mcmc.get_samples(group_by_chain=True)
    ess = min(float(np.min(effective_sample_size(np.asarray(draws[name]))))
              for name in ("a", "log_N_star"))  # fmt: skip
    unconstrained = sum(int(np.prod(v.shape[2:])) for k, v in draws.items()
                        if k in model.sites(data.extra["y_min"].shape[0]) and k not in held)  # fmt: skip
    return {
        "dimensions": unconstrained,
        "steps_per_draw": float(np.mean(extra["num_steps"])),
        "divergent": int(np.sum(extra["diverging"])),
        "min_ess_bulk": ess,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--out", default="isoflop_geometry.json")
    args = parser.parse_args()
    path = chinchilla_csv(args.data)
    if missing(path):
        return
    import jax

    import scalebayes as sb
    from scalebayes.allocation.profile import ProfileModel, profile_data

    sb.configure(compile_cache=False)
    jax.config.update("jax_enable_x64", True)
    runs = sb.load_runs(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sweeps at an edge: measured all the same
        iso = sb.fit_isoflops(runs)
    data = profile_data(runs, iso.budgets)
    post = iso.posterior
    variants = {label: (ProfileModel(), {name: np.median(post[name].to_numpy(), axis=(0, 1))
                                         for name in names})
                for label, names in HELD.items()}  # fmt: skip
    variants["minima in own coordinates"] = (ProfileModel(minima="own"), {})
    rows = []
    print(f"Epoch's runs: {iso.budgets.n_budgets} sweeps; NumPyro NUTS, 2 chains x (1000 + 1000)")
    print(f"{'held at its median':30s} seed  dims  steps/draw  divergent  min ESS  seconds")
    for label, (model, held) in variants.items():
        for seed in args.seeds:
            row = {"held": label, "seed": seed, **sample(model, data, held, seed)}
            rows.append(row)
            print(f"{label:30s} {seed:4d} {row['dimensions']:5d} {row['steps_per_draw']:11.1f} "
                  f"{row['divergent']:10d} {row['min_ess_bulk']:8.0f} {row['seconds']:8.1f}",
                  flush=True)  # fmt: skip
    write_results(
        RESULTS / args.out,
        {
            "data": str(path),
            "sweeps": int(iso.budgets.n_budgets),
            "rows": rows,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
