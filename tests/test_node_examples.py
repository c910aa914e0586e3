"""A real non-Python client: the Node.js examples (onnxruntime-node) score bundles' raw-field graphs and must
give the Python runtime's probabilities, record by record and click by click."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from intent_edge.runtime import Predictor
from tests.conftest import UCI_CSV, requires_uci

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "node"
pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="node and npm are not installed (the Node.js client examples need them)")


@pytest.fixture(scope="module")
def node_ready():
    """onnxruntime-node installed from the committed lockfile (its CPU binaries ship in the package; the
    install script's CUDA download is skipped)."""
    if not (EXAMPLES / "node_modules" / "onnxruntime-node").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXAMPLES, check=True, capture_output=True,
                       env={**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"}, timeout=600)
    return EXAMPLES


def _node(script: str, *args, lines: list[dict]) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                          input="".join(json.dumps(line) + "\n" for line in lines), timeout=300)


def _scores(result: subprocess.CompletedProcess) -> np.ndarray:
    assert result.returncode == 0, result.stderr
    return np.array([json.loads(line)["probability"] for line in result.stdout.splitlines()])


def test_node_scores_golden_records_like_the_python_runtime(node_ready, tiny_bundle):
    records = [row["record"] for row in json.loads((tiny_bundle / "golden.json").read_text())["rows"]]
    got = _scores(_node("score/score.js", tiny_bundle, lines=records))
    assert len(got) == len(records)
    assert np.max(np.abs(got - Predictor.load(tiny_bundle).predict_batch(records))) <= 1e-5


def test_node_lenient_follows_the_lenient_runtime_and_strict_refuses(node_ready, tiny_bundle):
    from intent_edge.raw_graph import lenient_records

    predictor = Predictor.load(tiny_bundle, strict=False)
    records = [row["record"] for row in json.loads((tiny_bundle / "golden.json").read_text())["rows"]][:60]
    odd = lenient_records(records, predictor.encoder)
    odd[1]["Month"], odd[2]["VisitorType"] = "Smarch", " Returning_Visitor "
    got = _scores(_node("score/score.js", tiny_bundle, "--lenient", lines=odd))
    assert np.max(np.abs(got - predictor.predict_batch(odd))) <= 1e-5
    result = _node("score/score.js", tiny_bundle, lines=odd)
    assert result.returncode == 2 and "record 1: field 'Administrative': is empty (null)" in result.stderr
    result = _node("score/score.js", tiny_bundle, lines=[{**records[0], "PageValues": "high"}])
    assert result.returncode == 2 and "field 'PageValues': expected a number" in result.stderr


def test_node_refuses_a_damaged_graph(node_ready, tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    data = bytearray((bundle / "model.raw.onnx").read_bytes())
    data[-20] ^= 0xFF
    (bundle / "model.raw.onnx").write_bytes(bytes(data))
    result = _node("score/score.js", bundle, lines=[{}])
    assert result.returncode == 2 and "model.raw.onnx is damaged" in result.stderr


@pytest.mark.slow
@requires_uci
def test_node_scores_held_out_uci_records_like_the_python_runtime(node_ready, tmp_path):
    from intent_edge.data.io import load_dataset
    from intent_edge.train.mlp import MLPRecipe
    from intent_edge.train.pipeline import rebuild_split, train_bundle

    dataset = load_dataset(UCI_CSV, "Revenue")
    manifest = train_bundle(dataset, tmp_path / "uci", recipe=MLPRecipe(max_epochs=3, teacher="lightgbm"), seed=0)
    _, test = rebuild_split(dataset, manifest["training"])
    records = json.loads(dataset.features.iloc[test].to_json(orient="records"))
    got = _scores(_node("score/score.js", tmp_path / "uci", lines=records))
    assert len(got) == len(test) > 2000
    assert np.max(np.abs(got - Predictor.load(tmp_path / "uci").predict_batch(records))) <= 1e-5


@pytest.fixture(scope="module", params=["gru", "hybrid"])
def clickstream_bundle(request, tmp_path_factory):
    from intent_edge.clickstream.events import PLAIN, event_log_from_frame
    from intent_edge.clickstream.models import SequenceRecipe
    from intent_edge.clickstream.pipeline import train_sequence_bundle
    from intent_edge.clickstream.synth import CONTEXT_COLUMNS, generate_clickstream

    log = event_log_from_frame(generate_clickstream(400, seed=12), "synthetic", replace(PLAIN, context=CONTEXT_COLUMNS))
    out = tmp_path_factory.mktemp("node-clickstream") / request.param
    train_sequence_bundle(log, out, kind=request.param, seed=0, max_length=24,
                          recipe=SequenceRecipe(embedding=4, units=8, max_epochs=2, patience=1))
    return out


def _interleaved_events(bundle: Path) -> list[dict]:
    """The golden sessions' events, sessions taking turns as live traffic arrives, one event unknown."""
    queues = [[{"session_id": s["session_id"], **e} for e in s["events"]]
              for s in json.loads((bundle / "golden.json").read_text())["sessions"]]
    merged = []
    while any(queues):
        merged += [queue.pop(0) for queue in queues if queue]
    merged[3] = {**merged[3], "event": "teleport"}
    return merged


def test_node_streams_clicks_like_the_session_scorer(node_ready, clickstream_bundle):
    from intent_edge.runtime.streaming import SessionScorer

    events = _interleaved_events(clickstream_bundle)
    got = _scores(_node("stream/stream.js", clickstream_bundle, lines=events))
    scorer = SessionScorer.load(clickstream_bundle, backend="onnxruntime")
    expected = np.array([scorer.update(e["session_id"], e) for e in events])
    assert len(got) == len(events) and np.max(np.abs(got - expected)) <= 1e-5


def test_node_streams_with_the_int8_step_where_it_was_kept(node_ready, clickstream_bundle):
    from intent_edge.runtime.bundle import read_manifest
    from intent_edge.runtime.streaming import SessionScorer

    if read_manifest(clickstream_bundle)["step"]["int8"].get("onnxruntime", {}).get("raw", {}).get("status") != "ok":
        pytest.skip("this bundle's int8 ONNX step failed its parity check, so it was not kept")
    events = _interleaved_events(clickstream_bundle)
    got = _scores(_node("stream/stream.js", clickstream_bundle, "--int8", lines=events))
    scorer = SessionScorer.load(clickstream_bundle, backend="onnxruntime", precision="int8")
    expected = np.array([scorer.update(e["session_id"], e) for e in events])
    assert np.percentile(np.abs(got - expected), 99) <= 2e-3
