"""Second-order jets: NumPy values carried with their first and second derivatives along one direction.

A :class:`Jet` holds a quantity ``v`` and its derivatives ``d1``, ``d2`` with respect to one
scalar ``t``. This module is also an array namespace over jets (``exp``, ``log``,
``logaddexp``, ``where``, ...), the names :func:`scalebayes.formula.log_evaluate` calls, so
``log_evaluate(..., xp=jets)`` with a seeded input or parameter (:func:`seed`) gives a law's
log mean and its derivatives in NumPy: forward differentiation, as ``jax.jvp`` twice, for the
one-off evaluations (an allocation's Newton steps, the GP's tangent at new points) where
tracing and compiling a JAX program took longer than the arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

inf = np.inf


class Jet:
    """``v`` with derivatives ``d1``, ``d2`` along one direction; arrays broadcast together."""

    __slots__ = ("d1", "d2", "v")
    __hash__ = None  # type: ignore[assignment]
    __array_ufunc__ = None  # array (op) jet: NumPy defers to the jet's reflected operator

    def __init__(self, v: Any, d1: Any = 0.0, d2: Any = 0.0) -> None:
        self.v, self.d1, self.d2 = np.asarray(v, dtype=float), d1, d2

    def __neg__(self) -> Jet:
        return Jet(-self.v, -self.d1, -self.d2)

    def __add__(self, other: Any) -> Jet:
        return add(self, other)

    def __radd__(self, other: Any) -> Jet:
        return add(other, self)

    def __sub__(self, other: Any) -> Jet:
        return subtract(self, other)

    def __rsub__(self, other: Any) -> Jet:
        return subtract(other, self)

    def __mul__(self, other: Any) -> Jet:
        return multiply(self, other)

    def __rmul__(self, other: Any) -> Jet:
        return multiply(other, self)

    def __truediv__(self, other: Any) -> Jet:
        return divide(self, other)

    def __rtruediv__(self, other: Any) -> Jet:
        return divide(other, self)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return np.equal(self.v, _jet(other).v)


def seed(value: Any, direction: Any = 1.0) -> Jet:
    """A variable: ``value`` moving at rate ``direction`` along ``t`` (no curvature)."""
    return Jet(value, np.asarray(direction, dtype=float), 0.0)


def _jet(x: Any) -> Jet:
    return x if isinstance(x, Jet) else Jet(x)


def asarray(x: Any) -> Any:
    """A jet as it is; anything else as a NumPy array."""
    return x if isinstance(x, Jet) else np.asarray(x)


def add(a: Any, b: Any) -> Jet:
    """``a + b``."""
    a, b = _jet(a), _jet(b)
    return Jet(a.v + b.v, a.d1 + b.d1, a.d2 + b.d2)


def subtract(a: Any, b: Any) -> Jet:
    """``a - b``."""
    a, b = _jet(a), _jet(b)
    return Jet(a.v - b.v, a.d1 - b.d1, a.d2 - b.d2)


def multiply(a: Any, b: Any) -> Jet:
    """``a * b``."""
    a, b = _jet(a), _jet(b)
    return Jet(a.v * b.v, a.d1 * b.v + a.v * b.d1, a.d2 * b.v + 2 * a.d1 * b.d1 + a.v * b.d2)


def divide(a: Any, b: Any) -> Jet:
    """``a / b``."""
    a, b = _jet(a), _jet(b)
    v = a.v / b.v
    d1 = (a.d1 - v * b.d1) / b.v
    return Jet(v, d1, (a.d2 - 2 * d1 * b.d1 - v * b.d2) / b.v)


def exp(a: Any) -> Jet:
    """``exp(a)``."""
    a = _jet(a)
    v = np.exp(a.v)
    return Jet(v, v * a.d1, v * (a.d2 + a.d1**2))


def expm1(a: Any) -> Jet:
    """``exp(a) - 1``."""
    a = _jet(a)
    v = np.expm1(a.v)
    return Jet(v, (v + 1) * a.d1, (v + 1) * (a.d2 + a.d1**2))


def log(a: Any) -> Jet:
    """Natural log of ``a``."""
    a = _jet(a)
    d1 = a.d1 / a.v
    return Jet(np.log(a.v), d1, a.d2 / a.v - d1**2)


def power(a: Any, b: Any) -> Jet:
    """``a ** b``, differentiated as ``exp(b log a)`` (log a taken as 0 where a = 0)."""
    a, b = _jet(a), _jet(b)
    value = np.power(a.v, b.v)
    u = multiply(b, log(Jet(np.where(a.v == 0, 1.0, a.v), a.d1, a.d2)))
    return Jet(value, value * u.d1, value * (u.d2 + u.d1**2))


def logaddexp(a: Any, b: Any) -> Jet:
    """``log(exp(a) + exp(b))``, computed stably."""
    a, b = _jet(a), _jet(b)
    v = np.logaddexp(a.v, b.v)
    p, q = np.exp(a.v - v), np.exp(b.v - v)
    d1 = p * a.d1 + q * b.d1
    return Jet(v, d1, p * (a.d2 + a.d1**2) + q * (b.d2 + b.d1**2) - d1**2)


def where(condition: Any, a: Any, b: Any) -> Jet:
    """``a`` where ``condition``, else ``b`` (values and derivatives alike)."""
    a, b = _jet(a), _jet(b)
    return Jet(
        np.where(condition, a.v, b.v),
        np.where(condition, a.d1, b.d1),
        np.where(condition, a.d2, b.d2),
    )


def minimum(a: Any, b: Any) -> Jet:
    """The smaller of ``a`` and ``b`` (``a`` on ties), with its derivatives."""
    a, b = _jet(a), _jet(b)
    return where(a.v <= b.v, a, b)


def maximum(a: Any, b: Any) -> Jet:
    """The larger of ``a`` and ``b`` (``a`` on ties), with its derivatives."""
    a, b = _jet(a), _jet(b)
    return where(a.v >= b.v, a, b)
