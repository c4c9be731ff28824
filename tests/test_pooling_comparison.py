"""Is pooling worth it? Complete, partial and no pooling compared by PSIS-LOO and leave-future-out."""

from __future__ import annotations

import numpy as np
import pytest

import scalebayes as sb
from scalebayes.cli import main
from scalebayes.groups.pooling_comparison import choice_pooling, compare_pooling, top_budgets
from scalebayes.likelihood import Likelihood
from scalebayes.simulation import EPOCH_CHINCHILLA, isoflop_design, simulate_groups

BUDGETS = [1e18, 1e19, 1e20, 1e21]


def ladders(spread: float, seed: int = 3):
    design = isoflop_design(BUDGETS, points_per_budget=6, span=20)
    return simulate_groups(
        "chinchilla", EPOCH_CHINCHILLA, {"alpha": spread, "E": spread}, [design] * 3, seed=seed
    )[0]


def test_choices_and_the_held_out_budgets():
    law, noise = (
        sb.load_law("chinchilla"),
        Likelihood(discrepancy="none").for_law(sb.load_law("chinchilla")),
    )
    assert set(choice_pooling("complete", law, noise).modes.values()) == {"shared"}
    assert set(choice_pooling("separate", law, noise).modes.values()) == {"separate"}
    assert choice_pooling("partial", law, noise) == sb.Pooling()
    with pytest.raises(sb.ScalebayesError, match="expected one of complete, partial, separate"):
        choice_pooling("some", law, noise)
    runs = ladders(0.1)
    held = top_budgets(runs, 1)
    # Each group's largest budget (6 runs of 24), and nothing else.
    assert held.sum() == 18 and np.all(runs.C[held] > 5e20) and np.all(runs.C[~held] < 5e20)
    with pytest.raises(sb.ScalebayesError, match="leaves fewer than 2 to fit"):
        top_budgets(runs, 3)
    with pytest.raises(sb.ScalebayesError, match="holdout_top"):
        top_budgets(runs, 0)


def test_cli_compare_refuses_before_work(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    ladders(0.1).table[["N", "D", "loss", "group"]].rename(columns={"group": "mix"}).to_csv(
        path, index=False
    )
    assert main(["compare", str(path), "--group", "mix", "--laws", "chinchilla", "kaplan"]) == 2
    assert "--laws takes one law" in capsys.readouterr().err
    assert main(["compare", str(path), "--group", "mix", "--method", "lfo"]) == 2
    assert "no --method, --cuts or --out-dir" in capsys.readouterr().err
    assert main(["compare", str(path), "--group", "mix", "--holdout-top", "3"]) == 2
    assert "leaves fewer than 2 to fit" in capsys.readouterr().err


@pytest.mark.slow
def test_pooling_is_chosen_by_what_the_groups_share():
    """Known truth, three simulated ladders (4 budgets x 6 runs, 1 % noise), 2 x 300 draws.

    Ladders whose alpha and E differ by a log-scale sd of 0.1: one law for all (complete
    pooling) cannot fit them, and both scores rank it last, far behind (measured: LOO -191 elpd,
    leave-future-out -37 +- 5). Identical ladders: one law is the truth, and PSIS-LOO must not
    prefer separate fits (measured: complete first, separate -11.6 +- 3.5), nor leave-future-out
    (separate -9.3 +- 2.2 behind partial).
    """
    plain = Likelihood(discrepancy="none")
    settings = {"chains": 2, "draws": 300, "warmup": 300}
    differ = compare_pooling(ladders(0.1), likelihood=plain, **settings)
    assert differ.loo.table.index[-1] == "complete"
    pooled = differ.future[differ.future["group"] == "all"].set_index("choice")
    assert pooled["elpd"].idxmin() == "complete"
    assert -pooled.loc["complete", "elpd_diff"] > 3 * pooled.loc["complete", "dse"]
    assert "complete" not in differ.verdict.split(";")[0]
    same = compare_pooling(ladders(0.0), likelihood=plain, **settings)
    assert same.loo.table.index[0] != "separate"
    pooled = same.future[same.future["group"] == "all"].set_index("choice")
    assert pooled["elpd"].idxmax() != "separate"
    text = str(same)
    assert "leave-future-out within each group" in text and "verdict:" in text
