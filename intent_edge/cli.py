"""The `intent-edge` command. Heavy libraries are imported inside the commands that need them, so
`predict` and `info` never load TensorFlow."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from intent_edge.errors import IntentEdgeError, RecordError

app = typer.Typer(help="intent-edge: purchase-intent models from session data to an embeddable runtime.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Make session data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)
stdout = Console()

SepOption = Annotated[str | None, typer.Option("--sep", help="CSV delimiter; sniffed from the file when omitted.")]
LabelOption = Annotated[str | None, typer.Option(
    "--label", help="Label column (TRUE/FALSE, yes/no or 1/0). Defaults to Revenue for the UCI layout.")]
SchemaOption = Annotated[Path | None, typer.Option(
    "--schema", help="JSON schema file forcing column kinds (numeric, categorical, ignore) and transforms.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for splits, initialisation and shuffling.")]
ThresholdOption = Annotated[str, typer.Option(
    "--threshold", help="Decision threshold: max-f1 (on validation data), a number such as 0.4, or cost:FP,FN.")]
PublicKeyOption = Annotated[Path | None, typer.Option(
    "--public-key", help="Require a valid Ed25519 signature on the bundle from this public key (PEM).")]
EpochsOption = Annotated[int | None, typer.Option("--max-epochs", help="Cap on training epochs (early stopping "
                                                                       "usually ends sooner). Default: the recipe's.")]


def _user_errors(command):
    """Print expected errors as one clear line and exit with status 2, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (IntentEdgeError, ValueError) as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _progress():
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=False)


def _epoch_reporter(progress, task):
    def report(epoch: int, max_epochs: int, logs: dict) -> None:
        auc = logs.get("val_auc")
        progress.update(task, completed=epoch, total=max_epochs,
                        status=f"epoch {epoch}" + (f", validation AUC {auc:.4f}" if auc is not None else ""))

    return report


def _recipe(max_epochs: int | None):
    from intent_edge.train.mlp import MLPRecipe

    return MLPRecipe() if max_epochs is None else MLPRecipe(max_epochs=max_epochs)


def _write_json(path: Path, payload: dict) -> None:
    from intent_edge.fileio import atomic_path

    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")


@data_app.command("synth")
@_user_errors
def data_synth(
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv, or .parquet for Parquet.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Number of sessions.")] = 20000,
    seed: SeedOption = 0,
):
    """Write synthetic shopping sessions in the UCI Online Shoppers layout (label column: Revenue)."""
    from intent_edge.data.io import write_table
    from intent_edge.data.synth import generate_sessions

    frame = generate_sessions(rows, seed)
    write_table(frame, out)
    console.print(f"wrote {rows} sessions ({frame['Revenue'].mean():.1%} buyers) to {out}")


@data_app.command("clickstream")
@_user_errors
def data_clickstream(
    out: Annotated[Path, typer.Option("--out", help="Output event log: .csv, or .parquet for Parquet.")],
    sessions: Annotated[int, typer.Option("--sessions", min=1, help="Number of sessions.")] = 20000,
    seed: SeedOption = 0,
):
    """Write a synthetic clickstream event log (session_id, timestamp, event, product, dwell; buying
    sessions end with a purchase event). The story is in intent_edge/clickstream/synth.py."""
    from intent_edge.clickstream.synth import generate_clickstream
    from intent_edge.data.io import write_table

    frame = generate_clickstream(sessions, seed)
    write_table(frame, out)
    buyers = frame.loc[frame["event"] == "purchase", "session_id"].nunique()
    console.print(f"wrote {len(frame):,} events of {sessions:,} sessions ({buyers / sessions:.1%} buy) to {out}")


