"""The HTTP service: predictions equal the library's, 4xx answers name the field, metrics count what
happened, reloads roll back on failure, shutdown finishes requests in flight, and a schemathesis run over
the OpenAPI document finds no 5xx."""

import json
import shutil
import threading
import time

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install 'intent-edge[serve]')")
import schemathesis  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from intent_edge.data.synth import generate_sessions  # noqa: E402
from intent_edge.runtime import Predictor  # noqa: E402
from intent_edge.serve import Service, create_app  # noqa: E402


@pytest.fixture(scope="module")
def records():
    return generate_sessions(20, seed=31).drop(columns=["Revenue"]).to_dict("records")


@pytest.fixture()
def bundle(tiny_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    return path


@pytest.fixture()
def service(bundle):
    return Service(bundle, admin_hosts=("testclient",), max_body_bytes=64 * 1024, max_batch=50)


@pytest.fixture()
def client(service):
    with TestClient(create_app(service)) as client:
        yield client


def metric(client, name, **labels):
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} " if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_single_and_batch_predictions_equal_the_library(client, bundle, records):
    predictor = Predictor.load(bundle)
    answer = client.post("/v1/predict", json={"record": records[0]})
    assert answer.status_code == 200
    assert answer.json()["probability"] == pytest.approx(predictor.predict(records[0]), abs=1e-6)
    assert answer.json()["decision"] == (answer.json()["probability"] >= predictor.threshold)
    answer = client.post("/v1/predict", json={"records": records})
    assert answer.status_code == 200
    assert answer.json()["probabilities"] == pytest.approx(predictor.predict_batch(records).tolist(), abs=1e-6)
    assert metric(client, "intent_edge_records_scored_total") == 1 + len(records)
    assert metric(client, "intent_edge_requests_total", route="/v1/predict", status="200") == 2
    assert metric(client, "intent_edge_request_seconds_count", route="/v1/predict") == 2


@pytest.mark.parametrize("body, status, kind, text", [
    (b"{not json", 400, "invalid_json", "not valid JSON"),
    (b"[1, 2]", 400, "bad_request", "expected a JSON object"),
    (b'{"recrods": []}', 400, "bad_request", 'exactly one of "record" and "records", got keys: recrods'),
    (b'{"record": [1]}', 400, "bad_request", '"record" must be an object'),
    (b'{"records": {}}', 400, "bad_request", '"records" must be a list'),
])
def test_malformed_requests_get_a_400_that_says_why(client, body, status, kind, text):
    answer = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status and answer.json()["kind"] == kind and text in answer.json()["error"]
    assert metric(client, "intent_edge_errors_total", kind=kind) == 1


def test_a_bad_record_gets_a_422_naming_the_field_and_the_record(client, records):
    bad = [records[0], {**records[1], "PageValues": "lots"}]
    answer = client.post("/v1/predict", json={"records": bad})
    assert answer.status_code == 422
    assert answer.json()["field"] == "PageValues" and answer.json()["record"] == 1
    assert "expected a number, got str 'lots'" in answer.json()["error"]
    missing = {k: v for k, v in records[0].items() if k != "Month"}
    answer = client.post("/v1/predict", json={"record": missing})
    assert answer.status_code == 422 and answer.json()["field"] == "Month" and answer.json()["record"] is None
    assert metric(client, "intent_edge_refused_field_total", field="PageValues") == 1


def test_size_limits(client, records):
    answer = client.post("/v1/predict", json={"records": records * 3})  # 60 records > max_batch 50
    assert answer.status_code == 413 and "the limit is 50" in answer.json()["error"]
    answer = client.post("/v1/predict", content=b'{"record": "' + b"x" * 70_000 + b'"}')
    assert answer.status_code == 413 and answer.json()["kind"] == "too_large"


def test_drift_signals_are_counted_per_field(client, records):
    record = {**records[0], "Month": "Smarch", "PageValues": 1e9}
    assert client.post("/v1/predict", json={"record": record}).status_code == 200
    assert metric(client, "intent_edge_unknown_category_total", field="Month") == 1
    assert metric(client, "intent_edge_out_of_range_total", field="PageValues") == 1
    assert metric(client, "intent_edge_unknown_category_total", field="VisitorType") == 0


def test_reload_rolls_back_on_a_damaged_bundle_and_takes_a_good_one(client, bundle, tiny_bundle, records):
    from intent_edge.runtime.backends import backend_for
    from intent_edge.runtime.bundle import read_manifest

    before = client.post("/v1/predict", json={"record": records[0]}).json()["probability"]
    manifest = read_manifest(bundle)
    served = backend_for(manifest["variants"][manifest["default_variant"]])[1]["path"]  # the file it runs
    model = bundle / served
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    answer = client.post("/admin/reload")
    assert answer.status_code == 409 and "still serving generation 1" in answer.json()["error"]
    assert "sha256 does not match" in answer.json()["error"]
    assert client.post("/v1/predict", json={"record": records[0]}).json()["probability"] == before
    shutil.copyfile(tiny_bundle / served, model)
    answer = client.post("/admin/reload")
    assert answer.status_code == 200 and answer.json()["generation"] == 2
    assert client.get("/healthz").json()["generation"] == 2
    assert metric(client, "intent_edge_reloads_total", outcome="failed") == 1
    assert metric(client, "intent_edge_reloads_total", outcome="ok") == 1


def test_reload_is_refused_to_callers_that_are_not_loopback(bundle):
    service = Service(bundle)  # admits 127.0.0.1 and ::1; the test client calls from "testclient"
    with TestClient(create_app(service)) as client:
        assert client.post("/admin/reload").status_code == 403


