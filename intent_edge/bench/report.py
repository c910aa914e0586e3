"""The benchmark reports as a terminal table and as Markdown."""

from __future__ import annotations

# What each ratio in ``report["bars"]`` compares, in words, for the terminal and the Markdown report.
BAR_LABELS = {
    "predict_p50_over_own_variant_bare_invoke_p50":
        "runtime overhead: predict(record) p50 over a bare call of the same variant's graph",
    "predict_p50_over_bare_onnxruntime_p50":
        "predict(record) of the default variant, p50, over a bare ONNX Runtime call of the fp32 model",
    "native_fp32_predict_p50_over_bare_litert_fp32_invoke_p50":
        "compiled path: predict(record) of fp32 on the native backend, p50, over LiteRT's set_tensor + invoke + "
        "get_tensor of the fp32 model on a ready row",
    "native_fp32_predict_p50_over_bare_litert_fp32_invoke_p50_net_of_clock":
        "the same, each p50 less that of an empty call in the same loop (what the clock and the loop add to "
        "every sample)",
    "monitoring_predict_p50_cost_us":
        "monitoring's cost: the default variant's predict(record) p50 with monitoring on, less off (µs)",
    "monitoring_batch_throughput_on_over_off":
        "monitoring's cost in batches: predict_batch rows/s on a 4,096-row DataFrame, on over off",
    "predict_p50_over_bare_litert_invoke_p50":
        "predict(record) of the default variant, p50, over a bare LiteRT invoke of the fp32 model "
        "(includes the default variant's own cost where it is not fp32)",
}


def bar_line(key: str, value) -> str:
    """One ratio as a line: its plain label where it has one, then its JSON key and value."""
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    return f"{BAR_LABELS[key]} (`{key}`): {shown}" if key in BAR_LABELS else f"{key}: {shown}"


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


def _raw_cell(row: dict, size: str) -> str:
    raw, encoded = row["throughput_rows_s"][size], row["encoded_fp32_rows_s"][size]
    return f"{raw:,.0f} ({raw / encoded:.2f})"


def _raw_batch_cell(measured: dict) -> str:
    return f"{measured['raw']:,.0f} ({measured['raw'] / measured['encoded']:.2f})"


def _raw_sizes(report: dict) -> list[str]:
    """The batch sizes the raw-field table shows: 1, 256 and the largest, where measured."""
    sizes = sorted(report["raw"][0]["throughput_rows_s"], key=int)
    return [s for s in sizes if s in ("1", "256", "4096") or s == sizes[-1]]


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
    explained = [r for r in report["rows"] if r.get("explain_us")]
    if explained:
        lines += ["", "Explanations: `explain(record)` against the bundle's background (1 thread), µs:", "",
                  "| variant / backend | estimator | p50 | p99 | p50 / predict p50 |", "|---|---|---|---|---|"]
        lines += [f"| {_row_label(r)} | {r['explain_method']} | {r['explain_us']['p50']:.0f} | "
                  f"{r['explain_us']['p99']:.0f} | {r['explain_us']['p50'] / r['predict_us']['p50']:.0f}x |"
                  for r in explained]
    batches = [r for r in report["rows"] if r.get("raw_batch_rows_s")]
    if batches:
        sizes = list(batches[0]["raw_batch_rows_s"])
        lines += ["", "Raw-record batches: `predict_batch` on a DataFrame (encoder + model, 1 thread), rows/s, "
                      "and in brackets the share of the model alone on the same rows encoded:", "",
                  "| variant / backend | " + " | ".join(f"batch {int(s):,}" for s in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        lines += [f"| {_row_label(r)} | " + " | ".join(_raw_batch_cell(r["raw_batch_rows_s"][s]) for s in sizes) + " |"
                  for r in batches]
    if report.get("raw"):
        lines += ["", "Raw-field graphs (raw fields in, the encoding inside the graph; ONNX Runtime from Python, "
                      "1 thread; throughput beside the encoded fp32 graph measured in the same loop):", "",
                  "| variant | one record µs p50 / p99 | " + " | ".join(f"rows/s at {s} (x encoded fp32)"
                                                                   for s in _raw_sizes(report)) + " |",
                  "|---|---|" + "---|" * len(_raw_sizes(report))]
        lines += [f"| {row['variant']} | {row['call_us']['p50']:.1f} / {row['call_us']['p99']:.1f} | "
                  + " | ".join(_raw_cell(row, size) for size in _raw_sizes(report)) + " |" for row in report["raw"]]
    if report.get("interleaved"):
        lines += ["", "Interleaved, record by record in one loop (µs):", "",
                  "| call | p50 | p90 | p99 | p99.9 |", "|---|---|---|---|---|"]
        lines += [f"| {label} | " + " | ".join(f"{v:.1f}" for v in values.values()) + " |"
                  for label, values in report["interleaved"].items()]
    if report["bars"]:
        lines += ["", "Ratios:", ""] + [f"- {bar_line(k, v)}" for k, v in report["bars"].items()]
    return "\n".join(lines) + "\n"



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
