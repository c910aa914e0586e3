"""Column helpers for the batch encoder (numpy only): columns as arrays, numeric columns checked as
float64, categorical columns reduced to codes into their distinct values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from intent_edge.errors import RecordError

EXACT_INT = 2**53  # integers up to this convert to float exactly; larger ones take the checked path


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def as_array(column: Any) -> np.ndarray:
    if hasattr(column, "to_numpy"):
        values = column.to_numpy()
    elif isinstance(column, np.ndarray):
        values = column
    else:
        # A plain sequence keeps each value's own type: np.asarray would turn [0, True] into [0, 1]
        # and [1, "x"] into text, hiding the very values that validation must see.
        values = np.empty(len(column), dtype=object)
        values[:] = list(column)
    if values.ndim != 1:
        values = values.reshape(-1)
    return values


_SMALL_RANGE = 1 << 20


def distinct_codes(column: Any) -> tuple[np.ndarray, list]:
    """``(codes, uniques)``: for each value, its position among the column's distinct values (-1 for a
    missing one), without a Python call per value where the column's type allows: integer and boolean
    arrays through a lookup table or np.unique, pandas columns of one kind through pandas' hash
    factorisation. Values of mixed types (``True`` beside ``1``, which compare equal but are different
    categories) are told apart by type."""
    if getattr(getattr(column, "dtype", None), "name", "") == "category":  # pandas categorical: codes ready
        return column.cat.codes.to_numpy().astype(np.int64), list(column.cat.categories)
    if hasattr(column, "factorize") and getattr(column, "dtype", np.dtype(object)).kind not in "iub":
        from pandas.api.types import infer_dtype

        if infer_dtype(column, skipna=True) in ("string", "boolean", "integer", "floating", "empty"):
            codes, uniques = column.factorize()
            return np.asarray(codes, dtype=np.int64), list(uniques)
    values = as_array(column)
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low < _SMALL_RANGE:
            shifted = values.astype(np.int64) - low
            present = np.flatnonzero(np.bincount(shifted, minlength=high - low + 1))
            lookup = np.full(high - low + 1, -1, dtype=np.int64)
            lookup[present] = np.arange(len(present))
            return lookup[shifted], [int(v) + low for v in present]
    if values.dtype.kind in "iub":
        uniques, inverse = np.unique(values, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64), [u.item() for u in uniques]
    seen: dict = {}
    codes = np.empty(len(values), dtype=np.int64)
    uniques = []
    for row, value in enumerate(values.tolist()):
        if is_missing(value):
            codes[row] = -1
            continue
        try:
            key = (type(value), value)
            code = seen.get(key)
        except TypeError:  # unhashable: its own entry, refused when its category is looked up
            code, key = None, None
        if code is None:
            code = len(uniques)
            uniques.append(value)
            if key is not None:
                seen[key] = code
        codes[row] = code
    return codes, uniques


def iter_values(column: Any):
    return iter(as_array(column).tolist())


def numeric_column(name: str, column: Any, *, strict: bool, fill: float) -> np.ndarray:
    values = as_array(column)
    plain = values.dtype == object and {type(v) for v in values.tolist()} <= {float} | (
        {int} if all(abs(v) <= EXACT_INT for v in values.tolist() if type(v) is int) else set())
    if values.dtype.kind in "iuf" or plain:
        numbers = values.astype(np.float64)
    else:
        numbers = np.empty(len(values), dtype=np.float64)
        for row, value in enumerate(values.tolist()):
            if value is None:
                numbers[row] = np.nan
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RecordError(name, f"expected a number, got {type(value).__name__} {value!r}", row=row)
            else:
                try:
                    numbers[row] = float(value)
                except OverflowError:
                    raise RecordError(name, "is too large for a float64", row=row) from None
    bad = np.isinf(numbers)
    if bad.any():
        row = int(np.argmax(bad))
        raise RecordError(name, f"is {numbers[row]}; expected a finite number", row=row)
    nan = np.isnan(numbers)
    if nan.any():
        if strict:
            raise RecordError(name, "is empty (None or NaN); expected a number", row=int(np.argmax(nan)))
        numbers = np.where(nan, fill, numbers)
    return numbers
