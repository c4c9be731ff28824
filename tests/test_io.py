"""One NetCDF file holds the whole fit; writes are atomic; bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import scalebayes as sb
from scalebayes.errors import FitFileError, ScalebayesError


def test_round_trip(chinchilla_fit, tmp_path):
    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    loaded = sb.load_fit(path)
    assert loaded.law.to_dict() == chinchilla_fit.law.to_dict()
    assert loaded.likelihood == chinchilla_fit.likelihood
    assert loaded.settings == chinchilla_fit.settings
    assert loaded.diagnostics == chinchilla_fit.diagnostics
    assert loaded.runs.source == chinchilla_fit.runs.source
    np.testing.assert_array_equal(
        loaded.runs.to_frame().to_numpy(), chinchilla_fit.runs.to_frame().to_numpy()
    )
    for name in chinchilla_fit.param_names:
        np.testing.assert_array_equal(loaded.posterior[name], chinchilla_fit.posterior[name])
    np.testing.assert_array_equal(
        loaded.idata["log_likelihood"]["loss"], chinchilla_fit.idata["log_likelihood"]["loss"]
    )
    assert loaded.summary().round(8).equals(chinchilla_fit.summary().round(8))


def test_interrupted_save_leaves_nothing(chinchilla_fit, tmp_path, monkeypatch):
    target = tmp_path / "fit.nc"

    def crash(self, path, **kwargs):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", crash)
    with pytest.raises(KeyboardInterrupt):
        sb.save_fit(chinchilla_fit, target)
    assert list(tmp_path.iterdir()) == []


def test_save_keeps_old_file_until_new_one_is_complete(chinchilla_fit, tmp_path, monkeypatch):
    target = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    before = target.read_bytes()
    monkeypatch.setattr(xr.DataTree, "to_netcdf", lambda self, path, **kw: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        sb.save_fit(chinchilla_fit, target)
    assert target.read_bytes() == before


def test_bad_files(tmp_path):
    with pytest.raises(FitFileError, match="no such file"):
        sb.load_fit(tmp_path / "missing.nc")
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"this is not netcdf")
    with pytest.raises(FitFileError, match="not a readable NetCDF"):
        sb.load_fit(garbage)
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(FitFileError, match="not a scalebayes fit"):
        sb.load_fit(foreign)


def test_future_schema_is_refused(chinchilla_fit, tmp_path):
    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    tree.attrs["scalebayes_schema_version"] = 99
    newer = tmp_path / "newer.nc"
    tree.to_netcdf(newer, engine="h5netcdf")
    with pytest.raises(FitFileError, match="upgrade scalebayes"):
        sb.load_fit(newer)


def test_damaged_metadata_is_refused(chinchilla_fit, tmp_path):
    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    tree.attrs["scalebayes_law"] = "{not json"
    damaged = tmp_path / "damaged.nc"
    tree.to_netcdf(damaged, engine="h5netcdf")
    with pytest.raises(FitFileError, match="damaged"):
        sb.load_fit(damaged)


def test_save_rejects_bad_paths(chinchilla_fit, tmp_path):
    with pytest.raises(ScalebayesError, match=r"\.nc"):
        sb.save_fit(chinchilla_fit, tmp_path / "fit.pickle")
    with pytest.raises(ScalebayesError, match="does not exist"):
        sb.save_fit(chinchilla_fit, tmp_path / "nowhere" / "fit.nc")


def test_reference_is_saved_exactly(chinchilla_fit, tmp_path):
    """The fit's anchor (the GP's spans, mode and projection) is in the file, bit for bit."""
    loaded = sb.load_fit(sb.save_fit(chinchilla_fit, tmp_path / "fit.nc"))
    assert set(loaded.log_ref) == set(chinchilla_fit.log_ref)
    assert any(key.startswith("_gp_") for key in loaded.log_ref)
    for key, value in chinchilla_fit.log_ref.items():
        np.testing.assert_array_equal(loaded.log_ref[key], value, err_msg=key)


def test_decisions_on_a_loaded_fit_never_re_optimise(chinchilla_fit, tmp_path, monkeypatch):
    """load_fit then predict, optimal, plan: the stored reference is used, no L-BFGS runs."""
    from scalebayes import model

    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")

    def refuse(*args, **kwargs):
        raise AssertionError("the plain law's mode was searched again")

    monkeypatch.setattr(model, "plain_mode", refuse)
    loaded = sb.load_fit(path)
    before = sb.predict(chinchilla_fit, N=7e10, D=1.4e12).loss.to_numpy()
    np.testing.assert_array_equal(sb.predict(loaded, N=7e10, D=1.4e12).loss.to_numpy(), before)
    sb.optimal(loaded, [1e22])
    sb.plan(loaded, 2.2)


@pytest.mark.parametrize(
    ("drop", "named"),
    [("log_likelihood", "group log_likelihood"), ("scalebayes_log_ref", "scalebayes_log_ref")],
)
def test_incomplete_fit_file_names_what_is_missing(chinchilla_fit, tmp_path, drop, named):
    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    if drop in tree.attrs:
        del tree.attrs[drop]
    else:
        del tree[drop]
    incomplete = tmp_path / "incomplete.nc"
    tree.to_netcdf(incomplete, engine="h5netcdf")
    with pytest.raises(FitFileError, match=f"not a complete scalebayes fit: missing .*{named}"):
        sb.load_fit(incomplete)


def test_every_fit_the_library_returns_round_trips(chinchilla_fit, tmp_path):
    """The law's module of a GP fit is a fit too: it saves, loads and predicts the same."""
    law_module = chinchilla_fit.law_module()
    loaded = sb.load_fit(sb.save_fit(law_module, tmp_path / "law.nc"))
    assert loaded.likelihood == law_module.likelihood
    np.testing.assert_array_equal(
        sb.predict(loaded, N=1e10, D=2e11).loss.to_numpy(),
        sb.predict(law_module, N=1e10, D=2e11).loss.to_numpy(),
    )


