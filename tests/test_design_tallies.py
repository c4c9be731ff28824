"""The sequential design benchmark's tallies (benchmarks/design_sequential.py) on a summary whose
answers are known by construction."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import design_sequential as ds


def _summary() -> pd.DataFrame:
    """Two tables at one level. On "a" posterior leads random by 50 % with random's spread 10 %;
    on "b" v_optimal leads posterior by 1 % with random's spread 20 %."""
    rows = [
        ("a", "posterior", 1.0, 0.0), ("a", "random", 1.5, 0.15), ("a", "v_optimal", 2.0, 0.0),
        ("a", "all_pool", 0.5, 0.0),  # never ranked
        ("b", "v_optimal", 1.00, 0.0), ("b", "posterior", 1.01, 0.0), ("b", "random", 2.0, 0.4),
    ]  # fmt: skip
    return pd.DataFrame(
        [
            {"table": t, "level": 0.1, "method": m, "interval_score_90": s, "is90_sd": sd}
            for t, m, s, sd in rows
        ]
    )


def test_separation_counts_only_leads_beyond_random_spread() -> None:
    (row,) = ds.separation(_summary()).to_dict(orient="records")
    assert row["tables"] == 2
    assert row["lead_beyond_random_spread"] == 1  # "a": 0.5 > 0.1; "b": 0.01 < 0.2
    assert abs(row["median_relative_lead"] - (0.5 + 0.01) / 2) < 1e-12
    assert abs(row["median_relative_random_spread"] - (0.1 + 0.2) / 2) < 1e-12


def test_mean_ranks_and_best_counts_leave_the_all_pool_fit_out() -> None:
    ranks = ds.mean_ranks(_summary()).set_index("method")["mean_rank"]
    assert ranks.to_dict() == {"posterior": 1.5, "v_optimal": 2.0, "random": 2.5}
    best = ds.best_counts(_summary()).set_index("method")["tables_best"]
    assert best.to_dict() == {"posterior": 1, "v_optimal": 1}
