"""Train a clickstream bundle: event log in, sequence model, prefix metrics and a streaming step out.

Bundle layout (``task: clickstream`` in the manifest)::

    BUNDLE/
      manifest.json   sequence spec (vocabulary, max length), threshold, prefix metrics, parity, checksums
      model.keras     the full-sequence Keras model (masking; one output per prefix)
      step.onnx       one step of the model (recurrent cell, or convolutions over a window), for streaming
      step.tflite     the same step for LiteRT (builtin ops)
      step-int8.*     int8-weight steps (ONNX Runtime, LiteRT), where they pass parity
      step.native.npz gru and lstm only: the step's weights as plain arrays, which `export --format c` compiles
      context.*       hybrid only: the session start, encoded context in, initial GRU state out
      golden.json     test sessions as raw events with the probability after each event

A hybrid bundle's manifest also holds the context encoder spec (the same declarative encoder as the
session MLP, fitted on training sessions only) under ``context``.

Sessions are split at random (by ``seed``) into training, validation (15%: early stopping, threshold)
and test (15% by default: metrics) sessions; the vocabulary is fitted on training sessions only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from intent_edge.clickstream.events import EventLog, Sequences, encode_sessions, fit_sequence_spec
from intent_edge.clickstream.export import (
    COMPILED_KINDS,
    context_graph,
    step_graph,
    step_weights,
    write_litert,
    write_onnx,
)
from intent_edge.clickstream.models import KINDS, SequenceRecipe, fit_sequence_model, probabilities_by_position
from intent_edge.errors import BundleError, UsageError
from intent_edge.fileio import atomic_directory
from intent_edge.parity import compare
from intent_edge.runtime.backends import BACKENDS
from intent_edge.runtime.bundle import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, describe_file, write_manifest
from intent_edge.runtime.streaming import TASK
from intent_edge.train.evaluate import ThresholdPolicy
from intent_edge.train.pipeline import library_versions

PREFIXES = (1, 2, 5, 10)
TEST_FRACTION = 0.15
VALIDATION_FRACTION = 0.15
GOLDEN_SESSIONS = 32
PARITY_SESSIONS = 300
STEP_BACKENDS = ("onnxruntime", "litert")  # the backends a step and a context graph are written for


def graph_files(stem: str) -> dict[str, str]:
    """The file each step backend runs for a graph called ``stem`` (``step.onnx``, ``step.tflite``)."""
    return {backend: f"{stem}.{BACKENDS[backend].model_format}" for backend in STEP_BACKENDS}


REFERENCE = "keras full-sequence model, every prefix"


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
                          test_fraction: float = TEST_FRACTION, label: str | None = None,
                          on_step: Callable[[str], None] | None = None) -> dict:
    """Train a ``kind`` sequence model on ``log`` and write its bundle atomically. Sessions are split at
    random: ``test_fraction`` for the test metrics, :data:`VALIDATION_FRACTION` for early stopping and the
    threshold, the rest for training. ``label`` names the per-session label column the log was read with
    (recorded in the manifest; None: a purchase event ends a buying session)."""
    if kind not in KINDS:
        raise UsageError(f"unknown sequence model {kind!r}; choose one of {', '.join(KINDS)}")
    recipe, policy = recipe or SequenceRecipe(), policy or ThresholdPolicy("max-f1")
    step = on_step or (lambda message: None)
    if len(log) < 20 or len(np.unique(log.labels)) < 2:
        raise UsageError("training needs at least 20 sessions, with buyers and non-buyers")
    if not 0.05 <= test_fraction <= 0.5:
        raise UsageError(f"test fraction {test_fraction} must lie between 0.05 and 0.5")
    order = np.random.default_rng(seed).permutation(len(log))
    cut_train = int((1.0 - test_fraction - VALIDATION_FRACTION) * len(order))
    cut_validation = int((1.0 - test_fraction) * len(order))
    train_log_index = np.sort(order[:cut_train])
    spec = fit_sequence_spec(_subset(log, train_log_index), max_length=max_length)
    context_encoder = fit_context_encoder(log, train_log_index, step) if kind == "hybrid" else None
    data = encode_sessions(spec, log, context_encoder)
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
    golden_positions = np.arange(len(test.labels))
    if context_encoder is not None:  # golden sessions replay strictly: only sessions with their whole context
        golden_positions = golden_positions[log.context.iloc[order[cut_validation:]].notna().all(axis=1).to_numpy()]
    golden_positions = golden_positions[:GOLDEN_SESSIONS]
    with atomic_directory(out) as staging:
        model.save(staging / "model.keras")
        step("exporting the streaming step (ONNX, LiteRT) and checking it against the full model")
        graph = step_graph(model, kind)
        signature = write_onnx(graph, staging / "step.onnx")
        write_litert(graph, staging / "step.tflite")
        context = None
        if context_encoder is not None:
            start = context_graph(model)
            description = write_onnx(start, staging / "context.onnx")
            write_litert(start, staging / "context.tflite")
            context = {"columns": list(context_encoder.names), "encoder": context_encoder.to_spec(),
                       "graph": description, "backends": {b: {"file": describe_file(staging, name)}
                                                          for b, name in graph_files("context").items()}}
        parity_sessions = test.take(np.arange(min(PARITY_SESSIONS, len(test.labels))))
        full = test_p[:len(parity_sessions.labels)]
        mask = _positions(parity_sessions)
        files = {}
        for backend, name in graph_files("step").items():
            streamed = _stream(backend, staging / name, signature, parity_sessions, staging, context)
            parity = compare(full[mask], streamed[mask], "fp32", reference_name=REFERENCE).require(
                f"the streaming step ({name})").to_json()
            parity["sessions"] = len(parity_sessions.labels)
            step(f"streaming parity ({name}): max |dp| {parity['max_abs_diff']:.2e} over {parity['rows']} events")
            files[backend] = {"file": describe_file(staging, name), "parity": parity}
        manifest_step = {**signature, "backends": files,
                         "int8": _int8_steps(graph, staging, signature, test, test_p, metrics["test"], step, context)}
        if kind in COMPILED_KINDS:  # the step's weights as plain arrays, which `export --format c` compiles
            np.savez(staging / "step.native.npz", **step_weights(model, kind))
            manifest_step["native"] = describe_file(staging, "step.native.npz")
        step("writing the raw-field streaming graphs (event name and seconds in) and checking them")
        context_records = None if context is None else (
            log.context.iloc[order[cut_validation:][:len(parity_sessions.labels)]].to_dict("records"))
        _raw_streaming_graphs(staging, spec, manifest_step, context, context_encoder, parity_sessions, full,
                              context_records, threshold, step)
        golden = {"description": "test sessions as raw events, with the full model's probability after each "
                                 "event; a port or the streaming scorer must reproduce them"
                                 + ("; the first event carries the session context" if context else ""),
                  "sessions": [_golden_session(log, order[cut_validation + position], data, position, test_p,
                                               with_context=context is not None)
                               for position in golden_positions]}
        (staging / "golden.json").write_text(json.dumps(golden, allow_nan=False) + "\n", encoding="utf-8")
        manifest = {
            "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "task": TASK,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "model": {"kind": kind, "recipe": recipe.__dict__},
            "label": label or "purchase event",
            "sequence": spec.to_spec(),
            "threshold": {"value": float(threshold), "policy": policy.to_json(),
                          "chosen_on": "validation sessions, every prefix"},
            "metrics": metrics,
            "training": {"seed": seed, "test_fraction": test_fraction,
                         "sessions": {"train": len(train.labels), "validation": len(validation.labels),
                                                    "test": len(test.labels)}, "source": source},
            "libraries": library_versions(),
            "source_model": {"format": "keras", "file": describe_file(staging, "model.keras")},
            "golden": {"file": describe_file(staging, "golden.json"), "sessions": len(golden["sessions"])},
        }
        manifest["step"] = manifest_step
        if log.reading:
            manifest["events"] = log.reading  # how the log was read: stream and evaluate read the same way
        if context is not None:
            manifest["context"] = context
        write_manifest(staging, manifest)
    return manifest


def fit_context_encoder(log: EventLog, train_index: np.ndarray, step: Callable[[str], None] = lambda _m: None):
    """The hybrid model's context encoder, fitted on the training sessions' context only; column kinds
    are inferred as for session tables, and identifier-like columns are left out (and said so)."""
    from intent_edge.data.schema import guess_kind
    from intent_edge.runtime.encoder import Encoder

    columns = () if log.context is None else log.context.columns
    kinds = {str(name): guess_kind(str(name), log.context[name]) for name in columns}
    ignored = [name for name, kind in kinds.items() if kind == "ignore"]
    if ignored:
        step(f"context columns left out as identifier-like: {', '.join(ignored)}")
    kinds = {name: kind for name, kind in kinds.items() if kind != "ignore"}
    if not kinds:
        raise UsageError("no session context columns (columns that never change within a session) for the hybrid "
                         "model; name them with --context-columns (EventColumns.context in Python)")
    step("session context: " + ", ".join(f"{name} ({kind})" for name, kind in kinds.items()))
    return Encoder.fit(log.context.iloc[train_index].reset_index(drop=True), kinds)


def _int8_steps(graph, staging: Path, signature: dict, test: Sequences, test_p: np.ndarray,
                full_metrics: dict, step: Callable[[str], None], context: dict | None) -> dict:
    """int8-weight steps (ONNX Runtime dynamic quantization, LiteRT dynamic range), each streamed over every
    test session and judged like compressed variants: parity against the full model (int8 tolerance)
    and ROC-AUC by prefix against the fp32 model's. Only those that pass parity are kept in the bundle."""
    from intent_edge.compress.quantize import int8_dynamic

    int8_dynamic(staging / "step.onnx", staging / "step-int8.onnx")
    write_litert(graph, staging / "step-int8.tflite", int8_weights=True)
    mask = _positions(test)
    kept = {}
    fp32_names = graph_files("step")
    for backend, name in graph_files("step-int8").items():
        streamed = _stream(backend, staging / name, signature, test, staging, context)
        parity = compare(test_p[mask], streamed[mask], "int8", reference_name=REFERENCE).to_json()
        by_prefix = prefix_metrics(test.labels, test.lengths, streamed)
        delta = {k: by_prefix[k]["roc_auc"] - full_metrics[k]["roc_auc"] for k in by_prefix if k in full_metrics}
        step(f"int8 step ({name}): p99 |dp| {parity['p99_abs_diff']:.3g}, max {parity['max_abs_diff']:.3g}; "
             "ROC-AUC change " + ", ".join(f"k={k} {d:+.4f}" for k, d in delta.items())
             + ("" if parity["passed"] else " -- fails parity, not kept"))
        if parity["passed"]:
            kept[backend] = {"file": describe_file(staging, name), "parity": parity, "roc_auc_change": delta,
                             "bytes_fp32": (staging / fp32_names[backend]).stat().st_size}
        else:
            (staging / name).unlink()
    return kept


