"""Law formulas: a whitelisted expression language, parsed into a tiny tree and evaluated with JAX.

A formula such as ``"E + A / N**alpha + B / D**beta"`` is parsed with :mod:`ast` and converted,
node by node, into :class:`Num`, :class:`Sym` and :class:`Op`; anything outside the whitelist
(attribute access, calls other than ``log``/``exp``/``min``/``max``, subscripts, strings, ...) is
rejected before anything runs. The source text is never evaluated.

Two evaluators work on the tree: :func:`evaluate` computes the plain value, and
:func:`log_evaluate` computes its logarithm in log space (log-sum-exp over sums of terms), which
stays finite and accurate in float32 for inputs spanning many orders of magnitude. Both compute
with ``jax.numpy`` by default; ``log_evaluate(..., xp=numpy)`` computes the same in NumPy, and
``xp=scalebayes.jets`` with derivatives, for one-off evaluations that would spend longer
compiling a JAX program than running it.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scalebayes.errors import LawError, LawFileError

if TYPE_CHECKING:  # JAX loads when a formula is first evaluated: `import scalebayes` stays light
    import jax
    from jax.typing import ArrayLike

__all__ = [
    "Expr",
    "Num",
    "Op",
    "Sym",
    "additive_terms",
    "evaluate",
    "is_name",
    "log_evaluate",
    "parse_formula",
    "symbols",
    "to_string",
]

UNARY_FUNCTIONS = ("log", "exp")
"""Functions of one positional argument."""

BINARY_FUNCTIONS = ("min", "max")
"""Functions of two positional arguments (e.g. Muennighoff et al.'s ``min(U, D)``)."""

FUNCTIONS = UNARY_FUNCTIONS + BINARY_FUNCTIONS
"""Functions a formula may call; their names cannot be symbols."""

MAX_LENGTH = 2000
"""Longest formula accepted, in characters (real laws are far shorter)."""

_ALLOWED = "use numbers, names, + - * / **, log(x), exp(x), min(x, y), max(x, y)"


@dataclass(frozen=True)
class Num:
    """A numeric constant (parsed formulas only produce non-negative finite values)."""

    value: float


@dataclass(frozen=True)
class Sym:
    """A named input (``N``, ``D``, ...) or parameter (``E``, ``alpha``, ...)."""

    name: str


@dataclass(frozen=True)
class Op:
    """An operation: ``add sub mul div pow min max`` (two args) or ``neg log exp`` (one arg)."""

    op: str
    args: tuple[Expr, ...]


Expr = Num | Sym | Op

_BINARY: dict[type[ast.operator], str] = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.Pow: "pow",
}


# --------------------------------------------------------------------------------------------
# parsing


