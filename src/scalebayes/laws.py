"""Scaling laws as data: a formula, the inputs it uses, and each parameter with a default prior.

A law is a TOML file in the catalogue (``models/``), a user's own file, or built in Python with
:func:`make_law`; all three go through the same validation (:func:`law_from_dict`), so a
:class:`Law` always has a whitelisted formula whose symbols are exactly its inputs and
parameters. Adding a law to the catalogue means adding a file, not code.

Schema, version 1::

    schema_version = 1
    name = "chinchilla"                          # identifier; equals the file name stem
    title = "L(N, D) = E + A/N^alpha + B/D^beta"  # optional
    reference = "Hoffmann et al. 2022"            # optional
    inputs = ["N", "D"]                           # any of N, D, C, U
    formula = "E + A / N**alpha + B / D**beta"
    [params.alpha]                                # one table per parameter, in listing order
    prior = "LogNormal(loc=-1.1, scale=0.4)"      # keyword arguments only
    doc = "parameter-count exponent"              # required
    units = ""                                    # optional
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalebayes import formula as fm
from scalebayes.errors import LawError, LawFileError, PriorError
from scalebayes.priors import FrozenDict, Prior

if TYPE_CHECKING:  # JAX loads when a law is first evaluated
    import jax
    from jax.typing import ArrayLike

__all__ = [
    "INPUTS",
    "RESERVED",
    "SCHEMA_VERSION",
    "Law",
    "Param",
    "available_laws",
    "catalogue_dir",
    "law_from_dict",
    "load_law",
    "make_law",
]

SCHEMA_VERSION = 1
INPUTS = ("N", "D", "C", "U")
"""Inputs a law may use, in canonical order: parameters, tokens, compute, unique tokens."""
RESERVED = frozenset({"sigma", "nu"})
"""Names the likelihood uses for its own parameters; laws may not use them."""

_TOP_KEYS = ("schema_version", "name", "title", "reference", "inputs", "formula", "params")
_PARAM_KEYS = ("prior", "doc", "units")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_Fail = Callable[[str, str], LawFileError]  # field, problem -> error to raise


@dataclass(frozen=True)
class Param:
    """One parameter of a law: its default prior and a one-line meaning."""

    name: str
    prior: Prior
    doc: str
    units: str = ""


@dataclass(frozen=True)
class Law:
    """A functional form L(inputs; params) with default priors.

    Build one with :func:`load_law`, :func:`law_from_dict` or :func:`make_law`, which validate
    it; instances are immutable and hashable, and :attr:`key` identifies law and priors.
    """

    name: str
    title: str
    formula: str
    expr: fm.Expr
    inputs: tuple[str, ...]
    params: Mapping[str, Param]
    reference: str = ""
    source: str = field(default="<python>", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "params", FrozenDict(self.params))

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in file order."""
        return tuple(self.params)

    @property
    def free_param_names(self) -> tuple[str, ...]:
        """Parameters the sampler draws: all but those pinned by a ``Delta`` prior."""
        return tuple(n for n, p in self.params.items() if p.prior.family != "Delta")

    @property
    def key(self) -> str:
        """A short stable hash of :meth:`to_dict`: equal for equal laws (same priors, docs)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_priors(self, overrides: Mapping[str, str | Prior]) -> Law:
        """Return a copy with some default priors replaced.

        Parameters
        ----------
        overrides : mapping of str to str or Prior
            Parameter name to prior, e.g. ``{"alpha": "Gamma(concentration=2, rate=6)"}``.

        Raises
        ------
        LawError
            If a name is not a parameter of this law (never silently ignored).
        PriorError
            If a prior string is invalid; the message names the parameter.
        """
        unknown = [name for name in overrides if name not in self.params]
        if unknown:
            raise LawError(
                f"law {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are: {', '.join(self.params)}"
            )
        params = dict(self.params)
        for name, prior in overrides.items():
            params[name] = dataclasses.replace(params[name], prior=_as_prior(prior, name))
        return dataclasses.replace(self, params=params)

    def log_mean(
        self,
        params: Mapping[str, ArrayLike],
        log_inputs: Mapping[str, ArrayLike],
        *,
        xp: Any = None,
    ) -> jax.Array:
        """Natural log of the law's value, computed stably in log space.

        Parameters
        ----------
        params : mapping of str to array-like
            Values (plain scale) of all parameters; extra entries (e.g. ``sigma``) are ignored.
        log_inputs : mapping of str to array-like
            Natural logs of all inputs of the law (``log N`` in parameters, ``log D`` in tokens,
            ``log C`` in FLOPs, ...). Arrays broadcast against each other and the parameters.
        xp : module, optional
            Array namespace: ``jax.numpy`` (default) or ``numpy`` (no JAX program to compile).

        Returns
        -------
        jax.Array
            Log of the mean loss (nats/token for the catalogue laws).
        """
        return fm.log_evaluate(
            self.expr,
            self._pick(params, self.param_names),
            self._pick(log_inputs, self.inputs),
            xp=xp,
        )

    def mean(self, params: Mapping[str, ArrayLike], inputs: Mapping[str, ArrayLike]) -> jax.Array:
        """Value of the law at plain-scale inputs: ``exp(log_mean(params, log(inputs)))``."""
        import jax.numpy as jnp

        # Python ints to float first: jnp.log(10**13) overflows int32 when x64 is off.
        log_inputs = {
            name: jnp.log(float(value) if isinstance(value, int) else value)
            for name, value in self._pick(inputs, self.inputs).items()
        }
        return jnp.exp(self.log_mean(params, log_inputs))

    def _pick(self, values: Mapping[str, ArrayLike], names: Sequence[str]) -> dict[str, ArrayLike]:
        missing = [name for name in names if name not in values]
        if missing:
            raise LawError(f"law {self.name!r} needs values for {missing}; got {sorted(values)}")
        return {name: values[name] for name in names}

    def to_dict(self) -> dict[str, Any]:
        """Return the law as a JSON/TOML-serialisable dict (schema version 1)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "title": self.title,
            "formula": self.formula,
            "inputs": list(self.inputs),
            "reference": self.reference,
            "params": {
                p.name: {"prior": str(p.prior), "doc": p.doc, "units": p.units}
                for p in self.params.values()
            },
        }

    def __str__(self) -> str:
        width = max(map(len, self.params), default=0)
        prior_width = max((len(str(p.prior)) for p in self.params.values()), default=0)
        lines = [f"{self.name}: {self.title or self.formula}"]
        lines.append(f"  formula:   {self.formula}")
        lines.append(f"  inputs:    {', '.join(self.inputs)}")
        if self.reference:
            lines.append(f"  reference: {self.reference}")
        lines.append("  params:")
        for p in self.params.values():
            units = f" [{p.units}]" if p.units else ""
            lines.append(f"    {p.name:<{width}}  {p.prior!s:<{prior_width}}  {p.doc}{units}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Law(name={self.name!r}, formula={self.formula!r}, source={self.source!r})"


# --------------------------------------------------------------------------------------------
# validation


def law_from_dict(data: Mapping[str, Any], *, source: str) -> Law:
    """Validate a law mapping (a parsed TOML file, or :meth:`Law.to_dict` output).

    Parameters
    ----------
    data : mapping
        Fields of the law schema; see the module docstring.
    source : str
        Where the mapping came from (a path, or e.g. ``"<dict>"``), for error messages.

    Returns
    -------
    Law

    Raises
    ------
    LawFileError
        Naming the source, the offending field and what was expected.
    """

    def fail(where: str, problem: str) -> LawFileError:
        return LawFileError(source, where, problem)

    if not isinstance(data, Mapping):
        raise fail("<root>", f"expected a table of fields, got {type(data).__name__}")
    _check_keys(data, _TOP_KEYS, "", fail)
    for key in ("schema_version", "name", "inputs", "formula", "params"):
        if key not in data:
            raise fail(key, f"missing; a law needs {', '.join(_TOP_KEYS[:2] + _TOP_KEYS[4:])}")

    version = data["schema_version"]
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise fail("schema_version", f"unsupported version {version!r}; expected {SCHEMA_VERSION}")
    name = _string(data, "name", fail)
    if not _NAME.match(name):
        raise fail("name", f"{name!r} is not a simple identifier (letters, digits, _)")
    title = _string(data, "title", fail, default="")
    reference = _string(data, "reference", fail, default="")

    inputs = _inputs(data["inputs"], fail)
    params = _params(data["params"], fail)
    expr = fm.parse_formula(data["formula"], source=source, field="formula")
    _check_symbols(expr, inputs, params, fail)
    return Law(
        name=name,
        title=title,
        formula=fm.to_string(expr),
        expr=expr,
        inputs=inputs,
        params=params,
        reference=reference,
        source=source,
    )


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], prefix: str, fail: _Fail) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f"{prefix}{key}", f"unknown field{hint}; expected one of {list(allowed)}")


