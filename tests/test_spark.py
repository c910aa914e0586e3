"""Scoring on Spark in local mode gives the local runtime's answers, row for row."""

import shutil

import numpy as np
import pytest

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'intent-edge[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java runtime on this host; Spark needs Java 17 (apt-get install openjdk-17-jre-headless)",
                allow_module_level=True)

from intent_edge.data.synth import generate_sessions  # noqa: E402
from intent_edge.errors import DataError  # noqa: E402
from intent_edge.runtime import Predictor  # noqa: E402
from intent_edge.spark import score_dataframe  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    import os
    import sys

    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable

    # The Python workers must run this interpreter, the one with intent-edge installed.
    session = (SparkSession.builder.master("local[2]").appName("intent-edge-tests")
               .config("spark.pyspark.python", sys.executable).config("spark.pyspark.driver.python", sys.executable)
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64").getOrCreate())
    yield session
    session.stop()


def test_spark_scores_equal_the_local_runtime(spark, tiny_bundle):
    frame = generate_sessions(300, seed=41).drop(columns=["Revenue"])
    frame.insert(0, "session_id", [f"s{i:05d}" for i in range(len(frame))])
    scored = score_dataframe(spark.createDataFrame(frame).repartition(3), tiny_bundle, keep=["session_id"])
    assert [f.name for f in scored.schema.fields] == ["session_id", "probability", "decision"]
    result = scored.toPandas().sort_values("session_id").reset_index(drop=True)
    predictor = Predictor.load(tiny_bundle)
    expected = predictor.predict_batch(frame.drop(columns=["session_id"]))
    assert result["session_id"].tolist() == frame["session_id"].tolist()
    np.testing.assert_allclose(result["probability"].to_numpy(), expected, atol=1e-6)
    assert (result["decision"].to_numpy() == (expected >= predictor.threshold)).all()


def test_a_bad_record_fails_the_job_naming_the_field(spark, tiny_bundle):
    frame = generate_sessions(20, seed=42).drop(columns=["Revenue"]).astype({"Month": object})
    frame.loc[5, "Month"] = None  # a Spark null (a pandas NaN here would reach Spark as the text 'NaN')
    with pytest.raises(Exception, match="column 'Month': is empty"):
        score_dataframe(spark.createDataFrame(frame), tiny_bundle).collect()
    with pytest.raises(DataError, match="keep names columns it does not have: store"):
        score_dataframe(spark.createDataFrame(frame), tiny_bundle, keep=["store"])
