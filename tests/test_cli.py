import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from intent_edge.cli import app
from intent_edge.data.io import write_table
from intent_edge.data.synth import generate_sessions

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("command", [[], ["data"], ["data", "synth"], ["data", "clickstream"], ["serve"], ["export"],
                                     ["stream"], ["train"], ["evaluate"], ["predict"], ["score"],
                                     ["info"], ["compress"], ["bench"], ["keygen"], ["sign"]])
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


def test_synth_train_info_predict(tmp_path):
    data = tmp_path / "sessions.csv"
    assert invoke("data", "synth", "--rows", 1200, "--seed", 2, "--out", data).exit_code == 0
    assert len(pd.read_csv(data)) == 1200

    bundle = tmp_path / "bundle"
    result = invoke("train", data, "--label", "Revenue", "--out", bundle, "--max-epochs", 3, "--plots",
                    tmp_path / "plots")
    assert result.exit_code == 0, result.output
    assert "ROC-AUC" in result.output and "ONNX parity" in result.output
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["calibration.png", "pr.png", "roc.png"]

    result = invoke("info", bundle)
    assert result.exit_code == 0 and "checksums verified" in result.output

    records = generate_sessions(20, seed=9).drop(columns=["Revenue"])
    jsonl = tmp_path / "new.jsonl"
    records.to_json(jsonl, orient="records", lines=True)
    scored = tmp_path / "scored.csv"
    result = invoke("score", bundle, jsonl, "--output", scored, "--keep", "all")
    assert result.exit_code == 0, result.output
    out = pd.read_csv(scored)
    assert len(out) == 20 and out["probability"].between(0, 1).all()
    assert list(out.columns) == [*records.columns, "probability", "decision"]
    assert (out["decision"] == (out["probability"] >= json.loads((bundle / "manifest.json").read_text())
                                ["threshold"]["value"])).all()

    report = tmp_path / "eval.json"
    other = tmp_path / "other.csv"
    write_table(generate_sessions(400, seed=10), other)
    result = invoke("evaluate", other, "--bundle", bundle, "--json", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["metrics"]["rows"] == 400

    bad = tmp_path / "bad.csv"
    frame = generate_sessions(5, seed=1).drop(columns=["Revenue"])
    frame["ExitRates"] = frame["ExitRates"].astype(object)
    frame.loc[3, "ExitRates"] = "high"
    frame.to_csv(bad, index=False)
    result = invoke("score", bundle, bad, "--output", tmp_path / "bad-scored.csv")
    assert result.exit_code == 2 and not (tmp_path / "bad-scored.csv").exists()
    assert "bad.csv, row 4 (line 5), column 'ExitRates': expected a number, got 'high'" in result.output


def test_cross_validation_and_out_of_time_reports(tmp_path):
    data = tmp_path / "sessions.csv"
    write_table(generate_sessions(1200, seed=4), data)
    report = tmp_path / "cv.json"
    result = invoke("evaluate", data, "--cv", 2, "--max-epochs", 2, "--json", report)
    assert result.exit_code == 0, result.output
    assert len(json.loads(report.read_text())["folds"]) == 2
    result = invoke("evaluate", data, "--out-of-time", "Month", "--max-epochs", 2)
    assert result.exit_code == 0, result.output
    assert "out of time: train" in result.output and "-> test" in result.output


def test_errors_are_one_clear_line(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    result = invoke("train", data, "--label", "Revenue", "--out", tmp_path / "b")
    assert result.exit_code == 2
    assert "label column 'Revenue' not found; the columns are: a, b" in result.output
    assert "Traceback" not in result.output
    result = invoke("evaluate", data)
    assert result.exit_code == 2 and "choose exactly one of --bundle, --cv and --out-of-time" in result.output


def test_empty_value_in_a_scored_file_names_row_and_line(tmp_path, tiny_bundle):
    frame = generate_sessions(6, seed=1).drop(columns=["Revenue"])
    frame.loc[2, "Month"] = None
    path = tmp_path / "records.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    result = invoke("score", tiny_bundle, path, "--output", out)
    assert result.exit_code == 2
    assert "records.csv, row 3 (line 4), column 'Month': is empty (None or NaN); expected a category" in result.output
    assert invoke("score", tiny_bundle, path, "--output", out, "--lenient").exit_code == 0


def test_compress_command_prints_the_table_and_writes_a_report(tmp_path, tiny_bundle, synthetic_csv):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    report = tmp_path / "compression.md"
    result = invoke("compress", bundle, "--data", synthetic_csv, "--methods", "original,int8-dynamic,litert-fp32",
                    "--report", report)
    assert result.exit_code == 0, result.output
    assert "recommended (latency" in result.output
    text = report.read_text()
    assert "Command: `intent-edge compress" in text and "| litert-fp32" in text
    result = invoke("info", bundle)
    assert result.exit_code == 0 and "litert-fp32" in result.output


def test_any_session_csv_trains_with_label_alone_and_scores_parquet(tmp_path):
    rows = ["visit;pages;seconds;device_type;channel;bought"]
    rng = __import__("numpy").random.default_rng(0)
    for i in range(400):
        pages = int(rng.integers(0, 30))
        bought = "yes" if pages + rng.normal(0, 5) > 20 else "no"
        rows.append(f"v{i};{pages};{pages * 30 + rng.integers(0, 60)};{i % 3};{['web', 'app'][i % 2]};{bought}")
    data = tmp_path / "sessions.csv"
    data.write_text("\n".join(rows) + "\n")
    bundle = tmp_path / "bundle"
    result = invoke("train", data, "--label", "bought", "--out", bundle, "--max-epochs", 3)
    assert result.exit_code == 0, result.output
    assert "ignored: visit: an identifier: 400 distinct values in 400" in result.output
    records = pd.read_csv(data, sep=";").drop(columns=["bought"])
    records.to_parquet(tmp_path / "new.parquet")
    result = invoke("score", bundle, tmp_path / "new.parquet", "--output", tmp_path / "scored.parquet")
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(tmp_path / "scored.parquet")["probability"].between(0, 1).all()


def test_predict_scores_json_records_from_arguments_and_standard_input(tiny_bundle):
    from intent_edge.runtime import Predictor

    records = generate_sessions(3, seed=5).drop(columns=["Revenue"]).to_dict("records")
    predictor = Predictor.load(tiny_bundle)
    lines = [json.dumps(r) for r in records]
    result = invoke("predict", tiny_bundle, *lines[:2])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert [a["probability"] for a in answers] == pytest.approx([predictor.predict(r) for r in records[:2]], abs=1e-6)
    result = runner.invoke(app, ["predict", str(tiny_bundle)], input="\n".join(lines) + "\n")
    assert result.exit_code == 0 and len(result.output.splitlines()) == 3
    bad = json.dumps({**records[0], "PageValues": "lots"})
    result = invoke("predict", tiny_bundle, bad)
    assert result.exit_code == 2 and "record 1: field 'PageValues': expected a number, got str 'lots'" in result.output


def test_predict_explain_adds_the_contributions_and_top_keeps_the_largest(tiny_bundle):
    from intent_edge.runtime import Predictor

    record = generate_sessions(1, seed=6).drop(columns=["Revenue"]).to_dict("records")[0]
    expected = Predictor.load(tiny_bundle).explain(record)
    result = invoke("predict", tiny_bundle, json.dumps(record), "--explain")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["contributions"] == pytest.approx(expected.contributions, abs=1e-6)
    assert answer["base"] + sum(answer["contributions"].values()) == pytest.approx(answer["probability"], abs=1e-4)
    result = invoke("predict", tiny_bundle, json.dumps(record), "--explain", "--top", 3)
    assert list(json.loads(result.output)["contributions"]) == list(expected.top(3))
    result = invoke("predict", tiny_bundle, json.dumps(record), "--top", 3)
    assert result.exit_code == 2 and "--top applies with --explain" in result.output


def test_clickstream_synth_writes_a_readable_event_log(tmp_path):
    from intent_edge.clickstream.events import read_event_log

    out = tmp_path / "events.parquet"
    result = invoke("data", "clickstream", "--sessions", 50, "--seed", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(read_event_log(out)) == 50


def test_train_a_sequence_model_on_an_event_log(tmp_path):
    from intent_edge.runtime.streaming import SessionScorer

    events = tmp_path / "events.csv"
    assert invoke("data", "clickstream", "--sessions", 300, "--seed", 2, "--out", events).exit_code == 0
    result = invoke("train", events, "--model", "gru", "--out", tmp_path / "gru", "--max-epochs", 1,
                    "--max-length", 16)
    assert result.exit_code == 0, result.output
    assert "streaming parity" in result.output and "ROC-AUC by prefix" in result.output
    assert 0 < SessionScorer.load(tmp_path / "gru").update("s", {"event": "cart", "timestamp": 1}) < 1
    lines = [json.dumps({"session_id": s, "event": e, "timestamp": t})
             for s, e, t in (("a", "home", 0), ("b", "search", 5), ("a", "product", 9000))]
    result = runner.invoke(app, ["stream", str(tmp_path / "gru")], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert [a["session_id"] for a in answers] == ["a", "b", "a"] and all(0 < a["probability"] < 1 for a in answers)
    scorer = SessionScorer.load(tmp_path / "gru")
    expected = [scorer.update(json.loads(x)["session_id"], json.loads(x)) for x in lines]
    assert [a["probability"] for a in answers] == pytest.approx(expected, abs=1e-6)
    result = runner.invoke(app, ["stream", str(tmp_path / "gru"), "--explain"], input="\n".join(lines) + "\n")
    explained = [json.loads(line) for line in result.output.splitlines()]
    # each event's change is the session's probability after it minus before it; none before a session opens
    assert [a["change"] for a in explained[:2]] == [None, None]
    assert explained[2]["change"] == pytest.approx(expected[2] - expected[0], abs=2e-6)
    result = runner.invoke(app, ["stream", str(tmp_path / "gru")], input='{"session_id": "a", "event": "home"}\n')
    assert result.exit_code == 2 and "event 1: field 'timestamp': missing" in result.output
    other = tmp_path / "other-events.csv"
    assert invoke("data", "clickstream", "--sessions", 200, "--seed", 3, "--out", other).exit_code == 0
    report = tmp_path / "eval.json"
    result = invoke("evaluate", other, "--bundle", tmp_path / "gru", "--json", report)
    assert result.exit_code == 0, result.output
    by_prefix = json.loads(report.read_text())["by_prefix"]
    assert {"1", "5", "all"} <= set(by_prefix) and all(0 <= m["roc_auc"] <= 1 for m in by_prefix.values())
    assert by_prefix["all"]["rows"] == 200
    result = invoke("info", tmp_path / "gru")
    assert result.exit_code == 0 and "litert fp32" in result.output and "step.tflite" in result.output
    result = invoke("train", events, "--model", "transformer", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "'transformer' is not one of 'mlp'," in result.output  # refused at parse


def test_train_and_stream_a_hybrid_model_with_session_context(tmp_path):
    events = tmp_path / "events.csv"
    assert invoke("data", "clickstream", "--sessions", 300, "--seed", 4, "--out", events).exit_code == 0
    result = invoke("train", events, "--model", "hybrid", "--out", tmp_path / "hybrid", "--max-epochs", 1,
                    "--max-length", 16)
    assert result.exit_code == 0, result.output
    assert "session context: visitor (categorical), previous_orders (numeric)" in result.output
    result = invoke("info", tmp_path / "hybrid")
    assert result.exit_code == 0 and "session context, read from each session's first event: visitor" in result.output
    context = {"visitor": "returning", "previous_orders": 2, "channel": "email", "device": "desktop",
               "weekend": False, "region": 4}
    lines = [json.dumps({"session_id": "a", "event": "home", "timestamp": 0, **context}),
             json.dumps({"session_id": "a", "event": "product", "timestamp": 9000})]
    result = runner.invoke(app, ["stream", str(tmp_path / "hybrid")], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 2
    result = runner.invoke(app, ["stream", str(tmp_path / "hybrid")], input=lines[1] + "\n")
    assert result.exit_code == 2
    assert "event 1: field 'visitor': missing; the event that starts a session" in result.output
    assert "lacks visitor, previous_orders, channel, device, weekend, region" in result.output
    result = invoke("evaluate", events, "--bundle", tmp_path / "hybrid")
    assert result.exit_code == 0, result.output
    no_context = tmp_path / "no-context.csv"
    pd.read_csv(events)[["session_id", "timestamp", "event"]].to_csv(no_context, index=False)
    result = invoke("train", no_context, "--model", "hybrid", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "no session context columns" in result.output
