"""An embeddable HTTP scoring service for callers that are not Python.

Built on Starlette (ASGI) and served by uvicorn. Starlette is the smallest maintained ASGI toolkit with
streaming request bodies, a lifespan hook and a test client; FastAPI would add pydantic models, but the
request schema here comes from the bundle at run time and validation belongs to the runtime's encoder,
so that an error names the field exactly as the library does. uvicorn stops accepting on SIGTERM/SIGINT
and finishes the requests in flight. prometheus-client renders the metrics.

Endpoints: ``POST /v1/predict`` (``{"record": {...}}`` or ``{"records": [...]}``), ``GET /healthz``,
``GET /metrics``, ``GET /openapi.json`` (generated from the bundle's schema) and ``POST /admin/reload``
(loopback callers only; SIGHUP does the same): the bundle directory is read again and the new predictor
takes over between requests, or, if it fails to load, the old one keeps serving and the reason is
returned and counted.

Monitoring (where the bundle has a profile for the variant served): every scored record is counted in a
sketch (``GET /v1/monitor``) and in a rolling window of the last ``monitor_window`` records, whose
per-field and score PSI are gauges in ``/metrics``; each record gets a ``request_id``, and
``POST /v1/feedback`` (``{"request_id": ..., "outcome": true}``) records its outcome and answers the
realised ROC-AUC and calibration over the last ``feedback_window`` outcomes. Scores are kept for the last
``feedback_ids`` request ids (100,000 by default); an unknown, expired or already answered id gets a 404.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from intent_edge.errors import BundleError, IntentEdgeError, RecordError
from intent_edge.runtime import Predictor
from intent_edge.runtime.encoder import CategoricalFeature, NumericFeature
from intent_edge.runtime.monitor import Monitor, Profile, RollingMonitor, rank_roc_auc
from intent_edge.serve_openapi import openapi_document

DRIFT_STANDARD_SCORE = 4.0  # a value this many training standard deviations out counts as a drift signal
LOOPBACK = ("127.0.0.1", "::1")
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
_BATCH_IN_THREAD = 64  # batches larger than this run in a worker thread, off the event loop
_SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20))


class RequestProblem(Exception):
    """A request the service answers with a 4xx: status, error kind (for /metrics) and message."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.kind, self.extra = status, kind, extra


class _Loaded:
    """A predictor with what the service derives from it once: drift columns and the OpenAPI document."""

    def __init__(self, predictor: Predictor, generation: int, max_batch: int, max_explain: int, monitor_window: int):
        self.predictor, self.generation = predictor, generation
        try:  # a bundle without a profile for this variant is served unmonitored (its /v1/monitor says so)
            profile = Profile.load(predictor.bundle, predictor.manifest, predictor.variant)
            self.monitor, self.window = Monitor(profile), RollingMonitor(profile, monitor_window)
        except BundleError as exc:
            self.monitor = self.window = None
            self.unmonitored = str(exc)
        encoder = predictor.encoder
        numeric = [(f.name, o) for f, o in zip(encoder.features, encoder.offsets, strict=True)
                   if isinstance(f, NumericFeature)]
        categorical = [(f.name, o + f.unknown_index) for f, o in zip(encoder.features, encoder.offsets, strict=True)
                       if isinstance(f, CategoricalFeature)]
        self.numeric_names = [n for n, _ in numeric]
        self.numeric_columns = np.array([c for _, c in numeric], dtype=np.intp)
        self.categorical_names = [n for n, _ in categorical]
        self.oov_columns = np.array([c for _, c in categorical], dtype=np.intp)
        self.openapi = openapi_document(predictor, max_batch, max_explain)


