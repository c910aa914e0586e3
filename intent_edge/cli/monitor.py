"""`intent-edge monitor`: drift and estimated and realised performance of a bundle on new data or sketches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from intent_edge.cli import common
from intent_edge.cli.common import SepOption, console, stdout, user_errors

DRIFT_EXIT = 3  # past --fail-on; 2 stays the usage error


def register(app: typer.Typer) -> None:
    app.command()(monitor)


def _is_sketch(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == "intent-edge sketch"
    except (OSError, ValueError, AttributeError):
        return False


@user_errors
def monitor(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory (its monitoring profile is the reference).")],
    inputs: Annotated[list[Path], typer.Argument(help="Data files (CSV, Parquet, JSON Lines) to score, or sketches "
                                                      "(JSON from `score --monitor` or Monitor.snapshot()); they "
                                                      "are merged.")],
    labels: Annotated[str | None, typer.Option("--labels", help="The outcome column of the data files (TRUE/FALSE, "
                                                                "1/0): adds the realised figures.")] = None,
    variant: Annotated[str | None, typer.Option("--variant", help="Variant to monitor (default: the bundle's "
                                                                  "default one).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON (a documented "
                                                                 "contract: see the README).")] = None,
    fail_on: Annotated[str | None, typer.Option("--fail-on", help="Exit with status 3 on 'drift' (any field or the "
                                                                  "score drifting) or 'performance' (estimated or "
                                                                  "realised ROC-AUC below the bundle's held-out one "
                                                                  "by more than --max-auc-drop).")] = None,
    max_auc_drop: Annotated[float, typer.Option("--max-auc-drop", min=0.0, max=1.0,
                                                help="--fail-on performance: the ROC-AUC drop that alerts.")] = 0.02,
    by: Annotated[str | None, typer.Option("--by", help="A period column of the data files (a month, a date): "
                                                        "adds a row per period, and `periods` to the JSON.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for PNGs: each drifting field's training "
                                                               "and current distributions; with --by, drift and "
                                                               "the estimated ROC-AUC over the periods.")] = None,
    sep: SepOption = None,
):
    """Compare new data (or the sketches tills kept) with the training reference: per-field drift (PSI,
    Jensen-Shannon, chi-square), score drift, and the ROC-AUC, precision and recall estimated from the
    calibrated scores, and realised where outcomes are given. Exit status 3 past --fail-on."""
    import numpy as np

    from intent_edge.data.io import check_feature_columns, iter_record_chunks, parse_label
    from intent_edge.data.schema import Schema
    from intent_edge.errors import UsageError
    from intent_edge.monitoring.drift import realised_performance, report
    from intent_edge.runtime import Predictor
    from intent_edge.runtime.monitor import Sketch

    if fail_on not in (None, "drift", "performance"):
        raise UsageError(f"--fail-on takes drift or performance, got {fail_on!r}")
    from intent_edge.runtime.monitor import Monitor, Profile

    predictor = Predictor.load(bundle, variant, strict=False)
    watcher = Monitor(Profile.load(bundle, predictor.manifest, predictor.variant))
    schema = Schema.from_json(predictor.manifest["schema"])
    sketch, outcomes, scores = None, [], []
    periods: dict = {}  # period -> (Monitor, outcomes, scores)
    for path in inputs:
        if _is_sketch(path):
            if labels is not None:
                raise UsageError(f"--labels reads data files; {path} is a sketch")
            part = Sketch.from_json(json.loads(path.read_text(encoding="utf-8")))
            sketch = part if sketch is None else sketch.merge(part)
            continue
        first = 0
        for chunk in iter_record_chunks(path, sep):
            features = check_feature_columns(chunk, schema, path, first_row=first, chunk=True)
            encoded = predictor.encode(features)
            probabilities = predictor.runner.infer(encoded)
            watcher.update(encoded, probabilities)
            known = None
            if labels is not None:
                if labels not in chunk.columns:
                    raise UsageError(f"{path}: no column '{labels}' for --labels")
                known = parse_label(path, chunk[labels], first_row=first)
                outcomes.append(known)
                scores.append(probabilities)
            if by is not None:
                if by not in chunk.columns:
                    raise UsageError(f"{path}: no column '{by}' for --by")
                values = chunk[by].astype(str).to_numpy()
                for period in np.unique(values):
                    rows = values == period
                    entry = periods.setdefault(period, (Monitor(watcher.profile), [], []))
                    entry[0].update(encoded[rows], probabilities[rows])
                    if known is not None:
                        entry[1].append(known[rows])
                        entry[2].append(probabilities[rows])
            first += len(chunk)
    scored = watcher.snapshot()
    sketch = scored if sketch is None else sketch.merge(scored) if scored.rows else sketch
    realised = None
    if labels is not None:
        realised = realised_performance(np.concatenate(outcomes), np.concatenate(scores), predictor.threshold)
    result = report(watcher.profile, sketch, realised)
    if by is not None:
        result["periods"] = {}
        for period in sorted(periods, key=_period_key):
            part, known, scored = periods[period]
            figures = None if not known else realised_performance(np.concatenate(known), np.concatenate(scored),
                                                                   predictor.threshold)
            result["periods"][period] = report(watcher.profile, part.snapshot(), figures)
    _print(result)
    if plots is not None:
        from intent_edge.monitoring.plots import write_monitor_plots

        for path in write_monitor_plots(result, plots):
            console.print(f"plot: {path}")
    if json_out is not None:
        common.write_json(json_out, result)
        console.print(f"report written to {json_out}")
    if fail_on == "drift" and result["drift"]:
        raise typer.Exit(DRIFT_EXIT)
    if fail_on == "performance":
        reference = result["performance"]["reference"]["roc_auc"]
        figures = [result["performance"]["estimated"]["roc_auc"],
                   (result["performance"].get("realised") or {}).get("roc_auc")]
        if any(f is not None and f < reference - max_auc_drop for f in figures):
            raise typer.Exit(DRIFT_EXIT)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _period_key(value: str):
    """Periods in time order: month names by the calendar, numbers by value, anything else as text."""
    text = value.strip().lower()[:3]
    if text in _MONTHS:
        return (0, _MONTHS.index(text), "")
    try:
        return (1, float(value), "")
    except ValueError:
        return (2, 0.0, value)


def _print(result: dict) -> None:
    from rich.table import Table

    table = Table(title=f"drift over {result['rows']:,} rows (variant {result['variant']}; drift: PSI >= "
                        f"{result['rule']['psi_threshold']} and chi-square p < {result['rule']['alpha_per_test']:.2g})")
    for column in ("field", "PSI", "JS distance", "chi-square p", "drift"):
        table.add_column(column, justify="left" if column == "field" else "right")
    for name, entry in [*result["fields"].items(), ("score", result["score"])]:
        table.add_row(name, f"{entry['psi']:.3f}", f"{entry['js_distance']:.3f}", f"{entry['p_value']:.2g}",
                      "[bold red]yes[/]" if entry["drift"] else "no")
    stdout.print(table)
    performance = result["performance"]
    estimated = performance["estimated"]

    def shown(value):
        return "-" if value is None else f"{value:.4f}"

    rows = [("held-out ROC-AUC (reference)", shown(performance["reference"]["roc_auc"])),
            ("estimated ROC-AUC (95% band)", f"{shown(estimated['roc_auc'])} ({shown(estimated['lower'])} - "
                                             f"{shown(estimated['upper'])})"),
            ("estimated precision / recall", f"{shown(estimated['precision'])} / {shown(estimated['recall'])}")]
    for field, entry in estimated["unseen"].items():
        rows.append(("estimate unreliable", f"{field}: {entry['share']:.0%} never seen in training "
                                            f"({entry['reference_share']:.1%} there)"))
    if "realised" in performance:
        realised = performance["realised"]
        rows += [("realised ROC-AUC", shown(realised["roc_auc"])),
                 ("realised precision / recall", f"{shown(realised['precision'])} / {shown(realised['recall'])}")]
    performance_table = Table(title="performance")
    performance_table.add_column("figure")
    performance_table.add_column("value", justify="right")
    for row in rows:
        performance_table.add_row(*row)
    stdout.print(performance_table)
    if "periods" in result:
        periods = Table(title="by period")
        for column in ("period", "rows", "drifting fields", "score PSI", "estimated ROC-AUC", "realised ROC-AUC"):
            periods.add_column(column, justify="left" if column == "period" else "right")
        for name, entry in result["periods"].items():
            drifting = [field for field, verdict in entry["fields"].items() if verdict["drift"]]
            periods.add_row(name, f"{entry['rows']:,}", ", ".join(drifting) or "-", f"{entry['score']['psi']:.3f}",
                            shown(entry["performance"]["estimated"]["roc_auc"]),
                            shown((entry["performance"].get("realised") or {}).get("roc_auc")))
        stdout.print(periods)
    stdout.print("dataset drift: " + ("[bold red]yes[/]" if result["drift"] else "no"))
