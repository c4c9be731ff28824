"""A grouped fit after sampling: saved and loaded, decisions per group and for a new group, figures.

One grouped fit with known draws (no NUTS, :func:`scalebayes.testing.grouped_fit_from_draws`)
serves the module: three simulated ladders, each group's draws scattered 1 % around its truth,
the population's spreads 0.1 on the log scale (what the simulation drew the groups with).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import scalebayes as sb
from scalebayes.cli import main
from scalebayes.decision_tables import allocation_table, prediction_table
from scalebayes.errors import FitFileError
from scalebayes.figures import draw, forest_table
from scalebayes.groups.pooling import Pooling
from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate_groups
from scalebayes.testing import fit_from_draws, grouped_fit_from_draws

POOLING = Pooling(modes={"B": "shared", "beta": "shared"})
LAW_NAMES = ("E", "A", "alpha", "B", "beta", "sigma")
GROUPS = ("g0", "g1", "g2")
INSIDE = {"N": 1e9, "D": 2e10}  # C = 1.2e20, inside the ladders' 1e19-1e21
BEYOND = {"N": 7e10, "D": 1.4e12}  # Chinchilla, 600x beyond the largest run


@pytest.fixture(scope="module")
def known():
    """(runs, draws, grouped fit): the draws the fit holds, by name, to check decisions against."""
    design = isoflop_design([1e19, 1e20, 1e21], points_per_budget=5)
    spreads = {"alpha": 0.1, "E": 0.1}
    runs, truths = simulate_groups("chinchilla", EPOCH_CHINCHILLA, spreads, [design] * 3, seed=1)
    rng = np.random.default_rng(0)
    shape = (2, 500)

    def jitter(value, sd, size=()):
        return value * np.exp(sd * rng.standard_normal(shape + size))

    draws = {
        name: jitter(EPOCH_CHINCHILLA[name], 0.02) for name in ("E", "A", "alpha", "B", "beta")
    }
    draws["sigma"] = jitter(0.01, 0.05)
    draws |= {f"{name}_spread": jitter(0.1, 0.1) for name in ("E", "A", "alpha", "sigma")}
    for name in ("E", "A", "alpha"):
        draws[f"{name}_group"] = np.stack([jitter(t[name], 0.01) for t in truths], axis=-1)
    draws["sigma_group"] = jitter(0.01, 0.05, (3,))
    for name in ("B", "beta"):  # shared: every group has the population's value
        draws[f"{name}_group"] = np.repeat(draws[name][..., None], 3, axis=-1)
    return runs, draws, grouped_fit_from_draws("chinchilla", runs, draws, pooling=POOLING)


@pytest.fixture(scope="module")
def saved(known, tmp_path_factory):
    return sb.save_fit(known[2], tmp_path_factory.mktemp("grouped") / "groups.nc")


def _group_fit(known, index):
    """A plain Fit of one group's draws and runs, built without the grouped machinery."""
    runs, draws, _ = known
    own = {name: draws[f"{name}_group"][..., index] for name in LAW_NAMES}
    return fit_from_draws("chinchilla", runs.subset(runs.group == GROUPS[index]), own)


def test_grouped_fit_round_trips(known, saved):
    fit = known[2]
    loaded = sb.load_fit(saved)
    assert isinstance(loaded, sb.GroupedFit)
    assert loaded.groups == fit.groups and loaded.plan == fit.plan
    assert loaded.diagnostics == fit.diagnostics and loaded.law == fit.law
    xr.testing.assert_identical(loaded.posterior, fit.posterior)
    np.testing.assert_array_equal(loaded.runs.group, fit.runs.group)
    np.testing.assert_array_equal(loaded.runs.loss, fit.runs.loss)
    for name, value in fit.log_ref.items():
        np.testing.assert_array_equal(loaded.log_ref[name], value)  # written by repr: bit for bit
    for group in ("g1", "new"):
        np.testing.assert_array_equal(
            sb.predict(loaded, **BEYOND, group=group).loss.to_numpy(),
            sb.predict(fit, **BEYOND, group=group).loss.to_numpy(),
        )


