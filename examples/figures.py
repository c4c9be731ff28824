"""Fit the Chinchilla law and draw its figures (and, with --report, the one-page report).

    python examples/figures.py                    # Epoch's Chinchilla runs if ../shared/data has them
    python examples/figures.py --data synthetic   # the demo's synthetic isoFLOP ladder (known truth)
    python examples/figures.py --data runs.csv --out figs/ --report
    python examples/figures.py --readme docs/figures/chinchilla_frontier.png   # the README's figure

Without ../shared/data/chinchilla_svg_extracted.csv (Epoch AI's digitisation of Hoffmann et
al.'s Figure 4) the script falls back to the synthetic ladder and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import scalebayes as sb
from scalebayes import figures, plots
from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA

CHINCHILLA_CSV = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chinchilla_svg_extracted.csv"
)
BUDGETS = (5.76e23, 1e25)  # Chinchilla's own budget, and a 1e25-FLOP run


def load(data: str | None) -> sb.Runs:
    if data == "synthetic" or (data is None and not CHINCHILLA_CSV.is_file()):
        if data is None:
            print(f"{CHINCHILLA_CSV} not found: using the synthetic ladder instead")
        design = sb.isoflop_design(CHINCHILLA_BUDGETS)
        return sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.01, seed=0)
    return sb.load_runs(data or CHINCHILLA_CSV)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", help="'synthetic', or a CSV/Parquet of runs (default: Epoch's Chinchilla runs)"
    )
    parser.add_argument(
        "--out", default="figures", help="directory for the figures (default figures/)"
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=[kind for kind in figures.KINDS if kind not in figures.HELDOUT_KINDS],
        choices=figures.KINDS,
    )
    parser.add_argument("--report", action="store_true", help="also write OUT/report.html")
    parser.add_argument(
        "--readme", help="also write the README's figure (the frontier, small PNG) here"
    )
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    args = parser.parse_args()

    runs = load(args.data)
    print(runs)
    fit = sb.fit(
        runs, "chinchilla", chains=args.chains, draws=args.draws, warmup=args.warmup, seed=0
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for kind in args.kinds:
        budgets = BUDGETS if kind == "frontier" else None
        plots.save(figures.draw(fit, kind, budgets=budgets), str(out / f"{kind}.png"))
        print(f"wrote {out / f'{kind}.png'}")
    if args.report:
        from scalebayes.report import write_report

        print(f"wrote {write_report(fit, out, budgets=BUDGETS)}")
    if args.readme:
        Path(args.readme).parent.mkdir(parents=True, exist_ok=True)
        plots.save(figures.draw(fit, "frontier", budgets=BUDGETS), args.readme, dpi=72)
        print(f"wrote {args.readme}")
    print(fit.diagnostics)


if __name__ == "__main__":
    main()
