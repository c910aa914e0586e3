"""Why a shopper got their score: interventional Shapley values computed on the compiled model.

The value of a coalition S of fields is the model's mean output, over a background set, on rows whose S
fields come from the record and the other fields from the background row (the definition shap's Exact
and Permutation explainers use with an Independent masker). A field is one player: a categorical
field's one-hot columns move together. Everything happens on encoded rows: the record and the background
are encoded once, coalition rows are made by swapping whole column blocks, and they are scored in
fixed-size batches through the variant's own runner (so every backend explains what it serves).

Two estimators:

* exact enumeration of all 2^n coalitions when a bundle has at most ``EXACT_MAX_FIELDS`` fields;
* beyond that, antithetic permutation sampling: each sampled order of the fields is walked forwards
  and backwards, adding one field at a time; each walk's steps add up to ``f(x) - base`` exactly, so
  efficiency holds for any number of samples, and the reversed walk cancels much of the first one's
  order effect (the variance that remains comes from interactions between fields).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from intent_edge.errors import UsageError
from intent_edge.runtime.encoder import Encoder

EXACT_MAX_FIELDS = 10  # 2^10 coalitions x 30 background rows = 31k rows; 17 fields would be 3.9M
DEFAULT_PERMUTATIONS = 8  # 4 antithetic pairs: within 0.005 of exact on UCI records (tests/test_explain.py)
MAX_BACKGROUND_ROWS = 1000
BATCH_ROWS = 8192  # coalition rows scored per call, always this many (the last batch padded) so that
# a backend that plans memory per batch shape (LiteRT) plans it once


@dataclass(frozen=True)
class Explanation:
    """``base + sum(contributions.values()) == probability`` (to float rounding)."""

    probability: float
    base: float
    contributions: dict[str, float]
    method: str
    variant: str = ""  # the bundle variant whose model computed it

    def top(self, count: int | None) -> dict[str, float]:
        """The ``count`` largest contributions by magnitude (all of them for None), largest first."""
        ranked = sorted(self.contributions.items(), key=lambda item: -abs(item[1]))
        return dict(ranked if count is None else ranked[:count])

    def to_json(self, top: int | None = None) -> dict:
        return {"base": self.base, "contributions": self.top(top), "method": self.method, "variant": self.variant}


class ShapleyExplainer:
    """Shapley values of one encoder's fields for a model given as ``infer(rows) -> probabilities``."""

    def __init__(self, encoder: Encoder, infer: Callable[[np.ndarray], np.ndarray], *, batch_rows: int = BATCH_ROWS,
                 variant: str = ""):
        self.encoder, self.infer, self.batch_rows, self.variant = encoder, infer, batch_rows, variant
        self.fields = encoder.names
        self._blocks = [(offset, offset + feature.width)  # each field's encoded columns
                        for feature, offset in zip(encoder.features, encoder.offsets, strict=True)]
        self._bases: dict[bytes, float] = {}  # base per background, keyed by its bytes (tiny; a few entries)

    def explain(self, rows: np.ndarray, background: np.ndarray, weights: np.ndarray, *,
                samples: int | None = None, seed: int = 0) -> list[Explanation]:
        """Explanations for encoded ``rows`` against the encoded ``background`` (weights sum to one)."""
        weights = np.asarray(weights, dtype=np.float64)
        key = background.tobytes() + weights.tobytes()
        base = self._bases.get(key)
        if base is None:
            if len(self._bases) >= 8:
                self._bases.clear()
            base = self._bases[key] = float(self._score(background) @ weights)
        n = len(self.fields)
        if n <= EXACT_MAX_FIELDS and samples is None:
            masks = _all_coalitions(n)
            method = f"exact ({len(masks)} coalitions)"
        else:
            permutations = samples or DEFAULT_PERMUTATIONS
            if permutations < 2 or permutations % 2:
                raise UsageError(f"samples must be an even number of permutations (antithetic pairs), got {samples}")
            orders = _antithetic_orders(n, permutations, seed)
            masks = _prefix_coalitions(orders)
            method = f"antithetic permutations ({permutations})"
        explanations = []
        for row in rows:
            values, probability = self._coalition_values(row, masks, background, weights)
            if method.startswith("exact"):
                contributions = _exact_shapley(values, n)
            else:
                contributions = _permutation_shapley(values, orders, base, probability)
            explanations.append(Explanation(probability, base, dict(zip(self.fields, contributions.tolist(),
                                                                        strict=True)), method, self.variant))
        return explanations

    def _coalition_values(self, row: np.ndarray, masks: np.ndarray, background: np.ndarray,
                          weights: np.ndarray) -> tuple[np.ndarray, float]:
        """v(S) for each coalition mask (fields in S from ``row``, the rest from each background row),
        and the row's own probability, scored in the same call."""
        rows = np.empty((len(masks) * len(background) + 1, self.encoder.width), dtype=np.float32)
        coalitions = rows[:-1].reshape(len(masks), len(background), -1)
        coalitions[:] = background  # every field from the background, then each field's block from the row
        for field, (start, stop) in enumerate(self._blocks):  # where the coalition holds it
            coalitions[masks[:, field], :, start:stop] = row[start:stop]
        rows[-1] = row
        scores = self._score(rows)
        values = scores[:-1].reshape(len(masks), len(background)).astype(np.float64) @ weights
        return values, float(scores[-1])

    def _score(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        out = np.empty(len(rows), dtype=np.float32)
        batch = self.batch_rows
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            if len(chunk) < batch and len(rows) > batch:  # the last of several: padded to the fixed shape
                padded = np.zeros((batch, rows.shape[1]), dtype=np.float32)
                padded[:len(chunk)] = chunk
                out[start:start + len(chunk)] = self.infer(padded)[:len(chunk)]
            else:
                out[start:start + len(chunk)] = self.infer(chunk)
        return out


def _all_coalitions(n: int) -> np.ndarray:
    """Every subset of n fields as a boolean mask, row s holding the bits of the integer s."""
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)


