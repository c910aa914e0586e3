"""What every command shares: the consoles, option types, the user-error wrapper, progress, writing."""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from intent_edge.errors import IntentEdgeError, UsageError

console = Console(stderr=True)
stdout = Console()

SepOption = Annotated[str | None, typer.Option("--sep", help="CSV delimiter; sniffed from the file when omitted.")]
LabelOption = Annotated[str | None, typer.Option(
    "--label", help="Label column (TRUE/FALSE, yes/no or 1/0). Defaults to Revenue for the UCI layout; for an "
                    "event log, a per-session label column (default: a purchase event ends a buying session).")]
SchemaOption = Annotated[Path | None, typer.Option(
    "--schema", help="JSON schema file forcing column kinds (numeric, categorical, ignore) and transforms.")]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Seed for splits, initialisation and shuffling "
                                                              "[default: 0].")]
ThresholdOption = Annotated[str | None, typer.Option(
    "--threshold", help="Decision threshold: max-f1 (on validation data, the default), a number such as 0.4, or "
                        "cost:FP,FN.")]
PublicKeyOption = Annotated[Path | None, typer.Option(
    "--public-key", help="Require a valid Ed25519 signature on the bundle from this public key (PEM).")]
EpochsOption = Annotated[int | None, typer.Option("--max-epochs", min=1, help="Cap on training epochs (early "
                                                                              "stopping usually ends sooner). "
                                                                              "Default: the recipe's.")]


class StepBackend(enum.StrEnum):
    auto = "auto"
    litert = "litert"
    onnxruntime = "onnxruntime"


def user_errors(command):
    """Print the errors intent-edge raises on purpose as one clear line and exit with status 2. Anything
    else is a bug and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except IntentEdgeError as exc:
            console.print("[bold red]error:[/] ", end="")
            console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def refuse(given: dict[str, Any], why: str) -> None:
    """Refuse the options among ``given`` (flag -> value, None when not given) that were given although
    they do not apply, naming them and ``why``."""
    named = [flag for flag, value in given.items() if value is not None]
    if named:
        raise UsageError(f"{', '.join(named)} {'does' if len(named) == 1 else 'do'} not apply {why}")


def progress():
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=False)


def rows_progress():
    """A progress display for passes over rows: each pass a bar with rows done, rows/s and time left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console, transient=False)


def rows_reporter(bar):
    """A ``progress(stage, rows done, rows in all)`` callback that keeps one bar per stage."""
    import time

    tasks: dict[str, tuple[int, float]] = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = (bar.add_task(stage, total=total, rate=""), time.monotonic())
        task, started = tasks[stage]
        elapsed = time.monotonic() - started
        bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f} rows/s" if elapsed > 0 else "")

    return report


def epoch_reporter(bar, task):
    def report(epoch: int, max_epochs: int, logs: dict) -> None:
        auc = logs.get("val_auc")
        bar.update(task, completed=epoch, total=max_epochs,
                   status=f"epoch {epoch}" + (f", validation AUC {auc:.4f}" if auc is not None else ""))

    return report


def recipe(max_epochs: int | None):
    from intent_edge.train.mlp import MLPRecipe

    return MLPRecipe() if max_epochs is None else MLPRecipe(max_epochs=max_epochs)


def write_text(path: Path, text: str) -> None:
    from intent_edge.fileio import atomic_path

    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path, payload: dict) -> None:
    write_text(path, json.dumps(payload, indent=2, default=float) + "\n")


def command_line(name: str) -> str:
    """The command as typed, for reports (``intent-edge NAME`` when run from Python)."""
    return "intent-edge " + " ".join(sys.argv[1:]) if sys.argv[1:2] == [name] else f"intent-edge {name}"


def json_lines(lines: Iterable[str], what: str) -> Iterator[tuple[int, Any]]:
    """(number, parsed value) for each non-blank line; a line that is not JSON stops with its number."""
    for number, text in enumerate((line for line in lines if line.strip()), start=1):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{what} {number}: not valid JSON ({exc.msg})") from None
        yield number, value


def print_json_line(payload: dict) -> None:
    stdout.print_json(json.dumps(payload), indent=None)


def print_notes(notes: Iterable[str]) -> None:
    for note in notes:
        console.print(f"note: {note}", markup=False)


def print_schema(dataset) -> None:
    kinds = dataset.schema.kinds
    numeric = [n for n, k in kinds.items() if k == "numeric"]
    categorical = [n for n, k in kinds.items() if k == "categorical"]
    console.print(f"label: {dataset.schema.label} ({dataset.labels.mean():.1%} positive, {len(dataset.labels)} rows)")
    console.print(f"numeric: {', '.join(numeric) or '-'}", highlight=False)
    console.print(f"categorical: {', '.join(categorical) or '-'}", highlight=False)
    for name in dataset.schema.ignored:
        console.print(f"ignored: {name}: {dataset.schema.reasons.get(name, 'forced')}", markup=False, highlight=False)


def is_clickstream(bundle: Path, public_key: Path | None = None) -> bool:
    from intent_edge.runtime.bundle import read_manifest
    from intent_edge.runtime.streaming import TASK

    return read_manifest(bundle, public_key).get("task") == TASK
