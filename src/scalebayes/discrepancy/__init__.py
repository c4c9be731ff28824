"""Discrepancies: what a law's shape misses, as one component behind one small interface.

:class:`~scalebayes.discrepancy.base.Discrepancy` is the interface; ``none``, ``curvature``,
``quadratic``, ``gp`` and ``gp_alone`` implement it, and ``auto`` picks ``gp`` for laws of at
most two inputs and ``none`` for more (in a grouped fit: ``quadratic``). :func:`named` builds one from its name, :func:`from_spec` from the CLI's
``NAME[:FIELD=VALUE;...]``, :func:`from_dict` from a saved fit's description.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, override

from scalebayes.discrepancy.base import Discrepancy
from scalebayes.discrepancy.curvature import Curvature
from scalebayes.discrepancy.gp import GP, GPAlone
from scalebayes.discrepancy.hsgp import MAX_INPUTS
from scalebayes.discrepancy.none import NoDiscrepancy
from scalebayes.discrepancy.quadratic import Quadratic
from scalebayes.errors import LawError
from scalebayes.laws import Law


@dataclass(frozen=True)
class Auto(Discrepancy):
    """The default: the GP for laws of at most two inputs, none for more; grouped: the quadratic.

    In a grouped fit the groups pool one quadratic (:meth:`for_groups`; each group's around a
    population's, :class:`~scalebayes.Pooling`); the GP cannot serve a law of more than two
    inputs.

    Why the GP (with its quadratic): fitted on the smaller runs of 9 public tables and scored on
    the larger, its 90 % intervals held 94 % of the 363 held-out runs against 57 % for none, at
    0.40 of the mean interval score (0.028 against 0.070), and exponents and allocations are
    exactly the plain law's (benchmarks/backtest.py).
    """

    name = "auto"
    summary = "gp for laws of at most two inputs, none for more"

    @override
    def resolve(self, law: Law) -> Discrepancy:
        return GP() if len(law.inputs) <= MAX_INPUTS else NoDiscrepancy()

    @override
    def for_groups(self, law: Law) -> Discrepancy:
        # The GP samples apart from the law, which a grouped model cannot. Each Marin ladder cut
        # to its 3 cheapest budgets and fitted with its two siblings: with the shared quadratic
        # the 90 % interval score on its other runs is 0.020-0.034 (93 % pooled coverage), 0.24-
        # 0.60x the ladder's own default fit, 0.19-0.28x its plain-law fit; the plain law's
        # grouped fit scored 0.18-0.21 (benchmarks/new_ladder.py, new_ladder.json).
        return Quadratic().for_groups(law)


KINDS: dict[str, type[Discrepancy]] = {
    kind.name: kind for kind in (Auto, NoDiscrepancy, Curvature, Quadratic, GP, GPAlone)
}
"""Every discrepancy by name."""


def _kind(name: str) -> type[Discrepancy]:
    """The class registered as ``name``; a LawError listing the names otherwise."""
    if name not in KINDS:
        raise LawError(
            f"discrepancy {name!r}: expected one of " + ", ".join(repr(k) for k in KINDS)
        )
    return KINDS[name]


def named(name: str, **priors: Any) -> Discrepancy:
    """The discrepancy called ``name`` (a key of :data:`KINDS`), with prior fields ``priors``."""
    return _kind(name)(**priors)


def from_dict(stored: Any) -> Discrepancy:
    """Rebuild a discrepancy from :meth:`Discrepancy.to_dict` (or a bare name, as older files hold)."""
    if isinstance(stored, str):
        return named(stored)
    fields = dict(stored)
    return _kind(fields.pop("name")).from_stored(fields)


def from_spec(spec: str) -> Discrepancy:
    """The discrepancy ``NAME`` or ``NAME:FIELD=VALUE[;FIELD=VALUE]`` describes (CLI, benchmarks).

    Fields are the component's own: ``gp:curvature_scale=0.005`` (a looser quadratic),
    ``gp:amplitude_prior=LogNormal(loc=-4, scale=1)``; a value that reads as a number is one,
    ``None`` is None, anything else a string.
    """
    name, _, rest = spec.strip().partition(":")
    kind = _kind(name.strip())
    known = [f.name for f in dataclasses.fields(kind)] if dataclasses.is_dataclass(kind) else []
    fields: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(";"))):
        field, sep, text = item.partition("=")
        field = field.strip()
        if not sep or field not in known:
            offered = ", ".join(known) or "none"
            raise LawError(
                f"discrepancy {spec!r}: {item!r} is not FIELD=VALUE of {name!r} (its fields: "
                f"{offered})"
            )
        fields[field] = _spec_value(text.strip())
    return kind(**fields)


def _spec_value(text: str) -> Any:
    if text == "None":
        return None
    try:
        return float(text)
    except ValueError:
        return text


__all__ = [
    "GP",
    "KINDS",
    "Auto",
    "Curvature",
    "Discrepancy",
    "GPAlone",
    "NoDiscrepancy",
    "Quadratic",
    "from_dict",
    "from_spec",
    "named",
]
