"""Approach 1: learning-curve tables reduced to finished runs, the envelope, and a known truth.

One NUTS fit (2 chains x 300 draws, 11 sizes x 6 horizons; --run-slow: its compile alone is
15-20 s on 2 cores); everything else is NumPy and runs in a few seconds.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import scalebayes as sb
from conftest import SHARED_DATA
from scalebayes.allocation.curve_model import curve_data, find_sizes
from scalebayes.allocation.envelope import (
    LEVELS,
    MIN_SPAN_DECADES,
    _power_law,
    check_measured,
    envelope,
    measured_levels,
)
from scalebayes.simulation import EPOCH_CHINCHILLA as TRUTH

TRUE_A = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
MISFITTING = SHARED_DATA / "misfitting-curves" / "scaling_results.csv"


def finals(seed: int = 0, noise: float = 0.01) -> sb.Runs:
    """Finished runs of 11 sizes (5e7-1.2e9) at 6 horizons each (2-200 tokens/param)."""
    sizes = np.geomspace(5e7, 1.2e9, 11)
    design = pd.DataFrame(
        [(n, n * t) for n in sizes for t in np.geomspace(2, 200, 6)], columns=["N", "D"]
    )
    return sb.simulate("chinchilla", TRUTH, design, noise=noise, seed=seed)


# --- learning-curve tables --------------------------------------------------------------------


def curve_table() -> pd.DataFrame:
    """Three runs of one size: finished (4 checkpoints), stopped early, one with a repeated step."""
    rows = []
    for run, steps, end in (("a", [1, 2, 3, 4], 4), ("b", [1, 2], 4), ("c", [1, 2, 2], 2)):
        for step in steps:
            rows.append({"run": run, "step": step, "end": end, "N": 1e8,
                         "D": 1e9 * step, "loss": 4.0 - 0.1 * step})  # fmt: skip
    return pd.DataFrame(rows)


def test_load_curves_keeps_each_finished_runs_final_checkpoint_and_says_why():
    curves = sb.load_curves(curve_table(), run="run", step="step", end="end")
    assert len(curves.runs) == 1 and curves.runs.D[0] == 4e9 and curves.n_runs == 3
    assert curves.checkpoints == 9
    text = str(curves)
    assert "1 finished runs from 9 checkpoints of 3 runs" in text
    assert "1 runs with a repeated step" in text and "1 runs stopped before" in text


def test_load_curves_keep_best_keeps_each_points_tuned_run_and_the_cli_passes_it(tmp_path):
    """Two learning rates per size and horizon: keep_best (CLI --keep-best) keeps the finished
    run of least loss at each (N, D), and says so; without it both stay."""
    rows = [{"run": f"{n:g}-{lr}", "step": step, "end": 2, "N": n, "D": 1e9 * step * n / 1e8,
             "loss": 4.0 - 0.1 * step - 0.05 * np.log10(n) + (0.2 if lr == "hot" else 0.0)}
            for n in (1e8, 2e8, 4e8) for lr in ("hot", "tuned") for step in (1, 2)]  # fmt: skip
    table = pd.DataFrame(rows)
    both = sb.load_curves(table, run="run", step="step", end="end")
    best = sb.load_curves(table, run="run", step="step", end="end", keep_best=True)
    assert (len(both.runs), len(best.runs)) == (6, 3)
    tuned = table[(table.step == 2) & table.run.str.endswith("tuned")]
    np.testing.assert_allclose(np.sort(best.runs.table["loss"]), np.sort(tuned["loss"]))
    assert "3 (N, D) points reached by several runs" in str(both)
    assert "least loss each was kept" in str(best) and "--keep-best" not in str(best)
    assert "--keep-best" in str(both) and "was kept" not in str(both)
    path = tmp_path / "curves.csv"
    table.to_csv(path, index=False)
    from scalebayes.cli import build_parser
    from scalebayes.cli._common import read_runs

    args = build_parser().parse_args(
        ["fit", str(path), "--run-id", "run", "--step", "step", "--end", "end", "--keep-best"]
    )
    assert len(read_runs(args, str(path))) == 3


def test_load_curves_cooled_checkpoints_count_and_bad_steps_name_the_line(tmp_path):
    table = curve_table().assign(cooled=lambda t: (t.run == "b") & (t.step == 2))
    curves = sb.load_curves(table, run="run", step="step", end="end", cooled="cooled")
    assert sorted(curves.runs.D) == [2e9, 4e9]  # run b stopped early, but cooled at step 2
    path = tmp_path / "curves.csv"
    table.assign(step=table.step.astype(object).where(table.index != 3, "x")).to_csv(
        path, index=False
    )
    with pytest.raises(sb.RunsFileError, match=r"line 5.*'step'.*expected a number"):
        sb.load_curves(path, run="run", step="step")


def test_misfitting_curves_drop_corrupted_and_mid_schedule_checkpoints():
    if not MISFITTING.is_file():
        pytest.skip(f"{MISFITTING} not present (shared data lives beside the checkout)")
    table = pd.read_csv(
        MISFITTING, dtype={c: float for c in ("C", "C_no_emb", "C_6ND", "C_6ND_no_emb")}
    )
    curves = sb.load_curves(table, run=["sweep", "model", "total_steps", "peak_lr"],
                            step="current_steps", end="total_steps",
                            columns={"N": "N", "D": "D", "C": "C", "loss": "loss"})  # fmt: skip
    # The data's README: 240 runs; 16 corrupted groups repeat a step; 2 have a checkpoint
    # labelled past their schedule's end; every other run's last checkpoint is at its end.
    assert (curves.n_runs, len(curves.runs)) == (240, 222)
    assert list(curves.dropped.values()) == [16, 2, 0]


# --- the envelope -----------------------------------------------------------------------------


def test_envelope_of_the_true_curves_gives_the_true_exponent():
    # The quadratic through the least size and three neighbours each side (spaced 0.32 in log N)
    # follows the valley between sizes: with the truth's own curves its a is within 0.01 of
    # the truth (the discrete argmin moves in steps of a size).
    runs = finals(noise=0.0)
    sizes = find_sizes(runs)
    ref = float(curve_data(sizes).extra["log_d_ref"])
    curves = {
        "E_s": (TRUTH["E"] + TRUTH["A"] / sizes.N ** TRUTH["alpha"])[None],
        "log_B_s": np.full((1, sizes.n_sizes), np.log(TRUTH["B"]) - TRUTH["beta"] * ref),
        "beta": np.array([TRUTH["beta"]]),
    }
    compute = np.geomspace(runs.C.min(), runs.C.max(), LEVELS)
    log_n, _, readable = envelope(curves, ref, sizes, compute, 6.0)
    kept = measured_levels(log_n, readable, sizes, compute, 6.0)
    assert kept.sum() >= 20
    a, _ = _power_law(np.log(compute[kept]), log_n[..., kept])
    assert a[0] == pytest.approx(TRUE_A, abs=0.01)


@pytest.mark.parametrize("n_sizes", [4, 5])
def test_few_sizes_narrow_the_vertex_window_instead_of_wrapping_around(n_sizes):
    # Seven sizes per vertex need seven sizes: with fewer the window narrows (three sizes of
    # 4, five of 5) rather than index past the ends, and every measured level's N* stays
    # inside the sizes; the truth's own curves still give its a.
    sizes_n = 5e7 * 10.0 ** (0.138 * np.arange(n_sizes))
    design = pd.DataFrame(
        [(n, n * t) for n in sizes_n for t in np.geomspace(2, 200, 6)], columns=["N", "D"]
    )
    runs = sb.simulate("chinchilla", TRUTH, design, noise=0.0)
    sizes = find_sizes(runs)
    ref = float(curve_data(sizes).extra["log_d_ref"])
    curves = {
        "E_s": (TRUTH["E"] + TRUTH["A"] / sizes.N ** TRUTH["alpha"])[None],
        "log_B_s": np.full((1, n_sizes), np.log(TRUTH["B"]) - TRUTH["beta"] * ref),
        "beta": np.array([TRUTH["beta"]]),
    }
    compute = np.geomspace(runs.C.min(), runs.C.max(), LEVELS)
    log_n, _, readable = envelope(curves, ref, sizes, compute, 6.0)
    kept = measured_levels(log_n, readable, sizes, compute, 6.0)
    assert kept.sum() >= 3
    x = np.log(sizes.N)
    assert (log_n[..., kept] >= x[0]).all() and (log_n[..., kept] <= x[-1]).all()
    a, _ = _power_law(np.log(compute[kept]), log_n[..., kept])
    assert a[0] == pytest.approx(TRUE_A, abs=0.01)


def least_squares_curves(runs: sb.Runs, ref: float) -> dict[str, np.ndarray]:
    """Each size's E_s + B_s (D/D_c)^-beta by least squares on log loss (one 'draw')."""
    from scipy.optimize import least_squares

    sizes = find_sizes(runs)
    size, log_d, y = sizes.size, np.log(sizes.D) - ref, np.log(sizes.loss)
    n = sizes.n_sizes

    def residual(theta: np.ndarray) -> np.ndarray:
        e, log_b, beta = theta[:n], theta[n : 2 * n], theta[-1]
        return np.log(e[size] + np.exp(log_b[size] - beta * log_d)) - y

    start = np.r_[0.8 * sizes.loss.min() * np.ones(n), np.full(n, np.log(0.5)), 0.3]
    theta = least_squares(residual, start).x
    return {"E_s": theta[None, :n], "log_B_s": theta[None, n : 2 * n], "beta": theta[-1:]}


