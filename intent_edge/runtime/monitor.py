"""Monitoring where the model runs: small mergeable sketches of what a till scores (numpy only).

The bundle carries a reference profile (``monitor.json``, written by ``train``, checksummed like every
file): for each field, bins fixed on the training rows, and for the score, bins fixed on the held-out
scores, with each bin's training or held-out counts and, for the score, its held-out buyer rate after
Platt scaling.

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
EXACT_FLOAT_SUM = 2 ** 24  # rows whose 0s and 1s a float32 sum counts exactly
OUT_OF_VOCABULARY = "out of vocabulary"  # the label of a categorical field's bin for words not in training


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

    @property
    def out_of_vocabulary_bin(self) -> int | None:
        """A categorical field's bin for words not in its vocabulary (last, or last but the empty one)."""
        if self.kind != "categorical":
            return None
        return self.bins - 1 if self.labels[-1] == OUT_OF_VOCABULARY else self.bins - 2


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
        # edges padded with +inf (for the compiled count, which runs over a fixed number of edges)
        self._edges = np.full((len(numeric), width), np.inf, dtype=np.float32)
        for i, f in enumerate(numeric):
            self._edges[i, :len(f.edges)] = f.edges
        self._indicators = [(i, f.indicator, f.bins - 1) for i, f in enumerate(numeric) if f.indicator is not None]
        self._categorical = [f for f in fields if f.kind == "categorical"]
        # where count_flat puts each count: fields one after another, each numeric field's bins taken from
        # its row of edge counts, each categorical field's from its block's column sums
        self._offsets = np.cumsum([0, *(f.bins for f in fields)])
        self._numeric_offsets = [int(self._offsets[i]) for i, f in enumerate(fields) if f.kind == "numeric"]
        self._categorical_indices = [i for i, f in enumerate(fields) if f.kind == "categorical"]
        self._numeric_targets = np.array([o + b for o, f in zip(self._numeric_offsets, numeric, strict=True)
                                          for b in range(len(f.edges) + 1)], dtype=np.intp)
        self._numeric_sources = np.array([i * (width + 1) + b for i, f in enumerate(numeric)
                                          for b in range(len(f.edges) + 1)], dtype=np.intp)
        self._categorical_targets = np.array([self._offsets[i] + b for i, f in zip(
            self._categorical_indices, self._categorical, strict=True) for b in range(f.bins)], dtype=np.intp)
        self._categorical_sources = np.array([f.column + b for f in self._categorical for b in range(f.bins)],
                                             dtype=np.intp)
        self._categorical_starts = np.cumsum([0, *(f.bins for f in self._categorical)])[:-1]

    # ---- binning -----------------------------------------------------------------------------
    def count_rows(self, encoded: np.ndarray) -> dict[str, np.ndarray]:
        """Each field's count per bin (int64) over the rows of an encoded matrix (see :meth:`count_flat`)."""
        flat = self.count_flat(encoded)
        return {f.name: flat[self._offsets[i]:self._offsets[i + 1]] for i, f in enumerate(self.fields)}

    def count_flat(self, encoded: np.ndarray) -> np.ndarray:
        """Every field's count per bin over the rows of an encoded matrix, one field after another, as the
        compiled count gives them row by row. A numeric value's bin is the number of its field's edges <=
        it (an empty value has its own bin), so a bin's count is read off the field's sorted values; a
        categorical field's counts are its one-hot block's column sums (float32 sums of 0s and 1s, exact
        in slices below 2**24 rows). A block whose 1s do not number one a row (not what the encoder
        writes) is read by argmax, the first 1, as the compiled count reads it."""
        encoded = np.asarray(encoded, dtype=np.float32).reshape(-1, encoded.shape[-1])
        rows, flat = len(encoded), np.zeros(self._offsets[-1], dtype=np.int64)
        # a numeric field's values sorted (an empty one as -inf, so below every edge): the rows below each
        # edge are then one search an edge, not one a value
        values = encoded[:, self._numeric_columns].T.copy()
        empties = {}
        for i, column, _ in self._indicators:
            empties[i] = encoded[:, column] == 1.0
            values[i][empties[i]] = -np.inf
        ordered = np.sort(values, axis=1)
        below = np.full((len(values), self._edges.shape[1] + 1), rows, dtype=np.int64)  # +inf pads: all rows
        for i in range(len(values)):
            below[i, :-1] = np.searchsorted(ordered[i], self._edges[i], side="left")
        per_bin = below.copy()
        per_bin[:, 1:] -= below[:, :-1]  # rows below an edge less rows below the previous one
        flat[self._numeric_targets] = per_bin.ravel()[self._numeric_sources]
        for i, _, empty_bin in self._indicators:  # an empty value has its own bin, not a decile's
            taken = int(np.count_nonzero(empties[i]))
            flat[self._numeric_offsets[i]] -= taken
            flat[self._numeric_offsets[i] + empty_bin] = taken
        columns = sum(_column_sums(encoded[i:i + EXACT_FLOAT_SUM])[self._categorical_sources].astype(np.int64)
                      for i in range(0, max(rows, 1), EXACT_FLOAT_SUM))
        flat[self._categorical_targets] = columns
        if len(columns) and (np.add.reduceat(columns, self._categorical_starts) != rows).any():
            for i, f in zip(self._categorical_indices, self._categorical, strict=True):
                offset = self._offsets[i]
                if flat[offset:offset + f.bins].sum() != rows:
                    ones = np.argmax(encoded[:, f.column:f.column + f.bins] == 1.0, axis=1)
                    flat[offset:offset + f.bins] = np.bincount(ones, minlength=f.bins)
        return flat

    def bin_scores(self, probabilities: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.score_edges, np.asarray(probabilities, dtype=np.float64), side="right")

    def count_scores(self, probabilities: np.ndarray) -> np.ndarray:
        """The count per score bin (what bincount of bin_scores gives): the probabilities sorted once, and
        the number below each edge read off them, which is quicker than a search per probability."""
        ordered = np.sort(np.asarray(probabilities, dtype=np.float64).reshape(-1))
        below = np.empty(len(self.score_edges) + 1, dtype=np.int64)  # rows in the bins up to each edge
        below[:-1], below[-1] = np.searchsorted(ordered, self.score_edges, side="left"), len(ordered)
        below[1:] -= below[:-1].copy()
        return below

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
                labels = [*feature.vocabulary, OUT_OF_VOCABULARY] + (["empty"] if feature.may_be_empty else [])
                fields.append(FieldBins(feature.name, "categorical", offset, tuple(labels)))
        empty = np.zeros(0)
        profile = cls(fields, {}, empty, empty, empty, empty, summary)
        profile.reference = profile.count_rows(training)
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


