"""Ctrl-C that is never lost: the command line records SIGINT, the library raises it at safe points.

Python turns SIGINT into a ``KeyboardInterrupt`` in whatever Python code the main thread runs
next. When that code is a callback whose exceptions are only printed (JAX's garbage-collection
hook: ``Exception ignored in: _xla_gc_callback``), the interrupt is lost and the command goes
on, e.g. to replace the very file the user pressed Ctrl-C to keep. Inside :func:`recorded`
each SIGINT is also remembered, and :func:`check` raises it again: the sampler calls it between
chunks and :mod:`scalebayes.outputs` just before a finished file replaces the old one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_pending = threading.Event()


@contextlib.contextmanager
def recorded() -> Iterator[None]:
    """Inside the block, SIGINT raises ``KeyboardInterrupt`` as usual and is remembered for :func:`check`.

    Only the main thread can install a signal handler; elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: FrameType | None) -> None:
        _pending.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    except Exception as err:
        # The interrupt surfaced as another error: JAX raises a ValueError when one lands inside
        # its cache-key comparison. It is still the user's Ctrl-C.
        if _pending.is_set():
            raise KeyboardInterrupt from err
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending.clear()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT arrived inside :func:`recorded`, even one swallowed since."""
    if _pending.is_set():
        raise KeyboardInterrupt
