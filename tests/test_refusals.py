"""Bad input is refused before any work, in one line: the library's error, the CLI's exit 2.

No test here samples: every refusal happens before the compile (runs that cannot identify the
law, a law that is not finite at them, outputs that cannot be written, negative inputs).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.known_fits import chinchilla_known, ladder

import scalebayes as sb
from scalebayes.cli import main
from scalebayes.errors import LawEvaluationError, OutputError, UnidentifiableError
from scalebayes.preflight import check_finite, check_identifiable, one_ratio_note

UNFITTABLE = Path(__file__).parent / "data" / "unfittable_laws"
PLAIN = sb.Likelihood(discrepancy="none")
TINY = ["--chains", "2", "--draws", "300", "--warmup", "300", "--quiet"]


def _runs(n: np.ndarray, d: np.ndarray) -> sb.Runs:
    loss = 1.8 + 480 / n**0.35 + 2000 / d**0.37
    table = pd.DataFrame({"N": n, "D": d, "loss": loss})
    # Repeats of one run get a group each, so that loading them does not warn of duplicates.
    return sb.load_runs(table.assign(group=np.arange(len(n)).astype(str)))


def _csv(path: Path, runs: sb.Runs) -> Path:
    runs.to_frame()[["N", "D", "loss"]].to_csv(path, index=False)  # warns of repeats: kept
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str], *, quiet: bool = False) -> str:
    """The one error line on stderr (after any warnings about the input); with ``quiet``,
    nothing on stdout either (no work was done)."""
    captured = capsys.readouterr()
    lines = [x for x in captured.err.strip().splitlines() if not x.startswith("warning: ")]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("scalebayes: error: ")
    assert not (quiet and captured.out), captured.out
    return lines[0]


# --- runs that cannot identify the law ---------------------------------------------------------


def test_fewer_runs_than_free_parameters():
    two = ladder().subset(np.arange(len(ladder())) < 2)
    with pytest.raises(UnidentifiableError, match=r"2 runs cannot fit law 'chinchilla': it has 5 "):
        sb.fit(two, "chinchilla", likelihood=PLAIN)
    # The noise counts (sigma, and nu when estimated); a Delta prior pins a parameter.
    six = ladder().subset(np.arange(len(ladder())) < 6)
    check_identifiable(sb.load_law("chinchilla"), PLAIN, six)
    with pytest.raises(
        UnidentifiableError, match=r"plus the noise's \(sigma, nu\); give at least 7"
    ):
        check_identifiable(sb.load_law("chinchilla"), sb.Likelihood(df=None), six)
    pinned = sb.load_law("chinchilla").with_priors({"E": "Delta(v=1.8)"})
    check_identifiable(pinned, sb.Likelihood(df=None), six)


def test_one_distinct_input_point():
    same = _runs(np.full(20, 7e10), np.full(20, 1.4e12))
    with pytest.raises(UnidentifiableError, match=r"only 1 distinct \(N, D\); law 'chinchilla'"):
        sb.fit(same, "chinchilla", likelihood=PLAIN)


def test_terms_constant_over_the_runs_cannot_be_told_apart():
    one_d = _runs(np.geomspace(1e8, 1e10, 10), np.full(10, 2e10))
    pattern = r"all 10 runs have D = 2e\+10, so the terms E, B / D\*\*beta .* E, B, beta cannot"
    with pytest.raises(UnidentifiableError, match=pattern):
        check_identifiable(sb.load_law("chinchilla"), PLAIN, one_d)
    # Kaplan's law keeps D inside one term with N: Dc is still identified (Dc / D, D known).
    check_identifiable(sb.load_law("kaplan"), PLAIN, one_d)


class _Stop(Exception):
    """Raised in place of the work after the checks, so a test sees them without sampling."""


def test_one_ratio_ladder_warns_before_sampling(monkeypatch, chinchilla_csv):
    n = np.geomspace(5e7, 3e9, 10)
    one_ratio = _runs(n, 20 * n * np.linspace(1.0, 1.4, 10))  # D/N 20-28: under a factor 1.5
    law = sb.load_law("chinchilla")
    note = one_ratio_note(law, one_ratio)
    assert note is not None and "all 10 runs keep about one ratio" in note and "D/N 20-28" in note

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr("scalebayes.fitting.check_finite", stop)  # the step after the note
    with (
        pytest.warns(sb.DataWarning, match="one ratio of tokens to parameters"),
        pytest.raises(_Stop),
    ):
        sb.fit(one_ratio, "chinchilla", likelihood=PLAIN)
    # Ratios a factor 1.5 apart or more, a law without both N and D, or Epoch's runs: no note.
    assert one_ratio_note(law, _runs(n, 20 * n * np.linspace(1.0, 1.5, 10))) is None
    assert one_ratio_note(sb.load_law("power_c"), one_ratio) is None
    assert one_ratio_note(law, sb.load_runs(chinchilla_csv)) is None


def test_catalogue_laws_pass_on_real_runs(chinchilla_csv):
    runs = sb.load_runs(chinchilla_csv)
    frame = runs.to_frame().assign(U=lambda t: t["D"] * 2)  # one epoch: data-constrained too
    with_u = sb.load_runs(frame[["N", "D", "U", "loss"]])
    for law in sb.available_laws().values():
        table = with_u if "U" in law.inputs else runs
        check_identifiable(law, PLAIN, table)
        check_finite(law, table)


@pytest.mark.parametrize(
    ("stem", "message"),
    [
        ("vanishing_term", r"the term A / N\*\*1e\+308 is 0 \(underflow\) at every run for 100%"),
        ("overflowing_term", r"not finite \(overflow or NaN\) .* the term A \* N\*\*1e\+308"),
    ],
)
def test_a_law_not_finite_at_the_runs_is_refused(stem, message):
    path = UNFITTABLE / f"{stem}.toml"
    with pytest.raises(LawEvaluationError, match=message) as info:
        sb.fit(ladder(), path, likelihood=PLAIN)
    assert str(info.value).startswith(f"law {stem!r} ({path}): ")


# --- the same through the CLI: one line, exit 2, before any work -------------------------------


@pytest.fixture(scope="module")
def ladder_csv(tmp_path_factory):
    return _csv(tmp_path_factory.mktemp("refusals") / "runs.csv", ladder())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("two", "2 runs cannot fit law 'chinchilla': it has 5 free parameters"),
        ("same", "only 1 distinct (N, D); law 'chinchilla' has 5 free parameters"),
        ("vanishing", "the term A / N**1e+308 is 0 (underflow) at every run"),
    ],
)
def test_cli_refuses_unfittable_input(case, message, ladder_csv, tmp_path, capsys):
    if case == "two":
        argv = [str(_csv(tmp_path / "two.csv", ladder().subset(np.arange(15) < 2)))]
    elif case == "same":
        argv = [str(_csv(tmp_path / "same.csv", _runs(np.full(20, 7e10), np.full(20, 1.4e12))))]
    else:
        argv = [str(ladder_csv), "--law", str(UNFITTABLE / "vanishing_term.toml")]
    assert main(["fit", *argv, "--discrepancy", "none", *TINY]) == 2
    assert message in _one_error_line(capsys)


def test_cli_prints_a_far_off_run_then_refuses(tmp_path, capsys):
    """Warnings about the input reach stderr (they were dropped before), then the refusal."""
    five = ladder().to_frame().iloc[:5][["N", "D", "loss"]]
    five.loc[3, "loss"] = 1e6
    five.to_csv(tmp_path / "five.csv", index=False)
    assert main(["fit", str(tmp_path / "five.csv"), "--discrepancy", "none", *TINY]) == 2
    err = capsys.readouterr().err
    assert f"warning: {tmp_path}/five.csv: line 5, column 'loss': loss far off every other" in err
    assert "5 runs cannot fit law 'chinchilla'" in err.splitlines()[-1]


def test_cli_warns_about_the_table_before_sampling(tmp_path, capsys):
    """A warning about the input comes before the sampler's progress, once, not after it."""
    table = ladder().to_frame()[["N", "D", "loss"]]
    # 81 runs, 3 of them twice, with the suite's CI_FIT settings: the plain-law sampler of the
    # session's shared fit (compiled already), not a program of its own to compile (~7 s).
    pd.concat([table.iloc[:-3], table.iloc[:3]]).to_csv(tmp_path / "twice.csv", index=False)
    settings = ["--chains", "4", "--draws", "500", "--warmup", "500"]
    argv = ["fit", str(tmp_path / "twice.csv"), "--discrepancy", "none", *settings]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    duplicate = [i for i, line in enumerate(err) if "duplicate runs" in line]
    sampling = [i for i, line in enumerate(err) if line.startswith("sampling")]
    assert len(duplicate) == 1 and sampling and duplicate[0] < sampling[0]


