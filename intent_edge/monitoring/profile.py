"""The reference profile a bundle carries (``monitor.json``), written by ``train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from intent_edge.runtime.bundle import describe_file
from intent_edge.runtime.encoder import Encoder
from intent_edge.runtime.monitor import PROFILE_FILE, Profile


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


def write_profile(directory: Path, encoder: Encoder, training: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                  *, variant: str, roc_auc: float, threshold: float) -> dict:
    """Write ``monitor.json`` into a bundle being built; returns its manifest entry."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    summary = {"variant": variant, "training_rows": int(len(training)), "held_out_rows": int(len(scores)),
               "held_out_roc_auc": float(roc_auc), "threshold": float(threshold)}
    profile = Profile.fit(encoder, training, scores, labels, np.zeros(0), summary)
    profile.calibration = calibrated_rates(scores, labels, profile.score_edges)
    (directory / PROFILE_FILE).write_text(json.dumps(profile.to_json(), allow_nan=False) + "\n", encoding="utf-8")
    return {"file": describe_file(directory, PROFILE_FILE), "fields": len(profile.fields),
            "score_bins": len(profile.score_reference)}
