"""The reference profile a bundle carries (``monitor.json``), written by ``train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from intent_edge.runtime.bundle import describe_file
from intent_edge.runtime.encoder import Encoder
from intent_edge.runtime.monitor import PROFILE_FILE, Profile, score_edges


def calibrated_rates(scores: np.ndarray, labels: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each score bin's buyer rate on the held-out rows after isotonic calibration (monotone in the score,
    so a bin with few rows borrows from its neighbours): what confidence-based performance estimation
    takes each score in that bin to mean."""
    from sklearn.isotonic import IsotonicRegression

    calibrated = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels).predict(scores)
    bins = np.searchsorted(edges, scores, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    sums = np.bincount(bins, weights=calibrated, minlength=len(edges) + 1)
    centres = np.concatenate([[edges[0] if len(edges) else 0.5], (edges[:-1] + edges[1:]) / 2,
                              [edges[-1] if len(edges) else 0.5]])[:len(counts)]
    return np.where(counts > 0, sums / np.maximum(counts, 1), centres)


def score_section(scores: np.ndarray, labels: np.ndarray) -> dict:
    """One variant's score bins as the profile stores them: 100 bins at the held-out scores' percentiles,
    each with its held-out rows, buyers and calibrated buyer rate, and the variant's held-out ROC-AUC."""
    from sklearn.metrics import roc_auc_score

    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    edges = score_edges(scores)
    bins = np.searchsorted(edges, scores, side="right")
    return {"edges": edges.tolist(), "reference": np.bincount(bins, minlength=len(edges) + 1).tolist(),
            "buyers": np.bincount(bins, weights=labels, minlength=len(edges) + 1).astype(np.int64).tolist(),
            "calibration": calibrated_rates(scores, labels, edges).tolist(),
            "held_out_roc_auc": float(roc_auc_score(labels, scores))}


def write_profile(directory: Path, encoder: Encoder, training: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                  *, variant: str, threshold: float) -> dict:
    """Write ``monitor.json`` into a bundle being built; returns its manifest entry."""
    summary = {"variant": variant, "training_rows": int(len(training)), "held_out_rows": int(len(scores)),
               "threshold": float(threshold)}
    document = Profile.fit(encoder, training, summary).to_json()
    document["scores"] = {variant: score_section(scores, labels)}
    return _write(directory, document)


def add_variant_scores(bundle: Path, directory: Path, manifest: dict, scores: dict[str, np.ndarray],
                       labels: np.ndarray) -> dict:
    """The bundle's profile, written into ``directory`` (a bundle being rebuilt by compress) with score bins
    for each of ``scores``'s variants; returns its manifest entry."""
    from intent_edge.runtime.bundle import resolve_file

    document = json.loads(resolve_file(bundle, manifest["monitor"]["file"]).read_text(encoding="utf-8"))
    document["scores"] = {name: score_section(values, labels) for name, values in scores.items()}
    return _write(directory, document)


def _write(directory: Path, document: dict) -> dict:
    (directory / PROFILE_FILE).write_text(json.dumps(document, allow_nan=False) + "\n", encoding="utf-8")
    return {"file": describe_file(directory, PROFILE_FILE), "fields": len(document["fields"]),
            "variants": sorted(document["scores"])}