# --- outputs that cannot be written --------------------------------------------------------------


@pytest.fixture(scope="module")
def fit_nc(tmp_path_factory):
    return str(sb.save_fit(chinchilla_known(), tmp_path_factory.mktemp("fit") / "fit.nc"))


@pytest.mark.parametrize(
    ("command", "out", "message"),
    [
        ("fit", "missing/fit.nc", "folder {tmp}/missing does not exist"),
        ("fit", "fit.txt", "expected a file name ending in .nc, .nc4 or .netcdf"),
        ("plot", "missing/bands.png", "folder {tmp}/missing does not exist"),
        ("plot", "bands.gif", "expected a file name ending in .png, .svg or .pdf"),
        ("report", "a_file/report", "{tmp}/a_file is a file, not a folder"),
        ("demo", "missing/demo.nc", "folder {tmp}/missing does not exist"),
    ],
)
def test_unwritable_out_is_refused_before_any_work(
    command, out, message, ladder_csv, fit_nc, tmp_path, capsys
):
    (tmp_path / "a_file").write_text("")
    target = str(tmp_path / out)
    first = {"fit": [str(ladder_csv)], "plot": [fit_nc], "report": [fit_nc], "demo": []}[command]
    extra = {"fit": TINY, "demo": ["--figures", ""]}.get(command, [])
    assert main([command, *first, "--out", target, *extra]) == 2
    line = _one_error_line(capsys, quiet=True)  # nothing read, fitted or drawn
    assert f"--out {target}: {message.format(tmp=tmp_path)}" in line


