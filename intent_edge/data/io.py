"""Reading session tables (CSV with any delimiter, Parquet) and checking them before training.

Rows are numbered from 1 for the first data row; for CSV the message also gives the line in the file
(the header is line 1).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge.data.schema import (
    FEATURE_KINDS,
    KINDS,
    UCI_SCHEMA,
    Schema,
    infer_role,
    is_uci_layout,
    load_schema_file,
)
from intent_edge.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
# What a damaged file makes the readers raise. A flipped byte in a Parquet file's pandas metadata (say
# "int64" -> "hnt64") surfaces as a TypeError from pandas, others as Arrow's own errors, which subclass
# ValueError, OSError, TypeError, KeyError, IndexError or NotImplementedError (found by the fuzz test).
_READ_ERRORS = (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, TypeError, KeyError, IndexError,
                NotImplementedError)
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
_DELIMITERS = ",;\t|"
_TRUE = {"true", "yes", "y", "t", "1", "1.0"}
_FALSE = {"false", "no", "n", "f", "0", "0.0"}


def line_of(path: str | Path, row_index: int) -> int | None:
    """The line in a CSV file of the data row at 0-based ``row_index`` (None for other formats)."""
    return None if str(path).lower().endswith(PARQUET_SUFFIXES + JSON_LINES_SUFFIXES) else row_index + 2


def sniff_delimiter(path: str | Path) -> str:
    """The delimiter of a CSV file, guessed from its first 64 KiB among , ; tab and |."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        sample = handle.read(65536)
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        return max(_DELIMITERS, key=first.count) if any(d in first for d in _DELIMITERS) else ","


def read_table(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV (delimiter sniffed unless ``sep`` is given) or Parquet file into a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    if path.stat().st_size == 0:
        raise DataError(path, "the file is empty")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=sep or sniff_delimiter(path), skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file is empty") from None
    except _READ_ERRORS as exc:
        raise DataError(path, f"cannot be read as {'Parquet' if path.suffix.lower() in PARQUET_SUFFIXES else 'CSV'}: "
                              f"{exc}") from None
    if len(frame) == 0:
        raise DataError(path, "the file has a header but no data rows")
    return frame


def read_records(path: str | Path, sep: str | None = None) -> pd.DataFrame:
    """Read records to score: JSON Lines (one object a line), CSV or Parquet."""
    path = Path(path)
    if path.suffix.lower() not in JSON_LINES_SUFFIXES:
        return read_table(path, sep)
    return pd.concat(list(iter_record_chunks(path, sep)), ignore_index=True)


def iter_record_chunks(path: str | Path, sep: str | None = None, *, chunk_rows: int = 65536,
                       columns_as_text: tuple[str, ...] = (), columns: Sequence[str] | None = None):
    """Records to score, ``chunk_rows`` at a time, so that a file of any size takes constant memory.

    ``columns_as_text`` are read as text from CSV (identifiers: leading zeros and long digit strings
    survive). ``columns``, where given, limits what is read from Parquet to those columns (those the
    file has; a missing one is the caller's error to name). Raises DataError for an unreadable, empty or
    malformed file, naming the row and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    if path.stat().st_size == 0:
        raise DataError(path, "the file is empty")
    suffix = path.suffix.lower()
    kind = "Parquet" if suffix in PARQUET_SUFFIXES else "JSON Lines" if suffix in JSON_LINES_SUFFIXES else "CSV"
    rows = 0
    try:
        if kind == "JSON Lines":
            chunks = _json_lines_chunks(path, chunk_rows)
        elif kind == "Parquet":
            import pyarrow.parquet as pq

            # Without pre-buffering: with it Arrow keeps every row group read so far, and a 10 M-row
            # file peaked at 690 MiB against 438 MiB for 1 M rows (benchmarks/score_scale.py).
            parquet = pq.ParquetFile(path, pre_buffer=False)
            present = None if columns is None else [c for c in parquet.schema_arrow.names if c in set(columns)]
            chunks = (batch.to_pandas() for batch in parquet.iter_batches(batch_size=chunk_rows, columns=present))
        else:
            chunks = pd.read_csv(path, sep=sep or sniff_delimiter(path), skipinitialspace=True, chunksize=chunk_rows,
                                 dtype=dict.fromkeys(columns_as_text, str))
        for chunk in chunks:
            rows += len(chunk)
            yield chunk
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file is empty") from None
    except _READ_ERRORS as exc:
        raise DataError(path, f"cannot be read as {kind} (after {rows} rows): {exc}") from None
    if rows == 0:
        raise DataError(path, "the file is empty" if kind == "JSON Lines" else "the file has a header but no data rows")


def parquet_columns(path: Path) -> list[str]:
    """A Parquet file's column names, from its footer (nothing else is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(path, f"cannot be read as Parquet: {exc}") from None


def _json_lines_chunks(path: Path, chunk_rows: int):
    records: list[dict] = []
    seen = 0
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"not valid JSON ({exc.msg})", row=seen + 1, line=number) from None
            if not isinstance(record, dict):
                raise DataError(path, f"expected a JSON object, got {type(record).__name__}", row=seen + 1,
                                line=number)
            records.append(record)
            seen += 1
            if len(records) == chunk_rows:
                yield pd.DataFrame.from_records(records)
                records = []
    if records:
        yield pd.DataFrame.from_records(records)


