"""Parity: does a converted graph predict what its source predicts? One tolerance type, one comparison.

Every export and conversion is checked with :func:`compare` (training's ONNX export, each compressed
variant, the clickstream steps): the absolute differences in probability between the reference (the
Keras source) and the candidate, summarised as max, p99 and mean, judged against a :class:`Tolerance`.
The figures go into the manifest as :meth:`ParityResult.to_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from intent_edge.errors import IntentEdgeError

#: Raw held-out records a session model's export or variant is checked on.
PARITY_ROWS = 2000


class ParityError(IntentEdgeError):
    """An exported model does not predict like the model it came from."""


@dataclass(frozen=True)
class Tolerance:
    """The largest p99 and max |difference in probability| a candidate may show."""

    p99: float
    max: float


#: Per precision. fp32 must match to rounding. fp16 keeps 11 significant bits (relative error ~5e-4 per
#: operation), so a few thousandths cover three layers. int8 has 256 levels per tensor: p99 0.02 keeps
#: decisions stable for nearly every shopper, while a rare record at the edge of a calibrated range may
#: move further, which the max allows.
TOLERANCES = {
    "fp32": Tolerance(p99=1e-5, max=1e-5),
    "fp16": Tolerance(p99=2e-3, max=1e-2),
    "int8": Tolerance(p99=2e-2, max=0.15),
}


@dataclass(frozen=True)
class ParityResult:
    reference: str
    rows: int
    max_abs_diff: float
    p99_abs_diff: float
    mean_abs_diff: float
    tolerance: Tolerance
    passed: bool

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (f"p99 |dp| {self.p99_abs_diff:.2g}, max {self.max_abs_diff:.2g} over {self.rows} rows "
                f"(tolerance p99 {self.tolerance.p99:g}, max {self.tolerance.max:g})")

    def require(self, what: str) -> ParityResult:
        """This result, or a ParityError naming ``what`` if it failed."""
        if not self.passed:
            raise ParityError(f"{what} differs from its {self.reference}: {self.describe()}")
        return self


def compare(reference, candidate, tolerance: Tolerance | str, *, reference_name: str = "keras source"
            ) -> ParityResult:
    """Parity figures of ``candidate`` against ``reference`` probabilities (any shapes of equal size);
    ``tolerance`` is a :class:`Tolerance` or a precision name from :data:`TOLERANCES`."""
    if isinstance(tolerance, str):
        tolerance = TOLERANCES[tolerance]
    difference = np.abs(np.asarray(candidate, np.float64).reshape(-1) - np.asarray(reference, np.float64).reshape(-1))
    if difference.size == 0:
        raise ParityError("parity needs at least one row to compare")
    p99, largest = float(np.percentile(difference, 99)), float(difference.max())
    return ParityResult(reference=reference_name, rows=int(difference.size), max_abs_diff=largest, p99_abs_diff=p99,
                        mean_abs_diff=float(difference.mean()), tolerance=tolerance,
                        passed=bool(p99 <= tolerance.p99 and largest <= tolerance.max))
