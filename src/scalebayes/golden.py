"""Golden-section search, elementwise over arrays, in NumPy: what ``optimal`` and ``plan`` refine with."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def golden_section(
    fn: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, steps: int
) -> np.ndarray:
    """The midpoint of [lo, hi] shrunk ``steps`` times around a minimum of ``fn``, elementwise.

    Each step keeps the part of the bracket that holds the smaller of its two inner values
    (ties keep the right part); the width shrinks by 0.618 a step.
    """
    a, b = lo, hi
    x1, x2 = b - _INV_PHI * (b - a), a + _INV_PHI * (b - a)
    f1, f2 = fn(x1), fn(x2)
    for _ in range(steps):
        left = f1 < f2  # the minimum lies in [a, x2]
        a, b = np.where(left, a, x1), np.where(left, x2, b)
        new = np.where(left, b - _INV_PHI * (b - a), a + _INV_PHI * (b - a))
        f_new = fn(new)
        x1, x2, f1, f2 = (
            np.where(left, new, x2),
            np.where(left, x1, new),
            np.where(left, f_new, f2),
            np.where(left, f1, f_new),
        )
    return 0.5 * (a + b)
