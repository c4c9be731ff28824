"""Numbers and text tables shared by the CLI, the HTML report and result types (standard library only)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


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


def score_header(label: str, width: int) -> str:
    """The header of a held-out score table (:func:`score_line`), its first column ``width`` wide."""
    return (
        f"{label:>{width}s} {'fit':>4s} {'held':>4s} {'IS90':>7s} {'CRPS':>7s} {'lpd/run':>7s} "
        f"{'cover90':>7s} {'cover50':>7s} {'width90':>7s} {'bias':>8s} {'med|err|':>8s}"
    )


def score_line(
    label: str, width: int, n_fit: int | None, n_held: int, scores: Mapping[str, float]
) -> str:
    """One row of held-out scores: proper scores first (interval score, CRPS, lpd), then coverage.

    ``scores`` holds ``scalebayes.holdout.SCORES``; ``n_fit`` None leaves its column blank.
    """
    fitted = "" if n_fit is None else f"{n_fit:d}"
    return (
        f"{label:>{width}s} {fitted:>4s} {n_held:4d} {scores['interval_score_90']:7.4f} "
        f"{scores['crps']:7.4f} {scores['lpd']:7.2f} {scores['coverage_90']:7.0%} "
        f"{scores['coverage_50']:7.0%} {scores['width_90']:7.4f} {scores['bias']:+8.4f} "
        f"{scores['median_abs_error']:8.4f}"
    )
