"""Reading a table of any size a chunk at a time, and the mergeable statistics the out-of-core encoder is
fitted from (exact counts and moments; see :mod:`intent_edge.train.scale`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge.data.io import PARQUET_SUFFIXES, sniff_delimiter
from intent_edge.data.schema import Schema
from intent_edge.errors import DataError
from intent_edge.runtime.encoder import (
    TRANSFORMS,
    CategoricalFeature,
    Encoder,
    NumericFeature,
    automatic_transform,
    canonical_category,
    is_empty_category,
    kept_vocabulary,
)

CHUNK_ROWS = 131_072
MIN_CATEGORY_COUNT = 10


# ---- reading ----------------------------------------------------------------------------------------
def parquet_files(path: Path) -> list[Path]:
    """A Parquet file, or the Parquet files under a directory of shards in sorted order (the table's order)."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES and p.is_file())
    if not files:
        raise DataError(path, "the directory holds no Parquet files (.parquet, .pq)")
    return files


def is_parquet(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES


def count_rows(path: str | Path) -> int:
    """Rows in a Parquet file or directory of shards (from the footers), or lines after a CSV's header."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or directory")
    if is_parquet(path):
        import pyarrow.parquet as pq

        try:
            return sum(pq.ParquetFile(file).metadata.num_rows for file in parquet_files(path))
        except (OSError, ValueError) as exc:
            raise DataError(path, f"cannot be read as Parquet: {exc}") from None
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(0, lines + (last != b"\n") - 1)


def table_chunks(path: str | Path, *, sep: str | None = None, chunk_rows: int = CHUNK_ROWS,
                 text_columns: tuple[str, ...] = ()) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(first row, frame)`` for each chunk of a CSV, a Parquet file or a directory of Parquet shards (read
    in their sorted order), so that a table of any size takes constant memory. ``text_columns`` are read
    as text from CSV (identifiers keep their leading zeros)."""
    path = Path(path)
    first = 0
    try:
        if is_parquet(path):
            import pyarrow.parquet as pq

            # One file at a time, a batch at a time, without pre-buffering: Arrow's dataset scanner (which reads
            # ahead) peaked at 740 MiB reading 10 M rows in row groups of a million, this at 338 MiB.
            for file in parquet_files(path):
                for batch in pq.ParquetFile(file, pre_buffer=False).iter_batches(batch_size=chunk_rows):
                    if batch.num_rows:
                        yield first, batch.to_pandas()
                        first += batch.num_rows
        else:
            for frame in pd.read_csv(path, sep=sep or sniff_delimiter(path), skipinitialspace=True,
                                     chunksize=chunk_rows, dtype=dict.fromkeys(text_columns, str)):
                yield first, frame
                first += len(frame)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(path, f"cannot be read (after {first} rows): {exc}") from None
    if first == 0:
        raise DataError(path, "the table has no data rows")


# ---- mergeable statistics ---------------------------------------------------------------------------
def _moments(values: np.ndarray) -> tuple[int, float, float, float]:
    if values.size == 0:
        return 0, 0.0, 0.0, 0.0
    mean = float(values.mean())
    centred = values - mean
    squares = centred * centred
    return values.size, mean, float(squares.sum()), float((squares * centred).sum())


def merge_moments(a: tuple[int, float, float, float], b: tuple[int, float, float, float]
                  ) -> tuple[int, float, float, float]:
    """Count, mean and the 2nd and 3rd central sums of two parts, combined exactly (Pébay 2008)."""
    n_a, mean_a, m2_a, m3_a = a
    n_b, mean_b, m2_b, m3_b = b
    if n_a == 0:
        return b
    if n_b == 0:
        return a
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    m2 = m2_a + m2_b + delta * delta * n_a * n_b / n
    m3 = (m3_a + m3_b + delta ** 3 * n_a * n_b * (n_a - n_b) / (n * n)
          + 3.0 * delta * (n_a * m2_b - n_b * m2_a) / n)
    return n, mean, m2, m3


@dataclass
class NumericSummary:
    """A numeric column's mergeable summary: empties, minimum, and moments of the values and of each
    transform. (The median comes from the teacher's hash sample.)"""

    rows: int = 0
    empty: int = 0
    minimum: float = math.inf
    moments: dict = field(default_factory=lambda: dict.fromkeys(TRANSFORMS, (0, 0.0, 0.0, 0.0)))

    def update(self, values: np.ndarray) -> None:
        present = values[~np.isnan(values)]
        self.rows += values.size
        self.empty += values.size - present.size
        if present.size:
            self.minimum = min(self.minimum, float(present.min()))
            for name, transform in TRANSFORMS.items():
                self.moments[name] = merge_moments(self.moments[name], _moments(transform.numpy(present)))

    def merge(self, other: NumericSummary) -> None:
        self.rows, self.empty = self.rows + other.rows, self.empty + other.empty
        self.minimum = min(self.minimum, other.minimum)
        self.moments = {name: merge_moments(self.moments[name], other.moments[name]) for name in TRANSFORMS}

    def to_json(self) -> dict:
        return {"rows": self.rows, "empty": self.empty, "minimum": self.minimum,
                "moments": {name: list(values) for name, values in self.moments.items()}}

    @classmethod
    def from_json(cls, data: dict) -> NumericSummary:
        return cls(data["rows"], data["empty"], data["minimum"],
                   {name: (int(v[0]), float(v[1]), float(v[2]), float(v[3])) for name, v in data["moments"].items()})

    def feature(self, name: str, transform: str, sample: np.ndarray) -> NumericFeature:
        """The fitted field; ``sample``: the column's values in the teacher's hash sample (the median's)."""
        count = self.rows - self.empty
        if count == 0:
            raise DataError("the training rows", "the column has no values to fit on", column=name)
        if transform == "auto":
            n, _, m2, m3 = self.moments["identity"]
            skewness = 0.0 if m2 <= 0 else (m3 / n) / (m2 / n) ** 1.5
            transform = automatic_transform(self.minimum, skewness)
        present = sample[~np.isnan(sample)]
        # a column too sparse to have a value in the sample takes its mean instead
        fill = float(np.median(present)) if present.size else self.moments["identity"][1]
        # the empty rows take the fill: their transformed value joins the moments as a constant part
        filled = TRANSFORMS[transform].numpy(np.array([fill]))[0]
        n, mean, m2, _ = merge_moments(self.moments[transform], (self.empty, float(filled), 0.0, 0.0))
        scale = math.sqrt(m2 / n)
        return NumericFeature(name, transform, fill, mean, scale if scale > 0 else 1.0, self.empty / self.rows)


@dataclass
class CategoricalSummary:
    rows: int = 0
    empty: int = 0
    counts: dict = field(default_factory=dict)

    def update(self, column: pd.Series) -> None:
        self.rows += len(column)
        for value, count in column.value_counts(dropna=False).items():
            if is_empty_category(value):
                self.empty += int(count)
            else:
                key = canonical_category(value)
                self.counts[key] = self.counts.get(key, 0) + int(count)

    def merge(self, other: CategoricalSummary) -> None:
        self.rows, self.empty = self.rows + other.rows, self.empty + other.empty
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count

    def to_json(self) -> dict:
        return {"rows": self.rows, "empty": self.empty, "counts": self.counts}

    @classmethod
    def from_json(cls, data: dict) -> CategoricalSummary:
        return cls(data["rows"], data["empty"], dict(data["counts"]))

    def feature(self, name: str) -> CategoricalFeature:
        return CategoricalFeature(name, kept_vocabulary(self.counts, MIN_CATEGORY_COUNT),
                                  self.empty / max(self.rows, 1))


class EncoderStatistics:
    """Pass 1's summaries of every feature column, mergeable; :meth:`encoder` gives the fitted encoder."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.summaries = {name: NumericSummary() if kind == "numeric" else CategoricalSummary()
                          for name, kind in schema.kinds.items()}

    def update(self, columns: dict[str, pd.Series]) -> None:
        for name, summary in self.summaries.items():
            summary.update(columns[name].to_numpy(dtype=np.float64) if isinstance(summary, NumericSummary)
                           else columns[name])

    def merge(self, other: EncoderStatistics) -> None:
        for name, summary in self.summaries.items():
            summary.merge(other.summaries[name])

    def to_json(self) -> dict:
        return {name: summary.to_json() for name, summary in self.summaries.items()}

    @classmethod
    def from_json(cls, schema: Schema, data: dict) -> EncoderStatistics:
        statistics = cls(schema)
        statistics.summaries = {name: type(summary).from_json(data[name])
                                for name, summary in statistics.summaries.items()}
        return statistics

    def encoder(self, sample: pd.DataFrame) -> Encoder:
        """The fitted encoder; ``sample``: the teacher's hash sample of the training rows, for the medians."""
        return Encoder([summary.feature(name, self.schema.transforms.get(name, "auto"),
                                        sample[name].to_numpy(dtype=np.float64))
                        if isinstance(summary, NumericSummary) else summary.feature(name)
                        for name, summary in self.summaries.items()])


def median_rank_error(sample_rows: int, training_rows: int) -> float:
    """The bound on the sampled median's rank error, as a share of the rows: 0 where the sample holds
    every training row, else Dvoretzky-Kiefer-Wolfowitz at 99% confidence."""
    return 0.0 if sample_rows >= training_rows else math.sqrt(math.log(2 / 0.01) / (2 * max(sample_rows, 1)))
