"""Number formatting shared by the CLI tables and the HTML report (standard library only)."""

from __future__ import annotations

import math


def format_number(x: float) -> str:
    """Four significant digits in plain notation between 1e-3 and 1e5, scientific outside."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.3e}"
