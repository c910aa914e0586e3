"""`intent-edge bench`: latency, throughput, cold start and memory of every backend and variant of a
bundle, side by side with plain Keras, measured in one run on this host.

What is measured (all timings with warm-up, percentiles rather than means):

* ``predict``: end to end, raw record dict in, probability out, through :class:`Predictor` (one
  thread), over distinct records.
* ``invoke``: the bare backend call on one ready encoded row (ONNX Runtime ``session.run``, LiteRT
  ``invoke``, Keras ``model(x)`` and ``model.predict``), over distinct rows.
* throughput: encoded rows per second at batch sizes 1 to 65,536, with one thread and with all cores.
* cold start: a new Python process, from spawn to its first prediction (imports included), and the
  peak resident memory of that process after serving 1,000 predictions: the runtime against Keras.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from intent_edge.fileio import atomic_path
from intent_edge.runtime.encoder import _fastencode

PERCENTILES = (50, 90, 99, 99.9)
BATCH_SIZES = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
THROUGHPUT_SECONDS = 0.25


def percentiles(samples_ns: np.ndarray) -> dict[str, float]:
    """p50, p90, p99 and p99.9 of nanosecond samples, in microseconds (numpy's linear interpolation)."""
    values = np.percentile(np.asarray(samples_ns, dtype=np.float64), PERCENTILES) / 1000.0
    return {f"p{p:g}": float(v) for p, v in zip(PERCENTILES, values)}


def time_each(call: Callable, items, warmup: int = 200) -> np.ndarray:
    """Nanoseconds of ``call(item)`` for each item, after ``warmup`` untimed calls."""
    for item in items[:warmup]:
        call(item)
    samples = np.empty(len(items), dtype=np.int64)
    clock = time.perf_counter_ns
    for index, item in enumerate(items):
        started = clock()
        call(item)
        samples[index] = clock() - started
    return samples


def rows_per_second(call: Callable, batch: np.ndarray, seconds: float = THROUGHPUT_SECONDS) -> float:
    call(batch)
    calls, started = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - started < seconds:
        call(batch)
        calls += 1
    return calls * len(batch) / (time.perf_counter() - started)


def host_description() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


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
model = keras.saving.load_model(os.path.join(sys.argv[1], "model.keras"), safe_mode=True, compile=False)
model(encoder.encode_records(records[:1]), training=False)
print("ready", flush=True)
for i in range(1000):
    model(encoder.encode_records([records[i % len(records)]]), training=False)
print(peak_kib(), flush=True)
"""


def cold_start(kind: str, bundle: Path, variant: str, records: list[dict]) -> dict:
    """Seconds from spawning a fresh interpreter to its first prediction, and its peak RSS (MiB)."""
    import json

    code = _RUNTIME_CHILD if kind == "runtime" else _KERAS_CHILD
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code, str(bundle), variant], stdin=subprocess.PIPE,
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


def run_benchmark(bundle: str | Path, records: list[dict], *, batch_sizes=BATCH_SIZES, keras_baseline: bool = True,
                  measure_cold_start: bool = True, keras_predict_rows: int = 300,
                  on_step: Callable[[str], None] | None = None) -> dict:
    """Benchmark every variant of ``bundle`` on every available backend; returns the report (JSON-ready)."""
    from intent_edge.runtime import Predictor
    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.bundle import read_manifest

    step = on_step or (lambda _message: None)
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    all_threads = os.cpu_count() or 1
    report = {"bundle": str(bundle), "host": host_description(), "records": len(records),
              "encoder": "compiled fast path" if _fastencode is not None else "pure Python (fast path not built)",
              "batch_sizes": list(batch_sizes), "rows": [], "baselines": {}, "cold_start": {}}
    encoded = None
    for variant, entry in manifest["variants"].items():
        for backend in BACKENDS.values():
            if backend.model_format != entry["format"]:
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
            row["throughput_rows_s"] = {}
            for threads in sorted({1, all_threads}):
                step(f"{variant} on {backend.name}: throughput, {threads} thread(s)")
                runner = backend.load(Path(bundle) / entry["file"]["path"], predictor.encoder.width, threads=threads)
                row["throughput_rows_s"][str(threads)] = {
                    str(size): rows_per_second(runner.infer, np.ascontiguousarray(np.resize(encoded, (size, encoded.shape[1]))))
                    for size in batch_sizes}
            row["status"] = "ok"
    if keras_baseline:
        report["baselines"]["keras"] = _keras_baseline(bundle, encoded, batch_sizes, keras_predict_rows, step)
    if measure_cold_start:
        step("cold start and memory: runtime")
        report["cold_start"]["runtime"] = cold_start("runtime", bundle, manifest["default_variant"], records)
        if keras_baseline:
            step("cold start and memory: Keras")
            report["cold_start"]["keras"] = cold_start("keras", bundle, manifest["default_variant"], records)
    step("interleaved comparison: predict(record) against bare invokes")
    report["interleaved"] = _interleaved(bundle, manifest, records, encoded)
    report["bars"] = _bars(report, manifest)
    return report


def _interleaved(bundle: Path, manifest: dict, records: list[dict], encoded: np.ndarray) -> dict:
    """The default variant's ``predict(record)`` beside bare ``session.run`` of the fp32 ONNX model and bare
    LiteRT ``invoke()`` of the fp32 .tflite (when the bundle has one), record by record in one loop, so
    that all three see the same moments of a noisy machine. Percentiles in microseconds."""
    from intent_edge.runtime import BackendUnavailable, Predictor
    from intent_edge.runtime.backends import BACKENDS

    try:
        predictor = Predictor.load(bundle, threads=1)
    except BackendUnavailable:
        return {}  # the default variant's backend is missing: its row already says so
    calls: dict[str, Callable] = {f"predict ({predictor.variant})": None}
    rows = [np.ascontiguousarray(encoded[i:i + 1]) for i in range(len(encoded))]
    if BACKENDS["onnxruntime"].is_available():
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(bundle / manifest["variants"]["fp32"]["file"]["path"]), options,
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        calls["bare onnxruntime session.run (fp32)"] = lambda i: session.run(None, {name: rows[i]})
    if "litert-fp32" in manifest["variants"] and BACKENDS["litert"].is_available():
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(bundle / manifest["variants"]["litert-fp32"]["file"]["path"]),
                                  num_threads=1)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [1, encoded.shape[1]])
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, rows[0])
        calls["bare LiteRT invoke (fp32)"] = lambda i: interpreter.invoke()
    calls[f"predict ({predictor.variant})"] = lambda i: predictor.predict(records[i])
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


def _keras_baseline(bundle: Path, encoded: np.ndarray, batch_sizes, predict_rows: int, step) -> dict:
    import keras
    import tensorflow as tf

    step("Keras baseline")
    model = keras.saving.load_model(bundle / "model.keras", safe_mode=True, compile=False)
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


def _bars(report: dict, manifest: dict) -> dict:
    """The ratios issue-level targets are stated in, where the run has what they need."""
    rows = {(r["variant"], r["backend"]): r for r in report["rows"] if r.get("status") == "ok"}
    bars = {}
    interleaved = report.get("interleaved", {})
    predict = next((v["p50"] for k, v in interleaved.items() if k.startswith("predict")), None)
    for label, key in (("bare onnxruntime session.run (fp32)", "predict_p50_over_bare_onnxruntime_p50"),
                       ("bare LiteRT invoke (fp32)", "predict_p50_over_bare_litert_invoke_p50")):
        if predict is not None and label in interleaved:
            bars[key] = predict / interleaved[label]["p50"]
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
    cold = report["cold_start"]
    if "runtime" in cold and "keras" in cold:
        bars["cold_start_runtime_over_keras"] = (cold["runtime"]["seconds_to_first_prediction"]
                                                 / cold["keras"]["seconds_to_first_prediction"])
        bars["peak_memory_runtime_over_keras"] = cold["runtime"]["peak_rss_mib"] / cold["keras"]["peak_rss_mib"]
    return bars


def _row_label(row: dict) -> str:
    return f"{row['variant']} / {row['backend']}"


def _table_rows(report: dict) -> list[list[str]]:
    lines = []
    for row in report["rows"]:
        if row.get("status") != "ok":
            lines.append([_row_label(row), row.get("status", "?"), "-", "-", "-", "-"])
            continue
        p, i = row["predict_us"], row["invoke_us"]
        one = row["throughput_rows_s"]["1"]
        many = row["throughput_rows_s"][max(row["throughput_rows_s"], key=int)]
        lines.append([_row_label(row), "ok", " / ".join(f"{p[k]:.1f}" for k in ("p50", "p90", "p99", "p99.9")),
                      f"{i['p50']:.1f} / {i['p99']:.1f}", f"{one.get('4096', 0):,.0f}",
                      f"{many.get('4096', 0):,.0f}"])
    keras = report["baselines"].get("keras")
    if keras:
        call, predict = keras["call_us"], keras["predict_us"]
        lines.append(["keras model(x)", "baseline", "-", f"{call['p50']:.1f} / {call['p99']:.1f}", "-",
                      f"{keras['throughput_rows_s'].get('4096', 0):,.0f} (predict)"])
        lines.append(["keras model.predict", "baseline", "-", f"{predict['p50']:.1f} / {predict['p99']:.1f}", "-", "-"])
    return lines


HEADERS = ("variant / backend", "status", "predict(record) µs p50/p90/p99/p99.9", "invoke µs p50/p99",
           "rows/s batch 4096, 1 thread", "rows/s batch 4096, all threads")


def render_table(report: dict):
    from rich.table import Table

    table = Table(title=f"intent-edge bench: {report['bundle']} ({report['records']} distinct records; "
                        f"{report['host']['cpu']}, {report['host']['cores']} cores)")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in HEADERS[:2] else "right")
    for line in _table_rows(report):
        table.add_row(*line)
    return table


def render_markdown(report: dict, command: str) -> str:
    lines = [f"# intent-edge bench, {report.get('date', '')}", "", f"Command: `{command}`", "",
             f"Host: {report['host']['cpu']}, {report['host']['cores']} cores, Python {report['host']['python']}. "
             f"{report['records']} distinct raw records. Single-record encoder: {report['encoder']}.", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(line) + " |" for line in _table_rows(report)]
    lines += ["", "Configurations:", ""]
    lines += [f"- {_row_label(r)}: {r['configuration']}" for r in report["rows"] if r.get("status") == "ok"]
    if "keras" in report["baselines"]:
        lines.append(f"- Keras: {report['baselines']['keras']['configuration']}")
    if report["cold_start"]:
        lines += ["", "| process | seconds to first prediction | peak RSS MiB |", "|---|---|---|"]
        lines += [f"| {kind} | {c['seconds_to_first_prediction']:.2f} | {c['peak_rss_mib']:.0f} |"
                  for kind, c in report["cold_start"].items()]
    if report.get("interleaved"):
        lines += ["", "Interleaved, record by record in one loop (µs):", "",
                  "| call | p50 | p90 | p99 | p99.9 |", "|---|---|---|---|---|"]
        lines += [f"| {label} | " + " | ".join(f"{v:.1f}" for v in values.values()) + " |"
                  for label, values in report["interleaved"].items()]
    if report["bars"]:
        lines += ["", "Ratios:", ""] + [f"- {k}: {v:.3f}" if isinstance(v, float) else f"- {k}: {v}"
                                        for k, v in report["bars"].items()]
    return "\n".join(lines) + "\n"


def write_plots(report: dict, directory: str | Path) -> list[Path]:
    """PNG plots: single-record latency percentiles per variant/backend, throughput against batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = [r for r in report["rows"] if r.get("status") == "ok"]
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(rows), 2)))
    legend = {"fontsize": 7, "loc": "center left", "bbox_to_anchor": (1.02, 0.5)}
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for colour, row in zip(colours, rows):
        axis.plot([f"p{p:g}" for p in PERCENTILES], [row["predict_us"][f"p{p:g}"] for p in PERCENTILES], marker="o",
                  color=colour, label=_row_label(row))
    axis.set(ylabel="predict(record) latency, µs", yscale="log", title="Single-record latency from raw records")
    axis.legend(**legend)
    latency = directory / "latency.png"
    with atomic_path(latency) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for colour, row in zip(colours, rows):
        for threads, series in row["throughput_rows_s"].items():
            sizes = sorted(series, key=int)
            axis.plot([int(s) for s in sizes], [series[s] for s in sizes], marker=".", color=colour,
                      linestyle="-" if threads == "1" else "--", label=f"{_row_label(row)}, {threads} thr")
    keras = report["baselines"].get("keras")
    if keras:
        sizes = sorted(keras["throughput_rows_s"], key=int)
        axis.plot([int(s) for s in sizes], [keras["throughput_rows_s"][s] for s in sizes], color="black",
                  marker="x", label="keras model.predict")
    axis.set(xscale="log", yscale="log", xlabel="batch size", ylabel="rows per second",
             title="Throughput against batch size (encoded input; solid 1 thread, dashed all)")
    axis.legend(**{**legend, "fontsize": 6})
    throughput = directory / "throughput.png"
    with atomic_path(throughput) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
    return [latency, throughput]


