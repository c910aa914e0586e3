"""Training pipeline: split, fit encoder and MLP, choose the threshold, export, prove parity, write the bundle."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge import __version__
from intent_edge.data.io import Dataset
from intent_edge.data.quality import data_quality, leakage_warnings, quality_lines
from intent_edge.data.schema import Schema
from intent_edge.errors import BundleError, DataError, UsageError
from intent_edge.export.network import write_native_variant
from intent_edge.fileio import atomic_directory
from intent_edge.monitoring.profile import write_profile
from intent_edge.parity import PARITY_ROWS, compare
from intent_edge.raw_graph import raw_metadata, spec_sha256, write_raw_variant
from intent_edge.runtime.backends import BACKENDS
from intent_edge.runtime.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    describe_file,
    resolve_file,
    sha256_of,
    write_manifest,
)
from intent_edge.runtime.columns import is_missing
from intent_edge.runtime.encoder import Encoder
from intent_edge.train.background import write_background
from intent_edge.train.evaluate import ThresholdPolicy, compute_metrics, summarise_folds
from intent_edge.train.export import ONNX_OPSET, export_onnx
from intent_edge.train.hash_split import rebuild_hash_split
from intent_edge.train.mlp import MLPRecipe, best_epoch, fit_mlp, predict_probabilities

EpochCallback = Callable[[int, int, dict], None]
GOLDEN_ROWS = 256
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}


@dataclass
class FittedModel:
    encoder: Encoder
    model: object  # keras.Model
    threshold: float
    validation_metrics: dict
    epochs: int
    rows: dict


def carve_validation(labels: np.ndarray, recipe: MLPRecipe, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (within the training rows) of the rows fitted on and of the validation rows."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=recipe.validation_fraction, stratify=labels,
                            random_state=seed)


def fit_model(features: pd.DataFrame, labels: np.ndarray, schema: Schema, recipe: MLPRecipe, seed: int,
              policy: ThresholdPolicy, on_epoch: EpochCallback | None = None,
              on_step: Callable[[str], None] | None = None) -> FittedModel:
    """Fit encoder and MLP on ``features`` (training rows only): a stratified validation split is carved
    from them for early stopping and the threshold, and the encoder sees only the rest. With
    ``recipe.refit``, a second encoder, teacher and network are then fitted on all of ``features`` for the
    epoch count early stopping chose; that network is the one returned, with the first one's threshold
    (chosen on rows the first network never fitted, for a network trained the same way)."""
    features = features.reset_index(drop=True)
    fit_rows, validation_rows = carve_validation(labels, recipe, seed)
    if on_step and recipe.teacher != "none":
        on_step(f"fitting the {recipe.teacher} teacher on {len(fit_rows)} rows ({recipe.teacher_folds} folds, "
                "out of fold)")
    encoder, fit_x, targets = _encode_and_target(features.iloc[fit_rows], labels[fit_rows], schema, recipe, seed)
    validation_x = encoder.encode_columns(features.iloc[validation_rows], strict=False)
    model, history = fit_mlp(fit_x, labels[fit_rows], (validation_x, labels[validation_rows]), recipe, seed, on_epoch,
                             targets=targets)
    validation_p = predict_probabilities(model, validation_x)
    threshold = policy.choose(labels[validation_rows], validation_p)
    metrics = compute_metrics(labels[validation_rows], validation_p, threshold)
    rows, epochs = {"fit": len(fit_rows), "validation": len(validation_rows)}, best_epoch(history)
    if recipe.refit:
        if on_step:
            on_step(f"refitting on all {len(labels)} training rows for the {epochs} epochs early stopping chose")
        encoder, all_x, targets = _encode_and_target(features, labels, schema, recipe, seed)
        model, _ = fit_mlp(all_x, labels, None, recipe, seed, on_epoch, targets=targets, epochs=epochs)
        rows["refit"] = len(labels)
    return FittedModel(encoder, model, threshold, metrics, epochs, rows)


def _encode_and_target(features: pd.DataFrame, labels: np.ndarray, schema: Schema, recipe: MLPRecipe,
                       seed: int) -> tuple[Encoder, np.ndarray, np.ndarray | None]:
    """An encoder fitted on these rows, the rows encoded, and the fitted target: None for the plain labels,
    or, with a teacher, the labels blended with the teacher's out-of-fold probabilities on these rows."""
    encoder = Encoder.fit(features, schema.kinds, schema.transforms)
    encoded = encoder.encode_columns(features, strict=False)
    if recipe.teacher == "none":
        return encoder, encoded, None
    from intent_edge.train.teacher import out_of_fold_probabilities

    soft = out_of_fold_probabilities(features, labels, schema.kinds, folds=recipe.teacher_folds, seed=seed,
                                     model=recipe.teacher)
    return encoder, encoded, (1.0 - recipe.teacher_weight) * labels + recipe.teacher_weight * soft