def test_shutdown_finishes_the_request_in_flight(service, records):
    """Stop the server (what SIGTERM does) while a slow request is running: it still gets its answer."""
    import httpx
    import uvicorn

    app = create_app(service)

    async def slow(scope, receive, send):  # the test's own middleware holds the request open
        if scope["type"] == "http":
            import asyncio

            await asyncio.sleep(1.0)
        await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(slow, host="127.0.0.1", port=0, log_level="error",
                                           timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    result = {}
    request = threading.Thread(target=lambda: result.update(answer=httpx.post(
        f"http://127.0.0.1:{port}/v1/predict", json={"record": records[0]}, timeout=10)))
    request.start()
    time.sleep(0.3)
    server.should_exit = True  # uvicorn's SIGTERM handler sets exactly this
    request.join(timeout=10)
    thread.join(timeout=10)
    assert result["answer"].status_code == 200 and 0 < result["answer"].json()["probability"] < 1
    assert not thread.is_alive()


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_request_schemathesis_generates_gets_a_server_error(service, mode):
    """Requests generated from /openapi.json: valid ones (positive) and ones that break it (negative)."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    statuses = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode == "negative" and operation.method.upper() != "POST":
            continue  # a GET without parameters has no invalid form to generate

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(operation.as_strategy(generation_mode=GenerationMode(mode)))
        def call(case):
            response = case.call()
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.body, response.text)

        call()
    assert statuses and (200 in statuses if mode == "positive" else any(400 <= s < 500 for s in statuses))


def test_openapi_document_describes_the_bundle_schema(client, bundle):
    document = client.get("/openapi.json").json()
    record = document["components"]["schemas"]["Record"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert record["required"] == list(manifest["schema"]["kinds"])
    assert record["properties"]["PageValues"]["type"] == "number"
    assert "anyOf" in record["properties"]["Month"]


def test_explain_true_returns_the_library_explanations_within_its_own_limit(bundle, records):
    service = Service(bundle, admin_hosts=("testclient",), max_batch=50, max_explain=5)
    predictor = Predictor.load(bundle)
    with TestClient(create_app(service)) as client:
        answer = client.post("/v1/predict", json={"record": records[0], "explain": True}).json()
        expected = predictor.explain(records[0])
        assert answer["base"] == pytest.approx(expected.base, abs=1e-6)
        assert answer["contributions"] == pytest.approx(expected.contributions, abs=1e-6)
        assert answer["base"] + sum(answer["contributions"].values()) == pytest.approx(answer["probability"], abs=1e-4)
        batch = client.post("/v1/predict", json={"records": records[:5], "explain": True}).json()
        for served, library in zip(batch["explanations"], predictor.explain_batch(records[:5]), strict=True):
            assert served["contributions"] == pytest.approx(library.contributions, abs=1e-6)
        assert "explanations" not in client.post("/v1/predict", json={"records": records[:5]}).json()
        too_many = client.post("/v1/predict", json={"records": records[:6], "explain": True})
        assert too_many.status_code == 413 and "6 records to explain; the limit is 5" in too_many.json()["error"]
        assert client.post("/v1/predict", json={"records": records[:6]}).status_code == 200
        bad = client.post("/v1/predict", json={"record": records[0], "explain": "yes"})
        assert bad.status_code == 400 and '"explain" must be true or false' in bad.json()["error"]
        document = client.get("/openapi.json").json()
        request = document["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert all(option["properties"]["explain"]["type"] == "boolean" for option in request["oneOf"])
        assert "at most 5 records" in request["oneOf"][0]["properties"]["explain"]["description"]


def test_feedback_gives_the_realised_roc_auc_of_the_outcomes_sent_back(client, records):
    from prometheus_client.parser import text_string_to_metric_families
    from sklearn.metrics import roc_auc_score

    answer = client.post("/v1/predict", json={"records": records}).json()
    ids, probabilities = answer["request_ids"], answer["probabilities"]
    assert len(set(ids)) == len(records)
    single = client.post("/v1/predict", json={"record": records[0]}).json()
    assert isinstance(single["request_id"], str) and single["request_id"] not in ids
    outcomes = [i % 3 == 0 for i in range(len(ids))]
    for request_id, outcome in zip(ids, outcomes, strict=True):
        window = client.post("/v1/feedback", json={"request_id": request_id, "outcome": outcome}).json()["window"]
    assert window["outcomes"] == len(ids)
    assert window["roc_auc"] == pytest.approx(roc_auc_score(outcomes, probabilities), abs=1e-12)
    again = client.post("/v1/feedback", json={"request_id": ids[0], "outcome": True})
    assert again.status_code == 404 and again.json()["kind"] == "unknown_request_id"  # answered already
    assert client.post("/v1/feedback", json={"request_id": "nope", "outcome": True}).status_code == 404
    assert client.post("/v1/feedback", json={"request_id": ids[1]}).status_code == 400
    sketch = client.get("/v1/monitor").json()["sketch"]
    assert sketch["rows"] == len(records) + 1 and sum(sketch["labelled"]) == len(ids)
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    gauges = {s.labels["field"]: s.value for s in families["intent_edge_drift_psi"].samples}
    assert set(gauges) == {*records[0], "score"} and all(v >= 0 for v in gauges.values())
    assert families["intent_edge_score"].samples  # the score histogram, in Prometheus's own format


def test_feedback_ids_are_kept_for_a_bounded_number_of_records(bundle, records):
    service = Service(bundle, feedback_ids=5)
    with TestClient(create_app(service)) as client:
        ids = client.post("/v1/predict", json={"records": records[:8]}).json()["request_ids"]
        assert client.post("/v1/feedback", json={"request_id": ids[0], "outcome": True}).status_code == 404
        assert client.post("/v1/feedback", json={"request_id": ids[-1], "outcome": True}).status_code == 200
