"""The public API: what `import scalebayes as sb` exposes is exactly `sb.__all__`, and cheap."""

from __future__ import annotations

import importlib
import subprocess
import sys

import scalebayes as sb


def test_all_lists_every_export_and_each_resolves():
    from scalebayes import _EXPORTS, _SUBMODULES

    assert set(sb.__all__) == set(_EXPORTS) | set(_SUBMODULES) | {"__version__"}
    assert len(sb.__all__) == len(set(sb.__all__))  # no name twice
    for name in sb.__all__:
        assert getattr(sb, name) is not None, name
    # Each export is the object of the module it is documented in, not a copy.
    for name, module in _EXPORTS.items():
        assert getattr(sb, name) is getattr(importlib.import_module(module), name)
    assert set(sb.__all__) <= set(dir(sb))


def test_decisions_take_one_fit_and_averaging_has_its_own_functions():
    """predict and optimal take one fit; several laws are averaged explicitly."""
    import inspect

    from scalebayes import averaging

    for fn in (sb.predict, sb.optimal):
        assert "weights" not in inspect.signature(fn).parameters
    assert {"average", "predict_mixture", "optimal_mixture"} <= set(averaging.__all__)


def test_importing_the_package_does_not_import_jax():
    code = "import sys, scalebayes; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fitting_changes_no_jax_setting(synthetic_runs):
    """A fit applies its precision as a context and leaves the process's JAX settings alone.

    This process runs in float64 (conftest), so a float32 fit must switch precision for its
    own work and switch back; the compile cache is the process's, set or not, before and after.
    The shape is test_precision's float32 fit: no compile of its own.
    """
    import jax
    from tests.conftest import CI_FIT, PLAIN

    before = (jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir)
    fit = sb.fit(synthetic_runs, "chinchilla", likelihood=PLAIN, precision="float32", **CI_FIT)
    assert fit.posterior["alpha"].dtype == "float32"
    sb.predict(fit, N=7e10, D=1.4e12)
    assert (jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir) == before


def test_nothing_imports_beside_the_main_thread_once_the_chains_are_done(
    synthetic_runs, monkeypatch
):
    """The import preloaded while the chains run is over before the fit goes on.

    A fresh clone's CI once failed so: the fit's diagnostics imported arviz-stats while the
    preloading thread still was, and SciPy's circular imports met halfway ("partially
    initialized module"). Here the preload is made slower than sampling, so a fit that did not
    wait for it would return with the thread still alive. The plain fit's shape compiles nothing
    new (chinchilla_plain_fit's).
    """
    import threading
    import time

    from tests.conftest import CI_FIT, PLAIN

    from scalebayes import engine

    slow = engine._preload
    monkeypatch.setattr(engine, "_preload", lambda module: (time.sleep(3.0), slow(module)))
    sb.fit(synthetic_runs, "chinchilla", likelihood=PLAIN, seed=1, **CI_FIT)
    assert not [t for t in threading.enumerate() if t.name == "scalebayes-preload"]


def test_no_submodule_is_named_like_an_export():
    """Importing a submodule binds its name on the package: one named like an exported function
    (backtest.py and sb.backtest) would replace the function after its first import."""
    import pkgutil

    from scalebayes import _EXPORTS

    modules = {module.name for module in pkgutil.iter_modules(sb.__path__)}
    assert not modules & set(_EXPORTS)
