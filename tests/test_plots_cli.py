"""`scalebayes plot`, `scalebayes report` and the demo's figures: files written, figures closed."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from tests.known_fits import chinchilla_known

import scalebayes as sb
from scalebayes import cli, figures, plots
from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate
from scalebayes.testing import fit_from_draws, jittered_draws

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def fit_files(tmp_path_factory):
    runs = simulate(
        "chinchilla",
        EPOCH_CHINCHILLA,
        isoflop_design((1e19, 1e20, 1e21), points_per_budget=5),
        seed=4,
    )
    folder = tmp_path_factory.mktemp("fits")
    main = fit_from_draws(
        "chinchilla", runs, jittered_draws({**EPOCH_CHINCHILLA, "sigma": 0.01}, chains=2, draws=100)
    )
    tied = fit_from_draws(
        "chinchilla_tied",
        runs,
        jittered_draws(
            {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "sigma": 0.012}, chains=2, draws=100
        ),
    )
    sb.save_fit(main, folder / "chinchilla.nc")
    sb.save_fit(tied, folder / "tied.nc")
    return folder / "chinchilla.nc", folder / "tied.nc"


def test_plot_kinds_match_the_library():
    assert cli.PLOT_KINDS == figures.KINDS


@pytest.mark.parametrize(
    ("kind", "suffix", "extra"),
    [("bands", "png", []), ("frontier", "pdf", ["--compute", "1e24"]), ("isoflop", "png", [])],
)
def test_plot_writes_the_figure_and_closes_it(fit_files, tmp_path, capsys, kind, suffix, extra):
    out = tmp_path / f"fig.{suffix}"
    before = set(plt.get_fignums())
    code = cli.main(["plot", str(fit_files[0]), "--kind", kind, *extra, "--out", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert out.stat().st_size > 1000
    assert set(plt.get_fignums()) == before
    assert printed[-1].startswith("diagnostics:")


def test_plot_bad_output_is_an_error_and_leaves_no_figure(fit_files, tmp_path, capsys):
    before = set(plt.get_fignums())
    code = cli.main(
        ["plot", str(fit_files[0]), "--kind", "residuals", "--out", str(tmp_path / "f.jpg")]
    )
    assert code == 2
    assert ".png, .svg or .pdf" in capsys.readouterr().err
    assert set(plt.get_fignums()) == before


@pytest.fixture(scope="module")
def report(fit_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    before = set(plt.get_fignums())
    args = ["report", str(fit_files[0]), "--compare", str(fit_files[1]), "--compute", "5.76e23"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main([*args, "--out", str(out)])
    assert code == 0
    assert set(plt.get_fignums()) == before
    return out / "report.html", printed.getvalue().strip().splitlines()


def test_report_is_one_self_contained_page(report):
    page = report[0].read_text()
    assert 'src="http' not in page and "src='http" not in page  # nothing fetched from elsewhere
    images = re.findall(r"src='data:image/png;base64,", page)
    # bands, isoflop, frontier, residuals, prior, trace, rank, pairs, comparison
    assert len(images) == 9
    for heading in (
        "Law",
        "Data",
        "Parameters",
        "Decisions",
        "Diagnostics",
        "Comparison (PSIS-LOO)",
    ):
        assert f"<h2>{heading}" in page
    assert "5.76e+23" in page  # the budget asked for
    assert "chinchilla_tied" in page and "alpha" in page


def test_report_prints_where_and_diagnostics_last(report):
    path, printed = report
    assert printed[0] == f"wrote {path}"
    assert printed[-1].startswith("diagnostics:")


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="headless Chromium not installed (apt-get install -y chromium)",
)
def test_report_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    done = subprocess.run(
        ["bash", str(EXAMPLES / "render_report.sh"), str(report[0]), str(shot), "1000,3000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1000, 3000)
    # A blank page is one colour; a rendered report has text and figures all the way down.
    top, bottom = image.crop((0, 0, 1000, 1500)), image.crop((0, 1500, 1000, 3000))
    assert top.getextrema()[0] < 100 and bottom.getextrema()[0] < 100


def test_report_out_names_the_page_or_its_folder(fit_files, tmp_path, capsys):
    from scalebayes.report import _page

    # Either form: a .html path is the page itself, anything else the folder of report.html.
    assert _page(tmp_path / "page.html") == tmp_path / "page.html"
    assert _page(tmp_path / "new" / "Page.HTM") == tmp_path / "new" / "Page.HTM"
    assert _page(tmp_path / "pages") == tmp_path / "pages" / "report.html"
    # Refused before any work: a folder named like a page, a page under a file.
    (tmp_path / "odd.html").mkdir()
    assert cli.main(["report", str(fit_files[0]), "--out", str(tmp_path / "odd.html")]) == 2
    assert "is a folder; name a page" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli.main(["report", str(fit_files[0]), "--out", str(tmp_path / "file" / "a.html")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_demo_writes_its_figures(fit_files, tmp_path, capsys, monkeypatch):
    from scalebayes.io import load_fit

    prepared = load_fit(fit_files[0])
    monkeypatch.setattr("scalebayes.demo.fit", lambda *args, **kwargs: prepared)  # no NUTS here
    before = set(plt.get_fignums())
    figures = tmp_path / "figs"
    assert cli.main(["demo", "--figures", str(figures)]) == 0
    out = capsys.readouterr().out
    assert f"figures written to {figures.resolve()}" in out
    assert out.startswith("scalebayes demo: SYNTHETIC data")
    assert "truth inside the 90% interval for" in out.strip().splitlines()[-1]
    # The decisions: N*, tokens per parameter and L* at 5.76e23 and 1e25 FLOPs, truth beside.
    assert "compute-optimal runs under the fitted law" in out
    table = out[out.index("compute-optimal runs") :].splitlines()
    assert table[2].startswith("5.76e+23") and table[3].startswith("1e+25")
    assert table[4].startswith("truth inside the 90% interval for") and " of 6 " in table[4]
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        f"{kind}.png" for kind in ("bands", "isoflop", "frontier", "residuals", "prior", "trace")
    )
    assert set(plt.get_fignums()) == before


def test_cli_import_does_not_load_matplotlib():
    code = "import sys, scalebayes.cli; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_plot_frontier_overlays_compared_fits(fit_files, tmp_path, capsys):
    out = tmp_path / "frontier.svg"
    args = ["plot", str(fit_files[0]), "--kind", "frontier", "--compare", str(fit_files[1])]
    assert cli.main([*args, "--out", str(out)]) == 0
    # Each fit's band is in the SVG with its label (matplotlib writes gids as element ids).
    svg = out.read_text()
    assert 'id="chinchilla 90%"' in svg and 'id="chinchilla_tied 90%"' in svg


def test_plot_compare_only_for_the_frontier(fit_files, tmp_path, capsys):
    args = ["plot", str(fit_files[0]), "--kind", "bands", "--compare", str(fit_files[1])]
    assert cli.main([*args, "--out", str(tmp_path / "b.png")]) == 2
    assert "frontier only" in capsys.readouterr().err


def test_plot_approach_only_for_the_frontier(fit_files, tmp_path, capsys):
    args = ["plot", str(fit_files[0]), "--kind", "bands", "--approach", "all"]
    assert cli.main([*args, "--out", str(tmp_path / "b.png")]) == 2
    assert "add --kind frontier" in capsys.readouterr().err
    args = ["plot", str(fit_files[0]), "--kind", "isoflop", "--approach", "1"]
    assert cli.main([*args, "--out", str(tmp_path / "b.png")]) == 2
    assert "--kind isoflop --approach 2" in capsys.readouterr().err
    assert not (tmp_path / "b.png").exists()


def test_plot_bands_marks_heldout_runs(fit_files, tmp_path, capsys):
    bigger = simulate(
        "chinchilla", EPOCH_CHINCHILLA, isoflop_design([1e22], points_per_budget=3), seed=5
    )
    csv = tmp_path / "big.csv"
    bigger.table.to_csv(csv, index=False)
    out = tmp_path / "bands.svg"
    args = ["plot", str(fit_files[0]), "--kind", "bands", "--heldout", str(csv)]
    assert cli.main([*args, "--out", str(out)]) == 0
    svg = out.read_text()
    assert 'id="held-out"' in svg and 'id="observed"' in svg
    assert (
        cli.main(
            ["plot", str(fit_files[0]), "--kind", "prior", "--heldout", str(csv), "--out", str(out)]
        )
        == 2
    )
    assert "bands and the pit plot only" in capsys.readouterr().err
    # The same held-out runs, scored: their PIT histogram.
    args = ["plot", str(fit_files[0]), "--kind", "pit", "--heldout", str(csv)]
    assert cli.main([*args, "--out", str(out)]) == 0
    svg = out.read_text()
    assert 'id="pit"' in svg and 'id="uniform"' in svg
    assert cli.main(["plot", str(fit_files[0]), "--kind", "pit", "--out", str(out)]) == 2
    assert "--heldout RUNS" in capsys.readouterr().err


def test_plot_axis_only_for_bands(fit_files, tmp_path, capsys):
    args = ["plot", str(fit_files[0]), "--kind", "bands", "--axis", "D"]
    assert cli.main([*args, "--out", str(tmp_path / "d.png")]) == 0
    args = ["plot", str(fit_files[0]), "--kind", "prior", "--axis", "D"]
    assert cli.main([*args, "--out", str(tmp_path / "p.png")]) == 2
    assert "bands plot" in capsys.readouterr().err


@pytest.fixture
def checks_blank(monkeypatch):
    """The report's diagnostic figures drawn blank, for tests of what else the page says.

    They cost ~6 s a report (ArviZ's pair plot alone ~2.5 s); the test of the self-contained page
    draws them.
    """
    from scalebayes import figures
    from scalebayes.report import CHECK_KINDS

    real = figures.draw

    def draw(fit, kind, **kwargs):
        if kind in CHECK_KINDS:
            return plt.figure(figsize=(1, 1))
        return real(fit, kind, **kwargs)

    monkeypatch.setattr(figures, "draw", draw)


def test_report_of_a_law_without_allocation(tmp_path, checks_blank):
    truth = {"E": 1.7, "A": 400.0, "alpha": 0.34}
    runs = simulate("power_n", truth, isoflop_design([1e19, 1e20], points_per_budget=4), seed=0)
    fit = fit_from_draws(
        "power_n", runs, jittered_draws({**truth, "sigma": 0.01}, chains=2, draws=50)
    )
    before = set(plt.get_fignums())
    written = sb.write_report(fit, tmp_path / "power_n.html")  # a page named by the user
    assert written == tmp_path / "power_n.html" and not (tmp_path / "report.html").exists()
    page = written.read_text()
    assert set(plt.get_fignums()) == before
    assert "No compute-optimal allocation: law power_n takes N" in page
    assert "alt='bands'" in page and "alt='isoflop'" not in page and "alt='frontier'" not in page


def test_report_gives_every_parameter_a_meaning(report):
    section = report[0].read_text().split("<h2>Parameters</h2>")[1].split("<h2>")[0]
    rows = re.findall(r"<tr>\s*<th>([^<]+)</th>(.*?)</tr>", section, flags=re.S)
    assert {"E", "alpha", "sigma"} <= {name for name, _ in rows}
    for name, cells in rows:
        assert re.findall(r"<td>(.*?)</td>", cells, flags=re.S)[-1].strip(), name


@pytest.mark.parametrize("discrepancy", ["none", "curvature", "gp"])
@pytest.mark.parametrize("df", [4.0, None])
def test_every_reported_parameter_has_a_meaning(discrepancy, df):
    # The report reads Fit.param_docs: the law file's docs, the noise's and the discrepancy's.
    from scalebayes.laws import load_law
    from scalebayes.likelihood import Likelihood, reported_param_names

    law = load_law("chinchilla")
    likelihood = Likelihood(df=df, discrepancy=discrepancy).for_law(law)
    docs = {**{n: p.doc for n, p in law.params.items()}, **likelihood.param_docs(law)}
    for name in reported_param_names(law, likelihood):
        assert docs.get(name, "").strip(), name


def test_report_of_a_law_of_repeated_data_says_what_its_allocation_needs(tmp_path, checks_blank):
    """The data-constrained law: bands for fresh data, residuals, no allocation without U."""
    from tests.test_allocate import MUENNIGHOFF

    # Three runs on fresh data (D = U) at D/N = 20, three repeating theirs 4 times.
    n = np.array([1e8, 4e8, 1.6e9, 1e8, 4e8, 1.6e9])
    d = 20 * n
    u = np.concatenate([d[:3], d[3:] / 4])
    law = sb.load_law("data_constrained")
    params = {k: np.asarray(v) for k, v in MUENNIGHOFF.items()}
    loss = np.exp(law.log_mean(params, {"N": np.log(n), "D": np.log(d), "U": np.log(u)}))
    runs = pd.DataFrame({"N": n, "D": d, "U": u, "loss": loss})
    draws = {k: np.full((2, 20), v) for k, v in {**MUENNIGHOFF, "sigma": 0.02}.items()}
    fit = fit_from_draws(law, runs, draws)
    path = sb.write_report(fit, tmp_path / "report")
    page = path.read_text()
    assert "not drawn" not in page  # bands and residuals read U
    assert "depends on the unique tokens available" in page and "--unique-tokens U" in page
    # With the unique tokens given, the page has the decisions and the frontier at them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sb.AllocationWarning)  # past what U buys (tested below)
        page = sb.write_report(fit, tmp_path / "at_u", unique_tokens=1e11).read_text()
    assert "Decisions: compute-optimal runs" in page and "U = 1e+11" in page
    assert "alt='frontier'" in page and "alt='isoflop'" not in page
    with pytest.raises(sb.ScalebayesError, match="approach 3 only"):
        sb.write_report(fit, tmp_path / "all", unique_tokens=1e11, approaches=True)
    with pytest.raises(sb.LawError, match="does not read U"):
        sb.write_report(chinchilla_known(), tmp_path / "plain", unique_tokens=1e11)
    mean, new_run = figures.band_predictions(fit)
    ax = plots.bands(fit, mean, new_run)
    # The runs on fresh data lie on the law drawn for U = D, the repeating ones above it.
    observed = next(c for c in ax.collections if c.get_gid() == "observed")
    off = next(c for c in ax.collections if c.get_gid() == "off slice")
    assert len(observed.get_offsets()) == 3 and len(off.get_offsets()) == 3
    assert "fresh data (U = D)" in ax.get_title()
    plt.close(ax.figure)


def test_a_frontier_of_a_law_of_repeated_data_is_drawn_at_the_unique_tokens_given(tmp_path):
    from tests.test_allocate import data_constrained_known

    fit = data_constrained_known()
    # The frontier runs to 1e26 FLOPs, far past what 1e10 unique tokens can buy (Muennighoff
    # et al.'s law is then flat in N): the search says so rather than inventing an optimum.
    with pytest.warns(sb.AllocationWarning, match="flat in N where the budget exceeds"):
        figure = figures.draw(fit, "frontier", unique_tokens=1e10)
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert any("U = 1e+10" in label for label in labels), labels
    plt.close(figure)
    with pytest.raises(sb.ScalebayesError, match="frontier only"):
        figures.draw(fit, "bands", unique_tokens=1e10)
    with pytest.raises(sb.LawError, match="reads U"):  # no frontier without them
        figures.draw(fit, "frontier")


def test_a_default_fit_of_sweeps_leads_its_decisions_with_the_recommended_3m(
    chinchilla_fit, fit_files
):
    """The page says which allocation the tool recommends when it is not the law's own.

    The session's default (GP) fit is of isoFLOP sweeps, where ``--approach all`` recommends
    3m; 3m samples nothing, so the page shows it beside the law without being asked. A fit
    without a discrepancy (its 3m would be the law) keeps the law's table alone.
    """
    from scalebayes.report import _decisions, _whole_model_recommended

    budgets = [1e23]  # within 100x of the runs: no extrapolation warning
    side = _whole_model_recommended(chinchilla_fit, budgets)
    assert side is not None and set(side.results) == {"3", "3m"} and side.recommended == "3m"
    page = _decisions(chinchilla_fit, sb.optimal(chinchilla_fit, budgets), side)
    assert "by the law (approach 3)" in page
    assert "Recommended for these runs: approach 3m" in page
    plain = sb.load_fit(fit_files[0])
    assert _whole_model_recommended(plain, budgets) is None
    assert "Recommended" not in _decisions(plain, sb.optimal(plain, budgets), None)
