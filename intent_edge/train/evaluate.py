"""Metrics with their standard definitions (scikit-learn), decision thresholds, and plots."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intent_edge.errors import UsageError


@dataclass(frozen=True)
class ThresholdPolicy:
    """How the decision threshold is chosen on validation data.

    ``max-f1`` (default): the threshold that maximises F1. A number such as ``0.4``: that value.
    ``cost:FP,FN`` such as ``cost:1,5``: the threshold minimising ``FP * false positives + FN * false
    negatives`` (here a missed buyer costs five times a wasted offer).
    """

    kind: str
    value: float | None = None
    false_positive_cost: float | None = None
    false_negative_cost: float | None = None

    @classmethod
    def parse(cls, text: str) -> ThresholdPolicy:
        text = text.strip().lower()
        if text == "max-f1":
            return cls("max-f1")
        if text.startswith("cost:"):
            try:
                fp, fn = (float(x) for x in text[5:].split(","))
            except ValueError:
                raise UsageError(f"threshold {text!r}: write cost:FP,FN, for example cost:1,5") from None
            if fp <= 0 or fn <= 0:
                raise UsageError(f"threshold {text!r}: both costs must be positive")
            return cls("cost", false_positive_cost=fp, false_negative_cost=fn)
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"threshold {text!r}: use max-f1, a number in (0, 1), or cost:FP,FN") from None
        if not 0.0 < value < 1.0:
            raise UsageError(f"threshold {value} must lie strictly between 0 and 1")
        return cls("fixed", value=value)

    def describe(self) -> str:
        if self.kind == "cost":
            return f"min cost (FP={self.false_positive_cost:g}, FN={self.false_negative_cost:g})"
        return "max F1 on validation" if self.kind == "max-f1" else f"fixed {self.value:g}"

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def choose(self, labels: np.ndarray, probabilities: np.ndarray) -> float:
        if self.kind == "fixed":
            return float(self.value)
        order = np.argsort(-probabilities, kind="stable")
        sorted_labels, sorted_p = labels[order], probabilities[order]
        # Predicting positive for p >= t: cumulative counts over the distinct scores, highest first.
        true_pos = np.cumsum(sorted_labels)
        false_pos = np.cumsum(1 - sorted_labels)
        last_of_each = np.r_[np.nonzero(np.diff(sorted_p))[0], len(sorted_p) - 1]
        tp, fp = true_pos[last_of_each], false_pos[last_of_each]
        thresholds = sorted_p[last_of_each]
        fn = labels.sum() - tp
        if self.kind == "max-f1":
            score = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
            best = int(np.argmax(score))
        else:
            cost = self.false_positive_cost * fp + self.false_negative_cost * fn
            best = int(np.argmin(cost))
        return float(thresholds[best])


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over ``bins`` equal-width bins, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            error += mask.mean() * abs(labels[mask].mean() - probabilities[mask].mean())
    return float(error)


def compute_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """Every figure of the evaluation report, at ``threshold`` (predict a buyer when p >= threshold)."""
    from sklearn import metrics

    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    decisions = (probabilities >= threshold).astype(int)
    (tn, fp), (fn, tp) = metrics.confusion_matrix(labels, decisions, labels=[0, 1]).tolist()
    both_classes = len(np.unique(labels)) == 2
    return {
        "rows": len(labels),
        "positive_rate": float(labels.mean()),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both_classes else math.nan,
        "pr_auc": float(metrics.average_precision_score(labels, probabilities)) if both_classes else math.nan,
        "threshold": float(threshold),
        "accuracy": float(metrics.accuracy_score(labels, decisions)),
        "precision": float(metrics.precision_score(labels, decisions, zero_division=0)),
        "recall": float(metrics.recall_score(labels, decisions, zero_division=0)),
        "f1": float(metrics.f1_score(labels, decisions, zero_division=0)),
        "brier": float(metrics.brier_score_loss(labels, probabilities)),
        "calibration_error": expected_calibration_error(labels, probabilities),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


SUMMARY_METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "brier", "calibration_error")
_LABELS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "accuracy": "accuracy", "precision": "precision",
           "recall": "recall", "f1": "F1", "brier": "Brier score", "calibration_error": "calibration error (ECE)",
           "threshold": "threshold"}


def summarise_folds(fold_metrics: list[dict]) -> dict:
    """Mean and standard deviation (ddof=1) of each summary metric across folds."""
    summary = {}
    for key in SUMMARY_METRICS + ("threshold",):
        values = np.array([m[key] for m in fold_metrics], dtype=float)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return summary


def metrics_table(metrics: dict, title: str):
    """A rich Table of one evaluation (with its confusion matrix)."""
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in SUMMARY_METRICS + ("threshold",):
        table.add_row(_LABELS[key], f"{metrics[key]:.4f}")
    cm = metrics["confusion_matrix"]
    table.add_row("confusion (tn fp / fn tp)", f"{cm['tn']} {cm['fp']} / {cm['fn']} {cm['tp']}")
    table.add_row("rows (buyers)", f"{metrics['rows']} ({metrics['positive_rate']:.1%})")
    return table


def folds_table(summary: dict, title: str):
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    for column in ("metric", "mean", "std"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, stats in summary.items():
        table.add_row(_LABELS[key], f"{stats['mean']:.4f}", f"{stats['std']:.4f}")
    return table


class PngDirectory:
    """Figures saved as PNG files into one directory, each written atomically; ``written`` lists them."""

    def __init__(self, directory: str | Path):
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt

        self.plt, self.directory, self.written = plt, Path(directory), []
        self.directory.mkdir(parents=True, exist_ok=True)

    def save(self, figure, name: str) -> None:
        from intent_edge.fileio import atomic_path

        path = self.directory / name
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
        self.plt.close(figure)
        self.written.append(path)


def write_plots(labels: np.ndarray, probabilities: np.ndarray, directory: str | Path, title: str) -> list[Path]:
    """ROC, precision-recall and calibration curves as PNG files in ``directory``."""
    from sklearn import metrics

    pngs = PngDirectory(directory)
    plt, save, written = pngs.plt, pngs.save, pngs.written

    fpr, tpr, _ = metrics.roc_curve(labels, probabilities)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(fpr, tpr, label=f"model (AUC {metrics.roc_auc_score(labels, probabilities):.3f})")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
    axis.legend(loc="lower right")
    save(figure, "roc.png")

    precision, recall, _ = metrics.precision_recall_curve(labels, probabilities)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(recall, precision, label=f"model (AP {metrics.average_precision_score(labels, probabilities):.3f})")
    axis.axhline(labels.mean(), linestyle="--", color="grey", label="base rate")
    axis.set(xlabel="recall", ylabel="precision", title=f"Precision-recall: {title}", ylim=(0, 1.02))
    axis.legend(loc="upper right")
    save(figure, "pr.png")

    edges = np.linspace(0, 1, 11)
    index = np.clip(np.digitize(probabilities, edges[1:-1]), 0, 9)
    filled = [b for b in range(10) if (index == b).any()]
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axis.plot([probabilities[index == b].mean() for b in filled], [labels[index == b].mean() for b in filled],
              marker="o", label=f"model (ECE {expected_calibration_error(labels, probabilities):.3f})")
    axis.set(xlabel="mean predicted probability", ylabel="observed purchase rate", title=f"Calibration: {title}")
    axis.legend(loc="upper left")
    save(figure, "calibration.png")
    return written


def evaluate_bundle_file(bundle: str | Path, data: str | Path, *, sep: str | None = None):
    """A session bundle on a labelled file (read with the bundle's schema), through the runtime with
    lenient records: ``(report, probabilities, predictor, dataset)``, the last two for further work on
    the same rows (explanations) without loading them again."""
    from intent_edge.data.io import load_dataset
    from intent_edge.data.schema import Schema
    from intent_edge.runtime import Predictor

    predictor = Predictor.load(bundle, strict=False)
    dataset = load_dataset(data, sep=sep, schema=Schema.from_json(predictor.manifest["schema"]))
    probabilities = np.asarray(predictor.predict_batch(dataset.features), np.float64)
    metrics = compute_metrics(dataset.labels, probabilities, predictor.threshold)
    report = {"kind": "bundle", "bundle": str(bundle), "data": str(data), "metrics": metrics}
    return report, probabilities, predictor, dataset
