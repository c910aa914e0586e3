"""Explanations: interventional Shapley values on the compiled model, checked against shap's own
explainers (a test-only dependency) with the same background and the same model function."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from intent_edge.errors import BundleError, RecordError, UsageError
from intent_edge.runtime import Predictor
from tests.conftest import UCI_CSV, requires_uci

SMALL_FIELDS = ["Administrative", "ProductRelated_Duration", "BounceRates", "PageValues", "Month", "VisitorType"]


def shap_exact(predictor: Predictor, records: list[dict], background: list[dict]) -> np.ndarray:
    pytest.importorskip("shap", reason="shap (dev extra) checks the explanations")
    from intent_edge.bench.shap_reference import shap_explainers

    model, exact, _ = shap_explainers(predictor, records, background)
    explained = exact(model.codes(records), max_evals=2 ** 18)
    return explained.values, explained.base_values


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory, tiny_recipe):
    """A bundle of six fields (few enough for exact enumeration) from the synthetic data."""
    from intent_edge.data.io import load_dataset, write_table
    from intent_edge.data.synth import generate_sessions
    from intent_edge.train.pipeline import train_bundle

    path = tmp_path_factory.mktemp("small") / "sessions.csv"
    write_table(generate_sessions(1200, seed=8)[[*SMALL_FIELDS, "Revenue"]], path)
    out = path.parent / "bundle"
    train_bundle(load_dataset(path, "Revenue"), out, recipe=tiny_recipe, seed=0)
    return out


@pytest.fixture(scope="module")
def small_records():
    from intent_edge.data.synth import generate_sessions

    return generate_sessions(40, seed=9)[SMALL_FIELDS].to_dict("records")


def test_exact_enumeration_equals_shap_exact(small_bundle, small_records):
    predictor = Predictor.load(small_bundle, threads=1)
    background, records = small_records[:30], small_records[30:34]
    values, bases = shap_exact(predictor, records, background)
    for record, expected, base in zip(records, values, bases, strict=True):
        explanation = predictor.explain(record, background)
        assert explanation.method.startswith("exact")
        np.testing.assert_allclose([explanation.contributions[n] for n in SMALL_FIELDS], expected, atol=1e-5)
        assert explanation.base == pytest.approx(base, abs=1e-6)
        assert explanation.base + sum(explanation.contributions.values()) == pytest.approx(
            predictor.predict(record), abs=1e-4)


def test_permutation_estimate_is_close_to_exact_and_deterministic(small_bundle, small_records):
    predictor = Predictor.load(small_bundle)
    background, record = small_records[:30], small_records[35]
    exact = predictor.explain(record, background)
    sampled = predictor.explain(record, background, samples=8, seed=3)
    assert sampled.method == "antithetic permutations (8 per background row)"
    for name in SMALL_FIELDS:
        assert sampled.contributions[name] == pytest.approx(exact.contributions[name], abs=0.02)
    assert predictor.explain(record, background, samples=8, seed=3) == sampled
    # efficiency holds for any number of samples: each walk's steps add up to f(x) - base
    assert sampled.base + sum(sampled.contributions.values()) == pytest.approx(predictor.predict(record), abs=1e-4)
    with pytest.raises(UsageError, match="even number"):
        predictor.explain(record, background, samples=7)


def test_the_bundle_carries_its_background_and_compress_keeps_it(tiny_bundle, synthetic_csv, tmp_path):
    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.data.io import load_dataset

    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    entry = manifest["explain"]["background"]
    assert entry["kind"] == "kmeans" and 1 <= entry["rows"] <= 30
    stored = json.loads((tiny_bundle / entry["file"]["path"]).read_text())
    assert len(stored["rows"]) == entry["rows"] and sum(stored["weights"]) == pytest.approx(1.0)
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    dataset = load_dataset(synthetic_csv)
    compress_bundle(bundle, dataset, methods=["original", "int8-dynamic"])
    record = dataset.features.iloc[0].to_dict()
    for variant in ("fp32", "int8-dynamic"):
        predictor = Predictor.load(bundle, variant)
        explanation = predictor.explain(record)  # the bundle's own background
        # int8-dynamic quantizes per batch: it is explained through its float source, which says so
        assert explanation.variant == "fp32"
        reference = Predictor.load(bundle, "fp32").predict(record)
        assert explanation.base + sum(explanation.contributions.values()) == pytest.approx(reference, abs=1e-4)
    (bundle / entry["file"]["path"]).write_text(json.dumps({**stored, "weights": [1.0] * entry["rows"]}))
    with pytest.raises(BundleError, match="background.json"):  # verified when it is read, like every file
        Predictor.load(bundle).explain(record)


def test_batches_and_threads_give_the_single_record_answers(tiny_bundle, synthetic_csv):
    from intent_edge.data.io import load_dataset

    predictor = Predictor.load(tiny_bundle)
    records = load_dataset(synthetic_csv).features.iloc[:12].to_dict("records")
    singles = [predictor.explain(r, samples=8) for r in records]
    assert predictor.explain_batch(records, samples=8) == singles
    assert predictor.explain_batch(pd.DataFrame(records), samples=8) == singles
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda r: predictor.explain(r, samples=8), records * 3)) == singles * 3
    assert singles[0].top(2) == dict(sorted(singles[0].contributions.items(), key=lambda i: -abs(i[1]))[:2])


def test_bad_records_and_backgrounds_are_refused_by_name(tiny_bundle, synthetic_csv, tmp_path):
    from intent_edge.data.io import load_dataset

    records = load_dataset(synthetic_csv).features.iloc[:5].to_dict("records")
    strict, lenient = Predictor.load(tiny_bundle), Predictor.load(tiny_bundle, strict=False)
    blank = {**records[0], "PageValues": None}
    with pytest.raises(RecordError, match="PageValues"):
        strict.explain(blank)
    assert lenient.explain(blank).probability == pytest.approx(lenient.predict(blank), abs=1e-6)
    with pytest.raises(UsageError, match="background: no rows"):
        strict.explain(records[0], [])
    with pytest.raises(UsageError, match="over the limit of 1000"):
        strict.explain(records[0], records * 201)
    with pytest.raises(RecordError, match="'Month': missing"):
        strict.explain(records[0], [{k: v for k, v in r.items() if k != "Month"} for r in records])
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["explain"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="no background set .* pass background="):
        Predictor.load(old).explain(records[0])
    assert Predictor.load(old).explain(records[0], records).base > 0


@pytest.mark.slow
@requires_uci
def test_uci_explanations_match_shap_exact(tmp_path_factory):
    """The acceptance check: a UCI bundle, held-out records, a 30-row background given as records."""
    from intent_edge.data.io import load_dataset
    from intent_edge.train.mlp import MLPRecipe
    from intent_edge.train.pipeline import rebuild_split, train_bundle

    dataset = load_dataset(UCI_CSV, "Revenue")
    bundle = tmp_path_factory.mktemp("uci") / "bundle"
    train_bundle(dataset, bundle, recipe=MLPRecipe(hidden=(32, 16), max_epochs=8, patience=3,
                                                            teacher="lightgbm"), seed=0)
    predictor = Predictor.load(bundle, threads=1)
    train, test = rebuild_split(dataset, predictor.manifest["training"])
    background = dataset.features.iloc[train[:30]].to_dict("records")
    records = dataset.features.iloc[test[:2]].to_dict("records")
    values, _ = shap_exact(predictor, records, background)
    names = list(predictor.feature_names)
    for record, expected in zip(records, values, strict=True):
        explanation = predictor.explain(record, background)
        ours = np.array([explanation.contributions[n] for n in names])
        assert np.abs(ours - expected).max() <= 0.02
        assert explanation.base + ours.sum() == pytest.approx(predictor.predict(record), abs=1e-4)
        top = np.argsort(-np.abs(expected))
        # the top 3 agree, ignoring fields whose exact contributions differ by less than 0.005
        for rank in range(3):
            tied = [i for i in top if abs(abs(expected[i]) - abs(expected[top[rank]])) < 0.005]
            assert np.argsort(-np.abs(ours))[rank] in tied


def test_litert_keeps_a_planned_interpreter_per_batch_shape(tiny_bundle, synthetic_csv, tmp_path, monkeypatch):
    """Explain's coalition batches must not make LiteRT re-plan the interpreter predict uses (and back)."""
    pytest.importorskip("ai_edge_litert", reason="LiteRT (extra 'cpu') runs the .tflite variant")
    from ai_edge_litert.interpreter import Interpreter

    from intent_edge.compress.pipeline import compress_bundle
    from intent_edge.data.io import load_dataset

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    dataset = load_dataset(synthetic_csv)
    compress_bundle(bundle, dataset, methods=["original", "litert-fp32"])
    records = dataset.features.iloc[:3].to_dict("records")
    litert = Predictor.load(bundle, "litert-fp32")
    litert.predict(records[0])
    explanation = litert.explain(records[1])  # warm: each batch shape planned once
    plans = []
    original = Interpreter.allocate_tensors
    monkeypatch.setattr(Interpreter, "allocate_tensors", lambda self: plans.append(1) or original(self))
    for record in records:
        litert.predict(record)
        litert.explain(record)
    assert plans == []
    onnx = Predictor.load(bundle, "fp32").explain(records[1])
    for name, value in onnx.contributions.items():
        assert explanation.contributions[name] == pytest.approx(value, abs=1e-5)