def test_levels_chosen_along_a_line_do_not_flatten_the_exponent():
    """The median a over 200 noisy tables is the truth's: levels are not chosen by their noise.

    Least-squares curves stand in for posterior draws (NumPy and SciPy only). Choosing each
    level by its own argmin (inside the sizes, at most 5 % of draws at an end) kept, at both
    ends of the compute range, the levels whose noise pushed N* inwards: on these 200 tables
    the median a was 0.481 for a truth of 0.513. Along a first line it is 0.515. Per table a's
    sd is 0.066 (skewed up: the mean is 0.526), so the median of 200 has sd about 0.006, and
    0.015 is 2.5 of them; the old choice sat 5 of them outside.
    """
    estimates = []
    for seed in range(200):
        runs = finals(seed=seed)
        sizes = find_sizes(runs)
        ref = float(curve_data(sizes).extra["log_d_ref"])
        curves = least_squares_curves(runs, ref)
        compute = np.geomspace(runs.C.min(), runs.C.max(), LEVELS)
        log_n, _, readable = envelope(curves, ref, sizes, compute, 6.0)
        kept = measured_levels(log_n, readable, sizes, compute, 6.0)
        estimates.append(_power_law(np.log(compute[kept]), log_n[..., kept])[0][0])
    assert np.median(estimates) == pytest.approx(TRUE_A, abs=0.015)


