"""Clickstream bundles and the streaming scorer: per-event updates equal the full-sequence model on
every prefix, open sessions stay bounded, concurrent sessions do not mix, bad events are named."""

import shutil
import threading
from dataclasses import replace

import numpy as np
import pytest

from intent_edge.clickstream.events import PLAIN, event_log_from_frame
from intent_edge.clickstream.models import SequenceRecipe
from intent_edge.clickstream.pipeline import train_sequence_bundle
from intent_edge.clickstream.synth import CONTEXT_COLUMNS, generate_clickstream
from intent_edge.errors import BundleError, RecordError
from intent_edge.runtime import Predictor
from intent_edge.runtime.streaming import SessionScorer

TINY = SequenceRecipe(embedding=4, units=8, max_epochs=2, patience=1)


@pytest.fixture(scope="module")
def log():
    return event_log_from_frame(generate_clickstream(500, seed=11), "synthetic",
                                replace(PLAIN, context=CONTEXT_COLUMNS))


@pytest.fixture(scope="module", params=["gru", "lstm", "cnn"])
def bundle(request, tmp_path_factory, log):
    out = tmp_path_factory.mktemp("clickstream") / request.param
    manifest = train_sequence_bundle(log, out, kind=request.param, seed=0, recipe=TINY, max_length=24)
    for backend in ("onnxruntime", "litert"):
        assert manifest["step"]["backends"][backend]["parity"]["max_abs_diff"] <= 1e-5
    return out


def golden(bundle):
    import json

    return json.loads((bundle / "golden.json").read_text())["sessions"]


@pytest.mark.parametrize("backend", ["onnxruntime", "litert"])
def test_updates_reproduce_the_full_model_after_every_event(bundle, backend):
    scorer = SessionScorer.load(bundle, backend=backend)
    for session in golden(bundle):
        streamed = [scorer.update(session["session_id"], event) for event in session["events"]]
        np.testing.assert_allclose(streamed, session["probabilities"], atol=1e-5)
        np.testing.assert_allclose(scorer.score_session(session["events"]), session["probabilities"], atol=1e-5)
    assert scorer.open_sessions == len(golden(bundle)) and scorer.stats["sessions_started"] == scorer.open_sessions


def test_only_a_hybrid_golden_session_carries_the_context(bundle):
    """The log these bundles were trained on has context columns; a gru/lstm/cnn does not read them."""
    assert all(set(s["events"][0]) == {"event", "timestamp"} for s in golden(bundle))
    assert SessionScorer.load(bundle).context_columns == []


def test_sessions_expire_and_the_oldest_are_evicted_beyond_the_cap(bundle):
    now = [0.0]
    scorer = SessionScorer.load(bundle, max_sessions=3, ttl_seconds=60, clock=lambda: now[0])
    event = {"event": "home", "timestamp": 0}
    for name in ("a", "b", "c", "d"):
        scorer.update(name, event)
    assert scorer.open_sessions == 3 and scorer.stats["evicted"] == 1  # "a", least recently updated
    now[0] = 30.0
    scorer.update("b", {"event": "product", "timestamp": 30_000})
    now[0] = 75.0
    scorer.update("e", event)  # c and d idle for 75 s > 60 s: expired; b (45 s) stays
    assert scorer.stats["expired"] == 2 and scorer.open_sessions == 2
    assert scorer.end("b") and not scorer.end("b")
    first = scorer.update("a", event)  # evicted earlier: starts afresh, like a new session
    assert first == pytest.approx(SessionScorer.load(bundle).update("z", event), abs=1e-7)


def test_concurrent_sessions_equal_one_at_a_time(bundle):
    sessions = golden(bundle)[:8]
    alone = SessionScorer.load(bundle)
    expected = {s["session_id"]: [alone.update(s["session_id"], e) for e in s["events"]] for s in sessions}
    shared = SessionScorer.load(bundle)
    results, errors = {}, []

    def run(session):
        try:
            results[session["session_id"]] = [shared.update(session["session_id"], e) for e in session["events"]]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == expected


@pytest.mark.parametrize("event, field", [
    ({"timestamp": 5}, "event"), ({"event": "home"}, "timestamp"), ({"event": "", "timestamp": 1}, "event"),
    ({"event": "home", "timestamp": "noon"}, "timestamp"), ({"event": "home", "timestamp": float("nan")}, "timestamp"),
    ({"event": "home", "timestamp": True}, "timestamp"), (["home", 5], "*"),
])
def test_bad_events_are_named_and_leave_the_session_alone(bundle, event, field):
    scorer = SessionScorer.load(bundle)
    with pytest.raises(RecordError) as caught:
        scorer.update("s", event)
    assert caught.value.field == field and scorer.open_sessions == 0