def _subset(log: EventLog, index: np.ndarray) -> EventLog:
    parts = [np.arange(log.starts[i], log.starts[i + 1]) for i in index]
    rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    lengths = np.diff(log.starts)[index]
    return EventLog(log.session_ids[index], np.r_[0, np.cumsum(lengths)].astype(np.int64), log.events[rows],
                    log.timestamps_ms[rows], log.products[rows], log.labels[index],
                    context=None if log.context is None else log.context.iloc[index].reset_index(drop=True))


def _raw_streaming_graphs(staging: Path, spec, manifest_step: dict, context: dict | None, context_encoder,
                          sessions: Sequences, full: np.ndarray, context_records: list[dict] | None,
                          threshold: float, step: Callable[[str], None]) -> None:
    """The step (and the int8 ONNX step where it was kept) as raw-field graphs, taking the event's name and
    the seconds since the session's previous event, and a hybrid model's context start taking the raw
    context fields. Each step is streamed over the parity sessions and compared with its reference (the
    full Keras model for fp32, the encoded int8 step for int8); one that fails is not written, and its
    ``raw`` entry says why."""
    from intent_edge.raw_graph import raw_context_graph, raw_step_graph, raw_tolerance, spec_sha256
    from intent_edge.runtime.streaming import state_sizes

    metadata = {"intent_edge.threshold": repr(float(threshold)),
                "intent_edge.bundle_format_version": str(BUNDLE_FORMAT_VERSION),
                "intent_edge.state": json.dumps(dict(zip(manifest_step["state"], state_sizes(manifest_step),
                                                         strict=True)))}
    start = None
    if context is not None:
        fields = raw_context_graph(context_encoder, staging / "context.onnx", staging / "context.raw.onnx",
                                   metadata={**metadata, "intent_edge.encoder_sha256": spec_sha256(context["encoder"])})
        context["raw"] = {"file": describe_file(staging, "context.raw.onnx"), "fields": fields}
        start = (staging / "context.raw.onnx", fields, context_records)
    mask = _positions(sessions)
    jobs = [("fp32", "step.onnx", manifest_step, full, REFERENCE)]
    if "onnxruntime" in manifest_step["int8"]:
        int8 = _stream("onnxruntime", staging / "step-int8.onnx", manifest_step, sessions, staging, context)
        jobs.append(("int8", "step-int8.onnx", manifest_step["int8"]["onnxruntime"], int8, "the encoded int8 step"))
    for precision, source, entry, reference, reference_name in jobs:
        name = source.replace(".onnx", ".raw.onnx")
        raw_step_graph(spec.vocabulary, staging / source, staging / name, metadata=metadata)
        streamed = _stream_raw(staging / name, manifest_step, spec, sessions, start)
        result = compare(reference[mask], streamed[mask], raw_tolerance(precision), reference_name=reference_name)
        step(f"raw-field step ({name}): {result.describe()}")
        if result.passed:
            entry["raw"] = {"status": "ok", "file": describe_file(staging, name), "parity": result.to_json()}
        else:
            (staging / name).unlink()
            entry["raw"] = {"status": f"failed parity: {result.describe()}", "parity": result.to_json()}