def _string(
    table: Mapping[str, Any], key: str, fail: _Fail, *, prefix: str = "", default: str | None = None
) -> str:
    if key not in table and default is None:
        raise fail(f"{prefix}{key}", "missing; expected a string")
    value = table.get(key, default)
    if not isinstance(value, str):
        raise fail(f"{prefix}{key}", f"expected a string, got {value!r}")
    return value


def _inputs(raw: Any, fail: _Fail) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise fail("inputs", f"expected a non-empty list drawn from {list(INPUTS)}")
    for item in raw:
        if item not in INPUTS:
            raise fail("inputs", f"unknown input {item!r}; expected some of {list(INPUTS)}")
    if len(set(raw)) != len(raw):
        raise fail("inputs", f"duplicate entries in {raw}")
    return tuple(item for item in INPUTS if item in raw)  # canonical order


def _params(raw: Any, fail: _Fail) -> dict[str, Param]:
    if not isinstance(raw, Mapping):
        raise fail("params", "expected a table with one [params.<name>] table per parameter")
    params = {}
    for name, spec in raw.items():
        where = f"params.{name}"
        if not (isinstance(name, str) and fm.is_name(name)):
            raise fail(where, "expected an ASCII identifier, not a Python keyword, no leading '_'")
        if name in INPUTS or name in RESERVED:
            kind = "an input" if name in INPUTS else "reserved for the likelihood"
            raise fail(where, f"{name!r} is {kind}; rename the parameter")
        if not isinstance(spec, Mapping):
            raise fail(where, 'expected a table such as { prior = "...", doc = "..." }')
        _check_keys(spec, _PARAM_KEYS, f"{where}.", fail)
        try:
            prior = Prior.parse(_string(spec, "prior", fail, prefix=f"{where}."))
        except PriorError as err:
            raise fail(f"{where}.prior", str(err)) from None
        # Required so that a file says what each parameter means; may be "" (make_law).
        doc = _string(spec, "doc", fail, prefix=f"{where}.")
        units = _string(spec, "units", fail, prefix=f"{where}.", default="")
        params[name] = Param(name, prior, doc, units)
    return params