def test_saved_fit_carries_its_parameter_table(chinchilla_fit, tmp_path):
    """`show` reads the table saved with the fit: identical to recomputing it from the draws."""
    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    loaded = sb.load_fit(path)
    assert 0.9 in loaded.summaries
    stored = loaded.summary()
    loaded.summaries.clear()
    recomputed = loaded.summary()
    pd.testing.assert_frame_equal(stored, recomputed, check_exact=False, rtol=1e-12)
    # The cache belongs to the draws: a fit derived from them computes its own table.
    assert 0.9 not in loaded.law_module().summaries


def _heavy_modules_after(argvs: list[list[str]], heavy: tuple[str, ...]) -> list[str]:
    """Which of ``heavy`` one fresh process has imported after each CLI call in ``argvs``, printed."""
    import subprocess
    import sys

    code = "import sys\nfrom scalebayes.cli import main\n" + "".join(
        f"assert main({argv!r}) == 0\n"
        f"print('imported:', sorted(m for m in {heavy!r} if m in sys.modules))\n"
        for argv in argvs
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    return [line.removeprefix("imported: ") for line in lines if line.startswith("imported: ")]


def test_showing_a_saved_fit_loads_no_jax(chinchilla_fit, tmp_path):
    # Nor xarray: the description is read with h5py (scalebayes.saved).
    path = str(sb.save_fit(chinchilla_fit, tmp_path / "fit.nc"))
    heavy = ("jax", "numpyro", "arviz_stats", "xarray")
    assert _heavy_modules_after([["show", path]], heavy) == ["[]"]


def test_the_light_description_is_the_fit_s_own(chinchilla_fit, tmp_path):
    """read_saved_fit gives what load_fit gives: the same parts, text and JSON record."""
    from scalebayes.describe import fit_record, fit_text
    from scalebayes.errors import ScalebayesError
    from scalebayes.saved import SavedFit, read_saved_fit

    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    light, whole = read_saved_fit(path), sb.load_fit(path)
    assert isinstance(light, SavedFit)
    assert (light.law, light.likelihood) == (whole.law, whole.likelihood)
    assert (light.settings, light.diagnostics) == (whole.settings, whole.diagnostics)
    pd.testing.assert_frame_equal(light.runs.table, whole.runs.table)
    assert fit_text(light) == fit_text(whole) and fit_record(light) == fit_record(whole)
    with pytest.raises(ScalebayesError, match="90% intervals"):
        light.summary(0.5)


def test_files_the_light_reader_cannot_describe_go_to_load_fit(chinchilla_fit, tmp_path):
    """Foreign, damaged and table-less files: None, and load_description says what load_fit says."""
    from scalebayes.describe import fit_text
    from scalebayes.io import load_description
    from scalebayes.saved import read_saved_fit

    text = tmp_path / "fit.nc"
    text.write_text("not a fit")
    tree = xr.open_datatree(sb.save_fit(chinchilla_fit, tmp_path / "a.nc"), engine="h5netcdf")
    tree = tree.load()
    del tree.attrs["scalebayes_summary"]  # as files before the table was stored
    old = tmp_path / "old.nc"
    tree.to_netcdf(old, engine="h5netcdf")
    assert read_saved_fit(text) is None and read_saved_fit(tmp_path / "none.nc") is None
    assert read_saved_fit(old) is None
    with pytest.raises(FitFileError, match="not a readable NetCDF file"):
        load_description(text)
    assert fit_text(load_description(old)) == fit_text(chinchilla_fit)


def test_decisions_on_a_saved_fit_load_no_jax(chinchilla_fit, tmp_path):
    """predict, chance and plan compute in NumPy: no JAX to import, no program to compile.

    One process runs the three in turn (a process each would import the stack three times),
    and says after each what it has imported.
    """
    path = str(sb.save_fit(chinchilla_fit, tmp_path / "fit.nc"))
    argvs = [
        ["predict", path, "--N", "7e10", "--D", "1.4e12"],
        ["chance", path, "--N", "7e10", "--D", "1.4e12", "--target", "2.2"],
        ["plan", path, "--target", "2.2"],
    ]
    assert _heavy_modules_after(argvs, ("jax", "numpyro")) == ["[]"] * 3


def test_describing_a_fit_opens_no_draws(chinchilla_fit, tmp_path):
    """load_fit(groups=()), what show reads: the same text, the runs' groups only."""
    from scalebayes.describe import fit_record, fit_text

    path = sb.save_fit(chinchilla_fit, tmp_path / "fit.nc")
    whole, described = sb.load_fit(path), sb.load_fit(path, groups=())
    assert set(described.idata.children) == {"observed_data", "constant_data"}
    assert fit_text(described) == fit_text(whole)
    assert fit_record(described) == fit_record(whole)
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    del tree["constant_data"]
    incomplete = tmp_path / "incomplete.nc"
    tree.to_netcdf(incomplete, engine="h5netcdf")
    with pytest.raises(FitFileError, match="missing group constant_data"):
        sb.load_fit(incomplete, groups=())
