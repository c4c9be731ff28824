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


def test_importing_the_library_changes_no_jax_setting():
    """Fitting and predicting apply the fit's precision as a context; configure() is explicit."""
    code = (
        "import jax, scalebayes as sb\n"
        "before = (jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir)\n"
        "runs = sb.simulate('power_c', {'E': 1.8, 'A': 30.0, 'alpha': 0.05},"
        " sb.isoflop_design([1e19, 1e20, 1e21], points_per_budget=3), seed=0)\n"
        "sb.fit(runs, 'power_c', likelihood=sb.Likelihood(discrepancy='none'),"
        " chains=2, warmup=50, draws=50)\n"
        "print(before == (jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir))\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_no_submodule_is_named_like_an_export():
    """Importing a submodule binds its name on the package: one named like an exported function
    (backtest.py and sb.backtest) would replace the function after its first import."""
    import pkgutil

    from scalebayes import _EXPORTS

    modules = {module.name for module in pkgutil.iter_modules(sb.__path__)}
    assert not modules & set(_EXPORTS)
