"""Counts as papers and model cards write them: ``70B`` parameters, ``1.4T`` tokens, ``17m``.

A leaf: :func:`scalebayes.data.load_runs` reads the count columns (parameters, tokens, unique
tokens, FLOPs, budgets) with :func:`parse_counts`. A suffix is a power of a thousand and nothing
else: K thousand, M million, B billion, T trillion, in either case. Separators ("1,000"), units
("7 GB", "3%") and a suffix after an exponent ("1e3K") stay errors: each could mean more than
one number.

A column's name may give its unit instead (:func:`header_unit`): "Parameters (M)", "tokens [B]",
"params_B", "FLOPs (1e21)", "compute (PF-days)". Its cells are then plain numbers of that unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Powers of ten of the suffixes (lower case). "G" is left out: in "GFLOPs" it names a unit of
# compute, and "7G" of parameters is not how anyone writes them.
SUFFIXES = {"k": 3, "m": 6, "b": 9, "t": 12}
_PATTERN = r"^([+-]?(?:\d+\.?\d*|\.\d+))\s*([kmbtKMBT])$"
# Units a column's name may end with: in brackets, "Parameters (M)", "tokens [in billions]",
# "FLOPs (1e21)" (scalebayes.columns reads other bracketed notes, "(non-embedding)", with the
# same pattern); or a bare suffix after a separator, "params_B", "tokens T".
BRACKETED = re.compile(r"^(?P<base>.*?\S)\s*[(\[]\s*(?:in\s+)?(?P<unit>[^()\[\]]+?)\s*[)\]]$")
_BARE = re.compile(r"^(?P<base>.*?[^\s_\-])[\s_\-]+(?P<unit>[kmbtKMBT]|bn|Bn|BN)$")
_WORDS = {"bn": 9, "thousand": 3, "thousands": 3, "million": 6, "millions": 6, "billion": 9,
          "billions": 9, "trillion": 12, "trillions": 12}  # fmt: skip
_POWER = re.compile(r"^(?:[x×*]\s*)?(?:1e\+?|10\^|10\*\*)(\d{1,2})$")
# A petaflop/s-day, Kaplan et al. (2020)'s unit of compute: 1e15 FLOP/s for 86 400 s.
PF_DAY = 8.64e19
_PF_DAYS = frozenset({"pfdays", "pfday", "pfsdays", "pfsday", "petaflopdays", "petaflopday",
                      "petaflopsdays", "petaflopsday"})  # fmt: skip
# FLOPs with an SI prefix, as logging tools count compute: "GFLOPs", "(PFLOPs)", Marin's W&B
# "throughput/total_gflops". Compute only; the name keeps its "FLOPs" ("total_gflops" reads as
# the column "total_flops").
_PREFIXES = {"k": 3, "m": 6, "g": 9, "t": 12, "p": 15, "e": 18, "z": 21}
_PREFIXED = re.compile(r"^(?P<lead>(?:.*[\s_\-/.:])?)(?P<unit>(?P<prefix>[kmgtpez])(?P<flops>flops?))$",
                       re.IGNORECASE)  # fmt: skip


@dataclass(frozen=True)
class HeaderUnit:
    """The unit a column's name gives.

    ``base`` the name without it, ``text`` the unit as written, ``factor`` what one of it counts
    (``"M"``: 1e6), ``compute`` whether it is a unit of FLOPs only (PF-days, GFLOPs).
    """

    base: str
    text: str
    factor: float
    compute: bool = False

    def describe(self) -> str:
        """The factor as a message shows it: ``"1e6"``, ``"8.64e19 (PF-days)"``."""
        power = math.log10(self.factor)
        shown = (
            f"1e{power:.0f}"
            if abs(power - round(power)) < 1e-12
            else f"{self.factor:.3g}".replace("e+", "e")
        )
        return f"{shown} ({self.text})" if self.compute else shown


def header_unit(name: object) -> HeaderUnit | None:
    """The unit at the end of a column's name, or None: ``"Tokens (B)"`` counts billions."""
    text = str(name).strip()
    prefixed = _PREFIXED.match(text)
    if prefixed is not None:  # "total_gflops": the total_flops, in billions
        return HeaderUnit(prefixed["lead"] + prefixed["flops"], prefixed["unit"],
                          _prefix_factor(prefixed), compute=True)  # fmt: skip
    for pattern in (BRACKETED, _BARE):
        match = pattern.match(text)
        if match is None:
            continue
        unit = match["unit"]
        lower = unit.lower()
        power = _POWER.match(lower)
        if lower in SUFFIXES or lower in _WORDS:
            return HeaderUnit(match["base"], unit, 10.0 ** {**SUFFIXES, **_WORDS}[lower])
        if power is not None:
            return HeaderUnit(match["base"], unit, 10.0 ** int(power[1]))
        if re.sub(r"[\s\-_/]", "", lower) in _PF_DAYS:
            return HeaderUnit(match["base"], unit, PF_DAY, compute=True)
        if (inner := _PREFIXED.match(unit)) is not None and not inner["lead"]:  # "(GFLOPs)"
            return HeaderUnit(match["base"], unit, _prefix_factor(inner), compute=True)
    return None


def _prefix_factor(match: re.Match[str]) -> float:
    """FLOPs in one of the prefixed unit :data:`_PREFIXED` matched (``"GFLOPs"``: 1e9)."""
    return 10.0 ** _PREFIXES[match["prefix"].lower()]


def suffixed(text: pd.Series) -> np.ndarray:
    """Which cells carry a count suffix (``"70B"``): stripped strings, as :func:`parse_counts`."""
    plain = pd.to_numeric(text, errors="coerce").to_numpy(float)
    return text.str.match(_PATTERN).to_numpy(bool) & np.isnan(plain)


def parse_counts(text: pd.Series) -> np.ndarray:
    """Float64 values of cells written as plain numbers or with a suffix; NaN where neither.

    ``text``: stripped strings (missing cells already masked as ``"nan"``). ``"2.8B"`` reads
    as ``float("2.8e9")``, exactly the number written.
    """
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(float, copy=True)
    parts = text.str.extract(_PATTERN)
    suffixed = parts[0].notna().to_numpy() & np.isnan(numbers)
    if suffixed.any():
        exponents = parts[1][suffixed].str.lower().map(SUFFIXES).astype(str)
        numbers[suffixed] = pd.to_numeric(parts[0][suffixed] + "e" + exponents).to_numpy(float)
    return numbers