@app.command()
@_user_errors
def train(
    data: Annotated[Path, typer.Argument(help="Training data: CSV (any delimiter) or Parquet, one session a row.")],
    out: Annotated[Path, typer.Option("--out", help="Bundle directory to write (replaced atomically).")],
    label: LabelOption = None,
    sep: SepOption = None,
    schema: SchemaOption = None,
    seed: SeedOption = 0,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.05, max=0.5,
                                                 help="Share of rows held out for the test report.")] = 0.2,
    time_column: Annotated[str | None, typer.Option(
        "--time-column", help="Hold out the latest periods of this column (e.g. Month) instead of random rows.")] = None,
    threshold: ThresholdOption = "max-f1",
    max_epochs: EpochsOption = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for ROC/PR/calibration PNGs of the "
                                                              "test set.")] = None,
    model: Annotated[str, typer.Option("--model", help="mlp: session table, one row a session. gru, lstm or cnn: "
                                                       "an event log, one row an event (plain session_id,timestamp,"
                                                       "event or the Coveo layout), scored per click. hybrid: a "
                                                       "GRU that also reads the session context.")] = "mlp",
    max_length: Annotated[int, typer.Option("--max-length", min=2, help="Sequence models: events per session "
                                                                        "kept for training.")] = 64,
    context_columns: Annotated[str, typer.Option(
        "--context-columns", help="hybrid: the event log's session context columns, comma-separated, or 'auto' "
                                  "(every other column that never changes within a session).")] = "auto",
):
    """Train a model, evaluate it on held-out data, export it to ONNX with parity and write a bundle.

    The MLP takes one row per session; the sequence models (gru, lstm, cnn, hybrid) take an event log
    and predict after every event, with a streaming step that updates a session in O(1) per event."""
    if model != "mlp":
        _train_sequence(data, out, model, seed=seed, sep=sep, threshold=threshold, max_epochs=max_epochs,
                        max_length=max_length, context_columns=context_columns)
        return
    from intent_edge.data.io import load_dataset
    from intent_edge.train.evaluate import ThresholdPolicy, metrics_table
    from intent_edge.train.pipeline import train_bundle

    policy = ThresholdPolicy.parse(threshold)
    dataset = load_dataset(data, label, sep=sep, schema_file=schema)
    _print_schema(dataset)
    with _progress() as progress:
        task = progress.add_task("training", total=_recipe(max_epochs).max_epochs, status="")
        manifest = train_bundle(dataset, out, recipe=_recipe(max_epochs), seed=seed, policy=policy,
                                test_fraction=test_fraction, time_column=time_column,
                                on_epoch=_epoch_reporter(progress, task),
                                on_step=lambda message: progress.console.print(message))
    stdout.print(metrics_table(manifest["metrics"]["test"], f"held-out test set ({policy.describe()})"))
    parity = manifest["variants"]["fp32"]["parity"]
    console.print(f"ONNX parity: max |dp| {parity['max_abs_diff']:.2e} over {parity['rows']} rows "
                  f"(tolerance {parity['tolerance']:g})")
    if plots:
        _plots_from_bundle(out, dataset, plots)
    console.print(f"bundle written to {out}")


def _train_sequence(data: Path, out: Path, kind: str, *, seed: int, sep: str | None, threshold: str,
                    max_epochs: int | None, max_length: int, context_columns: str) -> None:
    from intent_edge.clickstream.events import read_event_log
    from intent_edge.clickstream.models import KINDS, SequenceRecipe
    from intent_edge.clickstream.pipeline import train_sequence_bundle
    from intent_edge.train.evaluate import ThresholdPolicy

    if kind not in KINDS:
        raise IntentEdgeError(f"--model {kind!r}: choose mlp, {', '.join(KINDS)}")
    context: tuple[str, ...] | str = ()
    if kind == "hybrid":
        context = "auto" if context_columns.strip() == "auto" else tuple(
            c.strip() for c in context_columns.split(",") if c.strip())
    log = read_event_log(data, sep=sep, context=context)
    for note in log.notes:
        console.print(f"note: {note}")
    console.print(f"{len(log):,} sessions, {log.lengths().sum():,} events, {log.labels.mean():.1%} buy")
    recipe = SequenceRecipe() if max_epochs is None else SequenceRecipe(max_epochs=max_epochs)
    with console.status(f"training the {kind}"):
        train_sequence_bundle(log, out, kind=kind, seed=seed, recipe=recipe, max_length=max_length,
                              policy=ThresholdPolicy.parse(threshold), source=Path(data).name,
                              on_step=lambda message: console.print(message))
    console.print(f"bundle written to {out}")


def _print_schema(dataset) -> None:
    kinds = dataset.schema.kinds
    numeric = [n for n, k in kinds.items() if k == "numeric"]
    categorical = [n for n, k in kinds.items() if k == "categorical"]
    console.print(f"label: {dataset.schema.label} ({dataset.labels.mean():.1%} positive, {len(dataset.labels)} rows)")
    console.print(f"numeric: {', '.join(numeric) or '-'}", highlight=False)
    console.print(f"categorical: {', '.join(categorical) or '-'}", highlight=False)
    if dataset.schema.ignored:
        console.print(f"ignored (identifier-like or forced): {', '.join(dataset.schema.ignored)}", highlight=False)


