"""No discrepancy: the law's shape is trusted, near the data and beyond them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import override

from scalebayes.discrepancy.base import Discrepancy
from scalebayes.discrepancy.hsgp import MAX_INPUTS
from scalebayes.laws import Law


@dataclass(frozen=True)
class NoDiscrepancy(Discrepancy):
    """The plain law: log loss ~ law + noise. Fast; its intervals trust the law's shape."""

    name = "none"
    term_can_rise = False
    summary = "the plain law: its intervals trust the law's shape beyond the data"

    @override
    def beyond_data_note(self, law: Law) -> str | None:
        gp_serves = len(law.inputs) <= MAX_INPUTS
        return (
            "beyond the fitted runs these intervals trust the law's shape; in backtests on "
            "public data such 90% intervals held about half the held-out runs"
            + (", and 94% with --discrepancy gp (the default)" if gp_serves else "")
            + " (README: How far can you trust it?)"
        )
