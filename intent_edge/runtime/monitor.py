"""Monitoring where the model runs: small mergeable sketches of what a till scores (numpy only).

The bundle carries a reference profile (``monitor.json``, written by ``train``, checksummed like every
file): for each field, bins fixed on the training rows, and for the score, bins fixed on the held-out
scores, with each bin's training or held-out counts and, for the score, its held-out buyer rate after
isotonic calibration.

* A numeric field has up to ten bins cut at the deciles of its training values, plus an ``empty`` bin
  for a field that may be empty. Bins are cut on the encoded value (a monotone function of the raw one),
  so a record is binned from the row the model already reads. An empty value of a field that was never
  empty in training (imputed in lenient mode) counts in the bin of the median it is imputed with.
* A categorical field has a bin per vocabulary word, then ``out of vocabulary``, then ``empty`` where the
  field may be empty: its one-hot block.
* The score has 100 bins cut at the percentiles of the held-out scores.

A :class:`Sketch` is a count per bin, per field and for the score (and, where outcomes are fed, the
buyers per score bin): fixed bins make two sketches merge exactly by adding, and updating one costs the
same whatever the traffic. A day of a till is a few kilobytes of JSON, not rows.
:class:`Monitor` updates a sketch, thread-safely, from what ``Predictor.predict`` and ``predict_batch``
score (``Predictor.start_monitoring()``). Drift and performance are computed from sketches by
:mod:`intent_edge.monitoring`, outside the runtime.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intent_edge.errors import BundleError
from intent_edge.runtime.encoder import CategoricalFeature, Encoder, NumericFeature

PROFILE_FILE = "monitor.json"
PROFILE_VERSION = 1
DECILES = np.linspace(0.1, 0.9, 9)
SCORE_BINS = 100


@dataclass(frozen=True)
class FieldBins:
    """How one field's encoded columns become a bin: ``column`` and ``edges`` (float32 encoded values; a
    value ``v`` falls in bin ``searchsorted(edges, v, "right")``) and ``indicator`` (the missing-indicator
    column, whose rows go to the last bin) for a numeric field; ``column`` and ``width`` (the one-hot
    block) for a categorical one."""

    name: str
    kind: str
    column: int
    labels: tuple[str, ...]
    edges: np.ndarray | None = None
    indicator: int | None = None

    @property
    def bins(self) -> int:
        return len(self.labels)


class Profile:
    """The reference: every field's bins with their training counts, and one variant's score bins with
    their held-out counts, buyers and calibrated buyer rate. ``to_json`` writes the fields' part; the
    score bins of each variant are stored beside it under ``scores``."""

    def __init__(self, fields: list[FieldBins], reference: dict[str, np.ndarray], score_edges: np.ndarray,
                 score_reference: np.ndarray, score_buyers: np.ndarray, calibration: np.ndarray, summary: dict):
        self.fields, self.reference, self.summary = fields, reference, summary
        self.score_edges, self.score_reference = score_edges, score_reference
        self.score_buyers, self.calibration = score_buyers, calibration
        numeric = [f for f in fields if f.kind == "numeric"]
        self._numeric_columns = np.array([f.column for f in numeric], dtype=np.intp)
        width = max((len(f.edges) for f in numeric), default=0)
        # edges padded with +inf, so that one comparison bins every numeric field of a row at once
        self._edges = np.full((len(numeric), width), np.inf, dtype=np.float32)
        for i, f in enumerate(numeric):
            self._edges[i, :len(f.edges)] = f.edges
        self._indicators = [(i, f.indicator, f.bins - 1) for i, f in enumerate(numeric) if f.indicator is not None]
        self._numeric_names = [f.name for f in numeric]
        self._categorical = [f for f in fields if f.kind == "categorical"]

    # ---- binning -----------------------------------------------------------------------------
    def bin_rows(self, encoded: np.ndarray) -> dict[str, np.ndarray]:
        """Each field's bin (int64) for every row of an encoded matrix."""
        encoded = np.asarray(encoded, dtype=np.float32).reshape(-1, encoded.shape[-1])
        out = {}
        if len(self._numeric_names):
            values = encoded[:, self._numeric_columns]
            bins = (values[:, :, None] >= self._edges[None, :, :]).sum(axis=2)
            for i, column, empty_bin in self._indicators:
                bins[encoded[:, column] == 1.0, i] = empty_bin
            out.update({name: bins[:, i] for i, name in enumerate(self._numeric_names)})
        for f in self._categorical:
            out[f.name] = np.argmax(encoded[:, f.column:f.column + f.bins], axis=1)
        return out

    def bin_scores(self, probabilities: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.score_edges, np.asarray(probabilities, dtype=np.float64), side="right")

    def empty_sketch(self) -> Sketch:
        return Sketch({f.name: np.zeros(f.bins, dtype=np.int64) for f in self.fields},
                      np.zeros(len(self.score_reference), dtype=np.int64), None)

    # ---- building and reading ----------------------------------------------------------------
    @classmethod
    def fit(cls, encoder: Encoder, training: np.ndarray, summary: dict) -> Profile:
        """The fields' bins and counts from encoded ``training`` rows (the score bins are added per variant
        by :mod:`intent_edge.monitoring.profile`, which calibrates them with scikit-learn)."""
        fields = []
        for feature, offset in zip(encoder.features, encoder.offsets, strict=True):
            if isinstance(feature, NumericFeature):
                column = training[:, offset]
                present = column if not feature.may_be_empty else column[training[:, offset + 1] != 1.0]
                edges = np.unique(np.quantile(present, DECILES, method="lower").astype(np.float32)) \
                    if present.size else np.zeros(0, np.float32)
                labels = ([f"< {_raw(feature, edges[0])}", *(f">= {_raw(feature, e)}" for e in edges)]
                          if len(edges) else ["all"]) + (["empty"] if feature.may_be_empty else [])
                fields.append(FieldBins(feature.name, "numeric", offset, tuple(labels), edges,
                                        offset + 1 if feature.may_be_empty else None))
            else:
                assert isinstance(feature, CategoricalFeature)
                labels = [*feature.vocabulary, "out of vocabulary"] + (["empty"] if feature.may_be_empty else [])
                fields.append(FieldBins(feature.name, "categorical", offset, tuple(labels)))
        empty = np.zeros(0)
        profile = cls(fields, {}, empty, empty, empty, empty, summary)
        profile.reference = {f.name: np.bincount(bins, minlength=f.bins).astype(np.int64)
                             for f, bins in zip(fields, profile.bin_rows(training).values(), strict=True)}
        return profile

    def to_json(self) -> dict:
        return {"version": PROFILE_VERSION, "summary": self.summary,
                "fields": [{"name": f.name, "kind": f.kind, "column": f.column, "labels": list(f.labels),
                            "edges": None if f.edges is None else [float(e) for e in f.edges],
                            "indicator": f.indicator, "reference": self.reference[f.name].tolist()}
                           for f in self.fields],
                "scores": {}}

    @classmethod
    def from_json(cls, data: dict, variant: str | None = None) -> Profile:
        """The profile with the score bins of ``variant`` (the one it was written for if None)."""
        if data.get("version") != PROFILE_VERSION:
            raise BundleError(f"monitoring profile version {data.get('version')} is not supported "
                              f"(this intent-edge reads {PROFILE_VERSION})")
        fields = [FieldBins(f["name"], f["kind"], int(f["column"]), tuple(f["labels"]),
                            None if f["edges"] is None else np.asarray(f["edges"], dtype=np.float32), f["indicator"])
                  for f in data["fields"]]
        variant = variant or data["summary"]["variant"]
        if variant not in data["scores"]:
            raise BundleError(f"the monitoring profile has score bins for {', '.join(data['scores'])}, not for "
                              f"variant {variant!r}; monitor one of those (Predictor.load(bundle, variant))")
        score = data["scores"][variant]
        return cls(fields, {f["name"]: np.asarray(f["reference"], dtype=np.int64) for f in data["fields"]},
                   np.asarray(score["edges"], dtype=np.float64), np.asarray(score["reference"], dtype=np.int64),
                   np.asarray(score["buyers"], dtype=np.int64), np.asarray(score["calibration"], dtype=np.float64),
                   {**data["summary"], "variant": variant, "held_out_roc_auc": score["held_out_roc_auc"]})

    @classmethod
    def load(cls, bundle: str | Path, manifest: dict, variant: str | None = None) -> Profile:
        from intent_edge.runtime.bundle import resolve_file

        if "monitor" not in manifest:
            raise BundleError(f"{bundle}: this bundle has no monitoring profile (bundles from before "
                              "intent-edge wrote one); retrain it to monitor it")
        return cls.from_json(json.loads(resolve_file(bundle, manifest["monitor"]["file"]).read_text()), variant)


