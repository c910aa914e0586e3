"""`train --engine spark`: the out-of-core passes on Apache Spark, the network on the driver.

Pass 1 runs :class:`intent_edge.train.scale.PassOne` in every partition (``mapInPandas``); each partition
sends back its mergeable summaries (exact counts and moments) and the rows it
kept (the teacher's hash sample, the validation rows, the held-out evidence rows, as Arrow IPC), and the
driver merges them. Pass 2 runs :class:`intent_edge.train.scale.EncodingJob` in every partition (the
encoder spec, the teacher as LightGBM's text, its out-of-fold probabilities broadcast by key) and
writes the encoded rows as Parquet, partitioned by shard; the driver turns each shard into the file the
local engine would have written, and the network trains from those as in the local engine. Held-out
rows are scored on the driver, chunk by chunk.

Which rows land where depends on the rows' keys only, so a Spark run and a local run over the same
table keep the same rows, fit the same encoder (vocabularies and medians equal, moments equal to
rounding) and the same teacher, and feed the network the same batches. Spark reads rows in
no fixed order, so the split must be keyed by an id column (``--id-column``).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge.errors import UsageError
from intent_edge.train.scale import (
    RECORD_EXTRA,
    EncodingJob,
    FirstPass,
    PassOne,
    ProgressCallback,
    pass_rates,
    shard_records,
)

PASS_ONE_SCHEMA = "part string"
SHARD_SCHEMA = "shard int, records binary"


def spark_session(master: str):
    """A SparkSession on ``master`` whose Python workers run this interpreter (the one with intent-edge)."""
    import os
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return (SparkSession.builder.master(master).appName("intent-edge-train")
            .config("spark.pyspark.python", sys.executable).config("spark.pyspark.driver.python", sys.executable)
            .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8").getOrCreate())


def read_table(spark, path: Path, sep: str | None):
    from intent_edge.data.io import sniff_delimiter
    from intent_edge.train.table_stream import is_parquet

    if is_parquet(path):
        return spark.read.parquet(str(path))
    return spark.read.csv(str(path), header=True, inferSchema=True, sep=sep or sniff_delimiter(path))


def _arrow_bytes(frame: pd.DataFrame) -> str:
    import pyarrow as pa

    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue()).decode()


def _arrow_frame(text: str) -> pd.DataFrame:
    import pyarrow as pa

    return pa.ipc.open_stream(base64.b64decode(text)).read_all().to_pandas()


def _part_to_json(part: PassOne) -> str:
    kept = {role: [{"columns": _arrow_bytes(c), "labels": labels.tolist(), "keys": keys.tolist(), "u": u.tolist()}
                   for c, labels, keys, u in parts] for role, parts in part.kept.items()}
    return json.dumps({"statistics": part.statistics.to_json(), "classes": part.classes.tolist(),
                       "test_rows": part.test_rows, "test_digest": str(part.test_digest), "kept": kept})


def _part_from_json(text: str, template: PassOne) -> PassOne:
    from intent_edge.train.table_stream import EncoderStatistics

    data = json.loads(text)
    part = PassOne(template.schema, template.split, template.sample_rate, template.evidence_rate)
    part.statistics = EncoderStatistics.from_json(template.schema, data["statistics"])
    part.classes = np.asarray(data["classes"], dtype=np.int64)
    part.test_rows, part.test_digest = int(data["test_rows"]), int(data["test_digest"])
    part.kept = {role: [(_arrow_frame(p["columns"]), np.asarray(p["labels"], dtype=np.int8),
                         np.asarray(p["keys"], dtype=object), np.asarray(p["u"])) for p in parts]
                 for role, parts in data["kept"].items()}
    return part


def spark_first_pass(spark, path: Path, schema, split, plan, *, sep: str | None,
                     progress: ProgressCallback) -> FirstPass:
    if split.id_column is None:
        raise UsageError("--engine spark needs --id-column: Spark reads rows in no fixed order, so the held-out "
                         "rows are chosen by a hash of an id, not of the row number")
    frame = read_table(spark, path, sep)
    schema_json, arguments, rates = schema.to_json(), split.to_arguments(), pass_rates(plan, split)

    def partition(batches):
        from intent_edge.data.schema import Schema
        from intent_edge.train.hash_split import HashSplit

        part = PassOne(Schema.from_json(schema_json), HashSplit(**arguments), *rates)
        for batch in batches:
            batch[arguments["id_column"]] = batch[arguments["id_column"]].astype(str)
            part.add(batch, 0, "Spark batch")
        yield pd.DataFrame({"part": [_part_to_json(part)]})

    progress("pass 1 of 3: statistics (Spark)", 0, plan.rows)
    template = PassOne(schema, split, *rates)
    for row in frame.mapInPandas(partition, PASS_ONE_SCHEMA).collect():
        template.merge(_part_from_json(row["part"], template))
    progress("pass 1 of 3: statistics (Spark)", plan.rows, plan.rows)
    quality = frame.limit(65_536).toPandas()
    return template.finish(quality, path)


def spark_shards(spark, path: Path, job: EncodingJob, by_key: dict, directory: Path, width: int, *,
                 sep: str | None, progress: ProgressCallback) -> tuple[list[Path], int]:
    """Pass 2 on Spark: encoded rows written as Parquet by shard, then each shard as the local engine's
    file (rows in the order Spark wrote them: the network puts each shard in its keys' order first, so the
    batches are the local engine's)."""
    import pyarrow.parquet as pq

    frame = read_table(spark, path, sep)
    broadcast = spark.sparkContext.broadcast(by_key)
    id_column = job.split["id_column"]

    def partition(batches):
        for batch in batches:
            batch[id_column] = batch[id_column].astype(str)
            encoded, targets, shard_of, order = job.run(batch, 0, broadcast.value, "Spark batch")
            records = shard_records(encoded, targets, order)
            shards = np.unique(shard_of)
            yield pd.DataFrame({"shard": shards.astype(np.int32),
                                "records": [records[shard_of == s].tobytes() for s in shards]})

    written = directory / "spark-shards"
    progress("pass 2 of 3: encoding (Spark)", 0, None)
    frame.mapInPandas(partition, SHARD_SCHEMA).write.partitionBy("shard").parquet(str(written))
    paths, rows = [], 0
    for shard in range(job.shards):
        target = directory / f"shard-{shard:04d}.f32"
        with open(target, "wb") as handle:
            for part in sorted((written / f"shard={shard}").glob("*.parquet")):
                for blob in pq.read_table(part, columns=["records"]).column("records").to_pylist():
                    handle.write(blob)
                    rows += len(blob) // (4 * (width + RECORD_EXTRA))
        paths.append(target)
    progress("pass 2 of 3: encoding (Spark)", rows, rows)
    return paths, rows


class SparkEngine:
    """Passes 1 and 2 on Spark (``train_streaming(..., engine=SparkEngine(session))``)."""

    def __init__(self, spark):
        self.spark = spark

    def first_pass(self, path: Path, schema, split, plan, *, sep: str | None, progress: ProgressCallback) -> FirstPass:
        return spark_first_pass(self.spark, path, schema, split, plan, sep=sep, progress=progress)

    def shards(self, path: Path, job: EncodingJob, by_key: dict, directory: Path, width: int, *, sep: str | None,
               chunk_rows: int, text_columns: tuple[str, ...], rows: int, progress: ProgressCallback
               ) -> tuple[list[Path], int]:
        del chunk_rows, text_columns, rows  # Spark reads and partitions the table itself
        return spark_shards(self.spark, path, job, by_key, directory, width, sep=sep, progress=progress)
