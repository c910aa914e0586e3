"""The compression table, for the terminal (rich) and for reports (Markdown), from a bundle's manifest."""

from __future__ import annotations

COLUMNS = ("variant", "status", "bytes (% fp32)", "ROC-AUC (Δ)", "parity |dp| p99 / max", "latency µs p50 / p99",
           "rows/s", "output levels", "tie share", "raw-field graph")


def _levels(row: dict) -> str:
    if row["status"] != "ok" or "output_levels" not in row:
        return "-"
    return "float32" if row["output_levels"] is None else f"{row['output_levels']:,}"


def _cells(row: dict, fp32_bytes: int, recommended: str) -> list[str]:
    parity = row.get("parity") or {}
    latency = row.get("latency_us") or {}
    status = "ok" if row["status"] == "ok" else row["status"].split(":")[0]
    return [
        row["name"] + (" ★" if row["name"] == recommended else ""),
        status,
        f"{row['bytes']} ({100 * row['bytes'] / fp32_bytes:.0f}%)" if row["bytes"] else "-",
        "-" if row.get("roc_auc") is None else f"{row['roc_auc']:.4f} ({row['delta_roc_auc']:+.4f})",
        "-" if "max_abs_diff" not in parity else f"{parity.get('p99_abs_diff', parity['max_abs_diff']):.2g} / "
                                                 f"{parity['max_abs_diff']:.2g}",
        "-" if not latency else f"{latency['p50']:.1f} / {latency['p99']:.1f}",
        "-" if row.get("throughput_rows_s") is None else f"{row['throughput_rows_s']:,.0f}",
        _levels(row),
        "-" if row.get("tie_share") is None else f"{100 * row['tie_share']:.1f}%",
        "-" if not row.get("raw") else row["raw"].split(":")[0],
    ]


LEVELS_NOTE = ("Output levels: the distinct probabilities a variant's graph can output, read from its output "
               "quantisation (float32: continuous). An int8 variant's 256 levels mean that rows with equal scores tie "
               "in ranking and that a threshold can only fall between levels; tie share is the share of held-out "
               "rows whose probability equals another row's.")


def failures(manifest: dict) -> list[str]:
    """One line per variant, or variant's raw-field graph, that was not written, with the whole reason."""
    table = manifest["compression"]["table"]
    return ([f"{row['name']}: {row['status']}" for row in table if row["status"] != "ok"]
            + [f"{row['name']} raw-field graph: {row['raw']}" for row in table
               if row["status"] == "ok" and row.get("raw") not in (None, "ok")])


def _rows(manifest: dict):
    compression = manifest["compression"]
    fp32_bytes = manifest["variants"]["fp32"]["file"]["bytes"]
    return [_cells(row, fp32_bytes, compression["recommended"]) for row in compression["table"]]


def compression_table(manifest: dict):
    from rich.table import Table

    compression = manifest["compression"]
    table = Table(title=f"compression for {compression['target']} (★ recommended for {compression['objective']}, "
                        f"ROC-AUC budget {compression['max_auc_drop']:g}, {compression['evaluated_on']['rows']} "
                        "held-out rows)")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("variant", "status") else "right")
    for cells in _rows(manifest):
        table.add_row(*cells)
    return table


def compression_markdown(manifest: dict, command: str) -> str:
    compression = manifest["compression"]
    lines = [f"Command: `{command}`", "",
             f"Target {compression['target']}, objective {compression['objective']}, ROC-AUC budget "
             f"{compression['max_auc_drop']:g}; AUC on {compression['evaluated_on']['rows']} held-out rows "
             f"(original {compression['original_roc_auc']:.4f}); latency and throughput on encoded input, "
             "one thread. Libraries: " + ", ".join(f"{k} {v}" for k, v in manifest["libraries"].items()) + ".", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _rows(manifest)]
    lines += ["", LEVELS_NOTE]
    lines += ["", "Not written (each failed its check):", ""] + [f"- {line}" for line in failures(manifest)] \
        if failures(manifest) else []
    return "\n".join(lines) + "\n"