def _stream_raw(path: Path, signature: dict, spec, data: Sequences, start: tuple | None) -> np.ndarray:
    """Stream every session through a raw-field step: event names and seconds, as a host sends them
    (rebuilt from the token ids and gap features); sessions start from the raw context graph if given."""
    from intent_edge.raw_graph import event_names, raw_feeds
    from intent_edge.runtime.backends import load_runner
    from intent_edge.runtime.streaming import stream_padded

    graph = load_runner("onnxruntime", path)
    names, outputs = list(signature["state"]), list(signature["outputs"])

    def run(tokens, gaps, states):
        return graph.run({"event": event_names(tokens, spec.vocabulary), "seconds": np.expm1(gaps.astype(np.float64)),
                          **dict(zip(names, states, strict=True))}, outputs)

    initial = None
    if start is not None:
        context_path, fields, records = start
        initial = [state.copy() for state in load_runner("onnxruntime", context_path).run(raw_feeds(records, fields))]
    return stream_padded(run, signature, data.tokens, data.gaps, initial)


def _stream(backend: str, path: Path, signature: dict, data: Sequences, bundle: Path,
            context: dict | None) -> np.ndarray:
    """Run a step file over every session through the runtime's own step runner (sessions start from
    the context graph of the same backend, for a hybrid bundle)."""
    from intent_edge.runtime.bundle import resolve_file
    from intent_edge.runtime.streaming import load_context_runner, load_step_runner, stream_padded

    initial = None
    if context is not None:
        start = load_context_runner(backend, resolve_file(bundle, context["backends"][backend]["file"]), context,
                                    threads=None)
        initial = [state.copy() for state in start(data.context)]
    return stream_padded(load_step_runner(backend, path, signature, threads=None), signature, data.tokens, data.gaps,
                         initial)


