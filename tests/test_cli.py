"""The CLI: thin commands over the library, clear errors, fast --help."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import CI_FIT

from scalebayes.cli import main

SMALL = [
    "--chains",
    str(CI_FIT["chains"]),
    "--warmup",
    str(CI_FIT["warmup"]),
    "--draws",
    str(CI_FIT["draws"]),
    "--quiet",
]


@pytest.fixture(scope="module")
def runs_csv(synthetic_runs, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    synthetic_runs.to_frame()[["N", "D", "loss"]].rename(
        columns={"N": "params", "D": "tokens", "loss": "val_loss"}
    ).to_csv(path, index=False)
    return path


def test_fit_prints_table_and_diagnostics_and_saves(runs_csv, tmp_path, capsys):
    out = tmp_path / "fit.nc"
    assert (
        main(
            ["fit", str(runs_csv), "--law", "chinchilla", "--seed", "1", "--out", str(out), *SMALL]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for needle in (
        "alpha",
        "90% interval",
        "R-hat",
        "diagnostics:",
        "divergent",
        f"saved to {out}",
    ):
        assert needle in printed
    assert out.is_file()
    assert main(["show", str(out)]) == 0
    assert "diagnostics:" in capsys.readouterr().out


def test_fit_json(runs_csv, capsys):
    assert main(["fit", str(runs_csv), "--json", "--seed", "1", *SMALL]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["law"] == "chinchilla"
    # the default discrepancy is the GP: its noise scales and amplitude, not its 36 weights
    assert set(report["params"]) == {
        *("E", "A", "B", "alpha", "beta"),
        *("sigma", "sigma_law", "gp_amplitude"),
    }
    assert "max_rhat" in report["diagnostics"]


def test_strict_fails_on_poor_diagnostics(runs_csv, synthetic_runs, monkeypatch, capsys):
    """--strict exits 1 when the fit's diagnostics fail, and the table says CHECK.

    The mechanism, not a sampler: the fit is replaced by draws whose chains disagree (two
    chains 10 posterior sd apart, R-hat far above any threshold), so the test needs no
    compile and cannot land on either side of a knife edge.
    """
    import numpy as np

    import scalebayes.fitting
    from scalebayes.testing import fit_from_draws, jittered_draws

    truth = {"E": 1.8, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.28, "sigma": 0.01}
    draws = jittered_draws(truth, chains=2, draws=200, rel_sd=0.01, seed=0)
    draws["alpha"] = draws["alpha"] * np.array([[1.0], [1.1]])  # the chains disagree
    unhealthy = fit_from_draws("chinchilla", synthetic_runs, draws)
    monkeypatch.setattr(scalebayes.fitting, "fit", lambda *args, **kwargs: unhealthy)
    code = main(["fit", str(runs_csv), "--strict", "--quiet"])
    assert code == 1
    assert "CHECK" in capsys.readouterr().out
    assert main(["fit", str(runs_csv), "--quiet"]) == 0  # without --strict: a warning only


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "no_such_file.csv"], "no_such_file.csv"),
        (["fit", "{runs}", "--law", "no_such_law"], "no_such_law"),
        (["fit", "{runs}", "--prior", "gamma=Normal(loc=0, scale=1)"], "gamma"),
        (["fit", "{runs}", "--prior", "alpha"], "NAME=VALUE"),
        (["fit", "{runs}", "--df", "many"], "--df"),
        (["show", "missing.nc"], "no such file"),
        (["laws", "nonexistent"], "nonexistent"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, runs_csv, capsys):
    argv = [a.replace("{runs}", str(runs_csv)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("scalebayes: error:") and message in err[-1]


def test_laws_and_env(capsys):
    assert main(["laws"]) == 0
    listing = capsys.readouterr().out
    for name in ("chinchilla", "chinchilla_tied", "kaplan", "power_n", "power_d", "power_c"):
        assert name in listing
    assert main(["laws", "chinchilla", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chinchilla"]["formula"]
    assert main(["env"]) == 0
    assert "float64" in capsys.readouterr().out


def test_help_is_fast_and_imports_no_jax():
    code = "import sys, scalebayes.cli as c; c.build_parser(); assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scalebayes", "--help"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0 and "demo" in done.stdout
    # Target is < 1 s; 3 s leaves room for a loaded CI machine while still catching a JAX import (~4 s).
    assert elapsed < 3.0


def test_console_script_runs_demo_help():
    # The console script installed beside this interpreter (the venv need not be on PATH).
    script = Path(sys.executable).parent / "scalebayes"
    done = subprocess.run([str(script), "demo", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "synthetic" in done.stdout.lower()


def test_discrepancy_defaults_auto_except_for_compare():
    """Fits default to auto (the GP for N, D laws); compare to none, so laws are compared as laws."""
    from scalebayes.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["fit", "runs.csv"]).discrepancy == "auto"
    assert parser.parse_args(["backtest", "runs.csv"]).discrepancy == "auto"
    compare = parser.parse_args(["compare", "runs.csv", "--laws", "chinchilla", "kaplan"])
    assert compare.discrepancy == "none"


@pytest.mark.parametrize("argv", [["fit", "runs.csv"], ["demo"], ["plot", "fit.nc"],
                                  ["report", "fit.nc"]])  # fmt: skip
def test_every_written_file_takes_o_for_out(argv):
    from scalebayes.cli import build_parser

    assert build_parser().parse_args([*argv, "-o", "there"]).out == "there"


@pytest.mark.parametrize("argv", [["optimal", "fit.nc", "--compute", "1e22"],
                                  ["plot", "fit.nc", "-o", "f.png"], ["report", "fit.nc", "-o", "r"]])  # fmt: skip
def test_commands_whose_approaches_sample_take_quiet(argv):
    from scalebayes.cli import build_parser

    assert build_parser().parse_args([*argv, "--quiet"]).quiet


def test_keep_best_reaches_every_command_that_reads_runs():
    from scalebayes.cli import build_parser

    for command in (["fit"], ["backtest"], ["compare", "--laws", "chinchilla"]):
        args = build_parser().parse_args([command[0], "runs.csv", *command[1:], "--keep-best"])
        assert args.keep_best


def test_discrepancy_choices_are_the_library_kinds():
    """--discrepancy's choices are spelled out for a fast --help; they must be the library's."""
    from scalebayes.cli import DISCREPANCY_NAMES
    from scalebayes.discrepancy import KINDS

    assert tuple(KINDS) == DISCREPANCY_NAMES


def test_parameter_table_gives_every_meaning_and_the_truth():
    """The fit's text form (what `fit`, `show` and `demo` print) is a library function."""
    from tests.known_fits import ladder

    import scalebayes as sb
    from scalebayes.simulation import EPOCH_CHINCHILLA
    from scalebayes.testing import fit_from_draws, jittered_draws

    draws = jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=100)
    fit = fit_from_draws("chinchilla", ladder(), draws)
    header, *rows = sb.parameter_table(fit, truth={"alpha": 0.348}).splitlines()
    assert "90% interval" in header and "truth" in header and header.endswith("meaning")
    assert [row.split()[0] for row in rows] == list(fit.summary().index)
    docs = fit.param_docs()
    assert all(row.endswith(docs[row.split()[0]]) for row in rows)
    assert "0.348" in next(row for row in rows if row.startswith("alpha"))
    assert "truth" not in sb.parameter_table(fit).splitlines()[0]