def parse_label(path: str | Path, column: pd.Series, *, first_row: int = 0) -> np.ndarray:
    """Turn a label column of TRUE/FALSE, yes/no, 1/0 (any case) into 0/1, naming the first bad row
    (``first_row``: the 0-based index of the column's first row in the file, for a chunk of it)."""
    name = str(column.name)
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy().astype(np.int8)
    labels = np.empty(len(column), dtype=np.int8)
    for index, value in enumerate(column.tolist()):
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip().lower()
        if text in _TRUE:
            labels[index] = 1
        elif text in _FALSE:
            labels[index] = 0
        else:
            shown = "an empty value" if text == "" else repr(value)
            raise DataError(path, f"the label must be TRUE/FALSE, yes/no or 1/0, got {shown}",
                            row=first_row + index + 1, line=line_of(path, first_row + index), column=name)
    return labels


@dataclass
class Dataset:
    """Checked training data: features in schema order (numeric ones as float64) and 0/1 labels."""

    path: str
    schema: Schema
    features: pd.DataFrame
    labels: np.ndarray
    frame: pd.DataFrame  # the table as read, for out-of-time splits by a column that is not a feature


def resolve_schema(frame: pd.DataFrame, path: str | Path, label: str | None, schema_file: str | Path | None) -> Schema:
    overrides = load_schema_file(schema_file) if schema_file else {"label": None, "columns": {}}
    uci = is_uci_layout(frame.columns)
    label = label or overrides["label"] or (UCI_SCHEMA.label if uci else None)
    if label is None:
        raise DataError(path, "name the label column with --label (or 'label' in a schema file)")
    if label not in frame.columns:
        raise DataError(path, f"label column '{label}' not found; the columns are: "
                              f"{', '.join(map(str, frame.columns))}")
    for name in overrides["columns"]:
        if name not in frame.columns:
            raise DataError(path, f"the schema file names column '{name}', which the file does not have")
    kinds, transforms, reasons = {}, {}, {}
    for name in frame.columns:
        name = str(name)
        if name == label:
            continue
        reason = None
        if name in overrides["columns"]:
            kind, transform = overrides["columns"][name]
            reason = f"{kind}, as the schema file says"
        elif uci and name in UCI_SCHEMA.kinds:
            kind, transform = UCI_SCHEMA.kinds[name], UCI_SCHEMA.transforms.get(name, "auto")
        else:
            (kind, reason), transform = infer_role(name, frame[name]), "auto"
        assert kind in KINDS
        if kind not in FEATURE_KINDS:
            reasons[name] = reason or kind
            continue
        kinds[name] = kind
        if kind == "numeric":
            transforms[name] = transform
    if not kinds:
        raise DataError(path, f"no feature columns besides the label '{label}'"
                              + "".join(f"; {name}: {why}" for name, why in reasons.items()))
    return Schema(label, kinds, transforms, tuple(reasons), reasons)


