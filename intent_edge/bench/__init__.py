"""Benchmarks: timing primitives (re-exported from :mod:`intent_edge.timing`), the session-bundle benchmark
(:mod:`.sessions`), the streaming benchmark (:mod:`.streaming`), and their rendering (:mod:`.report`, :mod:`.plots`)."""

from intent_edge.bench.plots import write_plots
from intent_edge.bench.report import render_markdown, render_streaming_markdown, render_table, streaming_table
from intent_edge.bench.sessions import benchmark_records, cold_start, run_benchmark
from intent_edge.bench.streaming import STREAM_PREFIXES, streaming_events, streaming_latency
from intent_edge.timing import BATCH_SIZES, host_description, percentiles, rows_per_second, time_each

__all__ = ["BATCH_SIZES", "STREAM_PREFIXES", "benchmark_records", "cold_start", "host_description",
           "percentiles", "render_markdown", "render_streaming_markdown", "render_table", "rows_per_second",
           "run_benchmark", "streaming_events", "streaming_latency", "streaming_table", "time_each", "write_plots"]