def test_unknown_events_and_late_timestamps_still_score(bundle):
    scorer = SessionScorer.load(bundle)
    p = [scorer.update("s", {"event": "never-seen", "timestamp": 10_000}),
         scorer.update("s", {"event": "product", "timestamp": 5_000})]  # earlier than the previous: a 0 s gap
    assert all(0.0 < x < 1.0 for x in p)


def test_bundle_kinds_are_not_confused(bundle, tiny_bundle):
    with pytest.raises(BundleError, match="not a clickstream bundle"):
        SessionScorer.load(tiny_bundle)
    with pytest.raises(BundleError, match="clickstream bundle"):
        Predictor.load(bundle)


@pytest.mark.parametrize("backend, name", [("onnxruntime", "step.onnx"), ("litert", "step.tflite")])
def test_a_damaged_step_is_refused(bundle, tmp_path, backend, name):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 3] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{name} is damaged"):
        SessionScorer.load(copy, backend=backend)


def test_streaming_benchmark_mechanics(bundle):
    from intent_edge.bench import render_streaming_markdown, streaming_latency

    report = streaming_latency(bundle, [{"event": "product"}, {"event": "cart"}], sessions=5, prefixes=(3, 6))
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    assert {(r["backend"], r["prefix"]) for r in rows} == {(b, n) for b in ("onnxruntime", "litert") for n in (3, 6)}
    for row in rows:
        assert set(row["update_us"]) == {"p50", "p90", "p99", "p99.9"} and row["update_us"]["p50"] > 0
        assert row["update_p50_over_shortest_prefix"] == pytest.approx(
            row["update_us"]["p50"] / next(r["update_us"]["p50"] for r in rows
                                           if r["backend"] == row["backend"] and r["prefix"] == 3))
    assert "| 6 |" in render_streaming_markdown(report, "intent-edge bench x")


def test_int8_steps_are_judged_and_load(bundle):
    import json

    manifest = json.loads((bundle / "manifest.json").read_text())
    for backend, entry in manifest["step"]["int8"].items():
        assert entry["parity"]["passed"] and entry["bytes_fp32"] > 0  # (tiny models: int8 files can be larger)
        session = golden(bundle)[0]
        scorer = SessionScorer.load(bundle, backend=backend, precision="int8")
        streamed = [scorer.update("s", e) for e in session["events"]]
        assert np.max(np.abs(np.array(streamed) - session["probabilities"])) <= entry["parity"]["tolerance"]["max"]


def test_evaluation_through_the_step_matches_the_bundle_metrics(bundle, log):
    """The test split's prefix ROC-AUC, recomputed through the streaming step, equals the training-time
    figure from the full Keras model (same sessions: the bundle's seeded split)."""
    import json

    from intent_edge.clickstream.pipeline import _subset, evaluate_sequence_bundle

    manifest = json.loads((bundle / "manifest.json").read_text())
    order = np.random.default_rng(manifest["training"]["seed"]).permutation(len(log))
    test = order[int(0.85 * len(order)):]
    report = evaluate_sequence_bundle(bundle, _subset(log, test))
    for k, figures in manifest["metrics"]["test"].items():
        assert report[k]["roc_auc"] == pytest.approx(figures["roc_auc"], abs=1e-4)
        assert report[k]["rows"] == figures["sessions"]


# ---- hybrid: the GRU started from the session context ------------------------------------------

@pytest.fixture(scope="module")
def hybrid(tmp_path_factory, log):
    out = tmp_path_factory.mktemp("clickstream") / "hybrid"
    manifest = train_sequence_bundle(log, out, kind="hybrid", seed=0, recipe=TINY, max_length=24)
    assert manifest["context"]["columns"] == list(CONTEXT_COLUMNS)
    for backend in ("onnxruntime", "litert"):
        assert manifest["step"]["backends"][backend]["parity"]["max_abs_diff"] <= 1e-5
    return out


@pytest.mark.parametrize("backend", ["onnxruntime", "litert"])
def test_hybrid_updates_reproduce_the_full_model_with_the_context(hybrid, backend):
    scorer = SessionScorer.load(hybrid, backend=backend)
    assert scorer.context_columns == list(CONTEXT_COLUMNS)
    for session in golden(hybrid):
        assert set(CONTEXT_COLUMNS) <= set(session["events"][0])  # the first event carries the context
        streamed = [scorer.update(session["session_id"], event) for event in session["events"]]
        np.testing.assert_allclose(streamed, session["probabilities"], atol=1e-5)


