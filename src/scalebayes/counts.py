"""Counts as papers and model cards write them: ``70B`` parameters, ``1.4T`` tokens, ``17m``.

A leaf: :func:`scalebayes.data.load_runs` reads the count columns (parameters, tokens, unique
tokens, FLOPs, budgets) with :func:`parse_counts`. A suffix is a power of a thousand and nothing
else: K thousand, M million, B billion, T trillion, in either case. Separators ("1,000"), units
("7 GB", "3%") and a suffix after an exponent ("1e3K") stay errors: each could mean more than
one number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Powers of ten of the suffixes (lower case). "G" is left out: in "GFLOPs" it names a unit of
# compute, and "7G" of parameters is not how anyone writes them.
SUFFIXES = {"k": 3, "m": 6, "b": 9, "t": 12}
_PATTERN = r"^([+-]?(?:\d+\.?\d*|\.\d+))\s*([kmbtKMBT])$"


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