def _plots_from_bundle(bundle: Path, dataset, directory: Path) -> None:
    import numpy as np

    from intent_edge.runtime import Predictor
    from intent_edge.train.evaluate import write_plots
    from intent_edge.train.pipeline import split_for_test

    predictor = Predictor.load(bundle, strict=False)
    training = predictor.manifest["training"]
    _, test, _ = split_for_test(dataset, training["split"].get("test_fraction", 0.2), training["seed"],
                                training["split"].get("column"))
    probabilities = predictor.predict_batch(dataset.features.iloc[test].reset_index(drop=True))
    for path in write_plots(dataset.labels[test], np.asarray(probabilities, np.float64), directory, "held-out test"):
        console.print(f"plot: {path}")


def _is_clickstream(bundle: Path, public_key: Path | None = None) -> bool:
    from intent_edge.runtime.bundle import read_manifest
    from intent_edge.runtime.streaming import TASK

    return read_manifest(bundle, public_key).get("task") == TASK


def _evaluate_clickstream(bundle: Path, data: Path, json_out: Path | None) -> None:
    from rich.table import Table

    from intent_edge.clickstream.events import read_event_log
    from intent_edge.clickstream.pipeline import evaluate_sequence_bundle
    from intent_edge.runtime.bundle import read_manifest

    log = read_event_log(data, context=tuple(read_manifest(bundle).get("context", {}).get("columns", ())))
    for note in log.notes:
        console.print(f"note: {note}")
    report = evaluate_sequence_bundle(bundle, log)
    table = Table(title=f"{bundle} on {data.name}: after the first k events, sessions that go on after event k "
                        "(bundle threshold)")
    for column in ("k", "sessions", "ROC-AUC", "PR-AUC", "precision", "recall", "F1"):
        table.add_column(column)
    for k, m in report.items():
        table.add_row(k, str(m["rows"]), f"{m['roc_auc']:.4f}", f"{m['pr_auc']:.4f}", f"{m['precision']:.4f}",
                      f"{m['recall']:.4f}", f"{m['f1']:.4f}")
    stdout.print(table)
    if json_out:
        _write_json(json_out, {"kind": "clickstream bundle", "bundle": str(bundle), "data": str(data),
                               "by_prefix": report})


@app.command()
@_user_errors
def evaluate(
    data: Annotated[Path, typer.Argument(help="Labelled data: CSV or Parquet.")],
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Score this bundle on DATA (held-out data).")] = None,
    cv: Annotated[int | None, typer.Option("--cv", min=2, help="Stratified K-fold cross-validation of the "
                                                               "training recipe on DATA.")] = None,
    out_of_time: Annotated[str | None, typer.Option(
        "--out-of-time", help="Train on earlier periods of this column (e.g. Month), test on the later ones.")] = None,
    label: LabelOption = None,
    sep: SepOption = None,
    schema: SchemaOption = None,
    seed: SeedOption = 0,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="With --out-of-time: least share of "
                                                                          "rows in the later periods.")] = 0.2,
    threshold: ThresholdOption = "max-f1",
    max_epochs: EpochsOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for ROC/PR/calibration PNGs.")] = None,
):
    """Evaluate a bundle on held-out data, or the training recipe by cross-validation or out of time.

    Exactly one of: --bundle B (score DATA with the bundle and its threshold), --cv K (stratified K-fold
    cross-validation of the recipe), --out-of-time COLUMN (train on earlier periods, test on later ones).
    Reports ROC-AUC, PR-AUC, accuracy, precision, recall, F1, the confusion matrix, Brier score and
    calibration error at the decision threshold."""
    chosen = [name for name, value in (("--bundle", bundle), ("--cv", cv), ("--out-of-time", out_of_time))
              if value is not None]
    if len(chosen) != 1:
        raise ValueError("choose exactly one of --bundle, --cv and --out-of-time"
                         + (f" (got {', '.join(chosen)})" if chosen else ""))
    import numpy as np

    from intent_edge.data.io import load_dataset
    from intent_edge.train.evaluate import ThresholdPolicy, folds_table, metrics_table, write_plots

    if bundle is not None and _is_clickstream(bundle):
        _evaluate_clickstream(bundle, data, json_out)
        return
    if bundle is not None:
        from intent_edge.data.schema import Schema
        from intent_edge.runtime import Predictor
        from intent_edge.train.evaluate import compute_metrics

        predictor = Predictor.load(bundle, strict=False)
        dataset = load_dataset(data, sep=sep, schema=Schema.from_json(predictor.manifest["schema"]))
        probabilities = np.asarray(predictor.predict_batch(dataset.features), np.float64)
        metrics = compute_metrics(dataset.labels, probabilities, predictor.threshold)
        report = {"kind": "bundle", "bundle": str(bundle), "data": str(data), "metrics": metrics}
        stdout.print(metrics_table(metrics, f"{bundle} on {data.name} (bundle threshold)"))
        labels = dataset.labels
    else:
        policy = ThresholdPolicy.parse(threshold)
        dataset = load_dataset(data, label, sep=sep, schema_file=schema)
        _print_schema(dataset)
        from intent_edge.train.pipeline import cross_validate, evaluate_split

        with _progress() as progress:
            task = progress.add_task("training", total=_recipe(max_epochs).max_epochs, status="")
            if cv is not None:
                result = cross_validate(dataset, cv, _recipe(max_epochs), seed, policy,
                                        on_fold=lambda f, k: progress.update(task, description=f"fold {f}/{k}",
                                                                             completed=0),
                                        on_epoch=_epoch_reporter(progress, task))
            else:
                result = evaluate_split(dataset, _recipe(max_epochs), seed, policy, test_fraction, out_of_time,
                                        _epoch_reporter(progress, task))
        if cv is not None:
            report = {"kind": "cross-validation", "data": str(data), "threshold_policy": policy.to_json(), **result}
            stdout.print(folds_table(result["summary"], f"{cv}-fold stratified CV on {data.name} "
                                                        f"(seed {seed}, {policy.describe()})"))
            labels = probabilities = None
        else:
            split = result["split"]
            report = {"kind": "out-of-time", "data": str(data), "split": split, "metrics": result["metrics"]}
            stdout.print(metrics_table(result["metrics"], f"out of time: train {', '.join(split['train_periods'])}"
                                                          f" -> test {', '.join(split['test_periods'])}"))
            labels, probabilities = result["labels"], result["probabilities"]
    if json_out:
        _write_json(json_out, report)
        console.print(f"report: {json_out}")
    if plots:
        if probabilities is None:
            console.print("no plots for cross-validation: each fold has its own model; use --bundle or --out-of-time")
        else:
            for path in write_plots(labels, probabilities, plots, data.name):
                console.print(f"plot: {path}")


