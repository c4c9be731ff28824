from __future__ import annotations

import builtins
import math
from collections.abc import Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalebayes.errors import LawError, LawFileError
from scalebayes.formula import (
    Expr,
    Num,
    Op,
    Sym,
    additive_terms,
    evaluate,
    is_name,
    log_evaluate,
    parse_formula,
    symbols,
    to_string,
)

CHINCHILLA = "E + A / N**alpha + B / D**beta"
KAPLAN = "((Nc / N)**(alphaN / alphaD) + Dc / D)**alphaD"
REFIT = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}  # Besiroglu 2024
KAPLAN_FIT = {"alphaN": 0.076, "alphaD": 0.095, "Nc": 8.8e13, "Dc": 5.4e13}  # Kaplan 2020


@pytest.fixture(autouse=True, scope="module")
def x64() -> Iterator[None]:
    # Float64 for reference comparisons; float32 tests pass float32 arrays explicitly.
    with jax.enable_x64(True):
        yield


def reference(expr: Expr, values: Mapping[str, float]) -> np.longdouble:
    """Independent plain evaluator in extended precision (80-bit on x86)."""
    match expr:
        case Num(value=v):
            return np.longdouble(v)
        case Sym(name=n):
            return np.longdouble(values[n])
        case Op(op="neg", args=(a,)):
            return -reference(a, values)
        case Op(op="log", args=(a,)):
            return np.log(reference(a, values))
        case Op(op="exp", args=(a,)):
            return np.exp(reference(a, values))
        case Op(op=op, args=(a, b)):
            x, y = reference(a, values), reference(b, values)
            match op:
                case "add":
                    return x + y
                case "sub":
                    return x - y
                case "mul":
                    return x * y
                case "div":
                    return x / y
                case "pow":
                    return x**y
                case "min":
                    return min(x, y)
                case "max":
                    return max(x, y)
    raise AssertionError(expr)


# ---------------------------------------------------------------------------------- parsing


def test_parse_chinchilla_tree() -> None:
    expr = parse_formula(CHINCHILLA)
    n_term = Op("div", (Sym("A"), Op("pow", (Sym("N"), Sym("alpha")))))
    d_term = Op("div", (Sym("B"), Op("pow", (Sym("D"), Sym("beta")))))
    assert expr == Op("add", (Op("add", (Sym("E"), n_term)), d_term))
    assert additive_terms(expr) == (Sym("E"), n_term, d_term)
    assert symbols(expr) == {"E", "A", "B", "N", "D", "alpha", "beta"}
    assert to_string(expr) == CHINCHILLA


@pytest.mark.parametrize(
    ("src", "canonical"),
    [
        (KAPLAN, KAPLAN),
        ("-a**b", "-a**b"),  # Python: -(a**b)
        ("(-a)**b", "(-a)**b"),
        ("a**-b", "a**(-b)"),
        ("a**b**c", "a**b**c"),  # right-associative
        ("(a**b)**c", "(a**b)**c"),
        ("(a - b) - c", "a - b - c"),
        ("a - (b - c)", "a - (b - c)"),
        ("a / (b * c)", "a / (b * c)"),
        ("+N", "N"),
        ("--a", "-(-a)"),
        ("log(exp(N)) / 2e-5", "log(exp(N)) / 2e-05"),
        ("2 * N", "2.0 * N"),
    ],
)
def test_canonical_text(src: str, canonical: str) -> None:
    expr = parse_formula(src)
    assert to_string(expr) == canonical
    assert parse_formula(canonical) == expr


def test_additive_terms() -> None:
    assert additive_terms(parse_formula("a + (b + c) + d")) == tuple(map(Sym, "abcd"))
    assert additive_terms(parse_formula("a - b")) == (parse_formula("a - b"),)
    assert additive_terms(parse_formula(KAPLAN)) == (parse_formula(KAPLAN),)


