"""Numbers and text tables shared by the CLI and the HTML report (standard library only)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def format_number(x: float) -> str:
    """Four significant digits in plain notation between 1e-3 and 1e5, scientific outside."""
    x = float(x)  # NumPy scalars in, plain text out
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.3e}"


def format_interval(low: float, high: float) -> str:
    """``[low, high]`` with :func:`format_number`."""
    return f"[{format_number(low)}, {format_number(high)}]"


def text_columns(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned text columns, two spaces apart, the header first."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(str(cell)) for cell in column) for column in zip(*lines, strict=True)]
    return "\n".join(
        "  ".join(f"{cell!s:<{w}}" for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
