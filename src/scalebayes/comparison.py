"""Compare laws fitted to the same runs: PSIS-LOO, WAIC and leave-future-out, with weights.

PSIS-LOO comes from ArviZ (``arviz_stats.loo``); the pinned ArviZ has no WAIC, so
:func:`waic` computes it from the log_likelihood group; leave-future-out comes from
:func:`scalebayes.leave_future_out.lfo`. Every method yields ArviZ ``ELPDData``, and
``arviz_stats.compare`` ranks them and computes stacking and pseudo-BMA weights.

The log-likelihood stored in a :class:`~scalebayes.results.Fit` is already the density of
the loss (the Jacobian of the log is included), so laws fitted on log loss compare directly
with any model of loss itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from scalebayes.errors import ScalebayesError

if TYPE_CHECKING:
    from scalebayes.leave_future_out import LFO
    from scalebayes.results import Fit

__all__ = ["METHODS", "Comparison", "compare", "disagreement", "waic"]

METHODS = ("loo", "waic", "lfo")

# Vehtari, Gelman & Gabry (2017), section 2.2: WAIC is unreliable when a run's p_waic > 0.4.
P_WAIC_MAX = 0.4

_LABEL = {"loo": "PSIS-LOO", "waic": "WAIC", "lfo": "leave-future-out by compute"}


@dataclass(frozen=True)
class Comparison:
    """Laws ranked by expected log predictive density (elpd), best first.

    Attributes
    ----------
    method : {"loo", "waic", "lfo"}
        How the elpd was estimated.
    table : DataFrame
        One row per law, best first: ``rank``, ``elpd``, ``se``, ``elpd_diff`` (to the best,
        <= 0), ``dse`` (standard error of the difference), ``p`` (effective number of
        parameters; NaN for lfo), ``weight`` (stacking), ``weight_pseudo_bma`` (Bayesian-bootstrap
        pseudo-BMA), ``warning`` (empty when all is well).
    warnings : mapping of str to list of str
        Per law, each problem as a sentence (high Pareto k naming the runs' lines, WAIC
        variance, sampler diagnostics of the fits involved).
    elpd : mapping of str to ELPDData
        ArviZ's per-law results, with pointwise values.
    lfo : mapping of str to LFO, optional
        The leave-future-out results when ``method == "lfo"``.
    """

    method: str
    table: pd.DataFrame
    warnings: Mapping[str, list[str]]
    elpd: Mapping[str, Any] = field(repr=False)
    lfo: Mapping[str, LFO] | None = field(default=None, repr=False)

    @property
    def best(self) -> str:
        """Name of the law with the highest elpd."""
        return str(self.table.index[0])

    @property
    def weights(self) -> pd.Series:
        """Stacking weights by law (they sum to 1)."""
        return self.table["weight"]

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table`."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary: method, table rows and warnings (NaN becomes None)."""
        rows = {
            str(name): {key: _plain(value) for key, value in row.items()}
            for name, row in self.table.to_dict(orient="index").items()
        }
        out: dict[str, Any] = {"method": self.method, "laws": rows, "warnings": dict(self.warnings)}
        if self.lfo is not None:
            out["lfo_cuts"] = {
                name: result.cuts.to_dict(orient="records") for name, result in self.lfo.items()
            }
        return out

    def __str__(self) -> str:
        width = max(len("law"), *(len(str(name)) for name in self.table.index))
        lines = [
            f"{_LABEL[self.method]} ({self.table.attrs.get('n_runs', '?')} runs scored)",
            f"{'law':<{width}s} {'rank':>4s} {'elpd':>9s} {'se':>7s} {'diff':>9s} {'dse':>7s} "
            f"{'p':>6s} {'stacking':>8s} {'pseudo-BMA':>10s}  warning",
        ]
        for name, row in self.table.iterrows():
            p = "" if np.isnan(row["p"]) else f"{row['p']:6.1f}"
            lines.append(
                f"{name!s:<{width}s} {row['rank']:4d} {row['elpd']:9.1f} {row['se']:7.1f} "
                f"{row['elpd_diff']:9.1f} {row['dse']:7.1f} {p:>6s} {row['weight']:8.3f} "
                f"{row['weight_pseudo_bma']:10.3f}  {row['warning']}"
            )
        for name, problems in self.warnings.items():
            for problem in problems:
                lines.append(f"  warning ({name}): {problem}")
        return "\n".join(lines)