@pytest.mark.parametrize(
    ("src", "offending"),
    [
        ("__import__('os').system('x')", "__import__"),
        ("N.__class__", "N.__class__"),
        ("().__class__.__bases__", "__bases__"),
        ("open('f')", "open"),
        ("lambda: 1", "lambda"),
        ("[x for x in N]", "for x in N"),
        ("N[0]", "N\\[0\\]"),
        ('"str"', "str"),
        ("N if D else C", "N if D else C"),
        ("E @ N", "E @ N"),
        ("N < D", "N < D"),
        ("N and D", "N and D"),
        ("(x := N)", ":="),
        ("f'{N}'", "f'"),
        ("log(N, 2)", "log\\(N, 2\\)"),
        ("min(N)", "min\\(N\\)"),
        ("max(N, D, C)", "max\\(N, D, C\\)"),
        ("min(*N, D)", "min\\(\\*N, D\\)"),
        ("min(N, key=D)", "min\\(N, key=D\\)"),
        ("exp(N, D)", "exp\\(N, D\\)"),
        ("min", "min"),
        ("N.min(D)", "N.min"),
        ("log(x=N)", "log\\(x=N\\)"),
        ("log(*N)", "log\\(\\*N\\)"),
        ("sqrt(N)", "sqrt"),
        ("N // D", "N // D"),
        ("N % D", "N % D"),
        ("1j * N", "1j"),
        ("True * N", "True"),
        ("_x", "_x"),
        ("__builtins__", "__builtins__"),
        ("log", "log"),
        ("1e999", "not finite"),
        ("N +", "syntax error"),
        ("import os", "syntax error"),
        ("", "empty"),
        ("   ", "empty"),
        ("N\x00", "null bytes"),
    ],
)
def test_rejected(src: str, offending: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("formula text reached eval/exec")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    with pytest.raises(LawFileError, match=f"law.toml: field 'formula': .*{offending}") as info:
        parse_formula(src, source="law.toml")
    assert info.value.field == "formula"


def test_rejected_names_the_field() -> None:
    with pytest.raises(LawFileError, match=r"field 'params\.x\.formula'"):
        parse_formula("N.x", source="f.toml", field="params.x.formula")


def test_deep_nesting_is_a_law_file_error() -> None:
    with pytest.raises(LawFileError, match="formula"):
        parse_formula("(" * 300 + "N" + ")" * 300)
    with pytest.raises(LawFileError, match="longer than"):
        parse_formula("N + " * 1000 + "N")


@pytest.mark.parametrize("name", ["N", "alpha", "A1", "x_y", "match"])
def test_is_name(name: str) -> None:
    assert is_name(name)


@pytest.mark.parametrize(
    "name", ["_a", "__x__", "lambda", "None", "log", "exp", "min", "max", "é", "1a", ""]
)
def test_is_not_name(name: str) -> None:
    assert not is_name(name)


# ------------------------------------------------------------------ parse ∘ print identity

_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,4}", fullmatch=True).filter(is_name)
_numbers = st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False)
_leaves = st.one_of(_numbers.map(lambda v: Num(abs(v))), _names.map(Sym))


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    binary = st.tuples(
        st.sampled_from(["add", "sub", "mul", "div", "pow", "min", "max"]), children, children
    )
    unary = st.tuples(st.sampled_from(["neg", "log", "exp"]), children)
    return st.one_of(binary.map(lambda t: Op(t[0], t[1:])), unary.map(lambda t: Op(t[0], t[1:])))


