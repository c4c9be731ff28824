"""The search behind :func:`scalebayes.optimal`: per draw and budget, the log N of least loss, in NumPy.

At budget ``C`` the loss is a function of ``x = log N`` alone (``log D = log C - log k - x``).
Every draw and budget is searched at once: golden section over the bracket, then Newton steps
on the derivatives of the log mean (:mod:`scalebayes.jets`), and the allocation exponent
``d log N* / d log C = -f_xc / f_xx`` from the implicit-function theorem. A one-off search: as a
JAX program it spent a second or more compiling for milliseconds of arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scalebayes import jets
from scalebayes.golden import golden_section

# Golden section shrinks the bracket (width 11.5 in log N) to 4e-5, then Newton converges
# quadratically (4e-5 -> ~1e-9 -> ~1e-16; the third step measures convergence).
GOLDEN_STEPS = 26
NEWTON_STEPS = 3


def solve(
    law: Any,
    likelihood: Any,
    theta: tuple[Mapping[str, Any], Mapping[str, Any]],
    log_c: np.ndarray,
    log_k: float,
    log_r_low: float,
    log_r_high: float,
    fixed: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, ...]:
    """Minimise the model's log loss over log N for draws x budgets.

    ``theta`` is ``(params, log_ref)``, parameter draws of shape (draws, 1); ``log_c`` the log
    budgets, shape (1, budgets); the bracket on tokens per parameter is
    ``[exp(log_r_low), exp(log_r_high)]``; ``fixed`` the logs of inputs that the budget does not
    buy (``{"U": log unique tokens}``). Returns ``x`` (log N*), the log loss there, the last
    Newton step, the exponent ``d log N* / d log C`` and whether ``x`` sits at the bracket's edge,
    each of shape (draws, budgets).
    """
    params, log_ref = theta

    def f(x: Any, c: Any, xp: Any = jets) -> Any:
        inputs = budget_inputs(law, x, c, log_k, fixed)
        return likelihood.numpy_log_mean(law, params, inputs, log_ref, xp=xp)

    shape = np.broadcast_shapes(np.shape(log_c), *(np.shape(v) for v in params.values()))
    c = np.broadcast_to(log_c, shape)
    # N = sqrt(C / (k r)) for tokens per parameter r: the bracket on r is one on log N.
    lo = 0.5 * (c - log_k - log_r_high)
    hi = 0.5 * (c - log_k - log_r_low)

    x = golden_section(lambda x: f(x, c, np), lo, hi, GOLDEN_STEPS)
    step = np.full(shape, np.inf)
    for _ in range(NEWTON_STEPS):
        along_x = f(jets.seed(x), c)
        with np.errstate(divide="ignore", invalid="ignore"):  # d2 = 0: no step (np.where)
            newton = np.where(along_x.d2 > 0, -along_x.d1 / along_x.d2, 0.0)
        new = np.clip(x + newton, lo, hi)
        # A step that raises the loss is refused: at a kink of the law (min(), as in the
        # data-constrained law's, whose optimum sits on one) Newton overshoots from either
        # side, and the golden section's x (log N to 4e-5) is the answer.
        new = np.where(f(new, c, np) <= f(x, c, np), new, x)
        x, step = new, new - x
    f_xx = f(jets.seed(x), c).d2
    f_cc = f(x, jets.seed(c)).d2
    # The mixed derivative from the second derivative along x + c (jets carry one direction).
    f_xc = 0.5 * (f(jets.seed(x), jets.seed(c)).d2 - f_xx - f_cc)
    edge = 1e-6 * (hi - lo)
    at_bound = (x - lo < edge) | (hi - x < edge)
    # Where the loss is flat in N (a law of repeated data past what its unique tokens can
    # buy: the optimum is then any N) the exponent is undefined: NaN, without a warning.
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.where(f_xx > 0, -f_xc / f_xx, np.nan)
    return x, f(x, c, np), step, exponent, at_bound


def budget_inputs(
    law: Any, log_n: Any, log_c: Any, log_k: Any, fixed: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The law's log inputs for models of log size ``log_n`` spending log budget ``log_c``.

    The rest of the budget buys tokens: ``log D = log C - log k - log N``; ``fixed`` inputs
    (log unique tokens ``U``) stay as given; arrays (or jets) broadcast.
    """
    log_inputs = {"N": log_n, "D": log_c - log_k - log_n}
    if "C" in law.inputs:
        log_inputs["C"] = log_c + 0.0 * log_n
    for name, value in (fixed or {}).items():
        log_inputs[name] = value + 0.0 * log_n
    return log_inputs
