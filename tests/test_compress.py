"""Compression on a tiny model: each technique really does what it says, and parity really guards."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from intent_edge.cli import app
from intent_edge.compress.report import compression_markdown
from intent_edge.data.io import load_dataset
from intent_edge.errors import DataError
from intent_edge.runtime import Predictor
from intent_edge.runtime.bundle import read_manifest
from intent_edge.runtime.encoder import Encoder

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def rows(tiny_bundle, synthetic_csv):
    from intent_edge.compress.pipeline import evaluation_rows

    manifest = read_manifest(tiny_bundle)
    return evaluation_rows(manifest, load_dataset(synthetic_csv), Encoder.from_spec(manifest["encoder"]))


@pytest.fixture(scope="module")
def original(tiny_bundle):
    return keras.saving.load_model(tiny_bundle / "model.keras", safe_mode=True, compile=False)


@pytest.fixture(scope="module")
def recipe(tiny_recipe):
    return tiny_recipe


def test_magnitude_pruning_reaches_its_sparsity(original, rows, recipe):
    from intent_edge.compress.pruning import magnitude_prune, sparsity

    assert sparsity(original) < 0.05
    pruned = magnitude_prune(original, 0.8, (*rows.fit, *rows.validation), recipe, 0, ramp_epochs=2)
    assert 0.79 <= sparsity(pruned) <= 0.85
    assert sparsity(original) < 0.05  # the original is left alone


def test_structured_pruning_gives_a_smaller_model(original, rows, recipe, tmp_path):
    from intent_edge.compress.pruning import prune_units
    from intent_edge.train.export import export_onnx

    smaller, smaller_recipe = prune_units(original, 0.5, (*rows.fit, *rows.validation), recipe, 0)
    assert list(smaller_recipe.hidden) == [8, 4] and list(recipe.hidden) == [16, 8]
    assert smaller.count_params() < 0.6 * original.count_params()
    width = rows.fit[0].shape[1]
    export_onnx(original, width, tmp_path / "a.onnx")
    export_onnx(smaller, width, tmp_path / "b.onnx")
    assert (tmp_path / "b.onnx").stat().st_size < (tmp_path / "a.onnx").stat().st_size


def test_unit_importance_keeps_the_units_that_matter(original, rows):
    from intent_edge.compress.pruning import unit_importance

    scores = unit_importance(original, rows.fit[0][:500])
    assert [s.shape for s in scores] == [(16,), (8,)]
    assert all((s >= 0).all() for s in scores)


def test_quantized_models_really_hold_int8(tiny_bundle, rows, original, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from intent_edge.compress import litert, quantize

    source = tiny_bundle / "model.onnx"
    quantize.int8_static(source, tmp_path / "s.onnx", rows.fit[0])
    quantize.int8_dynamic(source, tmp_path / "d.onnx")
    quantize.fp16(source, tmp_path / "h.onnx")
    assert "INT8" in quantize.initializer_types(tmp_path / "s.onnx")
    assert "INT8" in quantize.initializer_types(tmp_path / "d.onnx")
    assert set(quantize.initializer_types(tmp_path / "h.onnx")) == {"FLOAT16"}
    from intent_edge.runtime.backends import BACKENDS

    for name in ("s.onnx", "d.onnx", "h.onnx"):  # each passes the runtime's checks (onnx.checker included)
        runner = BACKENDS["onnxruntime"].load_model(tmp_path / name, rows.fit[0].shape[1])
        assert np.isfinite(runner.infer(rows.fit[0][:10])).all()
    litert.litert_int8(original, tmp_path / "q.tflite", rows.fit[0], rows=100)
    tensors = Interpreter(model_path=str(tmp_path / "q.tflite")).get_tensor_details()
    assert any(t["dtype"] == np.int8 for t in tensors)


def test_litert_conversion_leaves_no_saved_model_behind(original, rows, tmp_path, monkeypatch):
    """Each conversion exports a SavedModel to a temporary directory first; it must go when the
    conversion ends (it did not: every compress left two in /tmp)."""
    import tempfile

    from intent_edge.compress import litert

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    litert.litert_fp32(original, tmp_path / "f.tflite")
    litert.litert_int8(original, tmp_path / "q.tflite", rows.fit[0], rows=20)
    assert (tmp_path / "f.tflite").stat().st_size > 0 and (tmp_path / "q.tflite").stat().st_size > 0
    # (TensorFlow's autograph writes its own generated sources there too; those are not ours to remove)
    assert [p.name for p in scratch.iterdir() if p.name.startswith("intent-edge-")] == []


def test_parity_check_fails_on_a_corrupted_variant(tiny_bundle, rows, tmp_path):
    import onnx
    from onnx import numpy_helper

    from intent_edge.parity import compare
    from intent_edge.runtime.backends import BACKENDS

    model = onnx.load(str(tiny_bundle / "model.onnx"))
    largest = max(model.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)
    damaged = numpy_helper.to_array(largest).copy()
    damaged.flat[: damaged.size // 10] *= -1.0
    largest.CopyFrom(numpy_helper.from_array(damaged, largest.name))
    onnx.save(model, str(tmp_path / "damaged.onnx"))
    width = rows.parity_x.shape[1]
    good = BACKENDS["onnxruntime"].load_model(tiny_bundle / "model.onnx", width).infer(rows.parity_x)
    assert compare(good, good, "fp32").passed
    bad = BACKENDS["onnxruntime"].load_model(tmp_path / "damaged.onnx", width).infer(rows.parity_x)
    figures = compare(good, bad, "int8")
    assert not figures.passed and figures.max_abs_diff > 0.02


def test_compress_adds_proven_variants_and_recommends_one(tiny_bundle, synthetic_csv, tmp_path, monkeypatch):
    from intent_edge.compress import litert, pipeline, quantize

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)

    real_fp16 = quantize.fp16

    def broken_fp16(source, target):  # a conversion whose output is wrong must not be written
        result = real_fp16(source, target)
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(target))
        for tensor in model.graph.initializer:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * 3, tensor.name))
        onnx.save(model, str(target))
        return result

    monkeypatch.setattr(quantize, "fp16", broken_fp16)
    real_litert_int8 = litert.litert_int8

    def broken_litert_int8(model, target, calibration, rows):  # LiteRT re-reads its file for each batch size
        import keras

        damaged = keras.models.clone_model(model)
        damaged.set_weights([w * 3 for w in model.get_weights()])
        return real_litert_int8(damaged, target, calibration, rows=rows)

    monkeypatch.setattr(litert, "litert_int8", broken_litert_int8)
    manifest = pipeline.compress_bundle(bundle, load_dataset(synthetic_csv), target="cpu",
                                        methods=["original", "units-50", "int8-static", "fp16", "litert-int8",
                                                 "onnx-fp32"])
    table = {row["name"]: row for row in manifest["compression"]["table"]}
    assert set(table) == {"fp32", "int8-static", "fp16", "litert-int8", "units-50", "units-50-int8-static",
                          "units-50-litert-int8"}
    for failed, file in (("fp16", "fp16.onnx"), ("litert-int8", "litert-int8.tflite"),
                         ("units-50-litert-int8", "units-50-litert-int8.tflite")):
        assert table[failed]["status"].startswith("failed parity"), table[failed]["status"]
        assert failed not in manifest["variants"] and not (bundle / file).exists()
        assert table[failed]["latency_us"] is None  # a variant that failed is not timed
    recommended = manifest["compression"]["recommended"]
    assert manifest["default_variant"] == recommended and recommended in manifest["variants"]
    assert table[recommended]["delta_roc_auc"] >= -0.003
    on_disk = read_manifest(bundle)
    assert on_disk["default_variant"] == recommended
    records = load_dataset(synthetic_csv).features.iloc[:50].to_dict("records")
    for name, variant in on_disk["variants"].items():
        predictor = Predictor.load(bundle, variant=name)
        assert np.isfinite(predictor.predict_batch(records)).all()
        if name != "fp32":
            assert variant["parity"]["passed"] and variant["accuracy"]["rows"] > 0
    assert Predictor.load(bundle).variant == recommended
    assert (bundle / "units-50.keras").exists()
    # output levels come from each graph's output quantisation; ties are counted on the held-out rows
    levels = {name: v["output"]["levels"] for name, v in on_disk["variants"].items()}
    assert levels == {"fp32": None, "units-50": None, "int8-static": 256, "units-50-int8-static": 256}
    assert table["int8-static"]["tie_share"] == on_disk["variants"]["int8-static"]["output"]["tie_share"]
    assert table["int8-static"]["tie_share"] > table["fp32"]["tie_share"] and table["fp32"]["tie_share"] < 0.05
    assert "tie share" in compression_markdown(on_disk, "intent-edge compress x")
    result = CliRunner().invoke(app, ["info", str(bundle)], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "256 (" in result.output and "float32 (" in result.output, result.output


def test_output_levels_and_tie_share_are_counted():
    from intent_edge.compress.levels import quantised_levels, tie_share

    assert quantised_levels(np.int8, 1 / 256, -128) == 256  # LiteRT's int8 logistic
    assert quantised_levels(np.uint8, 1 / 255, 0) == 256
    assert quantised_levels(np.int8, 1 / 256, 0) == 128  # only the non-negative half lies in [0, 1]
    assert tie_share(np.array([0.1, 0.2, 0.2, 0.3, 0.3, 0.3], dtype=np.float32)) == pytest.approx(5 / 6)
    assert tie_share(np.array([0.1, 0.2])) == 0.0


def test_compress_refuses_other_data(tiny_bundle, tmp_path):
    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.data.io import write_table
    from intent_edge.data.synth import generate_sessions

    other = tmp_path / "other.csv"
    write_table(generate_sessions(300, seed=99), other)
    with pytest.raises(DataError, match="not the file the bundle was trained on"):
        compress_bundle(tiny_bundle, load_dataset(other), methods=["int8-static"])
    before = json.loads((tiny_bundle / "manifest.json").read_text())
    assert "compression" not in before


def test_unknown_method_and_gpu_target_are_explained():
    import importlib.util

    from intent_edge.compress.registry import plan_for
    from intent_edge.errors import BackendUnavailable

    with pytest.raises(ValueError, match="unknown compression method"):
        plan_for("cpu", ["int4"])
    assert ("units-50", "litert-int8") in [(s.name, c.name) for s, c in plan_for("litert", None)]
    if importlib.util.find_spec("tensorrt") is None:  # this host cannot build engines: said so, with the extra
        with pytest.raises(BackendUnavailable, match=r"tensorrt.*intent-edge\[tensorrt\]"):
            plan_for("gpu", None)


def test_engine_precision_comes_from_the_onnx_model_on_tensorrt_11_and_from_flags_on_10():
    from intent_edge.compress.tensorrt import engine_source

    assert [engine_source(p, 11) for p in ("fp32", "fp16", "int8")] == ["fp32", "fp16", "qdq"]
    assert [engine_source(p, 10) for p in ("fp32", "fp16", "int8")] == ["fp32", "fp32", "qdq"]
    with pytest.raises(ValueError, match="unknown engine precision"):
        engine_source("int4", 11)


def test_near_ties_in_speed_go_to_the_smaller_file_inside_the_auc_budget():
    from intent_edge.compress.pipeline import TIE_BAND, VariantRow, recommend

    def row(name, p50, throughput, size, delta=0.0, status="ok"):
        return VariantRow(name, "original", name, "onnx", "fp32", status=status, bytes=size, delta_roc_auc=delta,
                          latency_us={"p50": p50}, throughput_rows_s=throughput)

    table = [row("original", 10.0, 100.0, 30_000), row("fast-big", 4.0, 400.0, 25_000),
             row("near-small", 4.0 * (1 + TIE_BAND * 0.9), 400.0 / (1 + TIE_BAND * 0.9), 7_000),
             row("slow-tiny", 4.0 * (1 + TIE_BAND * 2), 200.0, 1_000),
             row("fastest-but-inaccurate", 1.0, 900.0, 500, delta=-0.01), row("broken", 0.5, 999.0, 10, status="x")]
    assert recommend(table, "latency", 0.003).name == "near-small"
    assert recommend(table, "throughput", 0.003).name == "near-small"
    assert recommend(table, "latency", 0.02).name == "fastest-but-inaccurate"
