"""The background set a bundle explains against: k-means centres of the encoded training rows.

Shapley values are relative to a background (the shopper the record is compared with). A bundle carries
a small fixed one, so that ``Predictor.explain(record)`` needs nothing else: ``BACKGROUND_ROWS`` k-means
centres of the encoded rows the model was fitted on, each weighted by its cluster's share of those rows
(what shap's ``kmeans`` summary does). A centre is an average, not a customer's row: a categorical
field's one-hot block holds the cluster's category mix. Stored encoded, as JSON, with its sha256 in the
manifest like every other file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from intent_edge.runtime.bundle import describe_file

BACKGROUND_ROWS = 30
BACKGROUND_FILE = "background.json"


def kmeans_background(encoded: np.ndarray, seed: int, rows: int = BACKGROUND_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """``(centres, weights)``: k-means centres of ``encoded`` rows (float32) and their cluster shares."""
    from sklearn.cluster import KMeans

    clusters = min(rows, len(np.unique(encoded, axis=0)))
    model = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit(encoded.astype(np.float64))
    counts = np.bincount(model.labels_, minlength=clusters).astype(np.float64)
    keep = counts > 0
    return model.cluster_centers_[keep].astype(np.float32), counts[keep] / counts[keep].sum()


def write_background(directory: Path, encoded: np.ndarray, seed: int) -> dict:
    """Write the background file into a bundle being built; returns its manifest entry."""
    centres, weights = kmeans_background(encoded, seed)
    document = {"description": "k-means centres of the encoded training rows, weighted by cluster share: the "
                               "default background of Predictor.explain; no customer's row",
                "rows": [[float(v) for v in row] for row in centres], "weights": weights.tolist()}
    (directory / BACKGROUND_FILE).write_text(json.dumps(document, allow_nan=False) + "\n", encoding="utf-8")
    return {"background": {"file": describe_file(directory, BACKGROUND_FILE), "rows": len(centres),
                           "kind": "kmeans", "seed": seed}}
