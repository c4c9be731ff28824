"""What approach 2 returns: the sweeps' latent minima and the power law through them.

Also the allocation that power law implies at any budget, per posterior draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from scalebayes.allocate import checked_budgets
from scalebayes.allocation.budgets import Budgets
from scalebayes.allocation.profile import ProfileModel
from scalebayes.data import Runs
from scalebayes.formatting import format_interval, format_number, text_columns
from scalebayes.results import Diagnostics, Settings
from scalebayes.summaries import SAMPLE_DIMS, summarise

QUANTITIES = ("N", "D", "loss", "tokens_per_param", "exponent_N", "exponent_D")
# Reported scalar parameters and what they mean.
PARAMS = {
    "a": "allocation exponent of N* = G C^a at the sweeps' mean log budget (b = 1 - a: D*'s)",
    "kappa": "exponent drift: change of N*'s local exponent per e-fold of C (0: straight)",
    "log_G": "log of G in N* = G C^a, the tangent line there (C in FLOPs)",
    "tau": "spread of the sweeps' minima around the power law, in log N",
    "p": "valley shape: exponent on the small-model side (a law's alpha)",
    "q": "valley shape: exponent on the large-model side (a law's beta)",
    "sigma": "noise: sd of log loss around the valleys",
    "nu": "noise: Student-t degrees of freedom",
}


@dataclass(frozen=True)
class IsoflopFit:
    """Posterior of the isoFLOP profile model (:mod:`scalebayes.allocation.profile`).

    ``idata`` holds the draws (dims chain, draw; per-sweep ones also ``budget``): ``a``,
    ``kappa`` (with drift), ``log_G``, ``tau``, ``p``, ``q``, the noise, and per sweep ``log_N_star``, ``L_star`` and
    ``K`` (curvature). ``edge`` flags sweeps whose posterior median minimum sits at or beyond
    the edge of their model sizes (fewer than two runs on one side).
    """

    runs: Runs
    budgets: Budgets
    model: ProfileModel
    idata: xr.DataTree
    settings: Settings
    diagnostics: Diagnostics
    edge: np.ndarray
    wall_time: dict[str, float]

    @property
    def posterior(self) -> xr.Dataset:
        """The draws, dims (chain, draw[, budget])."""
        return self.idata["posterior"].to_dataset()

    @property
    def a(self) -> xr.DataArray:
        """Exponent of N* = G C^a, dims (chain, draw)."""
        return self.posterior["a"]

    @property
    def log_c_ref(self) -> float:
        """The sweeps' mean log budget ln C_ref, where ``a`` is the local exponent."""
        return float(np.log(self.budgets.compute).mean())

    @property
    def b(self) -> xr.DataArray:
        """Exponent of D* = C / (k N*): 1 - a, dims (chain, draw)."""
        return (1.0 - self.posterior["a"]).rename("b")

    @property
    def param_names(self) -> tuple[str, ...]:
        """The reported scalar parameters present in this fit."""
        return tuple(name for name in PARAMS if name in self.posterior)

    def shape_as_prior(self) -> tuple[str, str]:
        """The posterior of the valley shape p, q as two LogNormal priors (for new sweeps).

        Approach 2 takes one valley shape for every sweep: a sweep fitted alone (a held-out
        one) learns its shape from these instead of from the broad default prior.
        """
        priors = []
        for name in ("p", "q"):
            logs = np.log(self.posterior[name].to_numpy())
            priors.append(f"LogNormal(loc={logs.mean():.4g}, scale={max(logs.std(), 1e-3):.4g})")
        return priors[0], priors[1]

    def minima(self, cost_k: float | None = None) -> xr.Dataset:
        """Each sweep's latent minimum: N*, D* = C / (k N*), tokens per parameter and L*.

        Dims (chain, draw, budget); ``cost_k`` defaults to the runs' (6).
        """
        k = self.runs.cost_k if cost_k is None else cost_k
        n = np.exp(self.posterior["log_N_star"])
        d = self.posterior["budget"] / (k * n)
        return xr.Dataset(
            {"N": n, "D": d, "tokens_per_param": d / n, "loss": self.posterior["L_star"]}
        )

    def optimal(self, budgets: Any, *, cost_k: float | None = None) -> ProfileAllocation:
        """N*, D*, tokens per parameter and exponents at any budgets from the curve through the minima.

        Per draw, within the sweeps' range of budgets (ln C_lo to ln C_hi), with
        ``lc = ln C - ln C_ref``: ``log N* = log G + a ln C + (kappa / 2) lc^2``, the curve through
        the minima (not a new sweep's own scatter ``tau``; kappa = 0 without drift), whose local
        exponent is ``exponent_N = a + kappa lc``. Beyond that range the drift is read as a local
        curvature, not a law: with the model's ``extrapolation="edge"`` (default) log N* goes on
        straight in ln C from the nearest outer sweep's budget C_e with that budget's local
        exponent ``a + kappa lc_e``, so the interval still widens with the uncertain edge slope
        but the median stops bending; ``"quadratic"`` carries the quadratic on (and its
        exponent ``a + kappa lc``) at every budget. ``exponent_D = 1 - exponent_N``; ``loss``
        is the sweep's L* at budgets within the detection tolerance of an observed sweep and NaN
        elsewhere (approach 2 has no law for L* beyond its sweeps).
        """
        budgets = checked_budgets(budgets)
        k = self.runs.cost_k if cost_k is None else float(cost_k)
        coords = {"budget": budgets}
        log_c = xr.DataArray(np.log(budgets), dims="budget", coords=coords)
        post = self.posterior
        kappa = post["kappa"] if "kappa" in post else xr.zeros_like(post["a"])
        lc = log_c - self.log_c_ref
        # Where the curve is read: the budget itself, or the nearest edge of the sweeps' range.
        span = np.log(self.budgets.compute) - self.log_c_ref
        at = lc if self.model.extrapolation == "quadratic" else lc.clip(span.min(), span.max())
        a = (post["a"] + kappa * at).transpose(*SAMPLE_DIMS, "budget")
        log_n = post["log_G"] + post["a"] * (self.log_c_ref + at) + 0.5 * kappa * at**2
        log_n = log_n + a * (lc - at)
        n = np.exp(log_n).transpose(*SAMPLE_DIMS, "budget")
        d = xr.DataArray(budgets, dims="budget", coords=coords) / (k * n)
        loss = xr.full_like(n, np.nan)
        near = np.abs(np.log10(budgets)[:, None] - np.log10(self.budgets.compute)[None, :])
        for i, j in enumerate(np.argmin(near, axis=1)):
            if near[i, j] < 0.05:
                loss[..., i] = post["L_star"].isel(budget=j).to_numpy()
        named = {"N": n, "D": d, "loss": loss, "tokens_per_param": d / n,
                 "exponent_N": a, "exponent_D": 1.0 - a}  # fmt: skip
        dims = (*SAMPLE_DIMS, "budget")
        arrays = {k: v.transpose(*dims).rename(k).drop_attrs() for k, v in named.items()}
        return ProfileAllocation(**arrays, budgets=budgets, cost_k=k, fit=self)

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Per parameter: median, equal-tailed ``prob`` interval, R-hat and bulk ESS."""
        import arviz_stats as azs

        names = list(self.param_names)
        table = azs.summary(
            self.idata, var_names=names, kind="all", ci_prob=prob, ci_kind="eti", round_to="none"
        )
        label = f"eti{round(prob * 100):g}"
        table = table.rename(columns={f"{label}_lb": "lower", f"{label}_ub": "upper"})
        table.insert(0, "median", [float(self.posterior[n].median()) for n in table.index])
        table = table.loc[names, ["median", "lower", "upper", "r_hat", "ess_bulk"]]
        b = self.b.to_numpy()
        lower, upper = np.quantile(b, [(1 - prob) / 2, (1 + prob) / 2])
        row = pd.DataFrame(
            {"median": np.median(b), "lower": lower, "upper": upper, "r_hat": table.loc["a", "r_hat"],
             "ess_bulk": table.loc["a", "ess_bulk"]}, index=["b"])  # fmt: skip
        return pd.concat([table.loc[["a"]], row, table.drop(index="a")])

    def sweeps(self, prob: float = 0.9) -> pd.DataFrame:
        """Per sweep: budget, runs, medians and intervals of N*, D*, L*, and the edge flag."""
        minima = self.minima()
        rows = {"budget": self.budgets.compute, "runs": self.budgets.counts}
        for name in ("N", "D", "loss"):
            table = summarise(minima[name], probs=(prob,)).reset_index(drop=True)
            rows[f"{name}_median"] = table["median"].to_numpy()
            rows[f"{name}_lb"] = table.iloc[:, 1].to_numpy()
            rows[f"{name}_ub"] = table.iloc[:, 2].to_numpy()
        rows["edge"] = self.edge
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        params = self.summary()
        rows = [[name, format_number(r["median"]), format_interval(r["lower"], r["upper"]),
                 f"{r['r_hat']:.3f}", f"{r['ess_bulk']:.0f}", PARAMS.get(name, "1 - a")]
                for name, r in params.iterrows()]  # fmt: skip
        sweeps = self.sweeps()
        per = [[format_number(r["budget"]), str(r["runs"]),
                f"{format_number(r['N_median'])} {format_interval(r['N_lb'], r['N_ub'])}",
                f"{format_number(r['loss_median'])} {format_interval(r['loss_lb'], r['loss_ub'])}",
                "at edge" if r["edge"] else ""]
               for _, r in sweeps.iterrows()]  # fmt: skip
        return "\n".join(
            [
                f"approach 2 (isoFLOP minima) on {self.runs.source}: {self.budgets}",
                text_columns(["param", "median", "90% interval", "R-hat", "ESS", "meaning"], rows),
                "per sweep: the latent minimum, median [90% interval]",
                text_columns(["C (FLOPs)", "runs", "N*", "L*", ""], per),
                *self.diagnostics.lines(),
            ]
        )


@dataclass(frozen=True)
class ProfileAllocation:
    """Approach 2's compute-optimal runs per budget and posterior draw.

    Shaped as :class:`~scalebayes.allocate.Allocation`: every array has dims (chain, draw,
    budget). ``loss`` is NaN at budgets with no sweep. ``fit`` is the :class:`IsoflopFit` behind it.
    """

    N: xr.DataArray
    D: xr.DataArray
    loss: xr.DataArray
    tokens_per_param: xr.DataArray
    exponent_N: xr.DataArray
    exponent_D: xr.DataArray
    budgets: np.ndarray
    cost_k: float
    fit: IsoflopFit

    @property
    def diagnostics(self) -> Diagnostics:
        """The isoFLOP fit's sampler diagnostics."""
        return self.fit.diagnostics

    @property
    def n_at_bound(self) -> int:
        """Always 0: approach 2 has no search bound (its edges are sweeps, see ``fit.edge``)."""
        return 0

    def located(self) -> np.ndarray:
        """Per budget, always True: no search, the minima are sampled."""
        return np.ones(np.shape(self.budgets), dtype=bool)

    def to_dataset(self) -> xr.Dataset:
        """All per-draw quantities as one Dataset, dims (chain, draw, budget)."""
        return xr.Dataset({name: getattr(self, name) for name in QUANTITIES})

    def summary(self, probs: Sequence[float] = (0.5, 0.9), kind: str = "eti") -> pd.DataFrame:
        """Tidy table as :meth:`Allocation.summary`: one row per (budget, quantity).

        Rows of ``loss`` at budgets without a sweep are NaN.
        """
        tables = []
        for name in QUANTITIES:
            values = getattr(self, name)
            finite = np.isfinite(values).all(dim=SAMPLE_DIMS).to_numpy()
            table = pd.DataFrame(index=range(len(self.budgets)), dtype=float)
            if finite.any():
                done = summarise(values.isel(budget=finite), probs=probs, kind=kind)
                table = table.reindex(columns=done.columns)
                table.loc[np.flatnonzero(finite)] = done.to_numpy()
            else:
                table = summarise(xr.zeros_like(values), probs=probs, kind=kind) * np.nan
                table = table.reset_index(drop=True)
            table.insert(0, "quantity", name)
            table.insert(0, "budget", self.budgets)
            tables.append(table)
        out = pd.concat(tables, ignore_index=True).sort_values(["budget"], kind="stable")
        out = out.reset_index(drop=True)
        out.attrs.update(probs=tuple(probs), kind=kind, n_at_bound=0)
        return out

    def notes(self) -> list[str]:
        """What a reader of the table should know (edges, L* only at the sweeps)."""
        curve = "a power law N* = G C^a"
        if self.fit.model.drift_prior is not None:
            curve += " with an exponent that drifts with C (kappa)"
            if self.fit.model.extrapolation == "edge":
                curve += ", continued beyond the sweeps with the outer sweep's local exponent"
            else:
                curve += ", its quadratic in log C carried on beyond the sweeps"
        found = [
            f"approach 2: {curve} through the latent minima of {self.fit.budgets}",
            "L* exists only at observed sweeps (NaN elsewhere): approach 2 has no law for it",
        ]
        edge = self.fit.budgets.compute[self.fit.edge]
        if edge.size:
            found.append(
                "sweeps with their minimum at or beyond an edge of their model sizes: "
                + ", ".join(f"{c:.3g}" for c in edge)
            )
        return found

    def __str__(self) -> str:
        return (
            f"compute-optimal allocation, approach 2 (C = {self.cost_k:g} N D):\n"
            + self.summary().to_string()
            + "\n"
            + "\n".join(f"note: {note}" for note in self.notes())
        )
