"""`intent-edge bench` on a session bundle: latency, throughput, cold start and memory of every backend and
variant, side by side with plain Keras, measured in one run on this host.

What is measured (all timings with warm-up, percentiles rather than means):

* ``predict``: end to end, raw record dict in, probability out, through :class:`Predictor` (one
  thread), over distinct records.
* ``invoke``: the bare backend call on one ready encoded row (ONNX Runtime ``session.run``, LiteRT
  ``invoke``, Keras ``model(x)`` and ``model.predict``), over distinct rows.
* ``explain``: ``Predictor.explain(record)`` against the bundle's background, default estimator, over
  up to 500 distinct records (where the bundle has a background).
* throughput: encoded rows per second at batch sizes 1 to 65,536, with one thread and with all cores.
* raw-record batches: ``predict_batch`` on a DataFrame of raw records (encoder + model, one thread) at
  batch sizes 1 to 1,000,000, beside the model alone on the same rows encoded, measured in one loop.
  Batches larger than the distinct records repeat them; the encoder's work per row does not depend
  on repeats (its category lookups run per distinct value, of which a column has few either way).
* cold start: a new Python process, from spawn to its first prediction (imports included), and the
  peak resident memory of that process after serving 1,000 predictions: the runtime against Keras.

Every model file is verified against the manifest before it is opened, in this process and in the
cold-start children (which get the verified path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from intent_edge.runtime.encoder import _fastencode
from intent_edge.timing import (
    BATCH_SIZES,
    RAW_BATCH_SIZES,
    host_description,
    percentiles,
    rows_per_second,
    time_each,
)

NATIVE_PREDICT = "predict (fp32 on the native backend)"
# the compiled path's yardstick: a ready row through LiteRT, set_tensor + invoke + get_tensor
LITERT_ROUND_TRIP = "bare LiteRT set_tensor + invoke + get_tensor (litert-fp32)"
# A call that does nothing, timed in the same loop: what the clock and the loop add to every other sample.
EMPTY_CALL = "empty call (the clock and the loop alone)"
EXPLAIN_RECORDS = 500  # about a millisecond each

# Peak resident memory of the child: VmHWM, which starts afresh at exec. (getrusage's ru_maxrss does not
# on Linux: it keeps the high-water mark of the forked parent, which here has TensorFlow loaded.)
_PEAK = """
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

_RUNTIME_CHILD = _PEAK + """
import json, sys
from intent_edge.runtime import Predictor
records = json.loads(sys.stdin.readline())
predictor = Predictor.load(sys.argv[1], sys.argv[2], threads=1)
predictor.predict(records[0])
print("ready", flush=True)
for i in range(1000):
    predictor.predict(records[i % len(records)])
print(peak_kib(), flush=True)
"""

_KERAS_CHILD = _PEAK + """
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from intent_edge.runtime.encoder import Encoder
records = json.loads(sys.stdin.readline())
manifest = json.load(open(os.path.join(sys.argv[1], "manifest.json")))
encoder = Encoder.from_spec(manifest["encoder"])
model = keras.saving.load_model(sys.argv[3], safe_mode=True, compile=False)
model(encoder.encode_records(records[:1]), training=False)
print("ready", flush=True)
for i in range(1000):
    model(encoder.encode_records([records[i % len(records)]]), training=False)
print(peak_kib(), flush=True)
"""


def cold_start(kind: str, bundle: Path, variant: str, records: list[dict]) -> dict:
    """Seconds from spawning a fresh interpreter to its first prediction, and its peak RSS (MiB). The
    runtime child verifies the bundle itself; the Keras child gets the source model's verified path."""
    import json

    from intent_edge.runtime.bundle import read_manifest, resolve_file

    code, arguments = _RUNTIME_CHILD, [str(bundle), variant]
    if kind == "keras":
        source = resolve_file(bundle, read_manifest(bundle)["source_model"]["file"])
        code, arguments = _KERAS_CHILD, [*arguments, str(source)]
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code, *arguments], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    child.stdin.write(json.dumps(records[:1000]) + "\n")
    child.stdin.flush()
    first = child.stdout.readline().strip()
    ready = time.perf_counter() - started
    peak_kib = child.stdout.readline().strip()
    child.wait(timeout=300)
    if first != "ready" or child.returncode != 0:
        raise RuntimeError(f"the {kind} cold-start process failed (exit {child.returncode})")
    return {"seconds_to_first_prediction": ready, "peak_rss_mib": int(peak_kib) / 1024.0}


