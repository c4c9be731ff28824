"""Quickstart: fit the Chinchilla law to a table of runs and read the posterior.

    python examples/quickstart.py                                   # synthetic runs, known truth
    python examples/quickstart.py --data ../shared/data/chinchilla_svg_extracted.csv --out fit.nc

What `scalebayes demo` (the library's `sb.run_demo()`) does, in ten lines of library code.
"""

from __future__ import annotations

import argparse

import scalebayes as sb


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="CSV/Parquet of runs (default: a simulated isoFLOP ladder)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--out", help="save the fit to this NetCDF file")
    args = parser.parse_args()

    if args.data:
        runs = sb.load_runs(args.data)
    else:
        design = sb.isoflop_design([6e18, 1e19, 3e19, 1e20, 3e20, 1e21, 3e21])
        runs = sb.simulate(
            "chinchilla",
            {"E": 1.82, "A": 482, "B": 2085, "alpha": 0.348, "beta": 0.366},
            design,
            noise=0.01,
            seed=0,
        )
    print(runs)
    fit = sb.fit(
        runs, law="chinchilla", chains=args.chains, draws=args.draws, warmup=args.warmup, seed=0
    )
    print(fit.summary(ci_prob=0.9)[["median", "lower", "upper", "r_hat", "ess_bulk"]].round(4))
    print(fit.diagnostics)
    if args.out:
        sb.save_fit(fit, args.out)
        print(f"saved {args.out}; reload with sb.load_fit({args.out!r})")


if __name__ == "__main__":
    main()