exprs = st.recursive(_leaves, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(exprs)
def test_parse_print_identity(expr: Expr) -> None:
    text = to_string(expr)
    assert parse_formula(text) == expr
    assert to_string(parse_formula(text)) == text


def test_negative_constant_prints_in_parentheses() -> None:
    # Parsed trees hold only non-negative numbers (unary minus is "neg"); a hand-built negative
    # constant still prints as valid, equivalent text.
    text = to_string(Op("pow", (Num(-2.0), Sym("x"))))
    assert text == "(-2.0)**x"
    assert parse_formula(text) == Op("pow", (Op("neg", (Num(2.0),)), Sym("x")))


# ------------------------------------------------------------------------------ evaluation


def test_evaluate_broadcasts() -> None:
    expr = parse_formula(CHINCHILLA)
    N = jnp.logspace(6, 9, 4)[:, None]
    D = jnp.logspace(8, 12, 5)[None, :]
    got = evaluate(expr, {**REFIT, "N": N, "D": D})
    assert got.shape == (4, 5)
    want = 1.82 + 482 / np.asarray(N) ** 0.348 + 2085 / np.asarray(D) ** 0.366
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_evaluate_missing_symbol() -> None:
    with pytest.raises(LawError, match="no value given for 'beta'"):
        evaluate(parse_formula(CHINCHILLA), {"E": 1, "A": 1, "B": 1, "alpha": 1, "N": 1, "D": 1})


def test_log_evaluate_refit_value() -> None:
    # Besiroglu et al. refit at the Chinchilla run (70e9 params, 1.4e12 tokens): 1.976 nats.
    expr = parse_formula(CHINCHILLA)
    got = log_evaluate(expr, REFIT, {"N": math.log(70e9), "D": math.log(1.4e12)})
    want = math.log(1.82 + 482 / 70e9**0.348 + 2085 / 1.4e12**0.366)
    assert float(got) == pytest.approx(want, rel=1e-14)


# Formulas covering every rule of log_evaluate, including the fallbacks.
FORMULAS = [
    CHINCHILLA,
    KAPLAN,
    "E + A / C**alpha",
    "E + A * exp(-alpha * log(N)) + B / D**beta",
    "E * (1 + A / N**alpha) / (1 + B / D**beta) + 0.5",
    "E + A / N**alpha - B / D**beta",  # subtraction: stable log-difference
    "log(N) * alpha + E",  # log(): fallback through the plain value
    "-(-E) + 2.0 * A / N**alpha",  # neg: fallback through the plain value
    "E + A / min(N, D)**alpha + B / max(N, C)**beta",  # min/max: on the logs
    "E + A / N**alpha / (1 + (N / Nc)**(1 / alphaD))**(beta * alphaD)",  # broken power law
    "E + B / (min(N, D) * (1 + alphaN * (1 - exp((1 - D / min(N, D)) / alphaN))))**beta",
]


def _values(draw: st.DrawFn) -> dict[str, float]:
    def between(lo: float, hi: float) -> float:  # log-uniform
        return math.exp(draw(st.floats(math.log(lo), math.log(hi))))

    return {
        "E": between(0.5, 5.0),
        "A": between(1.0, 1e5),
        "B": between(1e-3, 1.0),  # small, so that the subtraction stays positive
        "alpha": draw(st.floats(0.05, 1.0)),
        "beta": draw(st.floats(0.05, 1.0)),
        "alphaN": draw(st.floats(0.05, 0.2)),
        "alphaD": draw(st.floats(0.05, 0.2)),
        "Nc": between(1e10, 1e16),
        "Dc": between(1e10, 1e16),
        "N": between(1e3, 1e13),
        "D": between(1e6, 1e15),
        "C": between(1e12, 1e27),
    }


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(FORMULAS), st.composite(_values)())
def test_log_evaluate_matches_reference(src: str, values: dict[str, float]) -> None:
    expr = parse_formula(src)
    inputs = {"N", "D", "C"} & symbols(expr)
    params = {k: v for k, v in values.items() if k not in inputs}
    log_inputs = {k: math.log(values[k]) for k in inputs}
    got = float(log_evaluate(expr, params, log_inputs))
    want = float(np.log(reference(expr, values)))
    # Both sides are float64-accurate; 1e-11 relative allows for error in log(N) * alpha with
    # log N ~ 30 and in the subtraction, far below anything a fit could notice.
    assert got == pytest.approx(want, rel=1e-11, abs=1e-12)


EXTREMES = [
    # (formula, params, inputs): the largest inputs and exponents the brief names
    (CHINCHILLA, {**REFIT, "alpha": 1.0, "beta": 1.0}, {"N": 1e13, "D": 1e15}),
    (CHINCHILLA, {**REFIT, "alpha": 0.05, "beta": 0.05}, {"N": 1e13, "D": 1e15}),
    (CHINCHILLA, {**REFIT, "A": 1e6, "B": 1e7}, {"N": 1e3, "D": 1e5}),
    (
        KAPLAN,
        {"alphaN": 0.076, "alphaD": 0.095, "Nc": 8.8e13, "Dc": 5.4e13},
        {"N": 1e13, "D": 1e15},
    ),
    (KAPLAN, {"alphaN": 0.076, "alphaD": 0.095, "Nc": 8.8e13, "Dc": 5.4e13}, {"N": 1e6, "D": 1e8}),
    ("E + A / C**alpha", {"E": 1.8, "A": 2700.0, "alpha": 1.0}, {"C": 1e27}),
    ("E + A / C**alpha", {"E": 1.8, "A": 2700.0, "alpha": 0.05}, {"C": 1e27}),
    ("E + A / C**alpha", {"E": 1.8, "A": 1e30, "alpha": 2.0}, {"C": 1e27}),  # C**2 > float32 max
]


