"""Shared fixtures: one compiled sampler and a few fits reused by every test that needs NUTS."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import jax
import pytest

# Tests call JAX directly (laws, the model) as well as through the library, which applies each
# fit's precision as a context: float64 here too, as the library's default.
jax.config.update("jax_enable_x64", True)
# As a user's process gets from scalebayes.fit (at least 8): 4-chain fits run one chain per
# device, the default path; the batch fits in test_batch cover a device with several chains.
jax.config.update("jax_num_cpu_devices", 4)
# A compile cache for this run only: empty when the suite starts (as on a new machine), shared
# by this process and the CLI and example processes it starts, so a program the suite needs
# twice compiles once. SCALEBAYES_COMPILE_CACHE=0 (or a folder) in the environment wins.
# pytest-xdist's workers inherit the folder from the process that starts them.
if os.environ.get("SCALEBAYES_COMPILE_CACHE", "") in ("", "1"):
    _SESSION_CACHE = tempfile.mkdtemp(prefix="scalebayes-tests-jax-")
    atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)
    os.environ["SCALEBAYES_COMPILE_CACHE"] = _SESSION_CACHE
if os.environ["SCALEBAYES_COMPILE_CACHE"] != "0":
    jax.config.update("jax_compilation_cache_dir", os.environ["SCALEBAYES_COMPILE_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)

from scalebayes.likelihood import Likelihood  # noqa: E402 (after JAX's settings)

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CHINCHILLA_CSV = SHARED_DATA / "chinchilla_svg_extracted.csv"

# Small but honest NUTS settings for CI: every fit in the suite uses these, so one compile serves all.
CI_FIT = {"chains": 4, "warmup": 500, "draws": 500}

# The plain law, for fits where the GP discrepancy is not what a test is about: one sampling
# stage instead of two, and the same compiled sampler as the default fit's first stage (which
# is exactly this fit), so once chinchilla_fit exists a plain fit of 81 runs compiles nothing.
PLAIN = Likelihood(discrepancy="none")

# Seeds of the ladders fitted once per session (ladder_fits) for the checks across seeds.
LADDER_SEEDS = (100, 101, 102, 103, 104)


def assert_healthy(d) -> None:
    """Sampler health with margins, not knife edges.

    R-hat's own noise at 4 x 500 draws is ~0.005 (a healthy fit reads 1.011 on one CPU and 1.008
    on another), and one divergence in 2000 transitions comes and goes with the last bits of
    floating point. A broken fit is far beyond these bounds (R-hat > 1.1, ESS < 100, dozens of
    divergences), so they separate healthy from broken on any machine.
    """
    assert d.max_rhat < 1.03, d
    assert d.min_ess_bulk > 200, d
    assert d.n_divergent <= 10, d


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the long statistical checks")


# pytest-xdist sends each group of tests to one worker (SharedSamplerScheduling below). A group is
# a test file, except files that compile the same samplers, which share a worker so that each
# program compiles once (SAME_SAMPLERS). Groups start heaviest first (HEAVIEST, from the
# suite's --durations=0 on 2 cores, summed per group; --no-loadscope-reorder keeps this order):
# a long file that started last would leave the other core idle at the end. The first group
# needs the session's shared fit and the second does not: when both needed it, the second worker
# spent its first 10 s waiting for the first to fit it.
SAME_SAMPLERS = {
    **dict.fromkeys(("test_api.py", "test_precision.py"), "float32 fit"),
    **dict.fromkeys(("test_compare.py", "test_cli_compare.py"), "power_c fit"),
}
HEAVIEST = (
    "test_plots_cli.py",  # 42 s; the first worker fits the shared chinchilla_fit here
    "test_isoflop.py",  # 35 s; no shared fit
    "test_gp.py",
    "test_plots.py",
    "power_c fit",
    "test_backtest.py",
    "test_inference.py",
    "test_whole_model_allocation.py",
    "test_planning.py",
    "test_interrupt.py",
    "test_design.py",
    "test_io.py",
    "test_quadratic.py",
    "test_cli_decisions.py",
    "float32 fit",
    "test_groups_decisions.py",
)


def _group(path: str) -> str:
    """The scheduling group of a test file (its path, relative or not)."""
    name = Path(path).name
    return SAME_SAMPLERS.get(name, name)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Files of one group on one worker (xdist's own xdist_group marker needs pytest < 9)."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedSamplerScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid.split("::", 1)[0])

    return SharedSamplerScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {group: i for i, group in enumerate(HEAVIEST)}
    # Stable: each file's tests stay together and in order.
    items.sort(key=lambda item: rank.get(_group(item.path.name), len(rank)))
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def truth() -> dict[str, float]:
    from scalebayes.simulation import EPOCH_CHINCHILLA

    return dict(EPOCH_CHINCHILLA)


@pytest.fixture(scope="session")
def synthetic_runs(truth):
    from scalebayes.simulation import CHINCHILLA_BUDGETS, isoflop_design, simulate

    return simulate("chinchilla", truth, isoflop_design(CHINCHILLA_BUDGETS), noise=0.01, seed=1)


@pytest.fixture(scope="session")
def chinchilla_fit(synthetic_runs, tmp_path_factory):
    """The default (GP) fit of the session's runs: fitted by the first worker that asks, saved,
    and loaded by every worker (its two stages compile once in the suite, not once a worker)."""
    import scalebayes as sb

    return once_per_session(
        tmp_path_factory,
        "chinchilla_fit.nc",
        lambda: sb.fit(synthetic_runs, "chinchilla", seed=1, **CI_FIT),
    )


def once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str, make) -> object:
    """The fit ``make()`` returns, made once for all pytest-xdist workers and loaded from a file.

    The first worker to ask makes and saves it, holding a lock that the others wait on (their
    core is then free for its compile threads); every worker returns the loaded file, so each
    sees the same object whichever made it. Where ``fcntl`` is missing (Windows) each worker
    makes its own.
    """
    import scalebayes as sb

    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return make()
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not path.exists():
                sb.save_fit(make(), path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return sb.load_fit(path)


@pytest.fixture(scope="session")
def chinchilla_plain_fit(synthetic_runs):
    """The session's runs, seed and settings with no discrepancy: chinchilla_fit's law stage."""
    import scalebayes as sb

    return sb.fit(synthetic_runs, "chinchilla", likelihood=PLAIN, seed=1, **CI_FIT)


@pytest.fixture(scope="session")
def ladder_runs(truth):
    """Chinchilla-scale isoFLOP ladders (81 runs to 3e21 FLOPs, 1 % noise), one per LADDER_SEEDS."""
    from scalebayes.simulation import CHINCHILLA_BUDGETS, isoflop_design, simulate

    design = isoflop_design(CHINCHILLA_BUDGETS)
    return [simulate("chinchilla", truth, design, noise=0.01, seed=seed) for seed in LADDER_SEEDS]


@pytest.fixture(scope="session")
def ladder_fits(ladder_runs):
    """Plain-law fits of ladder_runs (each seeded with its ladder's seed), for checks across seeds.

    Plain, not the default GP: what these check (the law's parameters, the allocation) is the
    law stage of a default fit, which is this fit exactly (tests/test_gp.py checks that). Same
    shape as chinchilla_fit's law stage: no compile, about half a second each on two cores.
    """
    import scalebayes as sb

    return [
        sb.fit(runs, "chinchilla", likelihood=PLAIN, seed=seed, **CI_FIT)
        for runs, seed in zip(ladder_runs, LADDER_SEEDS, strict=True)
    ]


@pytest.fixture(scope="session")
def chinchilla_csv() -> Path:
    if not CHINCHILLA_CSV.is_file():
        pytest.skip(f"{CHINCHILLA_CSV} not present (shared data lives beside the checkout)")
    return CHINCHILLA_CSV


@pytest.fixture(scope="session")
def chinchilla_lfo(synthetic_runs):
    """Leave-future-out of the true law at 3 compute cuts: 3 refits (CI_FIT, seed 5).

    On a CPU the refits take turns on the plain one-table sampler every worker compiles for
    chinchilla_plain_fit and ladder_fits: no compile of their own.

    The plain law: the holdout core does not depend on the discrepancy, and a staged GP refit
    costs twice the sampling (the GP's own coverage beyond the data is tested in test_gp).
    """
    import scalebayes as sb
    from scalebayes.leave_future_out import lfo

    plain = sb.Likelihood(discrepancy="none")
    return lfo(synthetic_runs, "chinchilla", cuts=3, seed=5, likelihood=plain, **CI_FIT)
