"""The laws added for comparison: broken power laws, an N x D interaction, data-constrained."""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import numpy as np
import pandas as pd
import pytest

import scalebayes as sb
from scalebayes.data import load_runs
from scalebayes.formula import parse_formula, to_string
from scalebayes.laws import load_law

# Muennighoff et al. 2023, datablations README ("parametric fit"): a, b, e are logs.
MUENNIGHOFF = {
    "E": math.exp(0.6254804),
    "A": math.exp(6.255414),
    "B": math.exp(7.3049974),
    "alpha": 0.3526596,
    "beta": 0.3526596,
    "RDstar": 15.387756,
    "RNstar": 5.309743,
}
REFIT = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}  # Besiroglu 2024


@pytest.fixture(autouse=True, scope="module")
def x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def test_data_constrained_published_check_value() -> None:
    # The paper's worked example: 6.34e9 parameters, 242e9 tokens from 25e9 unique (9.7 epochs).
    law = load_law("data_constrained")
    got = float(law.mean(MUENNIGHOFF, {"N": 6.34e9, "D": 242e9, "U": 25e9}))
    assert got == pytest.approx(2.2256, abs=5e-5)


def _muennighoff_reference(N: float, D: float, U: float) -> float:
    """Their code (datablations README), transcribed in plain numpy floats."""
    p = MUENNIGHOFF
    G = ((p["alpha"] * p["A"]) / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    RD = max(D / U - 1, 0)
    UN = min(N, (U * G) ** (p["beta"] / p["alpha"]) * G)
    RN = max(N / UN - 1, 0)
    return (
        p["E"]
        + p["A"] / (UN + UN * p["RNstar"] * (1 - math.exp(-RN / p["RNstar"]))) ** p["alpha"]
        + p["B"] / (U + U * p["RDstar"] * (1 - math.exp(-RD / p["RDstar"]))) ** p["beta"]
    )


@pytest.mark.parametrize(
    ("N", "D", "U"),
    [
        (6.34e9, 242e9, 25e9),
        (1e8, 1e9, 1e9),  # one epoch, N below the optimum for U: exactly chinchilla
        (8.7e9, 178e9, 178e9 / 44),  # 44 epochs
        (1e10, 1e11, 1e8),  # 1000 epochs, far too many parameters
    ],
)
def test_data_constrained_matches_their_code(N: float, D: float, U: float) -> None:
    law = load_law("data_constrained")
    got = float(law.mean(MUENNIGHOFF, {"N": N, "D": D, "U": U}))
    assert got == pytest.approx(_muennighoff_reference(N, D, U), rel=1e-12)


def test_data_constrained_one_epoch_is_chinchilla() -> None:
    # U >= D (one epoch or less) and N no larger than the compute-optimal size for U: no
    # discount, so the law is chinchilla with the same constants; U > D counts as D.
    dc, chin = load_law("data_constrained"), load_law("chinchilla")
    params = {k: MUENNIGHOFF[k] for k in ("E", "A", "B", "alpha", "beta")}
    for U in (1e11, 5e11):
        got = float(dc.mean(MUENNIGHOFF, {"N": 1e9, "D": 1e11, "U": U}))
        assert got == pytest.approx(float(chin.mean(params, {"N": 1e9, "D": 1e11})), rel=1e-13)


def test_data_constrained_gradients_finite_at_one_epoch() -> None:
    # Single-epoch runs make R_D exactly 0; NUTS needs finite gradients there.
    law = load_law("data_constrained")
    log_inputs = {"N": math.log(1e9), "D": math.log(2e10), "U": math.log(2e10)}
    grads = jax.grad(lambda p: law.log_mean(p, log_inputs))(MUENNIGHOFF)
    assert all(math.isfinite(float(g)) for g in grads.values())
    assert float(grads["RDstar"]) == 0.0


def test_bnsl_limits() -> None:
    # Far below the break the local exponent is alpha, far above alpha + delta; delta = 0 is
    # the plain power law.
    law = load_law("bnsl_n")
    p = {"E": 1.8, "A": 400.0, "alpha": 0.3, "delta": 0.2, "Nb": 1e9, "f": 0.5}

    def slope(n: float) -> float:
        h = 1e-4
        reducible = [float(law.mean(p, {"N": n * math.exp(s)})) - p["E"] for s in (-h, h)]
        return -(math.log(reducible[1]) - math.log(reducible[0])) / (2 * h)

    assert slope(1e5) == pytest.approx(0.3, abs=1e-3)
    assert slope(1e13) == pytest.approx(0.5, abs=1e-3)
    flat = float(load_law("bnsl_n").mean({**p, "delta": 0.0}, {"N": 3e9}))
    assert flat == pytest.approx(float(load_law("power_n").mean(p, {"N": 3e9})), rel=1e-13)
    c = load_law("bnsl_c")
    got = float(c.mean({**p, "Cb": 1e20, "delta": 0.0}, {"C": 1e21}))
    assert got == pytest.approx(1.8 + 400 / 1e21**0.3, rel=1e-13)


def test_chinchilla_cross_nests_chinchilla() -> None:
    cross, chin = load_law("chinchilla_cross"), load_law("chinchilla")
    x = {"N": 70e9, "D": 1.4e12}
    tiny = float(cross.mean({**REFIT, "G": 1e-300}, x))
    assert tiny == pytest.approx(float(chin.mean(REFIT, x)), rel=1e-13)
    with_g = float(cross.mean({**REFIT, "G": 1e6}, x))
    want = float(chin.mean(REFIT, x)) + 1e6 / (70e9**0.348 * 1.4e12**0.366)
    assert with_g == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("name", ["bnsl_n", "bnsl_c", "chinchilla_cross", "data_constrained"])
def test_new_laws_round_trip(name: str) -> None:
    law = load_law(name)
    assert law.formula == to_string(parse_formula(law.formula))
    assert law.title and law.reference
    assert all(p.doc for p in law.params.values())


# ------------------------------------------------------------------ prior-predictive check

DRAWS = 4000
LOG_N = np.log(np.logspace(6, 12, 13))[:, None]  # 1e6 ... 1e12 parameters
LOG_D = np.log(np.logspace(8, 14, 13))[None, :]  # 1e8 ... 1e14 tokens


@pytest.mark.parametrize(
    ("name", "log_u"),
    [
        ("bnsl_n", None),
        ("bnsl_c", None),
        ("chinchilla_cross", None),
        ("data_constrained", 0.0),  # one epoch
        ("data_constrained", math.log(10)),  # ten epochs
    ],
)
def test_prior_predictive(name: str, log_u: float | None) -> None:
    # Measured with this seed and grid, as in test_laws.py (loss in nats/token, 5-50-95%):
    #   law                  (1e6, 1e8)          (1e12, 1e14)       P(1<=L<=20)  P(L>20)
    #   bnsl_n               1.10 - 3.48 - 45    0.81 - 1.87 - 6.0     0.881      0.042
    #   bnsl_c               1.21 - 5.31 - 149   0.82 - 1.95 - 11      0.847      0.086
    #   chinchilla_cross     1.50 - 6.61 - 98    0.86 - 2.02 - 7.3     0.876      0.077
    #   data_constrained x1  1.50 - 5.95 - 77    0.86 - 2.03 - 7.6     0.877      0.076
    #   data_constrained x10 1.53 - 6.44 - 86    0.87 - 2.06 - 8.1     0.873      0.083
    # The same ranges as the catalogue's other laws (test_laws.py: 0.85-0.97 inside).
    law = load_law(name)
    log_inputs = {"N": LOG_N, "D": LOG_D, "C": math.log(6.0) + LOG_N + LOG_D}
    if log_u is not None:
        log_inputs["U"] = LOG_D - log_u
    keys = jax.random.split(jax.random.key(0), len(law.params))
    theta = {
        n: p.prior.to_numpyro().sample(k, (DRAWS, 1, 1))
        for k, (n, p) in zip(keys, law.params.items(), strict=True)
    }
    log_loss = law.log_mean(theta, {n: log_inputs[n] for n in law.inputs})
    loss = np.broadcast_to(np.exp(np.asarray(log_loss)), (DRAWS, 13, 13))
    assert np.isfinite(loss).all()
    assert ((loss >= 1.0) & (loss <= 20.0)).mean() >= 0.8  # measured 0.85-0.88
    assert (loss > 20.0).mean() <= 0.12  # measured 0.04-0.09
    small = np.quantile(loss[:, 0, 0], [0.05, 0.5, 0.95])
    large = np.quantile(loss[:, -1, -1], [0.05, 0.5, 0.95])
    assert small[0] <= 3.0 and small[2] >= 8.0
    assert large[0] <= 1.5 and large[2] >= 2.5
    assert small[1] > large[1] + 0.5


# --------------------------------------------------------------------- unique tokens (U)


def test_unique_tokens_column_loaded_and_validated() -> None:
    frame = pd.DataFrame(
        {"N": [1e8, 2e8], "D": [2e9, 4e9], "unique_tokens": [1e9, 4e9], "loss": [3.1, 2.9]}
    )
    runs = load_runs(frame)
    np.testing.assert_array_equal(runs.U, [1e9, 4e9])
    assert runs.column_map["U"] == "unique_tokens"
    assert list(runs.table.columns) == ["N", "D", "C", "loss", "U"]
    assert set(runs.inputs()) == {"N", "D", "C", "U"}
    np.testing.assert_allclose(runs.log_inputs()["U"], np.log([1e9, 4e9]))
    assert "U 1.00e+09-4.00e+09" in str(runs)
    assert load_runs(frame.drop(columns="unique_tokens")).U is None


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1.0, "must be positive"), (np.nan, "missing value"), ("25 GB", "not a number")],
)
def test_unique_tokens_bad_values(value: object, message: str) -> None:
    from scalebayes.errors import RunsFileError

    frame = pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 4e9], "U": [1e9, value], "loss": [3.1, 2.9]})
    with pytest.raises(RunsFileError, match=rf"row 1, column 'U': {message}"):
        load_runs(frame)


def test_unique_tokens_tell_duplicate_runs_apart() -> None:
    import warnings

    frame = pd.DataFrame({"N": [1e8, 1e8], "D": [4e9, 4e9], "U": [1e9, 4e9], "loss": [3.1, 2.9]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_runs(frame)  # same N and D, different U: two different runs, no warning


def test_unique_tokens_survive_save_and_load(tmp_path) -> None:
    from scalebayes.io import load_fit
    from scalebayes.testing import fit_from_draws

    frame = pd.DataFrame(
        {
            "N": [1e8, 2e8, 4e8],
            "D": [2e9, 4e9, 8e9],
            "U": [1e9, 4e9, 2e9],
            "loss": [3.4, 3.1, 2.9],
        }
    )
    draws = {name: np.full((2, 5), value) for name, value in MUENNIGHOFF.items()}
    draws["sigma"] = np.full((2, 5), 0.02)
    fit = fit_from_draws("data_constrained", load_runs(frame), draws)
    path = sb.save_fit(fit, tmp_path / "fit.nc")
    again = load_fit(path)
    np.testing.assert_array_equal(again.runs.U, [1e9, 4e9, 2e9])
