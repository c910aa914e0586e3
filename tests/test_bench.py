"""The benchmark's mechanics (no timing is asserted: timings belong in benchmarks/, not in tests)."""

import json
import os
import shutil

import numpy as np
import pytest

from intent_edge.bench import percentiles, render_markdown, run_benchmark, time_each, write_plots
from intent_edge.data.io import load_dataset
from intent_edge.runtime.bundle import read_manifest


def test_percentiles_are_numpy_percentiles_in_microseconds():
    samples = np.arange(1, 10001) * 1000  # 1..10000 µs in ns
    result = percentiles(samples)
    assert result == pytest.approx({"p50": 5000.5, "p90": 9000.1, "p99": 9900.01, "p99.9": 9990.001})


def test_time_each_times_every_item_once_after_warmup():
    seen = []
    samples = time_each(seen.append, list(range(50)), warmup=10)
    assert len(samples) == 50 and (samples > 0).all()
    assert seen == list(range(10)) + list(range(50))


@pytest.fixture(scope="module")
def bundle_with_litert(tiny_bundle, synthetic_csv, tmp_path_factory):
    from intent_edge.compress.pipeline import compress_bundle

    bundle = tmp_path_factory.mktemp("bench") / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    compress_bundle(bundle, load_dataset(synthetic_csv), methods=["original", "litert-fp32"])
    return bundle


def test_report_lists_every_variant_and_backend_with_its_figures(bundle_with_litert, synthetic_csv, tmp_path):
    records = load_dataset(synthetic_csv).features.iloc[:300].to_dict("records")
    report = run_benchmark(bundle_with_litert, records, batch_sizes=(1, 16), raw_batch_sizes=(1, 1000),
                           keras_baseline=True, keras_predict_rows=5, measure_cold_start=False)
    listed = {(row["variant"], row["backend"]) for row in report["rows"]}
    assert listed == {("fp32", "onnxruntime"), ("fp32", "native"), ("litert-fp32", "litert")}
    for row in report["rows"]:
        assert row["status"] == "ok" and row["configuration"]
        assert set(row["predict_us"]) == set(row["invoke_us"]) == {"p50", "p90", "p99", "p99.9"}
        assert row["predict_us"]["p50"] <= row["predict_us"]["p99.9"]
        assert set(row["throughput_rows_s"]) == {"1", str(os.cpu_count())}
        assert all(set(series) == {"1", "16"} for series in row["throughput_rows_s"].values())
        # raw-record batches repeat the 300 records up to 1,000; the model alone is faster than encoder + model
        assert 0 < row["predict_us"]["p50"] < row["explain_us"]["p50"] <= row["explain_us"]["p99"]
        assert set(row["raw_batch_rows_s"]) == {"1", "1000"}
        assert all(0 < cell["raw"] < cell["encoded"] for cell in row["raw_batch_rows_s"].values())
    keras = report["baselines"]["keras"]
    assert keras["predict_rows"] == 5 and "model(x" in keras["configuration"]
    assert "predict_p50_over_bare_onnxruntime_p50" in report["bars"]
    assert "predict_p50_over_bare_litert_invoke_p50" in report["bars"]
    default = read_manifest(bundle_with_litert)["default_variant"]  # chosen by timing: either may win
    own = {"fp32": {"bare native kernel call (fp32)"}, "litert-fp32": set()}[default]
    assert set(report["interleaved"]) == {f"predict ({default})", "bare onnxruntime session.run (fp32)",
                                          "bare LiteRT invoke (litert-fp32)", "predict (fp32 on the native backend)",
                                          "bare LiteRT set_tensor + invoke + get_tensor (litert-fp32)",
                                          "empty call (the clock and the loop alone)", *own}
    key = "native_fp32_predict_p50_over_bare_litert_fp32_invoke_p50"
    measured, net = report["bars"][key], report["bars"][f"{key}_net_of_clock"]
    assert 0 < net < measured or measured >= 1  # the same overhead taken from both sides lowers a ratio below 1
    monitoring = report["monitoring"]  # on and off, interleaved: the cost is a difference in one run
    assert monitoring["predict_p50_us"]["on"] > 0 and monitoring["predict_batch_rows_s"]["on"] > 0
    assert report["bars"]["monitoring_predict_p50_cost_us"] == pytest.approx(
        monitoring["predict_p50_us"]["on"] - monitoring["predict_p50_us"]["off"])
    assert report["encoder"] in ("compiled fast path", "pure Python (fast path not built)")
    json.dumps(report)  # the JSON report is plain JSON
    raw = {row["variant"]: row for row in report["raw"]}
    assert set(raw) == {"fp32"}  # the LiteRT variant has no raw-field graph
    assert set(raw["fp32"]["throughput_rows_s"]) == set(raw["fp32"]["encoded_fp32_rows_s"]) == {"1", "16"}
    assert 0 < raw["fp32"]["call_us"]["p50"] <= raw["fp32"]["call_us"]["p99.9"]
    text = render_markdown(report, "intent-edge bench x")
    assert "| fp32 / onnxruntime | ok |" in text and "keras model(x)" in text
    assert "Raw-field graphs" in text and "x encoded fp32" in text
    assert "Raw-record batches" in text and "| batch 1,000 |" in text
    assert "Explanations: `explain(record)`" in text and "antithetic permutations (4 per background row)" in text
    assert [p.name for p in write_plots(report, tmp_path)] == ["latency.png", "throughput.png"]


