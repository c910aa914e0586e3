"""The Triton export: each config.pbtxt parses with Triton's own ModelConfig and agrees with its model's real
signature; the raw-field model takes records, the encoded one encoded rows, and both give the bundle's
probabilities."""

import json

import numpy as np
import onnxruntime as ort
import pytest

from intent_edge.errors import BundleError
from intent_edge.raw_graph import raw_feeds
from intent_edge.runtime.encoder import Encoder
from intent_edge.triton import export_triton

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="tritonclient (dev extra) ships Triton's ModelConfig message")
TRITON_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(double)": "TYPE_FP64", "tensor(string)": "TYPE_STRING"}


def parsed_config(model_dir):
    from google.protobuf import text_format

    return text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def check_against_model(model_dir, config):
    """Every input and output of the config is the model's, in order, with its type and non-batch dims."""
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    for declared, tensors in ((config.input, session.get_inputs()), (config.output, session.get_outputs())):
        assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in declared] == [
            (t.name, TRITON_TYPES[t.type], list(t.shape[1:])) for t in tensors]
    return session


def test_configs_parse_with_triton_and_match_their_models(tiny_bundle, tmp_path):
    repository = tmp_path / "repo"
    model_dir = export_triton(tiny_bundle, repository, model_name="shoppers", max_batch_size=512, instances=2)
    assert sorted(p.name for p in repository.iterdir() if p.is_dir()) == ["shoppers", "shoppers_encoded"]
    golden = json.loads((repository / "golden.json").read_text())
    records = [r["record"] for r in golden["rows"]]
    expected = [r["probability"] for r in golden["rows"]]

    config = parsed_config(model_dir)
    assert (config.name, config.backend, config.max_batch_size) == ("shoppers", "onnxruntime", 512)
    assert config.instance_group[0].count == 2 and config.HasField("dynamic_batching")
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert [t.name for t in config.input] == list(manifest["schema"]["kinds"])  # one input per field
    assert {model_config_pb2.DataType.Name(t.data_type) for t in config.input} == {"TYPE_STRING", "TYPE_FP64"}
    session = check_against_model(model_dir, config)
    fields = json.loads((repository / "fields.json").read_text())
    raw = session.run(None, raw_feeds(records, fields))[0][:, 0]
    np.testing.assert_allclose(raw, expected, atol=1e-5)

    encoded_dir = repository / "shoppers_encoded"
    session = check_against_model(encoded_dir, parsed_config(encoded_dir))
    encoder = Encoder.from_spec(json.loads((repository / "encoder.json").read_text()))
    encoded = session.run(None, {session.get_inputs()[0].name: encoder.encode_records(records)})[0][:, 0]
    np.testing.assert_allclose(encoded, expected, atol=1e-5)
    guide = (repository / "README.md").read_text()
    assert "`shoppers`: raw records in" in guide and "`shoppers_encoded`: encoded rows in" in guide
    assert f"width {encoder.width}" in guide and "No Triton server runs" in guide


def test_a_bundle_without_a_raw_graph_exports_the_encoded_model_alone(tiny_bundle, tmp_path):
    import shutil

    from intent_edge.runtime.bundle import read_manifest, write_manifest

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = read_manifest(bundle)
    del manifest["variants"]["fp32"]["raw"]
    write_manifest(bundle, manifest)
    model_dir = export_triton(bundle, tmp_path / "repo")
    assert sorted(p.name for p in (tmp_path / "repo").iterdir() if p.is_dir()) == ["intent_edge"]
    config = parsed_config(model_dir)
    assert [model_config_pb2.DataType.Name(t.data_type) for t in config.input] == ["TYPE_FP32"]
    check_against_model(model_dir, config)


def test_refuses_an_unknown_variant_and_a_bad_model_name(tiny_bundle, tmp_path):
    with pytest.raises(BundleError, match="use letters"):
        export_triton(tiny_bundle, tmp_path / "r", model_name="../escape")
    with pytest.raises(BundleError, match="bundle has no variant .nope."):
        export_triton(tiny_bundle, tmp_path / "r", variant="nope")
    assert not (tmp_path / "r").exists()