def run_benchmark(bundle: str | Path, records: list[dict], *, batch_sizes=BATCH_SIZES,
                  raw_batch_sizes=RAW_BATCH_SIZES, keras_baseline: bool = True, measure_cold_start: bool = True,
                  keras_predict_rows: int = 300, on_step: Callable[[str], None] | None = None) -> dict:
    """Benchmark every variant of ``bundle`` on every available backend; returns the report (JSON-ready)."""
    from intent_edge.runtime import Predictor
    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.bundle import read_manifest, resolve_file

    step = on_step or (lambda _message: None)
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    all_threads = os.cpu_count() or 1
    report = {"bundle": str(bundle), "host": host_description(), "records": len(records),
              "encoder": "compiled fast path" if _fastencode is not None else "pure Python (fast path not built)",
              "batch_sizes": list(batch_sizes), "raw_batch_sizes": list(raw_batch_sizes), "rows": [], "baselines": {},
              "cold_start": {}}
    encoded = None
    for variant, entry in manifest["variants"].items():
        for backend in BACKENDS.values():
            file = backend.variant_file(entry)
            if file is None:
                continue
            row = {"variant": variant, "backend": backend.name, "format": entry["format"],
                   "precision": entry.get("precision", "fp32")}
            report["rows"].append(row)
            if not backend.is_available():
                row["status"] = f"unavailable: {backend.install_hint}"
                continue
            step(f"{variant} on {backend.name}: single records")
            predictor = Predictor.load(bundle, variant, backend=backend.name, threads=1)
            if encoded is None:
                encoded = predictor.encoder.encode_records(records)
            single = [np.ascontiguousarray(encoded[i:i + 1]) for i in range(len(encoded))]
            row["predict_us"] = percentiles(time_each(predictor.predict, records))
            row["invoke_us"] = percentiles(time_each(predictor.runner.infer, single))
            row["configuration"] = predictor.runner.description
            if "explain" in manifest:
                step(f"{variant} on {backend.name}: explanations")
                row["explain_us"] = percentiles(time_each(predictor.explain, records[:EXPLAIN_RECORDS], warmup=50))
                row["explain_method"] = predictor.explain(records[0]).method
            row["throughput_rows_s"] = {}
            for threads in sorted({1, all_threads}):
                step(f"{variant} on {backend.name}: throughput, {threads} thread(s)")
                runner = backend.load_model(resolve_file(bundle, file), predictor.encoder.width, threads=threads)
                row["throughput_rows_s"][str(threads)] = {
                    str(size): rows_per_second(runner.infer,
                                               np.ascontiguousarray(np.resize(encoded, (size, encoded.shape[1]))))
                    for size in batch_sizes}
            step(f"{variant} on {backend.name}: raw-record batches")
            row["raw_batch_rows_s"] = _raw_record_batches(predictor, records, raw_batch_sizes)
            row["status"] = "ok"
    if keras_baseline:
        report["baselines"]["keras"] = _keras_baseline(bundle, manifest, encoded, batch_sizes, keras_predict_rows, step)
    if measure_cold_start:
        step("cold start and memory: runtime")
        report["cold_start"]["runtime"] = cold_start("runtime", bundle, manifest["default_variant"], records)
        if keras_baseline:
            step("cold start and memory: Keras")
            report["cold_start"]["keras"] = cold_start("keras", bundle, manifest["default_variant"], records)
    step("interleaved comparison: predict(record) against bare invokes")
    report["interleaved"] = _interleaved(bundle, manifest, records, encoded)
    if "monitor" in manifest:
        step("monitoring on and off")
        report["monitoring"] = _monitoring_cost(bundle, records)
    step("raw-field graphs")
    report["raw"] = _raw_graphs(bundle, manifest, records, encoded, batch_sizes)
    report["bars"] = _bars(report, manifest)
    return report


def _raw_record_batches(predictor, records: list[dict], sizes) -> dict:
    """``predict_batch`` on a DataFrame of ``size`` raw records, and the model alone on them encoded."""
    import pandas as pd

    distinct = pd.DataFrame.from_records(records)
    result = {}
    for size in sizes:
        frame = distinct.iloc[np.arange(size) % len(distinct)].reset_index(drop=True)
        encoded = predictor.encode(frame)
        result[str(size)] = {"raw": rows_per_second(predictor.predict_batch, frame),
                             "encoded": rows_per_second(predictor.runner.infer, encoded)}
    return result


