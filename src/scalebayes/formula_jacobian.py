"""The Jacobian of a formula's log value in its parameters, by forward differentiation in NumPy.

:func:`log_jacobian` follows :func:`scalebayes.formula.log_evaluate` node by node, carrying each
value with its derivatives in the chosen parameters (a trailing axis). It gives what
``jax.jacfwd`` of ``log_evaluate`` gives, to rounding, without tracing and compiling a JAX
program: the GP discrepancy's basis needs the law's tangent at every point it predicts at.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scalebayes.errors import LawError
from scalebayes.formula import Expr, Num, Op, Sym, additive_terms

Dual = tuple[Any, Any]  # (value, derivatives): shape S and S + (P,)


def log_jacobian(
    expr: Expr,
    params: Mapping[str, Any],
    log_inputs: Mapping[str, Any],
    wrt: Sequence[str],
) -> np.ndarray:
    """The Jacobian d log(expr) / d params[wrt]: shape of the broadcast inputs + (len(wrt),).

    ``params`` are plain-scale scalars (or arrays that broadcast), ``log_inputs`` the natural
    logs of the inputs, as for :func:`~scalebayes.formula.log_evaluate`.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        value, grad = _Forward(params, log_inputs, tuple(wrt)).log(expr)
        shape = np.broadcast_shapes(*(np.shape(v) for v in log_inputs.values()), np.shape(value))
        return np.broadcast_to(grad, (*shape, len(wrt))).copy()


class _Forward:
    """Plain and log evaluation with derivatives; mirrors ``formula._Evaluator``."""

    def __init__(self, params: Mapping[str, Any], log_inputs: Mapping[str, Any], wrt: tuple):
        self.params = params
        self.log_inputs = log_inputs
        self.wrt = wrt
        self.zero = np.zeros(len(wrt))

    def _param(self, name: str) -> Dual:
        if name not in self.params:
            raise LawError(f"no value given for {name!r}; given: {sorted(self.params)}")
        grad = np.zeros(len(self.wrt))
        if name in self.wrt:
            grad[self.wrt.index(name)] = 1.0
        return np.asarray(self.params[name], dtype=float), grad

    def value(self, expr: Expr) -> Dual:
        """The plain value and its derivatives."""
        match expr:
            case Num(value=value):
                return np.float64(value), self.zero
            case Sym(name=name) if name in self.log_inputs:
                return np.exp(self.log_inputs[name]), self.zero
            case Sym(name=name):
                return self._param(name)
            case Op(op="log", args=(arg,)):
                return self.log(arg)
            case Op(op="exp", args=(arg,)):
                v, dv = self.value(arg)
                out = np.exp(v)
                return out, _times(out, dv)
            case Op(op="neg", args=(arg,)):
                v, dv = self.value(arg)
                return -v, -dv
            case Op(op=op, args=(left, right)) if op in _PLAIN_RULES:
                return _PLAIN_RULES[op](self.value(left), self.value(right))
        raise LawError(f"not a formula tree: {expr!r}")

    def log(self, expr: Expr) -> Dual:
        """The natural log of the value and its derivatives."""
        match expr:
            case Num(value=value) if value > 0:
                return np.log(value), self.zero
            case Sym(name=name) if name in self.log_inputs:
                return np.asarray(self.log_inputs[name]), self.zero
            case Sym(name=name):
                v, dv = self._param(name)
                return np.log(v), _times(1.0 / v, dv)
            case Op(op="add"):
                return functools.reduce(_log_add, map(self.log, additive_terms(expr)))
            case Op(op="sub", args=(left, right)):
                return _log_sub(self.log(left), self.log(right))
            case Op(op="mul", args=(left, right)):
                (a, da), (b, db) = self.log(left), self.log(right)
                return a + b, da + db
            case Op(op="div", args=(left, right)):
                (a, da), (b, db) = self.log(left), self.log(right)
                return a - b, da - db
            case Op(op="pow", args=(base, exponent)):
                (e, de), (lb, dlb) = self.value(exponent), self.log(base)
                return e * lb, _times(lb, de) + _times(e, dlb)
            case Op(op="exp", args=(arg,)):
                return self.value(arg)
            case Op(op="min", args=(left, right)):
                return _pick(self.log(left), self.log(right), np.less_equal)
            case Op(op="max", args=(left, right)):
                return _pick(self.log(left), self.log(right), np.greater_equal)
        v, dv = self.value(expr)
        return np.log(v), _times(1.0 / v, dv)


def _times(scale: Any, grad: Any) -> Any:
    """``scale`` (shape S) times derivatives (shape S' + (P,))."""
    return np.asarray(scale)[..., None] * grad


def _log_add(a: Dual, b: Dual) -> Dual:
    (la, da), (lb, db) = a, b
    out = np.logaddexp(la, lb)
    return out, _times(np.exp(la - out), da) + _times(np.exp(lb - out), db)


def _log_sub(a: Dual, b: Dual) -> Dual:
    """``log(e^la - e^lb)``; -inf with zero derivative where equal, as ``formula._log_diff``."""
    (la, da), (lb, db) = a, b
    gap = lb - la
    equal = gap == 0
    ratio = np.exp(np.where(equal, -1.0, gap))
    out = np.where(equal, -np.inf, la + np.log(-np.expm1(np.where(equal, -1.0, gap))))
    grad = (da - _times(ratio, db)) / np.asarray(1.0 - ratio)[..., None]
    return out, np.where(np.asarray(equal)[..., None], 0.0, grad)


def _pick(a: Dual, b: Dual, first: Any) -> Dual:
    (va, da), (vb, db) = a, b
    take = np.asarray(first(va, vb))
    return np.where(take, va, vb), np.where(take[..., None], da, db)


def _plain_add(a: Dual, b: Dual) -> Dual:
    return a[0] + b[0], a[1] + b[1]


def _plain_sub(a: Dual, b: Dual) -> Dual:
    return a[0] - b[0], a[1] - b[1]


def _plain_mul(a: Dual, b: Dual) -> Dual:
    (va, da), (vb, db) = a, b
    return va * vb, _times(vb, da) + _times(va, db)


def _plain_div(a: Dual, b: Dual) -> Dual:
    (va, da), (vb, db) = a, b
    return va / vb, _times(1.0 / vb, da) - _times(va / vb**2, db)


def _plain_pow(a: Dual, b: Dual) -> Dual:
    (va, da), (vb, db) = a, b
    out = va**vb
    # d/d exponent is log(a) a**b, taken as 0 where a == 0 (as JAX does)
    log_base = np.where(va == 0, 0.0, np.log(np.where(va == 0, 1.0, va)))
    return out, _times(vb * va ** (vb - 1), da) + _times(out * log_base, db)


_PLAIN_RULES = {
    "add": _plain_add,
    "sub": _plain_sub,
    "mul": _plain_mul,
    "div": _plain_div,
    "pow": _plain_pow,
    "min": lambda a, b: _pick(a, b, np.less_equal),
    "max": lambda a, b: _pick(a, b, np.greater_equal),
}
