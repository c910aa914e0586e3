"""The feature encoder: raw session records in, the model's float32 input matrix out.

One definition serves training and the runtime. Training fits an :class:`Encoder` on training rows
only and stores :meth:`Encoder.to_spec` (plain JSON) in the bundle's manifest; the runtime rebuilds the
same encoder with :meth:`Encoder.from_spec`. Only numpy is needed, and the spec is simple enough for a
Java or C# till to reimplement (the bundle's golden vectors let such a port prove itself):

* ``numeric`` feature, one column: ``x`` must be a number. With ``"transform": "log1p"`` it becomes
  ``log1p(max(x, 0))`` (heavy-tailed counts and durations), with ``"identity"`` it stays ``x``. The
  result is standardised: ``(t - center) / scale``. A missing value is an error in strict mode and is
  replaced by ``fill`` (the training median, before the transform) otherwise.
* ``categorical`` feature, ``len(vocabulary) + 1`` columns, one-hot. The value is first made a
  canonical string (:func:`canonical_category`); one not in the vocabulary lights column
  ``len(vocabulary)``, the out-of-vocabulary bucket. A missing value is an error in strict mode and
  goes to that bucket otherwise.
* ``empty_fraction`` (spec version 2): the share of training rows in which the field was empty. A field
  that was ever empty in training may be empty when scored, strict mode included, and has one more
  column: a numeric field's missing indicator after its value (1 when empty, the value then ``fill``),
  a categorical field's empty bucket after its out-of-vocabulary bucket. A field never empty in
  training (``0``, and every field of a version-1 spec) keeps the rules above.

The runtime encodes one record at a time with a compiled fast path (``_fastencode.c``) where it was
built: it takes only plain dicts of finite floats/ints and categories found as they are, and leaves
every other record, and every error, to the checked Python path, whose results it matches exactly.

Columns follow the order of ``features``; each feature's first column is its ``offset``. Arithmetic is
float64, the result is cast to float32 at the end. A numeric value whose standardised result lies
beyond ``MAX_STANDARD_SCORE`` (a million training standard deviations) is refused as out of range:
such values are typing errors or attacks, and fed on they overflow float32 inside the network and
come out as NaN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from intent_edge.errors import RecordError, SpecError
from intent_edge.runtime.columns import EXACT_INT, distinct_codes, is_missing, iter_values, numeric_column

try:  # the compiled single-record fast path (setup.py); without it the checked path does all the work
    from intent_edge.runtime import _fastencode
except ImportError:
    _fastencode = None

SPEC_VERSION = 2  # 2 added empty_fraction; version 1 specs (no field may be empty) are read as they were
READABLE_SPEC_VERSIONS = (1, 2)
_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")
MAX_STANDARD_SCORE = 1e6
_BLOCK_ROWS = 16384  # rows encode_columns writes at a time (a block stays in cache)
_CHUNK_ROWS = 65536  # rows encode_columns computes at a time
_NUMBER_TYPES = (int, float, np.integer, np.floating)


def canonical_category(value: Any) -> str:
    """The string a categorical value is looked up by, so that ``2``, ``2.0`` and ``"2"`` agree.

    Booleans and the strings true/false (any case) become ``"true"``/``"false"``; integral numbers
    become their decimal integer text; other strings are stripped of surrounding white space.
    """
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise TypeError(f"expected a category, got {number}")
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, str):
        text = value.strip()
        return text.lower() if text.lower() in ("true", "false") else text
    raise TypeError(f"expected a category (text, integer or boolean), got {type(value).__name__}")


def is_empty_category(value: Any) -> bool:
    """None, NaN, or text that is blank once stripped: what a field that may be empty takes as empty
    (a field never empty in training keeps blank text as a category, as version-1 specs did)."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class NumericFeature:
    name: str
    transform: str
    fill: float
    center: float
    scale: float
    empty_fraction: float = 0.0

    @property
    def may_be_empty(self) -> bool:
        return self.empty_fraction > 0

    @property
    def width(self) -> int:
        return 2 if self.may_be_empty else 1  # the value, then its missing indicator

    def to_spec(self) -> dict:
        return {"name": self.name, "kind": "numeric", "transform": self.transform, "fill": self.fill,
                "center": self.center, "scale": self.scale, "empty_fraction": self.empty_fraction}


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    vocabulary: tuple[str, ...]
    empty_fraction: float = 0.0

    @property
    def may_be_empty(self) -> bool:
        return self.empty_fraction > 0

    @property
    def unknown_index(self) -> int:
        """The out-of-vocabulary bucket's column within the feature's block."""
        return len(self.vocabulary)

    @property
    def empty_index(self) -> int:
        """The column an empty value lights: its own bucket where the field may be empty, else the
        out-of-vocabulary one (lenient mode)."""
        return len(self.vocabulary) + 1 if self.may_be_empty else len(self.vocabulary)

    @property
    def width(self) -> int:
        return len(self.vocabulary) + 1 + self.may_be_empty

    def to_spec(self) -> dict:
        return {"name": self.name, "kind": "categorical", "vocabulary": list(self.vocabulary),
                "empty_fraction": self.empty_fraction}