def test_too_few_sizes_is_one_clear_error():
    runs = finals().subset(finals().N < 7e7)  # two sizes
    with pytest.raises(sb.EnvelopeError, match=r"at least 3 model sizes.*has 2") as err:
        sb.fit_envelope(runs)
    assert len(str(err.value).splitlines()) == 1


def test_runs_that_repeat_their_data_are_not_points_of_the_envelope():
    # A run on 4 epochs of its unique tokens has a higher loss than its (N, D) on fresh data:
    # the envelope of fresh-data runs leaves it out, and says how many it left out.
    fresh = finals(noise=0.0).to_frame()[["N", "D", "loss"]]
    fresh["U"] = fresh["D"]
    repeated = fresh.assign(U=fresh["D"] / 4, loss=fresh["loss"] - 0.5)  # lower: it would win
    runs = sb.load_runs(pd.concat([fresh, repeated], ignore_index=True))
    sizes, alone = find_sizes(runs), find_sizes(sb.load_runs(fresh))
    assert sizes.repeated == len(fresh) and sizes.short == alone.short
    assert np.array_equal(sizes.runs, alone.runs) and np.allclose(sizes.loss, alone.loss)
    assert f"left out {len(fresh)} runs that repeat their data (D > U)" in str(sizes)
    with pytest.raises(sb.EnvelopeError, match=r"has 0 .*66 runs that repeat their data"):
        find_sizes(sb.load_runs(repeated))


