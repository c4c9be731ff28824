"""Benchmark: simulation-based calibration of the Chinchilla law on isoFLOP ladders.

Two studies, each fitted in batches with scalebayes.fit_batch (one compile per batch shape):

- prior:  truths drawn from a realistic prior (the same prior fits them), so ranks of the truth
          among posterior draws are exactly uniform for a correct sampler (Talts et al. 2018);
- fixed:  one realistic truth (Epoch's refit of Chinchilla, 1 % noise), many noise seeds:
          the frequentist coverage users experience on data like Chinchilla's.

For every parameter, the mean loss at a budget 100x beyond the ladder and N* there, it prints
50 % and 90 % central-interval coverage and a chi-square p-value of the rank histogram, the
share of fits with healthy diagnostics, and the wall time per fit; writes
benchmarks/results/calibration.json.

    python benchmarks/calibration.py [--fits 200] [--batch 50] [--draws 500 --warmup 500]
"""

from __future__ import annotations

import argparse
import time

from _common import RESULTS, add_data_argument, machine, write_results


def study(name: str, args: argparse.Namespace) -> dict:
    from scalebayes.calibration import REALISTIC_CHINCHILLA_PRIORS, calibrate
    from scalebayes.simulation import EPOCH_CHINCHILLA

    options = (
        {"priors": REALISTIC_CHINCHILLA_PRIORS}
        if name == "prior"
        else {"truth": {**EPOCH_CHINCHILLA, "sigma": 0.01}}
    )
    started = time.perf_counter()
    cal = calibrate(
        n_fits=args.fits,
        batch=args.batch,
        draws=args.draws,
        warmup=args.warmup,
        seed=args.seed,
        progress=lambda done, total: print(
            f"  {name}: {done}/{total} fits, {time.perf_counter() - started:.0f} s", flush=True
        ),
        **options,
    )
    wall = time.perf_counter() - started
    table = cal.coverage().join(cal.uniformity())
    print(f"\n{name} study: {args.fits} fits in {wall:.0f} s ({wall / args.fits:.2f} s per fit)")
    print(cal)
    return {
        "fits": args.fits,
        "wall_s": wall,
        "s_per_fit": wall / args.fits,
        "healthy_share": float(cal.healthy.mean()),
        "table": table.reset_index(names="quantity").to_dict(orient="records"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser, reads=False)
    parser.add_argument("--fits", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--studies", nargs="+", default=["prior", "fixed"])
    args = parser.parse_args()
    del args.data  # simulated runs: the settings recorded stay as they were
    results = {name: study(name, args) for name in args.studies}
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_1min']:.1f}")
    write_results(
        RESULTS / "calibration.json",
        {"settings": vars(args), "machine": info, "studies": results},
    )


if __name__ == "__main__":
    main()
