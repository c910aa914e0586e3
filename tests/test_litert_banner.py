"""LiteRT's XNNPACK banner stays off standard error in every command that loads a .tflite file, while
LiteRT's real errors still reach it (issue 22). LiteRT writes to file descriptor 2 directly, where Typer's
test runner does not look, so each command runs in its own process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intent_edge.data.io import load_dataset
from intent_edge.data.synth import generate_sessions
from intent_edge.runtime.bundle import describe_file, read_manifest, write_manifest

pytest.importorskip("ai_edge_litert", reason="LiteRT is not installed (pip install 'intent-edge[cpu]')")

BANNER = "XNNPACK delegate"
CLI = [str(Path(sys.executable).with_name("intent-edge"))]  # the console script installed beside Python


def run_cli(*args, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def litert_bundle(tiny_bundle, synthetic_csv, tmp_path_factory) -> Path:
    """A compressed bundle whose default variant runs on LiteRT."""
    from intent_edge.compress.pipeline import compress_bundle

    bundle = tmp_path_factory.mktemp("banner") / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    compress_bundle(bundle, load_dataset(synthetic_csv), methods=["litert-int8"], max_auc_drop=1.0)
    manifest = read_manifest(bundle)
    default = manifest["variants"][manifest["default_variant"]]
    assert default["format"] == "tflite", "the test needs a LiteRT default variant"
    for variant in manifest["variants"].values():  # so that every command runs the .tflite on LiteRT, as a
        variant.pop("native", None)  # host without the native extension would
    write_manifest(bundle, manifest)
    return bundle


@pytest.fixture(scope="module")
def records_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("banner-data") / "new.csv"
    generate_sessions(120, seed=8).to_csv(path, index=False)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_filter_passes_other_output_on():
    """Everything LiteRT or anyone else writes to file descriptor 2 while it is caught comes back out."""
    script = ("import os\nfrom intent_edge.runtime.backends import without_xnnpack_banner\n"
              "with without_xnnpack_banner():\n"
              "    os.write(2, b'ERROR: a real problem\\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
              "os.write(2, b'after\\n')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "ERROR: a real problem\nafter\n"


def test_predict_score_evaluate_and_bench_print_no_banner(litert_bundle, records_csv, tmp_path):
    record = generate_sessions(1, seed=9).drop(columns=["Revenue"]).to_dict("records")[0]
    runs = {
        "predict": run_cli("predict", litert_bundle, json.dumps(record)),
        "score": run_cli("score", litert_bundle, records_csv, "--output", tmp_path / "scored.csv"),
        "evaluate": run_cli("evaluate", records_csv, "--bundle", litert_bundle),
        "bench": run_cli("bench", litert_bundle, "--data", records_csv, "--records", 100, "--batch-sizes", "1",
                         "--no-keras", "--no-cold-start", "--json", tmp_path / "bench.json", timeout=300),
    }
    for command, result in runs.items():
        assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
        assert BANNER not in result.stderr, f"{command} printed the banner: {result.stderr[-500:]}"
    assert 0 < json.loads(runs["predict"].stdout)["probability"] < 1
    # the int8 default's runtime overhead is measured against its own graph, beside the fp32 ratio
    bars = json.loads((tmp_path / "bench.json").read_text())["bars"]
    assert {"predict_p50_over_own_variant_bare_invoke_p50", "predict_p50_over_bare_onnxruntime_p50"} <= set(bars)
    assert "runtime overhead: predict(record) p50 over a bare call" in runs["bench"].stdout


def test_serve_prints_no_banner(litert_bundle):
    import httpx

    port = free_port()
    server = subprocess.Popen([*CLI, "serve", str(litert_bundle), "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        record = generate_sessions(1, seed=9).drop(columns=["Revenue"]).to_dict("records")[0]
        deadline, answer = time.monotonic() + 60, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"record": record}, timeout=10)
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, "the service did not answer"
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert BANNER not in stderr, stderr[-500:]


def test_stream_prints_no_banner(tmp_path):
    from intent_edge.clickstream.events import PLAIN, event_log_from_frame
    from intent_edge.clickstream.models import SequenceRecipe
    from intent_edge.clickstream.pipeline import train_sequence_bundle
    from intent_edge.clickstream.synth import generate_clickstream

    bundle = tmp_path / "gru"
    train_sequence_bundle(event_log_from_frame(generate_clickstream(200, seed=4), "synthetic", PLAIN), bundle,
                          kind="gru", seed=0, recipe=SequenceRecipe(embedding=4, units=8, max_epochs=1, patience=1),
                          max_length=16)
    events = "".join(json.dumps({"session_id": "s", "event": e, "timestamp": t}) + "\n"
                     for e, t in (("home", 0), ("product", 9000)))
    result = run_cli("stream", bundle, "--backend", "litert", stdin=events)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.splitlines()) == 2 and BANNER not in result.stderr, result.stderr[-500:]


def test_a_broken_tflite_still_reports_its_error(litert_bundle, tmp_path):
    """A damaged .tflite whose checksum was rewritten to match gets past the manifest, so LiteRT itself must
    refuse it, and that refusal reaches the user."""
    bundle = tmp_path / "broken"
    shutil.copytree(litert_bundle, bundle)
    manifest = read_manifest(bundle)
    entry = manifest["variants"][manifest["default_variant"]]
    (bundle / entry["file"]["path"]).write_bytes(b"not a flatbuffer" * 64)
    entry["file"] = describe_file(bundle, entry["file"]["path"])
    write_manifest(bundle, manifest)
    record = generate_sessions(1, seed=9).drop(columns=["Revenue"]).to_dict("records")[0]
    result = run_cli("predict", bundle, json.dumps(record))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "LiteRT cannot load this model" in output and "Flatbuffer" in output
    assert BANNER not in result.stderr
