"""scalebayes: Bayesian scaling-law inference with NumPyro, carried into decisions.

>>> import scalebayes as sb
>>> runs = sb.load_runs("runs.csv")                  # doctest: +SKIP
>>> fit = sb.fit(runs, law="chinchilla")             # doctest: +SKIP
>>> fit.summary()                                    # doctest: +SKIP

Importing this package is cheap: JAX and NumPyro load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_runs": "scalebayes.data",
    "Runs": "scalebayes.data",
    "Law": "scalebayes.laws",
    "Param": "scalebayes.laws",
    "load_law": "scalebayes.laws",
    "make_law": "scalebayes.laws",
    "available_laws": "scalebayes.laws",
    "Prior": "scalebayes.priors",
    "Likelihood": "scalebayes.likelihood",
    "Discrepancy": "scalebayes.discrepancy",
    "GP": "scalebayes.discrepancy",
    "Curvature": "scalebayes.discrepancy",
    "NoDiscrepancy": "scalebayes.discrepancy",
    "fit": "scalebayes.fitting",
    "fit_batch": "scalebayes.fitting",
    "fit_groups": "scalebayes.groups.fitting",
    "Pooling": "scalebayes.groups.pooling",
    "GroupedFit": "scalebayes.groups.result",
    "compare_pooling": "scalebayes.groups.pooling_comparison",
    "PoolingComparison": "scalebayes.groups.pooling_comparison",
    "Fit": "scalebayes.results",
    "Diagnostics": "scalebayes.results",
    "Settings": "scalebayes.results",
    "FitSettings": "scalebayes.results",
    "configure": "scalebayes.runtime",
    "load_fit": "scalebayes.io",
    "save_fit": "scalebayes.io",
    "simulate": "scalebayes.simulation",
    "isoflop_design": "scalebayes.simulation",
    "grid_design": "scalebayes.simulation",
    # Modules are not named after their functions (predict.py): importing a submodule binds its
    # name on the package, which would shadow the function `scalebayes.predict`.
    "predict": "scalebayes.prediction",
    "Prediction": "scalebayes.prediction",
    "optimal": "scalebayes.allocation",
    "Allocation": "scalebayes.allocate",
    "fit_isoflops": "scalebayes.allocation.isoflop",
    "isoflop_optimal": "scalebayes.allocation.isoflop",
    "IsoflopFit": "scalebayes.allocation.profiles",
    "ProfileAllocation": "scalebayes.allocation.profiles",
    "ProfileModel": "scalebayes.allocation.profile",
    "find_budgets": "scalebayes.allocation.budgets",
    "fit_envelope": "scalebayes.allocation.envelope",
    "EnvelopeFit": "scalebayes.allocation.envelope",
    "load_curves": "scalebayes.curves",
    "Curves": "scalebayes.curves",
    "compare_approaches": "scalebayes.allocation",
    "Approaches": "scalebayes.allocation.verdict",
    "Budgets": "scalebayes.allocation.budgets",
    "chance": "scalebayes.planning",
    "Chance": "scalebayes.planning",
    "plan": "scalebayes.planning",
    "Plan": "scalebayes.planning",
    "DecisionTable": "scalebayes.decision_tables",
    "prediction_table": "scalebayes.decision_tables",
    "allocation_table": "scalebayes.decision_tables",
    "chance_table": "scalebayes.decision_tables",
    "plan_table": "scalebayes.decision_tables",
    "next_runs": "scalebayes.design",
    "NextRuns": "scalebayes.design",
    "candidate_grid": "scalebayes.design",
    "make_objective": "scalebayes.design",
    "LossAt": "scalebayes.design",
    "LossOver": "scalebayes.design",
    "RunLossAt": "scalebayes.design",
    "OptimalN": "scalebayes.design",
    "ChanceAt": "scalebayes.design",
    "AllocationRegret": "scalebayes.design",
    "compare": "scalebayes.comparison",
    "Comparison": "scalebayes.comparison",
    "compare_laws": "scalebayes.law_comparison",
    "default_laws": "scalebayes.law_comparison",
    "LawComparison": "scalebayes.law_comparison",
    "lfo": "scalebayes.leave_future_out",
    "LFO": "scalebayes.leave_future_out",
    "average": "scalebayes.averaging",
    "backtest": "scalebayes.backtesting",
    "Backtest": "scalebayes.backtesting",
    "calibrate": "scalebayes.calibration",
    "Calibration": "scalebayes.calibration",
    "ScalebayesError": "scalebayes.errors",
    "RunsFileError": "scalebayes.errors",
    "LawError": "scalebayes.errors",
    "LawFileError": "scalebayes.errors",
    "PriorError": "scalebayes.errors",
    "FitFileError": "scalebayes.errors",
    "ConvergenceWarning": "scalebayes.errors",
    "DataWarning": "scalebayes.errors",
    "ExtrapolationWarning": "scalebayes.errors",
    "UnreachableTargetError": "scalebayes.errors",
    "AllocationWarning": "scalebayes.errors",
    "IsoflopError": "scalebayes.errors",
    "EnvelopeError": "scalebayes.errors",
    "SweepEdgeWarning": "scalebayes.errors",
    "ImportanceWarning": "scalebayes.errors",
    "write_report": "scalebayes.report",
    "write_group_reports": "scalebayes.report",
    "parameter_table": "scalebayes.describe",
    "run_demo": "scalebayes.demo",
    "Demo": "scalebayes.demo",
}
# Submodules reachable as attributes without an import (``sb.plots.bands``); loaded on first use.
_SUBMODULES = ("plots",)

__all__ = [  # noqa: RUF022 - grouped by module, as in _EXPORTS
    "load_runs",
    "Runs",
    "Law",
    "Param",
    "load_law",
    "make_law",
    "available_laws",
    "Prior",
    "Likelihood",
    "Discrepancy",
    "GP",
    "Curvature",
    "NoDiscrepancy",
    "fit",
    "fit_batch",
    "fit_groups",
    "Pooling",
    "GroupedFit",
    "compare_pooling",
    "PoolingComparison",
    "Fit",
    "Diagnostics",
    "Settings",
    "FitSettings",
    "configure",
    "load_fit",
    "save_fit",
    "simulate",
    "isoflop_design",
    "grid_design",
    "predict",
    "Prediction",
    "optimal",
    "Allocation",
    "fit_isoflops",
    "isoflop_optimal",
    "IsoflopFit",
    "ProfileAllocation",
    "ProfileModel",
    "find_budgets",
    "Budgets",
    "fit_envelope",
    "EnvelopeFit",
    "load_curves",
    "Curves",
    "compare_approaches",
    "Approaches",
    "chance",
    "Chance",
    "plan",
    "Plan",
    "DecisionTable",
    "prediction_table",
    "allocation_table",
    "chance_table",
    "plan_table",
    "next_runs",
    "NextRuns",
    "candidate_grid",
    "make_objective",
    "LossAt",
    "LossOver",
    "RunLossAt",
    "OptimalN",
    "ChanceAt",
    "AllocationRegret",
    "compare",
    "Comparison",
    "compare_laws",
    "default_laws",
    "LawComparison",
    "lfo",
    "LFO",
    "average",
    "backtest",
    "Backtest",
    "calibrate",
    "Calibration",
    "ScalebayesError",
    "RunsFileError",
    "LawError",
    "LawFileError",
    "PriorError",
    "FitFileError",
    "ConvergenceWarning",
    "DataWarning",
    "ExtrapolationWarning",
    "UnreachableTargetError",
    "AllocationWarning",
    "IsoflopError",
    "EnvelopeError",
    "SweepEdgeWarning",
    "ImportanceWarning",
    "write_report",
    "write_group_reports",
    "parameter_table",
    "run_demo",
    "Demo",
    "plots",
    "__version__",
]

if TYPE_CHECKING:
    from scalebayes import plots
    from scalebayes.allocate import Allocation
    from scalebayes.allocation import compare_approaches, optimal
    from scalebayes.allocation.budgets import Budgets, find_budgets
    from scalebayes.allocation.envelope import EnvelopeFit, fit_envelope
    from scalebayes.allocation.isoflop import fit_isoflops, isoflop_optimal
    from scalebayes.allocation.profile import ProfileModel
    from scalebayes.allocation.profiles import IsoflopFit, ProfileAllocation
    from scalebayes.allocation.verdict import Approaches
    from scalebayes.averaging import average
    from scalebayes.backtesting import Backtest, backtest
    from scalebayes.calibration import Calibration, calibrate
    from scalebayes.comparison import Comparison, compare
    from scalebayes.curves import Curves, load_curves
    from scalebayes.data import Runs, load_runs
    from scalebayes.decision_tables import (
        DecisionTable,
        allocation_table,
        chance_table,
        plan_table,
        prediction_table,
    )
    from scalebayes.demo import Demo, run_demo
    from scalebayes.describe import parameter_table
    from scalebayes.design import (
        AllocationRegret,
        ChanceAt,
        LossAt,
        LossOver,
        NextRuns,
        OptimalN,
        RunLossAt,
        candidate_grid,
        make_objective,
        next_runs,
    )
    from scalebayes.discrepancy import GP, Curvature, Discrepancy, NoDiscrepancy
    from scalebayes.errors import (
        AllocationWarning,
        ConvergenceWarning,
        DataWarning,
        EnvelopeError,
        ExtrapolationWarning,
        FitFileError,
        ImportanceWarning,
        IsoflopError,
        LawError,
        LawFileError,
        PriorError,
        RunsFileError,
        ScalebayesError,
        SweepEdgeWarning,
        UnreachableTargetError,
    )
    from scalebayes.fitting import fit, fit_batch
    from scalebayes.io import load_fit, save_fit
    from scalebayes.law_comparison import LawComparison, compare_laws, default_laws
    from scalebayes.laws import Law, Param, available_laws, load_law, make_law
    from scalebayes.leave_future_out import LFO, lfo
    from scalebayes.likelihood import Likelihood
    from scalebayes.planning import Chance, Plan, chance, plan
    from scalebayes.prediction import Prediction, predict
    from scalebayes.priors import Prior
    from scalebayes.report import write_group_reports, write_report
    from scalebayes.results import Diagnostics, Fit, FitSettings, Settings
    from scalebayes.runtime import configure
    from scalebayes.simulation import grid_design, isoflop_design, simulate


def __getattr__(name: str) -> Any:
    # Lazy: `scalebayes --help` must not pay for importing JAX.
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # looked up once
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"scalebayes.{name}")
    raise AttributeError(f"module 'scalebayes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
