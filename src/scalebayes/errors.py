"""Exceptions and warnings raised by scalebayes.

Every error a user can fix derives from :class:`ScalebayesError` and says where the
problem is (file, row, column or field) and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence


class ScalebayesError(Exception):
    """An error the user can fix; the message says where and what was expected."""


def name_rows(rows: Sequence[object], label: str = "line") -> str:
    """Rows as the user sees them, at most ten: ``"lines 2, 4"``, ``"rows 0, 1 and 12 more"``.

    ``label`` is ``"line"`` for files (the file's line numbers: the header is line 1; Parquet
    rows are numbered as if written out with a header) and ``"row"`` for DataFrame index labels.
    """
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    plural = "s" if len(rows) > 1 else ""
    return f"{label}{plural} {shown}{more}"


class RunsFileError(ScalebayesError, ValueError):
    """A table of runs that cannot be used as given.

    Parameters
    ----------
    source : str
        File path, or ``"<DataFrame>"``.
    problem : str
        What is wrong and what was expected.
    column : str, optional
        The column as named in the user's table.
    rows : sequence of int, optional
        Offending rows as the user sees them (file line numbers, the header being line 1, or
        DataFrame index labels).
    """

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        column: str | None = None,
        rows: Sequence[object] | None = None,
        row_label: str = "row",
    ) -> None:
        self.source = source
        self.column = column
        self.rows = list(rows) if rows is not None else None
        where = []
        if self.rows:
            where.append(name_rows(self.rows, row_label))
        if column is not None:
            where.append(f"column {column!r}")
        location = f"{source}: " + "".join(f"{part}: " for part in [", ".join(where)] if where)
        super().__init__(f"{location}{problem}")


class LawError(ScalebayesError, ValueError):
    """A law that cannot be built or used as asked (unknown name, unknown parameter, ...)."""


class LawFileError(LawError):
    """A law file (or law mapping) that does not follow the law schema.

    Parameters
    ----------
    source : str
        Path of the law file, or a description such as ``"<Law 'mylaw'>"``.
    field : str
        The offending field, e.g. ``"formula"`` or ``"params.alpha.prior"``.
    problem : str
        What is wrong and what was expected.
    """

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        super().__init__(f"{source}: field {field!r}: {problem}")


class UnidentifiableError(ScalebayesError, ValueError):
    """Runs that cannot identify the law's parameters: too few runs, or too few distinct inputs."""


class LawEvaluationError(LawError):
    """A law whose value is not finite (overflow, NaN) at the runs for most of its prior draws."""


class OutputError(ScalebayesError, OSError):
    """An output path that cannot be written: missing or read-only folder, wrong file type."""


class PriorError(ScalebayesError, ValueError):
    """A prior string that is not of the form ``Family(name=number, ...)`` with a known family."""


class UnreachableTargetError(ScalebayesError, ValueError):
    """A target loss that (almost) no posterior draw of the law reaches with any N and D."""


class FitFileError(ScalebayesError, OSError):
    """A saved fit that cannot be read: missing, corrupt, foreign or of an unknown schema version."""


class IsoflopError(ScalebayesError, ValueError):
    """Runs that do not form enough isoFLOP sweeps for approach 2 (too few budgets or runs)."""


class EnvelopeError(ScalebayesError, ValueError):
    """Finished runs that give approach 1 too few model sizes with several horizons."""


class ConvergenceWarning(UserWarning):
    """Sampler diagnostics (R-hat, bulk ESS, divergences) say the posterior may be unreliable."""


class AllocationWarning(UserWarning):
    """Some draws' compute-optimal allocation sits at the search bound or did not converge; kept and counted."""


class SweepEdgeWarning(AllocationWarning):
    """An isoFLOP sweep whose loss minimum sits at or beyond the edge of its model sizes."""


class ExtrapolationWarning(UserWarning):
    """A prediction lies beyond where the model's uncertainty is trustworthy."""


class DataWarning(UserWarning):
    """Legal but suspicious input: duplicate runs, values that look like the wrong unit, ..."""


class ImportanceWarning(UserWarning):
    """Importance weights of posterior draws too uneven to trust (``next_runs``): re-fit."""