@pytest.mark.parametrize(("src", "params", "inputs"), EXTREMES)
def test_log_evaluate_float32_extremes(
    src: str, params: dict[str, float], inputs: dict[str, float]
) -> None:
    expr = parse_formula(src)
    f32 = {k: jnp.float32(v) for k, v in params.items()}
    log_inputs = {k: jnp.float32(math.log(v)) for k, v in inputs.items()}
    got = log_evaluate(expr, f32, log_inputs)
    assert got.dtype == jnp.float32
    assert bool(jnp.isfinite(got))
    want = float(np.log(reference(expr, {**params, **inputs})))
    # float32 eps is 1.2e-7 and log C reaches 62; measured errors are <= 5.2e-7 on log loss.
    # 1e-5 (0.001% of the loss) leaves a 20x margin for other CPUs/GPUs and XLA versions.
    assert float(got) == pytest.approx(want, abs=1e-5)
    # Gradients for NUTS stay finite too.
    grads = jax.grad(lambda p: log_evaluate(expr, p, log_inputs))(f32)
    assert all(bool(jnp.isfinite(g)) for g in grads.values())


def test_plain_float32_overflows_where_log_space_does_not() -> None:
    expr = parse_formula("E + A / C**alpha")
    params = {"E": jnp.float32(1.8), "A": jnp.float32(1e30), "alpha": jnp.float32(2.0)}
    plain = evaluate(expr, {**params, "C": jnp.float32(1e27)})
    logged = log_evaluate(expr, params, {"C": jnp.float32(math.log(1e27))})
    assert float(plain) == pytest.approx(1.8)  # 1e30 / inf: the term vanished by accident
    assert float(logged) == pytest.approx(math.log(1.8 + 1e30 / 1e54), abs=1e-6)


def test_log_evaluate_broadcasts_draws_over_a_grid() -> None:
    expr = parse_formula(CHINCHILLA)
    draws = {k: jnp.full((7, 1, 1), v) for k, v in REFIT.items()}
    log_inputs = {"N": jnp.linspace(14, 30, 3)[:, None], "D": jnp.linspace(18, 34, 5)[None, :]}
    assert log_evaluate(expr, draws, log_inputs).shape == (7, 3, 5)


def test_log_evaluate_sign_edge_cases() -> None:
    assert float(log_evaluate(parse_formula("N - N"), {}, {"N": 3.0})) == -math.inf
    assert math.isnan(float(log_evaluate(parse_formula("E - N"), {"E": 1.0}, {"N": 3.0})))
    assert float(log_evaluate(parse_formula("0 * N"), {}, {"N": 3.0})) == -math.inf


def test_log_evaluate_name_both_param_and_input() -> None:
    with pytest.raises(LawError, match="both"):
        log_evaluate(parse_formula("N + E"), {"N": 1.0, "E": 1.0}, {"N": 0.0})


def test_log_evaluate_missing_param() -> None:
    with pytest.raises(LawError, match="'E'"):
        log_evaluate(parse_formula("N + E"), {}, {"N": 0.0})


def test_min_max_parse_print_and_evaluate() -> None:
    expr = parse_formula("min(N, D * 2) + max(E, 1)")
    assert expr == Op(
        "add",
        (Op("min", (Sym("N"), Op("mul", (Sym("D"), Num(2.0))))), Op("max", (Sym("E"), Num(1.0)))),
    )
    assert to_string(expr) == "min(N, D * 2.0) + max(E, 1.0)"
    got = log_evaluate(expr, {"E": 0.5}, {"N": math.log(3.0), "D": math.log(1.0)})
    assert float(got) == pytest.approx(math.log(2.0 + 1.0))
    assert float(evaluate(expr, {"E": 0.5, "N": 3.0, "D": 1.0})) == pytest.approx(3.0)


