"""Honest beyond the data: L*(C) never rises with C, and every decision says how far out it is.

No NUTS: fits are built from known draws (prior draws of each catalogue law, or Epoch's
constants), so the checks are exact and fast. That the GP's mean does not bend L* is checked
on the GP fit in tests/test_gp.py.
"""

from __future__ import annotations

import json
import warnings

import jax
import numpy as np
import pytest
from tests.known_fits import chinchilla_known, ladder

import scalebayes as sb
from scalebayes.errors import AllocationWarning, ExtrapolationWarning
from scalebayes.testing import fit_from_draws

BUDGETS = np.geomspace(1e17, 1e40, 24)  # the ladder's runs reach 1e21
ALLOCATING = sorted(
    name
    for name, law in sb.available_laws().items()
    if {"N", "D"} <= set(law.inputs) and set(law.inputs) <= {"N", "D", "C"}
)


def _losses(fit: sb.Fit) -> np.ndarray:
    """L* per draw (rows) and budget (columns), search-bound and far-out warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocationWarning)
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return sb.optimal(fit, BUDGETS).loss.to_numpy().reshape(-1, len(BUDGETS))


def _never_rises(loss: np.ndarray) -> None:
    # The loss at an optimum is flat to first order: solver error in log N of 1e-9 moves it by
    # ~1e-18 relative, so 1e-12 separates rounding from a real rise by six orders.
    rises = np.diff(loss, axis=1) > 1e-12 * loss[:, :-1]
    assert not rises.any(), np.argwhere(rises)[:5]


@pytest.mark.parametrize("name", ALLOCATING)
def test_optimal_loss_never_rises_with_compute_for_any_prior_draw(name):
    law = sb.load_law(name)
    keys = jax.random.split(jax.random.key(3), len(law.params))
    draws = {
        param: np.asarray(law.params[param].prior.to_numpyro().sample(key, (2, 100)))
        for key, param in zip(keys, law.params, strict=True)
    }
    draws["sigma"] = np.full((2, 100), 0.02)
    _never_rises(_losses(fit_from_draws(law, ladder(), draws)))


def test_optimal_far_beyond_the_runs_warns_and_says_how_far():
    fit = chinchilla_known()
    with pytest.warns(ExtrapolationWarning, match=r"1 budget beyond 100x .* up to 1e\+40"):
        allocation = sb.optimal(fit, [1e21, 1e40])
    _, words = sb.allocate.extrapolation_of(fit, allocation)
    assert words[0] == "inside the fitted range"
    assert words[1].startswith("1e+19x beyond the largest C seen")


def test_decision_commands_say_how_far_beyond(tmp_path, capsys):
    from scalebayes.cli import main

    path = str(sb.save_fit(chinchilla_known(), tmp_path / "fit.nc"))
    assert main(["optimal", path, "--compute", "1e21", "1e40"]) == 0
    captured = capsys.readouterr()
    assert "extrapolation" in captured.out and "1e+19x beyond the largest C seen" in captured.out
    assert "warning: 1 budget beyond 100x the largest fitted run's compute" in captured.err
    assert main(["plan", path, "--target", "2.3", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["extrapolation"].endswith("seen") and row["beyond"] > 1


def test_tokens_per_parameter_is_its_own_axis_of_extrapolation():
    # Over-training: N and D each inside their fitted ranges, D/N far beyond every run's. The
    # law's D term is then extrapolated (issue 15: losses 3.5 % above the law past ~80 D/N).
    fit = chinchilla_known()
    runs = fit.runs.table
    ratio = runs["D"] / runs["N"]
    n, d = float(runs["N"].min()), float(runs["D"].max())
    assert runs["N"].min() <= n <= runs["N"].max() and runs["D"].min() <= d <= runs["D"].max()
    table = sb.predict(fit, N=n, D=d).summary()
    expected = d / n / ratio.max()
    assert expected > 1.5
    assert table.loc[0, "beyond"] == pytest.approx(expected)
    assert f"{expected:.3g}x beyond the largest D/N seen" in table.loc[0, "extrapolation"]
    # Heavy inference (T = 1e14 tokens) pushes the plan to ~4500 D/N, past this ladder's 600.
    over = sb.plan(fit, 2.3, inference_tokens=1e14).table.iloc[0]
    assert over["tokens_per_param"] > 2 * ratio.max()
    assert "x beyond the largest D/N seen" in over["extrapolation"]
