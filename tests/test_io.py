"""One NetCDF file holds the whole fit; writes are atomic; bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
