"""Which fit a decision uses when asked for a group: :func:`select_group` (imports nothing heavy)."""

from __future__ import annotations

import sys
from typing import Any

from scalebayes.errors import ScalebayesError

NEW = "new"
"""The ``group=`` that asks for a group not yet run (drawn from the population)."""


def is_grouped(fit: Any) -> bool:
    """Whether ``fit`` is a :class:`~scalebayes.groups.result.GroupedFit` (imports nothing)."""
    # A GroupedFit exists only once its module is imported: no import here for plain fits.
    module = sys.modules.get("scalebayes.groups.result")
    return module is not None and isinstance(fit, module.GroupedFit)


def select_group(fit: Any, group: str | None) -> Any:
    """The fit a decision uses: ``fit`` itself, or a grouped fit's ``group`` (or ``"new"``).

    ``predict``, ``optimal``, ``chance`` and ``plan`` call it with their ``group=``.
    """
    if is_grouped(fit):
        if group is None:
            raise ScalebayesError(
                f"a grouped fit needs group=: one of {list(fit.groups)} or {NEW!r} "
                "(CLI: --group NAME)"
            )
        return fit.for_group(group)
    if group is not None:
        raise ScalebayesError(f"group={group!r} given, but the fit is not a grouped fit")
    return fit