def test_every_pooling_choice_is_stored_whole():
    """Modes, spread priors and per-group centring come back from the file's JSON as they were."""
    from scalebayes.groups.pooling import Plan

    law = sb.load_law("chinchilla")
    likelihood = sb.Likelihood(discrepancy="none", df=None).for_law(law)  # nu estimated
    pooling = Pooling(
        modes={"E": "separate", "beta": "shared", "nu": "pooled"},
        spreads={"alpha": "HalfNormal(scale=0.05)"},
        centred="auto",
    )
    plan = pooling.plan(law, likelihood, (True, False, True))
    record = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(record, law, likelihood) == plan
    default = Pooling().plan(law, likelihood, (True, False, True))  # E centred where strong
    record = json.loads(json.dumps(default.to_dict()))
    assert Plan.from_dict(record, law, likelihood) == default
    del record["weak_centring"]  # a file from before partial centring: weak groups non-centred
    assert Plan.from_dict(record, law, likelihood).weak_centring == 0.0


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (
            "scalebayes_pooling",
            "not a complete scalebayes fit: missing attribute scalebayes_pooling",
        ),
        ("alpha_group", r"damaged grouped fit \(posterior lacks \['alpha_group'\]\)"),
    ],
)
def test_incomplete_grouped_file_names_what_is_missing(saved, tmp_path, drop, named):
    tree = xr.open_datatree(saved, engine="h5netcdf").load()
    if drop in tree.attrs:
        del tree.attrs[drop]
    else:
        tree["posterior"] = tree["posterior"].to_dataset().drop_vars(drop)
    incomplete = tmp_path / "incomplete.nc"
    tree.to_netcdf(incomplete, engine="h5netcdf")
    with pytest.raises(FitFileError, match=named):
        sb.load_fit(incomplete)