@app.command()
@_user_errors
def predict(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `intent-edge train`.")],
    records: Annotated[list[str] | None, typer.Argument(
        help="Records as JSON objects, e.g. '{\"PageValues\": 12.5, ...}'. Read one per line from standard "
             "input when none are given.", show_default=False)] = None,
    variant: Annotated[str | None, typer.Option("--variant", help="Model variant (default: the bundle's).")] = None,
    lenient: Annotated[bool, typer.Option("--lenient", help="Impute empty values (training median, unknown "
                                                            "category) instead of refusing the record.")] = False,
    public_key: PublicKeyOption = None,
):
    """Score single raw records given as JSON, the way an embedding application calls the runtime: one
    JSON line out per record, with its probability and decision. Files go through `intent-edge score`."""
    from intent_edge.runtime import Predictor

    predictor = Predictor.load(bundle, variant, strict=not lenient, public_key=public_key)
    for number, record in _json_lines(records or sys.stdin, "record"):
        try:
            probability = predictor.predict(record)
        except RecordError as exc:
            raise IntentEdgeError(f"record {number}: {exc}") from None
        stdout.print_json(json.dumps({"probability": round(probability, 6),
                                      "decision": probability >= predictor.threshold}), indent=None)


def _json_lines(lines, what: str):
    """(number, parsed value) for each non-blank line; a line that is not JSON stops with its number."""
    for number, text in enumerate((line for line in lines if line.strip()), start=1):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IntentEdgeError(f"{what} {number}: not valid JSON ({exc.msg})") from None
        yield number, value


