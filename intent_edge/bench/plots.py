"""The benchmark's PNG plots: latency percentiles and throughput against batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from intent_edge.fileio import atomic_path
from intent_edge.timing import PERCENTILES


def _row_label(row: dict) -> str:
    return f"{row['variant']} / {row['backend']}"


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
    for colour, row in zip(colours, rows, strict=False):
        axis.plot([f"p{p:g}" for p in PERCENTILES], [row["predict_us"][f"p{p:g}"] for p in PERCENTILES], marker="o",
                  color=colour, label=_row_label(row))
    axis.set(ylabel="predict(record) latency, µs", yscale="log", title="Single-record latency from raw records")
    axis.legend(**legend)
    latency = directory / "latency.png"
    with atomic_path(latency) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for colour, row in zip(colours, rows, strict=False):
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


