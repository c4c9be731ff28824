"""`scalebayes compare`: fit several laws, rank them, save the fits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from tests.conftest import CI_FIT

import scalebayes as sb
from scalebayes.cli import main
from scalebayes.errors import ConvergenceWarning
from scalebayes.simulation import CHINCHILLA_BUDGETS, EPOCH_CHINCHILLA, isoflop_design

# The NUTS settings of every other test, so the compiled samplers are shared.
SETTINGS = [f"--{k}={v}" for k, v in CI_FIT.items()]


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = sb.simulate(
        "chinchilla", EPOCH_CHINCHILLA, isoflop_design(CHINCHILLA_BUDGETS), noise=0.01, seed=1
    )
    path = tmp_path_factory.mktemp("compare") / "runs.csv"
    runs.to_frame().to_csv(path, index=False)
    return path


def test_compare_all_methods_json_and_saved_fits(
    runs_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", str(runs_csv), "--laws", "chinchilla", "power_c", "--method", "all"]
    # Three cuts of the plain law: the batch shape of the conftest's chinchilla_lfo (compiled
    # once per worker). The ranking, JSON and saving do not depend on the discrepancy, and the
    # GP's three refits per law would double the test's time; the next test fits the default.
    argv += ["--cuts", "3", "--out-dir", str(tmp_path), "--json", "--discrepancy", "none"]
    argv += SETTINGS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # power_c mixes poorly here
        assert main(argv) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text  # strict JSON: lfo has no effective number of parameters
    out = json.loads(text)
    assert out["comparisons"]["lfo"]["laws"]["chinchilla"]["p"] is None
    assert set(out["comparisons"]) == {"loo", "waic", "lfo"}
    for result in out["comparisons"].values():
        laws = result["laws"]
        assert laws["chinchilla"]["rank"] == 0
        assert sum(row["weight"] for row in laws.values()) == pytest.approx(1.0, abs=1e-6)
    assert len(out["comparisons"]["lfo"]["lfo_cuts"]["chinchilla"]) == 3
    assert out["runs"] == 81
    for name in ("chinchilla", "power_c"):
        saved = Path(out["fits"][name]["saved"])
        assert saved == tmp_path / f"{name}.nc"
        assert sb.load_fit(saved).law.name == name


def test_compare_prints_table_and_every_diagnostics_line(
    runs_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", str(runs_csv), "--laws", "chinchilla", "power_c", *SETTINGS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert main(argv) == 0
    captured = capsys.readouterr()
    assert "PSIS-LOO (81 runs scored)" in captured.out
    assert "stacking" in captured.out and "pseudo-BMA" in captured.out
    lines = captured.out.splitlines()
    assert any(line.startswith("chinchilla  diagnostics: max R-hat") for line in lines)
    assert any(line.startswith("power_c     diagnostics: max R-hat") for line in lines)
    assert "[1/2] fitting chinchilla" in captured.err
    assert "[2/2] fitting power_c" in captured.err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--laws", "chinchilla"], "two or more different laws"),
        (["--laws", "chinchilla", "chinchilla"], "two or more different laws"),
        (["--laws", "chinchilla", "nope"], "no law named 'nope'"),
        (["--laws", "chinchilla", "kaplan", "--cuts", "x"], "--cuts x: expected"),
        (["--laws", "chinchilla", "kaplan", "--out-dir", "/no/such/dir"], "not an existing"),
    ],
)
def test_compare_bad_input_exits_2(
    runs_csv: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", str(runs_csv), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalebayes: error:") and message in err


@pytest.mark.parametrize(
    ("laws", "options", "message"),
    [
        (["chinchilla"], {}, "two or more different laws"),
        (["chinchilla", "kaplan"], {"methods": "bogus"}, "expected some of loo, waic, lfo"),
        (["chinchilla", "kaplan"], {"out_dir": "/no/such/dir"}, "folder /no/such/dir does not"),
    ],
)
def test_compare_laws_refuses_bad_input_before_fitting(
    runs_csv: Path, laws: list[str], options: dict[str, str], message: str
) -> None:
    with pytest.raises(sb.ScalebayesError, match=message):
        sb.compare_laws(runs_csv, laws, **options)


def test_compare_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert "scalebayes compare chinchilla.csv --laws chinchilla kaplan" in out
    assert "--method" in out and "--cuts" in out and "--out-dir" in out


def test_without_laws_compare_ranks_the_catalogue_s_laws_of_n_and_d(
    runs_csv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --laws: every catalogue law that reads N and D and nothing the table lacks (a law of
    U only where the table has U), said before the first fit. The fits are stopped at the
    first one here; test_compare_all_methods_json_and_saved_fits runs a whole comparison."""
    from scalebayes import law_comparison

    runs = sb.load_runs(runs_csv)
    assert sb.default_laws(runs) == ["chinchilla", "chinchilla_cross", "chinchilla_tied", "kaplan"]
    with_u = sb.load_runs(runs.to_frame().assign(U=runs.D * 2))
    assert sb.default_laws(with_u) == [*sb.default_laws(runs)[:3], "data_constrained", "kaplan"]

    class Stop(Exception):
        pass

    def stop(*args: object, **kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr(law_comparison, "fit", stop)
    with pytest.raises(Stop):
        main(["compare", str(runs_csv)])
    err = capsys.readouterr().err
    assert "comparing the catalogue's laws of N and D: chinchilla, chinchilla_cross, " in err
    assert "[1/4] fitting chinchilla" in err