def check_features(frame: pd.DataFrame, schema: Schema, path: str | Path) -> pd.DataFrame:
    """The feature columns in schema order, numeric ones as float64; raises on empty or mistyped columns."""
    return pd.DataFrame(check_feature_columns(frame, schema, path))


def check_feature_columns(frame: pd.DataFrame, schema: Schema, path: str | Path, *, first_row: int = 0,
                          chunk: bool = False) -> dict[str, pd.Series]:
    """:func:`check_features` as a dict of columns, which the encoder takes as it is (a DataFrame built
    from them would copy every numeric column into one block first).

    For one ``chunk`` of a longer file, ``first_row`` is the 0-based index of its first row (for the
    row and line numbers in errors), and a column empty in every row of the chunk is left to the
    encoder (an error in strict mode, imputed in lenient mode)."""
    columns = {}
    for name, kind in schema.kinds.items():
        if name not in frame.columns:
            raise DataError(path, "column missing (the bundle's schema needs it)", column=name)
        series = frame[name]
        numeric_dtype = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        # Within a chunk the encoder finds empty values (strict or lenient), so a column that needs no
        # parsing is taken as it is: the text scan would cost more than encoding the column.
        if not (chunk and (kind == "categorical" or numeric_dtype)):
            text = series.astype(str).str.strip() if not pd.api.types.is_numeric_dtype(series) else None
            empty = series.isna() if text is None else (series.isna() | (text == ""))
            if bool(empty.all()) and not chunk:
                raise DataError(path, "the column is empty in every row", column=name)
            if kind == "numeric" and not numeric_dtype:
                numbers = pd.to_numeric(series.where(~empty), errors="coerce")
                bad = numbers.isna() & ~empty
                if bool(bad.any()):
                    index = int(np.argmax(bad.to_numpy()))
                    raise DataError(path, f"expected a number, got {series.iloc[index]!r}",
                                    row=first_row + index + 1, line=line_of(path, first_row + index), column=name)
                series = numbers
        if kind == "numeric":
            series = series.astype(np.float64)
            _refuse_infinity(series, path, first_row, name)
        columns[name] = series.reset_index(drop=True)
    return columns


def _refuse_infinity(series: pd.Series, path: str | Path, first_row: int, name: str) -> None:
    infinite = np.isinf(series.to_numpy())
    if infinite.any():
        index = int(np.argmax(infinite))
        raise DataError(path, "expected a finite number, got infinity", row=first_row + index + 1,
                        line=line_of(path, first_row + index), column=name)


def load_dataset(path: str | Path, label: str | None = None, *, sep: str | None = None,
                 schema_file: str | Path | None = None, schema: Schema | None = None) -> Dataset:
    """Read and check a labelled table. ``schema`` (from a bundle) wins over inference and schema files."""
    frame = read_table(path, sep)
    schema = schema or resolve_schema(frame, path, label, schema_file)
    if schema.label not in frame.columns:
        raise DataError(path, f"label column '{schema.label}' not found; the columns are: "
                              f"{', '.join(map(str, frame.columns))}")
    labels = parse_label(path, frame[schema.label])
    classes = np.unique(labels)
    if classes.size < 2:
        only = "TRUE" if classes[0] == 1 else "FALSE"
        raise DataError(path, f"every row has the same label ({only}); training needs buyers and non-buyers",
                        column=schema.label)
    return Dataset(str(path), schema, check_features(frame, schema, path), labels, frame.reset_index(drop=True))


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a table atomically, by the file's suffix: Parquet, JSON Lines, or CSV (booleans as
    TRUE/FALSE, like the UCI file)."""
    from intent_edge.fileio import atomic_path

    suffix = Path(path).suffix.lower()
    with atomic_path(path) as temporary:
        if suffix in PARQUET_SUFFIXES:
            frame.to_parquet(temporary, index=False)
        elif suffix in (".jsonl", ".ndjson"):
            frame.to_json(temporary, orient="records", lines=True)
        else:
            text = frame.copy()
            for column in text.columns:
                if pd.api.types.is_bool_dtype(text[column]):
                    text[column] = np.where(text[column], "TRUE", "FALSE")
            text.to_csv(temporary, index=False)
