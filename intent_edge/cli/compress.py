"""`intent-edge compress`: pruned, quantized and distilled variants of a bundle, each proven; one recommended."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli.common import SepOption, command_line, console, progress, stdout, user_errors, write_text
from intent_edge.compress.registry import CONVERSIONS, SOURCES, TARGETS

Target = enum.StrEnum("Target", {name: name for name in TARGETS})


class Objective(enum.StrEnum):
    latency = "latency"
    throughput = "throughput"


def register(app: typer.Typer) -> None:
    app.command()(compress)


@user_errors
def compress(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `intent-edge train`.")],
    data: Annotated[Path, typer.Option("--data", help="The file the bundle was trained on (checked by sha256): "
                                                      "its training rows calibrate and fine-tune, its held-out "
                                                      "rows score every variant.")],
    target: Annotated[Target, typer.Option("--target", help="cpu (ONNX Runtime and LiteRT variants), litert, or gpu "
                                                            "(TensorRT engines and FP16 ONNX; an NVIDIA host with the "
                                                            "tensorrt extra).")] = Target["cpu"],
    objective: Annotated[Objective, typer.Option("--objective", help="What the recommended variant is fastest at: "
                                                                     "latency (single-row p50) or throughput (batch "
                                                                     "4,096).")] = Objective.latency,
    max_auc_drop: Annotated[float, typer.Option("--max-auc-drop", min=0.0, help="ROC-AUC a variant may lose against "
                                                                                "the original and still be "
                                                                                "recommended.")] = 0.003,
    methods: Annotated[str | None, typer.Option(
        "--methods", help=f"Comma-separated sources ({', '.join(SOURCES)}) and/or conversions "
                          f"({', '.join(CONVERSIONS)}); default: all the target's.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the table as Markdown here.")] = None,
    sep: SepOption = None,
):
    """Add pruned, quantized and distilled variants to a bundle, prove each, and recommend one.

    Each variant is checked for parity against its own Keras source, scored for ROC-AUC on the bundle's
    held-out rows, and timed on this host. The recommended variant becomes the bundle's default."""
    from intent_edge.compress.pipeline import compress_file
    from intent_edge.compress.report import LEVELS_NOTE, compression_markdown, compression_table, failures

    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    with progress() as bar:
        task = bar.add_task("compressing", total=None, status="")
        manifest = compress_file(bundle, data, sep=sep, target=Target(target).value, objective=objective.value,
                                 max_auc_drop=max_auc_drop, methods=chosen,
                                 on_step=lambda message: bar.update(task, status=message))
    stdout.print(compression_table(manifest))
    console.print(LEVELS_NOTE, markup=False, highlight=False)
    for line in failures(manifest):
        console.print(f"not written: {line}", markup=False, highlight=False)
    console.print(f"recommended ({objective.value}, ROC-AUC budget {max_auc_drop:g}): "
                  f"[bold]{manifest['compression']['recommended']}[/], now the bundle's default variant")
    if report:
        write_text(report, compression_markdown(manifest, command_line("compress")))
        console.print(f"report: {report}")