def compare(
    fits: Mapping[str, Fit],
    *,
    method: str = "loo",
    cuts: int | Sequence[float] = 4,
    lfo_results: Mapping[str, LFO] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Comparison:
    """Rank laws fitted to the same runs by expected log predictive density.

    Parameters
    ----------
    fits : mapping of str to Fit
        Name (usually the law's) to its fit; at least two, all on the same runs.
    method : {"loo", "waic", "lfo"}
        ``"loo"``: PSIS-LOO (ArviZ); ``"waic"``: WAIC; ``"lfo"``: leave-future-out by compute,
        refitting each law below each cut with its fit's own priors, likelihood and NUTS
        settings (see :func:`scalebayes.leave_future_out.lfo`), which costs one compiled
        sampler (the fit's own, on a CPU) and one fit per cut and law.
    cuts : int or sequence of float
        Compute cut-offs for ``"lfo"`` (see :func:`scalebayes.leave_future_out.compute_cuts`).
    lfo_results : mapping of str to LFO, optional
        Precomputed leave-future-out results by name, used instead of refitting.
    progress : callable, optional
        For ``"lfo"``: ``progress(done, total, phase)`` as each law's batch of refits
        samples, ``phase`` naming the law.

    Returns
    -------
    Comparison
        Ranked table with elpd, se, differences, stacking and pseudo-BMA weights, and warnings.

    Raises
    ------
    ScalebayesError
        Fewer than two fits, an unknown method, or fits on different runs.
    """
    if method not in METHODS:
        raise ScalebayesError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    if len(fits) < 2:
        raise ScalebayesError(f"compare needs at least two fits, got {len(fits)}")
    check_same_runs(fits)
    # Per law: (short tag for the table, full sentence for Comparison.warnings).
    problems: dict[str, list[tuple[str, str]]] = {name: [] for name in fits}
    results: dict[str, Any] = {}
    lfo_by_name: dict[str, LFO] | None = None
    if method == "loo":
        for name, fit in fits.items():
            results[name] = _loo(fit, problems[name])
    elif method == "waic":
        for name, fit in fits.items():
            results[name] = waic(fit.idata)
            flagged = results[name].p_waic_i > P_WAIC_MAX
            if flagged.any():
                problems[name].append(
                    (
                        f"p_waic > {P_WAIC_MAX}: {flagged.sum()} runs",
                        f"WAIC unreliable: p_waic > {P_WAIC_MAX} for the runs on "
                        f"{fit.runs.where(flagged)}; prefer PSIS-LOO (Vehtari, Gelman & Gabry "
                        "2017)",
                    )
                )
    else:
        lfo_by_name = (
            dict(lfo_results) if lfo_results is not None else _run_lfo(fits, cuts, progress)
        )
        missing = sorted(set(fits) - set(lfo_by_name))
        if missing:
            raise ScalebayesError(f"lfo_results has no entry for {missing}")
        for name in fits:
            result = lfo_by_name[name]
            results[name] = result.to_elpd_data()
            for k, row in result.cuts.iterrows():
                refit = result.fits[k]
                if not refit.diagnostics.ok:
                    problems[name].append(
                        (
                            f"refit at {row['cut']:.2g}",
                            f"refit below {row['cut']:.3g} FLOPs: {refit.diagnostics}",
                        )
                    )
        runs_scored = {tuple(lfo_by_name[name].elpd_i["run"].values) for name in fits}
        if len(runs_scored) > 1:
            raise ScalebayesError(
                "leave-future-out results score different runs (different cuts); "
                "compute them with the same cuts"
            )
    for name, fit in fits.items():
        if not fit.diagnostics.ok:
            problems[name].append(("fit diagnostics", f"the fit's {fit.diagnostics}"))
    table = _rank(results)
    table["warning"] = ["; ".join(tag for tag, _ in problems[name]) for name in table.index]
    table.attrs["n_runs"] = int(next(iter(results.values())).n_data_points)
    return Comparison(
        method=method,
        table=table,
        warnings={name: [text for _, text in found] for name, found in problems.items() if found},
        elpd=results,
        lfo=lfo_by_name,
    )


def disagreement(interpolation: Comparison, extrapolation: Comparison) -> str | None:
    """A sentence when an interpolation score (LOO or WAIC) and leave-future-out prefer different laws.

    Returns None when both rank the same law first.
    """
    if interpolation.best == extrapolation.best:
        return None
    table = extrapolation.table
    diff, dse = -table.loc[interpolation.best, "elpd_diff"], table.loc[interpolation.best, "dse"]
    sentence = (
        f"{_LABEL[interpolation.method]} prefers {interpolation.best} but leave-future-out "
        f"prefers {extrapolation.best} (by {diff:.1f} +/- {dse:.1f}): {interpolation.best} "
        f"describes the runs you have better, {extrapolation.best} predicted the larger runs "
        "better from the smaller ones."
    )
    # Sivula et al. (2025), as ArviZ's compare: below 4 nats, or 2 se, the two predict alike.
    if diff < 4 or diff < 2 * dse:
        return sentence + (
            " The leave-future-out difference is small (under 4 nats or 2 standard errors): "
            "both extrapolated about equally well."
        )
    return sentence + " To plan a bigger run, weigh the leave-future-out ranking more."


def waic(idata: xr.DataTree, var_name: str = "loss") -> Any:
    """Widely applicable information criterion from a fit's log_likelihood group.

    ``elpd_waic = sum_i [log mean_s p(y_i | theta_s) - var_s log p(y_i | theta_s)]``
    (Watanabe 2010; Vehtari, Gelman & Gabry 2017, eqs. 3, 11-13), with the sample variance
    over all draws; ``se = sqrt(n var_i(elpd_waic_i))``.

    Parameters
    ----------
    idata : DataTree
        With a log_likelihood group holding ``var_name``, dims (chain, draw, run).

    Returns
    -------
    ELPDData
        ``elpd``, ``se``, ``p`` (= sum of p_waic_i), ``elpd_i`` (dims run), and
        ``p_waic_i`` (numpy, per run) as an extra attribute.
    """
    from arviz_stats import ELPDData
    from scipy.special import logsumexp

    log_lik = idata["log_likelihood"][var_name]
    values = log_lik.to_numpy()
    n_samples = values.shape[0] * values.shape[1]
    flat = values.reshape(n_samples, -1)
    lppd_i = logsumexp(flat, axis=0) - np.log(n_samples)
    p_waic_i = np.var(flat, axis=0, ddof=1)
    elpd_i = lppd_i - p_waic_i
    run_dim = next(d for d in log_lik.dims if d not in ("chain", "draw"))
    elpd_data = ELPDData(
        elpd=float(elpd_i.sum()),
        se=float(np.sqrt(elpd_i.size * np.var(elpd_i))),
        p=float(p_waic_i.sum()),
        n_samples=n_samples,
        n_data_points=int(elpd_i.size),
        scale="log",
        warning=bool(np.any(p_waic_i > P_WAIC_MAX)),
        good_k=None,
        elpd_i=xr.DataArray(elpd_i, dims=(run_dim,), coords={run_dim: log_lik[run_dim].values}),
    )
    elpd_data.p_waic_i = p_waic_i  # type: ignore[attr-defined]
    return elpd_data


def check_same_runs(fits: Mapping[str, Fit]) -> None:
    """Raise :class:`ScalebayesError` unless every fit conditions on identical runs.

    Scores on different runs (another subset, another loss column, other units) are not
    comparable, so the message says what differs.
    """
    names = list(fits)
    first = fits[names[0]].runs
    for name in names[1:]:
        runs = fits[name].runs
        if len(runs) != len(first):
            raise ScalebayesError(
                f"fits {names[0]!r} and {name!r} are on different runs ({len(first)} vs "
                f"{len(runs)} runs); compare laws fitted to the same table"
            )
        for column in ("N", "D", "C", "U", "loss"):
            if (column in first.table) != (column in runs.table):
                raise ScalebayesError(
                    f"fits {names[0]!r} and {name!r} are on different runs: only one has a "
                    f"{column} column; compare laws fitted to the same table"
                )
            if column not in first.table:
                continue
            a, b = first.table[column].to_numpy(), runs.table[column].to_numpy()
            differ = np.flatnonzero(a != b)
            if differ.size:
                raise ScalebayesError(
                    f"fits {names[0]!r} and {name!r} are on different runs: column {column} "
                    f"differs on {first.where(a != b)}; compare laws fitted to the same table"
                )


def _loo(fit: Fit, problems: list[tuple[str, str]]) -> Any:
    import arviz_stats as azs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = azs.loo(fit.idata, pointwise=True, var_name="loss")
    flagged = result.pareto_k.to_numpy() > result.good_k
    if flagged.any():
        problems.append(
            (
                f"Pareto k > {result.good_k:.2f}: {flagged.sum()} runs",
                f"Pareto k > {result.good_k:.2f} for the runs on {fit.runs.where(flagged)}: "
                "PSIS-LOO is unreliable there (influential runs); check them, or trust "
                "leave-future-out",
            )
        )
    # ArviZ's own messages repeat the Pareto-k count; anything else is kept.
    for w in caught:
        if "Pareto" not in str(w.message):
            problems.append(("ArviZ warning", str(w.message)))
    return result


def _run_lfo(
    fits: Mapping[str, Fit],
    cuts: int | Sequence[float],
    progress: Callable[[int, int, str], None] | None,
) -> dict[str, LFO]:
    from scalebayes.leave_future_out import compute_cuts, lfo

    first = next(iter(fits.values()))
    values = compute_cuts(first.runs, cuts)  # the same cuts for every law
    out = {}
    for index, (name, fit) in enumerate(fits.items()):

        def report(done: int, total: int, phase: str, index: int = index, name: str = name) -> None:
            if progress is not None:
                progress(index * total + done, len(fits) * total, f"{name}: {phase}")

        out[name] = lfo(
            fit.runs,
            fit.law,
            cuts=list(values),
            likelihood=fit.likelihood,
            settings=fit.settings.sampler,  # the fit's own NUTS settings, precision included
            progress=report,
        )
    return out


def _rank(results: Mapping[str, Any]) -> pd.DataFrame:
    import arviz_stats as azs

    stacking = azs.compare(dict(results), method="stacking", round_to="none")
    pseudo = azs.compare(dict(results), method="BB-pseudo-BMA", round_to="none")
    table = stacking[["rank", "elpd", "se", "elpd_diff", "dse", "p", "weight"]].copy()
    table["weight_pseudo_bma"] = pseudo["weight"].reindex(table.index)
    table.index.name = "law"
    return table


def _plain(value: Any) -> Any:
    """A table cell as plain JSON: Python numbers, None for NaN (strict JSON has no NaN)."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and np.isnan(value) else value
