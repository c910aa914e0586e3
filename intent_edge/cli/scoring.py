"""`intent-edge predict`, `stream` and `score`: records, live events and files through the runtime."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli.common import (
    PublicKeyOption,
    SepOption,
    StepBackend,
    console,
    json_lines,
    print_json_line,
    user_errors,
)
from intent_edge.errors import RecordError, UsageError

LenientOption = Annotated[bool, typer.Option("--lenient", help="Impute empty values (training median, unknown "
                                                               "category) instead of refusing the record.")]
VariantOption = Annotated[str | None, typer.Option("--variant", help="Model variant (default: the bundle's).")]


def register(app: typer.Typer) -> None:
    app.command()(predict)
    app.command()(stream)
    app.command()(score)


@user_errors
def predict(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `intent-edge train`.")],
    records: Annotated[list[str] | None, typer.Argument(
        help="Records as JSON objects, e.g. '{\"PageValues\": 12.5, ...}'. Read one per line from standard "
             "input when none are given.", show_default=False)] = None,
    variant: VariantOption = None,
    lenient: LenientOption = False,
    explain: Annotated[bool, typer.Option("--explain", help="Add each field's contribution to the probability "
                                                            "(Shapley values against the bundle's background; "
                                                            "they add up to probability - base).")] = False,
    top: Annotated[int | None, typer.Option("--top", min=1, help="With --explain: keep the K largest "
                                                                 "contributions.")] = None,
    public_key: PublicKeyOption = None,
):
    """Score single raw records given as JSON, the way an embedding application calls the runtime: one
    JSON line out per record, with its probability and decision. Files go through `intent-edge score`."""
    from intent_edge.runtime import Predictor

    if top is not None and not explain:
        raise UsageError("--top applies with --explain")
    predictor = Predictor.load(bundle, variant, strict=not lenient, public_key=public_key)
    for number, record in json_lines(records or sys.stdin, "record"):
        try:
            probability = predictor.predict(record)
            line = {"probability": round(probability, 6), "decision": probability >= predictor.threshold}
            if explain:
                explanation = predictor.explain(record)
                line["base"] = round(explanation.base, 6)
                line["contributions"] = {k: round(v, 6) for k, v in explanation.top(top).items()}
        except RecordError as exc:
            raise UsageError(f"record {number}: {exc}") from None
        print_json_line(line)


@user_errors
def stream(
    bundle: Annotated[Path, typer.Argument(help="Clickstream bundle (intent-edge train EVENTS --model gru|...).")],
    backend: Annotated[StepBackend, typer.Option("--backend", help="Step backend: auto (LiteRT where installed), "
                                                                   "litert or onnxruntime.")] = StepBackend.auto,
    ttl: Annotated[float, typer.Option("--ttl", min=1, help="Seconds a session may idle before it is dropped.")]
        = 1800.0,
    explain: Annotated[bool, typer.Option("--explain", help="Add to each line how much this event changed the "
                                                            "session's probability (\"change\"; null for the "
                                                            "event that opens a session).")] = False,
    public_key: PublicKeyOption = None,
):
    """Score a live event stream: JSON lines on standard input, one event a line, in the layout the bundle's
    training log had (plain: {"session_id", "event", "timestamp"}; a REES46 bundle reads {"user_session",
    "event_type", "event_time", ...}; see intent-edge info), with no flags. One JSON line out per event
    with the session's purchase probability so far (O(1) work per event). For a hybrid bundle the first
    event of each session also carries the session context fields."""
    from intent_edge.runtime.events import EventRouter
    from intent_edge.runtime.streaming import SessionScorer

    scorer = SessionScorer.load(bundle, backend=backend.value, ttl_seconds=ttl, public_key=public_key)
    router = EventRouter.from_reading(scorer.manifest.get("events"))
    for number, event in json_lines(sys.stdin, "event"):
        if not isinstance(event, dict):
            raise UsageError(f"event {number}: expected an object with {', '.join(router.fields())}")
        try:
            session, routed = router.route(event)
            probability, change = scorer.update_with_change(session, {**event, **routed})
        except RecordError as exc:
            raise UsageError(f"event {number}: {exc}") from None
        line = {"session_id": session, "probability": round(probability, 6),
                "decision": probability >= scorer.threshold}
        if explain:
            line["change"] = None if change is None else round(change, 6)
        print_json_line(line)


@user_errors
def score(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `intent-edge train`.")],
    input: Annotated[Path, typer.Argument(help="Records to score: .csv (any delimiter), .parquet or .jsonl, of any "
                                               "size: read in chunks, in constant memory.")],
    output: Annotated[Path, typer.Option("--output", help="Scored file (.csv, .parquet or .jsonl): the --keep "
                                                          "columns, probability and decision. Written atomically: "
                                                          "it appears only when every row is scored.")],
    keep: Annotated[str, typer.Option("--keep", help="Input columns to pass through, comma-separated (e.g. "
                                                     "session_id,store), or 'all'.")] = "",
    variant: VariantOption = None,
    lenient: LenientOption = False,
    backend: Annotated[str, typer.Option("--backend", help="What runs the model: auto (the native kernel where the "
                                                           "variant has it, else an interpreter), native, "
                                                           "onnxruntime, litert or tensorrt. For large files ONNX "
                                                           "Runtime's batches are faster than the native kernel's.")]
        = "auto",
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows read and scored at a time.")] = 65536,
    public_key: PublicKeyOption = None,
    sep: SepOption = None,
    monitor: Annotated[Path | None, typer.Option("--monitor", help="Also write the monitoring sketch of what was "
                                                                   "scored (JSON, kilobytes): an input of "
                                                                   "`intent-edge monitor`.")] = None,
):
    """Score a file of raw session records with a bundle (no TensorFlow involved), streaming."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from intent_edge.runtime import Predictor
    from intent_edge.score import score_file

    predictor = Predictor.load(bundle, variant, backend=backend, strict=not lenient, public_key=public_key)
    kept = "all" if keep.strip() == "all" else [c.strip() for c in keep.split(",") if c.strip()]
    watcher = predictor.start_monitoring() if monitor is not None else None
    with Progress(SpinnerColumn(), TextColumn("scoring {task.fields[rows]:,} rows"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("score", total=None, rows=0)
        summary = score_file(predictor, input, output, keep=kept, sep=sep, chunk_rows=chunk_rows,
                             on_chunk=lambda rows: bar.update(task, rows=rows))
    console.print(f"scored {summary.rows:,} records ({summary.above_threshold / summary.rows:.1%} above the "
                  f"threshold {predictor.threshold:.4f}) in {summary.seconds:.1f} s "
                  f"({summary.rows_per_second:,.0f} rows/s) -> {output}")
    if watcher is not None:
        from intent_edge.cli.common import write_json

        write_json(monitor, watcher.snapshot().to_json())
        console.print(f"monitoring sketch of the {summary.rows:,} records -> {monitor}")