@app.command()
@_user_errors
def stream(
    bundle: Annotated[Path, typer.Argument(help="Clickstream bundle (intent-edge train EVENTS --model gru|...).")],
    backend: Annotated[str, typer.Option("--backend", help="Step backend: auto, litert or onnxruntime.")] = "auto",
    ttl: Annotated[float, typer.Option("--ttl", min=1, help="Seconds a session may idle before it is dropped.")]
        = 1800.0,
    public_key: PublicKeyOption = None,
):
    """Score a live event stream: JSON lines {"session_id", "event", "timestamp"} on standard input, one JSON
    line out per event with the session's purchase probability so far (O(1) work per event). For a hybrid
    bundle the first event of each session also carries the session context fields (see intent-edge info)."""
    from intent_edge.runtime.streaming import SessionScorer

    scorer = SessionScorer.load(bundle, backend=backend, ttl_seconds=ttl, public_key=public_key)
    for number, event in _json_lines(sys.stdin, "event"):
        if not isinstance(event, dict) or not isinstance(event.get("session_id"), str):
            raise IntentEdgeError(f"event {number}: expected an object with a text session_id")
        try:
            probability = scorer.update(event["session_id"], event)
        except RecordError as exc:
            raise IntentEdgeError(f"event {number}: {exc}") from None
        stdout.print_json(json.dumps({"session_id": event["session_id"], "probability": round(probability, 6),
                                      "decision": probability >= scorer.threshold}), indent=None)