def _raw_graphs(bundle: Path, manifest: dict, records: list[dict], encoded: np.ndarray | None, batch_sizes) -> list:
    """Each raw-field graph on ONNX Runtime from Python, one thread: one record a call (its feeds built
    beforehand, as a host that holds typed fields would have them), and throughput at each batch size,
    beside the encoded fp32 graph's throughput on the same rows measured in the same loop (the ratio is
    what the in-graph encoding, string lookups included, costs)."""
    from intent_edge.raw_graph import raw_feeds
    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.bundle import resolve_file

    if encoded is None or not BACKENDS["onnxruntime"].is_available():
        return []
    load = BACKENDS["onnxruntime"].load
    fp32 = BACKENDS["onnxruntime"].load_model(resolve_file(bundle, manifest["variants"]["fp32"]["file"]),
                                              encoded.shape[1], threads=1)
    rows = []
    for variant, entry in manifest["variants"].items():
        raw = entry.get("raw", {})
        if raw.get("status") != "ok":
            continue
        graph = load(resolve_file(bundle, raw["file"]), threads=1)
        singles = [raw_feeds([record], raw["fields"]) for record in records]
        row = {"variant": variant, "configuration": graph.description,
               "call_us": percentiles(time_each(graph.run, singles)), "throughput_rows_s": {},
               "encoded_fp32_rows_s": {}}
        for size in batch_sizes:
            batch = [records[i % len(records)] for i in range(size)]
            feeds = raw_feeds(batch, raw["fields"])
            rows_encoded = np.ascontiguousarray(np.resize(encoded, (size, encoded.shape[1])))
            row["throughput_rows_s"][str(size)] = rows_per_second(graph.run, feeds, rows=size)
            row["encoded_fp32_rows_s"][str(size)] = rows_per_second(fp32.infer, rows_encoded)
        rows.append(row)
    return rows


def _bare_call(backend: str, path: Path, rows: list[np.ndarray]) -> tuple[str, Callable]:
    """A bare call of the graph at ``path``, as a label and ``call(i)``: LiteRT's ``invoke()`` on an input
    set once, or ONNX Runtime's ``session.run`` on record ``i``'s ready row."""
    from intent_edge.runtime.backends import BACKENDS

    runner = BACKENDS[backend].load(path, threads=1)
    if backend == "native":
        return "bare native kernel call", lambda i: runner.infer_one(rows[i])
    if backend == "litert":
        interpreter = runner.interpreter(rows=1)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], rows[0])
        return "bare LiteRT invoke", lambda i: interpreter.invoke()
    session = runner.session
    name = session.get_inputs()[0].name
    return "bare onnxruntime session.run", lambda i: session.run(None, {name: rows[i]})


def _interleaved(bundle: Path, manifest: dict, records: list[dict], encoded: np.ndarray) -> dict:
    """The default variant's ``predict(record)`` beside bare calls of the default variant's own graph (what
    the runtime adds around it), of the fp32 ONNX model and of the fp32 .tflite (when the bundle has one),
    record by record in one loop, so that all of them see the same moments of a noisy machine. Percentiles
    in microseconds, by label."""
    from intent_edge.runtime import BackendUnavailable, Predictor
    from intent_edge.runtime.backends import BACKENDS, backend_for
    from intent_edge.runtime.bundle import resolve_file

    try:
        predictor = Predictor.load(bundle, threads=1)
    except BackendUnavailable:
        return {}  # the default variant's backend is missing: its row already says so
    calls: dict[str, Callable] = {f"predict ({predictor.variant})": None}
    rows = [np.ascontiguousarray(encoded[i:i + 1]) for i in range(len(encoded))]
    bare = [("fp32", "onnxruntime"), ("litert-fp32", "litert")]
    own = manifest["variants"][predictor.variant]
    own_backend = backend_for(own)[0].name
    if (predictor.variant, own_backend) not in bare and own_backend in ("onnxruntime", "litert", "native"):
        bare.append((predictor.variant, own_backend))
    for variant, backend in bare:
        file = BACKENDS[backend].variant_file(manifest["variants"].get(variant, {}))
        if file is not None and BACKENDS[backend].is_available():
            label, call = _bare_call(backend, resolve_file(bundle, file), rows)
            calls[f"{label} ({variant})"] = call
    calls[f"predict ({predictor.variant})"] = lambda i: predictor.predict(records[i])
    if BACKENDS["native"].variant_file(manifest["variants"]["fp32"]) and BACKENDS["native"].is_available():
        native = Predictor.load(bundle, "fp32", backend="native")
        calls[NATIVE_PREDICT] = lambda i: native.predict(records[i])
        if "litert-fp32" in manifest["variants"] and BACKENDS["litert"].is_available():
            litert = BACKENDS["litert"].load(resolve_file(bundle, manifest["variants"]["litert-fp32"]["file"]),
                                             threads=1)
            calls[LITERT_ROUND_TRIP] = lambda i: litert.infer_one(rows[i])
    calls[EMPTY_CALL] = lambda i: None
    samples = {label: np.empty(len(records), dtype=np.int64) for label in calls}
    clock = time.perf_counter_ns
    for i in range(min(200, len(records))):
        for call in calls.values():
            call(i)
    for i in range(len(records)):
        for label, call in calls.items():
            started = clock()
            call(i)
            samples[label][i] = clock() - started
    return {label: percentiles(values) for label, values in samples.items()}