def test_unavailable_backend_keeps_its_row(bundle_with_litert, synthetic_csv, monkeypatch):
    from intent_edge.runtime import backends

    original = backends.BACKENDS["litert"]
    monkeypatch.setitem(backends.BACKENDS, "litert", backends.Backend("litert", "tflite", "no_such_module_here",
                                                                      original.install_hint, original.load))
    records = load_dataset(synthetic_csv).features.iloc[:200].to_dict("records")
    report = run_benchmark(bundle_with_litert, records, batch_sizes=(1,), raw_batch_sizes=(1,), keras_baseline=False,
                           measure_cold_start=False)
    row = next(r for r in report["rows"] if r["backend"] == "litert")
    assert row["status"].startswith("unavailable: pip install")


def test_cold_start_runs_a_fresh_runtime_process(tiny_bundle, synthetic_csv):
    from intent_edge.bench import cold_start

    records = load_dataset(synthetic_csv).features.iloc[:50].to_dict("records")
    figures = cold_start("runtime", tiny_bundle, "fp32", records)
    assert figures["seconds_to_first_prediction"] > 0 and 10 < figures["peak_rss_mib"] < 2000


def test_gpu_bar_compares_the_best_engine_with_onnxruntime_at_the_largest_batch():
    from intent_edge.bench.sessions import _bars

    def row(variant, backend, fmt, one, many):
        return {"variant": variant, "backend": backend, "format": fmt, "status": "ok", "configuration": backend,
                "throughput_rows_s": {"1": {"4096": one, "65536": one}, "16": {"4096": many, "65536": many}}}

    report = {"batch_sizes": [1, 4096, 65536], "cold_start": {}, "interleaved": {},
              "rows": [row("fp32", "onnxruntime", "onnx", 1e6, 4e6), row("trt-fp16", "tensorrt", "engine", 8e7, 8e7),
                       row("trt-int8", "tensorrt", "engine", 6e7, 6e7)]}
    variants = {v: {"accuracy": {"delta_roc_auc": 0.0}} for v in ("fp32", "trt-fp16", "trt-int8")}
    bars = _bars(report, {"variants": variants})
    assert bars["tensorrt_variant"] == "trt-fp16"
    assert bars["tensorrt_throughput_over_onnxruntime_fp32_batch65536"] == 20.0  # against ORT on all 16 threads
    assert "16 thread(s), batch 65536" in bars["onnxruntime_fp32_configuration"]


def test_the_runtime_overhead_ratio_divides_by_the_default_variants_own_bare_call():
    """With an int8 default, the like-for-like ratio uses the int8 graph's bare call; the fp32 one stays."""
    from intent_edge.bench.report import bar_line
    from intent_edge.bench.sessions import _bars

    interleaved = {"predict (litert-int8)": {"p50": 3.0}, "bare onnxruntime session.run (fp32)": {"p50": 6.0},
                   "bare LiteRT invoke (litert-fp32)": {"p50": 2.0}, "bare LiteRT invoke (litert-int8)": {"p50": 1.5}}
    bars = _bars({"rows": [], "cold_start": {}, "interleaved": interleaved}, {"variants": {}})
    assert bars == {"predict_p50_over_own_variant_bare_invoke_p50": 2.0,
                    "predict_p50_over_bare_onnxruntime_p50": 0.5,
                    "predict_p50_over_bare_litert_invoke_p50": 1.5}
    assert bar_line("predict_p50_over_own_variant_bare_invoke_p50", 2.0).startswith("runtime overhead: ")
