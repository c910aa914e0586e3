"""Drift and performance from a sketch, against the bundle's reference profile.

**The drift rule** (a contract; ``intent-edge monitor --json`` reports each part):

* per field and for the score, the population stability index (PSI) and the Jensen-Shannon distance
  (base 2) between the reference and the current bin shares, each bin's count smoothed by
  :data:`SMOOTHING` on both sides (an empty bin would make PSI infinite);
* the score's drift is read on deciles of the held-out scores (its 100 percentile bins, summed ten by ten);
* a chi-square test of homogeneity on the same bins (SciPy's ``chi2_contingency``, bins empty on both
  sides left out);
* ``drift`` is true when PSI >= :data:`PSI_THRESHOLD` (0.2) **and** the test rejects at
  ``alpha = ALPHA / (number of fields)`` (0.01, Bonferroni over the fields). The test keeps a quiet day
  (few rows, noisy shares) from crying wolf; PSI keeps a big day (where any difference is significant)
  from flagging trivial shifts. The score uses the same rule and the same alpha;
* the dataset drifts when any field or the score does.

**Performance before outcomes arrive** (confidence-based performance estimation, NannyML's CBPE idea):
each score bin's rows are taken to buy at the bin's calibrated held-out rate, which gives expected
buyers and non-buyers per bin, and from them the expected ROC-AUC, precision and recall at the bundle's
threshold. The band is the ROC-AUC's standard error (Hanley and McNeil) at 95% for the expected class
counts. It sees shifts in who arrives (covariate shift); it cannot see a change in how likely a given
shopper is to buy (concept shift, a change in P(buy | x)): only outcomes show that. Nor can it see
where the model has no evidence: a category never seen in training reaches the model as "out of
vocabulary", whose calibration came from other rare words, so the estimate is marked ``reliable: false``,
naming the field, when a field's out-of-vocabulary share rises more than :data:`UNSEEN_MARGIN` above
training's.
"""

from __future__ import annotations

import math

import numpy as np

from intent_edge.runtime.monitor import Profile, Sketch

PSI_THRESHOLD = 0.2
ALPHA = 0.01
SMOOTHING = 0.5  # added to every bin's count, on both sides, before PSI and the JS distance
UNSEEN_MARGIN = 0.05  # out-of-vocabulary share above training's past which the estimate is unreliable


def _shares(counts: np.ndarray) -> np.ndarray:
    smoothed = np.asarray(counts, dtype=np.float64) + SMOOTHING
    return smoothed / smoothed.sum()


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    p, q = _shares(reference), _shares(current)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(_shares(reference), _shares(current), base=2))


def chi_square_p(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy.stats import chi2_contingency

    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def verdict(reference: np.ndarray, current: np.ndarray, alpha: float, labels=None) -> dict:
    value, p_value = psi(reference, current), chi_square_p(reference, current)
    out = {"psi": value, "js_distance": js_distance(reference, current), "p_value": p_value,
           "drift": bool(value >= PSI_THRESHOLD and p_value < alpha), "rows": int(np.sum(current))}
    if labels is not None:
        out["bins"] = {"labels": list(labels), "reference": np.asarray(reference).tolist(),
                       "current": np.asarray(current).tolist()}
    return out


def deciles(score_counts: np.ndarray) -> np.ndarray:
    """The score's 100 percentile bins summed into 10 deciles for drift: with a hundred bins, a day of 5,000
    rows puts about 50 in each and their noise alone reads as PSI 0.05 (the fine bins stay for the
    performance estimate, which needs them)."""
    counts = np.asarray(score_counts)
    return np.array([part.sum() for part in np.array_split(counts, min(10, len(counts)))], dtype=np.int64)


def unseen_categories(profile: Profile, sketch: Sketch) -> dict:
    """The categorical fields whose out-of-vocabulary share rose more than UNSEEN_MARGIN above training's,
    with both shares."""
    unseen = {}
    for field in profile.fields:
        column = field.out_of_vocabulary_bin
        if column is None:
            continue
        current, reference = sketch.fields[field.name], profile.reference[field.name]
        share = float(current[column] / current.sum()) if current.sum() else 0.0
        reference_share = float(reference[column] / reference.sum()) if reference.sum() else 0.0
        if share > reference_share + UNSEEN_MARGIN:
            unseen[field.name] = {"share": share, "reference_share": reference_share}
    return unseen


def estimated_performance(profile: Profile, sketch: Sketch) -> dict:
    """Expected ROC-AUC (with a 95% band), precision and recall from the score bins and their calibration,
    and whether the profile can vouch for that calibration (``reliable``, ``unseen``)."""
    unseen = unseen_categories(profile, sketch)
    support = {"reliable": not unseen, "unseen": unseen}
    counts = sketch.score.astype(np.float64)
    buyers = counts * profile.calibration
    others = counts - buyers
    positives, negatives = buyers.sum(), others.sum()
    if positives <= 0 or negatives <= 0:
        return {"roc_auc": None, "lower": None, "upper": None, "precision": None, "recall": None, **support}
    below = np.concatenate([[0.0], np.cumsum(others)[:-1]])
    auc = float(np.sum(buyers * (below + 0.5 * others)) / (positives * negatives))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    se = math.sqrt(max(0.0, auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                       + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives))
    first = int(np.searchsorted(profile.score_edges, profile.summary["threshold"], side="right"))
    chosen = slice(first, None)
    flagged = counts[chosen].sum()
    return {"roc_auc": auc, "lower": max(0.0, auc - 1.96 * se), "upper": min(1.0, auc + 1.96 * se),
            "precision": float(buyers[chosen].sum() / flagged) if flagged else None,
            "recall": float(buyers[chosen].sum() / positives), "expected_buyers": float(positives), **support}


def report(profile: Profile, sketch: Sketch, realised: dict | None = None) -> dict:
    """The monitoring report (the JSON contract of ``intent-edge monitor --json``)."""
    alpha = ALPHA / max(1, len(profile.fields))
    fields = {f.name: verdict(profile.reference[f.name], sketch.fields[f.name], alpha, f.labels)
              for f in profile.fields}
    score = verdict(*(deciles(counts) for counts in (profile.score_reference, sketch.score)), alpha)
    performance = {"reference": {"roc_auc": profile.summary["held_out_roc_auc"]},
                   "estimated": estimated_performance(profile, sketch)}
    if realised is not None:
        performance["realised"] = realised
    return {"rows": sketch.rows, "variant": profile.summary["variant"],
            "rule": {"psi_threshold": PSI_THRESHOLD, "alpha": ALPHA, "alpha_per_test": alpha,
                     "smoothing": SMOOTHING},
            "drift": bool(score["drift"] or any(f["drift"] for f in fields.values())),
            "fields": fields, "score": score, "performance": performance}


def realised_performance(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """ROC-AUC, precision and recall at the threshold on rows whose outcome is known (exact scores)."""
    from sklearn.metrics import roc_auc_score

    labels, scores = np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        return {"roc_auc": None, "precision": None, "recall": None, "rows": int(len(labels))}
    flagged = scores >= threshold
    return {"roc_auc": float(roc_auc_score(labels, scores)),
            "precision": float(labels[flagged].mean()) if flagged.any() else None,
            "recall": float(flagged[labels == 1].mean()), "rows": int(len(labels))}