def _period_order(values: pd.Series, path: str, column: str) -> np.ndarray:
    """Sortable keys for a period column: month names, numbers, or dates."""
    text = values.astype(str).str.strip().str.lower().str[:3]
    if text.isin(list(_MONTHS)).all():
        return text.map(_MONTHS).to_numpy()
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy()
    parsed = pd.to_datetime(values, errors="coerce")
    if parsed.notna().all():
        return parsed.to_numpy()
    raise DataError(path, "cannot order this column in time: expected month names, numbers or dates", column=column)


def split_for_test(dataset: Dataset, test_fraction: float, seed: int,
                   time_column: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Indices of training and held-out test rows: stratified at random, or out of time (the latest periods
    of ``time_column`` holding at least ``test_fraction`` of the rows are the test set)."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(dataset.labels))
    if time_column is None:
        train, test = train_test_split(rows, test_size=test_fraction, stratify=dataset.labels, random_state=seed)
        return np.sort(train), np.sort(test), {"kind": "stratified", "test_fraction": test_fraction, "seed": seed}
    if time_column not in dataset.frame.columns:
        raise DataError(dataset.path, f"no column '{time_column}' to split by time", column=time_column)
    keys = _period_order(dataset.frame[time_column], dataset.path, time_column)
    periods = np.unique(keys)
    if len(periods) < 2:
        raise DataError(dataset.path, "an out-of-time split needs at least two periods", column=time_column)
    counts = np.array([(keys == p).sum() for p in periods])
    tail = np.cumsum(counts[::-1])[::-1]  # rows in this period and all later ones
    first_test = max(1, int(np.nonzero(tail >= test_fraction * len(keys))[0].max()))
    is_test = np.isin(keys, periods[first_test:])
    if len(np.unique(dataset.labels[is_test])) < 2 or len(np.unique(dataset.labels[~is_test])) < 2:
        raise DataError(dataset.path, "the out-of-time split leaves one side with a single class", column=time_column)
    names = dataset.frame[time_column].astype(str).to_numpy()
    in_order = [str(names[np.argmax(keys == p)]) for p in periods]  # one name per period, chronological
    return rows[~is_test], rows[is_test], {
        "kind": "out-of-time", "column": time_column, "test_fraction": test_fraction,
        "train_periods": in_order[:first_test], "test_periods": in_order[first_test:],
    }


def _digest(rows: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(rows, dtype="<i8").tobytes()).hexdigest()


def record_split(split: dict, test: np.ndarray) -> dict:
    """The split as the manifest keeps it: how it was made, and the count and sha256 of the held-out row
    indices, so that compress and the plots can rebuild it and prove they did."""
    return {**split, "test_rows": int(len(test)), "test_sha256": _digest(test)}


def rebuild_split(dataset: Dataset, training: dict) -> tuple[np.ndarray, np.ndarray]:
    """A bundle's training and held-out rows of ``dataset`` (the file it was trained on), rebuilt from the
    manifest's ``training`` record and checked against the recorded held-out rows."""
    split = training["split"]
    if split["kind"] == "hash":  # a streamed bundle: held-out rows by a hash of the row key
        test, digest = rebuild_hash_split(dataset.frame, split)
        if len(test) != split["test_rows"] or digest != split["test_digest"]:
            raise BundleError(f"the held-out rows rebuilt from {dataset.path} ({len(test)}) are not the "
                              f"{split['test_rows']} the bundle was tested on; the split cannot be reproduced here")
        return np.setdiff1d(np.arange(len(dataset.labels)), test), test
    if split["kind"] == "out-of-time" and "test_sha256" not in split:
        raise BundleError("this out-of-time bundle was written before its split was recorded exactly, so its "
                          "held-out rows cannot be rebuilt safely; retrain it with this version of intent-edge")
    train, test, _ = split_for_test(dataset, split.get("test_fraction", 0.2), training["seed"], split.get("column"))
    if "test_sha256" in split and (len(test) != split["test_rows"] or _digest(test) != split["test_sha256"]):
        raise BundleError(f"the held-out rows rebuilt from {dataset.path} ({len(test)}) are not the "
                          f"{split['test_rows']} "
                          "the bundle was tested on; the split cannot be reproduced here")
    return train, test


def load_keras(bundle: Path, manifest: dict):
    """The bundle's Keras source model, verified, in safe mode (no code from the file ever runs)."""
    import keras

    path = resolve_file(bundle, manifest["source_model"]["file"])
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as exc:  # safe mode refuses Lambda layers and other serialised Python code
        if "safe_mode" not in str(exc) and "Lambda" not in str(exc):
            raise
        raise BundleError(f"{bundle}: refused to load {path.name}: it holds code (a Lambda layer or other "
                          f"Python), which safe mode never runs") from None


def cross_validate(dataset: Dataset, folds: int, recipe: MLPRecipe, seed: int, policy: ThresholdPolicy,
                   on_fold: Callable[[int, int], None] | None = None, on_epoch: EpochCallback | None = None) -> dict:
    """Stratified K-fold (shuffled, ``random_state=seed``): each fold's model is fitted on the other folds
    exactly as ``train`` would be, and scored on the held-out fold with Keras."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise UsageError("cross-validation needs at least 2 folds")
    results = []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(dataset.labels)), dataset.labels), start=1):
        if on_fold:
            on_fold(fold, folds)
        fitted = fit_model(dataset.features.iloc[train], dataset.labels[train], dataset.schema, recipe, seed, policy,
                           on_epoch)
        test_x = fitted.encoder.encode_columns(dataset.features.iloc[test].reset_index(drop=True), strict=False)
        results.append({"fold": fold, "epochs": fitted.epochs,
                        **compute_metrics(dataset.labels[test], predict_probabilities(fitted.model, test_x),
                                          fitted.threshold)})
    return {"folds": results, "summary": summarise_folds(results), "k": folds, "seed": seed}


def evaluate_split(dataset: Dataset, recipe: MLPRecipe, seed: int, policy: ThresholdPolicy, test_fraction: float,
                   time_column: str | None, on_epoch: EpochCallback | None = None) -> dict:
    """Fit on the training side of a split (stratified or out of time) and score the held-out side."""
    train, test, split = split_for_test(dataset, test_fraction, seed, time_column)
    fitted = fit_model(dataset.features.iloc[train], dataset.labels[train], dataset.schema, recipe, seed, policy,
                           on_epoch)
    test_x = fitted.encoder.encode_columns(dataset.features.iloc[test].reset_index(drop=True), strict=False)
    probabilities = predict_probabilities(fitted.model, test_x)
    return {"split": split, "metrics": compute_metrics(dataset.labels[test], probabilities, fitted.threshold),
            "labels": dataset.labels[test], "probabilities": probabilities}


def library_versions() -> dict[str, str]:
    versions = {"intent-edge": __version__}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "onnxruntime-gpu",
                 "ai-edge-litert",
                 "numpy", "scikit-learn", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def strict_rows(features: pd.DataFrame, rows: np.ndarray, encoder: Encoder) -> np.ndarray:
    """Those of ``rows`` that the strict runtime takes: every field never empty in training is present
    (a field that may be empty may be empty here too, so the golden vectors and parity rows cover it)."""
    required = [f.name for f in encoder.features if not f.may_be_empty]
    return rows[features.iloc[rows][required].notna().all(axis=1).to_numpy()]


def train_bundle(dataset: Dataset, out: str | Path, *, recipe: MLPRecipe | None = None, seed: int = 0,
                 policy: ThresholdPolicy | None = None, test_fraction: float = 0.2, time_column: str | None = None,
                 on_epoch: EpochCallback | None = None, on_step: Callable[[str], None] | None = None) -> dict:
    """Train, evaluate on held-out rows, export to ONNX with parity, and write the bundle atomically."""
    recipe, policy = recipe or MLPRecipe(), policy or ThresholdPolicy("max-f1")
    step = on_step or (lambda _message: None)
    train, test, split = split_for_test(dataset, test_fraction, seed, time_column)
    quality = data_quality(dataset.frame, dataset.schema)
    quality["warnings"] += leakage_warnings(dataset.features.iloc[train], dataset.labels[train], dataset.schema)
    for line in quality_lines(quality):
        step(line)
    step(f"training on {len(train)} rows ({len(test)} held out, {split['kind']} split)")
    fitted = fit_model(dataset.features.iloc[train], dataset.labels[train], dataset.schema, recipe, seed, policy,
                       on_epoch, step)
    encoder = fitted.encoder
    accepted = strict_rows(dataset.features, test, encoder)
    test_frame = dataset.features.iloc[test].reset_index(drop=True)
    evidence = Evidence(
        parity_frame=dataset.features.iloc[
            np.random.default_rng(seed).permutation(len(dataset.labels))[:PARITY_ROWS]].reset_index(drop=True),
        golden_frame=dataset.features.iloc[accepted[:GOLDEN_ROWS]],
        raw_frame=dataset.features.iloc[accepted[:PARITY_ROWS]],
        background=lambda: encoder.encode_columns(dataset.features.iloc[train], strict=False),
        score_test=lambda runner: (dataset.labels[test], runner.infer(encoder.encode_columns(test_frame,
                                                                                            strict=False))))
    training = {"model": "mlp", "recipe": recipe.to_json(), "seed": seed, "epochs": fitted.epochs,
                "split": record_split(split, test), "rows": {**fitted.rows, "test": len(test)},
                "data": {"file": Path(dataset.path).name, "sha256": sha256_of(Path(dataset.path)),
                         "rows": len(dataset.labels)}}
    chosen_on = "validation, by the network before its refit on all training rows" if recipe.refit else "validation"
    return write_mlp_bundle(out, fitted, evidence, schema=dataset.schema, quality=quality, policy=policy,
                            training=training, threshold_chosen_on=chosen_on, seed=seed, step=step)


@dataclass
class Evidence:
    """What a bundle is proven and scored on, however its rows were read (in memory or streamed)."""

    parity_frame: pd.DataFrame  # raw rows: Keras (training encoder) against ONNX (runtime encoder)
    golden_frame: pd.DataFrame  # held-out rows the strict runtime takes, at most GOLDEN_ROWS
    raw_frame: pd.DataFrame  # held-out rows the strict runtime takes, for the raw-field graph's check
    background: Callable[[], np.ndarray]  # encoded training rows: the explanations' background, monitoring bins
    score_test: Callable[[object], tuple[np.ndarray, np.ndarray]]  # runner -> (labels, probabilities) of the test


def write_mlp_bundle(out: str | Path, fitted: FittedModel, evidence: Evidence, *, schema, quality: dict,
                     policy: ThresholdPolicy, training: dict, threshold_chosen_on: str, seed: int,
                     step: Callable[[str], None]) -> dict:
    """Export a fitted MLP and write its bundle atomically: ONNX with parity, held-out metrics, golden
    vectors, the raw-field graph, the native weights, the explanations' background and the manifest."""
    encoder, spec = fitted.encoder, fitted.encoder.to_spec()
    spec_digest = spec_sha256(spec)

    with atomic_directory(out) as staging:
        step("exporting to ONNX and checking parity with Keras")
        fitted.model.save(staging / "model.keras")
        export_onnx(fitted.model, encoder.width, staging / "model.onnx",
                    metadata={"intent_edge.encoder_sha256": spec_digest, "intent_edge.input_width": str(encoder.width)})
        runner = BACKENDS["onnxruntime"].load_model(staging / "model.onnx", encoder.width)

        # Parity from raw records: the runtime's per-record encoder feeds ONNX, the training column
        # encoder feeds Keras, so the check covers both encoder paths as well as the export.
        parity_frame = evidence.parity_frame.reset_index(drop=True)
        keras_p = predict_probabilities(fitted.model, encoder.encode_columns(parity_frame, strict=False))
        onnx_p = runner.infer(encoder.encode_records(parity_frame.to_dict("records"), strict=False))
        parity = compare(keras_p, onnx_p, "fp32").require("the ONNX export").to_json()

        step("scoring the held-out test rows")
        test_labels, test_p = evidence.score_test(runner)
        test_metrics = compute_metrics(test_labels, test_p, fitted.threshold)

        golden_records = [{name: None if is_missing(value) else value for name, value in record.items()}
                          for record in evidence.golden_frame.to_dict("records")]  # JSON: null
        golden_x = encoder.encode_records(golden_records)
        golden = {"description": "raw records, their encoded model input (float32) and probabilities from the "
                                 "fp32 ONNX variant; a port of the encoder must reproduce 'encoded' exactly and "
                                 "'probability' within 1e-5",
                  "feature_names": list(encoder.names),
                  "rows": [{"record": r, "encoded": [float(v) for v in x], "probability": float(p)}
                           for r, x, p in zip(golden_records, golden_x, runner.infer(golden_x), strict=True)]}
        (staging / "golden.json").write_text(json.dumps(golden, allow_nan=False) + "\n", encoding="utf-8")

        step("writing the raw-field ONNX graph and checking it against the runtime")
        raw = write_raw_variant(encoder, staging / "model.onnx", staging, "model.raw.onnx",
                                records=evidence.raw_frame.to_dict("records"), reference=runner, precision="fp32",
                                metadata=raw_metadata("fp32", fitted.threshold, spec))
        step(f"raw-field graph: {raw['status']}")
        native = write_native_variant(staging / "model.onnx", staging, "fp32", runner, golden_x)

        step("summarising the training rows as the explanations' background (k-means)")
        training_x = evidence.background()
        explain = write_background(staging, training_x, seed)
        step("writing the monitoring profile: reference bins of every field and of the held-out scores")
        monitor = write_profile(staging, encoder, training_x, test_p, test_labels, variant="fp32",
                                threshold=fitted.threshold)

        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "label": schema.label,
            "schema": schema.to_json(),
            "data_quality": quality,
            "encoder": spec,
            "threshold": {"value": fitted.threshold, "policy": policy.to_json(), "chosen_on": threshold_chosen_on},
            "metrics": {"test": test_metrics, "validation": fitted.validation_metrics},
            "training": training,
            "libraries": library_versions(),
            "source_model": {"format": "keras", "file": describe_file(staging, "model.keras")},
            "default_variant": "fp32",
            "variants": {"fp32": {"format": "onnx", "precision": "fp32", "file": describe_file(staging, "model.onnx"),
                                  "opset": ONNX_OPSET, "parity": parity, "raw": raw, "native": native}},
            "golden": {"file": describe_file(staging, "golden.json"), "rows": len(golden["rows"])},
            "explain": explain,
            "monitor": monitor,
        }
        write_manifest(staging, manifest)
    return manifest


def plot_held_out(bundle: str | Path, dataset: Dataset, directory: str | Path) -> list[Path]:
    """ROC, PR and calibration PNGs of a bundle's held-out test rows of ``dataset`` (the file it was trained
    on), through the runtime; the split is rebuilt from the manifest and checked."""
    from intent_edge.runtime import Predictor
    from intent_edge.train.evaluate import write_plots

    predictor = Predictor.load(bundle, strict=False)
    _, test = rebuild_split(dataset, predictor.manifest["training"])
    probabilities = predictor.predict_batch(dataset.features.iloc[test].reset_index(drop=True))
    return write_plots(dataset.labels[test], np.asarray(probabilities, np.float64), directory, "held-out test")
