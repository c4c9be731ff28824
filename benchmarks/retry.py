"""How often a law fit fails the sampler's checks at first, and after it is continued or retried.

A stage that fails the checks (R-hat > 1.01, bulk ESS < 100 per chain, a divergence) is first
continued for as many draws again: as it was when it failed by R-hat or ESS alone, with half its
step size when it diverged; one that still fails is sampled once more with twice the warmup and
a target acceptance of at least 0.95, and the healthiest run kept (scalebayes.retry). A fit's sample stats say which happened, so one run
measures all: "failed first" counts the fits that were continued or retried, "continued" those
that passed once continued, "fails after" those whose kept run still fails. Tables: Epoch's Chinchilla
runs, each Open-Athena experiment, (Mis)Fitting's finished runs (the tuned ones, and every
learning rate's as ``fit --run-id`` reads its curves without ``--keep-best``), and the data-constrained runs
of Muennighoff et al. (datablations, with the data-constrained law, which reads U); laws
Chinchilla's, plain (no discrepancy) and with the default discrepancy; seeds 0-2.
``--approach2``: instead approach 2's isoFLOP profile model (``sb.fit_isoflops``, which is
checked and retried the same way) on each table of isoFLOP sweeps (Epoch's and Open-Athena's).

    python benchmarks/retry.py [--data DIR] [--seeds 0 1 2] [--quick]
    python benchmarks/retry.py --approach2 --seeds 0 1 2 3 --out retry_approach2.json
    python benchmarks/retry.py --approach2 --sampler dense_mass=false --out x.json  # settings
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

from _common import RESULTS, add_data_argument, machine, misfitting_csv, write_results
from _datasets import datasets, misfitting_final_runs

DATABLATIONS = "datablations/final_losses.csv"


def tables(data: Path) -> dict[str, tuple[Any, list[str]]]:
    """``{name: (runs, laws)}``: each public table and the laws fitted to it."""
    import scalebayes as sb

    found = {name: (spec["runs"], ["chinchilla"]) for name, spec in datasets(data).items()}
    if misfitting_csv(data).is_file():
        found["misfitting_final"] = (misfitting_final_runs(misfitting_csv(data)), ["chinchilla"])
        # Every learning rate's finished run, as `fit --run-id` reads the curves without
        # --keep-best: bad learning rates make a noisier table, which samples less easily.
        curves = sb.load_curves(misfitting_csv(data), run=["model", "total_steps", "peak_lr",
                                "sweep"], step="current_steps", end="total_steps")  # fmt: skip
        found["misfitting_every_lr"] = (curves.runs, ["chinchilla"])
    path = Path(data) / DATABLATIONS
    if path.is_file():
        columns = {"N": "params_N", "D": "tokens_D", "U": "unique_tokens_U", "loss": "val_loss_c4"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate (N, D, U): the seeds' repeats
            runs = sb.load_runs(path, columns=columns)
        found["datablations"] = (runs, ["data_constrained"])
    return found


def isoflop_tables(data: Path) -> dict[str, tuple[Any, list[str]]]:
    """``{name: (runs, ["approach 2"])}``: the public tables of isoFLOP sweeps."""
    return {name: (spec["runs"], ["approach 2"]) for name, spec in datasets(data).items()}


def fit_one(runs: Any, law: str, discrepancy: str, seed: int, settings: dict) -> Any:
    """One fit of ``law`` (or approach 2's model, law ``"approach 2"``), warnings silenced."""
    import scalebayes as sb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if law == "approach 2":
            return sb.fit_isoflops(runs, seed=seed, **settings)
        likelihood = sb.Likelihood(discrepancy=discrepancy)
        return sb.fit(runs, law, likelihood=likelihood, seed=seed, **settings)


def _how(d: Any) -> str:
    """What the fit did after its first run failed: went on (as it was, "cont.xK" for K times as
    many draws again, or at half the step, "half", and on there, "half+cont.xK"), a careful
    retry kept, or the first run kept."""
    if d.extended:  # at half the step too, when it diverged first
        return f"{'half+' if d.smaller_steps else ''}cont.x{int(d.extended)}"
    if d.smaller_steps:
        return "half"
    if d.retried:
        return "retry" if d.retry_kept else "first"
    return "-"


def setting(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` as a sampler setting: ``true``/``false``, a number, or the text."""
    name, _, text = item.partition("=")
    if text.lower() in ("true", "false"):
        return name, text.lower() == "true"
    for kind in (int, float):
        try:
            return name, kind(text)
        except ValueError:
            pass
    return name, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--discrepancy", nargs="+", default=["none", "auto"], help="likelihoods' discrepancies"
    )
    parser.add_argument("--quick", action="store_true", help="seed 0, 2 chains x 500 draws")
    parser.add_argument(
        "--approach2", action="store_true", help="approach 2's model on the isoFLOP tables instead"
    )
    parser.add_argument(
        "--sampler",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="sampler settings changed for every fit (e.g. warmup=2000 dense_mass=false)",
    )
    parser.add_argument("--tables", nargs="+", metavar="NAME", help="only these tables")
    parser.add_argument("--out", default="retry.json", help="file name under benchmarks/results")
    args = parser.parse_args()
    import numpy as np

    import scalebayes as sb

    sb.configure(compile_cache=False)
    found = isoflop_tables(args.data) if args.approach2 else tables(args.data)
    if args.approach2:
        args.discrepancy = ["-"]  # the profile model has none
    if args.tables:
        unknown = sorted(set(args.tables) - set(found))
        if unknown:
            parser.error(f"--tables: no table {unknown}; found {sorted(found)}")
        found = {name: found[name] for name in args.tables}
    if not found:
        print(f"skipped: no public tables under {args.data}")
        return
    settings = {"chains": 4, "draws": 1000, "warmup": 1000}
    if args.quick:
        settings, args.seeds = {"chains": 2, "draws": 500, "warmup": 500}, [0]
    settings.update(setting(item) for item in args.sampler)
    rows = []
    started_all = time.perf_counter()
    print(
        f"{'table':44s} {'law':16s} {'disc':5s} seed  first  how           after  seconds",
        flush=True,
    )
    for name, (runs, laws) in found.items():
        for law in laws:
            for discrepancy in args.discrepancy:
                for seed in args.seeds:
                    started = time.perf_counter()
                    fit = fit_one(runs, law, discrepancy, seed, settings)
                    d = fit.diagnostics
                    row = {
                        "table": name, "law": law, "discrepancy": discrepancy, "seed": seed,
                        "failed_first": bool(d.extended or d.smaller_steps or d.retried),
                        "continued": bool(d.extended or d.smaller_steps),
                        "extended": d.extended, "smaller_steps": d.smaller_steps,
                        "retried": d.retried, "retry_kept": d.retry_kept,
                        "fails_after": not d.ok, "diagnostics": d.to_dict(),
                        "seconds": time.perf_counter() - started,
                        "leapfrog_steps": float(np.mean(fit.idata["sample_stats"]["n_steps"])),
                    }  # fmt: skip
                    rows.append(row)
                    print(
                        f"{name[:44]:44s} {law:16s} {discrepancy:5s} {seed:4d}  "
                        f"{'yes' if row['failed_first'] else 'no':5s}  {_how(d):12s}"
                        f"  {'FAILS' if not d.ok else 'ok':6s} {row['seconds']:7.1f}",
                        flush=True,
                    )
    failed = sum(r["failed_first"] for r in rows)
    continued = sum(r["continued"] for r in rows)
    after = sum(r["fails_after"] for r in rows)
    print(
        f"\n{len(rows)} fits: {failed} failed the checks at first, {continued} of them passed "
        f"once continued, {after} still fail after the careful retry; "
        f"{time.perf_counter() - started_all:.0f} s"
    )
    write_results(
        RESULTS / args.out,
        {
            "settings": {**settings, "seeds": args.seeds, "discrepancy": args.discrepancy},
            "fits": len(rows),
            "failed_first": failed,
            "continued": continued,
            "fails_after": after,
            "rows": rows,
            "seconds": time.perf_counter() - started_all,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
