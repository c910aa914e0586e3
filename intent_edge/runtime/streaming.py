"""Per-click scoring: a session's purchase probability, updated in O(1) work per event.

    scorer = SessionScorer.load("clickstream-bundle")
    p = scorer.update("session-42", {"event": "product", "timestamp": 1700000000123})

The scorer keeps each open session's state (recurrent, or the CNN's window of recent inputs) and the
time of its last event, and runs the bundle's exported single-step cell (``step.tflite`` on LiteRT,
or ``step.onnx`` on ONNX Runtime) on the new event: one small matmul chain, whatever the session's
length, instead of rescoring the whole prefix. After event k the probability equals the
full-sequence model's on the first k events (checked at training time, and by the golden sessions).

Open sessions are bounded: a session idle for longer than ``ttl_seconds`` is dropped, and beyond
``max_sessions`` the least recently updated one is; both are counted in :attr:`SessionScorer.stats`.
A dropped session that sends another event starts afresh. Updates of different sessions may come from
many threads at once; updates of one session are applied one at a time, in the order they take its lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from intent_edge.errors import BackendUnavailable, BundleError, RecordError, UsageError
from intent_edge.runtime.backends import BACKENDS, Runner, load_runner
from intent_edge.runtime.bundle import read_manifest, resolve_file
from intent_edge.runtime.encoder import Encoder
from intent_edge.runtime.sequence import SequenceSpec

TASK = "clickstream"


class _Session:
    __slots__ = ("lock", "states", "last_ms", "events", "touched", "probability")

    def __init__(self, states: list[np.ndarray], now: float):
        self.lock = threading.Lock()
        self.states, self.last_ms, self.events, self.touched = states, None, 0, now
        self.probability: float | None = None  # after the session's latest event


StepRunner = Callable[[np.ndarray, np.ndarray, list], list]


def state_sizes(signature: dict) -> list[int]:
    """The width of each state tensor the step carries (bundles from before ``state_sizes`` was
    written have recurrent states of ``units`` each)."""
    sizes = signature.get("state_sizes") or [signature["units"]] * len(signature["state"])
    return [int(size) for size in sizes]


def describe_state(signature: dict) -> str:
    """What a session carries between events, e.g. ``state 32 + cell 32 floats``."""
    return " + ".join(f"{name} {size}" for name, size in zip(signature["state"], state_sizes(signature),
                                                             strict=True)) + " floats"


def _graph(backend: str, path: Path, inputs: list[str], *, threads: int | None) -> Runner:
    """A small exported graph (the step, or a hybrid model's context start) on ``backend``'s runner,
    checked to take the inputs the manifest names."""
    graph = load_runner(backend, path, threads=threads)
    if sorted(graph.input_names) != sorted(inputs):
        raise BundleError(f"{path}: the graph takes {sorted(graph.input_names)}, the manifest says {inputs}")
    return graph


def load_step_runner(backend: str, path: Path, signature: dict, *, threads: int | None = 1) -> StepRunner:
    """A function ``(events int32 [n], gaps float32 [n], states) -> [probability [n], *new states]`` over
    the step file."""
    names, outputs = list(signature["state"]), list(signature["outputs"])
    graph = _graph(backend, path, ["event", "gap", *names], threads=threads)

    def run(events, gaps, states):
        return graph.run({"event": events, "gap": gaps, **dict(zip(names, states, strict=True))}, outputs)

    run.description = graph.description
    return run


def load_context_runner(backend: str, path: Path, context: dict, *, threads: int | None = 1
                        ) -> Callable[[np.ndarray], list[np.ndarray]]:
    """A hybrid bundle's session start: encoded context rows ``[n, width]`` in, initial states out."""
    graph = _graph(backend, path, ["context"], threads=threads)
    outputs = list(context["graph"]["outputs"])
    return lambda rows: graph.run({"context": rows}, outputs)


def step_file(bundle: str | Path, manifest: dict, backend: str = "auto", precision: str = "fp32"
              ) -> tuple[str, dict]:
    """The step backend to use and its manifest entry: ``backend`` as asked, or for ``auto`` LiteRT where
    installed (one small call a click is where its low per-call cost shows), ONNX Runtime otherwise."""
    if precision not in ("fp32", "int8"):
        raise UsageError(f"precision must be fp32 or int8, got {precision!r}")
    files = manifest["step"]["backends"] if precision == "fp32" else manifest["step"].get("int8", {})
    if backend == "auto":
        backend = next((name for name in ("litert", "onnxruntime")
                        if name in files and BACKENDS[name].is_available()), "onnxruntime")
    if backend not in files:
        raise BackendUnavailable(f"{bundle}: no {precision} streaming step for backend {backend!r}; it has: "
                                 f"{', '.join(files) or 'none'}")
    BACKENDS[backend].require()
    return backend, files[backend]


class SessionScorer:
    def __init__(self, manifest: dict, spec: SequenceSpec, run: StepRunner, *, max_sessions: int,
                 ttl_seconds: float, clock: Callable[[], float], context: tuple[Encoder, Callable] | None = None):
        step = manifest["step"]
        self.manifest, self.spec, self.description = manifest, spec, run.description
        self.threshold = float(manifest["threshold"]["value"])
        self._run = run
        self._state_sizes = state_sizes(step)
        self._context = context  # a hybrid model's context encoder and its start graph
        self.max_sessions, self.ttl_seconds, self._clock = max_sessions, ttl_seconds, clock
        self._open: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = {"events": 0, "sessions_started": 0, "expired": 0, "evicted": 0}

    @classmethod
    def load(cls, bundle: str | Path, *, backend: str = "auto", precision: str = "fp32", max_sessions: int = 100_000,
             ttl_seconds: float = 1800.0, threads: int | None = 1, public_key: str | Path | None = None,
             clock: Callable[[], float] = time.monotonic) -> SessionScorer:
        """Load a clickstream bundle's step cell, verifying its checksum (and signature, with ``public_key``).
        ``backend``: ``litert``, ``onnxruntime`` or ``auto`` (see :func:`step_file`). ``precision="int8"``
        takes the int8-weight step where the bundle has one that passed parity. A hybrid bundle's
        context start graph runs on the same backend as the step."""
        manifest = read_manifest(bundle, public_key)
        if manifest.get("task") != TASK:
            raise BundleError(f"{bundle}: not a clickstream bundle (task {manifest.get('task', 'sessions')!r}); "
                              "score session records with Predictor")
        if "step" not in manifest:
            raise BundleError(f"{bundle}: this clickstream model ({manifest['model']['kind']}) has no streaming "
                              "step (cnn bundles from before streaming windows); retrain it")
        try:
            spec = SequenceSpec.from_spec(manifest["sequence"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{bundle}: the sequence spec in the manifest is invalid ({exc})") from None
        if max_sessions < 1 or ttl_seconds <= 0:
            raise UsageError("max_sessions must be at least 1 and ttl_seconds positive")
        backend, entry = step_file(bundle, manifest, backend, precision)
        run = load_step_runner(backend, resolve_file(bundle, entry["file"]), manifest["step"], threads=threads)
        context = None
        if "context" in manifest:
            try:
                encoder = Encoder.from_spec(manifest["context"]["encoder"])
                context_entry = manifest["context"]["backends"][backend]
            except (KeyError, TypeError, ValueError) as exc:
                raise BundleError(f"{bundle}: the session context in the manifest is invalid ({exc})") from None
            context = (encoder, load_context_runner(backend, resolve_file(bundle, context_entry["file"]),
                                                    manifest["context"], threads=threads))
        return cls(manifest, spec, run, max_sessions=max_sessions, ttl_seconds=ttl_seconds, clock=clock,
                   context=context)

    @property
    def context_columns(self) -> list[str]:
        """The session context fields a hybrid model reads from each session's first event (else none)."""
        return [] if self._context is None else list(self._context[0].names)

    # ---- the event -------------------------------------------------------------------------
    def _parse(self, event: Mapping[str, Any]) -> tuple[int, float]:
        if not isinstance(event, Mapping):
            raise RecordError("*", f"expected a mapping with 'event' and 'timestamp', got {type(event).__name__}")
        try:
            name, stamp = event["event"], event["timestamp"]
        except KeyError as exc:
            raise RecordError(exc.args[0], "missing from the event") from None
        if not isinstance(name, str) or not name.strip():
            raise RecordError("event", f"expected the event's name as text, got {name!r}")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float, np.integer, np.floating)):
            raise RecordError("timestamp", f"expected epoch milliseconds as a number, got {type(stamp).__name__} "
                                           f"{stamp!r}")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise RecordError("timestamp", f"is {stamp}; expected a finite number")
        return self.spec.token_of(name.strip()), stamp

    def update(self, session_id: str, event: Mapping[str, Any]) -> float:
        """Add ``event`` (``{"event": name, "timestamp": epoch ms}``) to the session and return its
        purchase probability now. An event stamped before the session's previous one counts as 0 s later.
        For a hybrid model, the event that starts a session also carries the session context
        (:attr:`context_columns`); later events of the session need not."""
        return self.update_with_change(session_id, event)[0]

    def update_with_change(self, session_id: str, event: Mapping[str, Any]) -> tuple[float, float | None]:
        """:meth:`update`, and how much this event changed the session's probability (None for the event
        that opens a session: there is no probability before it). The scorer keeps each open session's
        last probability, so this costs nothing more."""
        token, stamp = self._parse(event)
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._open.get(session_id)
            if entry is None:  # a bad context raises here, before anything changed
                entry = self._open[session_id] = self._new_session(now, event)
                self.stats["sessions_started"] += 1
                while len(self._open) > self.max_sessions:
                    self._open.popitem(last=False)
                    self.stats["evicted"] += 1
            else:
                self._open.move_to_end(session_id)
            entry.touched = now
            self.stats["events"] += 1
        with entry.lock:
            before = entry.probability
            after = self._advance(entry, token, stamp)
            return after, None if before is None else after - before

    def _new_session(self, now: float, first_event: Mapping[str, Any]) -> _Session:
        if self._context is None:
            return _Session([np.zeros((1, size), dtype=np.float32) for size in self._state_sizes], now)
        encoder, start = self._context
        missing = [name for name in encoder.names if name not in first_event]
        if missing:
            raise RecordError(missing[0], f"missing; the event that starts a session carries its context "
                                          f"({', '.join(encoder.names)}), and this one lacks {', '.join(missing)}")
        row = np.empty((1, encoder.width), dtype=np.float32)
        try:
            encoder.encode_record(first_event, row[0])
        except RecordError as exc:
            raise RecordError(exc.field, f"{exc.detail} (the event that starts a session carries its context: "
                                         f"{', '.join(encoder.names)})") from None
        return _Session([state.copy() for state in start(row)], now)

    def _advance(self, session: _Session, token: int, stamp: float) -> float:
        """One step of the cell for ``session`` (whose lock the caller holds); its probability after it."""
        seconds = 0.0 if session.last_ms is None else (stamp - session.last_ms) / 1000.0
        probability, *session.states = self._run(np.array([token], dtype=np.int32),
                                                 np.array([math.log1p(max(seconds, 0.0))], dtype=np.float32),
                                                 session.states)
        session.last_ms = stamp if session.last_ms is None else max(stamp, session.last_ms)
        session.events += 1
        session.probability = float(probability[0])
        return session.probability

    def end(self, session_id: str) -> bool:
        """Forget a finished session now; False if it was not open."""
        with self._lock:
            return self._open.pop(session_id, None) is not None

    @property
    def open_sessions(self) -> int:
        return len(self._open)

    def _expire(self, now: float) -> None:
        # Sessions are kept in least-recently-updated order: the expired ones are at the front.
        while self._open:
            oldest = next(iter(self._open.values()))
            if now - oldest.touched <= self.ttl_seconds:
                break
            self._open.popitem(last=False)
            self.stats["expired"] += 1

    def score_session(self, events: list[Mapping[str, Any]]) -> np.ndarray:
        """Probabilities after each event of one whole session, from a fresh state: what rescoring the
        prefix costs without the scorer's carried state (the benchmark's comparison), and a check."""
        if not events:
            return np.zeros(0, dtype=np.float32)
        session = self._new_session(self._clock(), events[0])
        return np.array([self._advance(session, *self._parse(event)) for event in events], dtype=np.float32)


def stream_padded(run: StepRunner, signature: dict, tokens: np.ndarray, gaps: np.ndarray,
                  initial_states: list[np.ndarray] | None = None) -> np.ndarray:
    """Probabilities after every position of padded sessions ``(n, max_length)``, stepping all sessions
    together (positions past a session's end are computed and ignored by the caller). Sessions start
    from zero states, or from ``initial_states`` (a hybrid model's context start)."""
    n, width = tokens.shape
    states = initial_states or [np.zeros((n, size), dtype=np.float32) for size in state_sizes(signature)]
    out = np.zeros((n, width), dtype=np.float32)
    for position in range(width):
        probability, *states = run(np.ascontiguousarray(tokens[:, position], dtype=np.int32),
                                   np.ascontiguousarray(gaps[:, position], dtype=np.float32), states)
        out[:, position] = probability
    return out
