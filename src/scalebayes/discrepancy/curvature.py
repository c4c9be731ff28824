"""The curvature discrepancy: a quadratic in the centred log inputs, fitted with the law."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, override

from scalebayes.discrepancy.base import Discrepancy, Sites
from scalebayes.laws import Law
from scalebayes.priors import Prior

_STANDARD = "Normal(loc=0, scale=1)"


@dataclass(frozen=True)
class Curvature(Discrepancy):
    """``sum_{i<=j} c_ij (log x_i - ref_i)(log x_j - ref_j)`` added to the law's log mean.

    ``ref`` is the mean log input of the fitted runs and ``c_ij = curvature * z_ij`` with
    ``z_ij ~ Normal(0, 1)`` (non-centred). It stands for the curvature in log-log space that the
    law lacks: the data pin it down where they are, and its uncertainty grows with the square
    of the distance beyond them. It is sampled with the law and kept in decisions.
    """

    # HalfNormal(0.01): a coefficient of 0.01 bends log loss by 5 % one decade (2.3 ln units)
    # from the centre of the data, more than published ladders show; 0.001 bends it by 0.5 %.
    scale_prior: str = "HalfNormal(scale=0.01)"

    name = "curvature"
    summary = "a fitted quadratic in the log inputs: uncertainty grows with distance squared"
    prior_fields: ClassVar[Mapping[str, str]] = {"curvature": "scale_prior"}

    def __post_init__(self) -> None:
        Prior.parse(self.scale_prior)

    def coefficient_names(self, law: Law) -> tuple[str, ...]:
        """``curvature_X_Y`` for inputs X <= Y of the law."""
        inputs = law.inputs
        return tuple(f"curvature_{a}_{b}" for i, a in enumerate(inputs) for b in inputs[i:])

    @override
    def param_names(self, law: Law, noise: Sequence[str]) -> tuple[str, ...]:
        return ("curvature", *self.coefficient_names(law))

    @override
    def param_docs(self, law: Law) -> dict[str, str]:
        docs = {"curvature": "curvature discrepancy: scale of its quadratic coefficients"}
        for name in self.coefficient_names(law):
            _, a, b = name.split("_")
            docs[name] = f"curvature in log {a} x log {b} (log loss per ln-unit squared)"
        return docs

    @override
    def sites(self, law: Law) -> Sites:
        sites: Sites = {"curvature": (Prior.parse(self.scale_prior), ())}
        for name in self.coefficient_names(law):
            sites[f"_{name}_raw"] = (Prior.parse(_STANDARD), ())
        return sites

    @override
    def sample(self, law: Law, values: dict[str, Any]) -> None:
        import numpyro
        import numpyro.distributions as dist

        scale = numpyro.sample("curvature", Prior.parse(self.scale_prior).to_numpyro())
        for name in self.coefficient_names(law):
            raw = numpyro.sample(f"_{name}_raw", dist.Normal(0.0, 1.0))
            values[name] = numpyro.deterministic(name, scale * raw)

    @override
    def term(
        self,
        law: Law,
        params: Mapping[str, Any],
        log_inputs: Mapping[str, Any],
        ref: Mapping[str, Any],
    ) -> Any:
        total: Any = 0.0
        for name in self.coefficient_names(law):
            _, a, b = name.split("_")
            total = total + params[name] * (log_inputs[a] - ref[a]) * (log_inputs[b] - ref[b])
        return total