def evaluate_sequence_bundle(bundle: str | Path, log: EventLog, *, backend: str = "auto") -> dict:
    """A clickstream bundle on a labelled event log, through its streaming step (no TensorFlow): for each
    prefix length, ROC-AUC, PR-AUC and the decision figures at the bundle's threshold, on the sessions
    that go on after event k; and after the last event seen."""
    from intent_edge.runtime.bundle import read_manifest, resolve_file
    from intent_edge.runtime.encoder import Encoder
    from intent_edge.runtime.sequence import SequenceSpec
    from intent_edge.runtime.streaming import step_file
    from intent_edge.train.evaluate import compute_metrics

    manifest = read_manifest(bundle)
    if "step" not in manifest:
        raise BundleError(f"{bundle}: evaluation runs through the streaming step, which this (older cnn) bundle "
                         "does not have; retrain it")
    backend, entry = step_file(bundle, manifest, backend)
    context = manifest.get("context")
    encoder = None if context is None else Encoder.from_spec(context["encoder"])
    data = encode_sessions(SequenceSpec.from_spec(manifest["sequence"]), log, encoder)
    by_position = _stream(backend, resolve_file(bundle, entry["file"]), manifest["step"], data, Path(bundle), context)
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


def _golden_session(log: EventLog, index: int, data: Sequences, test_position: int, test_p: np.ndarray, *,
                    with_context: bool) -> dict:
    session = log.session(index)
    n = int(data.lengths[index])
    events = [{"event": e, "timestamp": t} for e, t in zip(session["events"][:n], session["timestamps_ms"][:n],
                                                          strict=True)]
    if with_context:  # to_dict boxes numpy scalars as Python ones, for JSON
        events[0].update(log.context.iloc[[index]].to_dict("records")[0])
    return {"session_id": str(session["session_id"]), "label": session["label"], "events": events,
            "probabilities": [float(p) for p in test_p[test_position, :n]]}