def _keras_baseline(bundle: Path, manifest: dict, encoded: np.ndarray, batch_sizes, predict_rows: int, step) -> dict:
    import keras
    import tensorflow as tf

    from intent_edge.train.pipeline import load_keras

    step("Keras baseline")
    model = load_keras(bundle, manifest)
    rows = [np.ascontiguousarray(encoded[i:i + 1]) for i in range(len(encoded))]
    call = time_each(lambda x: model(x, training=False), rows[:2000], warmup=50)
    # model.predict costs tens of milliseconds a call (it builds a data pipeline each time): fewer rows.
    predict = time_each(lambda x: model.predict(x, verbose=0), rows[:predict_rows], warmup=min(20, predict_rows))
    throughput = {str(size): rows_per_second(lambda x: model.predict(x, batch_size=len(x), verbose=0),
                                             np.resize(encoded, (size, encoded.shape[1])))
                  for size in batch_sizes}
    return {"call_us": percentiles(call), "call_rows": min(2000, len(rows)), "predict_us": percentiles(predict),
            "predict_rows": min(predict_rows, len(rows)), "throughput_rows_s": throughput,
            "configuration": (f"keras {keras.__version__} on tensorflow {tf.__version__}: model(x, training=False) "
                              "for single rows (Keras' advice for small inputs) and model.predict(x, batch_size=len(x))"
                              f" for batches; TensorFlow's default thread pools (intra-op "
                              f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all cores'})")}


def _monitoring_cost(bundle: Path, records: list[dict], batch_rows: int = 4096, rounds: int = 7) -> dict:
    """The default variant's ``predict(record)`` p50 and ``predict_batch`` rows/s with monitoring off and on,
    interleaved record by record (and batch by batch), so that both see the same moments of the machine."""
    from intent_edge.errors import BackendUnavailable, BundleError
    from intent_edge.runtime import Predictor

    try:
        plain, watched = Predictor.load(bundle, threads=1), Predictor.load(bundle, threads=1)
        watched.start_monitoring()
    except (BackendUnavailable, BundleError) as exc:  # the default variant's backend is missing, or no profile
        return {"status": str(exc)}
    samples = {"off": np.empty(len(records), np.int64), "on": np.empty(len(records), np.int64)}
    clock = time.perf_counter_ns
    for i in range(min(200, len(records))):
        plain.predict(records[i])
        watched.predict(records[i])
    for i, record in enumerate(records):
        for name, predictor in (("off", plain), ("on", watched)):
            started = clock()
            predictor.predict(record)
            samples[name][i] = clock() - started
    import pandas as pd

    # a DataFrame, as `score` hands its chunks over: the quickest batch to encode, so monitoring's share is
    # the largest there (a dict of Python lists spends 4x longer encoding)
    batch = pd.DataFrame.from_records(records).iloc[np.arange(batch_rows) % len(records)].reset_index(drop=True)
    seconds = {"off": [], "on": []}
    for _ in range(rounds):
        for name, predictor in (("off", plain), ("on", watched)):
            started = time.perf_counter()
            predictor.predict_batch(batch)
            seconds[name].append(time.perf_counter() - started)
    p50 = {name: percentiles(values)["p50"] for name, values in samples.items()}
    throughput = {name: batch_rows / min(values) for name, values in seconds.items()}
    return {"variant": watched.variant, "predict_p50_us": p50, "predict_p50_cost_us": p50["on"] - p50["off"],
            "predict_batch_rows_s": throughput, "batch_rows": batch_rows,
            "batch_throughput_on_over_off": throughput["on"] / throughput["off"]}


def _bars(report: dict, manifest: dict) -> dict:
    """The ratios issue-level targets are stated in, where the run has what they need."""
    rows = {(r["variant"], r["backend"]): r for r in report["rows"] if r.get("status") == "ok"}
    bars = {}
    interleaved = report.get("interleaved", {})
    predict_label = next((k for k in interleaved if k.startswith("predict (")), None)
    own = next((k for k in interleaved if k.startswith("bare ") and k.endswith(predict_label[len("predict"):])),
               None) if predict_label else None
    if NATIVE_PREDICT in interleaved and LITERT_ROUND_TRIP in interleaved:
        bars["native_fp32_predict_p50_over_bare_litert_fp32_invoke_p50"] = (
            interleaved[NATIVE_PREDICT]["p50"] / interleaved[LITERT_ROUND_TRIP]["p50"])
        if EMPTY_CALL in interleaved:  # the same, each p50 less the empty call's: the calls alone
            empty = interleaved[EMPTY_CALL]["p50"]
            bars["native_fp32_predict_p50_over_bare_litert_fp32_invoke_p50_net_of_clock"] = (
                (interleaved[NATIVE_PREDICT]["p50"] - empty) / (interleaved[LITERT_ROUND_TRIP]["p50"] - empty))
    for label, key in ((own, "predict_p50_over_own_variant_bare_invoke_p50"),
                       ("bare onnxruntime session.run (fp32)", "predict_p50_over_bare_onnxruntime_p50"),
                       ("bare LiteRT invoke (litert-fp32)", "predict_p50_over_bare_litert_invoke_p50")):
        if predict_label is not None and label in interleaved:
            bars[key] = interleaved[predict_label]["p50"] / interleaved[label]["p50"]
    ort = rows.get(("fp32", "onnxruntime"))
    if ort and "4096" in ort["throughput_rows_s"].get("1", {}):
        budget = manifest.get("compression", {}).get("max_auc_drop", 0.003)
        inside = [r for (v, _), r in rows.items()
                  if manifest["variants"][v].get("accuracy", {}).get("delta_roc_auc", 0.0) >= -budget]
        best = max(inside, key=lambda r: r["throughput_rows_s"]["1"].get("4096", 0))
        bars["best_throughput_variant"] = best["variant"]
        bars["best_throughput_over_onnxruntime_fp32_batch4096_1thread"] = (
            best["throughput_rows_s"]["1"]["4096"] / ort["throughput_rows_s"]["1"]["4096"])
    engines = [r for r in rows.values() if r["format"] == "engine"]
    if ort and engines:  # on a GPU host: the best TensorRT engine against ONNX Runtime fp32, largest batch
        size = str(max(report["batch_sizes"]))
        threads = max(ort["throughput_rows_s"], key=int)
        best = max(engines, key=lambda r: r["throughput_rows_s"]["1"].get(size, 0))
        bars["tensorrt_variant"] = best["variant"]
        bars["onnxruntime_fp32_configuration"] = f"{ort['configuration']}, {threads} thread(s), batch {size}"
        bars[f"tensorrt_throughput_over_onnxruntime_fp32_batch{size}"] = (
            best["throughput_rows_s"]["1"][size] / ort["throughput_rows_s"][threads][size])
    monitoring = report.get("monitoring", {})
    if "predict_p50_cost_us" in monitoring:
        bars["monitoring_predict_p50_cost_us"] = monitoring["predict_p50_cost_us"]
        bars["monitoring_batch_throughput_on_over_off"] = monitoring["batch_throughput_on_over_off"]
    cold = report["cold_start"]
    if "runtime" in cold and "keras" in cold:
        bars["cold_start_runtime_over_keras"] = (cold["runtime"]["seconds_to_first_prediction"]
                                                 / cold["keras"]["seconds_to_first_prediction"])
        bars["peak_memory_runtime_over_keras"] = cold["runtime"]["peak_rss_mib"] / cold["keras"]["peak_rss_mib"]
    return bars




def benchmark_records(manifest: dict, data: Path | None, count: int, *, sep: str | None = None) -> list[dict]:
    """Up to ``count`` distinct complete raw records to time: from ``data`` (CSV, Parquet or JSONL, checked
    against the bundle's schema), or synthetic sessions for a bundle of the UCI layout."""
    from intent_edge.data.schema import Schema, is_uci_layout
    from intent_edge.errors import UsageError

    schema = Schema.from_json(manifest["schema"])
    if data is not None:
        from intent_edge.data.io import check_features, read_records

        frame = check_features(read_records(data, sep), schema, data)
    elif is_uci_layout(schema.features):
        from intent_edge.data.synth import generate_sessions

        frame = generate_sessions(count, seed=20261127)[schema.features]
    else:
        raise UsageError("this bundle is not of the UCI layout: give records to time (--data)")
    return frame.dropna().iloc[:count].to_dict("records")
