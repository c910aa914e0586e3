"""TensorRT engines and ONNX Runtime's GPU providers: run only on an NVIDIA host with the `tensorrt` extra
(`pip install 'intent-edge[tensorrt]'`) or onnxruntime-gpu; skipped elsewhere, with the reason."""

import importlib.util
import shutil

import numpy as np
import pytest

from intent_edge.data.io import load_dataset
from intent_edge.runtime import Predictor
from intent_edge.runtime.bundle import read_manifest
from intent_edge.runtime.trt_engine import cuda_device_count

no_tensorrt = importlib.util.find_spec("tensorrt") is None


@pytest.fixture(scope="module")
def engine_bundle(tiny_bundle, synthetic_csv, tmp_path_factory):
    from intent_edge.compress.pipeline import compress_bundle

    copy = tmp_path_factory.mktemp("gpu") / "bundle"
    shutil.copytree(tiny_bundle, copy)
    compress_bundle(copy, load_dataset(synthetic_csv), target="gpu", methods=["original", "trt-fp16", "trt-int8"])
    return copy


@pytest.mark.gpu
@pytest.mark.skipif(no_tensorrt, reason="TensorRT is not installed (extra 'tensorrt', NVIDIA hosts only)")
@pytest.mark.skipif(not no_tensorrt and cuda_device_count() == 0, reason="no NVIDIA GPU visible through cuda-python")
@pytest.mark.parametrize("variant, precision", [("trt-fp16", "fp16"), ("trt-int8", "int8")])
def test_engines_are_built_judged_and_run_in_the_runtime(engine_bundle, synthetic_csv, variant, precision):
    manifest = read_manifest(engine_bundle)
    row = next(r for r in manifest["compression"]["table"] if r["name"] == variant)
    assert row["status"] == "ok", row["status"]
    entry = manifest["variants"][variant]
    assert entry["format"] == "engine" and entry["precision"] == precision and entry["parity"]["passed"]
    assert entry["method"]["conversion"]["tensorrt"] and entry["method"]["conversion"]["profile"]["max"] == 65536
    predictor = Predictor.load(engine_bundle, variant)
    assert "TensorRT" in predictor.runner.description
    records = load_dataset(synthetic_csv).features.head(300).to_dict("records")
    fp32 = Predictor.load(engine_bundle, "fp32").predict_batch(records)
    engine = predictor.predict_batch(records)
    assert np.max(np.abs(np.asarray(engine) - np.asarray(fp32))) <= entry["parity"]["tolerance"]["max"]
    assert predictor.predict(records[0]) == pytest.approx(engine[0], abs=1e-6)


def _onnxruntime_gpu_providers() -> list[str]:
    if importlib.util.find_spec("onnxruntime") is None:
        return []
    import onnxruntime as ort

    return [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in ort.get_available_providers()]


@pytest.mark.gpu
@pytest.mark.skipif(not _onnxruntime_gpu_providers(), reason="this ONNX Runtime build has no GPU providers "
                                                            "(onnxruntime-gpu, extra 'gpu')")
@pytest.mark.skipif(_onnxruntime_gpu_providers() and cuda_device_count() == 0, reason="no NVIDIA GPU is visible")
def test_onnxruntime_takes_the_gpu_providers_it_offers(tiny_bundle):
    offered = _onnxruntime_gpu_providers()
    predictor = Predictor.load(tiny_bundle, "fp32", backend="onnxruntime")
    assert any(p in predictor.runner.description for p in offered)
