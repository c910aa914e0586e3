"""The native backend (issue 24): the C export's kernel in process, from weights that train and compress
write beside each dense variant. It equals ONNX Runtime within 1e-6, the C library bit for bit, and one
Predictor runs it for predict and predict_batch alike."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from intent_edge.data.io import load_dataset
from intent_edge.errors import BackendUnavailable, BundleError
from intent_edge.runtime import Predictor
from intent_edge.runtime.backends import BACKENDS, backend_for
from intent_edge.runtime.bundle import read_manifest, resolve_file

requires_native = pytest.mark.skipif(not BACKENDS["native"].is_available(),
                                     reason="the native extension was not built (no C compiler at install time)")


@pytest.fixture(scope="module")
def records(synthetic_csv):
    return load_dataset(synthetic_csv).features.iloc[:400].to_dict("records")


@requires_native
def test_auto_picks_native_and_it_equals_onnxruntime(tiny_bundle, records):
    manifest = read_manifest(tiny_bundle)
    assert "native" in manifest["variants"]["fp32"]  # train writes the weights beside the fp32 graph
    native, interpreter = Predictor.load(tiny_bundle), Predictor.load(tiny_bundle, backend="onnxruntime")
    assert native.runner.description.startswith("native")
    single = np.array([native.predict(r) for r in records], dtype=np.float32)
    batch = native.predict_batch(records)
    assert np.array_equal(single, batch)  # one backend for both paths: they never disagree
    np.testing.assert_allclose(batch, interpreter.predict_batch(records), rtol=0, atol=1e-6)


@requires_native
def test_predict_is_one_compiled_call_that_hands_bad_records_to_the_checked_path(tiny_bundle, records):
    import weakref
    from concurrent.futures import ThreadPoolExecutor

    from intent_edge.errors import RecordError
    from intent_edge.runtime.encoder import _fastencode

    if _fastencode is None:
        pytest.skip("the fast encoder was not built (no C compiler at install time)")
    native = Predictor.load(tiny_bundle, backend="native")
    assert type(native.predict).__name__ == "builtin_function_or_method"  # the fused encoder and network
    reference = native.predict_batch(records)
    numeric = next(f.name for f in native.encoder.features if f.to_spec()["kind"] == "numeric")
    categorical = next(f.name for f in native.encoder.features if f.to_spec()["kind"] == "categorical")
    with pytest.raises(RecordError) as missing:
        native.predict({k: v for k, v in records[0].items() if k != numeric})
    assert missing.value.field == numeric
    with pytest.raises(RecordError) as nan:
        native.predict({**records[0], numeric: float("nan")})
    assert nan.value.field == numeric
    unseen = {**records[0], categorical: "never-seen-before"}  # the checked path's out-of-vocabulary bucket
    assert native.predict(unseen) == pytest.approx(float(native.predict_batch([unseen])[0]), abs=0)
    native.strict = False  # setting strict binds predict again: empties are imputed now
    assert np.isfinite(native.predict({**records[0], numeric: None}))
    native.strict = True
    with pytest.raises(RecordError):
        native.predict({**records[0], numeric: None})
    with ThreadPoolExecutor(4) as pool:  # row and scratch live on each call's stack
        threaded = np.array(list(pool.map(native.predict, records)), dtype=np.float32)
    assert np.array_equal(threaded, reference)
    gone = weakref.ref(native)
    del native  # predict holds no reference back to its Predictor: it is freed without the cycle collector
    assert gone() is None


@requires_native
def test_compressed_dense_variants_get_native_weights(tiny_bundle, synthetic_csv, records, tmp_path):
    from intent_edge.compress.pipeline import compress_bundle

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    methods = ["original", "sparse-80", "onnx-fp32", "int8-dynamic"]
    manifest = compress_bundle(bundle, load_dataset(synthetic_csv), methods=methods, max_auc_drop=1.0)
    assert {"fp32", "sparse-80"} <= {v for v, e in manifest["variants"].items() if "native" in e}
    assert "native" not in manifest["variants"]["int8-dynamic"]  # the kernel runs dense fp32 graphs only
    for variant in ("fp32", "sparse-80"):
        native = Predictor.load(bundle, variant, backend="native").predict_batch(records)
        interpreter = Predictor.load(bundle, variant, backend="onnxruntime").predict_batch(records)
        np.testing.assert_allclose(native, interpreter, rtol=0, atol=1e-6)
    assert backend_for(manifest["variants"]["int8-dynamic"])[0].name == "onnxruntime"


def test_a_bundle_without_native_weights_says_to_rerun_compress(tiny_bundle, tmp_path):
    from intent_edge.runtime.bundle import write_manifest

    bundle = tmp_path / "old"
    shutil.copytree(tiny_bundle, bundle)
    manifest = read_manifest(bundle)
    manifest["variants"]["fp32"].pop("native", None)
    write_manifest(bundle, manifest)
    with pytest.raises(BackendUnavailable, match="no native weights file; rerun `intent-edge compress`"):
        Predictor.load(bundle, backend="native")
    assert Predictor.load(bundle).runner.description.startswith("onnxruntime")  # auto falls back


def test_a_damaged_weights_file_is_refused(tmp_path):
    from intent_edge.runtime.native import read_weights

    path = tmp_path / "w.npz"
    np.savez(path, format_version=np.array([1]), activations=np.array([1, 2]),
             weights_0=np.ones((4, 3), np.float32), bias_0=np.ones(3, np.float32),
             weights_1=np.ones((2, 1), np.float32), bias_1=np.ones(1, np.float32))
    with pytest.raises(BundleError, match="do not chain"):
        read_weights(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a readable native weights file"):
        read_weights(path)
    np.savez(path, format_version=np.array([99]))
    with pytest.raises(BundleError, match="native weights version 99 is not supported"):
        read_weights(path)


def test_a_damaged_step_weights_file_is_refused(tmp_path):
    """The clickstream step's weights are read the same guarded way: another version, a missing array or
    an unknown kind is a BundleError naming the file."""
    from intent_edge.export.c_stream import read_step_weights

    path = tmp_path / "step.native.npz"
    np.savez(path, format_version=np.array([99]))
    with pytest.raises(BundleError, match="step weights version 99 is not supported"):
        read_step_weights(path)
    np.savez(path, format_version=np.array([1]), embedding=np.ones((3, 2), np.float32))
    with pytest.raises(BundleError, match="not a readable step weights file"):
        read_step_weights(path)


@requires_native
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_the_native_backend_and_the_c_library_give_the_same_bits(tiny_bundle, tmp_path):
    """The int-free fp32 path: the same kernel source, so the same float32 bits, record for record."""
    from intent_edge.export.c import export_c

    export_c(tiny_bundle, tmp_path / "c")
    built = subprocess.run(["gcc", "-std=c99", "-O2", "-ffp-contract=off", "intent_edge_model.c",
                            "intent_edge_model_test.c", "-lm", "-o", "harness"], cwd=tmp_path / "c",
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    printed = subprocess.run(["./harness", "--print"], cwd=tmp_path / "c", capture_output=True, text=True).stdout
    golden = [line.split() for line in printed.splitlines()[:256]]
    predictor = Predictor.load(tiny_bundle, backend="native")
    import json

    records = [row["record"] for row in json.loads(resolve_file(tiny_bundle, read_manifest(tiny_bundle)["golden"]
                                                                ["file"]).read_text())["rows"]]
    for (status, _, hexadecimal), record in zip(golden, records, strict=True):
        assert status == "0" and float.fromhex(hexadecimal) == float(np.float32(predictor.predict(record)))


@requires_native
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_int8_variants_run_natively_with_the_c_librarys_and_litert_bits(tiny_bundle, synthetic_csv, records, tmp_path):
    """A LiteRT int8 variant on the native backend: the same integer kernel as its C library, and LiteRT's
    outputs to the bit."""
    import json

    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.export.c import export_c

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = compress_bundle(bundle, load_dataset(synthetic_csv), methods=["original", "litert-int8"],
                               max_auc_drop=1.0)
    assert "native" in manifest["variants"]["litert-int8"]
    native = Predictor.load(bundle, "litert-int8", backend="native")
    interpreter = Predictor.load(bundle, "litert-int8", backend="litert")
    assert np.array_equal(native.predict_batch(records), interpreter.predict_batch(records))
    export_c(bundle, tmp_path / "c", variant="litert-int8")
    built = subprocess.run(["gcc", "-std=c99", "-O2", "-ffp-contract=off", "intent_edge_model.c",
                            "intent_edge_model_test.c", "-lm", "-o", "harness"], cwd=tmp_path / "c",
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    printed = subprocess.run(["./harness", "--print"], cwd=tmp_path / "c", capture_output=True, text=True).stdout
    golden = json.loads(resolve_file(bundle, manifest["golden"]["file"]).read_text())["rows"]
    for line, row in zip(printed.splitlines()[:len(golden)], golden, strict=True):
        assert float.fromhex(line.split()[2]) == float(np.float32(native.predict(row["record"])))
