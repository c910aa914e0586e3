import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from intent_edge.data.synth import generate_sessions
from intent_edge.errors import BackendUnavailable, BundleError, RecordError
from intent_edge.runtime import Predictor
from intent_edge.runtime.backends import BACKENDS, Backend
from intent_edge.runtime.bundle import read_manifest


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return Predictor.load(tiny_bundle)


@pytest.fixture(scope="module")
def frame():
    return generate_sessions(300, seed=11).drop(columns=["Revenue"])


def test_predict_single_and_batch_agree_across_input_shapes(predictor, frame):
    records = frame.to_dict("records")
    from_records = predictor.predict_batch(records)
    np.testing.assert_array_equal(predictor.predict_batch(frame), from_records)
    np.testing.assert_array_equal(predictor.predict_batch({c: frame[c].tolist() for c in frame}), from_records)
    singles = np.array([predictor.predict(r) for r in records[:50]], dtype=np.float32)
    np.testing.assert_allclose(singles, from_records[:50], atol=1e-7)
    assert ((from_records > 0) & (from_records < 1)).all()


def test_decide_applies_the_bundle_threshold(predictor, frame):
    records = frame.to_dict("records")
    probabilities = predictor.predict_batch(records)
    np.testing.assert_array_equal(predictor.decide(records), probabilities >= predictor.threshold)
    assert predictor.decide(records[0]) == (predictor.predict(records[0]) >= predictor.threshold)


def test_unknown_category_goes_to_the_oov_bucket(predictor, frame):
    record = {**frame.to_dict("records")[0], "Browser": 999, "Month": "Smarch"}
    assert 0 < predictor.predict(record) < 1


def test_missing_and_mistyped_fields_are_named(predictor, frame):
    record = frame.to_dict("records")[0]
    with pytest.raises(RecordError, match="field 'PageValues': missing from the record"):
        predictor.predict({k: v for k, v in record.items() if k != "PageValues"})
    with pytest.raises(RecordError, match="field 'ExitRates': expected a number, got str 'high'"):
        predictor.predict({**record, "ExitRates": "high"})
    with pytest.raises(RecordError, match="record at index 1: field 'Month': is empty"):
        predictor.predict_batch([record, {**record, "Month": None}])
    with pytest.raises(RecordError, match="use predict"):
        predictor.predict_batch(record)


def test_extra_fields_are_ignored(predictor, frame):
    record = frame.to_dict("records")[0]
    assert predictor.predict({**record, "session_id": "abc"}) == predictor.predict(record)


def test_lenient_predictor_imputes(tiny_bundle, frame):
    record = {**frame.to_dict("records")[0], "PageValues": None}
    assert 0 < Predictor.load(tiny_bundle, strict=False).predict(record) < 1


def test_many_threads_get_the_same_answers(predictor, frame):
    records = frame.to_dict("records")
    expected = [predictor.predict(r) for r in records]
    results, errors = {}, []

    def work(worker):
        try:
            results[worker] = [predictor.predict(r) for r in records]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results[i] == expected for i in range(8))


