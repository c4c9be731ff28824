"""Where results go: outputs checked before any work, and files written whole or not at all.

Every command that writes (a fit, a figure, the report, the demo's figures, compare's fits)
checks its output path first, so a bad ``--out`` fails in one line before minutes of
sampling, not with a traceback after them. Every file is written to a temporary file in the
same folder and moved over the old one (``os.replace``, atomic on POSIX and Windows) only when
it is complete and no Ctrl-C is pending (:func:`scalebayes.interrupts.check`): an interrupted
or failed write leaves the previous file as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from scalebayes import interrupts
from scalebayes.errors import OutputError, ScalebayesError

FIT_SUFFIXES = (".nc", ".nc4", ".netcdf")  # a saved fit: NetCDF4/HDF5
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")  # a figure: matplotlib picks the format by suffix


def check_file(path: str | os.PathLike[str], *, suffixes: Sequence[str], option: str = "") -> Path:
    """``path`` if a file of one of ``suffixes`` (e.g. ``(".nc",)``) can be written there.

    Raises
    ------
    OutputError
        Naming ``option`` (e.g. ``"--out"``, when given) and the path: wrong suffix, a folder
        that does not exist or cannot be written, or a path that is a folder.
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OutputError(
            f"{_named(option, path)}: expected a file name ending in {_either(suffixes)}"
        )
    if path.is_dir():
        raise OutputError(f"{_named(option, path)}: is a folder; expected a file name")
    _check_writable(path.parent, path, option)
    return path


def check_folder(path: str | os.PathLike[str], *, option: str = "") -> Path:
    """``path`` if files can be written in it, or it can be created (its nearest existing parent is writable)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{_named(option, path)}: exists and is not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    _check_writable(existing, path, option)
    return path


def _check_writable(folder: Path, path: Path, option: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{_named(option, path)}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise OutputError(f"{_named(option, path)}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{_named(option, path)}: folder {folder} is not writable")


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``; written completely, it replaces ``path`` at the block's end.

    The temporary name keeps the suffix (``.fit.1234.tmp.nc``) so that writers choosing a format
    by suffix still work. If the block raises, or a Ctrl-C is pending, ``path`` is untouched and
    the temporary file removed. An ``OSError`` while writing becomes a one-line
    :class:`OutputError`.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        interrupts.check()
        os.replace(tmp, path)
    except OSError as err:
        if isinstance(err, ScalebayesError):
            raise
        reason = err.strerror or str(err)
        raise OutputError(f"{path}: cannot write it ({reason})") from err
    finally:
        tmp.unlink(missing_ok=True)


def _named(option: str, path: Path) -> str:
    return f"{option} {path}" if option else str(path)


def _either(suffixes: Sequence[str]) -> str:
    """``.png, .svg or .pdf``."""
    *first, last = suffixes
    return f"{', '.join(first)} or {last}" if first else last
