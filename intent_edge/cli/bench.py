"""`intent-edge bench`: every backend and variant of a bundle timed in one run, beside plain Keras."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli.common import (
    SepOption,
    command_line,
    console,
    is_clickstream,
    progress,
    refuse,
    stdout,
    user_errors,
    write_json,
    write_text,
)


def register(app: typer.Typer) -> None:
    app.command()(bench)


@user_errors
def bench(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory (every variant in it is measured).")],
    data: Annotated[Path | None, typer.Option("--data", help="Raw records to time (CSV, Parquet or JSONL), or for a "
                                                             "clickstream bundle an event log; default: synthetic "
                                                             "sessions (bundles of the UCI layout) or events.")] = None,
    records: Annotated[int | None, typer.Option("--records", min=100, help="Distinct records for single-record "
                                                                           "latency [default: 10000].")] = None,
    batch_sizes: Annotated[str | None, typer.Option(
        "--batch-sizes", help="Comma-separated batch sizes for throughput [default: 1,4,16,64,256,1024,4096,16384,"
                              "65536; raw-record batches: 1,16,256,4096,65536,1000000]. When given, both use "
                              "these.")] = None,
    keras_baseline: Annotated[bool | None, typer.Option("--keras/--no-keras", help="Measure plain Keras as the "
                                                                                   "baseline (needs the train extra; "
                                                                                   "default: on).")] = None,
    cold_start: Annotated[bool | None, typer.Option("--cold-start/--no-cold-start", help="Measure new-process "
                                                                                         "start-up and peak memory "
                                                                                         "(default: on).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Write the report as Markdown here.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for latency and throughput PNGs.")] = None,
    sep: SepOption = None,
):
    """Latency, throughput, cold start and memory of every backend and variant, beside plain Keras. For a
    clickstream bundle: per-event update latency against rescoring prefixes of 10, 50 and 200 events."""
    if is_clickstream(bundle):
        refuse({"--records": records, "--batch-sizes": batch_sizes, "--keras/--no-keras": keras_baseline,
                "--cold-start/--no-cold-start": cold_start, "--plots": plots}, "to a clickstream bundle's benchmark")
        _bench_streaming(bundle, data, sep, json_out, markdown)
        return
    from intent_edge.bench import benchmark_records, render_markdown, render_table, run_benchmark, write_plots
    from intent_edge.bench.report import bar_line
    from intent_edge.errors import UsageError
    from intent_edge.runtime.bundle import read_manifest
    from intent_edge.timing import RAW_BATCH_SIZES

    try:
        sizes = [int(size) for size in (batch_sizes or "1,4,16,64,256,1024,4096,16384,65536").split(",")
                 if size.strip()]
    except ValueError:
        raise UsageError(f"--batch-sizes {batch_sizes!r}: give whole numbers separated by commas") from None
    rows = benchmark_records(read_manifest(bundle), data, records or 10000, sep=sep)
    with progress() as bar:
        task = bar.add_task("benchmarking", total=None, status="")
        report = run_benchmark(bundle, rows, batch_sizes=sizes,
                               raw_batch_sizes=sizes if batch_sizes else RAW_BATCH_SIZES,
                               keras_baseline=keras_baseline is not False,
                               measure_cold_start=cold_start is not False,
                               on_step=lambda m: bar.update(task, status=m))
    report["date"] = dt.date.today().isoformat()
    stdout.print(render_table(report))
    for label, values in report["interleaved"].items():
        stdout.print(f"interleaved {label}: p50 {values['p50']:.1f} µs, p99 {values['p99']:.1f} µs")
    for row in report["raw"]:
        largest = max(row["throughput_rows_s"], key=int)
        stdout.print(f"raw-field graph ({row['variant']}): one record p50 {row['call_us']['p50']:.1f} µs; batch "
                     f"{largest}: {row['throughput_rows_s'][largest]:,.0f} rows/s, "
                     f"{row['throughput_rows_s'][largest] / row['encoded_fp32_rows_s'][largest]:.2f} x the encoded "
                     "fp32 graph")
    for row in report["rows"]:
        if row.get("explain_us"):
            stdout.print(f"explain ({row['variant']} / {row['backend']}, {row['explain_method']}): p50 "
                         f"{row['explain_us']['p50']:.0f} µs, p99 {row['explain_us']['p99']:.0f} µs; predict p50 "
                         f"{row['predict_us']['p50']:.1f} µs")
    for name, value in report["bars"].items():
        stdout.print(bar_line(name, value), markup=False)
    if json_out:
        write_json(json_out, report)
    if markdown:
        write_text(markdown, render_markdown(report, command_line("bench")))
    if plots:
        for path in write_plots(report, plots):
            console.print(f"plot: {path}")


def _bench_streaming(bundle: Path, data: Path | None, sep: str | None, json_out: Path | None,
                     markdown: Path | None) -> None:
    from intent_edge.bench import render_streaming_markdown, streaming_events, streaming_latency

    events = streaming_events(data, sep=sep)
    with progress() as bar:
        task = bar.add_task("benchmarking", total=None, status="")
        report = streaming_latency(bundle, events, on_step=lambda m: bar.update(task, status=m))
    report["date"] = dt.date.today().isoformat()
    text = render_streaming_markdown(report, command_line("bench"))
    stdout.print(text)
    if json_out:
        write_json(json_out, report)
    if markdown:
        write_text(markdown, text)
