"""Regression tests for the defects the structure review found (issue 12). Each failed before its fix."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from intent_edge.cli import app
from intent_edge.clickstream.synth import generate_clickstream
from intent_edge.data.io import load_dataset, write_table
from intent_edge.errors import BundleError, IntentEdgeError
from intent_edge.runtime.bundle import describe_file, write_manifest

runner = CliRunner()


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


# 1. An out-of-time split is rebuilt exactly (compress and the training plots used 0.2, not the bundle's fraction).
@pytest.fixture(scope="module")
def out_of_time(tmp_path_factory, synthetic_csv, tiny_recipe):
    from intent_edge.train.pipeline import train_bundle

    out = tmp_path_factory.mktemp("oot") / "bundle"
    manifest = train_bundle(load_dataset(synthetic_csv, "Revenue"), out, recipe=tiny_recipe, seed=0,
                            time_column="Month", test_fraction=0.1)
    return out, manifest


def test_out_of_time_split_is_rebuilt_with_the_bundles_own_fraction(out_of_time, synthetic_csv):
    from intent_edge.compress.pipeline import evaluation_rows
    from intent_edge.runtime.encoder import Encoder

    _, manifest = out_of_time
    dataset = load_dataset(synthetic_csv, "Revenue")
    rows = evaluation_rows(manifest, dataset, Encoder.from_spec(manifest["encoder"]))
    assert len(rows.test_y) == manifest["training"]["rows"]["test"]


def test_an_out_of_time_bundle_without_the_exact_split_record_is_refused(out_of_time, synthetic_csv, tmp_path):
    from intent_edge.compress.pipeline import evaluation_rows
    from intent_edge.runtime.encoder import Encoder

    source, manifest = out_of_time
    old = json.loads(json.dumps(manifest))
    old["training"]["split"] = {k: v for k, v in old["training"]["split"].items()
                                if k in ("kind", "column", "train_periods", "test_periods")}  # as written before
    with pytest.raises(BundleError, match="retrain"):
        evaluation_rows(old, load_dataset(synthetic_csv, "Revenue"), Encoder.from_spec(old["encoder"]))


# 2. Sequence training used to drop options silently; --label names a per-session label column.
@pytest.fixture(scope="module")
def labelled_log(tmp_path_factory):
    frame = generate_clickstream(300, seed=5)
    buyers = set(frame.loc[frame["event"] == "purchase", "session_id"])
    frame = frame[frame["event"] != "purchase"].copy()
    frame["bought"] = frame["session_id"].isin(buyers)
    path = tmp_path_factory.mktemp("labelled") / "events.csv"
    write_table(frame, path)
    return path


def test_sequence_training_takes_a_per_session_label_column(labelled_log, tmp_path):
    result = invoke("train", labelled_log, "--model", "gru", "--label", "bought", "--out", tmp_path / "b",
                    "--max-epochs", 1)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["label"] == "bought"


@pytest.mark.parametrize("option", [("--time-column", "timestamp"), ("--schema", "schema.json"),
                                    ("--plots", "plots")])
def test_sequence_training_refuses_options_it_cannot_use(labelled_log, tmp_path, option):
    result = invoke("train", labelled_log, "--model", "gru", "--label", "bought", "--out", tmp_path / "b",
                    "--max-epochs", 1, option[0], tmp_path / option[1] if option[0] != "--time-column" else option[1])
    assert result.exit_code == 2 and option[0] in result.output
    assert not (tmp_path / "b").exists()


def test_sequence_training_honours_the_test_fraction(labelled_log, tmp_path):
    result = invoke("train", labelled_log, "--model", "gru", "--label", "bought", "--out", tmp_path / "b",
                    "--max-epochs", 1, "--test-fraction", 0.4)
    assert result.exit_code == 0, result.output
    sessions = json.loads((tmp_path / "b" / "manifest.json").read_text())["training"]["sessions"]
    assert sessions["test"] == round(0.4 * sum(sessions.values()))


@pytest.fixture(scope="module")
def gru_bundle(labelled_log, tmp_path_factory):
    out = tmp_path_factory.mktemp("gru") / "b"
    result = invoke("train", labelled_log, "--model", "gru", "--label", "bought", "--out", out, "--max-epochs", 1)
    assert result.exit_code == 0, result.output
    return out


def test_evaluate_and_bench_of_a_clickstream_bundle_read_with_sep(gru_bundle, labelled_log, tmp_path):
    import pandas as pd

    tilde = tmp_path / "events.txt.csv"
    pd.read_csv(labelled_log).to_csv(tilde, sep="~", index=False)
    result = invoke("evaluate", tilde, "--bundle", gru_bundle, "--label", "bought", "--sep", "~")
    assert result.exit_code == 0, result.output
    result = invoke("bench", gru_bundle, "--data", tilde, "--sep", "~")
    assert result.exit_code == 0, result.output
    for option in (("--records", 500), ("--plots", tmp_path / "plots"), ("--no-keras",)):
        result = invoke("bench", gru_bundle, *option)
        assert result.exit_code == 2 and option[0] in result.output
    result = invoke("evaluate", labelled_log, "--bundle", gru_bundle, "--label", "bought", "--threshold", "0.3")
    assert result.exit_code == 2 and "--threshold" in result.output


def test_session_only_commands_refuse_a_clickstream_bundle(gru_bundle, labelled_log, tmp_path):
    result = invoke("export", gru_bundle, "--out", tmp_path / "triton")
    assert result.exit_code == 2 and "clickstream bundle" in result.output
    result = invoke("compress", gru_bundle, "--data", labelled_log)
    assert result.exit_code == 2 and "clickstream bundle" in result.output


# 3. info reports; it must not need the default variant's backend.
def test_info_does_not_need_the_default_variants_backend(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "trt-fp16.engine").write_bytes(b"not run here")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["variants"]["trt-fp16"] = {"format": "engine", "precision": "fp16",
                                        "file": describe_file(bundle, "trt-fp16.engine"),
                                        "parity": {"max_abs_diff": 0.001, "rows": 10}}
    manifest["default_variant"] = "trt-fp16"
    write_manifest(bundle, manifest)
    result = invoke("info", bundle)
    assert result.exit_code == 0, result.output
    assert "trt-fp16" in result.output and "unavailable" in result.output


# 4. bench verifies every file it opens, and finds the Keras model through the manifest.
def test_bench_refuses_a_damaged_source_model(tiny_bundle, tmp_path):
    from intent_edge.bench import run_benchmark

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    data = bytearray((bundle / "model.keras").read_bytes())
    data[-100] ^= 0xFF
    (bundle / "model.keras").write_bytes(bytes(data))
    records = load_dataset(_csv(tmp_path)).features.iloc[:50].to_dict("records")
    with pytest.raises(BundleError, match="model.keras"):
        run_benchmark(bundle, records, batch_sizes=(1,), raw_batch_sizes=(1,), keras_predict_rows=2,
                      measure_cold_start=False)


def test_bench_finds_the_keras_model_by_the_manifest(tiny_bundle, tmp_path):
    from intent_edge.bench import run_benchmark

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "model.keras").rename(bundle / "source.keras")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["source_model"]["file"] = describe_file(bundle, "source.keras")
    write_manifest(bundle, manifest)
    records = load_dataset(_csv(tmp_path)).features.iloc[:50].to_dict("records")
    report = run_benchmark(bundle, records, batch_sizes=(1,), raw_batch_sizes=(1,), keras_predict_rows=2,
                           measure_cold_start=False)
    assert report["baselines"]["keras"]["predict_rows"] == 2


def _csv(tmp_path):
    from intent_edge.data.synth import generate_sessions

    path = tmp_path / "records.csv"
    write_table(generate_sessions(60, seed=8), path)
    return path


# 5. A programming bug is not a user error: the CLI catches IntentEdgeError only.
def test_a_bug_is_not_printed_as_a_user_error(monkeypatch, tmp_path):
    import intent_edge.data.synth

    def broken(*args, **kwargs):
        raise ValueError("a bug, not the user's doing")

    monkeypatch.setattr(intent_edge.data.synth, "generate_sessions", broken)
    result = invoke("data", "synth", "--rows", 10, "--out", tmp_path / "x.csv")
    assert result.exit_code != 2 and isinstance(result.exception, ValueError)
    assert "error:" not in result.output


# 6. A library error does not name a CLI flag.
def test_compress_library_errors_name_no_cli_flag():
    from intent_edge.compress.registry import plan_for

    with pytest.raises(IntentEdgeError) as caught:
        plan_for("cpu", ["original", "trt-fp16"])
    assert "--" not in str(caught.value) and "methods" in str(caught.value)


def test_unknown_method_suggests_the_closest_name():
    from intent_edge.compress.registry import plan_for

    with pytest.raises(IntentEdgeError, match="int8-static"):
        plan_for("cpu", ["int8-statik"])


def test_evaluation_rows_are_the_bundles_test_rows(tiny_bundle, synthetic_csv):
    from intent_edge.compress.pipeline import evaluation_rows
    from intent_edge.runtime.encoder import Encoder

    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    rows = evaluation_rows(manifest, load_dataset(synthetic_csv, "Revenue"), Encoder.from_spec(manifest["encoder"]))
    assert len(rows.test_y) == manifest["training"]["rows"]["test"]
    assert np.isfinite(rows.test_x).all()