class Service:
    """The state behind the app: the current predictor, reloads and metrics (one registry per service)."""

    def __init__(self, bundle: str | Path, *, variant: str | None = None, backend: str = "auto",
                 public_key: str | Path | None = None, strict: bool = True, max_body_bytes: int = 1 << 20,
                 max_batch: int = 10_000, max_explain: int = 100, admin_hosts: tuple[str, ...] = LOOPBACK,
                 monitor_window: int = 10_000, feedback_ids: int = 100_000, feedback_window: int = 10_000):
        self.bundle, self.variant, self.backend = bundle, variant, backend
        self.monitor_window, self.feedback_ids = monitor_window, feedback_ids
        self._scored: OrderedDict[str, tuple[float, int]] = OrderedDict()  # request id -> (probability, generation)
        self._outcomes: deque[tuple[float, int]] = deque(maxlen=feedback_window)
        self._feedback_lock = threading.Lock()
        self.max_explain = max_explain  # records explained per request: each costs ~1 ms of inference
        self.public_key, self.strict = public_key, strict
        self.max_body_bytes, self.max_batch, self.admin_hosts = max_body_bytes, max_batch, admin_hosts
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("intent_edge_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=registry)
        self.latency = Histogram("intent_edge_request_seconds", "Request latency by route", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=registry)
        self.errors = Counter("intent_edge_errors", "Rejected or failed requests by kind", ["kind"], registry=registry)
        self.records = Counter("intent_edge_records_scored", "Records scored", registry=registry)
        self.unknown_categories = Counter("intent_edge_unknown_category", "Scored values outside the training "
                                          "vocabulary (out-of-vocabulary bucket), by field", ["field"],
                                          registry=registry)
        self.unusual_values = Counter("intent_edge_out_of_range", f"Scored numeric values more than "
                                      f"{DRIFT_STANDARD_SCORE:g} training standard deviations from the training mean, "
                                      "by field", ["field"], registry=registry)
        self.refused_fields = Counter("intent_edge_refused_field", "Records refused, by the field named in the error",
                                      ["field"], registry=registry)
        self.reloads = Counter("intent_edge_reloads", "Bundle reloads by outcome", ["outcome"], registry=registry)
        self.bundle_generation = Gauge("intent_edge_bundle_generation", "How many times a bundle was loaded",
                                       registry=registry)
        self.drift_psi = Gauge("intent_edge_drift_psi", "Population stability index of the recent window against "
                               "the training reference, by field (\"score\" for the model's output)", ["field"],
                               registry=registry)
        self.window_records = Gauge("intent_edge_monitor_window_records", "Records in the drift gauges' window",
                                    registry=registry)
        self.scores = Histogram("intent_edge_score", "Probabilities scored", buckets=_SCORE_BUCKETS,
                                registry=registry)
        self.feedback = Counter("intent_edge_feedback", "Outcomes fed back, by outcome", ["outcome"],
                                registry=registry)
        self._reload_lock = threading.Lock()
        self.current = _Loaded(self._load(), 1, max_batch, max_explain, monitor_window)
        self.bundle_generation.set(1)

    def _load(self) -> Predictor:
        return Predictor.load(self.bundle, self.variant, backend=self.backend, strict=self.strict,
                              public_key=self.public_key)

    def reload(self) -> dict:
        """Load the bundle again; the old predictor keeps serving if that fails (RequestProblem 409)."""
        with self._reload_lock:
            try:
                loaded = _Loaded(self._load(), self.current.generation + 1, self.max_batch, self.max_explain,
                                 self.monitor_window)
            except (IntentEdgeError, OSError, KeyError, ValueError) as exc:
                self.reloads.labels("failed").inc()
                raise RequestProblem(409, "reload_failed", f"the bundle did not load; still serving generation "
                                                           f"{self.current.generation}: {exc}") from None
            self.current = loaded  # one assignment: a request sees the old predictor or the new one, whole
            self.reloads.labels("ok").inc()
            self.bundle_generation.set(loaded.generation)
            return self.describe()

    def describe(self) -> dict:
        predictor = self.current.predictor
        return {"status": "ok", "bundle": str(self.bundle), "variant": predictor.variant,
                "backend": predictor.runner.description, "generation": self.current.generation,
                "threshold": predictor.threshold, "created": predictor.manifest.get("created")}

    def score(self, records: list) -> tuple[_Loaded, np.ndarray]:
        loaded = self.current  # one predictor for the whole request, even if a reload lands meanwhile
        try:
            features = loaded.predictor.encode(records)
        except RecordError as exc:
            self.refused_fields.labels(exc.field).inc()
            raise
        if len(features):
            self._count_drift(loaded, features)
            probabilities = loaded.predictor.runner.infer(features)
            if loaded.monitor is not None:
                loaded.monitor.update(features, probabilities)
                loaded.window.update(features, probabilities)
            for probability in probabilities.tolist():
                self.scores.observe(probability)
        else:
            probabilities = np.zeros(0, dtype=np.float32)
        self.records.inc(len(features))
        return loaded, probabilities

    def remember(self, loaded: _Loaded, probabilities: np.ndarray) -> list[str]:
        """A request id for each scored record, kept (with its probability) for the last ``feedback_ids``."""
        ids = [uuid.uuid4().hex for _ in range(len(probabilities))]
        with self._feedback_lock:
            for request_id, probability in zip(ids, probabilities.tolist(), strict=True):
                self._scored[request_id] = (probability, loaded.generation)
            while len(self._scored) > self.feedback_ids:
                self._scored.popitem(last=False)
        return ids

    def record_outcome(self, request_id: str, outcome: bool) -> dict:
        """Record a scored record's outcome; the realised figures over the feedback window."""
        with self._feedback_lock:
            scored = self._scored.pop(request_id, None)
            if scored is None:
                raise RequestProblem(404, "unknown_request_id", f"no scored record has request_id {request_id!r}: "
                                     f"unknown, answered already, or older than the last {self.feedback_ids:,}")
            self._outcomes.append((scored[0], int(outcome)))
            window = np.array(self._outcomes, dtype=np.float64)
        self.feedback.labels(str(bool(outcome)).lower()).inc()
        loaded = self.current
        if loaded.monitor is not None and scored[1] == loaded.generation:
            loaded.monitor.add_outcomes(np.array([scored[0]]), np.array([int(outcome)]))
        probabilities, outcomes = window[:, 0], window[:, 1].astype(np.int64)
        return {"request_id": request_id, "outcome": bool(outcome), "probability": scored[0],
                "window": {"outcomes": int(len(outcomes)), "buyers": int(outcomes.sum()),
                           "roc_auc": rank_roc_auc(outcomes, probabilities),
                           "mean_probability": float(probabilities.mean()),
                           "buyer_rate": float(outcomes.mean())}}

    def monitoring(self) -> dict:
        loaded = self.current
        if loaded.monitor is None:
            raise RequestProblem(404, "not_monitored", loaded.unmonitored)
        return {"variant": loaded.predictor.variant, "generation": loaded.generation,
                "sketch": loaded.monitor.snapshot().to_json()}

    def update_drift_gauges(self) -> None:
        loaded = self.current
        if loaded.window is None:
            return
        from intent_edge.monitoring.drift import deciles, psi

        window, profile = loaded.window.snapshot(), loaded.window.profile
        self.window_records.set(window.rows)
        if window.rows == 0:
            return
        for name, counts in window.fields.items():
            self.drift_psi.labels(name).set(psi(profile.reference[name], counts))
        self.drift_psi.labels("score").set(psi(deciles(profile.score_reference), deciles(window.score)))

    def explain(self, loaded: _Loaded, records: list) -> list[dict]:
        """Contributions for records already scored by ``loaded`` (the same predictor)."""
        try:
            explanations = loaded.predictor.explain_batch(records)
        except BundleError as exc:
            raise RequestProblem(400, "explain_unavailable", str(exc)) from None
        return [{"base": e.base, "contributions": e.contributions} for e in explanations]

    def _count_drift(self, loaded: _Loaded, features: np.ndarray) -> None:
        if loaded.numeric_columns.size:
            unusual = (np.abs(features[:, loaded.numeric_columns]) > DRIFT_STANDARD_SCORE).sum(axis=0)
            for index in np.flatnonzero(unusual):
                self.unusual_values.labels(loaded.numeric_names[index]).inc(int(unusual[index]))
        if loaded.oov_columns.size:
            unknown = (features[:, loaded.oov_columns] == 1.0).sum(axis=0)
            for index in np.flatnonzero(unknown):
                self.unknown_categories.labels(loaded.categorical_names[index]).inc(int(unknown[index]))


def _problem_response(service: Service, problem: RequestProblem) -> JSONResponse:
    service.errors.labels(problem.kind).inc()
    return JSONResponse({"error": str(problem), "kind": problem.kind, **problem.extra}, status_code=problem.status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestProblem(413, "too_large", f"the body is {int(declared)} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestProblem(413, "too_large", f"the body is over the limit of {limit} bytes")
    return bytes(body)


async def _read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON, within ``limit`` bytes (400 and 413 otherwise)."""
    body = await _read_body(request, limit)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestProblem(400, "invalid_json", f"the body is not valid JSON ({exc})") from None


def _records_of(payload: Any, max_batch: int, max_explain: int) -> tuple[list, bool, bool]:
    """``(records, single, explain)`` of a request body."""
    if not isinstance(payload, dict):
        raise RequestProblem(400, "bad_request", 'expected a JSON object: {"record": {...}} or {"records": [...]}')
    explain = payload.get("explain", False)
    if not isinstance(explain, bool):
        raise RequestProblem(400, "bad_request", f'"explain" must be true or false, got {json.dumps(explain)}')
    records, single = _records_in(payload, max_batch)
    if explain and len(records) > max_explain:
        raise RequestProblem(413, "too_large", f"{len(records)} records to explain; the limit is {max_explain} a "
                                               f"request (without explain: {max_batch})")
    return records, single, explain


def _records_in(payload: dict, max_batch: int) -> tuple[list, bool]:
    keys = set(payload) - {"explain"}
    if keys == {"record"}:
        if not isinstance(payload["record"], dict):
            raise RequestProblem(400, "bad_request", f'"record" must be an object of field values, got '
                                                     f"{type(payload['record']).__name__}")
        return [payload["record"]], True
    if keys == {"records"}:
        records = payload["records"]
        if not isinstance(records, list):
            raise RequestProblem(400, "bad_request", f'"records" must be a list, got {type(records).__name__}')
        if len(records) > max_batch:
            raise RequestProblem(413, "too_large", f"{len(records)} records; the limit is {max_batch} a request")
        return records, False
    raise RequestProblem(400, "bad_request", 'expected exactly one of "record" and "records", got keys: '
                                             + (", ".join(sorted(map(str, keys))) or "none"))


def create_app(service: Service) -> Starlette:
    """The ASGI app for ``service``."""

    def observed(route: str):
        def wrap(handler):
            async def endpoint(request: Request) -> Response:
                started = time.perf_counter()
                try:
                    response = await handler(request)
                except RequestProblem as problem:
                    response = _problem_response(service, problem)
                except Exception:
                    service.errors.labels("internal").inc()
                    service.requests.labels(route, "500").inc()
                    raise
                service.latency.labels(route).observe(time.perf_counter() - started)
                service.requests.labels(route, str(response.status_code)).inc()
                return response
            return endpoint
        return wrap

    @observed("/v1/predict")
    async def predict(request: Request) -> Response:
        payload = await _read_json(request, service.max_body_bytes)
        records, single, explain = _records_of(payload, service.max_batch, service.max_explain)
        try:
            if len(records) > _BATCH_IN_THREAD:
                loaded, probabilities = await run_in_threadpool(service.score, records)
            else:
                loaded, probabilities = service.score(records)
        except RecordError as exc:
            raise RequestProblem(422, "bad_record", str(exc), field=exc.field,
                                 record=None if single else exc.row) from None
        threshold, variant = loaded.predictor.threshold, loaded.predictor.variant
        explanations = await run_in_threadpool(service.explain, loaded, records) if explain and records else []
        ids = service.remember(loaded, probabilities)
        if single:
            probability = float(probabilities[0])
            return JSONResponse({"probability": probability, "decision": probability >= threshold, "variant": variant,
                                 "request_id": ids[0], **(explanations[0] if explanations else {})})
        return JSONResponse({"probabilities": probabilities.astype(float).tolist(),
                             "decisions": (probabilities >= threshold).tolist(), "variant": variant,
                             "request_ids": ids, **({"explanations": explanations} if explain else {})})

    @observed("/v1/feedback")
    async def feedback(request: Request) -> Response:
        payload = await _read_json(request, service.max_body_bytes)
        if (not isinstance(payload, dict) or set(payload) != {"request_id", "outcome"}
                or not isinstance(payload["request_id"], str) or not isinstance(payload["outcome"], bool)):
            raise RequestProblem(400, "bad_request", 'expected {"request_id": "<id from /v1/predict>", '
                                                     '"outcome": true or false}')
        return JSONResponse(service.record_outcome(payload["request_id"], payload["outcome"]))

    @observed("/v1/monitor")
    async def monitor(request: Request) -> Response:
        return JSONResponse(service.monitoring())

    @observed("/healthz")
    async def healthz(request: Request) -> Response:
        return JSONResponse(service.describe())

    async def metrics(request: Request) -> Response:
        service.update_drift_gauges()
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return JSONResponse(service.current.openapi)

    @observed("/admin/reload")
    async def reload(request: Request) -> Response:
        if request.client is None or request.client.host not in service.admin_hosts:
            raise RequestProblem(403, "forbidden", "reloads are accepted from loopback callers only")
        return JSONResponse(await run_in_threadpool(service.reload))

    @asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()

        def reload_on_signal():
            async def run():
                try:
                    await run_in_threadpool(service.reload)
                except RequestProblem:
                    pass  # counted in intent_edge_reloads{outcome="failed"}; the old bundle keeps serving
            loop.create_task(run())

        try:
            loop.add_signal_handler(signal.SIGHUP, reload_on_signal)
        except (NotImplementedError, RuntimeError, ValueError):  # no SIGHUP (Windows) or not the main thread
            pass
        yield

    return Starlette(routes=[Route("/v1/predict", predict, methods=["POST"]), Route("/healthz", healthz),
                             Route("/v1/feedback", feedback, methods=["POST"]), Route("/v1/monitor", monitor),
                             Route("/metrics", metrics), Route("/openapi.json", openapi),
                             Route("/admin/reload", reload, methods=["POST"])], lifespan=lifespan)


def serve(service: Service, host: str = "127.0.0.1", port: int = 8080, *, graceful_seconds: float = 30.0,
          log_level: str = "warning") -> None:
    """Run the service until SIGTERM/SIGINT; requests in flight get up to ``graceful_seconds`` to finish."""
    import uvicorn

    uvicorn.run(create_app(service), host=host, port=port, timeout_graceful_shutdown=graceful_seconds,
                log_level=log_level, access_log=False)