def _column_sums(matrix: np.ndarray, chunks: int = 64) -> np.ndarray:
    """A C-ordered matrix's column sums, quicker than ``sum(axis=0)``, which runs a short loop a row: the
    rows are cut into ``chunks`` runs that are added as long vectors, then the run's rows are added. Not a
    BLAS product, whose threads would spin on the cores that predict runs on."""
    matrix = np.ascontiguousarray(matrix)
    whole = len(matrix) - len(matrix) % chunks
    runs = matrix[:whole].reshape(chunks, -1).sum(axis=0).reshape(-1, matrix.shape[1]).sum(axis=0)
    return runs + matrix[whole:].sum(axis=0)


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
    """A sketch that grows with every record scored (thread-safe); :meth:`snapshot` copies it.

    The counts live in two flat int64 arrays, fields' bins then the score's: one that :meth:`update`
    adds batches to under a lock, and one that the native backend's fused ``predict`` increments in C,
    holding the GIL (:meth:`watch_plan`); a snapshot adds them up."""

    def __init__(self, profile: Profile):
        self.profile = profile
        sizes = [f.bins for f in profile.fields] + [len(profile.score_reference)]
        self._offsets = np.cumsum([0, *sizes])
        self._counts = np.zeros(int(self._offsets[-1]), dtype=np.int64)  # written here, under the lock
        self._compiled_counts = np.zeros_like(self._counts)  # written by the compiled predict
        self._buyers = self._labelled = None
        self._lock = threading.Lock()

    def update(self, encoded: np.ndarray, probabilities: np.ndarray, outcomes: np.ndarray | None = None) -> None:
        """Count encoded rows and their probabilities (and their known outcomes, 0/1, where given)."""
        counts = np.concatenate([self.profile.count_flat(encoded), self.profile.count_scores(probabilities)])
        with self._lock:
            self._counts += counts
        if outcomes is not None:
            self.add_outcomes(probabilities, outcomes)

    def add_outcomes(self, probabilities: np.ndarray, outcomes: np.ndarray) -> None:
        """Count outcomes that arrived after their records were scored (by the records' probabilities)."""
        score_bins = self.profile.bin_scores(np.atleast_1d(probabilities))
        width = len(self.profile.score_reference)
        labelled = np.bincount(score_bins, minlength=width)
        buyers = np.bincount(score_bins, weights=np.asarray(outcomes, dtype=np.float64).reshape(-1), minlength=width)
        with self._lock:
            if self._buyers is None:
                self._buyers = np.zeros(width, dtype=np.int64)
                self._labelled = np.zeros(width, dtype=np.int64)
            self._buyers += buyers.astype(np.int64)
            self._labelled += labelled

    def watch_plan(self) -> tuple:
        """The plan the native backend's fused ``predict`` counts with (see ``_native.c``: ``Watch``)."""
        profile, offsets = self.profile, self._offsets
        numeric = [(i, f) for i, f in enumerate(profile.fields) if f.kind == "numeric"]
        numeric_plan = np.array([(f.column, -1 if f.indicator is None else f.indicator, offsets[i],
                                  f.bins - 1 if f.indicator is not None else 0) for i, f in numeric],
                                dtype=np.int32).reshape(-1, 4)
        categorical = np.array([(f.column, f.bins, offsets[i]) for i, f in enumerate(profile.fields)
                                if f.kind == "categorical"], dtype=np.int32).reshape(-1, 3)
        return (numeric_plan, np.ascontiguousarray(profile._edges, dtype=np.float32), categorical,
                np.ascontiguousarray(profile.score_edges, dtype=np.float64), int(offsets[-2]),
                self._compiled_counts)

    def snapshot(self) -> Sketch:
        with self._lock:
            counts = self._counts + self._compiled_counts
            buyers = None if self._buyers is None else self._buyers.copy()
            labelled = None if self._labelled is None else self._labelled.copy()
        offsets = self._offsets
        return Sketch({f.name: counts[offsets[i]:offsets[i + 1]].copy() for i, f in enumerate(self.profile.fields)},
                      counts[offsets[-2]:].copy(), buyers, labelled)


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
