"""Priors as small values: parsed from keyword-only strings, printed canonically, built for NumPyro.

``Prior.parse("Gamma(concentration=4, rate=12)")`` checks the family against a whitelist, the
argument names against that family and the values against their domains. Arguments must be
keywords: ``Gamma(4, 12)`` means rate 12 to NumPyro and Stan but scale 12 to SciPy.
The text is parsed with :mod:`ast` and never evaluated; families map to NumPyro constructors
through a fixed table, never through ``getattr`` on a user-given name.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from scalebayes.errors import PriorError

if TYPE_CHECKING:
    import numpyro.distributions as dist

__all__ = ["FAMILIES", "FrozenDict", "Prior"]


class FrozenDict(Mapping[str, Any]):
    """An immutable, hashable, picklable mapping that keeps insertion order.

    Used for mapping-valued fields of frozen dataclasses (``Prior.kwargs``, ``Law.params``),
    so that those stay hashable; ``types.MappingProxyType`` is neither hashable nor picklable.
    """

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        self._data = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        # Equality ignores order (as for dict, via Mapping.__eq__), so the hash must too.
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"


@dataclass(frozen=True)
class _Arg:
    name: str
    domain: str  # "real" or "positive"; always finite
    required: bool = True


def _increasing(low: str, high: str) -> Callable[[Mapping[str, float]], str | None]:
    def check(kwargs: Mapping[str, float]) -> str | None:
        if low in kwargs and high in kwargs and not kwargs[low] < kwargs[high]:
            return f"{low} must be smaller than {high}"
        return None

    return check


@dataclass(frozen=True)
class _Family:
    args: tuple[_Arg, ...]  # in NumPyro's order, which is the canonical printing order
    # The inverse CDF from its keyword arguments: quantile(q, **kwargs), q an array in (0, 1).
    quantile: Callable[..., Any]
    check: Callable[[Mapping[str, float]], str | None] | None = None

    def signature(self, name: str) -> str:
        parts = [a.name + ("=..." if a.required else "=... (optional)") for a in self.args]
        return f"{name}({', '.join(parts)})"


_REAL, _POS = "real", "positive"


def _special() -> Any:
    import scipy.special  # lazy: only a fit's start point and pre-flight check need it

    return scipy.special


def _truncated_normal_quantile(
    q: Any, loc: float, scale: float, low: float = -math.inf, high: float = math.inf
) -> Any:
    sp = _special()
    below, above = sp.ndtr((low - loc) / scale), sp.ndtr((high - loc) / scale)
    return loc + scale * sp.ndtri(below + q * (above - below))


FAMILIES: Mapping[str, _Family] = FrozenDict(
    {
        "Normal": _Family(
            (_Arg("loc", _REAL), _Arg("scale", _POS)),
            lambda q, loc, scale: loc + scale * _special().ndtri(q),
        ),
        "LogNormal": _Family(
            (_Arg("loc", _REAL), _Arg("scale", _POS)),
            lambda q, loc, scale: np.exp(loc + scale * _special().ndtri(q)),
        ),
        "HalfNormal": _Family(
            (_Arg("scale", _POS),), lambda q, scale: scale * _special().ndtri((1 + q) / 2)
        ),
        "HalfCauchy": _Family(
            (_Arg("scale", _POS),), lambda q, scale: scale * np.tan(np.pi * q / 2)
        ),
        "Gamma": _Family(
            (_Arg("concentration", _POS), _Arg("rate", _POS)),
            lambda q, concentration, rate: _special().gammaincinv(concentration, q) / rate,
        ),
        "InverseGamma": _Family(
            (_Arg("concentration", _POS), _Arg("rate", _POS)),
            lambda q, concentration, rate: rate / _special().gammainccinv(concentration, q),
        ),
        "Exponential": _Family((_Arg("rate", _POS),), lambda q, rate: -np.log1p(-q) / rate),
        "Uniform": _Family(
            (_Arg("low", _REAL), _Arg("high", _REAL)),
            lambda q, low, high: low + q * (high - low),
            _increasing("low", "high"),
        ),
        "LogUniform": _Family(
            (_Arg("low", _POS), _Arg("high", _POS)),
            lambda q, low, high: low * (high / low) ** q,
            _increasing("low", "high"),
        ),
        "Beta": _Family(
            (_Arg("concentration1", _POS), _Arg("concentration0", _POS)),
            lambda q, concentration1, concentration0: _special().betaincinv(
                concentration1, concentration0, q
            ),
        ),
        "StudentT": _Family(
            (_Arg("df", _POS), _Arg("loc", _REAL), _Arg("scale", _POS)),
            lambda q, df, loc, scale: loc + scale * _special().stdtrit(df, q),
        ),
        "TruncatedNormal": _Family(
            (
                _Arg("loc", _REAL),
                _Arg("scale", _POS),
                _Arg("low", _REAL, required=False),
                _Arg("high", _REAL, required=False),
            ),
            _truncated_normal_quantile,
            _increasing("low", "high"),
        ),
        "Delta": _Family((_Arg("v", _REAL),), lambda q, v: np.full(np.shape(q), v, dtype=float)),
    }
)
"""Prior families that law files may name, with their keyword arguments in canonical order."""


@functools.cache
def _constructors() -> dict[str, Callable[..., dist.Distribution]]:
    import numpyro.distributions as dist  # lazy: keeps `import scalebayes` light

    return {
        "Normal": dist.Normal,
        "LogNormal": dist.LogNormal,
        "HalfNormal": dist.HalfNormal,
        "HalfCauchy": dist.HalfCauchy,
        "Gamma": dist.Gamma,
        "InverseGamma": dist.InverseGamma,
        "Exponential": dist.Exponential,
        "Uniform": dist.Uniform,
        "LogUniform": dist.LogUniform,
        "Beta": dist.Beta,
        "StudentT": dist.StudentT,
        "TruncatedNormal": dist.TruncatedNormal,
        "Delta": dist.Delta,
    }


@dataclass(frozen=True)
class Prior:
    """A prior distribution for one parameter, e.g. ``Gamma(concentration=4.0, rate=12.0)``.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES`, e.g. ``"LogNormal"``.
    kwargs : mapping of str to float
        Keyword arguments of the family; stored as floats in the family's canonical order.

    Raises
    ------
    PriorError
        On an unknown family, missing or unknown arguments, or values outside their domain.
    """

    family: str
    kwargs: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", _check(self.family, self.kwargs))

    @classmethod
    def parse(cls, text: str) -> Prior:
        """Parse ``"Family(name=number, ...)"``; keywords only, numbers may be signed.

        Parameters
        ----------
        text : str
            The prior, e.g. ``"LogNormal(loc=6.0, scale=2.0)"``.

        Returns
        -------
        Prior

        Raises
        ------
        PriorError
            With what was expected, e.g. the family's keyword signature.
        """
        if not isinstance(text, str):
            raise PriorError(f"expected a prior string, got {type(text).__name__}")
        try:
            node = ast.parse(text.strip(), mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise PriorError(
                f"cannot parse prior {text!r}: expected Family(name=number, ...), "
                "e.g. 'LogNormal(loc=0.5, scale=0.5)'"
            ) from None
        match node:
            case ast.Call(func=ast.Name(id=family), args=args, keywords=keywords):
                pass
            case _:
                raise PriorError(
                    f"prior {text!r} is not of the form Family(name=number, ...), "
                    "e.g. 'LogNormal(loc=0.5, scale=0.5)'"
                )
        spec = _family(family)
        if args:
            raise PriorError(
                f"prior {text!r}: arguments must be given by keyword, e.g. "
                f"{spec.signature(family)}, because positional order and meaning differ "
                "between libraries (Gamma(4, 12) is rate 12 in NumPyro and Stan, scale 12 in SciPy)"
            )
        kwargs = {}
        for keyword in keywords:
            if keyword.arg is None:
                raise PriorError(f"prior {text!r}: '**' is not allowed; name each argument")
            if keyword.arg in kwargs:
                raise PriorError(f"prior {text!r}: {keyword.arg}= given twice")
            kwargs[keyword.arg] = _number(keyword.value, text, keyword.arg)
        return cls(family, kwargs)

    def to_numpyro(self) -> dist.Distribution:
        """Build the NumPyro distribution."""
        return _constructors()[self.family](**self.kwargs)

    def quantile(self, q: ArrayLike) -> np.ndarray:
        """The inverse CDF at ``q`` (array in (0, 1)), exact, in NumPy (nothing to compile)."""
        return np.asarray(FAMILIES[self.family].quantile(np.asarray(q, dtype=float), **self.kwargs))

    def median(self) -> float:
        """The distribution's median, exact (no sampling, no JAX)."""
        return float(self.quantile(0.5))

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """``size`` independent draws in NumPy (inverse CDF of uniforms from ``rng``)."""
        return self.quantile(rng.uniform(size=size))

    def __str__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self.kwargs.items())
        return f"{self.family}({args})"


def _family(name: str) -> _Family:
    if name in FAMILIES:
        return FAMILIES[name]
    close = difflib.get_close_matches(name, list(FAMILIES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PriorError(f"unknown prior family {name!r}{hint}; known: {', '.join(FAMILIES)}")


def _number(node: ast.expr, text: str, name: str) -> float:
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    match node:
        case ast.Constant(value=int() | float() as value) if not isinstance(value, bool):
            return sign * value  # may be a huge int: _check turns it into a float or rejects it
    raise PriorError(f"prior {text!r}: {name}= must be a plain number, got {ast.unparse(node)!r}")


def _check(family: str, kwargs: Mapping[str, float]) -> FrozenDict:
    """Validate names and values and return them as floats in canonical order."""
    spec = _family(family)
    known = {arg.name for arg in spec.args}
    unknown = [name for name in kwargs if name not in known]
    missing = [a.name for a in spec.args if a.required and a.name not in kwargs]
    if unknown or missing:
        problems = [f"unknown argument(s) {unknown}"] * bool(unknown)
        problems += [f"missing argument(s) {missing}"] * bool(missing)
        raise PriorError(f"{family}: {'; '.join(problems)}; expected {spec.signature(family)}")
    values = {}
    for arg in spec.args:
        if arg.name not in kwargs:
            continue
        raw = kwargs[arg.name]
        if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
            raise PriorError(f"{family}: {arg.name} must be a number, got {raw!r}")
        try:
            value = float(raw)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value) or (arg.domain == _POS and not value > 0):
            expected = "a finite number > 0" if arg.domain == _POS else "a finite number"
            raise PriorError(f"{family}: {arg.name} must be {expected}, got {raw!r}")
        values[arg.name] = value
    problem = spec.check(values) if spec.check else None
    if problem:
        raise PriorError(f"{family}: {problem}, got {values}")
    return FrozenDict(values)