@app.command()
@_user_errors
def score(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `intent-edge train`.")],
    input: Annotated[Path, typer.Argument(help="Records to score: .csv (any delimiter), .parquet or .jsonl, of any "
                                               "size: read in chunks, in constant memory.")],
    output: Annotated[Path, typer.Option("--output", help="Scored file (.csv, .parquet or .jsonl): the --keep "
                                                          "columns, probability and decision. Written atomically: "
                                                          "it appears only when every row is scored.")],
    keep: Annotated[str, typer.Option("--keep", help="Input columns to pass through, comma-separated (e.g. "
                                                     "session_id,store), or 'all'.")] = "",
    variant: Annotated[str | None, typer.Option("--variant", help="Model variant (default: the bundle's).")] = None,
    lenient: Annotated[bool, typer.Option("--lenient", help="Impute empty values (training median, unknown "
                                                            "category) instead of refusing the file.")] = False,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows read and scored at a time.")] = 65536,
    public_key: PublicKeyOption = None,
    sep: SepOption = None,
):
    """Score a file of raw session records with a bundle (no TensorFlow involved), streaming."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from intent_edge.runtime import Predictor
    from intent_edge.score import score_file

    predictor = Predictor.load(bundle, variant, strict=not lenient, public_key=public_key)
    kept = "all" if keep.strip() == "all" else [c.strip() for c in keep.split(",") if c.strip()]
    with Progress(SpinnerColumn(), TextColumn("scoring {task.fields[rows]:,} rows"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("score", total=None, rows=0)
        summary = score_file(predictor, input, output, keep=kept, sep=sep, chunk_rows=chunk_rows,
                             on_chunk=lambda rows: progress.update(task, rows=rows))
    console.print(f"scored {summary.rows:,} records ({summary.above_threshold / summary.rows:.1%} above the "
                  f"threshold {predictor.threshold:.4f}) in {summary.seconds:.1f} s "
                  f"({summary.rows_per_second:,.0f} rows/s) -> {output}")


@app.command()
@_user_errors
def export(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write (replaced atomically if it exists).")],
    format: Annotated[str, typer.Option("--format", help="What to write: triton (a Triton Inference Server model "
                                                         "repository with config.pbtxt and an encoding guide).")] = "triton",
    variant: Annotated[str | None, typer.Option("--variant", help="ONNX variant to export (default: the bundle's "
                                                                  "default if it is ONNX, else fp32).")] = None,
    model_name: Annotated[str, typer.Option("--model-name", help="Model name in the repository.")] = "intent_edge",
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", min=1, help="Triton max_batch_size.")] = 4096,
    instances: Annotated[int, typer.Option("--instances", min=1, help="Model instances (instance_group count).")] = 1,
    gpu: Annotated[bool, typer.Option("--gpu/--cpu", help="Instance kind: KIND_GPU or KIND_CPU.")] = False,
):
    """Export a bundle variant for a serving engine (Triton Inference Server)."""
    if format != "triton":
        raise IntentEdgeError(f"--format {format!r}: the formats are: triton")
    from intent_edge.triton import export_triton

    model_dir = export_triton(bundle, out, variant=variant, model_name=model_name, max_batch_size=max_batch_size,
                              instances=instances, gpu=gpu)
    console.print(f"Triton model repository written: {model_dir}/config.pbtxt, {model_dir}/1/model.onnx; "
                  f"how to encode requests: {out / 'README.md'}")


@app.command()
@_user_errors
def serve(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory; read again on SIGHUP or POST /admin/reload.")],
    host: Annotated[str, typer.Option("--host", help="Address to bind. The default accepts local callers only.")]
        = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8080,
    variant: Annotated[str | None, typer.Option("--variant", help="Model variant (default: the bundle's).")] = None,
    lenient: Annotated[bool, typer.Option("--lenient", help="Impute empty values instead of refusing the record.")]
        = False,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", min=1, help="Largest request body accepted.")]
        = 1 << 20,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most records in one request.")] = 10_000,
    public_key: PublicKeyOption = None,
):
    """Serve the bundle over HTTP: POST /v1/predict, GET /healthz, /metrics (Prometheus), /openapi.json."""
    from intent_edge.serve import Service
    from intent_edge.serve import serve as run_service

    service = Service(bundle, variant=variant, strict=not lenient, public_key=public_key,
                      max_body_bytes=max_body_bytes, max_batch=max_batch)
    described = service.describe()
    console.print(f"serving {bundle} (variant {described['variant']}, {described['backend']}) on http://{host}:{port}"
                  f"; POST /v1/predict, GET /healthz /metrics /openapi.json; SIGHUP or POST /admin/reload "
                  f"(from loopback) loads a new bundle; SIGTERM finishes requests in flight, then stops")
    run_service(service, host, port)


@app.command()
@_user_errors
def compress(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `intent-edge train`.")],
    data: Annotated[Path, typer.Option("--data", help="The file the bundle was trained on (checked by sha256): "
                                                      "its training rows calibrate and fine-tune, its held-out "
                                                      "rows score every variant.")],
    target: Annotated[str, typer.Option("--target", help="cpu (ONNX Runtime and LiteRT variants), litert, or gpu "
                                                         "(TensorRT engines and FP16 ONNX; an NVIDIA host with the "
                                                         "tensorrt extra).")] = "cpu",
    objective: Annotated[str, typer.Option("--objective", help="What the recommended variant is fastest at: latency "
                                                               "(single-row p50) or throughput (batch 4,096).")] = "latency",
    max_auc_drop: Annotated[float, typer.Option("--max-auc-drop", help="ROC-AUC a variant may lose against the "
                                                                       "original and still be recommended.")] = 0.003,
    methods: Annotated[str | None, typer.Option("--methods", help="Comma-separated sources (original, sparse-80, "
                                                                  "units-50, distilled) and/or conversions "
                                                                  "(onnx-fp32, int8-dynamic, int8-static, fp16, "
                                                                  "litert-fp32, litert-int8, trt-fp16, trt-int8); default: all the "
                                                                  "target's.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the table as Markdown here.")] = None,
    sep: SepOption = None,
):
    """Add pruned, quantized and distilled variants to a bundle, prove each, and recommend one.

    Each variant is checked for parity against its own Keras source, scored for ROC-AUC on the bundle's
    held-out rows, and timed on this host. The recommended variant becomes the bundle's default."""
    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.compress.report import compression_markdown, compression_table, failures
    from intent_edge.data.io import load_dataset
    from intent_edge.data.schema import Schema
    from intent_edge.runtime.bundle import read_manifest

    manifest = read_manifest(bundle)
    dataset = load_dataset(data, sep=sep, schema=Schema.from_json(manifest["schema"]))
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    with _progress() as progress:
        task = progress.add_task("compressing", total=None, status="")
        manifest = compress_bundle(bundle, dataset, target=target, objective=objective, max_auc_drop=max_auc_drop,
                                   methods=chosen, on_step=lambda message: progress.update(task, status=message))
    stdout.print(compression_table(manifest))
    for line in failures(manifest):
        console.print(f"not written: {line}", highlight=False)
    console.print(f"recommended ({objective}, ROC-AUC budget {max_auc_drop:g}): "
                  f"[bold]{manifest['compression']['recommended']}[/], now the bundle's default variant")
    if report:
        from intent_edge.fileio import atomic_path

        command = "intent-edge " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["compress"] else "intent-edge compress"
        with atomic_path(report) as temporary:
            temporary.write_text(compression_markdown(manifest, command), encoding="utf-8")
        console.print(f"report: {report}")