def test_read_only_folder_is_refused(ladder_csv, fit_nc, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root writes anyway: say so as a read-only mount would
        monkeypatch.setattr("scalebayes.outputs.os.access", lambda path, mode: Path(path) != locked)
    try:
        for argv in (
            ["fit", str(ladder_csv), "--out", str(locked / "fit.nc"), *TINY],
            ["plot", fit_nc, "--out", str(locked / "bands.png")],
            ["report", fit_nc, "--out", str(locked)],
            ["report", fit_nc, "--out", str(locked / "new" / "folder")],
        ):
            assert main(argv) == 2
            assert f"folder {locked} is not writable" in _one_error_line(capsys)
    finally:
        locked.chmod(0o755)


def test_library_writes_refuse_in_one_line(tmp_path):
    with pytest.raises(OutputError, match=r"fit\.txt: expected a file name ending in \.nc"):
        sb.save_fit(chinchilla_known(), tmp_path / "fit.txt")
    with pytest.raises(OutputError, match="does not exist"):
        sb.save_fit(chinchilla_known(), tmp_path / "missing" / "fit.nc")


# --- numbers the command line must read as numbers ---------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["predict", "{fit}", "--N", "-7e10", "--D", "1.4e12"],
            "N=[-70000000000.0]: expected positive",
        ),
        (
            ["chance", "{fit}", "--N", "7e10", "--D", "-1.4E12", "--target", "2"],
            "D=[-1400000000000.0]",
        ),
        (["optimal", "{fit}", "--compute", "-1e24"], "expected one or more positive finite FLOP"),
    ],
)
def test_negative_numbers_reach_the_checks(argv, message, fit_nc, capsys):
    assert main([a.replace("{fit}", fit_nc) for a in argv]) == 2
    assert message in _one_error_line(capsys)


def test_repeated_data_warn_when_the_law_does_not_read_unique_tokens(tmp_path):
    # Lines 3 and 4 see their unique tokens 4 and 40 times; line 2 once. Three runs are too few
    # for either law, so each call stops at the refusal that follows the warning, unsampled.
    path = tmp_path / "repeats.csv"
    path.write_text("N,D,unique_tokens,loss\n1e8,2e9,2e9,3.1\n2e8,8e9,2e9,2.9\n4e8,8e10,2e9,2.8\n")
    with pytest.warns(sb.DataWarning) as caught, pytest.raises(UnidentifiableError):
        sb.fit(path, "chinchilla")
    message = str(caught[0].message)
    assert message.startswith(f"{path}: lines 3, 4, column 'unique_tokens': 2 runs repeat")
    assert "up to 40 epochs" in message and "--law data_constrained" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error", sb.DataWarning)  # the data-constrained law reads U
        with pytest.raises(UnidentifiableError):
            sb.fit(path, "data_constrained")


def test_demo_reads_its_data_as_fit_does(ladder_csv, capsys):
    # --where on --data is read as fit reads it: a value no row holds is refused before any work.
    assert main(["demo", "--data", str(ladder_csv), "--where", "N=12", "--figures", ""]) == 2
    assert "where: no row has N = '12'" in _one_error_line(capsys, quiet=True)
    # Without --data there is nothing for the table options to read.
    assert main(["demo", "--where", "experiment=x", "--figures", ""]) == 2
    assert "say how --data is read" in _one_error_line(capsys, quiet=True)
