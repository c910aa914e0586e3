"""`intent-edge evaluate`: a bundle on held-out data, or the training recipe by CV or out of time."""

from __future__ import annotations

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
    is_clickstream,
    print_notes,
    print_schema,
    progress,
    recipe,
    refuse,
    stdout,
    user_errors,
    write_json,
)
from intent_edge.errors import UsageError


def register(app: typer.Typer) -> None:
    app.command()(evaluate)


@user_errors
def evaluate(
    data: Annotated[Path, typer.Argument(help="Labelled data: CSV or Parquet (an event log for a clickstream "
                                              "bundle).")],
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Score this bundle on DATA (held-out data).")] = None,
    cv: Annotated[int | None, typer.Option("--cv", min=2, help="Stratified K-fold cross-validation of the "
                                                               "training recipe on DATA.")] = None,
    out_of_time: Annotated[str | None, typer.Option(
        "--out-of-time", help="Train on earlier periods of this column (e.g. Month), test on the later ones.")] = None,
    label: LabelOption = None,
    sep: SepOption = None,
    schema: SchemaOption = None,
    seed: SeedOption = None,
    test_fraction: Annotated[float | None, typer.Option("--test-fraction", help="With --out-of-time: least share "
                                                                                "of rows in the later periods "
                                                                                "[default: 0.2].")] = None,
    threshold: ThresholdOption = None,
    max_epochs: EpochsOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for ROC/PR/calibration PNGs (not with "
                                                              "--cv, whose folds each have a model).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="With --bundle: global importance, mean |contribution| "
                                                            "per field over DATA's rows (a sample of 5,000 beyond "
                                                            "that), as a table, and with --plots as importance.png "
                                                            "and contribution-against-value plots of the top "
                                                            "fields.")] = False,
):
    """Evaluate a bundle on held-out data, or the training recipe by cross-validation or out of time.

    Exactly one of: --bundle B (score DATA with the bundle and its threshold), --cv K (stratified K-fold
    cross-validation of the recipe), --out-of-time COLUMN (train on earlier periods, test on later ones).
    Reports ROC-AUC, PR-AUC, accuracy, precision, recall, F1, the confusion matrix, Brier score and
    calibration error at the decision threshold."""
    chosen = [name for name, value in (("--bundle", bundle), ("--cv", cv), ("--out-of-time", out_of_time))
              if value is not None]
    if len(chosen) != 1:
        raise UsageError("choose exactly one of --bundle, --cv and --out-of-time"
                         + (f" (got {', '.join(chosen)})" if chosen else ""))
    training_options = {"--schema": schema, "--seed": seed, "--test-fraction": test_fraction,
                        "--threshold": threshold, "--max-epochs": max_epochs}
    if bundle is None and explain:
        raise UsageError("--explain needs --bundle: cross-validation and out-of-time evaluation leave no one model "
                         "to explain")
    if bundle is not None and is_clickstream(bundle):
        refuse({**training_options, "--plots": plots, "--explain": explain or None},
               "to a clickstream bundle's evaluation")
        _evaluate_clickstream(bundle, data, label, sep, json_out)
        return
    if bundle is not None:
        refuse({**training_options, "--label": label}, "to a bundle's evaluation (the bundle's schema names the label)")
        report, probabilities, predictor, dataset = _evaluate_bundle(bundle, data, sep)
        labels = dataset.labels
        if explain:
            report["importance"] = _explain_bundle(predictor, dataset.features, bundle, data, plots)
    elif cv is not None:
        refuse({"--test-fraction": test_fraction, "--plots": plots}, "to cross-validation")
        report, labels, probabilities = _evaluate_recipe(data, label, sep, schema, seed, threshold, max_epochs, cv=cv)
    else:
        report, labels, probabilities = _evaluate_recipe(data, label, sep, schema, seed, threshold, max_epochs,
                                                         out_of_time=out_of_time, test_fraction=test_fraction)
    if json_out:
        write_json(json_out, report)
        console.print(f"report: {json_out}")
    if plots:
        from intent_edge.train.evaluate import write_plots

        for path in write_plots(labels, probabilities, plots, data.name):
            console.print(f"plot: {path}")


def _evaluate_bundle(bundle: Path, data: Path, sep: str | None):
    from intent_edge.train.evaluate import evaluate_bundle_file, metrics_table

    evaluated = evaluate_bundle_file(bundle, data, sep=sep)
    stdout.print(metrics_table(evaluated[0]["metrics"], f"{bundle} on {data.name} (bundle threshold)"))
    return evaluated


def _explain_bundle(predictor, features, bundle: Path, data: Path, plots: Path | None) -> dict:
    from intent_edge.train.importance import global_importance, importance_table, write_importance_plots

    with progress() as bar:
        task = bar.add_task("explaining", total=None, status="")
        importance = global_importance(predictor, features,
                                       on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    rows = f"{importance['rows']:,} {'sampled ' if importance['sampled'] else ''}rows"
    stdout.print(importance_table(importance, f"{bundle}: what drives the probability on {data.name} ({rows})"))
    if plots:
        for path in write_importance_plots(importance, plots, f"{bundle.name} on {data.name}"):
            console.print(f"plot: {path}")
    else:
        console.print("give --plots DIR for importance.png and the contribution-against-value plots")
    return {key: importance[key] for key in ("rows", "sampled", "ranking")}


def _evaluate_recipe(data: Path, label, sep, schema, seed, threshold, max_epochs, *, cv: int | None = None,
                     out_of_time: str | None = None, test_fraction: float | None = None):
    from intent_edge.data.io import load_dataset
    from intent_edge.train.evaluate import ThresholdPolicy, folds_table, metrics_table
    from intent_edge.train.pipeline import cross_validate, evaluate_split

    policy = ThresholdPolicy.parse(threshold or "max-f1")
    dataset = load_dataset(data, label, sep=sep, schema_file=schema)
    print_schema(dataset)
    with progress() as bar:
        task = bar.add_task("training", total=recipe(max_epochs).max_epochs, status="")
        if cv is not None:
            result = cross_validate(dataset, cv, recipe(max_epochs), seed or 0, policy,
                                    on_fold=lambda f, k: bar.update(task, description=f"fold {f}/{k}", completed=0),
                                    on_epoch=epoch_reporter(bar, task))
        else:
            result = evaluate_split(dataset, recipe(max_epochs), seed or 0, policy,
                                    0.2 if test_fraction is None else test_fraction, out_of_time,
                                    epoch_reporter(bar, task))
    if cv is not None:
        stdout.print(folds_table(result["summary"], f"{cv}-fold stratified CV on {data.name} "
                                                    f"(seed {seed or 0}, {policy.describe()})"))
        report = {"kind": "cross-validation", "data": str(data), "threshold_policy": policy.to_json(), **result}
        return report, None, None
    split = result["split"]
    stdout.print(metrics_table(result["metrics"], f"out of time: train {', '.join(split['train_periods'])}"
                                                  f" -> test {', '.join(split['test_periods'])}"))
    report = {"kind": "out-of-time", "data": str(data), "split": split, "metrics": result["metrics"]}
    return report, result["labels"], result["probabilities"]


def _evaluate_clickstream(bundle: Path, data: Path, label: str | None, sep: str | None, json_out: Path | None) -> None:
    from rich.table import Table

    from intent_edge.clickstream.pipeline import evaluate_sequence_bundle, read_log_for_bundle

    log = read_log_for_bundle(bundle, data, sep=sep, label=label)
    print_notes(log.notes)
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
        write_json(json_out, {"kind": "clickstream bundle", "bundle": str(bundle), "data": str(data),
                              "by_prefix": report})
