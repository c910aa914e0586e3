"""Bad input never crashes the host or yields NaN: generated records at the runtime, generated files at
the readers, and a malicious Keras file at load time. Each outcome is a clear, named error or a result."""

import json
import math
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intent_edge.data.io import load_dataset, read_records
from intent_edge.errors import BundleError, DataError, RecordError
from intent_edge.runtime import Predictor

_any_value = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.binary(max_size=4),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return Predictor.load(tiny_bundle)


@pytest.fixture(scope="module")
def good_record(synthetic_csv):
    return load_dataset(synthetic_csv).features.iloc[0].to_dict()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_record_gives_a_probability_or_a_named_error(predictor, good_record, data):
    record = dict(good_record)
    for name in data.draw(st.lists(st.sampled_from(sorted(record)), max_size=4, unique=True)):
        action = data.draw(st.sampled_from(["replace", "delete"]))
        if action == "delete":
            del record[name]
        else:
            record[name] = data.draw(_any_value)
    for strict in (True, False):
        predictor.strict = strict
        try:
            probability = predictor.predict(record)
        except RecordError as exc:
            assert exc.field in record or exc.field in predictor.feature_names  # the error names a field
        else:
            assert math.isfinite(probability) and 0.0 <= probability <= 1.0
    predictor.strict = True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab,;\t|\"'\n\r 0123456789.-eTRUEFALSEyesno")), max_size=300))
def test_any_csv_text_loads_or_raises_a_data_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "data.csv"
    path.write_text(text)
    try:
        dataset = load_dataset(path, "a")
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        assert len(dataset.labels) == len(dataset.features) > 0
        assert set(np.unique(dataset.labels)) == {0, 1}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.text(max_size=20), st.just('{"a": 1}'), st.just("[1, 2]"), st.just("null")),
                      max_size=5))
def test_any_jsonl_text_reads_or_raises_a_data_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "records.jsonl"
    path.write_text("\n".join(lines))
    try:
        frame = read_records(path)
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        assert len(frame) > 0


@pytest.fixture(scope="module")
def parquet_bytes(synthetic_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("parquet") / "good.parquet"
    load_dataset(synthetic_csv).frame.head(50).to_parquet(path)
    return path.read_bytes()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damaged_parquet_reads_or_raises_a_data_error(tmp_path_factory, parquet_bytes, data):
    """Truncated files, flipped bytes and arbitrary bytes, through both readers (whole file and chunks)."""
    from intent_edge.data.io import iter_record_chunks

    damage = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if damage == "truncate":
        content = parquet_bytes[:data.draw(st.integers(0, len(parquet_bytes) - 1))]
    elif damage == "flip":
        content = bytearray(parquet_bytes)
        for position in data.draw(st.lists(st.integers(0, len(content) - 1), min_size=1, max_size=8)):
            content[position] ^= data.draw(st.integers(1, 255))
        content = bytes(content)
    else:
        content = data.draw(st.binary(max_size=400))
    path = tmp_path_factory.mktemp("fuzz") / "records.parquet"
    path.write_bytes(content)
    for read in (read_records, lambda p: list(iter_record_chunks(p, chunk_rows=7))):
        try:
            result = read(path)
        except DataError as exc:
            assert str(path) in str(exc)
        else:
            assert len(result) > 0


def test_keras_lambda_layer_in_a_bundle_is_refused(tiny_bundle, synthetic_csv, tmp_path):
    keras = pytest.importorskip("keras")
    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.runtime.bundle import describe_file

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    width = manifest["encoder"]["width"]
    inputs = keras.Input((width,), name="features")
    outputs = keras.layers.Lambda(lambda x: keras.ops.sigmoid(keras.ops.sum(x, axis=1, keepdims=True)))(inputs)
    keras.Model(inputs, outputs).save(bundle / "model.keras")
    manifest["source_model"]["file"] = describe_file(bundle, "model.keras")  # checksums alone would pass it
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="refused to load model.keras: it holds code"):
        compress_bundle(bundle, load_dataset(synthetic_csv), methods=["int8-dynamic"])


def test_onnx_model_reading_files_outside_the_bundle_is_refused(tiny_bundle, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx.external_data_helper import set_external_data

    from intent_edge.runtime.bundle import describe_file

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 4096)
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    model = onnx.load(str(bundle / "model.onnx"))
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    set_external_data(tensor, location="../secret.bin", offset=0, length=len(tensor.raw_data))
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    onnx.save(model, str(bundle / "model.onnx"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["variants"]["fp32"]["file"] = describe_file(bundle, "model.onnx")  # checksums alone would pass it
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    # Two layers refuse it: onnx.checker first (where installed), ONNX Runtime's own path check after.
    with pytest.raises(BundleError, match="refused by onnx.checker|escapes model directory"):
        Predictor.load(bundle, backend="onnxruntime")


def test_a_flipped_byte_in_parquet_pandas_metadata_is_a_data_error(parquet_bytes, tmp_path):
    """Found by the fuzz run in CI: "int64" -> "hnt64" in a column's stored numpy type made the chunked
    reader's batch.to_pandas() raise TypeError (the whole-file reader ignores that field)."""
    from intent_edge.data.io import iter_record_chunks

    content = bytearray(parquet_bytes)
    position = content.find(b'"numpy_type": "int64"')
    assert position > 0
    content[position + len(b'"numpy_type": "')] ^= 1  # i -> h
    path = tmp_path / "records.parquet"
    path.write_bytes(bytes(content))
    assert len(read_records(path)) == 50
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        list(iter_record_chunks(path))
