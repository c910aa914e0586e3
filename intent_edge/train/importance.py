"""Global importance from local explanations: mean |contribution| per field over evaluated rows, and each
top field's contribution against its value (`intent-edge evaluate --bundle B --explain`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

MAX_EXPLAINED_ROWS = 5000  # a random sample beyond this (about a millisecond each)
DEPENDENCE_FIELDS = 3
_CHUNK = 250


def global_importance(predictor, features: pd.DataFrame, *, seed: int = 0, max_rows: int = MAX_EXPLAINED_ROWS,
                      on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Explain up to ``max_rows`` rows of ``features`` against the bundle's background; returns the rows
    used, their contributions (rows x fields) and the fields ranked by mean |contribution|."""
    rows = np.arange(len(features))
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    chosen = features.iloc[rows].reset_index(drop=True)
    names = list(predictor.feature_names)
    contributions = np.empty((len(chosen), len(names)))
    for start in range(0, len(chosen), _CHUNK):
        explanations = predictor.explain_batch(chosen.iloc[start:start + _CHUNK], seed=seed)
        contributions[start:start + len(explanations)] = [[e.contributions[n] for n in names] for e in explanations]
        if on_progress is not None:
            on_progress(min(start + _CHUNK, len(chosen)), len(chosen))
    mean_absolute = np.abs(contributions).mean(axis=0)
    order = np.argsort(-mean_absolute)
    return {"rows": len(chosen), "sampled": len(chosen) < len(features), "fields": names,
            "ranking": [{"field": names[i], "mean_abs_contribution": float(mean_absolute[i]),
                         "mean_contribution": float(contributions[:, i].mean())} for i in order],
            "values": chosen, "contributions": contributions}


def importance_table(importance: dict, title: str):
    from rich.table import Table

    table = Table(title=title)
    for header in ("field", "mean |contribution|", "mean contribution"):
        table.add_column(header, justify="left" if header == "field" else "right")
    for entry in importance["ranking"]:
        table.add_row(entry["field"], f"{entry['mean_abs_contribution']:.4f}", f"{entry['mean_contribution']:+.4f}")
    return table


def write_importance_plots(importance: dict, directory: str | Path, title: str) -> list[Path]:
    """importance.png (a bar per field) and dependence-FIELD.png for the top fields."""
    from intent_edge.train.evaluate import PngDirectory

    pngs = PngDirectory(directory)
    plt, save = pngs.plt, pngs.save

    ranking = importance["ranking"]
    figure, axis = plt.subplots(figsize=(6, 0.3 * len(ranking) + 1.2))
    axis.barh([e["field"] for e in ranking][::-1], [e["mean_abs_contribution"] for e in ranking][::-1])
    axis.set(xlabel="mean |contribution| to the probability", title=f"Global importance: {title}")
    save(figure, "importance.png")

    names = importance["fields"]
    for entry in ranking[:DEPENDENCE_FIELDS]:
        field = entry["field"]
        values = importance["values"][field]
        contribution = importance["contributions"][:, names.index(field)]
        figure, axis = plt.subplots(figsize=(6, 4))
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            axis.scatter(values, contribution, s=6, alpha=0.4)
            axis.set_xlabel(field)
        else:  # categories: one column of points per value, jittered
            labels = values.astype(str)
            levels = sorted(labels.unique())
            positions = labels.map({level: i for i, level in enumerate(levels)}).to_numpy(dtype=float)
            jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(positions))
            axis.scatter(positions + jitter, contribution, s=6, alpha=0.4)
            axis.set_xticks(range(len(levels)), levels, rotation=45, ha="right")
            axis.set_xlabel(field)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set(ylabel="contribution to the probability", title=f"{field}: contribution against value")
        save(figure, f"dependence-{field}.png")
    return pngs.written
