"""`intent-edge train`: a session table to an MLP bundle, or an event log to a sequence-model bundle."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli.common import (
    EpochsOption,
    LabelOption,
    SchemaOption,
    SeedOption,
    SepOption,
    ThresholdOption,
    console,
    epoch_reporter,
    print_schema,
    progress,
    recipe,
    refuse,
    rows_progress,
    rows_reporter,
    stdout,
    user_errors,
)
from intent_edge.errors import UsageError


class Engine(enum.StrEnum):
    local = "local"
    spark = "spark"


class ModelKind(enum.StrEnum):
    mlp = "mlp"
    gru = "gru"
    lstm = "lstm"
    cnn = "cnn"
    hybrid = "hybrid"


def register(app: typer.Typer) -> None:
    app.command()(train)


@user_errors
def train(
    data: Annotated[Path, typer.Argument(help="Training data: CSV (any delimiter) or Parquet: one session a row "
                                              "(mlp), or one event a row (the sequence models).")],
    out: Annotated[Path, typer.Option("--out", help="Bundle directory to write (replaced atomically).")],
    label: LabelOption = None,
    sep: SepOption = None,
    schema: SchemaOption = None,
    seed: SeedOption = None,
    test_fraction: Annotated[float | None, typer.Option(
        "--test-fraction", min=0.05, max=0.5, help="Share of rows (sessions, for event logs) held out for the test "
                                                   "report [default: 0.2; 0.15 for event logs].")] = None,
    time_column: Annotated[str | None, typer.Option(
        "--time-column", help="mlp: hold out the latest periods of this column (e.g. Month) instead of random "
                              "rows.")] = None,
    threshold: ThresholdOption = None,
    max_epochs: EpochsOption = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="mlp: directory for ROC/PR/calibration PNGs of the "
                                                              "test set.")] = None,
    model: Annotated[ModelKind, typer.Option("--model", help="mlp: session table, one row a session. gru, lstm or "
                                                             "cnn: an event log, one row an event, in a tracker's "
                                                             "layout (see the README) or mapped with the options "
                                                             "below, scored per click. "
                                                             "hybrid: a GRU that also reads the session context.")]
        = ModelKind.mlp,
    max_length: Annotated[int | None, typer.Option("--max-length", min=2, help="Sequence models: events per "
                                                                               "session kept for training "
                                                                               "[default: 64].")] = None,
    context_columns: Annotated[str | None, typer.Option(
        "--context-columns", help="hybrid: the event log's session context columns, comma-separated, or 'auto' "
                                  "(every other column that never changes within a session; the default).")] = None,
    session_column: Annotated[str | None, typer.Option(
        "--session-column", help="Event logs: the session id column (the layout's, where one is recognised).",
        rich_help_panel="Event-log layout")] = None,
    event_column: Annotated[str | None, typer.Option(
        "--event-column", help="Event logs: the event name (page or action type) column.",
        rich_help_panel="Event-log layout")] = None,
    timestamp_column: Annotated[str | None, typer.Option(
        "--timestamp-column", help="Event logs: the event time column: epoch numbers or date-time text.",
        rich_help_panel="Event-log layout")] = None,
    user_column: Annotated[str | None, typer.Option(
        "--user-column", help="Event logs: the user id column; without a session column, a user's events are cut "
                              "into sessions at --session-gap.", rich_help_panel="Event-log layout")] = None,
    product_column: Annotated[str | None, typer.Option(
        "--product-column", help="Event logs: the product id column (optional).",
        rich_help_panel="Event-log layout")] = None,
    purchase_events: Annotated[str | None, typer.Option(
        "--purchase-events", help="Event logs: the purchase events, comma-separated [default: purchase, transaction, "
                                  "order, buy or 'Order Completed', any case, singular or plural].",
        rich_help_panel="Event-log layout")] = None,
    time_unit: Annotated[str | None, typer.Option(
        "--time-unit", help="Event logs: numeric timestamps are s, ms or us [default: the layout's, or told apart by "
                            "magnitude].", rich_help_panel="Event-log layout")] = None,
    session_gap: Annotated[float, typer.Option(
        "--session-gap", min=1, help="Event logs without a session column: seconds of inactivity that end a "
                                     "session (30 minutes, the web analytics convention).",
        rich_help_panel="Event-log layout")] = 1800.0,
    buys: Annotated[Path | None, typer.Option(
        "--buys", help="YooChoose (RecSys 2015): the buys file; DATA is then the clicks file (neither has a header).",
        rich_help_panel="Event-log layout")] = None,
    streaming: Annotated[bool | None, typer.Option(
        "--streaming/--in-memory", help="mlp: train out of core, in bounded memory (a hash split, one LightGBM "
                                        "teacher on a sample, one network on encoded shards on disk) [default: "
                                        "streaming above 2,000,000 rows]. DATA may then be a directory of Parquet "
                                        "shards.", rich_help_panel="Large data")] = None,
    id_column: Annotated[str | None, typer.Option(
        "--id-column", help="mlp, streaming: the row key whose hash picks held-out rows [default: the row number].",
        rich_help_panel="Large data")] = None,
    teacher_rows: Annotated[int | None, typer.Option(
        "--teacher-rows", min=1000, help="mlp, streaming: training rows in the teacher's sample [default: 200,000].",
        rich_help_panel="Large data")] = None,
    engine: Annotated[Engine | None, typer.Option(
        "--engine", help="mlp, streaming: where the data passes run: this machine, or Apache Spark (needs "
                         "--id-column; the network still trains here).", rich_help_panel="Large data")] = None,
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="--engine spark: the Spark master URL [default: local[2]].",
        rich_help_panel="Large data")] = None,
):
    """Train a model, evaluate it on held-out data, export it to ONNX with parity and write a bundle.

    The MLP takes one row per session: a first network chooses the epoch count and the threshold on a
    validation split, then a fresh one is fitted on all training rows and ships. The sequence models
    (gru, lstm, cnn, hybrid) take an event log and predict after every event, with a streaming step that
    updates a session in O(1) per event."""
    from intent_edge.train.evaluate import ThresholdPolicy

    policy = ThresholdPolicy.parse(threshold or "max-f1")
    if model is not ModelKind.mlp:
        refuse({"--schema": schema, "--time-column": time_column, "--plots": plots},
               f"to a {model.value} model, which reads an event log")
        if model is not ModelKind.hybrid:
            refuse({"--context-columns": context_columns}, f"to a {model.value} model (only hybrid reads context)")
        reading = {"mapping": {"session": session_column, "event": event_column, "timestamp": timestamp_column,
                               "user": user_column, "product": product_column},
                   "time_unit": time_unit, "session_gap": session_gap, "buys": buys,
                   "purchase_events": None if purchase_events is None else tuple(
                       name.strip() for name in purchase_events.split(",") if name.strip())}
        _train_sequence(data, out, model.value, seed=seed or 0, sep=sep, label=label, policy=policy,
                        max_epochs=max_epochs, max_length=max_length or 64, test_fraction=test_fraction,
                        context_columns=context_columns or "auto", reading=reading)
        return
    refuse({"--max-length": max_length, "--context-columns": context_columns, "--session-column": session_column,
            "--event-column": event_column, "--timestamp-column": timestamp_column, "--user-column": user_column,
            "--product-column": product_column, "--purchase-events": purchase_events, "--time-unit": time_unit,
            "--buys": buys}, "to the mlp, which reads a table")
    from intent_edge.train.scale import STREAMING_ROWS
    from intent_edge.train.table_stream import count_rows

    if engine is Engine.spark and streaming is False:
        raise UsageError("--engine spark trains out of core; drop --in-memory")
    large = streaming is None and (data.is_dir() or count_rows(data) > STREAMING_ROWS)
    if streaming or engine is Engine.spark or large:
        refuse({"--time-column": time_column, "--plots": plots}, "to streaming training (held-out rows by hash)")
        if engine is not Engine.spark:
            refuse({"--spark-master": spark_master}, "without --engine spark")
        _train_streaming(data, out, label=label, sep=sep, schema=schema, seed=seed or 0, policy=policy,
                         max_epochs=max_epochs, test_fraction=0.2 if test_fraction is None else test_fraction,
                         id_column=id_column, teacher_rows=teacher_rows,
                         spark_master=(spark_master or "local[2]") if engine is Engine.spark else None)
        return
    refuse({"--id-column": id_column, "--teacher-rows": teacher_rows, "--engine": engine,
            "--spark-master": spark_master}, "to in-memory training (add --streaming)")
    from intent_edge.data.io import load_dataset
    from intent_edge.train.evaluate import metrics_table
    from intent_edge.train.pipeline import plot_held_out, train_bundle

    dataset = load_dataset(data, label, sep=sep, schema_file=schema)
    print_schema(dataset)
    with progress() as bar:
        task = bar.add_task("training", total=recipe(max_epochs).max_epochs, status="")
        manifest = train_bundle(dataset, out, recipe=recipe(max_epochs), seed=seed or 0, policy=policy,
                                test_fraction=0.2 if test_fraction is None else test_fraction,
                                time_column=time_column, on_epoch=epoch_reporter(bar, task),
                                on_step=lambda message: bar.console.print(message))
    stdout.print(metrics_table(manifest["metrics"]["test"], f"held-out test set ({policy.describe()})"))
    parity = manifest["variants"]["fp32"]["parity"]
    console.print(f"ONNX parity: max |dp| {parity['max_abs_diff']:.2e} over {parity['rows']} rows "
                  f"(tolerance {parity['tolerance']['max']:g})")
    if plots:
        for path in plot_held_out(out, dataset, plots):
            console.print(f"plot: {path}")
    console.print(f"bundle written to {out}")


def _train_streaming(data: Path, out: Path, *, label, sep, schema, seed: int, policy, max_epochs: int | None,
                     test_fraction: float, id_column: str | None, teacher_rows: int | None,
                     spark_master: str | None) -> None:
    from intent_edge.train.evaluate import metrics_table
    from intent_edge.train.scale import TEACHER_ROWS, train_streaming

    spark = None
    if spark_master is not None:
        if id_column is None:
            raise UsageError("--engine spark needs --id-column: Spark reads rows in no fixed order, so the held-out "
                             "rows are chosen by a hash of an id, not of the row number")
        from intent_edge.train.spark_engine import SparkEngine, spark_session

        spark = spark_session(spark_master)
    try:
        with rows_progress() as bar:
            manifest = train_streaming(data, out, label=label, sep=sep, schema_file=schema,
                                       recipe=recipe(max_epochs), seed=seed, policy=policy,
                                       test_fraction=test_fraction, id_column=id_column,
                                       teacher_rows=teacher_rows or TEACHER_ROWS,
                                       on_step=lambda message: bar.console.print(message, markup=False),
                                       progress=rows_reporter(bar),
                                       engine=None if spark is None else SparkEngine(spark))
    finally:
        if spark is not None:
            spark.stop()
    stdout.print(metrics_table(manifest["metrics"]["test"], f"held-out test set ({policy.describe()})"))
    parity = manifest["variants"]["fp32"]["parity"]
    console.print(f"ONNX parity: max |dp| {parity['max_abs_diff']:.2e} over {parity['rows']} rows "
                  f"(tolerance {parity['tolerance']['max']:g})")
    console.print(f"bundle written to {out}")


def _train_sequence(data: Path, out: Path, kind: str, *, seed: int, sep: str | None, label: str | None, policy,
                    max_epochs: int | None, max_length: int, test_fraction: float | None,
                    context_columns: str, reading: dict) -> None:
    from intent_edge.clickstream.models import SequenceRecipe
    from intent_edge.clickstream.pipeline import TEST_FRACTION, train_event_file

    context = "auto" if context_columns.strip() == "auto" else tuple(
        c.strip() for c in context_columns.split(",") if c.strip())
    with console.status(f"training the {kind}"):
        train_event_file(data, out, kind=kind, sep=sep, label=label, context_columns=context, seed=seed,
                         recipe=SequenceRecipe() if max_epochs is None else SequenceRecipe(max_epochs=max_epochs),
                         max_length=max_length, policy=policy,
                         test_fraction=TEST_FRACTION if test_fraction is None else test_fraction,
                         reading=reading, on_step=lambda message: console.print(message, markup=False))
    console.print(f"bundle written to {out}")
