"""Approach 3m: the whole model's N* (law + GP) up to its edge, its own trend beyond, against truth."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from tests.conftest import CI_FIT

import scalebayes as sb
from scalebayes.allocation.budgets import find_budgets
from scalebayes.allocation.whole_model import (
    MIN_SWEEPS,
    WholeModelEstimator,
    edge_budget,
    whole_model_optimal,
)
from scalebayes.cli import main
from scalebayes.errors import ExtrapolationWarning, ScalebayesError
from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, chinchilla_optimum

BEYOND = 100 * CHINCHILLA_BUDGETS[-1]  # 3e23 FLOPs, 100x the largest simulated sweep


def allocation(fit, budgets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)  # beyond the runs on purpose
        return sb.optimal(fit, budgets, approach="3m")


def test_edge_is_the_top_sweep_and_beyond_it_n_star_goes_on_straight(chinchilla_fit):
    budgets = np.array([3e20, CHINCHILLA_BUDGETS[-1], 3e22, BEYOND])
    result = allocation(chinchilla_fit, budgets)
    assert result.edge_budget == pytest.approx(CHINCHILLA_BUDGETS[-1], rel=1e-6)
    assert "isoFLOP sweeps" in result.edge_source and result.edge_sweeps == len(CHINCHILLA_BUDGETS)
    assert list(result.beyond) == [False, False, True, True]
    log_n = np.log(result.N.to_numpy()).reshape(-1, budgets.size)
    slope = result.exponent_N.to_numpy().reshape(-1, budgets.size)
    # Beyond the edge, per draw: log N*(C) = log N*(C_e) + a_e log(C / C_e), one a_e for all.
    for j in (2, 3):
        carried = log_n[:, 1] + slope[:, j] * np.log(budgets[j] / budgets[1])
        np.testing.assert_allclose(log_n[:, j], carried, atol=1e-9)
        np.testing.assert_array_equal(slope[:, j], slope[:, 1])
    np.testing.assert_allclose(result.N * result.D * 6, np.broadcast_to(budgets, result.N.shape))
    # Runs forming too few sweeps: the note says the interval beyond is not to be read.
    chosen = WholeModelEstimator()
    assert not any("barely determined" in note for note in chosen.notes(chinchilla_fit, result))
    few = dataclasses.replace(result, edge_sweeps=0)
    assert any("read approach 3 instead" in note for note in chosen.notes(chinchilla_fit, few))
    assert not any("untested" in note for note in chosen.notes(chinchilla_fit, result))
    grouped = dataclasses.replace(result, discrepancy="quadratic")  # a grouped fit's
    assert any("with quadratic it is untested" in n for n in chosen.notes(chinchilla_fit, grouped))


def test_inside_the_edge_n_star_is_the_least_loss_on_its_isoflop_line(chinchilla_fit):
    budget = 1e20
    result = allocation(chinchilla_fit, [budget])
    params = {n: chinchilla_fit.posterior[n].to_numpy().reshape(-1, 1)
              for n in chinchilla_fit.param_names}  # fmt: skip
    log_n = np.log(result.N.to_numpy()).reshape(-1, 1)
    # A brute-force neighbourhood of every draw's optimum: none lower.
    shifts = np.linspace(-0.5, 0.5, 41)[None, :]
    n = np.exp(log_n + shifts)
    around = chinchilla_fit.log_mean(params, {"N": np.log(n), "D": np.log(budget / (6 * n))})
    at = chinchilla_fit.log_mean(params, {"N": log_n, "D": np.log(budget / (6 * np.exp(log_n)))})
    assert np.all(at <= around.min(axis=1, keepdims=True) + 1e-9)
    np.testing.assert_allclose(np.log(result.loss.to_numpy()).reshape(-1, 1), at, atol=1e-12)
    # The parabola's vertex against a fine search (steps of 1e-4 in log N within +-0.05): the
    # vertex of a smooth valley sampled every 0.02 is off by O(0.02^2) at most, ~4e-4; a
    # vertex step gone wrong (a sign, a neighbour) would be off by up to half a step, 0.01.
    # Every 8th draw (500): the vertex is the same arithmetic for each, and all 4000 took 9 s.
    fine = np.linspace(-0.05, 0.05, 1001)[None, :]
    some = slice(None, None, 8)
    n = np.exp(log_n[some] + fine)
    some_params = {name: value[some] for name, value in params.items()}
    valley = chinchilla_fit.log_mean(some_params, {"N": np.log(n), "D": np.log(budget / (6 * n))})
    best = log_n[some, 0] + fine[0, np.argmin(valley, axis=1)]
    assert np.max(np.abs(best - log_n[some, 0])) < 2e-3


def test_exact_truth_inside_the_interval_in_and_beyond_the_data(chinchilla_fit, truth):
    # The session's default fit of exact-law sweeps (81 runs to 3e21 FLOPs, 1 % noise, seed 1).
    # benchmarks/allocation_whole_model.py --truth held the exact truth 100x beyond in 20 of 20
    # tables; on this one the truth sits 0.2-0.5 in log N inside either end of the interval
    # (measured on two CPUs), far from a knife edge for a fixed seed.
    budgets = np.array([1e20, BEYOND])
    result = allocation(chinchilla_fit, budgets)
    true = np.log(chinchilla_optimum(truth, budgets)["N"])
    low, high = np.quantile(np.log(result.N.to_numpy()).reshape(-1, 2), [0.05, 0.95], axis=0)
    assert np.all((low < true) & (true < high)), (low - true, high - true)


def bent_runs(seed: int):
    """Chinchilla-scale sweeps from the bent truth (N*'s exponent falls with C), 1 % noise."""
    from scalebayes.simulation import isoflop_design, simulate

    design = isoflop_design(CHINCHILLA_BUDGETS)
    return simulate(bent_law(), bent_truth(), design, noise=0.01, seed=seed)


def bent_law():
    prior = "LogNormal(loc=0.0, scale=1.0)"
    return sb.make_law(
        "bent",
        "E + A / N**alpha + B / D**beta + A2 / N**alpha2",
        inputs=["N", "D"],
        priors={name: prior for name in ("E", "A", "alpha", "B", "beta", "A2", "alpha2")},
    )


def bent_truth() -> dict[str, float]:
    from scalebayes.simulation import EPOCH_CHINCHILLA

    # A2 / N^0.7 is 0.4 nats at N = 1e8 and 0.02 at 1e10: it bends N*(C) at small C.
    return {**EPOCH_CHINCHILLA, "A2": 1.6e5, "alpha2": 0.7}


def true_bent_n_star(budget: float) -> float:
    """The bent truth's N* at ``budget``: the library's minimiser on a fit whose draws are the truth."""
    from scalebayes.simulation import isoflop_design, simulate
    from scalebayes.testing import fit_from_draws

    law = bent_law()
    runs = simulate(law, bent_truth(), isoflop_design(CHINCHILLA_BUDGETS[:3]), noise=0.0)
    draws = {k: np.full((1, 2), v) for k, v in {**bent_truth(), "sigma": 0.01}.items()}
    fit = fit_from_draws(law, runs, draws, likelihood=sb.Likelihood(discrepancy="none"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return float(sb.optimal(fit, [budget]).N.to_numpy()[0, 0, 0])


def test_a_bent_truth_100x_beyond_is_held_where_the_law_misses_it():
    # The Chinchilla law fitted (default model, law + GP) to sweeps of a truth it cannot
    # express. Three seeds: a calibrated 90 % interval holds the truth in >= 2 of 3 with
    # probability 0.97. Measured: 3m's intervals hold it with 0.26-0.53 in log N to spare below
    # and 0.5-1.7 above; the law's end 0.10-0.14 below it in all three (it is biased low there,
    # as in benchmarks/allocation_whole_model.py --truth: 10 of 20), so >= 2 misses of 3 shows
    # the truth really does bend beyond what the law can carry.
    true = np.log(true_bent_n_star(BEYOND))
    held = {"3": 0, "3m": 0}
    for seed in (1, 2, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sb.fit(bent_runs(seed), "chinchilla", seed=seed, **CI_FIT)
            for key in held:
                n = sb.optimal(fit, [BEYOND], approach=key).N.to_numpy().ravel()
                low, high = np.quantile(np.log(n), [0.05, 0.95])
                held[key] += bool(low < true < high)
    assert held["3m"] >= 2, held
    assert held["3"] <= 1, held


def test_a_fit_without_a_discrepancy_is_refused(chinchilla_plain_fit):
    with pytest.raises(
        ScalebayesError, match=r"approach 3 already reads this fit's whole model.*'none'"
    ):
        whole_model_optimal(chinchilla_plain_fit, [1e22])
    # Side by side, it is listed as not run, with the reason, and the others go on.
    result = sb.compare_approaches(chinchilla_plain_fit, [1e22], approaches=("3", "3m"))
    assert list(result.results) == ["3"] and "needs the GP" in result.refused["3m"]


def test_runs_without_sweeps_take_the_largest_run_as_the_edge():
    # Sizes and horizons that share no compute budget: each C its own.
    n = np.geomspace(1e8, 1e10, 8)
    d = np.geomspace(2e9, 4e11, 8)[::-1] * np.geomspace(1, 30, 8)
    runs = sb.load_runs(pd.DataFrame({"N": n, "D": d, "loss": 2.0 + 0 * n}))
    edge, source, sweeps = edge_budget(runs)
    assert edge == pytest.approx(float(runs.C.max())) and sweeps == 0
    assert "no isoFLOP sweep" in source


def sweeps_table(valleys: dict[float, bool]) -> pd.DataFrame:
    """Five runs per budget C: a valley centred inside (True) or loss falling with N (False)."""
    rows = []
    for c, valley in valleys.items():
        centre = np.log(np.sqrt(c / 6 / 20))  # 20 tokens per parameter
        for v in np.linspace(-1.0, 1.0, 5):
            n = np.exp(centre + v)
            loss = 2.0 + (0.05 * v**2 if valley else -0.05 * v)
            rows.append({"N": n, "D": c / (6 * n), "loss": loss})
    return pd.DataFrame(rows)


def test_the_edge_is_the_largest_sweep_with_a_valley():
    # A sweep whose least loss is at an end has its whole-model minimum beyond its runs: the
    # edge stays at the largest sweep with a valley, and only those count toward MIN_SWEEPS.
    runs = sb.load_runs(sweeps_table({1e19: True, 1e20: True, 1e21: True, 1e22: False}))
    edge, source, sweeps = edge_budget(runs)
    assert edge == pytest.approx(1e21, rel=1e-6) and sweeps == 3
    assert "3 fitted isoFLOP sweeps with a valley" in source
    # An over-training ladder's chance "sweeps" show no valley: none counts, 3m is not for it.
    ladder = sb.load_runs(sweeps_table({1e19: False, 1e20: False, 1e21: False}))
    edge, source, sweeps = edge_budget(ladder)
    assert edge == pytest.approx(float(ladder.C.max())) and sweeps == 0
    assert "no isoFLOP sweep of the runs shows a valley" in source


def test_an_over_training_ladder_is_not_taken_for_sweeps():
    # Gadre et al.'s kind of ladder: sizes x2 apart, each at 20-640 tokens per parameter (x2
    # apart), so C = 6 r N^2 repeats along (2N, r/4): 3-run "sweeps" by chance, nearly all with
    # their least loss at an end (below ~20 tokens per parameter there are no runs). Counted,
    # they had 3m recommended on an exact law, at 71 [12, 187] tokens per parameter at 1e23
    # FLOPs for a truth of 17 (the law: 15 [7, 34]).
    n, ratio = np.meshgrid(1.1e7 * 2.0 ** np.arange(8), 20 * 2.0 ** np.arange(6))
    design = pd.DataFrame({"N": n.ravel(), "D": (n * ratio).ravel()})
    design = design[6 * design.N * design.D <= 1e21]
    runs = sb.simulate("chinchilla", EPOCH_CHINCHILLA, design, noise=0.01, seed=0)
    chance = find_budgets(runs, min_budgets=1, edge_sweeps="keep")
    assert chance.n_budgets >= MIN_SWEEPS  # what 3m counted before
    _, _, sweeps = edge_budget(runs)
    assert sweeps < MIN_SWEEPS


def test_side_by_side_and_the_frontier_plot(chinchilla_fit, tmp_path):
    result = sb.compare_approaches(chinchilla_fit, [1e22, 1e23], approaches=("3", "3m"))
    assert set(result.results) == {"3", "3m"}
    assert [(p.first, p.second) for p in result.pairs] == [("3", "3m")]
    # The same posteriors on a grid for the figure: 3m's edge and trend, nothing refitted.
    grid = result.over(chinchilla_fit, [1e21, 1e22, 1e23])
    at = {"budget": 1e22}
    np.testing.assert_allclose(grid.results["3m"].N.sel(at), result.results["3m"].N.sel(at))
    assert "3m" in result.summary()


def test_the_command_line_names_the_edge(chinchilla_fit, tmp_path, capsys):
    path = str(sb.save_fit(chinchilla_fit, tmp_path / "fit.nc"))
    assert main(["optimal", path, "--compute", "1e21", "1e24", "--approach", "3m"]) == 0
    out, err = capsys.readouterr()
    assert "whole fitted model" in out and "carried on beyond 3e+21 FLOPs" in out
    assert "note: N* is the whole model's own up to 3e+21 FLOPs" in out
    assert "local trend" in err  # 100x beyond: the extrapolation warning says what is carried


def test_the_demo_sets_approach_3m_beside_the_law(chinchilla_fit, monkeypatch):
    from scalebayes.demo import run_demo

    monkeypatch.setattr("scalebayes.demo.fit", lambda *args, **kwargs: chinchilla_fit)  # no NUTS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        demo = run_demo()
    text = str(demo)
    assert demo.whole_model.edge_sweeps == len(CHINCHILLA_BUDGETS)
    tail = text[text.index("approach 3m") :].splitlines()
    assert tail[2].startswith("5.76e+23") and tail[3].startswith("1e+25")
    assert tail[4].startswith("truth inside the 90% interval for") and " of 6 " in tail[4]
