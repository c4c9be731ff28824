"""The Jacobian of a formula's log value in its parameters, in NumPy (:mod:`scalebayes.jets`).

:func:`log_jacobian` gives what ``jax.jacfwd`` of :func:`scalebayes.formula.log_evaluate` gives,
to rounding, without tracing and compiling a JAX program: the GP discrepancy's basis needs the
law's tangent at every point it predicts at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scalebayes import jets
from scalebayes.formula import Expr, log_evaluate


def log_jacobian(
    expr: Expr,
    params: Mapping[str, Any],
    log_inputs: Mapping[str, Any],
    wrt: Sequence[str],
) -> np.ndarray:
    """The Jacobian d log(expr) / d params[wrt]: shape of the broadcast inputs + (len(wrt),).

    ``params`` are plain-scale values, ``log_inputs`` the natural logs of the inputs, as for
    :func:`~scalebayes.formula.log_evaluate`; one forward pass per parameter in ``wrt``.
    """
    shape = np.broadcast_shapes(*(np.shape(v) for v in (*params.values(), *log_inputs.values())))
    columns = []
    for name in wrt:
        moved = {**params, name: jets.seed(params[name])}
        columns.append(np.broadcast_to(log_evaluate(expr, moved, log_inputs, xp=jets).d1, shape))
    return np.stack(columns, axis=-1)