def _exact_shapley(values: np.ndarray, n: int) -> np.ndarray:
    from math import factorial

    subsets = np.arange(2 ** n)
    sizes = np.array([bin(s).count("1") for s in subsets])
    weight = np.array([factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)])
    contributions = np.empty(n)
    for field in range(n):
        without = subsets[(subsets >> field) & 1 == 0]
        contributions[field] = float(weight[sizes[without]] @ (values[without | (1 << field)] - values[without]))
    return contributions


def _antithetic_orders(n: int, permutations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    forward = np.array([rng.permutation(n) for _ in range(permutations // 2)])
    return np.concatenate([forward, forward[:, ::-1]])


def _prefix_coalitions(orders: np.ndarray) -> np.ndarray:
    """For each order, the coalitions of its first 1 .. n-1 fields (the empty and the full coalition are
    the base and the record's own score, the same for every order)."""
    count, n = orders.shape
    masks = np.zeros((count, n - 1, n), dtype=bool)
    inclusion = np.zeros((count, n), dtype=bool)
    for size in range(1, n):
        inclusion[np.arange(count), orders[:, size - 1]] = True
        masks[:, size - 1, :] = inclusion
    return masks.reshape(-1, n)


def _permutation_shapley(values: np.ndarray, orders: np.ndarray, base: float, probability: float) -> np.ndarray:
    count, n = orders.shape
    walk = np.empty((count, n + 1))
    walk[:, 0], walk[:, n] = base, probability
    walk[:, 1:n] = values.reshape(count, n - 1)
    steps = np.diff(walk, axis=1)  # steps[p, k]: what adding field orders[p, k] changed
    contributions = np.zeros(n)
    np.add.at(contributions, orders.reshape(-1), steps.reshape(-1))
    return contributions / count


def check_background(rows: np.ndarray, weights: Sequence[float] | np.ndarray | None = None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Encoded background rows and weights summing to one; refuses an empty or oversized set."""
    if len(rows) == 0:
        raise UsageError("background: no rows; give at least one record to explain against")
    if len(rows) > MAX_BACKGROUND_ROWS:
        raise UsageError(f"background: {len(rows)} rows is over the limit of {MAX_BACKGROUND_ROWS} (each explained "
                         "record costs coalitions x background rows of inference); summarise it, e.g. with k-means")
    weights = np.full(len(rows), 1.0 / len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(rows),) or not np.all(weights >= 0) or weights.sum() <= 0:
        raise UsageError("background: weights must be one non-negative number per row, not all zero")
    return np.ascontiguousarray(rows, dtype=np.float32), weights / weights.sum()