def score_edges(scores: np.ndarray) -> np.ndarray:
    """The score bins' edges: the held-out scores' percentiles (``SCORE_BINS`` bins at most)."""
    return np.unique(np.quantile(np.asarray(scores, dtype=np.float64), np.linspace(0.01, 0.99, SCORE_BINS - 1),
                                 method="lower"))


def _raw(feature: NumericFeature, encoded: float) -> str:
    """An encoded edge as the raw value it stands for, for labels."""
    value = float(encoded) * feature.scale + feature.center
    if feature.transform == "log1p":
        value = float(np.expm1(value))
    return f"{value:.4g}"


@dataclass
class Sketch:
    """Counts per bin: per field, for the score, and (where outcomes were fed) buyers per score bin."""

    fields: dict[str, np.ndarray]
    score: np.ndarray
    buyers: np.ndarray | None  # buyers per score bin, among the rows whose outcome is known
    labelled: np.ndarray | None = None  # rows per score bin whose outcome is known

    @property
    def rows(self) -> int:
        return int(self.score.sum())

    def merge(self, other: Sketch) -> Sketch:
        """The sketch of both parts (exact: fixed bins add)."""
        if set(self.fields) != set(other.fields) or len(self.score) != len(other.score):
            raise ValueError("the sketches come from different profiles")
        buyers, labelled = (None if a is None and b is None else
                            (np.zeros_like(self.score) if a is None else a) + (np.zeros_like(self.score) if b is None
                                                                                else b)
                            for a, b in ((self.buyers, other.buyers), (self.labelled, other.labelled)))
        return Sketch({n: c + other.fields[n] for n, c in self.fields.items()}, self.score + other.score, buyers,
                      labelled)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Sketch) and self.to_json() == other.to_json())

    def to_json(self) -> dict:
        return {"format": "intent-edge sketch", "version": PROFILE_VERSION, "rows": self.rows,
                "fields": {n: c.tolist() for n, c in self.fields.items()}, "score": self.score.tolist(),
                "buyers": None if self.buyers is None else self.buyers.tolist(),
                "labelled": None if self.labelled is None else self.labelled.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> Sketch:
        if data.get("format") != "intent-edge sketch" or data.get("version") != PROFILE_VERSION:
            raise ValueError("not an intent-edge sketch of this version")
        optional = {k: None if data.get(k) is None else np.asarray(data[k], dtype=np.int64)
                    for k in ("buyers", "labelled")}
        return cls({n: np.asarray(c, dtype=np.int64) for n, c in data["fields"].items()},
                   np.asarray(data["score"], dtype=np.int64), optional["buyers"], optional["labelled"])


class Monitor:
    """A sketch that grows with every record scored (thread-safe); :meth:`snapshot` copies it."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self._sketch = profile.empty_sketch()
        self._lock = threading.Lock()

    def update(self, encoded: np.ndarray, probabilities: np.ndarray, outcomes: np.ndarray | None = None) -> None:
        """Count encoded rows and their probabilities (and their known outcomes, 0/1, where given)."""
        bins = self.profile.bin_rows(encoded)
        score_bins = self.profile.bin_scores(np.atleast_1d(probabilities))
        width = len(self._sketch.score)
        field_counts = {name: np.bincount(b, minlength=len(self._sketch.fields[name])) for name, b in bins.items()}
        score_counts = np.bincount(score_bins, minlength=width)
        if outcomes is not None:
            outcomes = np.asarray(outcomes, dtype=np.int64).reshape(-1)
            buyers = np.bincount(score_bins, weights=outcomes, minlength=width).astype(np.int64)
        with self._lock:
            for name, counts in field_counts.items():
                self._sketch.fields[name] += counts
            self._sketch.score += score_counts
            if outcomes is not None:
                if self._sketch.buyers is None:
                    self._sketch.buyers = np.zeros(width, dtype=np.int64)
                    self._sketch.labelled = np.zeros(width, dtype=np.int64)
                self._sketch.buyers += buyers
                self._sketch.labelled += score_counts

    def add_outcomes(self, probabilities: np.ndarray, outcomes: np.ndarray) -> None:
        """Count outcomes that arrived after their records were scored (by the records' probabilities)."""
        score_bins = self.profile.bin_scores(np.atleast_1d(probabilities))
        width = len(self._sketch.score)
        labelled = np.bincount(score_bins, minlength=width)
        buyers = np.bincount(score_bins, weights=np.asarray(outcomes, dtype=np.float64), minlength=width)
        with self._lock:
            if self._sketch.buyers is None:
                self._sketch.buyers = np.zeros(width, dtype=np.int64)
                self._sketch.labelled = np.zeros(width, dtype=np.int64)
            self._sketch.buyers += buyers.astype(np.int64)
            self._sketch.labelled += labelled

    def snapshot(self) -> Sketch:
        with self._lock:
            return Sketch.from_json(self._sketch.to_json())


class RollingMonitor:
    """The most recent records only, for gauges: two monitors of ``window // 2`` records each, the older
    dropped when the newer fills, so the window holds between half and all of the last ``window``."""

    def __init__(self, profile: Profile, window: int):
        self.profile, self.half = profile, max(1, window // 2)
        self._older, self._newer = None, Monitor(profile)
        self._lock = threading.Lock()

    def update(self, encoded: np.ndarray, probabilities: np.ndarray) -> None:
        with self._lock:
            newer = self._newer
        newer.update(encoded, probabilities)
        if newer.snapshot().rows >= self.half:
            with self._lock:
                if self._newer is newer:
                    self._older, self._newer = newer, Monitor(self.profile)

    def snapshot(self) -> Sketch:
        with self._lock:
            older, newer = self._older, self._newer
        return newer.snapshot() if older is None else older.snapshot().merge(newer.snapshot())


def rank_roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC-AUC as the Mann-Whitney statistic with average ranks for ties (what scikit-learn computes), in
    numpy, for the service, which has no scikit-learn; None with a single class."""
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))