def _check_symbols(
    expr: fm.Expr, inputs: tuple[str, ...], params: Mapping[str, Param], fail: _Fail
) -> None:
    used = fm.symbols(expr)
    undeclared = sorted(used - set(inputs) - set(params))
    if undeclared:
        raise fail(
            "formula",
            f"uses undeclared name(s) {undeclared}; declare each as a [params.<name>] table "
            f"or in inputs (inputs are {list(inputs)}, params are {list(params)})",
        )
    unused_params = [name for name in params if name not in used]
    if unused_params:
        raise fail(f"params.{unused_params[0]}", f"not used in the formula ({unused_params})")
    unused_inputs = [name for name in inputs if name not in used]
    if unused_inputs:
        raise fail("inputs", f"{unused_inputs} declared but not used in the formula")


def _as_prior(prior: str | Prior, name: str) -> Prior:
    if isinstance(prior, Prior):
        return prior
    try:
        return Prior.parse(prior)
    except PriorError as err:
        raise PriorError(f"prior for parameter {name!r}: {err}") from None


# --------------------------------------------------------------------------------------------
# loading and building


def make_law(
    name: str,
    formula: str,
    *,
    inputs: Sequence[str],
    priors: Mapping[str, str | Prior],
    docs: Mapping[str, str] | None = None,
    title: str = "",
    reference: str = "",
) -> Law:
    """Build a law in Python, validated like a law file.

    Parameters
    ----------
    name : str
        Identifier of the law.
    formula : str
        E.g. ``"E + A / N**alpha"``; parsed against the whitelist, never evaluated.
    inputs : sequence of str
        Inputs used, from ``N, D, C, U``.
    priors : mapping of str to str or Prior
        A prior for every parameter of the formula, in the order parameters should appear.
    docs : mapping of str to str, optional
        One-line meaning of each parameter (default: empty).
    title, reference : str
        Free text.

    Returns
    -------
    Law
    """
    docs = dict(docs or {})
    source = f"<make_law {name!r}>"
    stray = sorted(set(docs) - set(priors))
    if stray:
        raise LawFileError(source, "docs", f"{stray} have no prior; parameters: {list(priors)}")
    data = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "title": title,
        "reference": reference,
        "inputs": list(inputs),
        "formula": formula,
        "params": {
            param: {"prior": str(_as_prior(prior, param)), "doc": docs.get(param, "")}
            for param, prior in priors.items()
        },
    }
    return law_from_dict(data, source=source)