def test_measured_levels_must_span_a_factor_two_of_compute():
    """Three levels 0.16 decades apart (as a 5-size ladder gave, a = 1.10 for 0.51) are refused."""
    compute = np.geomspace(1e17, 1e21, LEVELS)  # 4 decades, 0.068 decades a step
    narrow = np.zeros(LEVELS, bool)
    narrow[20:23] = True  # 3 levels, 0.14 decades
    with pytest.raises(
        sb.EnvelopeError, match=r"only over .* \(0\.14 decades; at least 0\.3"
    ) as err:
        check_measured(narrow, compute, "ladder.csv")
    assert "ladder.csv" in str(err.value) and len(str(err.value).splitlines()) == 1
    apart = narrow.copy()
    apart[20 + int(np.ceil(MIN_SPAN_DECADES / 0.068))] = True  # the same three and one further out
    check_measured(apart, compute, "ladder.csv")
    with pytest.raises(sb.EnvelopeError, match="measured at 2 of 60"):
        check_measured(narrow & (np.arange(LEVELS) < 22), compute, "ladder.csv")


@pytest.mark.slow  # 25 s on the shared 2-core machine, most of it compiling the curves' model
def test_known_truth_exponent_inside_the_90_percent_interval():
    """Seeded (seed 2, chosen before the method was settled: it missed under an earlier one).

    On seeds 0-7 of this design (11 sizes x 6 horizons, 1 % noise, 2 x 300 draws) a's 90 %
    interval held the truth 0.513 in 7 of 8, medians 0.39-0.58: the intervals are wide
    (+-0.08-0.17) and centred low by about 0.06, which the posterior-mean curves share (so
    it is the curves' fit, not the envelope's arithmetic). The data's noise, not the method,
    decides a miss here only about 1 time in 8.
    """
    fit = sb.fit_envelope(finals(seed=2), chains=2, draws=300, warmup=300, seed=2)
    low, high = np.quantile(fit.a, [0.05, 0.95])
    assert low < TRUE_A < high
    assert high - low < 0.5  # informative: the prior alone gives no envelope at all
    alloc = fit.optimal([1e19, 1e24])
    assert np.isfinite(alloc.N).all() and (alloc.tokens_per_param > 0).all()
    assert np.isfinite(alloc.loss.isel(budget=0)).all()  # inside the runs' compute
    assert np.isnan(alloc.loss.isel(budget=1)).all()  # no law for L* beyond them
    assert "approach 1" in str(fit) and "tokens/param" in str(fit)
    # Health with margins (2 x 300 draws): broken fits read R-hat > 1.1, dozens of divergences.
    d = fit.diagnostics
    assert d.max_rhat < 1.05 and d.n_divergent <= 10, d


def test_load_curves_errors_name_the_file_and_its_lines(tmp_path):
    path = tmp_path / "curves.csv"
    table = curve_table()
    table.loc[3, "loss"] = -1.0  # line 5, the final checkpoint of run a
    table.to_csv(path, index=False)
    with pytest.raises(sb.RunsFileError, match=r"curves.csv: line 5, column 'loss'"):
        sb.load_curves(path, run="run", step="step", end="end")


def test_load_curves_reads_only_the_rows_where_asked_and_names_their_lines(tmp_path):
    path = tmp_path / "curves.csv"
    table = curve_table().assign(lab=lambda t: np.where(t.run == "a", "x", "y"))
    table.loc[3, "loss"] = -1.0  # line 5, run a's final checkpoint: read only where lab = x
    table.to_csv(path, index=False)
    # Runs b and c (lab y) are both unfinished: of the 3 runs only these 2 were read.
    with pytest.raises(sb.RunsFileError, match=r"where lab=y: no finished run among 2 runs"):
        sb.load_curves(path, run="run", step="step", end="end", where={"lab": "y"})
    with pytest.raises(sb.RunsFileError, match=r"curves.csv where lab=x: line 5, column 'loss'"):
        sb.load_curves(path, run="run", step="step", end="end", where={"lab": "x"})


