"""Scoring on Apache Spark with the runtime: ``DataFrame.mapInPandas``, one predictor per executor process.

    from intent_edge.spark import score_dataframe
    scored = score_dataframe(sessions, "/mnt/models/bundle", keep=["session_id"])
    scored.write.parquet("scored/")

The bundle directory must be readable at the same path on every executor (a shared mount), or shipped
with ``spark.sparkContext.addFile(bundle_dir, recursive=True)`` and named by
``pyspark.SparkFiles.get(bundle_name)`` inside the job: :func:`score_partitions` resolves a relative path
through ``SparkFiles`` when it is not found as given. Each Python worker loads the bundle once, verifying
its checksums (and signature, with ``public_key``), and keeps it for every later batch; Spark reuses
Python workers across tasks by default (``spark.python.worker.reuse``). Scores equal the local runtime's,
batch for batch: the same encoder and model run inside the workers. Needs pyspark, pandas and pyarrow on
the driver, and intent-edge with a backend on the executors' Python (``spark.pyspark.python`` or
``PYSPARK_PYTHON`` pointing at that environment).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from intent_edge.data.io import check_feature_columns
from intent_edge.data.schema import Schema
from intent_edge.errors import DataError, RecordError
from intent_edge.runtime import Predictor
from intent_edge.score import score_frame

_PREDICTORS: dict[tuple, Predictor] = {}
_LOCK = threading.Lock()


def _predictor(bundle: str, variant: str | None, strict: bool, public_key: str | None) -> Predictor:
    """The worker process's predictor for this bundle, loaded on first use."""
    key = (bundle, variant, strict, public_key)
    with _LOCK:
        if key not in _PREDICTORS:
            path = Path(bundle)
            if not path.exists() and not path.is_absolute():
                from pyspark import SparkFiles

                path = Path(SparkFiles.get(bundle))
            _PREDICTORS[key] = Predictor.load(path, variant, strict=strict, public_key=public_key)
        return _PREDICTORS[key]


def score_partitions(bundle: str | Path, *, keep: Sequence[str] = (), variant: str | None = None,
                     strict: bool = True, public_key: str | Path | None = None
                     ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function to hand to ``mapInPandas``: pandas batches in, ``keep`` + probability + decision out."""
    bundle, keep = str(bundle), list(keep)
    public_key = None if public_key is None else str(public_key)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        predictor = _predictor(bundle, variant, strict, public_key)
        schema = Schema.from_json(predictor.manifest["schema"])
        for batch in batches:
            features = check_feature_columns(batch, schema, "Spark batch", chunk=True)
            try:
                out = score_frame(predictor, features, batch[keep])
            except RecordError as exc:
                shown = batch.iloc[exc.row][keep].to_dict() if exc.row is not None and keep else {}
                raise DataError("Spark batch", f"{exc.detail}" + (f" (record {shown})" if shown else ""),
                                column=exc.field) from None
            yield out

    return score


def score_dataframe(frame, bundle: str | Path, *, keep: Sequence[str] = (), variant: str | None = None,
                    strict: bool = True, public_key: str | Path | None = None):
    """``frame`` (a Spark DataFrame with the bundle's feature columns) scored: the ``keep`` columns with
    their Spark types, ``probability`` (float) and ``decision`` (boolean)."""
    from pyspark.sql.types import BooleanType, FloatType, StructField, StructType

    missing = [name for name in keep if name not in frame.columns]
    if missing:
        raise DataError("Spark DataFrame", f"keep names columns it does not have: {', '.join(missing)}")
    schema = StructType([frame.schema[name] for name in keep] + [StructField("probability", FloatType(), False),
                                                                 StructField("decision", BooleanType(), False)])
    return frame.mapInPandas(score_partitions(bundle, keep=keep, variant=variant, strict=strict,
                                              public_key=public_key), schema=schema)