@app.command()
@_user_errors
def bench(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory (every variant in it is measured).")],
    data: Annotated[Path | None, typer.Option("--data", help="Raw records to time (CSV, Parquet or JSONL); default: "
                                                             "synthetic sessions, for bundles of the UCI layout.")] = None,
    records: Annotated[int, typer.Option("--records", min=100, help="Distinct records for single-record "
                                                                    "latency.")] = 10000,
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes for "
                                                                   "throughput.")] = "1,4,16,64,256,1024,4096,16384,65536",
    keras_baseline: Annotated[bool, typer.Option("--keras/--no-keras", help="Measure plain Keras as the "
                                                                            "baseline (needs the train extra).")] = True,
    cold_start: Annotated[bool, typer.Option("--cold-start/--no-cold-start", help="Measure new-process start-up "
                                                                                  "and peak memory.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Write the report as Markdown here.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for latency and throughput PNGs.")] = None,
):
    """Latency, throughput, cold start and memory of every backend and variant, beside plain Keras. For a
    clickstream bundle: per-event update latency against rescoring prefixes of 10, 50 and 200 events."""
    import datetime as dt

    from intent_edge.bench import render_markdown, render_table, run_benchmark, write_plots
    from intent_edge.data.schema import Schema, is_uci_layout
    from intent_edge.fileio import atomic_path
    from intent_edge.runtime.bundle import read_manifest

    if _is_clickstream(bundle):
        _bench_streaming(bundle, data, json_out, markdown)
        return
    manifest = read_manifest(bundle)
    schema = Schema.from_json(manifest["schema"])
    if data is not None:
        from intent_edge.data.io import check_features, read_records

        frame = check_features(read_records(data), schema, data)
    elif is_uci_layout(schema.features):
        from intent_edge.data.synth import generate_sessions

        frame = generate_sessions(records, seed=20261127)[schema.features]
    else:
        raise ValueError("this bundle is not of the UCI layout: pass --data with records to time")
    rows = frame.dropna().iloc[:records].to_dict("records")
    sizes = [int(size) for size in batch_sizes.split(",") if size.strip()]
    with _progress() as progress:
        task = progress.add_task("benchmarking", total=None, status="")
        report = run_benchmark(bundle, rows, batch_sizes=sizes, keras_baseline=keras_baseline,
                               measure_cold_start=cold_start, on_step=lambda m: progress.update(task, status=m))
    report["date"] = dt.date.today().isoformat()
    stdout.print(render_table(report))
    for label, values in report["interleaved"].items():
        stdout.print(f"interleaved {label}: p50 {values['p50']:.1f} µs, p99 {values['p99']:.1f} µs")
    for name, value in report["bars"].items():
        stdout.print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
    if json_out:
        _write_json(json_out, report)
    if markdown:
        with atomic_path(markdown) as temporary:
            temporary.write_text(render_markdown(report, "intent-edge " + " ".join(sys.argv[1:])), encoding="utf-8")
    if plots:
        for path in write_plots(report, plots):
            console.print(f"plot: {path}")


def _bench_streaming(bundle: Path, data: Path | None, json_out: Path | None, markdown: Path | None) -> None:
    import datetime as dt

    from intent_edge.bench import render_streaming_markdown, streaming_latency
    from intent_edge.fileio import atomic_path

    if data is not None:
        from intent_edge.clickstream.events import read_event_log

        log = read_event_log(data)
        events = [{"event": e} for e in log.events.tolist()]
    else:
        from intent_edge.clickstream.synth import generate_clickstream

        events = [{"event": e} for e in generate_clickstream(500, seed=20261127)["event"] if e != "purchase"]
    with _progress() as progress:
        task = progress.add_task("benchmarking", total=None, status="")
        report = streaming_latency(bundle, events, on_step=lambda m: progress.update(task, status=m))
    report["date"] = dt.date.today().isoformat()
    text = render_streaming_markdown(report, "intent-edge " + " ".join(sys.argv[1:]))
    stdout.print(text)
    if json_out:
        _write_json(json_out, report)
    if markdown:
        with atomic_path(markdown) as temporary:
            temporary.write_text(text, encoding="utf-8")


