"""JAX set-up in one explicit place: floating-point precision, CPU devices, the compile cache.

The library changes no process-wide JAX setting on its own. Precision is a setting of each fit
(:class:`scalebayes.Settings`), applied as a context around the fit and every computation on it
(:func:`precision`), so a user's own JAX code keeps its defaults. Devices and the on-disk
compile cache are process-wide by nature: :func:`configure` sets them, once, when called — the
CLI calls it; a Python user may (``sb.configure()``), and gets JAX's defaults otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PRECISIONS = ("float64", "float32")
DEFAULT_PRECISION = "float64"
# Programs that compile faster than this are not written to the on-disk cache: reading a
# program back costs a file read and a deserialisation, so caching the smallest gains nothing.
# A fit's sampler programs take seconds to compile and its helpers (reference, basis,
# log-likelihood) tenths of a second, all above it (benchmarks/fit_chinchilla.py measures
# cold and warm fits).
MIN_CACHED_COMPILE_SECONDS = 0.05


def default_cache_dir() -> Path:
    """``$SCALEBAYES_COMPILE_CACHE`` if it names a folder, else ``$XDG_CACHE_HOME/scalebayes/jax``."""
    named = os.environ.get("SCALEBAYES_COMPILE_CACHE", "")
    if named not in ("", "0", "1"):
        return Path(named)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scalebayes" / "jax"


def compile_cache_enabled() -> bool:
    """False when ``SCALEBAYES_COMPILE_CACHE=0``."""
    return os.environ.get("SCALEBAYES_COMPILE_CACHE", "1") != "0"


def configure(
    *,
    devices: int | None = None,
    compile_cache: str | os.PathLike[str] | bool | None = True,
    min_compile_seconds: float = MIN_CACHED_COMPILE_SECONDS,
) -> dict[str, object]:
    """Set JAX's process-wide options for scalebayes; call once, before the first fit.

    Parameters
    ----------
    devices : int, optional
        CPU devices to expose; chains are spread over devices, one thread each. Default: at
        least 8 (measured on 2 cores with 4 chains: one chain per device compiles 1.5 s faster
        and samples 15 % faster than vmapped chains). Left alone when ``XLA_FLAGS`` already sets
        ``xla_force_host_platform_device_count``, or once JAX has started.
    compile_cache : True, False/None, or a folder
        Keep compiled programs on disk so that a second process reuses them: True uses
        :func:`default_cache_dir` (unless ``SCALEBAYES_COMPILE_CACHE=0``), a path uses that
        folder, False or None turns it off. Left alone if the user's JAX already has a cache.
    min_compile_seconds : float
        Programs that compile faster than this are not cached.

    Returns
    -------
    dict
        What is in effect: ``devices`` (as JAX sees them, once started) and ``compile_cache``.
    """
    import jax

    forced = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if jax.config.jax_num_cpu_devices == -1 and not forced:
        with contextlib.suppress(RuntimeError):  # JAX is already running: keep its devices
            jax.config.update("jax_num_cpu_devices", devices or max(os.cpu_count() or 1, 8))
    if compile_cache is True:
        compile_cache = default_cache_dir() if compile_cache_enabled() else None
    if compile_cache and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(compile_cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return {
        "cpu_devices": jax.config.jax_num_cpu_devices,
        "compile_cache": jax.config.jax_compilation_cache_dir or None,
    }


def check_precision(name: str) -> str:
    """Return ``name`` if it is a known precision, else raise ``ScalebayesError``."""
    from scalebayes.errors import ScalebayesError

    if name not in PRECISIONS:
        raise ScalebayesError(f"precision={name!r}: expected one of {', '.join(PRECISIONS)}")
    return name


@contextlib.contextmanager
def precision(name: str = DEFAULT_PRECISION) -> Iterator[None]:
    """JAX computes in ``name`` ("float64" or "float32") inside this block, and as before after it."""
    import jax

    with jax.enable_x64(check_precision(name) == "float64"):
        yield


def in_fit_precision[F: Callable[..., Any]](fn: F) -> F:
    """Run ``fn(fit, ...)`` in the precision ``fit`` was sampled in (``fit.settings.precision``)."""

    @functools.wraps(fn)
    def wrapper(fit: Any, *args: Any, **kwargs: Any) -> Any:
        with precision(getattr(getattr(fit, "settings", None), "precision", DEFAULT_PRECISION)):
            return fn(fit, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def compiled(fn: Any, *static: Any) -> Any:
    """``fn`` with its leading hashable arguments fixed, compiled as one program.

    Run eagerly, each array operation compiles on its own the first time it meets a shape:
    the GP's reference took ~2 s of tiny compiles on a cold cache, one program ~0.3 s.
    """
    import jax

    return jax.jit(functools.partial(fn, *static))


def padded_size(n: int, minimum: int) -> int:
    """The array length ``n`` rounds up to: the next power of two, at least ``minimum``.

    Each new input shape compiles a program again; padding to a few sizes lets every figure and
    command of a process share them.
    """
    return max(minimum, 1 << (n - 1).bit_length())