STREAM_PREFIXES = (10, 50, 200)


def streaming_latency(bundle: str | Path, events: list[dict], *, sessions: int = 2000,
                      prefixes=STREAM_PREFIXES, on_step: Callable[[str], None] | None = None) -> dict:
    """A clickstream bundle's per-event ``update`` latency against rescoring the whole prefix, per step
    backend and prefix length n: ``sessions`` sessions get n - 1 events (untimed), then the n-th update is
    timed; rescoring replays all n events from a fresh state (``score_session``), what a scorer without
    carried state pays per click. ``events`` are raw events (``event`` and ``timestamp``) to cycle through.

    The prefix lengths are timed interleaved (one scorer per length, session by session in one loop),
    so that all of them see the same moments of a noisy machine and their ratios mean something."""
    import json

    from intent_edge.runtime.backends import BACKENDS
    from intent_edge.runtime.bundle import read_manifest, resolve_file
    from intent_edge.runtime.streaming import SessionScorer, describe_state

    manifest = read_manifest(bundle)
    # A hybrid model reads the session context from each session's first event: take a golden session's.
    first_golden = json.loads(resolve_file(bundle, manifest["golden"]["file"]).read_text())["sessions"][0]
    context = {name: first_golden["events"][0][name] for name in manifest.get("context", {}).get("columns", ())}
    session_events = {}
    for n in prefixes:
        session_events[n] = [{"event": events[(i * 7) % len(events)]["event"], "timestamp": 1000 * i}
                             for i in range(n)]
        session_events[n][0].update(context)
    clock = time.perf_counter_ns
    rows = []
    for backend in manifest["step"]["backends"]:
        if not BACKENDS[backend].is_available():
            rows.append({"backend": backend, "status": f"unavailable: {BACKENDS[backend].install_hint}"})
            continue
        scorers = {}
        for n in prefixes:
            if on_step:
                on_step(f"{backend}: {sessions:,} sessions of {n - 1} events")
            scorers[n] = SessionScorer.load(bundle, backend=backend, max_sessions=sessions + 1)
            for s in range(sessions):
                for event in session_events[n][:-1]:
                    scorers[n].update(f"s{s}", event)
        if on_step:
            on_step(f"{backend}: timing updates and rescoring")
        update = {n: np.empty(sessions, dtype=np.int64) for n in prefixes}
        for s in range(sessions):
            for n in prefixes:
                started = clock()
                scorers[n].update(f"s{s}", session_events[n][-1])
                update[n][s] = clock() - started
        repeats = {n: max(20, min(sessions, 100_000 // n)) for n in prefixes}
        rescore = {n: np.empty(repeats[n], dtype=np.int64) for n in prefixes}
        for r in range(max(repeats.values())):
            for n in prefixes:
                if r < repeats[n]:
                    started = clock()
                    scorers[n].score_session(session_events[n])
                    rescore[n][r] = clock() - started
        shortest = percentiles(update[min(prefixes)])["p50"]
        for n in prefixes:
            figures = percentiles(update[n])
            rows.append({"backend": backend, "status": "ok", "description": scorers[n].description, "prefix": n,
                         "update_us": figures, "rescore_us": percentiles(rescore[n]),
                         "update_p50_over_shortest_prefix": figures["p50"] / shortest,
                         "sessions": sessions, "rescore_repeats": repeats[n]})
    return {"bundle": str(bundle), "host": host_description(), "model": manifest["model"]["kind"],
            "state": describe_state(manifest["step"]), "rows": rows}


def streaming_table(report: dict) -> list[str]:
    """The streaming report's table as Markdown lines."""
    shortest = min((row["prefix"] for row in report["rows"] if row["status"] == "ok"), default=0)
    lines = [f"| step backend | prefix n | update (n-th event) µs p50 / p99 | update p50 / at n={shortest} | "
             "rescore n events µs p50 / p99 | rescore / update, p50 |", "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        if row["status"] != "ok":
            lines.append(f"| {row['backend']} | - | {row['status']} | - | - | - |")
            continue
        u, r = row["update_us"], row["rescore_us"]
        lines.append(f"| {row['description']} | {row['prefix']} | {u['p50']:.1f} / {u['p99']:.1f} | "
                     f"{row['update_p50_over_shortest_prefix']:.2f} | {r['p50']:.1f} / {r['p99']:.1f} | "
                     f"{r['p50'] / u['p50']:.1f}x |")
    return lines


def render_streaming_markdown(report: dict, command: str) -> str:
    lines = [f"# intent-edge bench (streaming), {report.get('date', '')}", "", f"Command: `{command}`", "",
             f"Host: {report['host']['cpu']}, {report['host']['cores']} cores, Python {report['host']['python']}. "
             f"Bundle: {report['model']}, per-session state {report['state']}. Prefix lengths timed interleaved.", ""]
    return "\n".join(lines + streaming_table(report)) + "\n"
