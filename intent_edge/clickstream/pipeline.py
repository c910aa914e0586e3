"""Train a clickstream bundle: event log in, sequence model, prefix metrics and a streaming step out.

Bundle layout (``task: clickstream`` in the manifest)::

    BUNDLE/
      manifest.json   sequence spec (vocabulary, max length), threshold, prefix metrics, parity, checksums
      model.keras     the full-sequence Keras model (masking; one output per prefix)
      step.onnx       one step of the model (recurrent cell, or convolutions over a window), for streaming
      step.tflite     the same step for LiteRT (builtin ops)
      step-int8.*     int8-weight steps (ONNX Runtime, LiteRT), where they pass parity
      golden.json     test sessions as raw events with the probability after each event

Sessions are split at random (by ``seed``) 70/15/15 into training, validation (early stopping,
threshold) and test (metrics) sessions; the vocabulary is fitted on training sessions only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from intent_edge.clickstream.events import EventLog, Sequences, encode_sessions, fit_sequence_spec
from intent_edge.clickstream.export import export_step_litert, export_step_onnx
from intent_edge.clickstream.models import KINDS, SequenceRecipe, fit_sequence_model, probabilities_by_position
from intent_edge.fileio import atomic_directory
from intent_edge.runtime.bundle import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, describe_file, write_manifest
from intent_edge.runtime.streaming import TASK
from intent_edge.train.evaluate import ThresholdPolicy
from intent_edge.train.export import check_parity
from intent_edge.train.pipeline import library_versions

PREFIXES = (1, 2, 5, 10)
GOLDEN_SESSIONS = 32
PARITY_SESSIONS = 300


def _positions(data: Sequences) -> np.ndarray:
    return np.arange(data.tokens.shape[1]) < data.lengths[:, None]


def prefix_metrics(labels: np.ndarray, lengths: np.ndarray, by_position: np.ndarray) -> dict:
    """ROC-AUC after k events on the sessions that go on after their k-th event (a prefix that is the
    whole session shows how it ended), and after the last event seen ("all")."""
    from sklearn.metrics import roc_auc_score

    metrics = {}
    for k in PREFIXES:
        going_on = lengths > k
        if going_on.sum() > 1 and len(np.unique(labels[going_on])) == 2:
            metrics[str(k)] = {"roc_auc": float(roc_auc_score(labels[going_on], by_position[going_on, k - 1])),
                               "sessions": int(going_on.sum())}
    last = by_position[np.arange(len(lengths)), lengths - 1]
    if len(np.unique(labels)) == 2:
        metrics["all"] = {"roc_auc": float(roc_auc_score(labels, last)), "sessions": len(labels)}
    return metrics


def train_sequence_bundle(log: EventLog, out: str | Path, *, kind: str = "gru", seed: int = 0,
                          recipe: SequenceRecipe | None = None, max_length: int = 64,
                          policy: ThresholdPolicy | None = None, source: str | None = None,
                          on_step: Callable[[str], None] | None = None) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown sequence model {kind!r}; choose one of {', '.join(KINDS)}")
    recipe, policy = recipe or SequenceRecipe(), policy or ThresholdPolicy("max-f1")
    step = on_step or (lambda message: None)
    if len(log) < 20 or len(np.unique(log.labels)) < 2:
        raise ValueError("training needs at least 20 sessions, with buyers and non-buyers")
    order = np.random.default_rng(seed).permutation(len(log))
    cut_train, cut_validation = int(0.7 * len(order)), int(0.85 * len(order))
    train_log_index = np.sort(order[:cut_train])
    spec = fit_sequence_spec(_subset(log, train_log_index), max_length=max_length)
    data = encode_sessions(spec, log)
    train, validation, test = (data.take(order[:cut_train]), data.take(order[cut_train:cut_validation]),
                               data.take(order[cut_validation:]))
    step(f"training a {kind} on {len(train.labels)} sessions ({len(validation.labels)} validation, "
         f"{len(test.labels)} test), {spec.tokens - 2} event types")
    model = fit_sequence_model(kind, train, validation, spec.tokens, seed=seed, recipe=recipe)
    validation_p = probabilities_by_position(model, validation)
    positions = _positions(validation)
    threshold = policy.choose(np.broadcast_to(validation.labels[:, None], positions.shape)[positions].astype(np.int64),
                              validation_p[positions])
    test_p = probabilities_by_position(model, test)
    metrics = {"test": prefix_metrics(test.labels, test.lengths, test_p),
               "validation": prefix_metrics(validation.labels, validation.lengths, validation_p)}
    step("test ROC-AUC by prefix: " + ", ".join(f"k={k} {m['roc_auc']:.4f}" for k, m in metrics["test"].items()))
    golden_index = order[cut_validation:][:GOLDEN_SESSIONS]
    with atomic_directory(out) as staging:
        model.save(staging / "model.keras")
        step("exporting the streaming step (ONNX, LiteRT) and checking it against the full model")
        signature = export_step_onnx(model, kind, staging / "step.onnx")
        export_step_litert(model, kind, staging / "step.tflite")
        parity_sessions = test.take(np.arange(min(PARITY_SESSIONS, len(test.labels))))
        full = test_p[:len(parity_sessions.labels)]
        mask = _positions(parity_sessions)
        files = {}
        for backend, name in (("onnxruntime", "step.onnx"), ("litert", "step.tflite")):
            streamed = _stream(backend, staging / name, signature, parity_sessions)
            parity = check_parity(full[mask], streamed[mask], f"the streaming step ({name})")
            parity.update(sessions=len(parity_sessions.labels),
                          reference="keras full-sequence model, every prefix")
            step(f"streaming parity ({name}): max |dp| {parity['max_abs_diff']:.2e} over {parity['rows']} events")
            files[backend] = {"file": describe_file(staging, name), "parity": parity}
        manifest_step = {**signature, "backends": files,
                         "int8": _int8_steps(model, kind, staging, signature, test, test_p, metrics["test"], step)}
        golden = {"description": "test sessions as raw events, with the full model's probability after each "
                                 "event; a port or the streaming scorer must reproduce them",
                  "sessions": [_golden_session(log, index, data, position, test_p)
                               for position, index in enumerate(golden_index)]}
        (staging / "golden.json").write_text(json.dumps(golden, allow_nan=False) + "\n", encoding="utf-8")
        manifest = {
            "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "task": TASK,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "model": {"kind": kind, "recipe": recipe.__dict__},
            "sequence": spec.to_spec(),
            "threshold": {"value": float(threshold), "policy": policy.to_json(),
                          "chosen_on": "validation sessions, every prefix"},
            "metrics": metrics,
            "training": {"seed": seed, "sessions": {"train": len(train.labels), "validation": len(validation.labels),
                                                    "test": len(test.labels)}, "source": source},
            "libraries": library_versions(),
            "source_model": {"format": "keras", "file": describe_file(staging, "model.keras")},
            "golden": {"file": describe_file(staging, "golden.json"), "sessions": len(golden["sessions"])},
        }
        manifest["step"] = manifest_step
        write_manifest(staging, manifest)
    return manifest


def _int8_steps(model, kind: str, staging: Path, signature: dict, test: Sequences, test_p: np.ndarray,
                full_metrics: dict, step: Callable[[str], None]) -> dict:
    """int8-weight steps (ONNX Runtime dynamic quantization, LiteRT dynamic range), each streamed over every
    test session and judged like compressed variants: parity against the full model (int8 tolerance)
    and ROC-AUC by prefix against the fp32 model's. Only those that pass parity are kept in the bundle."""
    from intent_edge.compress.pipeline import parity_figures
    from intent_edge.compress.quantize import int8_dynamic

    int8_dynamic(staging / "step.onnx", staging / "step-int8.onnx")
    export_step_litert(model, kind, staging / "step-int8.tflite", int8_weights=True)
    mask = _positions(test)
    kept = {}
    for backend, name in (("onnxruntime", "step-int8.onnx"), ("litert", "step-int8.tflite")):
        streamed = _stream(backend, staging / name, signature, test)
        parity = parity_figures(test_p[mask], streamed[mask], "int8")
        by_prefix = prefix_metrics(test.labels, test.lengths, streamed)
        delta = {k: by_prefix[k]["roc_auc"] - full_metrics[k]["roc_auc"] for k in by_prefix if k in full_metrics}
        step(f"int8 step ({name}): p99 |dp| {parity['p99_abs_diff']:.3g}, max {parity['max_abs_diff']:.3g}; "
             "ROC-AUC change " + ", ".join(f"k={k} {d:+.4f}" for k, d in delta.items())
             + ("" if parity["passed"] else " -- fails parity, not kept"))
        if parity["passed"]:
            kept[backend] = {"file": describe_file(staging, name), "parity": parity, "roc_auc_change": delta,
                             "bytes_fp32": (staging / name.replace("-int8", "")).stat().st_size}
        else:
            (staging / name).unlink()
    return kept


