"""Which noise model on log loss? Compare Normal, Student-t(4) and Student-t with estimated nu.

Fits the Chinchilla law (without a discrepancy) to Epoch AI's digitised Chinchilla runs under
each likelihood and prints PSIS-LOO (ArviZ) with the parameter medians, so the default is
chosen from data.
Writes benchmarks/results/likelihood_choice.json.

    python benchmarks/likelihood_choice.py [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import RESULTS, add_data_argument, chinchilla_csv, missing, write_results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--out", type=Path, default=RESULTS / "likelihood_choice.json")
    args = parser.parse_args()
    data = chinchilla_csv(args.data)
    if missing(data):
        return 0
    import arviz_stats as azs

    import scalebayes as sb

    runs = sb.load_runs(data)
    # The plain law, as when results/likelihood_choice.json was measured (before the GP
    # discrepancy existed): the README and model.Likelihood's docstring quote those numbers.
    plain = {"discrepancy": "none"}
    candidates = {
        "normal": sb.Likelihood(family="normal", **plain),
        "student_t(4)": sb.Likelihood(df=4.0, **plain),
        "student_t(nu estimated)": sb.Likelihood(df=None, **plain),
    }
    fits = {
        name: sb.fit(runs, "chinchilla", likelihood=lik, seed=0) for name, lik in candidates.items()
    }
    ranked = azs.compare({name: f.idata for name, f in fits.items()})
    print(ranked.to_string())
    results = {}
    print(f"\n{'likelihood':26s} {'elpd_loo':>9s} {'se':>6s} {'p_loo':>6s} {'k>0.7':>5s}  medians")
    for name, f in fits.items():
        loo = azs.loo(f.idata, pointwise=True)
        bad_k = int((loo.pareto_k > 0.7).sum())
        medians = f.summary()["median"].round(4).to_dict()
        results[name] = {
            "elpd_loo": float(loo.elpd),
            "se": float(loo.se),
            "p_loo": float(loo.p),
            "n_pareto_k_gt_0.7": bad_k,
            "medians": medians,
            "diagnostics": f.diagnostics.to_dict(),
        }
        shown = ", ".join(f"{k} {v:.4g}" for k, v in medians.items())
        print(f"{name:26s} {loo.elpd:9.1f} {loo.se:6.1f} {loo.p:6.1f} {bad_k:5d}  {shown}")
    write_results(
        args.out,
        {
            "data": str(data),
            "results": results,
            "ranking": ranked.reset_index().to_dict(orient="records"),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
