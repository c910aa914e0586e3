"""Training at scale (issue 26): the out-of-core path on about 20,000 rows. Its encoder equals the
in-memory one (vocabularies and medians exactly, moments within 1e-9; a sampled median within its rank
bound), its
hash split does not depend on how the table is chunked and is rebuilt from the manifest, and the bundle
it writes passes the same checks as an in-memory one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from intent_edge.data.io import load_dataset, write_table
from intent_edge.data.synth import generate_sessions
from intent_edge.runtime.encoder import CategoricalFeature, Encoder
from intent_edge.train.hash_split import HashSplit
from intent_edge.train.scale import fit_encoder_streaming
from intent_edge.train.table_stream import count_rows, table_chunks

ROWS = 20_000


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """Synthetic sessions with empty numbers and categories, as CSV (CRLF) and as three Parquet shards."""
    frame = generate_sessions(ROWS, seed=21)
    rng = np.random.default_rng(0)
    frame.loc[rng.random(ROWS) < 0.05, "ExitRates"] = np.nan
    frame["VisitorType"] = frame["VisitorType"].astype(object)
    frame.loc[rng.random(ROWS) < 0.03, "VisitorType"] = None
    directory = tmp_path_factory.mktemp("scale")
    frame.to_csv(directory / "sessions.csv", index=False, lineterminator="\r\n")
    shards = directory / "shards"
    shards.mkdir()
    for number, part in enumerate(np.array_split(np.arange(ROWS), 3)):
        write_table(frame.iloc[part], shards / f"part-{number}.parquet")
    return directory


def test_rows_are_counted_and_chunks_cover_the_table_in_order(messy):
    assert count_rows(messy / "sessions.csv") == count_rows(messy / "shards") == ROWS
    firsts = [(first, len(frame)) for first, frame in table_chunks(messy / "shards", chunk_rows=4096)]
    assert firsts[0][0] == 0 and sum(n for _, n in firsts) == ROWS
    assert all(a + n == b for (a, n), (b, _) in zip(firsts, firsts[1:], strict=False))


@pytest.mark.parametrize("source", ["sessions.csv", "shards"])
def test_the_streamed_encoder_equals_the_in_memory_one(messy, source):
    dataset = load_dataset(messy / "sessions.csv", "Revenue")
    memory = Encoder.fit(dataset.features, dataset.schema.kinds, dataset.schema.transforms)
    streamed = fit_encoder_streaming(messy / source, dataset.schema, chunk_rows=3000)
    for a, b in zip(memory.features, streamed.features, strict=True):
        assert a.name == b.name and type(a) is type(b) and a.empty_fraction == b.empty_fraction
        if isinstance(a, CategoricalFeature):
            assert a.vocabulary == b.vocabulary  # exact counts: the same words in the same order
            continue
        assert a.transform == b.transform and a.fill == b.fill  # the sample holds every row: the exact median
        assert b.center == pytest.approx(a.center, rel=1e-9, abs=1e-12)
        assert b.scale == pytest.approx(a.scale, rel=1e-9)


def test_a_sampled_median_is_within_its_documented_rank_bound(messy):
    from intent_edge.train.table_stream import median_rank_error

    dataset = load_dataset(messy / "sessions.csv", "Revenue")
    streamed = fit_encoder_streaming(messy / "shards", dataset.schema, chunk_rows=3000, sample_rows=5000)
    bound = median_rank_error(5000, ROWS)
    assert 0 < bound < 0.025  # DKW at 99% for 5,000 rows: 2.3% of the rows
    for feature in streamed.features:
        if isinstance(feature, CategoricalFeature):
            continue
        values = dataset.features[feature.name].to_numpy(dtype=float)
        present = np.sort(values[~np.isnan(values)])
        below, at_most = (np.searchsorted(present, feature.fill, side=side) / present.size
                          for side in ("left", "right"))
        assert below - bound <= 0.5 <= at_most + bound
    # deterministic, whatever the format and the chunking: the same sample, so the same medians; the moments
    # merged in other pieces agree to rounding
    again = fit_encoder_streaming(messy / "sessions.csv", dataset.schema, chunk_rows=7000, sample_rows=5000)
    for a, b in zip(again.to_spec()["features"], streamed.to_spec()["features"], strict=True):
        assert {k: v for k, v in a.items() if k not in ("center", "scale")} == {
            k: v for k, v in b.items() if k not in ("center", "scale")}
        assert a.get("center", 0) == pytest.approx(b.get("center", 0), rel=1e-12, abs=1e-15)
        assert a.get("scale", 1) == pytest.approx(b.get("scale", 1), rel=1e-12)


def test_the_hash_split_does_not_depend_on_the_chunking(messy):
    frame = pd.read_csv(messy / "sessions.csv")
    rule = HashSplit(seed=4, test_fraction=0.2, validation_fraction=0.1)
    whole = rule.assign(frame, 0)
    pieces = [rule.assign(frame.iloc[start:start + 777], start) for start in range(0, ROWS, 777)]
    assert np.array_equal(whole[0], np.concatenate([p[0] for p in pieces]))
    assert np.array_equal(whole[1], np.concatenate([p[1] for p in pieces]))
    assert abs(whole[0].mean() - 0.2) < 0.01 and not (whole[0] & whole[1]).any()
    other = HashSplit(seed=5, test_fraction=0.2, validation_fraction=0.1).assign(frame, 0)[0]
    assert not np.array_equal(whole[0], other)  # the seed moves the split


def test_a_streamed_bundle_passes_the_same_checks(messy, tmp_path):
    from typer.testing import CliRunner

    from intent_edge.cli import app
    from intent_edge.runtime import Predictor
    from intent_edge.runtime.bundle import read_manifest, verify_files
    from intent_edge.train.pipeline import rebuild_split

    bundle = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["train", str(messy / "shards"), "--out", str(bundle), "--label", "Revenue",
                                      "--max-epochs", "3", "--teacher-rows", "4000", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "pass 1 of 3" in result.output and "rows/s" in result.output  # a progress bar for every pass
    manifest = read_manifest(bundle)
    verify_files(bundle, manifest)
    training = manifest["training"]
    assert training["split"]["kind"] == "hash" and training["streaming"]["teacher_folds"] == 3
    assert training["recipe"]["refit"] is False and training["recipe"]["teacher"] == "lightgbm"
    assert manifest["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-5
    assert manifest["variants"]["fp32"]["raw"]["status"] == "ok" and manifest["golden"]["rows"] == 256
    assert manifest["metrics"]["test"]["roc_auc"] > 0.8
    # compress and evaluate rebuild the held-out rows from the manifest, and the sha256 proves them
    dataset = load_dataset(messy / "sessions.csv", "Revenue")
    train, test = rebuild_split(dataset, training)
    assert len(test) == training["split"]["test_rows"] and len(train) + len(test) == ROWS
    predictor = Predictor.load(bundle, strict=False)
    probabilities = predictor.predict_batch(dataset.features.iloc[test])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(dataset.labels[test], probabilities) == pytest.approx(
        manifest["metrics"]["test"]["roc_auc"], abs=1e-6)
    golden = json.loads((bundle / "golden.json").read_text())["rows"]
    assert any(row["record"]["VisitorType"] is None for row in golden)  # a field that may be empty is, in golden


def test_streaming_refuses_what_does_not_apply(messy, tmp_path):
    from typer.testing import CliRunner

    from intent_edge.cli import app

    result = CliRunner().invoke(app, ["train", str(messy / "shards"), "--out", str(tmp_path / "b"), "--label",
                                      "Revenue", "--time-column", "Month"])
    assert result.exit_code == 2 and "--time-column does not apply to streaming training" in result.output
    result = CliRunner().invoke(app, ["train", str(messy / "sessions.csv"), "--out", str(tmp_path / "b"),
                                      "--label", "Revenue", "--id-column", "x"])
    assert result.exit_code == 2 and "--id-column does not apply to in-memory training" in result.output


def test_large_synthetic_tables_are_written_a_block_at_a_time(tmp_path, monkeypatch):
    from intent_edge.data import synth

    monkeypatch.setattr(synth, "SYNTH_BLOCK_ROWS", 1000)
    summaries = [synth.write_sessions(tmp_path / name, 2500, seed=3) for name in ("a.csv", "a.parquet", "b.parquet")]
    csv, parquet, again = (load_dataset(tmp_path / name, "Revenue") for name in ("a.csv", "a.parquet", "b.parquet"))
    assert len(csv.labels) == len(parquet.labels) == 2500 and summaries[0] == summaries[1]
    assert np.array_equal(csv.labels, parquet.labels) and parquet.features.equals(again.features)  # deterministic
    assert not parquet.features.iloc[:1000].reset_index(drop=True).equals(
        parquet.features.iloc[1000:2000].reset_index(drop=True))  # each block its own draw


def test_the_spark_engine_equals_the_local_one(messy, tmp_path):
    """`train --engine spark` on local[2]: the same rows kept, the same vocabularies and medians, moments to
    1e-9, the same teacher and the same batches, so the same network."""
    import shutil

    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'intent-edge[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on this host; Spark needs Java 17 (apt-get install openjdk-17-jre-headless)")
    from intent_edge.runtime.bundle import read_manifest, verify_files
    from intent_edge.train.mlp import MLPRecipe
    from intent_edge.train.scale import train_streaming
    from intent_edge.train.spark_engine import SparkEngine, spark_session

    frame = pd.concat([pd.read_parquet(p) for p in sorted((messy / "shards").glob("*.parquet"))], ignore_index=True)
    frame.insert(0, "session_id", [f"s{i:06d}" for i in range(len(frame))])
    data = tmp_path / "with-ids"
    data.mkdir()
    for number, part in enumerate(np.array_split(np.arange(len(frame)), 4)):
        write_table(frame.iloc[part], data / f"part-{number}.parquet")
    options = {"label": "Revenue", "recipe": MLPRecipe(max_epochs=2), "seed": 3, "id_column": "session_id",
               "teacher_rows": 4000, "chunk_rows": 5000}
    local = train_streaming(data, tmp_path / "local", **options)
    spark = spark_session("local[2]")
    try:
        distributed = train_streaming(data, tmp_path / "spark", engine=SparkEngine(spark), **options)
    finally:
        spark.stop()
    verify_files(tmp_path / "spark", read_manifest(tmp_path / "spark"))
    assert distributed["training"]["split"] == local["training"]["split"]  # the same held-out rows (digest)
    assert distributed["training"]["rows"] == local["training"]["rows"]  # the same sample and validation rows
    for a, b in zip(local["encoder"]["features"], distributed["encoder"]["features"], strict=True):
        assert a["name"] == b["name"] and a.get("vocabulary") == b.get("vocabulary")
        if a["kind"] == "numeric":
            assert b["center"] == pytest.approx(a["center"], rel=1e-9, abs=1e-12)
            assert b["scale"] == pytest.approx(a["scale"], rel=1e-9)
            assert a["fill"] == b["fill"]  # the median of the same hash sample
    assert distributed["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-5
    # the issue asks for held-out ROC-AUC within 0.002; the same batches in the same order give the same network
    assert distributed["metrics"]["test"] == local["metrics"]["test"]