def catalogue_dir() -> Path:
    """Directory of the shipped law files: inside the wheel, or the checkout's ``models/``."""
    packaged = Path(__file__).parent / "models"
    return packaged if packaged.is_dir() else Path(__file__).parents[2] / "models"


def available_laws() -> dict[str, Law]:
    """Load every law in the catalogue, sorted by name."""
    return {path.stem: _load_file(path) for path in sorted(catalogue_dir().glob("*.toml"))}


def load_law(law: str | os.PathLike[str] | Law) -> Law:
    """Return a law given itself, a catalogue name (``"chinchilla"``) or a path to a TOML file.

    Raises
    ------
    LawError
        For an unknown name (listing the catalogue) or a missing file.
    LawFileError
        For a file that is not valid TOML or does not follow the schema.
    """
    if isinstance(law, Law):
        return law
    if isinstance(law, str) and _NAME.match(law):
        path = catalogue_dir() / f"{law}.toml"
        if not path.is_file():
            names = ", ".join(path.stem for path in sorted(catalogue_dir().glob("*.toml")))
            raise LawError(
                f"no law named {law!r} in the catalogue ({names or 'empty'}); "
                f"to use your own law, pass the path to its .toml file, e.g. './{law}.toml'"
            )
        return _load_file(path)
    if not isinstance(law, str | os.PathLike):
        raise LawError(f"expected a law name, a path to a .toml file or a Law, got {law!r}")
    path = Path(law)
    if not path.is_file():
        raise LawError(f"law file {str(path)!r} not found")
    return _load_file(path)


def _load_file(path: Path) -> Law:
    source = str(path)
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except tomllib.TOMLDecodeError as err:
        raise LawFileError(source, "<toml>", f"not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise LawFileError(source, "<toml>", f"not UTF-8 text: {err}") from None
    except OSError as err:
        raise LawError(f"cannot read law file {source!r}: {err.strerror}") from None
    law = law_from_dict(data, source=source)
    if law.name != path.stem:
        raise LawFileError(
            source, "name", f"{law.name!r} differs from the file name {path.stem!r}; rename one"
        )
    return law
