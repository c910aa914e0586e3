"""Timing primitives for the benchmarks and compress: percentiles, per-call timings, throughput, the host.

Nothing here renders, plots or imports the rest of the package, so that both `bench` and `compress` can
stand on it; :mod:`intent_edge.bench.report` and :mod:`intent_edge.bench.plots` render.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PERCENTILES = (50, 90, 99, 99.9)
BATCH_SIZES = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
# Raw-record batches go further: nightly jobs hand predict_batch a million rows at once.
RAW_BATCH_SIZES = (1, 16, 256, 4096, 65536, 1_000_000)
THROUGHPUT_SECONDS = 0.25


def percentiles(samples_ns: np.ndarray) -> dict[str, float]:
    """p50, p90, p99 and p99.9 of nanosecond samples, in microseconds (numpy's linear interpolation)."""
    values = np.percentile(np.asarray(samples_ns, dtype=np.float64), PERCENTILES) / 1000.0
    return {f"p{p:g}": float(v) for p, v in zip(PERCENTILES, values, strict=True)}


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


def rows_per_second(call: Callable, batch, seconds: float = THROUGHPUT_SECONDS, *, rows: int | None = None) -> float:
    """Rows a second through ``call(batch)`` over about ``seconds`` (``rows``: the batch's rows, where
    ``len(batch)`` is not, as for a dict of input tensors)."""
    call(batch)
    calls, started = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - started < seconds:
        call(batch)
        calls += 1
    return calls * (rows or len(batch)) / (time.perf_counter() - started)


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


