"""Loss at planned runs, per posterior draw: the fit's mean loss, or a new run's outcome.

``kind="mean"`` answers "what loss does the fit predict here?" (a credible interval of the mean
loss: the uncertainty about the law's parameters, and about its discrepancy term when the fit
has one); ``kind="new_run"`` answers "what loss will my run actually get?" (a predictive
interval: that uncertainty plus the run-to-run noise the fit measured), so its intervals are
wider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from scalebayes.counts import parse_counts, suffixed
from scalebayes.errors import RunsFileError, ScalebayesError
from scalebayes.groups.select import select_group
from scalebayes.summaries import per_draw, summarise

if TYPE_CHECKING:
    from scalebayes.results import Fit

KINDS = ("mean", "new_run")
INPUT_NAMES = ("N", "D", "C")


@dataclass(frozen=True)
class Prediction:
    """Predicted loss at planned runs, one value per posterior draw.

    Attributes
    ----------
    loss : DataArray, dims (chain, draw, point)
        Loss in nats/token (the units of the fitted runs).
    points : DataFrame
        Columns N, D, C of each point (NaN for an input that was neither given nor derivable).
    kind : {"mean", "new_run"}
        ``mean``: the law's own uncertainty (credible interval); ``new_run``: plus the fitted
        run-to-run noise (predictive interval).
    fitted_range : mapping of str to (float, float)
        Smallest and largest N, D and C among the fitted runs.
    """

    loss: xr.DataArray
    points: pd.DataFrame
    kind: str
    fitted_range: Mapping[str, tuple[float, float]]

    def summary(self, probs: Sequence[float] = (0.5, 0.9), kind: str = "eti") -> pd.DataFrame:
        """Tidy table, one row per point: N, D, C, median loss, intervals and extrapolation.

        Parameters
        ----------
        probs : sequence of float
            Interval probabilities (default 50% and 90%).
        kind : {"eti", "hdi"}
            Equal-tailed or highest-density intervals.

        Returns
        -------
        DataFrame
            Columns N, D, C, ``median``, ``{kind}{percent}_lb`` / ``_ub``, ``beyond`` (how many
            times outside the fitted range the point lies; 1 inside it) and ``extrapolation``
            (the same in words, e.g. "12x beyond the largest C seen").
        """
        table = summarise(self.loss, probs=probs, kind=kind)
        table.insert(0, "C", self.points["C"].to_numpy())
        table.insert(0, "D", self.points["D"].to_numpy())
        table.insert(0, "N", self.points["N"].to_numpy())
        if "U" in self.points:
            table.insert(3, "U", self.points["U"].to_numpy())
        factors, words = extrapolation(self.points, self.fitted_range)
        table["beyond"] = factors
        table["extrapolation"] = words
        table.attrs.update(prediction=self.kind)
        return table

    def __str__(self) -> str:
        label = "credible (mean loss)" if self.kind == "mean" else "predictive (new run)"
        return f"predicted loss, {label} intervals:\n{self.summary().to_string()}"


def predict(
    fit: Fit,
    *,
    N: ArrayLike | None = None,
    D: ArrayLike | None = None,
    C: ArrayLike | None = None,
    U: ArrayLike | None = None,
    kind: str = "mean",
    seed: int = 0,
    group: str | None = None,
) -> Prediction:
    """Loss of planned runs under every posterior draw.

    Give two of ``N``, ``D``, ``C`` (the third follows from ``C = k N D`` with the fit's
    ``runs.cost_k``), or just the inputs the law uses; scalars and 1-D arrays broadcast.

    Parameters
    ----------
    fit : Fit
        The posterior to carry forward. To average several laws, see
        :func:`scalebayes.averaging.predict_mixture`.
    N, D, C : array-like, optional
        Parameters, training tokens, training FLOPs of each planned run.
    U : array-like, optional
        Unique training tokens, for laws of data repetition (e.g. ``data_constrained``).
    kind : {"mean", "new_run"}
        ``mean``: the fit's mean loss, the law plus its discrepancy term if any (credible
        interval: uncertainty about both);
        ``new_run``: loss a new training run would get (predictive interval: adds the fitted
        Student-t/Normal noise on log loss, one draw per posterior draw).
    seed : int
        Seed of the noise draws for ``new_run``.
    group : str, optional
        For a grouped fit (:func:`scalebayes.fit_groups`): the group's label, or ``"new"`` for
        a group not yet run (its parameters drawn from the population).

    Returns
    -------
    Prediction
        ``loss`` with dims (chain, draw, point), nats/token.
    """
    if kind not in KINDS:
        raise ScalebayesError(f"kind={kind!r}: expected 'mean' or 'new_run'")
    fit = select_group(fit, group)
    points = planned_points(fit, N=N, D=D, C=C, U=U)
    log_mu = log_mean_at(fit, points)
    if kind == "new_run":
        log_mu = log_mu + noise_draws(fit, log_mu.shape, seed=seed)
    loss = per_draw(
        np.exp(log_mu),
        fit.posterior,
        dim="point",
        coord=np.arange(len(points)),
        name="loss",
        units="nats/token",
    )
    return Prediction(loss, points, kind, fitted_range(fit))


def planned_points(
    fit: Fit,
    *,
    N: ArrayLike | None = None,
    D: ArrayLike | None = None,
    C: ArrayLike | None = None,
    U: ArrayLike | None = None,
) -> pd.DataFrame:
    """Columns N, D, C (and U if given) of planned runs; the missing one of N, D, C derived with ``C = k N D``.

    Raises
    ------
    ScalebayesError
        For values that are not finite and positive, arrays that do not broadcast, inputs the
        law needs but that cannot be derived, or N, D, C that disagree with ``C = k N D``.
    """
    k = fit.runs.cost_k
    given = {name: v for name, v in (("N", N), ("D", D), ("C", C), ("U", U)) if v is not None}
    if not given:
        raise ScalebayesError(
            f"no planned runs: give two of N, D, C (C = {k:g} N D); law {fit.law.name!r} "
            f"uses {', '.join(fit.law.inputs)}"
        )
    arrays = {}
    for name, value in given.items():
        array = np.atleast_1d(np.asarray(value, dtype=float))
        if array.ndim != 1 or not np.all(np.isfinite(array)) or not np.all(array > 0):
            raise ScalebayesError(
                f"{name}={value!r}: expected positive finite numbers (a scalar or a 1-D list)"
            )
        arrays[name] = array
    try:
        columns = dict(zip(arrays, np.broadcast_arrays(*arrays.values()), strict=True))
    except ValueError:
        shapes = {name: a.shape for name, a in arrays.items()}
        raise ScalebayesError(
            f"N, D, C of different lengths {shapes}: expected equal lengths or scalars"
        ) from None
    n = len(next(iter(columns.values())))
    unique = {"U": columns.pop("U")} if "U" in columns else {}
    if len(columns) == 3:
        implied = k * columns["N"] * columns["D"]
        off = np.abs(implied - columns["C"]) > 0.1 * columns["C"]
        if np.any(off):
            raise ScalebayesError(
                f"C disagrees with {k:g} N D by more than 10% at the points numbered "
                f"{', '.join(str(i + 1) for i in np.flatnonzero(off))} (the first is 1); "
                "give only two of N, D, C"
            )
    elif len(columns) == 2:
        if "C" not in columns:
            columns["C"] = k * columns["N"] * columns["D"]
        elif "D" not in columns:
            columns["D"] = columns["C"] / (k * columns["N"])
        else:
            columns["N"] = columns["C"] / (k * columns["D"])
    columns.update(unique)
    missing = [name for name in fit.law.inputs if name not in columns]
    if missing:
        needed = [f"two of N, D, C (C = {k:g} N D)"] if set(missing) - {"U"} else []
        if "U" in missing:
            needed.append("U, the unique tokens each run trains on (U=, --U or a U column)")
        raise ScalebayesError(
            f"law {fit.law.name!r} needs {', '.join(fit.law.inputs)}; got only "
            f"{', '.join(columns)}: give {' and '.join(needed)}"
        )
    table = pd.DataFrame({name: columns.get(name, np.full(n, np.nan)) for name in INPUT_NAMES})
    return table.assign(**unique) if unique else table


def log_mean_at(fit: Fit, points: pd.DataFrame) -> np.ndarray:
    """Log of the fit's mean loss at ``points`` per draw, shape (chain, draw, point).

    The law plus the fit's discrepancy term, if it has one (:meth:`Fit.log_mean`); the
    discrepancy warns about points where its term is not to be trusted.
    """
    params = {name: fit.posterior[name].to_numpy()[..., None] for name in fit.param_names}
    log_inputs = {name: np.log(points[name].to_numpy(float)) for name in fit.law.inputs}
    fit.likelihood.discrepancy.check_points(fit.law, log_inputs, fit.log_ref)
    return np.asarray(fit.log_mean(params, log_inputs))


def noise_draws(fit: Fit, shape: tuple[int, ...], *, seed: int) -> np.ndarray:
    """One draw of the fitted noise on log loss per posterior draw and point; ``shape`` (chain, draw, point)."""
    sigma = fit.posterior["sigma"].to_numpy()[..., None]
    nu = (
        fit.posterior["nu"].to_numpy()[..., None]
        if fit.likelihood.estimates_nu
        else float(fit.likelihood.df)
    )
    return np.asarray(fit.likelihood.noise_draws(seed, sigma, nu, tuple(shape)))


TOKENS_PER_PARAM = "D/N"


def fitted_range(fit: Fit) -> dict[str, tuple[float, float]]:
    """Smallest and largest N, D, C, D/N (and U, when the runs have it) among the fitted runs.

    D/N (tokens per parameter) is its own axis: a run at a new D/N is an extrapolation even when
    its N and D are each inside their ranges (over-training: the law's D term far past the runs).
    """
    table = fit.runs.table
    names = [name for name in (*INPUT_NAMES, "U") if name in table]
    ranges = {name: (float(table[name].min()), float(table[name].max())) for name in names}
    if "N" in table and "D" in table:
        ratio = table["D"] / table["N"]
        ranges[TOKENS_PER_PARAM] = (float(ratio.min()), float(ratio.max()))
    return ranges


def extrapolation(
    points: pd.DataFrame, fitted: Mapping[str, tuple[float, float]]
) -> tuple[np.ndarray, list[str]]:
    """How far outside the fitted range each point lies: the largest factor, and in words.

    A point at 12 times the largest C seen gets factor 12 and "12x beyond the largest C seen";
    one at a tenth of the smallest N, factor 10 and "10x below the smallest N seen"; a point
    inside the range of every input, factor 1 and "inside the fitted range". D/N is taken
    from the points' N and D when ``fitted`` has a D/N range.
    """
    if TOKENS_PER_PARAM in fitted and TOKENS_PER_PARAM not in points and {"N", "D"} <= set(points):
        points = points.assign(**{TOKENS_PER_PARAM: points["D"] / points["N"]})
    factors = np.ones(len(points))
    words = ["inside the fitted range"] * len(points)
    for i in range(len(points)):
        notes = []
        for name in fitted:
            if name not in points:
                continue
            value = points[name].iloc[i]
            if not np.isfinite(value):
                continue
            low, high = fitted[name]
            factor, note = 1.0, ""
            if value > high:
                factor, note = value / high, f"beyond the largest {name} seen"
            elif value < low:
                factor, note = low / value, f"below the smallest {name} seen"
            if factor > 1.0 + 1e-9:
                notes.append((factor, f"{factor:.3g}x {note}"))
        if notes:
            notes.sort(reverse=True)
            factors[i] = notes[0][0]
            words[i] = "; ".join(text for _, text in notes)
    return factors, words


def positive_column(
    table: pd.DataFrame,
    column: str,
    *,
    key: str,
    source: str,
    lines: Sequence[int] | None = None,
    what: str = "number",
) -> np.ndarray:
    """``table[column]`` as floats (counts such as ``70B`` read); an error names rows not > 0.

    A unit in the column's name counts in it (``"Params (B)"``: billions; ``key`` the canonical
    column it is read as, :func:`scalebayes.columns.unit_of`). Rows are named by ``lines`` (the
    file's line numbers, header = line 1) or by index labels.
    """
    from scalebayes.columns import unit_of

    column_values = table[column]
    unit = unit_of(column, key)
    bad = np.zeros(len(table), bool)
    if pd.api.types.is_numeric_dtype(column_values):
        values = pd.to_numeric(column_values, errors="coerce").to_numpy(float)
    else:
        text = column_values.astype(str).str.strip()
        values = parse_counts(text)
        if unit is not None:  # "Params (B)" and "70B": which does the number count?
            bad = suffixed(text)
            what = f"plain {what} (the column's name gives the unit, {unit.text})"
    if unit is not None:
        values = values * unit.factor
    bad |= ~(np.isfinite(values) & (values > 0))
    if bad.any():
        names = np.asarray(lines if lines is not None else table.index)[bad].tolist()
        raise RunsFileError(
            source,
            f"not a positive finite {what}",
            column=column,
            rows=names,
            row_label="line" if lines is not None else "row",
        )
    return values


def points_from_table(
    table: pd.DataFrame, *, source: str = "<DataFrame>", lines: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """N, D, C (and U) columns of a table of planned runs, by the names :func:`load_runs` accepts.

    ``lines`` gives each row's line in the file (header = line 1, as :func:`load_runs` counts);
    without it rows are named by their index labels.
    """
    from scalebayes.columns import canonical

    found: dict[str, np.ndarray] = {}
    for column in table.columns:
        key = canonical(column)
        if key in (*INPUT_NAMES, "U"):
            if key in found:
                raise ScalebayesError(f"{source}: two columns mean {key}; keep one")
            found[key] = positive_column(table, column, source=source, lines=lines, key=key)
    if not found:
        raise ScalebayesError(
            f"{source}: no N, D or C column found (columns: {list(table.columns)})"
        )
    return found