def test_vanishing_difference_has_finite_gradient() -> None:
    # Muennighoff et al.'s effective data U * (1 + R * (1 - exp(-(D/U - 1) / R))) at one epoch
    # (D == U): the difference is exactly 0. Its log is -inf, and the naive backward pass
    # multiplies d log(0) = inf by the 0 weight of that term in the sum: NaN. The value must
    # be U and the gradient with respect to R exactly 0 (the term does not depend on R there).
    expr = parse_formula("U * (1 + R * (1 - exp((1 - D / U) / R)))")
    log_inputs = {"U": jnp.log(2.5e10), "D": jnp.log(2.5e10)}

    def f(r: jax.Array) -> jax.Array:
        return log_evaluate(expr, {"R": r}, log_inputs)

    assert float(f(15.4)) == pytest.approx(math.log(2.5e10))
    assert float(jax.grad(f)(15.4)) == 0.0
    # Two epochs: the gradient is the ordinary one, checked against a finite difference.
    log_inputs["D"] = jnp.log(5e10)
    h = 1e-5
    numeric = (float(f(15.4 + h)) - float(f(15.4 - h))) / (2 * h)
    assert float(jax.grad(f)(15.4)) == pytest.approx(numeric, rel=1e-6)
    # The sign conventions of the plain log-difference are unchanged.
    assert float(log_evaluate(parse_formula("N - N"), {}, {"N": 3.0})) == -math.inf


@pytest.mark.parametrize(
    "src",
    [
        CHINCHILLA,
        KAPLAN,
        "E + A / N**alpha / (1.0 + (N / Nb)**(1.0 / f))**(delta * f)",
        "E * (1 + R * (1 - exp(-N / Nb))) - A * log(N)**(-alpha)",
        "max(E, A * N**(-alpha)) + min(B, D**beta) + exp(-alpha * log(N)) * 2.0**alpha",
    ],
)
def test_numpy_evaluation_and_jacobian_agree_with_jax(src: str) -> None:
    """``log_evaluate(xp=numpy)`` and :func:`log_jacobian` give JAX's value and ``jacfwd``."""
    from scalebayes.formula_jacobian import log_jacobian

    expr = parse_formula(src)
    inputs = sorted(symbols(expr) & {"N", "D"})
    names = sorted(symbols(expr) - set(inputs))
    rng = np.random.default_rng(0)
    params = {name: float(rng.uniform(0.2, 2.0)) for name in names}
    params.update({k: 3e9 for k in ("Nb", "Nc", "Dc") if k in params})
    log_inputs = {name: np.log(rng.uniform(1e7, 1e11, size=6)) for name in inputs}

    def log_value(values: Mapping[str, float]) -> jax.Array:
        return log_evaluate(expr, values, log_inputs)

    value = log_evaluate(expr, params, log_inputs, xp=np)
    assert isinstance(value, np.ndarray)
    np.testing.assert_allclose(value, log_value(params), rtol=1e-13)
    jacobian = jax.jacfwd(log_value)({k: jnp.float64(v) for k, v in params.items()})
    expected = np.stack([np.broadcast_to(jacobian[n], (6,)) for n in names], axis=-1)
    got = log_jacobian(expr, params, log_inputs, names)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-14 * np.abs(expected).max())


@pytest.mark.parametrize(
    "src", [CHINCHILLA, KAPLAN, "E * (1 + R * (1 - exp(-N / Nb))) + B / D**beta"]
)
def test_jets_give_jax_second_derivatives_along_a_direction(src: str) -> None:
    """``log_evaluate(xp=jets)`` along log N = x, log D = c - x: d/dx and d2/dx2 as JAX's."""
    from scalebayes import jets

    expr = parse_formula(src)
    names = sorted(symbols(expr) - {"N", "D"})
    rng = np.random.default_rng(1)
    params = {name: float(rng.uniform(0.2, 2.0)) for name in names}
    params.update({k: 3e9 for k in ("Nb", "Nc", "Dc") if k in params})
    x, c = np.log(rng.uniform(1e8, 1e10, size=5)), np.log(1e22) - np.log(6.0)

    def along(t: jax.Array) -> jax.Array:
        return log_evaluate(expr, params, {"N": x + t, "D": c - x - t}).sum()

    first = jax.grad(along)(jnp.zeros(5))
    second = jax.jvp(jax.grad(along), (jnp.zeros(5),), (jnp.ones(5),))[1]
    jet = log_evaluate(expr, params, {"N": jets.seed(x), "D": c - jets.seed(x)}, xp=jets)
    np.testing.assert_allclose(jet.v, log_evaluate(expr, params, {"N": x, "D": c - x}))
    np.testing.assert_allclose(jet.d1, first, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(jet.d2, second, rtol=1e-8, atol=1e-14)