def test_saving_a_grouped_fit_keeps_the_old_file_until_complete(
    known, saved, tmp_path, monkeypatch
):
    target = tmp_path / "groups.nc"
    target.write_bytes(saved.read_bytes())
    before = target.read_bytes()
    monkeypatch.setattr(xr.DataTree, "to_netcdf", lambda self, path, **kw: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        sb.save_fit(known[2], target)
    assert target.read_bytes() == before


def test_a_named_group_decides_as_its_own_parameters(known):
    """predict and optimal on group g1 are those of a plain fit of g1's draws, to rounding."""
    fit, own = known[2], _group_fit(known, 1)
    np.testing.assert_allclose(
        sb.predict(fit, **BEYOND, group="g1").loss.to_numpy(),
        sb.predict(own, **BEYOND).loss.to_numpy(),
        rtol=1e-12,
    )
    grouped = allocation_table(fit, [1e22], group="g1").table
    single = allocation_table(own, [1e22]).table
    assert list(grouped["group"]) == ["g1"]
    np.testing.assert_allclose(
        grouped[["N_median", "D_median", "loss_median"]].to_numpy(),
        single[["N_median", "D_median", "loss_median"]].to_numpy(),
        rtol=1e-9,
    )


@pytest.mark.parametrize("point", [INSIDE, BEYOND], ids=["inside", "beyond"])
def test_a_new_group_is_wider_and_centred_on_the_population(known, point):
    """A ladder not yet run: wider than any fitted group's interval, centred on the population.

    Margins: each group's draws are scattered 1 % around its values, the population's spread
    is 0.1 on the log scale, so a new group's 90 % interval is 3.5x (inside) to 8.6x (beyond)
    the widest group's here: asked for 2x. Its parameters are the population's plus offsets
    symmetric on the log scale, so its median moves from the population's only through the
    law's curvature (second order in 0.1) and the Monte Carlo error of two medians of 1000
    draws (1.25 sd / sqrt(1000) each, 2.4 % of the half-width of 1.645 sd): 2 % here, asked
    for under 10 % (three of those errors combined).
    """
    runs, draws, fit = known

    def interval(fit_, group=None):
        x = sb.predict(fit_, **point, group=group).loss.to_numpy().ravel()
        return np.quantile(x, [0.05, 0.5, 0.95])

    widest = max(np.ptp(interval(fit, g)[[0, 2]]) for g in GROUPS)
    lower, median, upper = interval(fit, "new")
    assert upper - lower > 2 * widest, (upper - lower, widest)
    population = fit_from_draws("chinchilla", runs, {n: draws[n] for n in LAW_NAMES})
    centre = interval(population)[1]
    assert abs(median - centre) < 0.1 * (upper - lower) / 2, (median, centre, lower, upper)


def test_without_a_group_every_group_gets_a_table(known):
    fit = known[2]
    result = prediction_table(fit, **INSIDE)
    assert list(result.table["group"]) == list(GROUPS)
    assert result.meta["groups"] == list(GROUPS) and "group" not in result.meta
    for label in GROUPS:
        assert f"group {label} (15 runs)" in result.text
    one = prediction_table(fit, group="g2", **INSIDE)
    np.testing.assert_allclose(one.table["median"], result.table["median"].iloc[[2]])
    new = prediction_table(fit, group="new", **INSIDE)
    assert new.text.startswith("a new group (not yet run)")
    with pytest.raises(sb.ScalebayesError, match=r"a new group .* has none: use approach 3"):
        sb.optimal(fit, [1e22], group="new", approach=2)


def test_a_groups_own_diagnostics_line_is_printed_once(known):
    """A decision that samples its own model (approach 2) has its own diagnostics: stacked
    groups each say theirs; one named group leaves the single line to the caller."""
    import dataclasses

    from scalebayes.decision_tables import DecisionTable, for_groups

    fit = known[2]
    own = dataclasses.replace(fit.diagnostics, max_rhat=1.2)

    def build(one):
        return DecisionTable("chinchilla", pd.DataFrame({"x": [1.0]}), "table", own, {})

    stacked = for_groups(fit, None, build)
    assert stacked.text.count(str(own)) == len(GROUPS) and stacked.diagnostics == own
    named = for_groups(fit, "g1", build)
    assert str(own) not in named.text and named.diagnostics == own


def test_forest_table_and_grouped_figures(known):
    import matplotlib.pyplot as plt

    _, draws, fit = known
    table = forest_table(fit)
    assert list(dict.fromkeys(table["parameter"])) == ["E", "A", "alpha", "sigma"]  # B, beta shared
    alpha = table[table["parameter"] == "alpha"].set_index("row")
    assert list(alpha.index) == [*GROUPS, "new group", "population"]
    assert alpha.loc["population", "median"] == pytest.approx(np.median(draws["alpha"]))
    assert alpha.loc["g0", "median"] == pytest.approx(np.median(draws["alpha_group"][..., 0]))
    try:
        forest = draw(fit, "forest")
        assert len([ax for ax in forest.axes if ax.get_visible()]) == 4
        gids = {artist.get_gid() for artist in forest.axes[0].get_children()}
        assert {"groups", "new group", "population", "population interval"} <= gids
        bands = draw(fit, "bands")
        assert [ax.get_title().splitlines()[0] for ax in bands.axes] == [
            f"group {g}" for g in GROUPS
        ]
        frontier = draw(fit, "frontier")
        labels = frontier.legends[0].get_texts()
        assert {f"group {g}: median" for g in GROUPS} <= {t.get_text() for t in labels}
    finally:
        plt.close("all")
    with pytest.raises(sb.ScalebayesError, match=r"for 'isoflop' name one group .*\['g0'"):
        draw(fit, "isoflop")
    with pytest.raises(sb.ScalebayesError, match="forest plot shows a grouped fit"):
        draw(fit, "forest", group="g0")


def test_cli_decisions_per_group(saved, capsys):
    point = ["--N", "1e9", "--D", "2e10"]
    assert main(["predict", str(saved), *point]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("group ")] == [
        f"group {g} (15 runs)" for g in GROUPS
    ]
    assert out.count("diagnostics:") == 1  # one fit, one health line, at the end
    assert main(["predict", str(saved), *point, "--group", "g1"]) == 0
    out = capsys.readouterr().out
    assert "group g1 (15 runs)" in out and "group g0" not in out
    assert main(["chance", str(saved), *point, "--target", "2.5", "--group", "new", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["group"] == "new" and payload["rows"][0]["group"] == "new"
    assert main(["optimal", str(saved), "--compute", "1e22", "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("group,budget,") and out.count("\ng") == 3
    # plan takes --group the same way (decision_tables.for_groups); left out: 11 s for one group.


def test_cli_refuses_unknown_groups_in_one_line(saved, known, tmp_path, capsys):
    assert main(["predict", str(saved), "--N", "1e9", "--D", "2e10", "--group", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "scalebayes: error: group 'nope' not in the fit: its groups are ['g0', 'g1', 'g2'] "
        "(or 'new' for a group not yet run)"
    )
    assert (
        main(["optimal", str(saved), "--compute", "1e22", "--group", "new", "--approach", "2"]) == 2
    )
    assert "use approach 3" in capsys.readouterr().err
    plain = sb.save_fit(_group_fit(known, 0), tmp_path / "plain.nc")
    assert main(["predict", str(plain), "--N", "1e9", "--D", "2e10", "--group", "g0"]) == 2
    assert "not a grouped fit" in capsys.readouterr().err
    assert main(["report", str(saved), "--out", str(tmp_path / "r"), "--compare", str(saved)]) == 2
    assert "--compare with a grouped fit: name the group it compares" in capsys.readouterr().err


def test_a_grouped_fit_reports_one_page_per_group_and_an_index(
    saved, tmp_path, monkeypatch, capsys
):
    """Without --group, report writes each group's page (write_report of that group's fit, as
    --group NAME does; its page is tested with plain fits, here stood in for: three real pages
    take ~20 s) into a folder of its own, and an index with the grouped fit and the links."""
    from scalebayes import report

    calls = []

    def page_of(fit, out, **options):
        calls.append((len(fit.runs), options["budgets"]))
        out.mkdir(parents=True)
        (out / "report.html").write_text("page")
        return out / "report.html"

    monkeypatch.setattr(report, "write_report", page_of)
    out = tmp_path / "report"
    assert main(["report", str(saved), "--out", str(out), "--compute", "1e22"]) == 0
    assert "links to one page per group: g0, g1, g2" in capsys.readouterr().out
    assert calls == [(15, [1e22])] * 3  # each group's own runs, the options passed on
    index = (out / "report.html").read_text()
    for group in GROUPS:
        assert (out / group / "report.html").read_text() == "page"
        assert f"<a href='{group}/report.html'>" in index
    assert "per group (median [90% interval])" in index  # the grouped fit's own summary
    # An index named by the user: the groups' folders sit beside it, as its links say.
    named = tmp_path / "pages" / "marin.html"
    assert main(["report", str(saved), "--out", str(named), "--compute", "1e22"]) == 0
    assert f"<a href='{GROUPS[0]}/report.html'>" in named.read_text()
    assert (named.parent / GROUPS[0] / "report.html").read_text() == "page"
    with pytest.raises(sb.ScalebayesError, match="others= compares one law's fits"):
        sb.write_group_reports(sb.load_fit(saved), tmp_path / "other", others={})


def test_a_groups_page_and_runs_name_the_group(known):
    from scalebayes.report import _header

    one = known[2].for_group("g1")
    assert "<h1>scalebayes report: chinchilla, group g1</h1>" in _header(one)
    assert "; 1 group;" in str(one.runs) or str(one.runs).endswith("; 1 group")


def test_group_folders_are_safe_names_kept_apart():
    from scalebayes.report import _group_folders

    assert _group_folders(["a/b", "a b", "..", "ok-1.2"]) == {
        "a/b": "a_b", "a b": "a_b_2", "..": "group", "ok-1.2": "ok-1.2"
    }  # fmt: skip


def test_cli_show_and_plot_a_grouped_fit(saved, tmp_path, capsys):
    assert main(["show", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "per group (median [90% interval])" in out and "group g2: 15 runs" in out
    assert main(["show", str(saved), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["groups"] == {g: 15 for g in GROUPS}
    assert {row["parameter"] for row in record["population"]} == set(LAW_NAMES)
    image = tmp_path / "forest.png"
    assert main(["plot", str(saved), "--kind", "forest", "--out", str(image)]) == 0
    assert image.stat().st_size > 0
    assert main(["plot", str(saved), "--kind", "residuals", "--out", str(image)]) == 2
    assert "name one group" in capsys.readouterr().err


def test_compare_ranks_grouped_fits_by_loo(known):
    """Pooling choices are ranked like laws: PSIS-LOO over every run, whatever its group."""
    fit = known[2]
    table = sb.compare({"pooled": fit, "the same": fit}).table
    assert set(table.index) == {"pooled", "the same"}
    assert table["elpd"].iloc[0] == pytest.approx(table["elpd"].iloc[1])
