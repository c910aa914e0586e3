"""Monitoring (issue 25): the reference profile in the bundle, sketches that merge exactly and agree
between predict and predict_batch, drift flagged on the documented shifts and (almost) never on
unshifted samples, performance estimated from calibrated scores, and the `monitor` command's contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from intent_edge.data.synth import generate_sessions
from intent_edge.monitoring.drift import realised_performance, report
from intent_edge.runtime import Predictor
from intent_edge.runtime.monitor import Sketch

TRAINING_ROWS = 20_000


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from intent_edge.data.io import load_dataset, write_table
    from intent_edge.train.mlp import MLPRecipe
    from intent_edge.train.pipeline import train_bundle

    directory = tmp_path_factory.mktemp("monitoring")
    write_table(generate_sessions(TRAINING_ROWS, seed=1), directory / "train.csv")
    train_bundle(load_dataset(directory / "train.csv", "Revenue"), directory / "bundle", seed=0,
                 recipe=MLPRecipe(hidden=(32, 16), max_epochs=12, patience=3, teacher="lightgbm"))
    return directory / "bundle"


def scored_sketch(bundle, frame):
    predictor = Predictor.load(bundle, strict=False)
    watcher = predictor.start_monitoring()
    probabilities = predictor.predict_batch(frame.drop(columns=["Revenue"]))
    return watcher, watcher.snapshot(), probabilities


def test_the_bundle_carries_a_checksummed_reference_profile(bundle):
    from intent_edge.runtime.bundle import read_manifest, verify_files
    from intent_edge.runtime.monitor import Profile

    manifest = read_manifest(bundle)
    assert any(path.name == "monitor.json" for path in verify_files(bundle, manifest))
    profile = Profile.load(bundle, manifest)
    assert {f.name for f in profile.fields} == set(manifest["encoder"]["names"] if "names" in manifest["encoder"]
                                                   else [f["name"] for f in manifest["encoder"]["features"]])
    assert all(counts.sum() == manifest["training"]["rows"]["refit"] for counts in profile.reference.values())
    assert profile.score_reference.sum() == manifest["training"]["rows"]["test"]
    assert np.all(np.diff(profile.calibration) >= -1e-12)  # Platt scaling keeps the scores' order


def test_sketches_merge_exactly_and_predict_agrees_with_predict_batch(bundle):
    frame = generate_sessions(2000, seed=31).drop(columns=["Revenue"])
    records = frame.to_dict("records")
    one_by_one = Predictor.load(bundle, strict=False)
    watcher = one_by_one.start_monitoring()
    from intent_edge.runtime.backends import BACKENDS

    if BACKENDS["native"].is_available():  # the compiled predict counts in C: compared with numpy's counts below
        assert type(one_by_one.predict).__name__ == "builtin_function_or_method"
    singles = np.array([one_by_one.predict(r) for r in records], dtype=np.float32)
    batched = Predictor.load(bundle, strict=False)
    whole = batched.start_monitoring()
    assert np.array_equal(batched.predict_batch(frame), singles)
    assert watcher.snapshot() == whole.snapshot()  # the same counts, record by record or in a batch
    parts = []
    for piece in np.array_split(np.arange(len(frame)), 4):
        predictor = Predictor.load(bundle, strict=False)
        part = predictor.start_monitoring()
        predictor.predict_batch(frame.iloc[piece])
        parts.append(part.snapshot())
    merged = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    assert merged == whole.snapshot() and merged.rows == len(frame)
    text = json.dumps(merged.to_json())
    assert Sketch.from_json(json.loads(text)) == merged and len(text) < 20_000  # kilobytes, not rows


@pytest.mark.parametrize("shift, field", [("traffic-source", "TrafficType"), ("season", "Month")])
def test_a_known_shift_is_flagged_with_the_score(bundle, shift, field):
    watcher, sketch, _ = scored_sketch(bundle, generate_sessions(5000, seed=17, shift=shift))
    result = report(watcher.profile, sketch)
    drifting = {name for name, entry in result["fields"].items() if entry["drift"]}
    assert field in drifting and result["score"]["drift"] and result["drift"]


def test_unshifted_samples_almost_never_raise_an_alarm(bundle):
    alarms = scores = 0
    for seed in range(100, 120):
        watcher, sketch, _ = scored_sketch(bundle, generate_sessions(5000, seed=seed))
        result = report(watcher.profile, sketch)
        alarms += sum(entry["drift"] for entry in result["fields"].values())
        scores += result["score"]["drift"]
    assert alarms <= 1 and scores == 0  # at most 1 of 340 field verdicts


def test_the_estimated_roc_auc_follows_the_realised_one(bundle):
    frame = generate_sessions(5000, seed=41)
    watcher, sketch, probabilities = scored_sketch(bundle, frame)
    estimated = report(watcher.profile, sketch)["performance"]["estimated"]
    realised = roc_auc_score(frame["Revenue"], probabilities)
    assert abs(estimated["roc_auc"] - realised) <= 0.02 and estimated["lower"] <= estimated["roc_auc"]
    for shift in (None, "season"):  # unshifted, and a covariate shift the model's features show
        errors = []
        for seed in range(5):
            frame = generate_sessions(20_000, seed=200 + seed, shift=shift)
            watcher, sketch, probabilities = scored_sketch(bundle, frame)
            estimated = report(watcher.profile, sketch)["performance"]["estimated"]["roc_auc"]
            errors.append(abs(estimated - roc_auc_score(frame["Revenue"], probabilities)))
        assert np.mean(errors) <= 0.01, shift


def test_the_estimate_is_marked_unreliable_where_categories_the_model_never_saw_arrive(bundle):
    """A new traffic source reaches the model only as out of vocabulary, where its calibration has no
    evidence: the estimate says so and names the field; a shift within what training saw does not."""
    for shift, unseen in (("traffic-source", {"TrafficType"}), ("season", set()), (None, set())):
        watcher, sketch, _ = scored_sketch(bundle, generate_sessions(5000, seed=17, shift=shift))
        estimated = report(watcher.profile, sketch)["performance"]["estimated"]
        assert set(estimated["unseen"]) == unseen and estimated["reliable"] is (not unseen), shift
        for entry in estimated["unseen"].values():
            assert entry["share"] > entry["reference_share"] + 0.05


def test_the_monitor_command_keeps_its_contract(bundle, tmp_path):
    from typer.testing import CliRunner

    from intent_edge.cli import app
    from intent_edge.data.io import write_table

    shifted, same = tmp_path / "shifted.csv", tmp_path / "same.csv"
    write_table(generate_sessions(5000, seed=3, shift="season"), shifted)
    write_table(generate_sessions(5000, seed=4), same)
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", str(bundle), str(same), "--labels", "Revenue", "--json",
                                 str(tmp_path / "same.json"), "--fail-on", "drift"])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "same.json").read_text())
    for name, entry in document["fields"].items():
        assert isinstance(entry["psi"], float) and isinstance(entry["drift"], bool), name
    assert {"psi", "drift"} <= set(document["score"]) and document["performance"]["estimated"]["roc_auc"] > 0.5
    frame = generate_sessions(5000, seed=4)
    probabilities = Predictor.load(bundle, strict=False).predict_batch(frame.drop(columns=["Revenue"]))
    assert document["performance"]["realised"]["roc_auc"] == roc_auc_score(frame["Revenue"], probabilities)
    assert document["performance"]["realised"] == realised_performance(
        frame["Revenue"].to_numpy(), probabilities, Predictor.load(bundle).threshold)
    result = runner.invoke(app, ["monitor", str(bundle), str(shifted), "--fail-on", "drift"])
    assert result.exit_code == 3 and "Month" in result.output
    # a saved sketch (here from `score --monitor`) is an input too, merged with the others
    write_table(generate_sessions(3000, seed=5).drop(columns=["Revenue"]), tmp_path / "till.csv")
    result = runner.invoke(app, ["score", str(bundle), str(tmp_path / "till.csv"), "--output",
                                 str(tmp_path / "scored.csv"), "--monitor", str(tmp_path / "till.json")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["monitor", str(bundle), str(tmp_path / "till.json"), str(same), "--json",
                                 str(tmp_path / "both.json")])
    assert result.exit_code == 0 and json.loads((tmp_path / "both.json").read_text())["rows"] == 8000


def test_compress_keeps_the_profile_and_adds_each_variants_score_bins(bundle, tmp_path):
    import shutil

    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.data.io import load_dataset, write_table
    from intent_edge.runtime.bundle import read_manifest, verify_files

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    write_table(generate_sessions(TRAINING_ROWS, seed=1), tmp_path / "train.csv")
    manifest = compress_bundle(copy, load_dataset(tmp_path / "train.csv"), methods=["original", "int8-dynamic"],
                               max_auc_drop=1.0)
    verify_files(copy, read_manifest(copy))  # monitor.json came along, rewritten, with its new checksum
    assert manifest["monitor"]["variants"] == ["fp32", "int8-dynamic"]
    predictor = Predictor.load(copy, "int8-dynamic", strict=False)
    watcher = predictor.start_monitoring()
    predictor.predict_batch(generate_sessions(3000, seed=9).drop(columns=["Revenue"]))
    result = report(watcher.profile, watcher.snapshot())
    assert result["variant"] == "int8-dynamic"
    assert result["performance"]["reference"]["roc_auc"] == pytest.approx(
        manifest["variants"]["int8-dynamic"]["accuracy"]["roc_auc"], abs=1e-12)


def test_monitor_by_period_writes_a_row_and_plots_per_period(bundle, tmp_path):
    from typer.testing import CliRunner

    from intent_edge.cli import app
    from intent_edge.data.io import write_table

    frames = [generate_sessions(2500, seed=60 + i, shift=shift).assign(week=week)
              for i, (week, shift) in enumerate((("2026-W01", None), ("2026-W02", None), ("2026-W03", "season")))]
    import pandas as pd

    write_table(pd.concat(frames, ignore_index=True), tmp_path / "weeks.csv")
    result = CliRunner().invoke(app, ["monitor", str(bundle), str(tmp_path / "weeks.csv"), "--by", "week",
                                      "--labels", "Revenue", "--json", str(tmp_path / "weeks.json"),
                                      "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    periods = json.loads((tmp_path / "weeks.json").read_text())["periods"]
    assert list(periods) == ["2026-W01", "2026-W02", "2026-W03"]
    assert [p["drift"] for p in periods.values()] == [False, False, True]  # the shifted week, and only it
    assert all(p["rows"] == 2500 and p["performance"]["realised"]["roc_auc"] > 0.5 for p in periods.values())
    assert {path.name for path in (tmp_path / "plots").iterdir()} >= {"drift-2026-W03-Month.png", "periods.png"}


def test_batch_counts_equal_a_row_by_row_count_with_empty_values_and_odd_blocks():
    """Profile.count_rows counts a whole matrix at once; a plain row-by-row count (the number of edges <= a
    value, an empty value in its own bin, a block's first 1) is the oracle, on a field that may be empty
    and on one-hot blocks that are not one-hot (two 1s, none), where count_rows falls back to argmax."""
    from intent_edge.runtime.encoder import Encoder
    from intent_edge.runtime.monitor import Profile

    rng = np.random.default_rng(3)
    pages = rng.gamma(1.0, 5.0, 3000)
    pages[rng.random(3000) < 0.1] = np.nan
    columns = {"pages": pages, "rate": rng.random(3000),
               "month": rng.choice(["Feb", "May", "Nov", "Dec"], 3000), "browser": rng.integers(1, 6, 3000)}
    encoder = Encoder.fit(columns, {"pages": "numeric", "rate": "numeric", "month": "categorical",
                                    "browser": "categorical"}, min_category_count=1)
    encoded = encoder.encode_columns(columns, strict=False)
    profile = Profile.fit(encoder, encoded, {"variant": "fp32"})
    pages_field = next(f for f in profile.fields if f.name == "pages")
    assert pages_field.indicator is not None and pages_field.labels[-1] == "empty"

    def row_by_row(matrix):
        counts = {f.name: np.zeros(f.bins, np.int64) for f in profile.fields}
        for row in matrix:
            for f in profile.fields:
                if f.kind == "numeric":
                    empty = f.indicator is not None and row[f.indicator] == 1.0
                    counts[f.name][f.bins - 1 if empty else int(np.sum(f.edges <= row[f.column]))] += 1
                else:
                    ones = np.flatnonzero(row[f.column:f.column + f.bins] == 1.0)
                    counts[f.name][ones[0] if len(ones) else 0] += 1
        return counts

    for matrix in (encoded, encoded[:1], encoded[:0]):
        assert {k: v.tolist() for k, v in profile.count_rows(matrix).items()} == \
            {k: v.tolist() for k, v in row_by_row(matrix).items()}
    month = next(f for f in profile.fields if f.name == "month")
    odd = encoded[:50].copy()
    odd[:10, month.column:month.column + month.bins] = 0.0  # no 1 in the block
    odd[10:20, month.column:month.column + month.bins] = 1.0  # every column 1
    assert profile.count_rows(odd)["month"].tolist() == row_by_row(odd)["month"].tolist()