def _subset(log: EventLog, index: np.ndarray) -> EventLog:
    parts = [np.arange(log.starts[i], log.starts[i + 1]) for i in index]
    rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    lengths = np.diff(log.starts)[index]
    return EventLog(log.session_ids[index], np.r_[0, np.cumsum(lengths)].astype(np.int64), log.events[rows],
                    log.timestamps_ms[rows], log.products[rows], log.labels[index])


def _stream(backend: str, path: Path, signature: dict, data: Sequences) -> np.ndarray:
    """Run a step file over every session through the runtime's own step runner."""
    from intent_edge.runtime.streaming import load_step_runner, stream_padded

    return stream_padded(load_step_runner(backend, path, signature, threads=None), signature, data.tokens, data.gaps)


def evaluate_sequence_bundle(bundle: str | Path, log: EventLog, *, backend: str = "auto") -> dict:
    """A clickstream bundle on a labelled event log, through its streaming step (no TensorFlow): for each
    prefix length, ROC-AUC, PR-AUC and the decision figures at the bundle's threshold, on the sessions
    that go on after event k; and after the last event seen."""
    from intent_edge.runtime.bundle import read_manifest, resolve_file
    from intent_edge.runtime.sequence import SequenceSpec
    from intent_edge.runtime.streaming import load_step_runner, step_file, stream_padded
    from intent_edge.train.evaluate import compute_metrics

    manifest = read_manifest(bundle)
    if "step" not in manifest:
        raise ValueError(f"{bundle}: evaluation runs through the streaming step, which this (older cnn) bundle "
                         "does not have; retrain it")
    backend, entry = step_file(bundle, manifest, backend)
    run = load_step_runner(backend, resolve_file(bundle, entry["file"]), manifest["step"])
    data = encode_sessions(SequenceSpec.from_spec(manifest["sequence"]), log)
    by_position = stream_padded(run, manifest["step"], data.tokens, data.gaps)
    threshold = float(manifest["threshold"]["value"])
    report = {}
    for k in (*PREFIXES, None):
        rows = data.lengths > k if k else np.ones(len(data.lengths), dtype=bool)
        if rows.sum() < 2 or len(np.unique(data.labels[rows])) < 2:
            continue
        position = (np.minimum(data.lengths, k) if k else data.lengths)[rows] - 1
        probabilities = by_position[np.flatnonzero(rows), position].astype(np.float64)
        report[str(k or "all")] = compute_metrics(data.labels[rows].astype(np.int64), probabilities, threshold)
    return report


def _golden_session(log: EventLog, index: int, data: Sequences, test_position: int, test_p: np.ndarray) -> dict:
    session = log.session(index)
    n = int(data.lengths[index])
    return {"session_id": str(session["session_id"]), "label": session["label"],
            "events": [{"event": e, "timestamp": t} for e, t in zip(session["events"][:n],
                                                                    session["timestamps_ms"][:n], strict=True)],
            "probabilities": [float(p) for p in test_p[test_position, :n]]}
