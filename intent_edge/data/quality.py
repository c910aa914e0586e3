"""The data-quality summary `train` prints and keeps in the bundle (manifest key ``data_quality``): rows
and duplicate rows; each column's kind, role, empty values and distinct values; what was left out and
why; and columns that alone predict the label almost perfectly on the training rows, which is what a
leaked column (one written after the purchase, such as an order id) looks like."""

from __future__ import annotations

import numpy as np
import pandas as pd

from intent_edge.data.schema import Schema

LEAKAGE_ROC_AUC = 0.99  # a single column this good on its own is more likely a leak than a feature
LEAKAGE_MIN_CATEGORY_ROWS = 10  # rarer categories share one score, as the encoder's vocabulary does


def empty_mask(series: pd.Series) -> pd.Series:
    """Missing values, and text that is blank once stripped."""
    empty = series.isna()
    if not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        empty |= series.astype(str).str.strip().eq("") & series.notna()
    return empty


def data_quality(frame: pd.DataFrame, schema: Schema) -> dict:
    """The summary of a table as read, before any split."""
    columns = {}
    for name in map(str, frame.columns):
        series = frame[name]
        if name == schema.label:
            role, kind = "label", "label"
        elif name in schema.kinds:
            role, kind = "feature", schema.kinds[name]
        else:
            role, kind = "ignored", "-"
        columns[name] = {"kind": kind, "role": role, "empty": int(empty_mask(series).sum()),
                         "distinct": int(series.nunique(dropna=True))}
    return {"rows": int(len(frame)), "duplicate_rows": int(frame.duplicated().sum()), "columns": columns,
            "ignored": dict(schema.reasons), "warnings": []}


def single_column_roc_auc(values: pd.Series, labels: np.ndarray, kind: str) -> float:
    """How well one column alone ranks buyers (ROC-AUC, either direction): numbers as they are (empty as
    the median), categories by their buyer rate on these same rows."""
    from sklearn.metrics import roc_auc_score

    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").astype(np.float64)
        score = numbers.fillna(numbers.median() if numbers.notna().any() else 0.0).to_numpy()
    else:
        text = values.astype(str).where(values.notna(), "<empty>")
        counts = text.map(text.value_counts())
        text = text.where(counts >= LEAKAGE_MIN_CATEGORY_ROWS, "<rare>")
        score = text.map(pd.Series(labels, index=text.index).groupby(text).mean()).to_numpy(dtype=np.float64)
    auc = float(roc_auc_score(labels, score))
    return max(auc, 1.0 - auc)


def leakage_warnings(features: pd.DataFrame, labels: np.ndarray, schema: Schema) -> list[str]:
    """A warning for each feature that alone reaches :data:`LEAKAGE_ROC_AUC` on ``features`` (training rows)."""
    warnings = []
    for name, kind in schema.kinds.items():
        auc = single_column_roc_auc(features[name].reset_index(drop=True), labels, kind)
        if auc >= LEAKAGE_ROC_AUC:
            warnings.append(f"column '{name}' alone reaches ROC-AUC {auc:.4f} on the training rows: it may leak the "
                            "label (recorded after the purchase?); check it, or leave it out with --schema "
                            f'(\'{{"columns": {{"{name}": "ignore"}}}}\')')
    return warnings


def quality_lines(report: dict) -> list[str]:
    """The summary as lines for the terminal."""
    lines = [f"data: {report['rows']:,} rows, {report['duplicate_rows']:,} duplicate rows"]
    for name, column in report["columns"].items():
        if column["role"] != "feature":
            continue  # the label and the ignored columns are listed with the schema
        share = column["empty"] / max(report["rows"], 1)
        empty = f", {column['empty']:,} empty ({share:.1%})" if column["empty"] else ""
        lines.append(f"  {name}: {column['kind']}, {column['distinct']:,} distinct{empty}")
    lines += [f"warning: {warning}" for warning in report["warnings"]]
    return lines