def parse_formula(src: str, *, source: str = "<formula>", field: str = "formula") -> Expr:
    """Parse a formula string into an expression tree, accepting only whitelisted syntax.

    Parameters
    ----------
    src : str
        Python-syntax arithmetic, e.g. ``"E + A / N**alpha + B / D**beta"``.
    source, field : str
        Where the formula came from, used in error messages.

    Returns
    -------
    Expr
        The parsed tree. Unary ``+`` and parentheses leave no trace in it.

    Raises
    ------
    LawFileError
        On a syntax error or anything other than numbers, names, ``+ - * / **``, unary
        ``-``/``+``, and calls ``log(x)``, ``exp(x)``, ``min(x, y)``, ``max(x, y)``.
    """
    if not isinstance(src, str):
        raise LawFileError(source, field, f"expected a string, got {type(src).__name__}")
    if not src.strip():
        raise LawFileError(source, field, f"empty formula; {_ALLOWED}")
    if len(src) > MAX_LENGTH:
        raise LawFileError(source, field, f"formula longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as err:
        where = f" at column {err.offset}" if err.offset else ""
        problem = f"syntax error{where}: {err.msg}"
        raise LawFileError(source, field, f"{problem}; {_ALLOWED}") from None
    except (RecursionError, MemoryError, ValueError) as err:  # e.g. NUL bytes, deep nesting
        raise LawFileError(source, field, f"cannot parse ({err}); {_ALLOWED}") from None
    try:
        return _to_expr(tree.body, source, field)
    except RecursionError:
        raise LawFileError(source, field, "formula too deeply nested") from None


def _to_expr(node: ast.AST, source: str, field: str) -> Expr:
    match node:
        case ast.Constant(value=bool()):
            pass
        case ast.Constant(value=int() | float() as value):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise LawFileError(source, field, f"number {_show(node)} is not finite")
            return Num(number)
        case ast.Name(id=name) if is_name(name):
            return Sym(name)
        case ast.Name(id=name):
            raise LawFileError(
                source,
                field,
                f"name {name!r} not allowed: names are ASCII identifiers, not Python keywords,"
                f" not starting with '_' and not {' or '.join(FUNCTIONS)}",
            )
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            args = (_to_expr(left, source, field), _to_expr(right, source, field))
            return Op(_BINARY[type(op)], args)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return Op("neg", (_to_expr(operand, source, field),))
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return _to_expr(operand, source, field)
        case ast.Call(func=ast.Name(id=fn), args=[arg], keywords=[]) if (
            fn in UNARY_FUNCTIONS and not isinstance(arg, ast.Starred)
        ):
            return Op(fn, (_to_expr(arg, source, field),))
        case ast.Call(func=ast.Name(id=fn), args=[first, second], keywords=[]) if (
            fn in BINARY_FUNCTIONS
            and not isinstance(first, ast.Starred)
            and not isinstance(second, ast.Starred)
        ):
            return Op(fn, (_to_expr(first, source, field), _to_expr(second, source, field)))
    raise LawFileError(source, field, f"{_show(node)!r} not allowed: {_ALLOWED}")


def is_name(name: str) -> bool:
    """Whether ``name`` can be a symbol: an ASCII identifier, no leading ``_``, not a function."""
    return (
        name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
        and name not in FUNCTIONS
    )


def _show(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# inspection and printing


def symbols(expr: Expr) -> frozenset[str]:
    """Return the names used in ``expr`` (inputs and parameters alike)."""
    match expr:
        case Sym(name=name):
            return frozenset((name,))
        case Op(args=args):
            return frozenset().union(*(symbols(arg) for arg in args))
    return frozenset()


def additive_terms(expr: Expr) -> tuple[Expr, ...]:
    """Split ``expr`` into the terms of its top-level sum.

    ``E + A / N**alpha + B / D**beta`` gives three terms; an expression whose root is not an
    addition gives ``(expr,)``. Subtractions are not split.
    """
    if isinstance(expr, Op) and expr.op == "add":
        return tuple(term for arg in expr.args for term in additive_terms(arg))
    return (expr,)


# Binding strength, as in Python: + - < * / < unary - < ** < atoms and calls.
_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}
_INFIX = {"add": " + ", "sub": " - ", "mul": " * ", "div": " / ", "pow": "**"}
_ATOM = 5


def to_string(expr: Expr) -> str:
    """Print ``expr`` as canonical formula text, with only the parentheses Python needs.

    ``parse_formula(to_string(e)) == e`` for every tree that :func:`parse_formula` returns.
    """
    match expr:
        case Num(value=value):
            text = repr(float(value))
            return f"({text})" if math.copysign(1.0, value) < 0 else text
        case Sym(name=name):
            return name
        case Op(op=op, args=(arg,)) if op in UNARY_FUNCTIONS:
            return f"{op}({to_string(arg)})"
        case Op(op=op, args=(first, second)) if op in BINARY_FUNCTIONS:
            return f"{op}({to_string(first)}, {to_string(second)})"
        case Op(op="neg", args=(arg,)):
            return "-" + _wrap(arg, lambda p: p <= _PRECEDENCE["neg"])
        case Op(op="pow", args=(base, exponent)):
            # ** is right-associative: (a**b)**c needs parentheses, a**b**c does not.
            return _wrap(base, lambda p: p <= 4) + "**" + _wrap(exponent, lambda p: p < 4)
        case Op(op=op, args=(left, right)) if op in _INFIX:
            level = _PRECEDENCE[op]
            return (
                _wrap(left, lambda p: p < level) + _INFIX[op] + _wrap(right, lambda p: p <= level)
            )
    raise LawError(f"not a formula tree: {expr!r}")


def _precedence(expr: Expr) -> int:
    # Negative constants print in parentheses (see to_string), so they are atoms too.
    return _PRECEDENCE.get(expr.op, _ATOM) if isinstance(expr, Op) else _ATOM


def _wrap(expr: Expr, needs_parens: Callable[[int], bool]) -> str:
    text = to_string(expr)
    return f"({text})" if needs_parens(_precedence(expr)) else text


# --------------------------------------------------------------------------------------------
# evaluation


def evaluate(expr: Expr, values: Mapping[str, ArrayLike]) -> jax.Array:
    """Evaluate ``expr`` on the plain scale, broadcasting array values.

    Parameters
    ----------
    expr : Expr
        A formula tree.
    values : mapping of str to array-like
        A value for every symbol in ``expr``.

    Returns
    -------
    jax.Array
        The broadcast value. Powers of large inputs can overflow in float32; prefer
        :func:`log_evaluate` for fitting.
    """
    import jax.numpy as jnp

    return jnp.asarray(_Evaluator(values, {}, jnp).value(expr))


def log_evaluate(
    expr: Expr,
    params: Mapping[str, ArrayLike],
    log_inputs: Mapping[str, ArrayLike],
    *,
    xp: Any = None,
) -> jax.Array:
    """Evaluate the natural log of a positive-valued ``expr``, working in log space.

    Sums become log-sum-exp over all terms of an addition chain, products and quotients add
    and subtract logs, ``a**b`` becomes ``b * log(a)``, ``log(exp(a))`` is ``a`` and
    ``log(min(a, b))`` is ``min(log a, log b)``; so a law such as ``E + A / N**alpha`` never
    forms ``N**alpha`` and stays finite in float32 for ``N`` up to 1e13, ``D`` up to 1e15,
    ``C`` up to 1e27. Subtraction uses a stable log-difference (an exact zero difference gives
    ``-inf`` with zero gradient, so a term that vanishes at a data point, such as
    ``1 - exp(-R)`` at ``R = 0``, leaves gradients finite); negation and ``log(...)`` fall
    back to the log of the plain value.

    Parameters
    ----------
    expr : Expr
        A formula tree.
    params : mapping of str to array-like
        Parameter values on the plain scale.
    log_inputs : mapping of str to array-like
        Natural logs of the inputs (``N``, ``D``, ``C``, ``U``).
    xp : module, optional
        The array namespace to compute with: ``jax.numpy`` (default), ``numpy``, or
        :mod:`scalebayes.jets` (values with derivatives).

    Returns
    -------
    jax.Array or numpy.ndarray
        ``log(value)``, broadcast over all arguments; NaN where the value is negative.
    """
    both = sorted(set(params) & set(log_inputs) & symbols(expr))
    if both:
        raise LawError(f"{both} given both as parameter and as input")
    if xp is None:
        import jax.numpy as xp
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN/inf as JAX gives
        return xp.asarray(_Evaluator(params, log_inputs, xp).log(expr))


class _Evaluator:
    """Mutually recursive plain/log evaluation; inputs are known by their logs only.

    ``xp`` is the array namespace (``jax.numpy``, ``numpy`` or :mod:`scalebayes.jets`): they
    share these names.
    """

    def __init__(
        self, values: Mapping[str, ArrayLike], log_inputs: Mapping[str, ArrayLike], xp: Any
    ):
        self.values = values
        self.log_inputs = log_inputs
        self.xp = xp

    def _lookup(self, name: str) -> ArrayLike:
        if name in self.values:
            return self.values[name]
        known = sorted({*self.values, *self.log_inputs})
        raise LawError(f"no value given for {name!r}; given: {known}")

    def value(self, expr: Expr) -> ArrayLike:
        """Plain value; Python floats for constants keep JAX's weak typing (no upcast)."""
        jnp = self.xp
        match expr:
            case Num(value=value):
                return value
            case Sym(name=name) if name in self.log_inputs:
                return jnp.exp(self.log_inputs[name])
            case Sym(name=name):
                return self._lookup(name)
            case Op(op="log", args=(arg,)):
                return self.log(arg)
            case Op(op="exp", args=(arg,)):
                return jnp.exp(self.value(arg))
            case Op(op="neg", args=(arg,)):
                return -jnp.asarray(self.value(arg))
            case Op(op=op, args=(left, right)) if op in _PLAIN:
                return getattr(jnp, _PLAIN[op])(self.value(left), self.value(right))
        raise LawError(f"not a formula tree: {expr!r}")

    def log(self, expr: Expr) -> ArrayLike:
        """Natural log of the value, computed without forming large intermediate values."""
        jnp = self.xp
        match expr:
            case Num(value=value) if value > 0:
                return math.log(value)
            case Sym(name=name) if name in self.log_inputs:
                return self.log_inputs[name]
            case Sym(name=name):
                return jnp.log(self._lookup(name))
            case Op(op="add"):
                return functools.reduce(jnp.logaddexp, map(self.log, additive_terms(expr)))
            case Op(op="sub", args=(left, right)):
                return _log_diff(self.log(left), self.log(right), jnp)
            case Op(op="mul", args=(left, right)):
                return jnp.add(self.log(left), self.log(right))
            case Op(op="div", args=(left, right)):
                return jnp.subtract(self.log(left), self.log(right))
            case Op(op="pow", args=(base, exponent)):
                return jnp.multiply(self.value(exponent), self.log(base))
            case Op(op="exp", args=(arg,)):
                return self.value(arg)
            case Op(op="min", args=(left, right)):
                return jnp.minimum(self.log(left), self.log(right))
            case Op(op="max", args=(left, right)):
                return jnp.maximum(self.log(left), self.log(right))
        return jnp.log(self.value(expr))


_PLAIN: dict[str, str] = {  # binary operators on plain values, by their jax.numpy name
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "pow": "power",
    "min": "minimum",
    "max": "maximum",
}


def _log_diff(log_a: ArrayLike, log_b: ArrayLike, jnp: Any) -> jax.Array:
    """``log(a - b)`` from ``log a`` and ``log b``; NaN where ``a < b``, -inf where equal.

    Where ``a == b`` the value is -inf with zero gradient rather than an infinite one: a
    difference that vanishes inside a sum (``1 + R*(1 - exp(-x))`` at ``x = 0``) then
    contributes nothing to the gradient instead of ``0 * inf = NaN``. The double ``where``
    keeps the infinite derivative of ``log(-expm1(0))`` out of the backward pass. ``jnp`` is
    the array namespace.
    """
    log_a, log_b = jnp.asarray(log_a), jnp.asarray(log_b)
    gap = log_b - log_a
    equal = gap == 0
    safe_gap = jnp.where(equal, -1.0, gap)
    return jnp.where(equal, -jnp.inf, log_a + jnp.log(-jnp.expm1(safe_gap)))
