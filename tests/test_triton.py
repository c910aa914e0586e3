"""The Triton export: config.pbtxt agrees with the exported model's real signature and the bundle."""

import json
import re

import numpy as np
import onnxruntime as ort
import pytest

from intent_edge.errors import BundleError
from intent_edge.runtime.encoder import Encoder
from intent_edge.triton import export_triton

_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16"}


def parse_tensors(config: str, section: str) -> list[dict]:
    block = re.search(rf"^{section} \[\n(.*?)\n\]", config, re.S | re.M).group(1)
    return [{"name": m.group(1), "data_type": m.group(2), "dims": [int(d) for d in m.group(3).split(",")]}
            for m in re.finditer(r'name: "([^"]+)"\s+data_type: (\w+)\s+dims: \[ ([^\]]*) \]', block)]


def test_config_matches_the_model_it_ships_with(tiny_bundle, tmp_path):
    repository = tmp_path / "repo"
    model_dir = export_triton(tiny_bundle, repository, model_name="shoppers", max_batch_size=512, instances=2)
    config = (model_dir / "config.pbtxt").read_text()
    assert re.search(r'^name: "shoppers"$', config, re.M) and 'backend: "onnxruntime"' in config
    assert "max_batch_size: 512" in config and "count: 2" in config and "kind: KIND_CPU" in config
    assert "dynamic_batching {" in config
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    for section, tensors in (("input", session.get_inputs()), ("output", session.get_outputs())):
        declared = parse_tensors(config, section)
        assert [(d["name"], d["data_type"], d["dims"]) for d in declared] == [
            (t.name, _TYPES[t.type], list(t.shape[1:])) for t in tensors]
    # The guide's encoder and golden rows drive the exported model to the bundle's probabilities.
    encoder = Encoder.from_spec(json.loads((repository / "encoder.json").read_text()))
    golden = json.loads((repository / "golden.json").read_text())
    rows = encoder.encode_records([r["record"] for r in golden["rows"]])
    probabilities = session.run(None, {session.get_inputs()[0].name: rows})[0][:, 0]
    np.testing.assert_allclose(probabilities, [r["probability"] for r in golden["rows"]], atol=1e-5)
    guide = (repository / "README.md").read_text()
    assert f"width {encoder.width}" in guide and "No Triton server runs" in guide


def test_refuses_an_unknown_variant_and_a_bad_model_name(tiny_bundle, tmp_path):
    with pytest.raises(BundleError, match="use letters"):
        export_triton(tiny_bundle, tmp_path / "r", model_name="../escape")
    with pytest.raises(BundleError, match="bundle has no variant .nope."):
        export_triton(tiny_bundle, tmp_path / "r", variant="nope")
    assert not (tmp_path / "r").exists()