def _info_clickstream(bundle: Path, public_key: Path | None) -> None:
    from rich.table import Table

    from intent_edge.runtime.bundle import read_manifest, resolve_file
    from intent_edge.runtime.streaming import describe_state

    manifest = read_manifest(bundle, public_key)
    if public_key is not None:
        stdout.print(f"signature verified with {public_key}")
    step = manifest.get("step", {})
    steps = {**{f"{b} fp32": e for b, e in step.get("backends", {}).items()},
             **{f"{b} int8": e for b, e in step.get("int8", {}).items()}}
    for entry in (manifest["source_model"]["file"], manifest["golden"]["file"], *(e["file"] for e in steps.values())):
        resolve_file(bundle, entry)
    model = manifest["model"]
    stdout.print(f"[bold]{bundle}[/]: clickstream {model['kind']} ({model['recipe']['units']} units), "
                 f"{len(manifest['sequence']['vocabulary'])} event types: "
                 f"{', '.join(manifest['sequence']['vocabulary'])}; created {manifest['created']}", highlight=False)
    stdout.print(f"threshold {manifest['threshold']['value']:.4f}; test ROC-AUC by prefix: "
                 + ", ".join(f"k={k} {m['roc_auc']:.4f}" for k, m in manifest["metrics"]["test"].items()))
    table = Table(title="streaming steps (checksums verified)")
    for column in ("step", "file", "bytes", "parity max |dp|"):
        table.add_column(column)
    for name, entry in steps.items():
        table.add_row(name, entry["file"]["path"], str(entry["file"]["bytes"]),
                      f"{entry['parity']['max_abs_diff']:.2e} ({entry['parity']['rows']} events)")
    if steps:
        stdout.print(f"per-session state: {describe_state(step)}")
    if "context" in manifest:
        for entry in manifest["context"]["backends"].values():
            resolve_file(bundle, entry["file"])
        stdout.print("session context, read from each session's first event: "
                     + ", ".join(manifest["context"]["columns"]), highlight=False)
    stdout.print(table if steps else "no streaming step (a cnn bundle from before streaming windows)")


@app.command()
@_user_errors
def info(bundle: Annotated[Path, typer.Argument(help="Bundle directory.")], public_key: PublicKeyOption = None):
    """Verify a bundle's checksums (and signature) and show its schema, threshold, metrics and variants."""
    from rich.table import Table

    from intent_edge.runtime import Predictor
    from intent_edge.runtime.bundle import resolve_file

    if _is_clickstream(bundle, public_key):
        _info_clickstream(bundle, public_key)
        return
    predictor = Predictor.load(bundle, public_key=public_key)
    manifest = predictor.manifest
    if public_key is not None:
        stdout.print(f"signature verified with {public_key}")
    for entry in (manifest["source_model"]["file"], manifest["golden"]["file"],
                  *(v["file"] for v in manifest["variants"].values()),
                  *(s["file"] for s in manifest.get("sources", {}).values())):
        resolve_file(bundle, entry)
    test = manifest["metrics"]["test"]
    stdout.print(f"[bold]{bundle}[/]: label {manifest['label']}, {len(predictor.feature_names)} features, "
                 f"encoded width {predictor.encoder.width}, created {manifest['created']}")
    kinds = manifest["schema"]["kinds"]
    for kind in ("numeric", "categorical"):
        stdout.print(f"{kind}: {', '.join(n for n, k in kinds.items() if k == kind) or '-'}", highlight=False)
    stdout.print(f"threshold {predictor.threshold:.4f}; test ROC-AUC {test['roc_auc']:.4f}, PR-AUC {test['pr_auc']:.4f}, "
                 f"F1 {test['f1']:.4f} on {test['rows']} rows; runtime backend: {predictor.runner.description}; "
                 f"single-record encoder: {'compiled fast path' if predictor.encoder.fast_path else 'pure Python'}")
    table = Table(title=f"variants (checksums verified; default: {manifest['default_variant']})")
    for column in ("variant", "format", "file", "bytes", "parity max |dp|"):
        table.add_column(column)
    for name, variant in manifest["variants"].items():
        table.add_row(name, variant["format"], variant["file"]["path"], str(variant["file"]["bytes"]),
                      f"{variant['parity']['max_abs_diff']:.2e} ({variant['parity']['rows']} rows)")
    stdout.print(table)


@app.command()
@_user_errors
def keygen(
    private: Annotated[Path, typer.Option("--private", help="Where to write the private key (PEM, mode 600).")],
    public: Annotated[Path, typer.Option("--public", help="Where to write the public key (PEM).")],
):
    """Make an Ed25519 key pair for signing bundles."""
    from intent_edge.runtime.signing import generate_keypair

    if private.exists():
        raise ValueError(f"{private} exists; refusing to overwrite a private key")
    generate_keypair(private, public)
    console.print(f"private key: {private} (keep it secret); public key: {public} (ship it with the runtime)")


@app.command()
@_user_errors
def sign(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory to sign (sign after train and compress).")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM), e.g. from `intent-edge keygen`.")],
):
    """Sign a bundle's manifest, which lists every file's sha256, with an Ed25519 private key."""
    from intent_edge.runtime.signing import SIGNATURE_NAME, sign_bundle

    sign_bundle(bundle, key)
    console.print(f"signed: {bundle / SIGNATURE_NAME}; load with Predictor.load(..., public_key=PUBLIC_PEM) or "
                  "--public-key")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
