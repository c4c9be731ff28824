"""Benchmark: the health of Marin's grouped fit with the default pooling (issue 16, problem 1).

Marin's three isoFLOP ladders (comma, dclm, nemotron; ``marin_202603`` rows of the Open-Athena
extract), ``fit_groups`` with the law's default priors and the given pooling: R-hat, ESS,
divergences, draws at the maximum tree depth, and the population and per-group alpha.

    python benchmarks/marin_groups.py [--chains 2 --draws 500 --warmup 500] [--centred auto]
        [--spreads halfnormal] [--pool beta=shared] [--discrepancy auto] [--out marin_groups.json]

Writes benchmarks/results/marin_groups.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import (
    RESULTS,
    add_data_argument,
    add_group_discrepancy_argument,
    machine,
    marin_runs,
    write_results,
)

HALF_NORMAL = {
    **{n: "HalfNormal(scale=0.2)" for n in ("E", "alpha", "beta")},
    **{n: "HalfNormal(scale=0.5)" for n in ("A", "B", "sigma")},
}


def interval(x: np.ndarray) -> list[float]:
    """Median and 90 % interval."""
    return [float(v) for v in np.quantile(np.ravel(x), [0.5, 0.05, 0.95])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--centred", default=None, help="false, law, floor, auto, true or names: E,A (default: law)"
    )
    parser.add_argument("--pool", nargs="+", default=[], metavar="NAME=MODE")
    parser.add_argument(
        "--spreads",
        default=None,
        choices=("halfnormal",),
        help="halfnormal: the spreads' priors before Gamma(2): HalfNormal(0.2) for exponents and "
        "E, (0.5) for terms and the noise (default: Pooling's)",
    )
    add_group_discrepancy_argument(parser)
    parser.add_argument("--out", default="marin_groups.json")
    args = parser.parse_args()
    runs = marin_runs(args.data)
    if runs is None:
        return
    import scalebayes as sb

    options = {"modes": dict(item.split("=", 1) for item in args.pool)}
    if args.centred is not None:
        words = {"false": False, "true": True, "auto": "auto", "law": "law", "floor": "floor"}
        options["centred"] = words.get(args.centred, tuple(args.centred.split(",")))
    if args.spreads == "halfnormal":
        options["spreads"] = HALF_NORMAL
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sb.fit_groups(
            runs,
            pooling=sb.Pooling(**options),
            likelihood=sb.Likelihood(discrepancy=args.discrepancy),
            chains=args.chains,
            draws=args.draws,
            warmup=args.warmup,
            seed=args.seed,
        )
    seconds = time.perf_counter() - started
    d = fit.diagnostics
    post = fit.posterior
    result = {
        "max R-hat": d.max_rhat,
        "min ESS bulk": d.min_ess_bulk,
        "min ESS tail": d.min_ess_tail,
        "divergent": d.n_divergent,
        "at max tree depth": d.n_max_treedepth,
        "draws": d.n_draws,
        "population alpha": interval(post["alpha"].to_numpy()),
        "alpha spread": interval(post["alpha_spread"].to_numpy())
        if "alpha_spread" in post
        else None,
        "group alpha": {
            g: interval(post["alpha_group"].to_numpy()[..., i]) for i, g in enumerate(fit.groups)
        },
        "plan": fit.plan.to_dict(),
        "seconds": seconds,
    }
    print(result)
    write_results(
        RESULTS / args.out,
        {"settings": {**vars(args), "data": str(args.data)}, **result, "machine": machine()},
    )


if __name__ == "__main__":
    main()