def train_event_file(path: str | Path, out: str | Path, *, kind: str, sep: str | None = None, label: str | None = None,
                     context_columns: str | tuple[str, ...] = "auto", on_step: Callable[[str], None] | None = None,
                     reading: Mapping | None = None, **options) -> dict:
    """Read an event log (with its session context for a hybrid model: ``"auto"`` or the columns named)
    and train a bundle on it (``options`` as for :func:`train_sequence_bundle`; ``reading`` as for
    :func:`intent_edge.clickstream.events.read_event_log`: ``mapping``, ``time_unit``, ``purchase_events``,
    ``session_gap``, ``buys``). Notes on the reading (layout, sessions reordered, dropped) and the log's
    size go to ``on_step``."""
    from intent_edge.clickstream.events import read_event_log

    step = on_step or (lambda message: None)
    if kind not in KINDS:
        raise UsageError(f"unknown sequence model {kind!r}; choose one of {', '.join(KINDS)}")
    log = read_event_log(path, sep=sep, label=label, context=context_columns if kind == "hybrid" else (),
                         **(reading or {}))
    columns = log.reading["columns"]
    step(f"layout {log.reading['layout']}: session {columns['session'] or '-'}, user {columns['user'] or '-'}, "
         f"time {columns['timestamp']} ({log.reading['time_unit']}), event {columns['event']}")
    for note in log.notes:
        step(f"note: {note}")
    step(f"{len(log):,} sessions, {log.lengths().sum():,} events, {log.labels.mean():.1%} buy")
    return train_sequence_bundle(log, out, kind=kind, source=Path(path).name, label=label, on_step=step, **options)


def read_log_for_bundle(bundle: str | Path, path: str | Path, *, sep: str | None = None,
                        label: str | None = None) -> EventLog:
    """A labelled event log read as a clickstream bundle needs it: in the layout, units and session gap its
    training log was read with, with its session context columns."""
    from intent_edge.clickstream.events import read_event_log
    from intent_edge.clickstream.layouts import EventColumns
    from intent_edge.runtime.bundle import read_manifest

    manifest = read_manifest(bundle)
    context = tuple(manifest.get("context", {}).get("columns", ()))
    reading = manifest.get("events")
    if not reading:  # bundles from before the layouts were recorded: found from the columns, as then
        return read_event_log(path, sep=sep, label=label, context=context)
    purchases = reading.get("purchase_events")
    return read_event_log(path, EventColumns(**reading["columns"]), sep=sep, label=label, context=context,
                          time_unit=reading["time_unit"], session_gap=reading["session_gap_seconds"],
                          purchase_events=None if purchases is None else tuple(purchases))