def test_load_curves_warnings_name_the_files_lines_and_c_may_be_kept(tmp_path):
    path = tmp_path / "curves.csv"
    table = curve_table().assign(C=lambda t: 6 * t.N * t.D)
    table.loc[3, "C"] *= 3  # line 5, run a's final checkpoint: C off 6 N D
    table.to_csv(path, index=False)
    with pytest.raises(sb.RunsFileError, match=r"curves.csv: line 5, column 'C': C differs"):
        sb.load_curves(path, run="run", step="step", end="end")
    with pytest.warns(sb.DataWarning, match=r"^.*curves.csv: line 5, column 'C': C differs"):
        curves = sb.load_curves(path, run="run", step="step", end="end", accept_inconsistent_c=True)
    assert curves.runs.C[0] == pytest.approx(3 * 6 * 1e8 * 4e9)


def test_a_curve_table_read_as_runs_says_so_and_how_to_read_it():
    # 6 runs (3 sizes x 2 data sets) of 30 checkpoints each, a run id column beside them.
    rows = [{"run_name": f"{n:.0e}-{data}", "data": data, "N": n, "D": n * 20 * step / 30,
             "loss": 2 + 1 / step} for n in (1e8, 2e8, 4e8) for data in ("c4", "oscar")
            for step in range(1, 31)]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sb.DataWarning)
        sb.load_runs(pd.DataFrame(rows))
    said = [str(w.message) for w in caught if "learning curves" in str(w.message)]
    assert len(said) == 1
    assert re.match(r"<DataFrame>: rows 0, 1, .*: these look like checkpoints of learning curves: "
                    r"column 'run_name' labels 6 runs of 30 rows.*--run-id run_name", said[0])  # fmt: skip
    # Runs named by no one column: a size column is no run id (its runs reach the same D).
    horizons = [{"model": f"{n:.0e}", "N": n, "D": n * horizon * step / 30, "loss": 2 + 1 / step}
                for n in (1e8, 2e8, 4e8) for horizon in (10, 20) for step in range(1, 31)]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sb.DataWarning)
        sb.load_runs(pd.DataFrame(horizons))
    said = [str(w.message) for w in caught if "learning curves" in str(w.message)]
    assert len(said) == 1 and "'model'" not in said[0], said
    assert "3 model sizes with 60 rows each" in said[0]
    assert "--run-id and the columns that together name a run" in said[0]
    # Columns that with N name the runs ((Mis)Fitting's horizon and learning rate) are offered,
    # and the duplicate (N, D) of checkpoints is not said again as duplicate runs.
    named = [{**row, "horizon": h, "lr": lr, "loss": row["loss"] + lr}
             for row, h in zip(horizons, np.repeat([10, 20] * 3, 30), strict=True)
             for lr in (1e-3, 2e-3)]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sb.DataWarning)
        sb.load_runs(pd.DataFrame(named))
    said = [str(w.message) for w in caught]
    assert (
        len(said) == 1
        and "--run-id N horizon lr (sb.load_curves(..., run=['N', 'horizon', 'lr']))" in said[0]
    ), said
    curves = sb.load_curves(pd.DataFrame(named), run=["N", "horizon", "lr"])
    assert len(curves.runs) == 12
    # An over-training ladder: a size's few horizons are runs, said nothing of.
    ladder = [{"model": f"{n:.0e}", "N": n, "D": n * t, "loss": 2 + 1 / t}
              for n in (1e8, 2e8, 4e8) for t in (10, 20, 40, 80, 160, 320)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", sb.DataWarning)
        sb.load_runs(pd.DataFrame(ladder))
