"""predict / optimal / chance / plan on the command line, on a saved fit with known draws."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from tests.known_fits import chinchilla_known, ladder

import scalebayes as sb
from scalebayes.cli import main
from scalebayes.testing import fit_from_draws, jittered_draws


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return str(sb.save_fit(chinchilla_known(), tmp_path_factory.mktemp("fits") / "known.nc"))


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


DIAGNOSTICS = "diagnostics: max R-hat"


def test_predict_table_ends_with_diagnostics(saved, capsys):
    status, out, _ = run(capsys, "predict", saved, "--N", "70e9", "1e9", "--D", "1.4e12", "2e10")
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[-1].startswith(DIAGNOSTICS)
    assert "90% credible" in out and "90% predictive" in out
    assert "588x beyond the largest C seen" in out
    # Beyond the data, a fit without a discrepancy says what its intervals assume.
    assert "note: beyond the fitted runs these intervals trust the law's shape" in out
    _, inside, _ = run(capsys, "predict", saved, "--N", "1e9", "--D", "2e10")
    assert "note: beyond" not in inside


def test_predict_json_and_csv_agree_with_the_library(saved, capsys):
    status, out, _ = run(capsys, "predict", saved, "--N", "70e9", "--D", "1.4e12", "--json")
    assert status == 0
    payload = json.loads(out)
    row = payload["rows"][0]
    expected = sb.predict(chinchilla_known(), N=70e9, D=1.4e12).summary(probs=(0.9,))
    assert row["median"] == pytest.approx(expected.loc[0, "median"])
    assert row["credible_lb"] == pytest.approx(expected.loc[0, "eti90_lb"])
    assert row["predictive_lb"] < row["credible_lb"]  # noise widens the interval
    assert payload["diagnostics"]["line"].startswith(DIAGNOSTICS)
    status, out, _ = run(capsys, "predict", saved, "--N", "70e9", "--C", "5.88e23", "--csv")
    lines = out.strip().splitlines()
    assert lines[0].startswith("N,D,C,median,credible_lb")
    assert lines[-1].startswith(f"# {DIAGNOSTICS}")


def test_predict_reads_planned_runs_from_a_table(saved, capsys, tmp_path):
    planned = tmp_path / "planned.csv"
    pd.DataFrame({"params": [1e9, 7e10], "tokens": [2e10, 1.4e12]}).to_csv(planned, index=False)
    status, out, _ = run(capsys, "predict", saved, "--runs", str(planned), "--json")
    assert status == 0
    assert [r["N"] for r in json.loads(out)["rows"]] == [1e9, 7e10]
    status, _, err = run(capsys, "predict", saved, "--runs", str(planned), "--N", "1e9")
    assert status == 2 and "not both" in err


def test_optimal(saved, capsys):
    status, out, _ = run(capsys, "optimal", saved, "--compute", "5.76e23", "1e25")
    assert status == 0
    assert "tokens/param" in out and out.strip().splitlines()[-1].startswith(DIAGNOSTICS)
    status, out, _ = run(capsys, "optimal", saved, "--compute", "5.76e23", "--json")
    row = json.loads(out)["rows"][0]
    expected = chinchilla_known().posterior  # draws around Epoch's constants
    assert row["N_lb"] < row["N_median"] < row["N_ub"]
    alpha, beta = float(expected["alpha"].median()), float(expected["beta"].median())
    assert row["exponent_N_median"] == pytest.approx(beta / (alpha + beta), rel=0.02)


def test_chance_and_plan(saved, capsys):
    status, out, _ = run(
        capsys, "chance", saved, "--N", "7e10", "--D", "1.4e12", "--target", "2.0", "--json"
    )
    assert status == 0
    row = json.loads(out)["rows"][0]
    assert 0 < row["p_mean"] < 1 and 0 < row["p_new_run"] < 1
    status, out, _ = run(
        capsys, "plan", saved, "--target", "2.0", "--inference-tokens", "0", "1e13"
    )
    assert status == 0
    assert "cheapest run" in out and out.strip().splitlines()[-1].startswith(DIAGNOSTICS)
    status, out, _ = run(capsys, "plan", saved, "--target", "2.0", "--prob", "0.5", "--csv")
    frame = pd.read_csv(io.StringIO(out), comment="#")
    assert frame.loc[0, "p_new_run"] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["optimal", "{fit}", "--compute", "-1"], "positive finite FLOP counts"),
        (["optimal", "{fit}", "--compute=-1e24"], "positive finite FLOP counts"),
        (["optimal", "{fit}", "--compute", "1e24", "0"], "positive finite FLOP counts"),
        (
            ["chance", "{fit}", "--N", "7e9", "--D", "2e12", "--target", "1.2"],
            "below the law's floor",
        ),
        (["plan", "{fit}", "--target", "1.2"], "below the law's floor"),
        (["plan", "{fit}", "--target", "2.0", "--prob", "1.5"], "prob"),
        (["predict", "{fit}", "--N", "-5", "--D", "1e12"], "positive finite"),
        (["predict", "{fit}", "--N", "7e9"], "give two of N, D, C"),
        (["predict", "missing.nc", "--N", "7e9", "--D", "1e12"], "no such file"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(saved, capsys, argv, message):
    status, _, err = run(capsys, *(a.replace("{fit}", saved) for a in argv))
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_law_s_allocation_points_to_approach_2_only_where_the_runs_form_sweeps(saved, capsys):
    """On isoFLOP sweeps the law's table says approach 2 measures the optima (the allocation
    backtest's finding); on runs with no two budgets alike it says nothing of sweeps."""
    _, out, _ = run(capsys, "optimal", saved, "--compute", "1e22")
    assert "note: these runs form 3 isoFLOP sweeps: approach 2 (--approach 2)" in out
    spread = sb.simulate(
        "chinchilla",
        sb.simulation.EPOCH_CHINCHILLA,
        pd.DataFrame({"N": np.geomspace(1e8, 1e10, 12), "D": np.geomspace(3e9, 2e11, 12)}).eval(
            "C = 6 * N * D"
        ),
        noise=0.01,
        seed=0,
    )
    draws = jittered_draws({**sb.simulation.EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=50)
    text = str(sb.allocation_table(fit_from_draws("chinchilla", spread, draws), [1e22]))
    assert "tokens/param" in text and "isoFLOP sweeps" not in text
    # Sweeps all on one side of their optimum (least loss at the largest model) give approach
    # 2 no valley to measure: it would refuse them, so they are not pointed to either.
    one_sided = pd.DataFrame(
        [(c, n) for c in (1e18, 1e19, 1e20) for n in np.geomspace(1e5, 4e5, 3) * (c / 1e18) ** 0.5],
        columns=["C", "N"],
    ).eval("D = C / (6 * N)")
    runs = sb.simulate("chinchilla", sb.simulation.EPOCH_CHINCHILLA, one_sided, noise=0.0, seed=0)
    text = str(sb.allocation_table(fit_from_draws("chinchilla", runs, draws), [1e22]))
    assert "tokens/param" in text and "isoFLOP sweeps" not in text


def test_optimal_refuses_a_law_without_n_and_d(capsys, tmp_path):
    draws = jittered_draws(
        {"E": 1.8, "A": 2000.0, "alpha": 0.15, "sigma": 0.01}, chains=2, draws=10
    )
    path = str(sb.save_fit(fit_from_draws("power_c", ladder(), draws), tmp_path / "power_c.nc"))
    status, _, err = run(capsys, "optimal", path, "--compute", "1e24")
    assert status == 2 and "both N" in err


def test_help_has_worked_examples(capsys):
    for command in ("predict", "optimal", "chance", "plan"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert f"scalebayes {command} fit.nc" in capsys.readouterr().out


def test_numbers_in_tables_are_finite(saved, capsys):
    _, out, _ = run(capsys, "optimal", saved, "--compute", "1e22", "1e26", "--json")
    rows = json.loads(out)["rows"]
    assert all(np.isfinite(v) for row in rows for k, v in row.items() if k != "extrapolation")
    assert rows[1]["extrapolation"].endswith("seen") and rows[1]["beyond"] > 100


def test_plan_of_a_gp_fit_says_what_the_gp_adds(chinchilla_fit, capsys, tmp_path):
    """The session's default fit has the GP: plan is the law's and notes the GP's probability."""
    path = str(sb.save_fit(chinchilla_fit, tmp_path / "gp.nc"))
    status, out, _ = run(capsys, "plan", path, "--target", "1.9")
    assert status == 0 and "the plan is the law's alone" in out
    status, out, _ = run(capsys, "plan", path, "--target", "1.9", "--json")
    row = json.loads(out)["rows"][0]
    assert row["p_new_run"] == pytest.approx(0.9, abs=1e-6) and 0 < row["p_whole_model"] < 1