def test_hybrid_context_is_read_when_a_session_starts_and_only_then(hybrid):
    scorer = SessionScorer.load(hybrid)
    session = golden(hybrid)[0]
    first = session["events"][0]
    other = {**first, "visitor": "returning" if first["visitor"] == "new" else "new",
             "previous_orders": first["previous_orders"] + 3, "channel": "email"}
    assert scorer.update("a", first) != pytest.approx(scorer.update("b", other), abs=1e-6)
    second = {"event": "product", "timestamp": first["timestamp"] + 5000}
    scorer.update("c", first)
    with_other_context = scorer.update("c", {**other, **second})  # context on a later event is not read
    assert scorer.update("a", second) == pytest.approx(with_other_context, abs=1e-7)


def test_hybrid_session_without_its_context_is_refused_and_not_opened(hybrid):
    scorer = SessionScorer.load(hybrid)
    event = {key: value for key, value in golden(hybrid)[0]["events"][0].items() if key != "channel"}
    with pytest.raises(RecordError, match="starts a session carries its context.*lacks channel$") as caught:
        scorer.update("s", event)
    assert caught.value.field == "channel" and scorer.open_sessions == 0 and scorer.stats["sessions_started"] == 0
    with pytest.raises(RecordError) as caught:
        scorer.update("s", {**event, "channel": "email", "previous_orders": "many"})
    assert caught.value.field == "previous_orders" and scorer.open_sessions == 0


def test_hybrid_evaluation_and_benchmark_run_with_the_context(hybrid, log):
    import json

    from intent_edge.bench import streaming_latency
    from intent_edge.clickstream.pipeline import _subset, evaluate_sequence_bundle

    manifest = json.loads((hybrid / "manifest.json").read_text())
    order = np.random.default_rng(manifest["training"]["seed"]).permutation(len(log))
    report = evaluate_sequence_bundle(hybrid, _subset(log, order[int(0.85 * len(order)):]))
    for k, figures in manifest["metrics"]["test"].items():
        assert report[k]["roc_auc"] == pytest.approx(figures["roc_auc"], abs=1e-4)
    with pytest.raises(ValueError, match="read without it"):
        evaluate_sequence_bundle(hybrid, replace(log, context=None))
    bench = streaming_latency(hybrid, [{"event": "product"}], sessions=3, prefixes=(2,))
    assert [r["status"] for r in bench["rows"]] == ["ok", "ok"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed (apt-get install gcc)")
def test_the_compiled_step_reproduces_the_scorer_event_by_event(bundle, tmp_path):
    """`export --format c` compiles a GRU's or LSTM's step (issue 24): its harness replays the golden
    sessions and generated odd and bad events against SessionScorer, warning-free, sanitizer-clean, and
    the same with and without vector types; a CNN bundle is refused by name."""
    import json
    import subprocess

    from intent_edge.errors import UsageError
    from intent_edge.export.c import export_c

    kind = json.loads((bundle / "manifest.json").read_text())["model"]["kind"]
    if kind == "cnn":
        with pytest.raises(UsageError, match="a cnn clickstream bundle cannot be compiled to C; the C export "
                                             "takes gru and lstm"):
            export_c(bundle, tmp_path / "c")
        return
    summary = export_c(bundle, tmp_path / "c", prefix="clicks")
    assert summary["variant"] == kind and summary["cases"]["golden"] > 0 and summary["cases"]["bad"] > 0
    flags = ["-std=c99", "-O1", "-ffp-contract=off", "-Wall", "-Wextra", "-pedantic", "-Werror"]
    outputs = []
    for extra in ([], ["-DIE_SCALAR"], ["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]):
        built = subprocess.run(["gcc", *flags, *extra, "clicks.c", "clicks_test.c", "-lm", "-o", "clicks_test"],
                               cwd=tmp_path / "c", capture_output=True, text=True, timeout=300)
        assert built.returncode == 0 and not built.stderr, built.stderr[-2000:]
        ran = subprocess.run(["./clicks_test"], cwd=tmp_path / "c", capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0 and "failures 0" in ran.stdout, ran.stdout + ran.stderr[-2000:]
        outputs.append(ran.stdout)
    assert outputs[0] == outputs[1] == outputs[2]  # the same worst difference: scalar and vector agree


def test_a_hybrid_bundle_is_not_compiled_and_nothing_is_written(hybrid, tmp_path):
    from intent_edge.errors import UsageError
    from intent_edge.export.c import export_c

    with pytest.raises(UsageError, match="a hybrid clickstream bundle cannot be compiled to C"):
        export_c(hybrid, tmp_path / "c")
    assert not (tmp_path / "c").exists()