Feature = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class Transform:
    """A numeric transform, in both forms the bundle runs it: ``numpy`` on a float64 array, and ``onnx``
    adding its nodes to a graph builder (:class:`intent_edge.raw_graph.GraphBuilder`: ``node(op, inputs)``
    and ``constant(value)``) for a float64 tensor, returning the result's name. A transform cannot be
    added without its ONNX form, so every bundle's raw-field graph can encode what the runtime encodes."""

    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    onnx: Callable[[Any, str], str]


def _log1p_onnx(graph, x: str) -> str:
    return graph.node("Log", [graph.node("Add", [graph.node("Max", [x, graph.constant(0.0)]), graph.constant(1.0)])])


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("identity", lambda values: values, lambda graph, x: x),
    Transform("log1p", lambda values: np.log1p(np.maximum(values, 0.0)), _log1p_onnx),
)}


def _transform(values: np.ndarray, transform: str) -> np.ndarray:
    return TRANSFORMS[transform].numpy(values)


class Encoder:
    """Encodes raw records to the model input, validating every value on the way."""

    def __init__(self, features: Sequence[Feature]):
        if not features:
            raise SpecError("an encoder needs at least one feature")
        self.features: tuple[Feature, ...] = tuple(features)
        self.offsets: tuple[int, ...] = tuple(np.cumsum([0] + [f.width for f in self.features])[:-1].tolist())
        self.width = int(sum(f.width for f in self.features))
        self.names: tuple[str, ...] = tuple(f.name for f in self.features)
        self._lookups = {f.name: {v: i for i, v in enumerate(f.vocabulary)}
                         for f in self.features if isinstance(f, CategoricalFeature)}
        # The single-record plan: what encode_record walks, flattened so the common value types (float
        # and int numbers, str and int categories) take one dict lookup or one multiply each.
        numeric = [(f, o) for f, o in zip(self.features, self.offsets, strict=True) if isinstance(f, NumericFeature)]
        self._numeric_plan = tuple((f.name, f, f.transform == "log1p", f.center, f.scale,
                                    o + 1 if f.may_be_empty else None) for f, o in numeric)
        offsets = [o for _, o in numeric]
        # Numeric columns usually lead the layout: then one slice assignment writes them all.
        self._numeric_offsets = (slice(0, len(offsets)) if offsets == list(range(len(offsets)))
                                 else np.array(offsets, dtype=np.intp))
        self._categorical_plan = tuple(
            (f.name, f, o, _with_spellings(self._lookups[f.name]),
             {int(v): i for i, v in enumerate(f.vocabulary) if _INTEGER_TEXT.fullmatch(v)})
            for f, o in zip(self.features, self.offsets, strict=True) if isinstance(f, CategoricalFeature))
        # The compiled fast path's plan (None without it), which the native backend joins to its network.
        self.fast_plan = self._make_fast_plan() if _fastencode is not None else None

    def _make_fast_plan(self):
        numeric = tuple((f.name, f.transform == "log1p", f.center, f.scale, o)
                        for f, o in zip(self.features, self.offsets, strict=True) if isinstance(f, NumericFeature))
        categorical = tuple((name, {v: offset + i for v, i in by_text.items()},
                             {v: offset + i for v, i in by_int.items()})
                            for name, _, offset, by_text, by_int in self._categorical_plan)
        try:
            return _fastencode.make_plan(self.width, MAX_STANDARD_SCORE, numeric, categorical)
        except ValueError:  # more fields than the fast path takes: the checked path serves alone
            return None

    @property
    def fast_path(self) -> bool:
        """Whether single records go through the compiled fast path first."""
        return self.fast_plan is not None

    # ---- spec -------------------------------------------------------------------------------
    def to_spec(self) -> dict:
        features = []
        for feature, offset in zip(self.features, self.offsets, strict=True):
            features.append({**feature.to_spec(), "offset": offset, "width": feature.width})
        return {"spec_version": SPEC_VERSION, "width": self.width, "features": features}

    @classmethod
    def from_spec(cls, spec: Mapping) -> Encoder:
        if spec.get("spec_version") not in READABLE_SPEC_VERSIONS:
            raise SpecError(f"encoder spec version {spec.get('spec_version')!r} is not supported "
                             f"(this intent-edge reads versions {', '.join(map(str, READABLE_SPEC_VERSIONS))})")
        features: list[Feature] = []
        for item in spec["features"]:
            empty = float(item.get("empty_fraction", 0.0))
            if not 0.0 <= empty < 1.0:
                raise SpecError(f"feature '{item.get('name')}': empty_fraction must lie in [0, 1), got {empty}")
            if item["kind"] == "numeric":
                if item["transform"] not in TRANSFORMS:
                    raise SpecError(f"feature '{item['name']}': unknown transform {item['transform']!r}")
                features.append(NumericFeature(item["name"], item["transform"], float(item["fill"]),
                                               float(item["center"]), float(item["scale"]), empty))
            elif item["kind"] == "categorical":
                features.append(CategoricalFeature(item["name"], tuple(item["vocabulary"]), empty))
            else:
                raise SpecError(f"feature '{item.get('name')}': unknown kind {item['kind']!r}")
        encoder = cls(features)
        if encoder.width != spec["width"] or list(encoder.offsets) != [f["offset"] for f in spec["features"]]:
            raise SpecError("encoder spec is inconsistent: its widths and offsets do not add up")
        return encoder

    # ---- fitting (training rows only) ----------------------------------------------------------
    @classmethod
    def fit(cls, columns: Mapping[str, Any], kinds: Mapping[str, str], transforms: Mapping[str, str] | None = None,
            *, min_category_count: int = 10) -> Encoder:
        """Fit on training columns. ``kinds`` maps each feature to ``numeric`` or ``categorical`` in order;
        ``transforms`` maps numeric features to ``log1p``, ``identity`` or ``auto`` (the default: log1p
        for a non-negative column whose skewness exceeds 1). Categories seen fewer than
        ``min_category_count`` times share the out-of-vocabulary bucket, so that bucket is trained too."""
        transforms = dict(transforms or {})
        features: list[Feature] = []
        for name, kind in kinds.items():
            if kind == "numeric":
                values = numeric_column(name, columns[name], strict=False, fill=np.nan)
                present = values[~np.isnan(values)]
                if present.size == 0:
                    raise SpecError(f"column '{name}' has no values to fit on")
                transform = transforms.get(name, "auto")
                if transform == "auto":
                    transform = automatic_transform(float(present.min()), _skewness(present))
                fill = float(np.median(present))
                transformed = _transform(np.where(np.isnan(values), fill, values), transform)
                center, scale = float(transformed.mean()), float(transformed.std())
                features.append(NumericFeature(name, transform, fill, center, scale if scale > 0 else 1.0,
                                               (values.size - present.size) / values.size))
            elif kind == "categorical":
                counts: dict[str, int] = {}
                rows = empty = 0
                for value in iter_values(columns[name]):
                    rows += 1
                    if is_empty_category(value):
                        empty += 1
                    else:
                        key = canonical_category(value)
                        counts[key] = counts.get(key, 0) + 1
                features.append(CategoricalFeature(name, kept_vocabulary(counts, min_category_count),
                                                   empty / max(rows, 1)))
            else:
                raise SpecError(f"column '{name}': unknown kind {kind!r}")
        return cls(features)

    # ---- encoding ---------------------------------------------------------------------------
    def encode_columns(self, columns: Mapping[str, Any], *, strict: bool = True) -> np.ndarray:
        """Encode a batch given as columns (a dict of sequences, or a pandas DataFrame)."""
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise RecordError(missing[0], "missing from the input columns"
                              + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
        lengths = {len(columns[n]) for n in self.names}
        if len(lengths) != 1:
            raise RecordError(self.names[0], f"columns have different lengths: {sorted(lengths)}")
        n_rows = lengths.pop()
        if n_rows <= _CHUNK_ROWS:
            return self._encode_chunk(columns, n_rows, strict)
        # Large batches go a chunk of rows at a time: the intermediate arrays of a chunk stay in cache,
        # which made 1 M rows 1.3-2.5x faster (0.30 s against 0.40-0.78 s, benchmarks/batch_encode.py).
        out = np.empty((n_rows, self.width), dtype=np.float32)
        for start in range(0, n_rows, _CHUNK_ROWS):
            stop = min(n_rows, start + _CHUNK_ROWS)
            try:
                out[start:stop] = self._encode_chunk(_row_slice(columns, self.names, start, stop), stop - start,
                                                     strict)
            except RecordError as exc:
                raise RecordError(exc.field, exc.detail, row=None if exc.row is None else start + exc.row) from None
        return out

    def _encode_chunk(self, columns: Mapping[str, Any], n_rows: int, strict: bool) -> np.ndarray:
        numeric, hot = [], []  # every column checked and computed before anything is written
        for feature, offset in zip(self.features, self.offsets, strict=True):
            column = columns[feature.name]
            if isinstance(feature, NumericFeature):
                if feature.may_be_empty:
                    values = numeric_column(feature.name, column, strict=False, fill=np.nan)
                    empty = np.isnan(values)
                    values = np.where(empty, feature.fill, values)
                    numeric.append((offset + 1, empty.astype(np.float32)))
                else:
                    values = numeric_column(feature.name, column, strict=strict, fill=feature.fill)
                scores = (_transform(values, feature.transform) - feature.center) / feature.scale
                outside = np.abs(scores) > MAX_STANDARD_SCORE
                if outside.any():
                    row = int(np.argmax(outside))
                    raise _out_of_range(feature, values[row], row)
                numeric.append((offset, scores.astype(np.float32)))  # float64 rounded once, as encode_record does
            else:
                hot.append(offset + self._category_indices(feature, column, strict=strict))
        # Written in blocks of rows that stay in cache: one pass over a large matrix per column costs
        # about as much again as all the arithmetic (1.8x faster on 1 M rows, benchmarks/batch_encode.py).
        out = np.empty((n_rows, self.width), dtype=np.float32)
        for start in range(0, n_rows, _BLOCK_ROWS):
            stop = min(n_rows, start + _BLOCK_ROWS)
            block = out[start:stop]
            block.fill(0.0)
            for offset, scores in numeric:
                block[:, offset] = scores[start:stop]
            rows = np.arange(stop - start)
            for columns_hot in hot:
                block[rows, columns_hot[start:stop]] = 1.0
        return out

    def encode_records(self, records: Sequence[Mapping[str, Any]], *, strict: bool = True) -> np.ndarray:
        """Encode a batch given as a sequence of dict-like records."""
        out = np.empty((len(records), self.width), dtype=np.float32)
        for row, record in enumerate(records):
            self.encode_record(record, out[row], strict=strict, row=row)
        return out

    def encode_record(self, record: Mapping[str, Any], out: np.ndarray, *, strict: bool = True,
                      row: int | None = None) -> np.ndarray:
        """Encode one record into ``out`` (a float32 row of length ``width``, overwritten) and return it.

        The runtime's hot path: it gives the same float32 values as :meth:`encode_columns` (a property
        test holds it to that) with the same validation, only with less interpreter work per field."""
        if self.fast_plan is not None and _fastencode.encode(self.fast_plan, record, out):
            return out
        return self._encode_record_checked(record, out, strict=strict, row=row)

    def _encode_record_checked(self, record: Mapping[str, Any], out: np.ndarray, *, strict: bool = True,
                               row: int | None = None) -> np.ndarray:
        if not isinstance(record, Mapping):
            raise RecordError("*", f"expected a mapping of field names to values, got {type(record).__name__}",
                              row=row)
        numbers, hot = [], []
        for name, feature, logged, center, scale, indicator in self._numeric_plan:
            try:
                value = record[name]
            except KeyError:
                raise RecordError(name, "missing from the record", row=row) from None
            kind = type(value)
            if kind is float and value - value == 0.0:  # finite (NaN and inf fail this test)
                number = value
            elif kind is int and -EXACT_INT <= value <= EXACT_INT:
                number = float(value)
            elif indicator is not None and is_missing(value):  # a field that may be empty: imputed, flagged
                number = feature.fill
                hot.append(indicator)
            else:
                number = _numeric_value(feature, value, strict, row)
            if logged:
                number = math.log1p(number) if number > 0.0 else 0.0
            score = (number - center) / scale
            if not -MAX_STANDARD_SCORE <= score <= MAX_STANDARD_SCORE:
                raise _out_of_range(feature, value, row)
            numbers.append(score)
        for name, feature, offset, by_text, by_int in self._categorical_plan:
            try:
                value = record[name]
            except KeyError:
                raise RecordError(name, "missing from the record", row=row) from None
            kind = type(value)
            index = by_text.get(value) if kind is str else by_int.get(value) if kind is int else None
            if index is None:
                index = self._category_index(feature, value, strict, row)
            hot.append(offset + index)
        out.fill(0.0)
        out[self._numeric_offsets] = numbers
        for index in hot:
            out[index] = 1.0
        return out

    def _category_index(self, feature: CategoricalFeature, value: Any, strict: bool, row: int | None) -> int:
        if is_missing(value) or (feature.may_be_empty and is_empty_category(value)):
            if strict and not feature.may_be_empty:
                raise RecordError(feature.name, "is empty (None or NaN); expected a category", row=row)
            return feature.empty_index
        try:
            key = canonical_category(value)
        except TypeError as exc:
            raise RecordError(feature.name, str(exc), row=row) from None
        return self._lookups[feature.name].get(key, feature.unknown_index)

    def _category_indices(self, feature: CategoricalFeature, column: Any, strict: bool) -> np.ndarray:
        """Each value's column within the feature's one-hot block. The canonical-text rules run once per
        distinct value: the column is first reduced to codes into its distinct values (see
        :func:`distinct_codes`), and a missing value (code -1) is an error or the out-of-vocabulary bucket."""
        codes, uniques = distinct_codes(column)
        table = np.empty(len(uniques) + 1, dtype=np.int64)
        errors = []  # (first row, error): the earliest bad row is reported, as the per-record path would
        for code, value in enumerate(uniques):
            try:
                table[code] = self._category_index(feature, value, strict, None)
            except RecordError as exc:
                errors.append((int(np.argmax(codes == code)), exc.detail))
        table[-1] = feature.empty_index  # code -1: missing
        if strict and not feature.may_be_empty and len(codes) and codes.min() < 0:
            errors.append((int(np.argmax(codes < 0)), "is empty (None or NaN); expected a category"))
        if errors:
            row, detail = min(errors, key=lambda error: error[0])
            raise RecordError(feature.name, detail, row=row)
        return table[codes]


def _with_spellings(lookup: dict[str, int]) -> dict[str, int]:
    """``lookup`` plus the common spellings that :func:`canonical_category` folds onto its true/false
    entries ("TRUE", "False", ...), so that they take the direct lookup."""
    spelled = dict(lookup)
    for canonical in ("true", "false"):
        if canonical in lookup:
            for spelling in (canonical.upper(), canonical.capitalize()):
                spelled[spelling] = lookup[canonical]
    return spelled


def _out_of_range(feature: NumericFeature, value: Any, row: int | None) -> RecordError:
    return RecordError(feature.name, f"{value!r} is out of range: more than {MAX_STANDARD_SCORE:g} training "
                                     f"standard deviations from the training mean", row=row)


def _numeric_value(feature: NumericFeature, value: Any, strict: bool, row: int | None) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMBER_TYPES):
        if value is None and not strict:
            return feature.fill
        shown = "None" if value is None else f"{type(value).__name__} {value!r}"
        raise RecordError(feature.name, f"expected a number, got {shown}", row=row)
    try:
        number = float(value)
    except OverflowError:
        raise RecordError(feature.name, "is too large for a float64", row=row) from None
    if math.isnan(number):
        if strict:
            raise RecordError(feature.name, "is NaN; expected a number", row=row)
        return feature.fill
    if math.isinf(number):
        raise RecordError(feature.name, f"is {number}; expected a finite number", row=row)
    return number


def automatic_transform(minimum: float, skewness: float) -> str:
    """The ``auto`` transform of a numeric column: log1p for a non-negative one skewed beyond 1."""
    return "log1p" if minimum >= 0 and skewness > 1.0 else "identity"


def kept_vocabulary(counts: Mapping[str, int], min_count: int) -> tuple[str, ...]:
    """The categories seen at least ``min_count`` times, most frequent first (ties by text)."""
    return tuple(sorted((v for v, c in counts.items() if c >= min_count), key=lambda v: (-counts[v], v)))


def _skewness(values: np.ndarray) -> float:
    std = values.std()
    return 0.0 if std == 0 else float(np.mean(((values - values.mean()) / std) ** 3))


def _row_slice(columns: Mapping[str, Any], names: Sequence[str], start: int, stop: int) -> Mapping[str, Any]:
    """Rows ``start:stop`` of a DataFrame or a dict of columns (Series, arrays or sequences)."""
    if hasattr(columns, "iloc"):
        return columns.iloc[start:stop]
    return {name: columns[name].iloc[start:stop] if hasattr(columns[name], "iloc") else columns[name][start:stop]
            for name in names}
