"""The GP discrepancy's optional quadratic: products of the centred log inputs beside the GP.

Its columns are projected off the law's tangent space like the GP's, are not clamped at the
box, so its spread keeps growing with the square of the distance from the runs, and a GP
without it (every fit saved before it existed) keeps its 36 columns.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from tests.known_fits import GP_LAW_TRUTH as LAW_TRUTH
from tests.known_fits import gp_ladder_log_inputs, tangent_part

from scalebayes.discrepancy import GP, GPAlone, from_dict
from scalebayes.discrepancy import hsgp as gp
from scalebayes.errors import LawError
from scalebayes.laws import load_law
from scalebayes.likelihood import Likelihood, model_param_names, reported_param_names
from scalebayes.model import reference_point

QUADRATIC = Likelihood(discrepancy=GP(curvature_scale=0.002))


@pytest.fixture(scope="module")
def ladder():
    """test_gp's ladder: 3 decades of compute, 5 sizes per budget."""
    return gp_ladder_log_inputs()


@pytest.fixture(scope="module")
def ref(ladder):
    law = load_law("chinchilla")
    noise = 0.005 * np.random.default_rng(0).standard_normal(ladder["N"].shape)
    loss = np.asarray(law.log_mean(LAW_TRUTH, ladder)) + noise
    return reference_point(law, QUADRATIC, ladder, loss)


def _draws(law, n_draws: int, amplitude: float, curvature: float, seed: int = 0) -> dict:
    """Weights from their prior given the two scales, shape (n_draws, 1) each; the law fixed."""
    names = gp.weight_names(law.inputs, quadratic=True)
    pairs = len(gp.quadratic_pairs(law.inputs))
    scale = np.concatenate(
        [amplitude * np.asarray(gp.spectral_scale(len(law.inputs))), np.full(pairs, curvature)]
    )
    w = np.random.default_rng(seed).standard_normal((len(names), n_draws, 1))
    params = {name: scale[k] * w[k] for k, name in enumerate(names)}
    params.update(LAW_TRUTH, gp_amplitude=amplitude)
    return params


def test_names_reported_and_hidden():
    law = load_law("chinchilla")
    names = model_param_names(law, QUADRATIC)
    k = gp.BASIS**2 + 3  # 36 GP weights, then N*N, N*D, D*D
    assert names[-k - 1] == "gp_amplitude" and names[-1] == f"gp_w{k - 1}"
    assert gp.quadratic_pairs(law.inputs) == (("N", "N"), ("N", "D"), ("D", "D"))
    reported = reported_param_names(law, QUADRATIC)
    assert "gp_amplitude" in reported and not any(n.startswith("gp_w") for n in reported)


@pytest.mark.parametrize("scale", [0.0, -0.002, float("inf"), "0.002"])
def test_a_scale_that_is_not_a_positive_number_is_refused(scale):
    with pytest.raises(LawError, match="curvature_scale"):
        GP(curvature_scale=scale)


def test_a_gp_saved_without_the_quadratic_keeps_its_columns(ref):
    stored = {"name": "gp", "amplitude_prior": "LogNormal(loc=-4.6, scale=0.75)"}  # schema 3
    old = from_dict(stored)
    assert isinstance(old, GP) and not old.quadratic
    assert from_dict(QUADRATIC.discrepancy.to_dict()) == QUADRATIC.discrepancy
    law = load_law("chinchilla")
    assert gp.has_quadratic(law.inputs, ref)
    assert len(gp.weight_names(law.inputs)) == gp.BASIS**2


def test_quadratic_is_orthogonal_to_the_law_tangent_space(ladder, ref):
    """On the fitted runs the quadratic too has no part a small change of the law could make."""
    law = load_law("chinchilla")
    params = _draws(law, 50, 1e-6, 0.003)  # the GP's part negligible: the quadratic's alone
    delta = np.asarray(gp.term(law, params, ladder, ref))
    # As for the GP (test_gp): exact but for the projection's 1e-9 ridge.
    assert np.abs(tangent_part(law, ladder, ref, delta)).max() < 1e-4 * np.std(delta)
    assert np.std(delta) > 1e-4