def test_runtime_never_imports_tensorflow(tiny_bundle):
    code = f"""
import sys
from intent_edge.runtime import Predictor
from intent_edge.data.synth import generate_sessions
p = Predictor.load({str(tiny_bundle)!r})
record = generate_sessions(3, seed=1).drop(columns=['Revenue']).to_dict('records')[0]
assert 0 < p.predict(record) < 1
heavy = sorted(m for m in ('tensorflow', 'keras', 'tf2onnx', 'sklearn') if m in sys.modules)
print(heavy)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _copy(tiny_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


# each backend's own file: the ONNX graph, and the native backend's weights
MODEL_FILES = [("model.onnx", "onnxruntime"), ("fp32.native.npz", "native")]


@pytest.mark.parametrize("name, backend", MODEL_FILES)
def test_flipped_byte_in_the_model_is_refused(tiny_bundle, tmp_path, name, backend):
    bundle = _copy(tiny_bundle, tmp_path)
    data = bytearray((bundle / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{name} is damaged: its sha256 does not match"):
        Predictor.load(bundle, backend=backend)


@pytest.mark.parametrize("name, backend", MODEL_FILES)
def test_truncated_model_is_refused(tiny_bundle, tmp_path, name, backend):
    bundle = _copy(tiny_bundle, tmp_path)
    data = (bundle / name).read_bytes()
    (bundle / name).write_bytes(data[:100])
    with pytest.raises(BundleError, match=f"{name} is damaged: 100 bytes"):
        Predictor.load(bundle, backend=backend)


def _edit_manifest(bundle, change):
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_future_manifest_version_is_refused(tiny_bundle, tmp_path):
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_manifest(bundle, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="bundle format version 99 is not supported"):
        Predictor.load(bundle)


@pytest.mark.parametrize("key, backend", [("file", "onnxruntime"), ("native", "native")])
def test_manifest_paths_cannot_leave_the_bundle(tiny_bundle, tmp_path, key, backend):
    bundle = _copy(tiny_bundle, tmp_path)
    inside = read_manifest(bundle)["variants"]["fp32"][key]["path"]
    shutil.copy(bundle / inside, tmp_path / "outside")
    _edit_manifest(bundle, lambda m: m["variants"]["fp32"][key].update(path="../outside"))
    with pytest.raises(BundleError, match="not a plain file name in the bundle"):
        Predictor.load(bundle, backend=backend)


def test_missing_or_damaged_manifest(tiny_bundle, tmp_path):
    with pytest.raises(BundleError, match="no such bundle directory"):
        Predictor.load(tmp_path / "nothing")
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "manifest.json").write_text('{"format": "intent-edge-bundle", ')
    with pytest.raises(BundleError, match="damaged, not valid JSON"):
        Predictor.load(bundle)


def test_unknown_variant_lists_the_ones_there(tiny_bundle):
    with pytest.raises(BundleError, match="no variant 'int8'; it has: fp32"):
        Predictor.load(tiny_bundle, variant="int8")


def test_encoder_width_must_match_the_model(tiny_bundle, tmp_path):
    bundle = _copy(tiny_bundle, tmp_path)

    def drop_last_category(manifest):
        feature = manifest["encoder"]["features"][-1]
        feature["vocabulary"] = feature["vocabulary"][:-1]
        feature["width"] -= 1
        manifest["encoder"]["width"] -= 1

    _edit_manifest(bundle, drop_last_category)
    with pytest.raises(BundleError, match="the encoder produces float \\[batch, "):
        Predictor.load(bundle)


def test_missing_backend_library_says_which_extra_to_install(tiny_bundle, monkeypatch):
    monkeypatch.setitem(BACKENDS, "onnxruntime", Backend("onnxruntime", "onnx", "onnxruntime_not_installed",
                                                         BACKENDS["onnxruntime"].install_hint,
                                                         BACKENDS["onnxruntime"].load))
    with pytest.raises(BackendUnavailable, match=r"pip install 'intent-edge\[cpu\]'"):
        Predictor.load(tiny_bundle, backend="onnxruntime")


def test_cpu_and_gpu_onnxruntime_together_are_refused(tiny_bundle, monkeypatch):
    from intent_edge.runtime import backends

    monkeypatch.setattr(backends, "onnxruntime_distributions", lambda: ["onnxruntime", "onnxruntime-gpu"])
    with pytest.raises(BackendUnavailable, match="both onnxruntime and onnxruntime-gpu are installed"):
        Predictor.load(tiny_bundle, backend="onnxruntime")


def test_providers_are_asked_for_in_order_and_checked(tiny_bundle, monkeypatch):
    import onnxruntime as ort

    asked = {}
    real_session = ort.InferenceSession

    def recording_session(path, sess_options=None, providers=None):
        asked["providers"] = providers
        return real_session(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", recording_session)
    predictor = Predictor.load(tiny_bundle, backend="onnxruntime")
    assert asked["providers"] == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert "offered but not taken: TensorrtExecutionProvider, CUDAExecutionProvider" in predictor.runner.description