def test_fit_reads_a_learning_curve_table_as_its_finished_runs(tmp_path, capsys):
    import pandas as pd

    from scalebayes.cli import build_parser
    from scalebayes.cli._common import read_runs

    # Two sizes x two horizons, four checkpoints each; one run stopped at half its schedule.
    rows = []
    for n in (1e8, 2e8):
        for end in (4, 8):
            stop = 4 if (n, end) == (2e8, 8) else end
            for step in range(1, stop + 1):
                rows.append({"run": f"{n:g}-{end}", "step": step, "end": end, "N": n,
                             "D": 1e9 * step, "loss": 4.0 - 0.1 * step})  # fmt: skip
    path = tmp_path / "curves.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    args = build_parser().parse_args(
        ["fit", str(path), "--run-id", "run", "--step", "step", "--end", "end"]
    )
    runs = read_runs(args, str(path))
    assert len(runs) == 3 and sorted(runs.D) == [4e9, 4e9, 8e9]  # final checkpoints only
    assert "3 finished runs from 20 checkpoints of 4 runs" in capsys.readouterr().out
    args = build_parser().parse_args(["fit", str(path), "--run-id", "nope"])
    from scalebayes.errors import RunsFileError

    with pytest.raises(RunsFileError, match="column 'nope' not found"):
        read_runs(args, str(path))


def test_column_with_no_name_leaves_it_unread(tmp_path):
    from scalebayes.cli import build_parser
    from scalebayes.cli._common import read_runs
    from scalebayes.errors import ScalebayesError

    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,flops,loss\n1e8,2e9,9e18,3.1\n2e8,4e9,4.8e18,2.9\n")
    args = build_parser().parse_args(["fit", str(path), "--column", "C=", "--column", "D=tokens"])
    runs = read_runs(args, str(path))
    assert runs.derived == ("C",) and runs.C[0] == pytest.approx(1.2e18)
    args = build_parser().parse_args(["fit", str(path), "--column", "="])
    with pytest.raises(ScalebayesError, match="--column '='"):
        read_runs(args, str(path))


def test_a_stray_word_an_option_takes_is_named_with_its_option(capsys):
    """`plot fit.nc isoflop` (the kind without --kind) is refused, naming the option that takes
    it; a word no option takes is refused plainly."""
    with pytest.raises(SystemExit) as stop:
        main(["plot", "fit.nc", "isoflop", "-o", "f.png"])
    assert stop.value.code == 2
    assert (
        "unrecognized arguments: isoflop; did you mean --kind isoflop?" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["fit", "runs.csv", "extra"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: extra" in err and "did you mean" not in err