def test_numpy_basis_is_the_jax_basis(ladder, ref):
    law = load_law("chinchilla")
    ref_np = {k: np.asarray(v) for k, v in ref.items()}
    far = {"N": np.log([1e9, 1e12, 1e30]), "D": np.log([2e10, 1e14, 1e40])}
    params = _draws(law, 20, 0.05, 0.003)
    for points in (ladder, far):
        expected = np.asarray(gp.basis(law, {k: jnp.asarray(v) for k, v in points.items()}, ref))
        assert expected.shape[-1] == gp.BASIS**2 + 3
        np.testing.assert_allclose(gp.numpy_basis(law, points, ref_np), expected, atol=1e-9)
        np.testing.assert_allclose(
            gp.numpy_term(law, params, points, ref_np),
            np.asarray(gp.term(law, params, points, ref)),
            atol=1e-9,
        )


def test_spread_keeps_growing_past_the_box(ladder, ref):
    """Where the GP's spread stops (the box), the quadratic's grows ~ distance squared.

    Along the compute-optimal ray, 4000 prior draws (each sd to ~1.1 %): from 1e40 to 1e50
    FLOPs the distance from the runs' centre (~1e19.5) grows from ~20.5 to ~30.5 decades, so
    the sd grows by ~(30.5 / 20.5)^2 = 2.2 less the tangent part; 1.8 is far outside noise.
    """
    law = load_law("chinchilla")
    params = _draws(law, 4000, 0.01, 0.003, seed=3)

    def ray(budgets):
        n = np.sqrt(np.asarray(budgets) / 120)
        return {"N": np.log(n), "D": np.log(np.asarray(budgets) / (6 * n))}

    sd = np.std(np.asarray(gp.term(law, params, ray([1e22, 1e40, 1e50]), ref)), axis=0)
    assert sd[1] > 5 * sd[0] and sd[2] > 1.8 * sd[1], sd


def test_gp_alone_is_the_gp_without_its_quadratic():
    """`--discrepancy gp_alone`: the GP's 36 weights, saved and read back under its own name."""
    law = load_law("chinchilla")
    alone = Likelihood(discrepancy="gp_alone")
    assert not alone.discrepancy.quadratic and alone.discrepancy == GPAlone()
    names = model_param_names(law, alone)
    assert names[-1] == f"gp_w{gp.BASIS**2 - 1}"
    assert from_dict(alone.discrepancy.to_dict()) == GPAlone()
    assert Likelihood.from_dict(alone.to_dict()) == alone


def test_a_tighter_quadratic_from_its_spec_and_on_the_command_line():
    # "NAME:FIELD=VALUE" is how the CLI and the benchmarks name a variant; the fit says which.
    from scalebayes.cli import build_parser
    from scalebayes.discrepancy import from_spec

    tighter = from_spec("gp:curvature_scale=0.002")
    assert tighter == GP(curvature_scale=0.002)
    assert tighter.label == "gp(curvature_scale=0.002)" and GP().label == "gp"
    assert from_spec("gp:curvature_scale=None") == GP(curvature_scale=None)
    assert from_spec("none") == from_dict("none")
    with pytest.raises(LawError, match=r"'foo=1' is not FIELD=VALUE of 'gp' \(its fields: "):
        from_spec("gp:foo=1")
    with pytest.raises(LawError, match="expected one of"):
        from_spec("bogus:curvature_scale=1")
    args = build_parser().parse_args(
        ["fit", "runs.csv", "--discrepancy", "gp:curvature_scale=0.002"]
    )
    assert Likelihood(discrepancy=args.discrepancy).discrepancy == tighter
    with pytest.raises(SystemExit):  # refused while parsing, before the table is read
        build_parser().parse_args(["fit", "runs.csv", "--discrepancy", "gp:curvature_scale=-1"])
