"""Raw-field ONNX graphs: raw records in, the runtime's probabilities out, with no encoder of the host's."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from intent_edge.data.io import load_dataset
from intent_edge.raw_graph import input_names, lenient_records, raw_feeds, spec_sha256
from intent_edge.runtime import Predictor
from intent_edge.runtime.backends import load_runner
from intent_edge.runtime.bundle import read_manifest, resolve_file


def _raw(bundle, variant="fp32"):
    manifest = read_manifest(bundle)
    entry = manifest["variants"][variant]["raw"]
    assert entry["status"] == "ok", entry["status"]
    return entry, load_runner("onnxruntime", resolve_file(bundle, entry["file"]))


@pytest.fixture(scope="module")
def records(synthetic_csv):
    return load_dataset(synthetic_csv).features.iloc[:400].to_dict("records")


def test_fp32_raw_graph_gives_the_runtimes_probabilities(tiny_bundle, records):
    entry, graph = _raw(tiny_bundle)
    got = graph.run(raw_feeds(records, entry["fields"]))[0]
    assert got.shape == (len(records), 1) and got.dtype == np.float32
    expected = Predictor.load(tiny_bundle).predict_batch(records)
    assert np.max(np.abs(got[:, 0] - expected)) <= 1e-5
    for mode in ("strict", "lenient"):
        assert entry["parity"][mode]["passed"] and entry["parity"][mode]["max_abs_diff"] <= 1e-5


def test_empty_values_and_unseen_categories_follow_the_lenient_runtime(tiny_bundle, records):
    entry, graph = _raw(tiny_bundle)
    predictor = Predictor.load(tiny_bundle, strict=False)
    odd = lenient_records(records[:90], predictor.encoder)
    odd[1]["Month"], odd[2]["VisitorType"], odd[4]["Weekend"] = "Smarch", "", "TRUE"
    got = graph.run(raw_feeds(odd, entry["fields"]))[0][:, 0]
    assert np.max(np.abs(got - predictor.predict_batch(odd))) <= 1e-5


def test_infinite_and_huge_numbers_are_clamped_never_nan(tiny_bundle, records):
    entry, graph = _raw(tiny_bundle)
    odd = [dict(records[0], PageValues=value) for value in (np.inf, -np.inf, 1e300, -1e300, np.nan)]
    got = graph.run(raw_feeds(odd, entry["fields"]))[0][:, 0]
    assert np.isfinite(got).all() and ((got >= 0) & (got <= 1)).all()
    # -inf and -1e300 both clamp to zero before log1p; +inf clamps at 1e6 standard deviations, where the
    # model is as saturated as at log1p(1e300) (which the clamp leaves alone)
    assert got[1] == got[3] and got[0] == pytest.approx(got[2], abs=1e-4)


def test_the_graph_describes_itself(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    entry = manifest["variants"]["fp32"]["raw"]
    model = onnx.load(str(resolve_file(tiny_bundle, entry["file"])))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["intent_edge.fields"]) == entry["fields"]
    assert float(meta["intent_edge.threshold"]) == manifest["threshold"]["value"]
    assert meta["intent_edge.encoder_sha256"] == spec_sha256(manifest["encoder"])
    assert meta["intent_edge.bundle_format_version"] == "1"
    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    kinds = manifest["schema"]["kinds"]
    assert set(inputs) == set(kinds)  # one input per schema field (the UCI names are valid tensor names)
    for field in entry["fields"]:
        wanted = onnx.TensorProto.DOUBLE if kinds[field["field"]] == "numeric" else onnx.TensorProto.STRING
        assert inputs[field["input"]] == wanted
    assert [o.name for o in model.graph.output] == ["probability"]


def test_input_names_follow_the_documented_rule():
    names = input_names(["Page Values", "1st", "features", "ie__x", "Page_Values", "ok", "Page-Values"])
    assert names == {"Page Values": "Page_Values", "1st": "f_1st", "features": "features_2", "ie__x": "f_ie__x",
                     "Page_Values": "Page_Values_2", "ok": "ok", "Page-Values": "Page_Values_3"}
    assert input_names(["state"], {"state"}) == {"state": "state_2"}


def test_a_wrong_tensor_type_is_refused_by_onnx_runtime(tiny_bundle, records):
    entry, graph = _raw(tiny_bundle)
    feeds = raw_feeds(records[:2], entry["fields"])
    feeds["Month"] = np.array([[1.0], [2.0]])
    with pytest.raises(Exception, match="(?i)type"):
        graph.run(feeds)


@pytest.fixture(scope="module")
def compressed(tiny_bundle, synthetic_csv, tmp_path_factory):
    from intent_edge.compress.pipeline import compress_bundle

    bundle = tmp_path_factory.mktemp("raw") / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    compress_bundle(bundle, load_dataset(synthetic_csv), methods=["original", "int8-dynamic", "int8-static", "fp16",
                                                                  "litert-fp32"])
    return bundle


def test_compress_writes_a_raw_graph_for_every_onnx_variant_and_carries_fp32s(compressed, records):
    manifest = read_manifest(compressed)
    assert manifest["variants"]["fp32"]["raw"]["status"] == "ok"
    assert "raw" not in manifest["variants"]["litert-fp32"]
    for name, variant in manifest["variants"].items():
        if variant["format"] != "onnx":
            continue
        entry, graph = _raw(compressed, name)
        got = graph.run(raw_feeds(records, entry["fields"]))[0][:, 0]
        encoded = Predictor.load(compressed, name).predict_batch(records)
        assert np.percentile(np.abs(got - encoded), 99) <= 2e-3, name
        assert entry["parity"]["strict"]["tolerance"]["p99"] == (1e-5 if variant["precision"] == "fp32" else 2e-3)
    assert {row["name"]: row["raw"] for row in manifest["compression"]["table"]}["int8-static"] == "ok"


def test_a_raw_graph_that_fails_parity_is_not_written_and_says_why(tiny_bundle, synthetic_csv, tmp_path,
                                                                  monkeypatch):
    from intent_edge import raw_graph
    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.parity import Tolerance

    monkeypatch.setattr(raw_graph, "raw_tolerance", lambda precision: Tolerance(p99=-1.0, max=-1.0))
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = compress_bundle(bundle, load_dataset(synthetic_csv), methods=["original", "int8-dynamic"])
    row = {r["name"]: r for r in manifest["compression"]["table"]}["int8-dynamic"]
    assert row["status"] == "ok" and row["raw"].startswith("failed parity (strict)")
    assert manifest["variants"]["int8-dynamic"]["raw"]["status"].startswith("failed parity")
    assert not (bundle / "int8-dynamic.raw.onnx").exists()
    from intent_edge.compress.report import failures

    assert any(line.startswith("int8-dynamic raw-field graph: failed parity") for line in failures(manifest))


def test_a_bundle_from_before_raw_graphs_still_compresses(tiny_bundle, synthetic_csv, tmp_path):
    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.runtime.bundle import write_manifest

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = read_manifest(bundle)
    del manifest["variants"]["fp32"]["raw"]
    (bundle / "model.raw.onnx").unlink()
    write_manifest(bundle, manifest)
    compressed = compress_bundle(bundle, load_dataset(synthetic_csv), methods=["original", "int8-dynamic"])
    assert "raw" not in compressed["variants"]["fp32"]
    assert compressed["variants"]["int8-dynamic"]["raw"]["status"] == "ok"
