"""Batch scoring of files of any size: read in chunks, score with the runtime, write atomically.

Memory stays flat whatever the file's length: one chunk of input and its scores are held at a time.
The output appears only when every row is scored (a staged file renamed into place), so a bad record
or a killed process leaves the previous output, or none, never half of one. Needs the ``io`` extra
(pandas, pyarrow) beside the runtime.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge.data.io import (
    JSON_LINES_SUFFIXES,
    PARQUET_SUFFIXES,
    check_feature_columns,
    iter_record_chunks,
    line_of,
    parquet_columns,
)
from intent_edge.data.schema import Schema
from intent_edge.errors import DataError, RecordError
from intent_edge.fileio import atomic_path
from intent_edge.runtime import Predictor

OUTPUT_COLUMNS = ("probability", "decision")
DEFAULT_CHUNK_ROWS = 65536


@dataclass
class ScoreSummary:
    rows: int
    above_threshold: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def score_frame(predictor: Predictor, features: Mapping[str, pd.Series] | pd.DataFrame,
                passthrough: pd.DataFrame) -> pd.DataFrame:
    """The ``passthrough`` columns, then ``probability`` and ``decision``, for checked feature columns (the
    output of every batch scorer: files and Spark). Raises RecordError for a record the runtime refuses."""
    probabilities = predictor.predict_batch(features)
    out = passthrough.reset_index(drop=True)
    out["probability"] = probabilities
    out["decision"] = probabilities >= predictor.threshold
    return out


def resolve_keep(keep: Sequence[str] | str | None, columns: Sequence[str], path: Path) -> list[str]:
    """The input columns to pass through: a list of names, ``"all"``, or none."""
    if keep is None or keep == [] or keep == "":
        return []
    if keep == "all" or list(keep) == ["all"]:
        return [c for c in columns if c not in OUTPUT_COLUMNS]
    names = [keep] if isinstance(keep, str) else list(keep)
    missing = [n for n in names if n not in columns]
    if missing:
        raise DataError(path, f"--keep names columns the file does not have: {', '.join(missing)}; "
                              f"its columns are: {', '.join(map(str, columns))}")
    clash = [n for n in names if n in OUTPUT_COLUMNS]
    if clash:
        raise DataError(path, f"--keep {', '.join(clash)}: the output already has a column of that name")
    return names


def score_file(predictor: Predictor, input_path: str | Path, output_path: str | Path, *,
               keep: Sequence[str] | str | None = None, sep: str | None = None,
               chunk_rows: int = DEFAULT_CHUNK_ROWS, on_chunk: Callable[[int], None] | None = None) -> ScoreSummary:
    """Score ``input_path`` (CSV, Parquet or JSON Lines) into ``output_path`` (format by suffix): the
    ``keep`` columns, then ``probability`` and ``decision``. ``on_chunk`` gets the rows done so far.

    Three stages overlap: a reader thread parses the next chunk and a writer thread writes the last
    one while this thread encodes and scores the current one (the parsers, the model and the Parquet
    writer release the GIL). At most three chunks are held at once, whatever the file's length."""
    input_path, output_path = Path(input_path), Path(output_path)
    if input_path.resolve() == output_path.resolve():
        raise DataError(input_path, "the output would overwrite the input it is reading; choose another --output")
    schema = Schema.from_json(predictor.manifest["schema"])
    text_columns = tuple(keep) if isinstance(keep, (list, tuple)) else ()
    read_columns = kept = None
    if input_path.suffix.lower() in PARQUET_SUFFIXES and input_path.is_file():
        kept = resolve_keep(keep, parquet_columns(input_path), input_path)
        read_columns = [*schema.kinds, *kept]
    started = time.perf_counter()
    rows = above = 0
    # The writer is entered first so that it closes last: the pool's exit waits for a pending write.
    with _ChunkWriter(output_path) as writer, ThreadPoolExecutor(2, thread_name_prefix="score") as pool:
        chunks = iter_record_chunks(input_path, sep, chunk_rows=chunk_rows, columns=read_columns,
                                    columns_as_text=tuple(c for c in text_columns if c not in schema.kinds))
        written = None
        for chunk in _read_ahead(chunks, pool):
            if kept is None:
                kept = resolve_keep(keep, list(chunk.columns), input_path)
            features = check_feature_columns(chunk, schema, input_path, first_row=rows, chunk=True)
            try:
                out = score_frame(predictor, features, chunk[kept])
            except RecordError as exc:
                if exc.row is None:
                    raise DataError(input_path, exc.detail, column=exc.field) from None
                row = rows + exc.row
                raise DataError(input_path, exc.detail, row=row + 1, line=line_of(input_path, row),
                                column=exc.field) from None
            if written is not None:
                written.result()
            written = pool.submit(writer.write, out)
            rows += len(chunk)
            above += int(out["decision"].sum())
            if on_chunk is not None:
                on_chunk(rows)
        if written is not None:
            written.result()
    return ScoreSummary(rows, above, time.perf_counter() - started)


def _read_ahead(chunks: Iterator[pd.DataFrame], pool: ThreadPoolExecutor) -> Iterator[pd.DataFrame]:
    """``chunks``, with the next one read on ``pool`` while the caller works on this one."""
    _end = object()
    upcoming = pool.submit(next, chunks, _end)
    while (chunk := upcoming.result()) is not _end:
        upcoming = pool.submit(next, chunks, _end)
        yield chunk


class _ChunkWriter:
    """Appends DataFrames to a staged file of the output's format; the file takes its place on success.

    CSV writes booleans as TRUE/FALSE (like the UCI file); Parquet keeps the first chunk's column types,
    later chunks cast to them."""

    def __init__(self, path: Path):
        self.path = path
        suffix = path.suffix.lower()
        self.kind = "parquet" if suffix in PARQUET_SUFFIXES else "jsonl" if suffix in JSON_LINES_SUFFIXES else "csv"
        self._stack = contextlib.ExitStack()
        self._parquet = None
        self._handle = None

    def __enter__(self) -> _ChunkWriter:
        self._temporary = self._stack.enter_context(atomic_path(self.path))
        if self.kind != "parquet":
            self._handle = self._stack.enter_context(open(self._temporary, "w", encoding="utf-8", newline=""))
        return self

    def write(self, frame: pd.DataFrame) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._temporary, table.schema)
                self._stack.callback(self._parquet.close)
            elif not table.schema.equals(self._parquet.schema, check_metadata=False):
                try:
                    table = table.cast(self._parquet.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                    raise DataError(self.path, f"a later chunk's columns do not fit the types of the first "
                                               f"({exc}); score to .csv or .jsonl instead") from None
            self._parquet.write_table(table)
        elif self.kind == "jsonl":
            text = frame.to_json(orient="records", lines=True)
            self._handle.write(text if text.endswith("\n") else text + "\n")
        else:
            text = frame.copy()
            for column in text.columns:
                if pd.api.types.is_bool_dtype(text[column]):
                    text[column] = np.where(text[column], "TRUE", "FALSE")
            text.to_csv(self._handle, index=False, header=self._handle.tell() == 0)

    def __exit__(self, *exc_info) -> bool:
        # Closing writes the Parquet footer and flushes the text file, before atomic_path renames it
        # (ExitStack unwinds in reverse: writers first, the rename last). On an exception the staged
        # file is removed and the previous output stays.
        return self._stack.__exit__(*exc_info)
