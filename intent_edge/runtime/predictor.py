"""Raw record in, probability out: the object POS terminals and app servers embed."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from intent_edge.errors import BundleError, RecordError
from intent_edge.runtime.backends import backend_for
from intent_edge.runtime.bundle import read_manifest, resolve_file, variant_entry
from intent_edge.runtime.encoder import Encoder
from intent_edge.runtime.explain import BATCH_ROWS, Explanation, ShapleyExplainer, check_background


def _is_single_record(value: Any) -> bool:
    return isinstance(value, Mapping) and not any(
        isinstance(v, (list, tuple, np.ndarray)) or hasattr(v, "to_numpy") for v in value.values())


class Predictor:
    """A loaded bundle variant. Thread-safe: each thread encodes into its own buffer.

    ``strict`` (the default) rejects records with a missing field or an empty (None/NaN) value, naming
    the field; with ``strict=False`` empty numeric values take the training median and empty
    categories the out-of-vocabulary bucket. Extra fields are ignored. A value of the wrong type (text
    in a numeric field, say) is always an error.
    """

    def __init__(self, manifest: dict, encoder: Encoder, runner, variant: str, *, strict: bool = True,
                 bundle: Path | None = None, threads: int | None = None):
        self.manifest, self.encoder, self.runner, self.variant = manifest, encoder, runner, variant
        self.threshold = float(manifest["threshold"]["value"])
        self._local = threading.local()
        self._bundle, self._threads = bundle, threads
        self._explainer = None
        self._explainer_lock = threading.Lock()
        self._monitor = None
        self.strict = strict

    @classmethod
    def load(cls, bundle: str | Path, variant: str | None = None, *, backend: str = "auto", strict: bool = True,
             threads: int | None = None, public_key: str | Path | None = None) -> Predictor:
        """Load ``bundle``'s ``variant`` (its default one if None), verifying the files it uses. With
        ``public_key`` (a PEM file), refuse a bundle that is unsigned or not signed by that key."""
        manifest = read_manifest(bundle, public_key)
        if manifest.get("task", "sessions") != "sessions":
            raise BundleError(f"{bundle}: a {manifest['task']} bundle; score it per event with "
                              "intent_edge.runtime.streaming.SessionScorer")
        name, entry = variant_entry(manifest, variant)
        try:
            encoder = Encoder.from_spec(manifest["encoder"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{bundle}: the encoder spec in the manifest is invalid ({exc})") from None
        chosen, file = backend_for(entry, backend)
        runner = chosen.load_model(resolve_file(bundle, file), encoder.width, threads=threads)
        return cls(manifest, encoder, runner, name, strict=strict, bundle=Path(bundle), threads=threads)

    @property
    def bundle(self) -> Path | None:
        """The bundle directory this predictor was loaded from."""
        return self._bundle

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.encoder.names

    @property
    def strict(self) -> bool:
        return self._strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._strict = bool(value)
        self._bind_predict()

    def _bind_predict(self) -> None:
        # Where the runner can join the encoder's fast path (the native one can), ``predict`` becomes one
        # compiled call from raw record to probability (counting it for the monitor, where one watches),
        # which hands the records the fast path does not take to the checked path. It is an attribute of
        # this instance, set again with ``strict`` and with monitoring, and holds no reference back to it
        # (a capsule would keep such a cycle from being collected).
        fuse = getattr(self.runner, "fuse", None)
        if fuse is not None and self.encoder.fast_plan is not None:
            checked = functools.partial(_predict_checked, self.encoder, self.runner, self._strict, self._local,
                                        self._monitor)
            watch = None if self._monitor is None else self._monitor.watch_plan()
            self.predict = fuse(self.encoder.fast_plan, checked, watch)
        else:
            self.__dict__.pop("predict", None)

    # ---- monitoring ---------------------------------------------------------------------------
    def start_monitoring(self):
        """Count every record ``predict`` and ``predict_batch`` score from now on in a
        :class:`intent_edge.runtime.monitor.Monitor` against the bundle's reference profile, and return it
        (its ``snapshot()`` is the sketch to save or send). On the native backend the compiled ``predict``
        counts each record itself, in C."""
        from intent_edge.runtime.monitor import Monitor, Profile

        self._monitor = Monitor(Profile.load(self._bundle, self.manifest, self.variant))
        self._bind_predict()
        return self._monitor

    def stop_monitoring(self) -> None:
        self._monitor = None
        self._bind_predict()

    def encode(self, records: Any) -> np.ndarray:
        """The model input for a batch: a sequence of records, a dict of columns, or a pandas DataFrame."""
        if isinstance(records, Mapping) or hasattr(records, "columns"):
            if _is_single_record(records):
                raise RecordError("*", "got a single record where a batch was expected; use predict() for one record")
            return self.encoder.encode_columns(records, strict=self.strict)
        if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
            raise RecordError("*", f"expected a sequence of records, a dict of columns or a DataFrame, "
                                   f"got {type(records).__name__}")
        return self.encoder.encode_records(records, strict=self.strict)

    def predict(self, record: Mapping[str, Any]) -> float:
        """Purchase probability for one raw record (a mapping of field name to value)."""
        return _predict_checked(self.encoder, self.runner, self._strict, self._local, self._monitor, record)

    def predict_batch(self, records: Any) -> np.ndarray:
        """Purchase probabilities (float32) for a batch of raw records."""
        features = self.encode(records)
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        probabilities = self.runner.infer(features)
        if self._monitor is not None:
            self._monitor.update(features, probabilities)
        return probabilities

    def decide(self, records: Any) -> bool | np.ndarray:
        """Apply the bundle's decision threshold: a bool for one record, a bool array for a batch."""
        if _is_single_record(records):
            return self.predict(records) >= self.threshold
        return self.predict_batch(records) >= self.threshold

    # ---- explanations -----------------------------------------------------------------------
    def explain(self, record: Mapping[str, Any], background: Any = None, *, samples: int | None = None,
                seed: int = 0) -> Explanation:
        """Why ``record`` scored as it did: each field's interventional Shapley value against
        ``background`` (raw records as a list of dicts or a DataFrame; default: the bundle's own), with
        ``base`` the mean probability over the background. ``samples`` sets the permutation budget
        where the values are estimated (see :mod:`intent_edge.runtime.explain`); deterministic per ``seed``."""
        if not _is_single_record(record):
            raise RecordError("*", "explain() takes one record (a mapping); use explain_batch() for several")
        matrix = np.zeros((1, self.encoder.width), dtype=np.float32)
        self.encoder.encode_record(record, matrix[0], strict=self.strict)
        return self._explain_rows(matrix, background, samples, seed)[0]

    def explain_batch(self, records: Any, background: Any = None, *, samples: int | None = None,
                      seed: int = 0) -> list[Explanation]:
        """:meth:`explain` for a batch (a sequence of records, a dict of columns or a DataFrame)."""
        return self._explain_rows(self.encode(records), background, samples, seed)

    def _explain_rows(self, rows: np.ndarray, background: Any, samples: int | None, seed: int) -> list[Explanation]:
        if background is None:
            encoded, weights = self._bundle_background()
        else:
            encoded, weights = check_background(self.encode(background))
        return self._shapley().explain(rows, encoded, weights, samples=samples, seed=seed)

    def _bundle_background(self) -> tuple[np.ndarray, np.ndarray]:
        entry = self.manifest.get("explain", {}).get("background")
        if entry is None:
            raise BundleError("this bundle has no background set for explanations (bundles from before "
                              "intent-edge wrote one); pass background= raw records to explain against")
        cached = getattr(self, "_background", None)
        if cached is None:
            data = json.loads(resolve_file(self._bundle, entry["file"]).read_text(encoding="utf-8"))
            rows = np.asarray(data["rows"], dtype=np.float32)
            if rows.ndim != 2 or rows.shape[1] != self.encoder.width:
                raise BundleError(f"{self._bundle}: the background's rows are not {self.encoder.width} wide")
            cached = self._background = check_background(rows, data["weights"])
        return cached

    def _shapley(self) -> ShapleyExplainer:
        """The explainer on this variant's runner, or, for a variant whose output depends on the rows
        sharing its batch (int8-dynamic quantizes activations per batch), on its float source: the
        explanation's ``variant`` says which, and its ``probability`` is that model's."""
        with self._explainer_lock:
            if self._explainer is None:
                runner, variant = self.runner, self.variant
                entry = self.manifest["variants"][variant]
                if _batch_dependent(variant, entry):
                    source = entry.get("source", "original")
                    variant = "fp32" if source == "original" else source
                    runner = Predictor.load(self._bundle, variant, threads=self._threads).runner
                self._explainer = ShapleyExplainer(self.encoder, runner.infer, variant=variant,
                                                   batch_rows=min(BATCH_ROWS, getattr(runner, "max_batch", BATCH_ROWS)))
            return self._explainer


def _encode_and_run(encoder: Encoder, runner, strict: bool, local: threading.local,
                    record: Mapping[str, Any]) -> tuple[np.ndarray, float]:
    """One record encoded into this thread's row (made once per thread) and run: the fast encoder where it
    takes the record, else the checked path, which raises the error that names the field. The row and
    the probability."""
    try:
        row, run = local.buffer
    except AttributeError:
        matrix = np.zeros((1, encoder.width), dtype=np.float32)
        row, run = local.buffer = (matrix[0], functools.partial(runner.infer_one, matrix))
    encoder.encode_record(record, row, strict=strict)
    return row, run()


def _predict_checked(encoder: Encoder, runner, strict: bool, local: threading.local, monitor,
                     record: Mapping[str, Any]) -> float:
    row, probability = _encode_and_run(encoder, runner, strict, local, record)
    if monitor is not None:
        monitor.update(row[None, :], np.array([probability]))
    return probability


def _batch_dependent(name: str, entry: dict) -> bool:
    return entry.get("conversion") == "int8-dynamic" or name.endswith("int8-dynamic")
